import type { ExecAdapter, ExecResult } from './exec.js';

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

/**
 * Finds the compose CLI: `docker compose` (v2) first, then `docker-compose` (v1), unless the config
 * says which. Both are asked at once (v1 is a slow Python start); the preferred answer wins.
 */
export async function detectCompose(exec: ExecAdapter, preference: 'auto' | ComposeFlavor, timeoutMs: number): Promise<ComposeCli | undefined> {
  const candidates: Array<Omit<ComposeCli, 'version'>> = [];
  if (preference !== 'v1') candidates.push({ flavor: 'v2', file: 'docker', prefix: ['compose'] });
  if (preference !== 'v2') candidates.push({ flavor: 'v1', file: 'docker-compose', prefix: [] });
  const results: ExecResult[] = await Promise.all(candidates.map((c) => exec.run(c.file, [...c.prefix, 'version', '--short'], { timeoutMs })));
  for (const [index, candidate] of candidates.entries()) {
    const result = results[index]!;
    if (!result.failed && result.stdout.trim()) return { ...candidate, version: result.stdout.trim().replace(/^v/, '') };
  }
  return undefined;
}

export function describeCli(cli: ComposeCli): string {
  return `${[cli.file, ...cli.prefix].join(' ')} ${cli.version} (${cli.flavor})`;
}
