import dockerignoreModule, { type Ignore } from '@balena/dockerignore';

// A CommonJS module whose typings declare an ES default export: take the function either way.
const dockerignore = ((dockerignoreModule as unknown as { default?: unknown }).default ??
  dockerignoreModule) as (options?: { ignorecase?: boolean }) => Ignore;

export interface ContextFilter {
  /** True when the path (relative, `/`-separated) is left out of the build context. */
  ignores(relative: string): boolean;
  /** A directory may be skipped whole only when no `!pattern` could bring something inside it back. */
  canPrune(relative: string): boolean;
}

/** Pure: Docker's .dockerignore semantics (the same parser dockerode uses). */
export function contextFilter(dockerignoreText: string | undefined): ContextFilter {
  const patterns = (dockerignoreText ?? '').split(/\r?\n/);
  const ig = dockerignore({ ignorecase: false }).add(patterns);
  const hasNegation = patterns.some((p) => p.trim().startsWith('!'));
  return {
    ignores: (relative) => ig.ignores(relative),
    canPrune: (relative) => !hasNegation && ig.ignores(relative),
  };
}

/**
 * Pure: the files sent as the build context. The Dockerfile and .dockerignore always go, as Docker
 * sends them even when ignored.
 */
export function selectContextFiles(all: readonly string[], filter: ContextFilter, dockerfile: string): string[] {
  const keep = new Set(all.filter((f) => !filter.ignores(f)));
  for (const always of [dockerfile, '.dockerignore']) if (all.includes(always)) keep.add(always);
  return [...keep].sort();
}

/** Pure: the names declared by `ARG` in a Dockerfile, in order. */
export function declaredArgs(dockerfileText: string): string[] {
  const names: string[] = [];
  const joined = dockerfileText.replace(/\\\r?\n/g, ' ');
  for (const line of joined.split(/\r?\n/)) {
    const match = /^\s*ARG\s+(.+)$/i.exec(line);
    if (!match) continue;
    for (const part of match[1]!.trim().split(/\s+/)) {
      const name = part.split('=')[0]!;
      if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && !names.includes(name)) names.push(name);
    }
  }
  return names;
}

export interface DockerfileStage {
  index: number;
  /** `AS name`, lowercased as BuildKit names it; undefined for an unnamed stage (BuildKit: `stage-N`). */
  name: string | undefined;
  /** The image as written, e.g. `${BASE_IMAGE}`. */
  from: string;
}

/**
 * Pure: the Dockerfile's instructions, one per entry: continuation lines joined, comments and the
 * bodies of heredocs (`RUN <<EOT ... EOT`) left out, so that a `FROM` inside a script is not a stage.
 */
function instructions(dockerfileText: string): string[] {
  const out: string[] = [];
  const lines = dockerfileText.split(/\r?\n/);
  let pending = '';
  const heredocEnds: Array<{ word: string; strip: boolean }> = [];
  for (const line of lines) {
    if (heredocEnds.length > 0) {
      const end = heredocEnds[0]!;
      if ((end.strip ? line.replace(/^\t+/, '') : line) === end.word) heredocEnds.shift();
      continue;
    }
    if (/^\s*#/.test(line)) continue;
    if (/\\\s*$/.test(line)) {
      pending += `${line.replace(/\\\s*$/, '')} `;
      continue;
    }
    const instruction = `${pending}${line}`.trim();
    pending = '';
    if (instruction === '') continue;
    out.push(instruction);
    for (const match of instruction.matchAll(/(?<!<)<<(-?)(["']?)([A-Za-z_][A-Za-z0-9_]*)\2/g))
      heredocEnds.push({ word: match[3]!, strip: match[1] === '-' });
  }
  if (pending.trim()) out.push(pending.trim());
  return out;
}

/** Pure: the stages of a Dockerfile, in order (`FROM [--platform=...] image [AS name]`). */
export function dockerfileStages(dockerfileText: string): DockerfileStage[] {
  const stages: DockerfileStage[] = [];
  for (const instruction of instructions(dockerfileText)) {
    const match = /^FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?/i.exec(instruction);
    if (match) stages.push({ index: stages.length, name: match[2]?.toLowerCase(), from: match[1]! });
  }
  return stages;
}

/**
 * Pure: the frontend image a `# syntax=...` parser directive names, if any. Directives sit at the very
 * top: the first line that is not one (a comment, a blank line, an instruction) ends them.
 */
export function syntaxDirective(dockerfileText: string): string | undefined {
  for (const line of dockerfileText.replace(/^\uFEFF/, '').split(/\r?\n/)) {
    const directive = /^#\s*([A-Za-z][A-Za-z0-9]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!directive) return undefined;
    if (directive[1]!.toLowerCase() === 'syntax' && directive[2]) return directive[2];
  }
  return undefined;
}
