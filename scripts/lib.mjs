// Helpers shared by the scripts (bench.mjs, demo.mjs, soak.mjs).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { execa } from 'execa';

/** A free port on 127.0.0.1: `preferred` when it is free, else any. */
export async function freePort(preferred = 0) {
  const tryPort = (port) =>
    new Promise((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(undefined));
      server.listen(port, '127.0.0.1', () => {
        const { port: got } = server.address();
        server.close(() => resolve(got));
      });
    });
  return (await tryPort(preferred)) ?? (await tryPort(0));
}

/** The NAME=value lines of env files, later files winning: the sample platform's .env and .env.offline. */
export function readEnvFiles(...files) {
  return Object.fromEntries(
    files
      .flatMap((f) => readFileSync(f, 'utf8').split('\n'))
      .filter((l) => /^[A-Z_]+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

/** What `opskit -e offline` reads in an `init --example` directory. */
export const exampleEnv = (dir) => readEnvFiles(path.join(dir, '.env'), path.join(dir, '.env.offline'));

let composeV2;
/** [file, args] of a compose command, as opskit picks the CLI: OPSKIT_COMPOSE_CLI, else v2 when it answers. */
export function composeArgs(args) {
  const want = process.env.OPSKIT_COMPOSE_CLI ?? 'auto';
  if (want !== 'v1')
    composeV2 ??= spawnSync('docker', ['compose', 'version', '--short'], { stdio: 'ignore' }).status === 0;
  return want === 'v2' || (want !== 'v1' && composeV2)
    ? ['docker', ['compose', ...args]]
    : ['docker-compose', [...args]];
}

/** The address of a compose service's (first) container on its network: where the scripts send load. */
export async function serviceAddress(project, service) {
  const { stdout } = await execa('docker', [
    'ps',
    '-q',
    '--filter',
    `label=com.docker.compose.project=${project}`,
    '--filter',
    `label=com.docker.compose.service=${service}`,
  ]);
  const id = stdout.trim().split('\n')[0];
  const inspected = await execa('docker', [
    'inspect',
    '-f',
    '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}',
    id,
  ]);
  return inspected.stdout.trim();
}
