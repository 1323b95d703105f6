import type { Clock } from '../adapters/clock.js';
import type { DockerAdapter } from '../adapters/docker.js';
import type { Sensitive } from '../sensitive.js';

/**
 * Datastore checks asked from inside the platform's network: a one-off container on that network (a Swarm
 * overlay, which the host is not on, and where `db` and `redis` resolve), running the datastore's own client
 * from the service's image. The password goes in the container's environment, never in its command line.
 */

export interface InsideCheck {
  image: string;
  network: string;
  argv: string[];
  env: Record<string, string>;
}

/** Pure: `psql` asked for the server's version, the connection from the URL's parts. */
export function postgresInside(url: Sensitive, image: string, network: string, timeoutMs: number): InsideCheck {
  const u = new URL(url.reveal());
  return {
    image,
    network,
    argv: ['psql', '-Atc', 'SHOW server_version'],
    env: {
      PGHOST: u.hostname,
      PGPORT: u.port || '5432',
      PGUSER: decodeURIComponent(u.username),
      PGPASSWORD: decodeURIComponent(u.password),
      PGDATABASE: decodeURIComponent(u.pathname.slice(1)) || decodeURIComponent(u.username),
      PGCONNECT_TIMEOUT: String(Math.max(1, Math.ceil(timeoutMs / 1000))),
    },
  };
}

/** Pure: `redis-cli ping`, the password (if any) through REDISCLI_AUTH. */
export function redisInside(url: Sensitive, image: string, network: string): InsideCheck {
  const u = new URL(url.reveal());
  return {
    image,
    network,
    argv: ['redis-cli', '-h', u.hostname, '-p', u.port || '6379', 'ping'],
    env: u.password ? { REDISCLI_AUTH: decodeURIComponent(u.password) } : {},
  };
}

/** Runs one inside check and removes its container; bounded by timeoutMs (plus the container's start). */
export async function runInside(
  docker: DockerAdapter,
  clock: Clock,
  check: InsideCheck,
  labels: Record<string, string>,
  timeoutMs: number,
): Promise<{ exitCode: number; output: string; latencyMs: number }> {
  const started = clock.monotonicMs();
  const name = `opskit-probe-${Math.random().toString(36).slice(2, 10)}`;
  const id = await docker.runContainer(name, {
    Image: check.image,
    Entrypoint: [],
    Cmd: check.argv,
    Env: Object.entries(check.env).map(([k, v]) => `${k}=${v}`),
    Labels: { ...labels, 'opskit.probe': 'inside' },
    HostConfig: { NetworkMode: check.network },
  });
  try {
    const deadline = started + timeoutMs + 15_000;
    for (;;) {
      const info = await docker.inspectContainer(id);
      if (!info?.running)
        return {
          exitCode: info?.exitCode ?? 1,
          output: (await docker.containerLogs(id, 20).catch(() => '')).trim(),
          latencyMs: clock.monotonicMs() - started,
        };
      if (clock.monotonicMs() > deadline)
        return { exitCode: 124, output: 'no answer before the deadline', latencyMs: clock.monotonicMs() - started };
      await clock.sleep(100);
    }
  } finally {
    await docker.removeContainer(id).catch(() => {});
  }
}
