import { OperationError } from '../errors.js';
import type { Context } from '../runtime/context.js';
import type { Sensitive } from '../sensitive.js';

/**
 * Where pg_dump runs for `opskit backup create`: on this machine (database.url reached from here), or in
 * the database's compose container (backup.via compose). On Swarm, overlay.ts runs it inside the overlay.
 */
export interface Dumper {
  where: string;
  serverVersion(): Promise<string>;
  dump(): Promise<{
    stdout: NodeJS.ReadableStream & import('node:stream').Readable;
    done: Promise<{ exitCode: number | undefined; signal?: string | undefined; stderr: string; notFound: boolean }>;
    kill(): void;
  }>;
}

export function hostDumper(ctx: Context, url: Sensitive, env: Record<string, string>): Dumper {
  const config = ctx.loaded!.config;
  return {
    where: `on ${env.PGHOST}:${env.PGPORT}`,
    serverVersion: async () => (await ctx.datastores.postgres(url, 10_000)).serverVersion,
    dump: async () => {
      const p = await ctx.exec.stream(config.backup.pgDump, ['--no-password', '--no-owner', '--no-acl'], {
        env: { ...ctx.processEnv, ...env },
        stdin: 'ignore',
      });
      return { stdout: p.stdout, done: p.done, kill: p.kill };
    },
  };
}

/** pg_dump inside the db service's container, over its local socket; the password goes in the exec's env. */
export async function composeDumper(ctx: Context, env: Record<string, string>): Promise<Dumper> {
  const config = ctx.loaded!.config;
  const { pickServiceContainer, serviceLabels } = await import('../adapters/compose.js');
  const project = config.compose.project ?? config.project.name!;
  const docker = await ctx.docker(config.docker.host ?? ctx.loaded!.env.DOCKER_HOST);
  const c = pickServiceContainer(await docker.listContainers(serviceLabels(project, config.database.service)));
  if (!c?.running)
    throw new OperationError(
      'E_DB_DOWN',
      `backup.via compose: the ${config.database.service} service of ${project} is not running`,
      { hint: 'start it (opskit deploy), or use backup.via: host' },
    );
  const inner = {
    PGUSER: env.PGUSER ?? 'postgres',
    PGDATABASE: env.PGDATABASE!,
    ...(env.PGPASSWORD ? { PGPASSWORD: env.PGPASSWORD } : {}),
  };
  return {
    where: `in the ${config.database.service} container (${c.name})`,
    async serverVersion() {
      const r = await docker.execStream(c.id, ['psql', '-X', '-Atc', 'SHOW server_version'], inner);
      let out = '';
      r.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      const exit = await r.done;
      if (exit.exitCode !== 0) throw new Error(exit.stderr.trim() || `psql exited ${exit.exitCode}`);
      return out.trim();
    },
    async dump() {
      const r = await docker.execStream(c.id, [config.backup.pgDump, '--no-password', '--no-owner', '--no-acl'], inner);
      return {
        stdout: r.stdout as NodeJS.ReadableStream & import('node:stream').Readable,
        done: r.done.then((d) => ({ ...d, notFound: false })),
        kill: () => {},
      };
    },
  };
}
