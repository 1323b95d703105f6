import path from 'node:path';
import type { ChalkInstance } from 'chalk';
import { type ComposeTarget, detectComposeCached, pickServiceContainer, serviceLabels } from '../adapters/compose.js';
import type { DockerAdapter } from '../adapters/docker.js';
import { ConfigError, OperationError, UsageError } from '../errors.js';
import type { PlannedStep } from '../output/plan.js';
import type { Engine } from '../platform/engine/engine.js';
import { openEngine } from '../platform/engine/open.js';
import { type NginxOps, nginxOps, renderLiveUpstream } from '../platform/nginx.js';
import { healthProbe, probeContainerHealth } from '../platform/probe.js';
import { type Relays, relays } from '../platform/relay.js';
import { type ImageBuild, resolveImageRef } from '../platform/release.js';
import { type LiveSocket, liveServer, liveSocket, socketName } from '../platform/sockets.js';
import { readState, type State, writeState } from '../platform/state.js';
import { sameNginxConfig } from '../platform/upstream.js';
import { type Context, projectPath } from '../runtime/context.js';
import { formatDuration } from '../runtime/duration.js';
import { pollUntil } from '../runtime/poll.js';
import { type Color, type ColorSlot, type CutoverState, colorContainerName, currentColors } from './plan.js';
import { answeredColor, answersThroughSocket, verifyThroughFront } from './verify.js';

/**
 * The steps every switch is made of, shared by cutover, rollback and finalize: the runtime they work in,
 * a colour started and gated on its health, the switch itself with its verification through nginx, the
 * state saved, a colour retired.
 */
export interface SwitchResult {
  action: 'cutover' | 'rollback' | 'finalize' | 'none';
  changed: boolean;
  from: Color | null;
  to: Color | null;
  image: string | null;
  container: string | null;
  /** Upstream swap, reload and verification through nginx. */
  switchMs: number | null;
  durationMs: number;
  restarted?: boolean;
  migrations?: string[];
  oldColor?: { color: Color; image: string; state: 'warm' | 'stopped'; stopAfter: string | null } | null;
  plan?: PlannedStep[];
}

export interface Runtime {
  ctx: Context;
  docker: DockerAdapter;
  target: ComposeTarget;
  env: Record<string, string>;
  /** The engine that starts the colours and runs the migrations. */
  engine: Engine;
  stateFile: string;
  state: State;
  colors: CutoverState;
  nginx: NginxOps;
  /** Set when cutover.switch is socket or relay. */
  sockets: LiveSocket | undefined;
  /** Set when cutover.switch is relay: the relays that open each web container's socket. */
  relay: Relays | undefined;
}

export async function setup(
  ctx: Context,
  options: { requireColors: boolean },
): Promise<
  Omit<Runtime, 'colors' | 'nginx' | 'sockets' | 'relay'> & {
    colors: CutoverState | undefined;
    nginx: () => Promise<NginxOps>;
  }
> {
  const loaded = ctx.loaded!;
  const config = loaded.config;
  // Swarm has its own runtime (swarm-run.ts): its colours are services, not containers of this host.
  if (config.engine === 'swarm')
    throw new UsageError('this runs blue-green on one host; engine: swarm switches through swarm-run.ts', {
      code: 'E_NOT_ON_SWARM',
    });
  const target = await composeTarget(ctx);
  const project = target.project;
  const docker = await ctx.docker(config.docker.host ?? loaded.env.DOCKER_HOST);
  const stateFile = projectPath(ctx, path.join(config.paths.state, 'state.json'));
  const state = await readState(ctx.fs, stateFile);
  const web = pickServiceContainer(await docker.listContainers(serviceLabels(project, config.deploy.webService)));
  const colors = currentColors(state, config.deploy.webService, web);
  if (!colors && options.requireColors) {
    throw new UsageError('nothing is deployed here yet: there is no live colour to switch from', {
      code: 'E_NOTHING_DEPLOYED',
      hint: 'run `opskit deploy` first',
    });
  }
  let ops: NginxOps | undefined;
  const env = { ...loaded.env };
  return {
    ctx,
    docker,
    target,
    env,
    engine: await openEngine({ ctx, config, target, docker, env }),
    stateFile,
    state,
    colors,
    nginx: async () => (ops ??= await nginxOps(ctx, config, project, docker)),
  };
}

/** The compose file (it must exist) and the compose CLI that reads it: what both engines' runtimes start from. */
export async function composeTarget(ctx: Context): Promise<ComposeTarget> {
  const { config, env } = ctx.loaded!;
  const project = config.compose.project ?? config.project.name!;
  const composeFile = projectPath(ctx, config.compose.file);
  if (!(await ctx.fs.exists(composeFile)))
    throw new ConfigError(`compose.file: ${config.compose.file} not found`, { code: 'E_COMPOSE_FILE_NOT_FOUND' });
  const cli = await detectComposeCached(
    ctx.exec,
    ctx.fs,
    projectPath(ctx, path.join(config.paths.state, 'compose-cli.json')),
    config.compose.cli,
    { timeoutMs: 15_000, env, write: !ctx.globals.dryRun },
  );
  if (!cli)
    throw new ConfigError(`no compose CLI found (compose.cli: ${config.compose.cli})`, { code: 'E_NO_COMPOSE' });
  return { cli, project, composeFile };
}

