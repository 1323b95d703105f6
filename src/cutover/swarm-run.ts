import path from 'node:path';
import type { ComposeTarget } from '../adapters/compose.js';
import type { DockerAdapter } from '../adapters/docker.js';
import type { ServiceSpec, SwarmAdapter, SwarmTask } from '../adapters/swarm.js';
import type { Config } from '../config/schema.js';
import { ConfigError, OperationError, UsageError } from '../errors.js';
import type { Engine } from '../platform/engine/engine.js';
import { EDGE_SOCKET_DIR, type LastKnownResult, refreshLastKnown } from '../platform/engine/last-known.js';
import { loadComposeModel, openSwarmEngine, registryAuth } from '../platform/engine/open.js';
import {
  colorService,
  colorServiceName,
  colorSocket,
  colorSpec,
  LAST_KNOWN_CONF,
  lastKnownTasks,
  parseCurlInclude,
} from '../platform/engine/swarm-colors.js';
import { serviceSpec, swarmServiceName } from '../platform/engine/swarm-spec.js';
import { type LiveSocket, liveSocket } from '../platform/sockets.js';
import { readState, type State, writeState } from '../platform/state.js';
import { type Context, projectPath } from '../runtime/context.js';
import { formatDuration } from '../runtime/duration.js';
import { pollUntil } from '../runtime/poll.js';
import { type Color, type CutoverState, currentColors } from './plan.js';
import { composeTarget } from './switch.js';
import { answeredColor, answersThroughSocket, verifyThroughFront } from './verify.js';

/**
 * The runtime of blue-green on Swarm and its steps: a colour's service started (created, or replaced in
 * place: it is idle), gated on every task, parked; the switch through the edge's colour sockets. The
 * flows (cutover, rollback, finalize) are in swarm.ts; the pure rules in platform/engine/swarm-colors.ts.
 */
export interface SwarmRun {
  ctx: Context;
  config: Config;
  project: string;
  web: string;
  swarm: SwarmAdapter;
  engine: Engine;
  docker: DockerAdapter;
  target: ComposeTarget;
  env: Record<string, string>;
  sockets: LiveSocket;
  stateFile: string;
  state: State;
  colors: CutoverState | undefined;
}

export async function swarmSetup(ctx: Context): Promise<SwarmRun> {
  const { config, env } = ctx.loaded!;
  const target = await composeTarget(ctx);
  const project = target.project;
  const docker = await ctx.docker(config.docker.host ?? env.DOCKER_HOST);
  const { engine, swarm } = await openSwarmEngine({ ctx, config, target, docker, env: { ...env } });
  const stateFile = projectPath(ctx, path.join(config.paths.state, 'state.json'));
  const state = await readState(ctx.fs, stateFile);
  const web = config.deploy.webService;
  const service = state.cutover ? undefined : await swarm.service(swarmServiceName(project, web));
  const colors = currentColors(state, web, service ? { id: service.id } : undefined);
  return {
    ctx,
    config,
    project,
    web,
    swarm,
    engine,
    docker,
    target,
    env: { ...env },
    sockets: liveSocket(ctx.fs, ctx.clock, projectPath(ctx, config.paths.sockets)),
    stateFile,
    state,
    colors,
  };
}

export function requireColors(run: SwarmRun): CutoverState {
  if (!run.colors)
    throw new UsageError('nothing is deployed here yet: there is no live colour to switch from', {
      code: 'E_NOTHING_DEPLOYED',
      hint: 'run `opskit deploy` first',
    });
  return run.colors;
}

export async function saveSwarmColors(run: SwarmRun, colors: CutoverState): Promise<void> {
  await writeState(run.ctx.fs, run.stateFile, { ...run.state, cutover: colors });
  run.state = { ...run.state, cutover: colors };
  run.colors = colors;
}

/** The front's address (nginx.url): where the switch is verified. */
export function frontUrl(run: SwarmRun): string {
  const url = run.config.nginx.url;
  if (!url)
    throw new ConfigError('nginx.url: on Swarm, set the address clients reach the edge nginx on', {
      code: 'E_NO_FRONT_URL',
      hint: 'e.g. nginx.url: http://<edge node address>:8080 (opskit init --engine swarm writes it)',
    });
  return url.replace(/\/$/, '');
}

