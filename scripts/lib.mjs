// Helpers shared by the scripts (bench.mjs, demo.mjs).
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

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