/** The image a cutover releases: built now (--build), or named (--image, --tag); it must exist on the Engine. */
export async function releaseImage(
  ctx: Context,
  docker: DockerAdapter,
  input: { image?: string | undefined; tag?: string | undefined; build?: ImageBuild | undefined },
): Promise<{ image: string; imageId: string }> {
  const config = ctx.loaded!.config;
  const build = input.build ? await input.build(docker) : undefined;
  const image = build ? build.tags[0]! : resolveImageRef(config.image.name ?? config.project.name!, input);
  const info = await docker.inspectImage(image);
  if (!info)
    throw new UsageError(`image ${image} not found on the Docker engine`, {
      code: 'E_IMAGE_NOT_FOUND',
      hint: 'build it first (`opskit build`), pass --build, or name another with --image/--tag',
    });
  return { image, imageId: info.id };
}

/**
 * The runtime of a switch, from what `setup` read: nginx's operations, and the sockets and relays of the
 * switch mode.
 */
export async function runtimeOf(base: Awaited<ReturnType<typeof setup>>, colors: CutoverState): Promise<Runtime> {
  const { ctx, docker, target, env } = base;
  const config = ctx.loaded!.config;
  const mode = config.cutover.switch;
  return {
    ...base,
    colors,
    nginx: await base.nginx(),
    sockets: mode === 'reload' ? undefined : liveSocket(ctx.fs, ctx.clock, projectPath(ctx, config.paths.sockets)),
    relay: mode === 'relay' ? relays(ctx, config, target.project, docker, { target, env }) : undefined,
  };
}

export async function diagnostics(rt: Runtime, container: string): Promise<string> {
  const info = await rt.docker.inspectContainer(container);
  if (!info) return `--- ${container}: gone ---`;
  const logs = (await rt.docker.containerLogs(info.id, 30).catch(() => '')).trimEnd();
  const health = info.healthLog
    .slice(-3)
    .map((h) => `  ${h.end} exit ${h.exitCode}: ${h.output.trim().split('\n').slice(-2).join(' | ')}`);
  return [
    `--- ${container}: last 30 log lines ---`,
    logs || '(no output)',
    ...(health.length ? [`--- ${container}: last health checks ---`, ...health] : []),
  ].join('\n');
}

/** Starts a colour's container from the web service's definition (the engine's colours), restartable. */
export async function startColor(rt: Runtime, color: Color, image: string): Promise<{ name: string; id: string }> {
  const config = rt.ctx.loaded!.config;
  const name = colorContainerName(
    rt.target.project,
    config.deploy.webService,
    color,
    rt.ctx.clock.now().getTime().toString(36),
  );
  await rt.sockets?.prepare();
  const id = await rt.engine.colors!.start(name, color, config.deploy.webService, image);
  return { name, id };
}

/** The health gate: the colour's own address, not through nginx; it must say it is that colour when it says any. */
export async function gate(rt: Runtime, container: string, color: Color, timeoutMs: number): Promise<number> {
  const config = rt.ctx.loaded!.config;
  const started = rt.ctx.clock.monotonicMs();
  const poll = await pollUntil(rt.ctx.clock, { timeoutMs, initialDelayMs: 100, maxDelayMs: 500 }, async () => {
    const probe = await probeContainerHealth(rt.ctx, await rt.docker.inspectContainer(container), healthProbe(config));
    if (!probe.ok) return { done: false, last: probe.last };
    const said = probe.response && answeredColor(probe.response);
    return said === undefined || said === color
      ? { done: true, value: true }
      : { done: false, last: `it says it is ${said}` };
  });
  if (!poll.ok)
    throw new OperationError(
      'E_COLOR_UNHEALTHY',
      `${color} did not pass its health check within ${formatDuration(timeoutMs)} (last: ${poll.last})\n${await diagnostics(rt, container)}`,
      { hint: 'the live colour was not touched; see the logs above' },
    );
  return rt.ctx.clock.monotonicMs() - started;
}

/**
 * The switch. Socket mode: re-point `live.sock` at the new colour's socket (atomic rename, no reload),
 * reloading only when the rendered upstream differs from the live one (its first use, or a changed
 * template), after `nginx -t` on a copy beside the live files. Reload mode: render the upstream for the
 * colour, `nginx -t` it, swap the file atomically, reload. Both then verify through nginx that answers
 * come from the new colour, and switch back when they do not.
 */
