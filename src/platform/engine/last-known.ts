import path from 'node:path';
import type { DockerAdapter } from '../../adapters/docker.js';
import type { Config } from '../../config/schema.js';
import type { Context } from '../../runtime/context.js';
import { liveSocket } from '../sockets.js';
import type { ColorName, Engine } from './engine.js';
import { colorService, colorSocket, LAST_KNOWN_CONF, lastKnownConfig } from './swarm-colors.js';
import { swarmServiceName } from './swarm-spec.js';

/** Where the edge nginx sees the sockets directory (the swarm compose file mounts run/sockets there). */
export const EDGE_SOCKET_DIR = '/run/opskit';

export interface LastKnownResult {
  /** Each colour's task addresses written to the fallback. */
  tasks: Record<ColorName, string[]>;
  /** Whether the edge's fallback nginx runs the new file (false: no edge here yet, or it failed; see warnings). */
  loaded: boolean;
}

/**
 * Writes the edge's "last known" fallback (each colour's running tasks, as the Engine lists them now) into
 * the sockets directory and has the edge's fallback nginx load it: a reload of that nginx alone, or its
 * start if the edge runs none (an edge started before the file existed). The edge's own nginx, and every
 * client connection, is untouched. Failing to load it is a warning, not a failed switch: the fallback
 * only matters while the node's Engine is down.
 */
export async function refreshLastKnown(input: {
  ctx: Context;
  engine: Engine;
  docker: DockerAdapter;
  webService: string;
  port: number;
  /** The sockets directory on this machine. */
  dir: string;
  /** The edge nginx's container here, when it runs. */
  edge: string | undefined;
}): Promise<LastKnownResult> {
  const { ctx, engine } = input;
  const addresses = async (color: ColorName) =>
    (await engine.instances(colorService(input.webService, color)).catch(() => []))
      .filter((i) => i.ready && i.address)
      .map((i) => i.address!);
  const [blue, green] = await Promise.all([addresses('blue'), addresses('green')]);
  const tasks = { blue, green };
  const text = lastKnownConfig({
    dir: EDGE_SOCKET_DIR,
    port: input.port,
    tasks,
    written: ctx.clock.now().toISOString(),
  });
  await ctx.fs.writeFileAtomic(path.join(input.dir, LAST_KNOWN_CONF), text, { mode: 0o644 });
  if (!input.edge) return { tasks, loaded: false };
  const conf = `${EDGE_SOCKET_DIR}/${LAST_KNOWN_CONF}`;
  const reload = await input.docker.exec(input.edge, ['nginx', '-c', conf, '-s', 'reload']);
  if (reload.exitCode === 0) return { tasks, loaded: true };
  // No fallback nginx runs in this edge yet (its pid file is missing): start it.
  const start = /pid|No such file|not running/i.test(reload.output)
    ? await input.docker.exec(input.edge, ['nginx', '-c', conf])
    : reload;
  if (start.exitCode === 0) return { tasks, loaded: true };
  ctx.reporter.warn(
    `the edge's last-known fallback did not load ${conf}: ${start.output.trim().split('\n').pop() ?? ''} ` +
      "(it serves only while this node's Engine is down)",
  );
  return { tasks, loaded: false };
}

/**
 * The deploy's step for the edge: the `live.sock` link to blue.sock unless there is one (a cutover's choice
 * stays), and the edge's fallback written (loaded now by an edge that runs here; one that starts later
 * loads it itself).
 */
export async function prepareEdge(input: {
  ctx: Context;
  engine: Engine;
  docker: DockerAdapter;
  project: string;
  config: Config;
  dir: string;
}): Promise<void> {
  const { ctx, config, docker } = input;
  const edge = liveSocket(ctx.fs, ctx.clock, input.dir);
  await edge.prepare();
  if ((await edge.current()) === undefined) await edge.point(colorSocket('blue'));
  const front = config.deploy.frontServices[0];
  const running = front
    ? (await docker.listContainers({ 'com.docker.swarm.service.name': swarmServiceName(input.project, front) })).find(
        (c) => c.running,
      )
    : undefined;
  await refreshLastKnown({
    ctx,
    engine: input.engine,
    docker,
    webService: config.deploy.webService,
    port: config.deploy.healthPort,
    dir: input.dir,
    edge: running?.id,
  });
}
