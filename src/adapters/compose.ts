import type { ContainerInfo } from './docker.js';
import type { ExecAdapter, ExecResult } from './exec.js';
import type { FsAdapter } from './fs.js';

export type ComposeFlavor = 'v2' | 'v1';

/** How to call compose: `docker compose ...` (v2) or `docker-compose ...` (v1). */
export interface ComposeCli {
  flavor: ComposeFlavor;
  version: string;
  file: string;
  prefix: string[];
}

export interface ComposeTarget {
  cli: ComposeCli;
  project: string;
  composeFile: string;
}

/** Pure: the argv of one compose command for this project (`-p`, `-f`, then the args). */
export function composeArgv(target: ComposeTarget, args: readonly string[]): [string, string[]] {
  return [target.cli.file, [...target.cli.prefix, '-p', target.project, '-f', target.composeFile, ...args]];
}

/** The labels compose puts on its containers: how opskit finds them (never by name). */
export function serviceLabels(project: string, service: string): Record<string, string> {
  return { 'com.docker.compose.project': project, 'com.docker.compose.service': service };
}

/** `compose run` containers: never the service itself. */
export function isOneOff(container: ContainerInfo): boolean {
  return container.labels['com.docker.compose.oneoff'] === 'True';
}

/** Pure: the service's container that matters (running first, then the newest). */
export function pickServiceContainer(containers: readonly ContainerInfo[]): ContainerInfo | undefined {
  const service = containers.filter((c) => !isOneOff(c));
  return service.find((c) => c.running) ?? service[0];
}

/**
 * Finds the compose CLI: `docker compose` (v2) first, then `docker-compose` (v1), unless the config
 * says which. Both are asked at once (v1 is a slow Python start); the preferred answer wins.
 */
export async function detectCompose(
  exec: ExecAdapter,
  preference: 'auto' | ComposeFlavor,
  timeoutMs: number,
): Promise<ComposeCli | undefined> {
  const candidates: Array<Omit<ComposeCli, 'version'>> = [];
  if (preference !== 'v1') candidates.push({ flavor: 'v2', file: 'docker', prefix: ['compose'] });
  if (preference !== 'v2') candidates.push({ flavor: 'v1', file: 'docker-compose', prefix: [] });
  const results: ExecResult[] = await Promise.all(
    candidates.map((c) => exec.run(c.file, [...c.prefix, 'version', '--short'], { timeoutMs })),
  );
  for (const [index, candidate] of candidates.entries()) {
    const result = results[index]!;
    if (!result.failed && result.stdout.trim())
      return { ...candidate, version: result.stdout.trim().replace(/^v/, '') };
  }
  return undefined;
}

interface CachedCli extends ComposeCli {
  preference: string;
  binary: string;
  mtimeMs: number;
}

/**
 * detectCompose, remembered in the state directory: the v1 CLI alone costs about a second to ask
 * (a Python start) on every deploy. The answer is reused while the same binary (path and mtime) is on
 * PATH and the preference is the same.
 */
export async function detectComposeCached(
  exec: ExecAdapter,
  fs: FsAdapter,
  cacheFile: string,
  preference: 'auto' | ComposeFlavor,
  options: { timeoutMs: number; env?: Record<string, string | undefined>; write: boolean },
): Promise<ComposeCli | undefined> {
  const text = await fs.readText(cacheFile);
  if (text) {
    try {
      const cached = JSON.parse(text) as CachedCli;
      const binary = await exec.which(cached.file, options.env);
      if (
        cached.preference === preference &&
        binary === cached.binary &&
        (await fs.mtimeMs(binary)) === cached.mtimeMs
      ) {
        return { flavor: cached.flavor, version: cached.version, file: cached.file, prefix: cached.prefix };
      }
    } catch {
      // stale or unreadable: ask again
    }
  }
  const found = await detectCompose(exec, preference, options.timeoutMs);
  if (found && options.write) {
    const binary = await exec.which(found.file, options.env);
    const mtimeMs = binary ? await fs.mtimeMs(binary) : undefined;
    if (binary && mtimeMs !== undefined) {
      const cached: CachedCli = { ...found, preference, binary, mtimeMs };
      await fs.writeFileAtomic(cacheFile, `${JSON.stringify(cached)}\n`).catch(() => {});
    }
  }
  return found;
}

export function describeCli(cli: ComposeCli): string {
  return `${[cli.file, ...cli.prefix].join(' ')} ${cli.version} (${cli.flavor})`;
}