export async function switchTo(rt: Runtime, color: Color, slot: ColorSlot): Promise<number> {
  const config = rt.ctx.loaded!.config;
  const sockets = rt.sockets;
  const server = sockets ? liveServer(config, sockets.dir) : `${slot.host}:${config.deploy.healthPort}`;
  const candidate = await renderLiveUpstream(rt.ctx, config, { server, color, image: slot.image });
  const previous = await rt.nginx.current();
  const reload = !sockets || previous === undefined || !sameNginxConfig(candidate, previous);
  if (reload) {
    const check = await rt.nginx.check(candidate);
    if (!check.ok) {
      throw new OperationError(
        'E_NGINX_CHECK',
        `nginx -t rejected the new upstream; the live config is untouched:\n${check.output}`,
        { hint: 'fix nginx.upstreamTemplate (or nginx.conf)' },
      );
    }
  }
  if (sockets) {
    await sockets.waitFor(slot.container!, 10_000);
    await answersThroughSocket(rt.ctx, path.join(sockets.dir, socketName(slot.container!)), color);
  }
  const previousLink = await sockets?.current();
  const undo = async () => {
    if (sockets && previousLink) await sockets.point(previousLink);
    if (reload && previous !== undefined) {
      await rt.nginx.install(previous);
      await rt.nginx.reload();
    }
  };
  const started = rt.ctx.clock.monotonicMs();
  if (sockets) await sockets.point(socketName(slot.container!));
  if (reload) {
    await rt.nginx.install(candidate);
    try {
      await rt.nginx.reload();
    } catch (error) {
      if (previous !== undefined) await rt.nginx.install(previous);
      if (sockets && previousLink) await sockets.point(previousLink);
      throw error;
    }
  }
  const base = await rt.nginx.baseUrl();
  await verifyThroughFront(rt.ctx, base, color, undo);
  return rt.ctx.clock.monotonicMs() - started;
}

/** A detached `opskit cutover --finalize --if-due` that stops the old colour when --keep-old runs out. */
export async function scheduleFinalize(ctx: Context, at: string): Promise<void> {
  const { execa } = await import('execa');
  // This same CLI as it was started (bin/opskit and its bundle, or dist/bin.js).
  const [node, self] = ctx.system.selfCommand();
  const args = [
    ...self,
    ...(ctx.globals.config ? ['-c', ctx.globals.config] : []),
    ...(ctx.globals.env ? ['-e', ctx.globals.env] : []),
    'cutover',
    '--finalize',
    '--if-due',
    at,
    '--quiet',
    '--lock-wait',
    '5m',
  ];
  const child = execa(node, args, {
    cwd: ctx.loaded!.root,
    detached: true,
    stdio: 'ignore',
    cleanup: false,
    reject: false,
  });
  child.unref();
}

export async function saveColors(rt: Runtime, colors: CutoverState): Promise<void> {
  await writeState(rt.ctx.fs, rt.stateFile, { ...rt.state, cutover: colors });
  rt.state = { ...rt.state, cutover: colors };
  rt.colors = colors;
}

/**
 * Stops a colour that is no longer live: gracefully first (gunicorn finishes what nginx's draining old
 * workers still send it), then removes it.
 */
export async function retire(rt: Runtime, container: string): Promise<void> {
  await rt.docker.stopContainer(container, 30).catch(() => {});
  await rt.docker.removeContainer(container);
  await rt.relay?.remove(container);
  await rt.sockets?.forget(container);
}

export function renderSwitch(result: SwitchResult, colour: ChalkInstance): string {
  if (result.plan)
    return `would ${result.action} from ${result.from} to ${result.to} (${result.image}); the steps are listed above`;
  if (result.action === 'none')
    return result.image ? `${result.image} is already live on ${result.from}: nothing changed` : 'nothing to do';
  if (result.action === 'finalize')
    return result.changed
      ? `stopped the old colour ${result.oldColor?.color} (${result.image})`
      : 'no old colour is running';
  return [
    `${colour.green(result.action === 'cutover' ? 'cut over' : 'rolled back')} ${result.from} -> ${colour.bold(result.to ?? '')} (${result.image}) in ${formatDuration(result.durationMs)}; the switch took ${formatDuration(result.switchMs ?? 0)}`,
    ...(result.restarted ? [`  ${result.to} had been stopped: started again from its image`] : []),
    ...(result.migrations
      ? [`  migrations: ${result.migrations.length ? result.migrations.join(', ') : 'none pending'}`]
      : []),
    ...(result.oldColor
      ? [
          `  ${result.oldColor.color} (${result.oldColor.image}) stays warm${result.oldColor.stopAfter ? ` until ${result.oldColor.stopAfter}` : ''}: \`opskit rollback\` switches back in under a second; \`opskit cutover --finalize\` stops it`,
        ]
      : []),
  ].join('\n');
}
