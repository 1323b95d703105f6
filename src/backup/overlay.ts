import type { DockerAdapter } from '../adapters/docker.js';
import { ConfigError, OperationError } from '../errors.js';
import { openSwarm } from '../platform/engine/open.js';
import { swarmServiceName } from '../platform/engine/swarm-spec.js';
import type { Context } from '../runtime/context.js';
import type { Sensitive } from '../sensitive.js';
import type { Dumper } from './dumpers.js';
import { type PgReach, psqlRestoreArgv, readCsv } from './reach.js';
import { pgEnv, type Target } from './target.js';

/**
 * The database on Swarm, reached from inside the overlay network: no database port is published. One
 * container of the database service's own image (its pg_dump and psql match the server), attached to the
 * project's attachable overlay network on the manager, sleeping while opskit runs pg_dump, psql and its
 * queries in it by exec, the password in each exec's environment (the API, never a command line). It is
 * removed at the end, and bounded by its sleep if opskit is killed; a run removes what a killed run left.
 */

/** How long the jump container lives at most, whatever happens to opskit. */
const JUMP_SECONDS = 6 * 3600;
export const JUMP_ROLE = 'backup-jump';

/** Pure: the container's create body. */
export function jumpSpec(input: { image: string; network: string; project: string }) {
  return {
    Image: input.image,
    Entrypoint: ['sleep'],
    Cmd: [String(JUMP_SECONDS)],
    Labels: { 'opskit.project': input.project, 'opskit.probe': JUMP_ROLE },
    HostConfig: { NetworkMode: input.network, AutoRemove: true },
  };
}

export async function overlayReach(ctx: Context, url: Sensitive): Promise<PgReach & { dumper: Dumper }> {
  const config = ctx.loaded!.config;
  const project = config.compose.project ?? config.project.name!;
  const service = swarmServiceName(project, config.database.service);
  const { swarm } = await openSwarm(config, ctx.loaded!.env);
  const db = await swarm.service(service);
  if (!db)
    throw new OperationError('E_DB_DOWN', `backup.via compose on Swarm: there is no ${service} service`, {
      hint: 'deploy the platform first (opskit deploy)',
    });
  const network = `${project}_default`;
  const docker: DockerAdapter = await ctx.docker(config.docker.host ?? ctx.loaded!.env.DOCKER_HOST);
  for (const stale of await docker.listContainers({ 'opskit.project': project, 'opskit.probe': JUMP_ROLE }))
    await docker.removeContainer(stale.id).catch(() => {});
  const image = db.spec.TaskTemplate.ContainerSpec.Image;
  const name = `opskit-backup-${project}-${ctx.system.pid}`;
  const id = await docker.runContainer(name, jumpSpec({ image, network, project })).catch((error: Error) => {
    throw new ConfigError(`cannot start a container on ${network} (${image}): ${error.message}`, {
      code: 'E_OVERLAY',
      hint: `the network must be attachable (opskit deploy makes it so) and the manager must be able to run ${image}`,
    });
  });
  const envOf = (database?: string) => {
    const env = pgEnv(url, database);
    return Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('PG'))) as Record<string, string>;
  };
  const query = async (sql: string, database?: string) => {
    const r = await docker.execStream(id, ['psql', '-X', '--csv', '-v', 'ON_ERROR_STOP=1', '-c', sql], envOf(database));
    let out = '';
    r.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const exit = await r.done;
    if (exit.exitCode !== 0)
      throw new Error(exit.stderr.trim().split('\n').slice(-3).join(' ') || `psql exited ${exit.exitCode}`);
    return readCsv(out);
  };
  const where = `from a container on ${network} (${service})`;
  return {
    where,
    session: (database, fn) => fn((sql) => query(sql, database)),
    async restore(t: Target, file: string, database?: string) {
      const r = await docker.execStdin(id, psqlRestoreArgv('psql'), envOf(database), t.store.gunzipStream(file));
      if (r.exitCode !== 0)
        throw new OperationError(
          'E_RESTORE_FAILED',
          `psql failed (exit ${r.exitCode}); the restore was rolled back: ${ctx.redactor.scrub(r.stderr.trim().split('\n').slice(-5).join('\n'))}`,
        );
    },
    dumper: {
      where,
      async serverVersion() {
        const rows = await query('SHOW server_version');
        return String(rows[0]?.server_version ?? '');
      },
      async dump() {
        // The image's own pg_dump (backup.pgDump names the host's).
        const r = await docker.execStream(id, ['pg_dump', '--no-password', '--no-owner', '--no-acl'], envOf());
        return {
          stdout: r.stdout as NodeJS.ReadableStream & import('node:stream').Readable,
          done: r.done.then((d) => ({ ...d, notFound: false })),
          kill: () => {},
        };
      },
    },
    close: () => docker.removeContainer(id).catch(() => {}),
  };
}
