import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { type CliRun, closedPort, opskit, tempDir } from './cli.js';
import { composeArgs } from './compose.js';
import { docker } from './docker.js';

/** The sample platform written by `opskit init --example`, on its own compose project and port. */
export interface Platform {
  dir: string;
  project: string;
  port: number;
  env: Record<string, string>;
  run(args: string[], env?: Record<string, string>): Promise<CliRun>;
  url(pathname: string): string;
  /** psql inside the platform's db container, as the app user. */
  sql(query: string): Promise<string>;
  composeFile: string;
  /** nginx's error-log lines and each relay's log (what a failed load check prints to say why). */
  nginxErrors(): Promise<string>;
  destroy(): Promise<void>;
}

export async function createPlatform(prefix = 'opskit-it-'): Promise<Platform> {
  const dir = tempDir(prefix);
  const init = await opskit(['init', '--example', dir]);
  if (init.exitCode !== 0) throw new Error(`init --example failed: ${init.stderr}`);
  const project = path
    .basename(dir)
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-');
  const port = await closedPort();
  const env = { NGINX_PORT: String(port) };
  const composeFile = path.join(dir, 'compose/docker-compose.prod.yml');
  const dotenv = readFileSync(path.join(dir, '.env'), 'utf8');
  const composeEnv = Object.fromEntries(
    [...dotenv.split('\n'), ...readFileSync(path.join(dir, '.env.offline'), 'utf8').split('\n')]
      .filter((l) => /^[A-Z_]+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  ) as Record<string, string>;
  return {
    dir,
    project,
    port,
    env,
    composeFile,
    run: (args, extra = {}) =>
      opskit(['-e', 'offline', ...args], { cwd: dir, env: { ...env, ...extra }, timeoutMs: 300_000 }),
    url: (pathname) => `http://127.0.0.1:${port}${pathname}`,
    async sql(query) {
      const id = (
        await docker([
          'ps',
          '-q',
          '--filter',
          `label=com.docker.compose.project=${project}`,
          '--filter',
          'label=com.docker.compose.service=db',
        ])
      ).stdout.trim();
      return (await docker(['exec', id, 'psql', '-U', 'app', '-d', 'app', '-Atc', query])).stdout.trim();
    },
    async nginxErrors() {
      const filter = (label: string) => ['--filter', `label=com.docker.compose.project=${project}`, '--filter', label];
      const ids = async (label: string) =>
        (await docker(['ps', '-aq', ...filter(label)], { reject: false })).stdout.split('\n').filter(Boolean);
      const out: string[] = [];
      for (const [what, label] of [
        ['nginx', 'com.docker.compose.service=nginx'],
        ['relay', 'org.opskit.role=relay'],
      ] as const) {
        for (const id of await ids(label)) {
          const logs = await docker(['logs', id], { reject: false });
          const lines = `${logs.stdout}\n${logs.stderr}`
            .split('\n')
            .filter((l) => /\[(warn|error|crit|alert|emerg)\]/.test(l));
          out.push(
            `--- ${what} ${id.slice(0, 12)}: ${lines.length} warning/error lines (last 40) ---`,
            ...lines.slice(-40),
          );
        }
      }
      return out.join('\n');
    },
    async destroy() {
      if (existsSync(composeFile)) {
        const [file, args] = composeArgs([
          '-p',
          project,
          '-f',
          composeFile,
          'down',
          '-v',
          '--remove-orphans',
          '-t',
          '2',
        ]);
        await execa(file, args, { env: { ...composeEnv, ...env }, reject: false });
      }
      const images = (
        await docker(['images', '-q', '--filter', `label=org.opskit.project=${project}`], { reject: false })
      ).stdout
        .split('\n')
        .filter(Boolean);
      if (images.length) await docker(['rmi', '-f', ...new Set(images)], { reject: false });
    },
  };
}

export async function projectResources(
  project: string,
): Promise<{ containers: string[]; networks: string[]; volumes: string[] }> {
  const filter = `label=com.docker.compose.project=${project}`;
  const list = async (args: string[]) => (await docker(args, { reject: false })).stdout.split('\n').filter(Boolean);
  return {
    containers: await list(['ps', '-aq', '--filter', filter]),
    networks: await list(['network', 'ls', '-q', '--filter', filter]),
    volumes: await list(['volume', 'ls', '-q', '--filter', filter]),
  };
}