/**
 * The edge nginx's container on this manager. It must run here: it shares run/sockets with opskit (the
 * colour sockets and the live.sock link), and the gate asks each task from inside it.
 */
export async function edgeContainer(run: SwarmRun): Promise<string> {
  const front = run.config.deploy.frontServices[0];
  if (!front)
    throw new ConfigError('deploy.frontServices: blue-green on Swarm needs the edge nginx service', {
      code: 'E_NO_EDGE',
    });
  const name = swarmServiceName(run.project, front);
  const service = await run.swarm.service(name);
  const mounts = service?.spec.TaskTemplate.ContainerSpec.Mounts ?? [];
  if (service && !mounts.some((m) => m.Source === run.sockets.dir && m.Target === EDGE_SOCKET_DIR))
    throw new ConfigError(`${name} does not mount ${run.sockets.dir} at ${EDGE_SOCKET_DIR}`, {
      code: 'E_EDGE_SOCKETS',
      hint: `add - ../${run.config.paths.sockets}:${EDGE_SOCKET_DIR} to its volumes (opskit init --example --engine swarm writes it) and deploy`,
    });
  const containers = await run.docker.listContainers({ 'com.docker.swarm.service.name': name });
  const running = containers.find((c) => c.running);
  if (!running)
    throw new ConfigError(`the edge nginx (${name}) has no running task on this manager (${run.swarm.endpoint})`, {
      code: 'E_EDGE_NOT_HERE',
      hint: 'blue-green switches a link the edge reads from run/sockets: place it on the manager opskit talks to (a node label and node.role == manager)',
    });
  return running.id;
}

/** The edge's last-known fallback rewritten from the colours' running tasks, and loaded by the edge. */
export async function refreshEdgeFallback(run: SwarmRun): Promise<LastKnownResult> {
  return refreshLastKnown({
    ctx: run.ctx,
    engine: run.engine,
    docker: run.docker,
    webService: run.web,
    port: run.config.deploy.healthPort,
    dir: run.sockets.dir,
    edge: await edgeContainer(run),
  });
}

/** Whether the edge's fallback lists exactly these running tasks of the colour (read from its file). */
export async function edgeFallbackKnows(
  run: SwarmRun,
  color: Color,
  tasks: readonly Pick<SwarmTask, 'state' | 'addresses'>[],
): Promise<boolean> {
  const known = lastKnownTasks(await run.ctx.fs.readText(path.join(run.sockets.dir, LAST_KNOWN_CONF)))[color];
  const now = tasks
    .filter((t) => t.state === 'running' && t.addresses[0])
    .map((t) => t.addresses[0]!)
    .sort();
  return known.length > 0 && known.join(' ') === now.join(' ');
}

/** Pure: the `curl` the gate runs inside the edge for one task (argv, no shell). */
export function taskProbeArgv(address: string, port: number, pathname: string): string[] {
  return ['curl', '-sS', '-i', '--max-time', '2', `http://${address}:${port}${pathname}`];
}

/**
 * Starts a colour: its service replaced in place from the web's definition with `ref` (or created), every
 * task at once. Returns how to undo it if the colour then fails its gate.
 */
export async function startColorService(
  run: SwarmRun,
  color: Color,
  ref: string,
  replicas?: number,
): Promise<{ id: string; created: boolean; undo: () => Promise<void> }> {
  const model = await loadComposeModel(run.ctx, run.target, { ...run.env, WEB_IMAGE: ref });
  const spec: ServiceSpec = colorSpec(serviceSpec(model, run.project, run.web, ref), {
    project: run.project,
    webService: run.web,
    color,
    ...(replicas !== undefined ? { replicas } : {}),
  });
  const auth = registryAuth(run.config);
  const existing = await run.swarm.service(spec.Name);
  if (!existing) {
    const id = await run.swarm.createService(spec, auth);
    return { id, created: true, undo: () => run.swarm.removeService(id).catch(() => {}) };
  }
  await run.swarm.updateService(existing.id, existing.version, spec, auth).catch(async (error: Error) => {
    if (!/out of sequence/.test(error.message)) throw error;
    const again = await run.swarm.service(spec.Name);
    await run.swarm.updateService(again!.id, again!.version, spec, auth);
  });
  return {
    id: existing.id,
    created: false,
    undo: async () => {
      // Back to the spec it had (the Engine keeps it): the colour it was, if a rollback wants it.
      const now = await run.swarm.service(spec.Name);
      if (now) await run.swarm.rollbackService(now.id, now.version).catch(() => {});
    },
  };
}

