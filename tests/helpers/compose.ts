import { execaSync } from 'execa';

let v2: boolean | undefined;

/**
 * The compose CLI the tests drive directly, as opskit would pick it: OPSKIT_COMPOSE_CLI=v1 or v2 when
 * set (the compat run sets v1), else `docker compose` (v2) when the plugin answers, else docker-compose.
 */
export function composeCli(): { file: string; prefix: string[]; flavor: 'v1' | 'v2' } {
  const want = process.env.OPSKIT_COMPOSE_CLI ?? 'auto';
  if (want === 'v1') return { file: 'docker-compose', prefix: [], flavor: 'v1' };
  v2 ??= execaSync('docker', ['compose', 'version', '--short'], { reject: false }).exitCode === 0;
  if (want === 'v2' || v2) return { file: 'docker', prefix: ['compose'], flavor: 'v2' };
  return { file: 'docker-compose', prefix: [], flavor: 'v1' };
}

/** [file, args] of one compose command. */
export function composeArgs(args: readonly string[]): [string, string[]] {
  const cli = composeCli();
  return [cli.file, [...cli.prefix, ...args]];
}

/** A service's bind mounts from `compose config`, as host:container whichever syntax the version prints. */
export function bindMounts(service: {
  volumes?: Array<string | { type?: string; source?: string; target?: string }>;
}): string[] {
  return (service.volumes ?? []).map((v) =>
    typeof v === 'string' ? v.split(':').slice(0, 2).join(':') : `${v.source}:${v.target}`,
  );
}
