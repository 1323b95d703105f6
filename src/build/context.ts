import dockerignoreModule, { type Ignore } from '@balena/dockerignore';

// A CommonJS module whose typings declare an ES default export: take the function either way.
const dockerignore = ((dockerignoreModule as unknown as { default?: unknown }).default ?? dockerignoreModule) as (options?: { ignorecase?: boolean }) => Ignore;

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