/** Parks a colour: its service kept (its spec, its image), no task. */
export async function parkColor(run: SwarmRun, color: Color): Promise<boolean> {
  const name = colorServiceName(run.project, run.web, color);
  const found = await run.swarm.service(name);
  if (!found || !('Replicated' in found.spec.Mode) || found.spec.Mode.Replicated.Replicas === 0) return false;
  await run.swarm.updateService(found.id, found.version, { ...found.spec, Mode: { Replicated: { Replicas: 0 } } });
  return true;
}

/**
 * The gate: every task of the colour running (its healthcheck passed), then, for an HTTP health check,
 * each task's own address on the overlay asked from inside the edge: 200, and its colour when it names one.
 */
export async function gateColor(run: SwarmRun, color: Color, timeoutMs: number): Promise<number> {
  const { ctx, config } = run;
  const started = ctx.clock.monotonicMs();
  const service = colorService(run.web, color);
  await run.engine.waitReady([service], timeoutMs);
  if (config.deploy.healthCheck !== 'http') return ctx.clock.monotonicMs() - started;
  const edge = await edgeContainer(run);
  const left = Math.max(5_000, timeoutMs - (ctx.clock.monotonicMs() - started));
  const poll = await pollUntil(ctx.clock, { timeoutMs: left, initialDelayMs: 100, maxDelayMs: 500 }, async () => {
    const tasks = (await run.engine.instances(service)).filter((t) => t.ready && t.address);
    if (tasks.length === 0) return { done: false, last: 'no running task' };
    for (const task of tasks) {
      const probe = await run.docker.exec(
        edge,
        taskProbeArgv(task.address!, config.deploy.healthPort, config.deploy.healthPath),
      );
      const r = parseCurlInclude(probe.output);
      const said = answeredColor(r);
      if (probe.exitCode !== 0 || r.status !== 200 || (said !== undefined && said !== color))
        return {
          done: false,
          last: `${task.name} (${task.address} on ${task.node}): ${probe.exitCode !== 0 ? probe.output.trim().split('\n').pop() : `HTTP ${r.status}${said ? ` from ${said}` : ''}`}`,
        };
    }
    return { done: true, value: tasks.length };
  });
  if (!poll.ok)
    throw new OperationError(
      'E_COLOR_UNHEALTHY',
      `${color} did not pass its health check on every task within ${formatDuration(timeoutMs)} (last: ${poll.last})\n${await run.engine.logs(service, 30)}`,
      { hint: 'the live colour was not touched; see the logs above' },
    );
  return ctx.clock.monotonicMs() - started;
}

/**
 * The switch on Swarm: the colour's socket on the edge must answer from that colour (nginx reaches its
 * tasks by name), then `live.sock` is renamed over to it, then answers through the front must come from
 * it; otherwise the link goes back. Returns the switch's duration (link and verification).
 */
export async function switchSwarm(run: SwarmRun, color: Color): Promise<number> {
  const { ctx } = run;
  const base = frontUrl(run);
  await answersThroughSocket(ctx, path.join(run.sockets.dir, colorSocket(color)), color);
  const previous = await run.sockets.current();
  const started = ctx.clock.monotonicMs();
  await run.sockets.point(colorSocket(color));
  await verifyThroughFront(ctx, base, color, async () => {
    if (previous) await run.sockets.point(previous);
  });
  return ctx.clock.monotonicMs() - started;
}
