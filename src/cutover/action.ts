import path from 'node:path';
import type { ChalkInstance } from 'chalk';
import {
  type ComposeTarget,
  composeArgv,
  describeCli,
  detectComposeCached,
  pickServiceContainer,
  serviceLabels,
} from '../adapters/compose.js';
import type { DockerAdapter } from '../adapters/docker.js';
import { type BuildInput, buildImage } from '../build/action.js';
import { resolveImageRef, runMigrations } from '../deploy/action.js';
import { describeProbe, healthProbe, probeContainerHealth } from '../deploy/probe.js';
import { readState, type State, writeState } from '../deploy/state.js';
import { ConfigError, OperationError, UsageError } from '../errors.js';
import { type Context, projectPath, withMutation } from '../runtime/context.js';
import { formatDuration, parseDuration } from '../runtime/duration.js';
import type { PlannedStep } from '../runtime/plan.js';
import { pollUntil } from '../runtime/poll.js';
import { type NginxOps, nginxOps, renderLiveUpstream } from './nginx.js';
import {
  type Color,
  type ColorSlot,
  type CutoverState,
  colorContainerName,
  currentColors,
  oldColorExpired,
  other,
  recordFinalize,
  recordSwitch,
  sameNginxConfig,
} from './plan.js';
import { type Relays, relays } from './relay.js';
import { type LiveSocket, liveServer, liveSocket, socketName } from './sockets.js';

export interface CutoverInput {
  image?: string | undefined;
  tag?: string | undefined;
  build?: BuildInput | undefined;
  migrate: boolean;
  healthTimeout?: string | undefined;
  keepOld?: string | undefined;
}

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

interface Runtime {
  ctx: Context;
  docker: DockerAdapter;
  target: ComposeTarget;
  env: Record<string, string>;
  stateFile: string;
  state: State;
  colors: CutoverState;
  nginx: NginxOps;
  /** Set when cutover.switch is socket or relay. */
  sockets: LiveSocket | undefined;
  /** Set when cutover.switch is relay: the relays that open each web container's socket. */
  relay: Relays | undefined;
}

async function setup(
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
  const project = config.compose.project ?? config.project.name!;
  const composeFile = projectPath(ctx, config.compose.file);
  if (!(await ctx.fs.exists(composeFile)))
    throw new ConfigError(`compose.file: ${config.compose.file} not found`, { code: 'E_COMPOSE_FILE_NOT_FOUND' });
  const cli = await detectComposeCached(
    ctx.exec,
    ctx.fs,
    projectPath(ctx, path.join(config.paths.state, 'compose-cli.json')),
    config.compose.cli,
    { timeoutMs: 15_000, env: loaded.env, write: !ctx.globals.dryRun },
  );
  if (!cli)
    throw new ConfigError(`no compose CLI found (compose.cli: ${config.compose.cli})`, { code: 'E_NO_COMPOSE' });
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
  return {
    ctx,
    docker,
    target: { cli, project, composeFile },
    env: { ...loaded.env },
    stateFile,
    state,
    colors,
    nginx: async () => (ops ??= await nginxOps(ctx, config, project, docker)),
  };
}

function relaysOf(
  ctx: Context,
  base: { docker: DockerAdapter; target: ComposeTarget; env: Record<string, string> },
): Relays | undefined {
  const config = ctx.loaded!.config;
  return config.cutover.switch === 'relay'
    ? relays(ctx, config, base.target.project, base.docker, { target: base.target, env: base.env })
    : undefined;
}

function socketsOf(ctx: Context): LiveSocket | undefined {
  const config = ctx.loaded!.config;
  return config.cutover.switch === 'reload'
    ? undefined
    : liveSocket(ctx.fs, ctx.clock, projectPath(ctx, config.paths.sockets));
}

async function diagnostics(rt: Runtime, container: string): Promise<string> {
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

/** Starts a colour's container from the web service's definition (compose run), restartable, on the project network. */
async function startColor(rt: Runtime, color: Color, image: string): Promise<{ name: string; id: string }> {
  const config = rt.ctx.loaded!.config;
  const name = colorContainerName(
    rt.target.project,
    config.deploy.webService,
    color,
    rt.ctx.clock.now().getTime().toString(36),
  );
  await rt.sockets?.prepare();
  const argv = composeArgv(rt.target, [
    'run',
    '-d',
    '--no-deps',
    '--name',
    name,
    '-e',
    `APP_COLOR=${color}`,
    '-l',
    `org.opskit.color=${color}`,
    '-l',
    'org.opskit.role=web',
    config.deploy.webService,
  ]);
  const result = await rt.ctx.exec.run(argv[0], argv[1], {
    env: { ...rt.env, WEB_IMAGE: image },
    timeoutMs: 120_000,
    cwd: path.dirname(rt.target.composeFile),
  });
  if (result.failed)
    throw new OperationError(
      'E_COMPOSE_FAILED',
      `could not start ${color} (${[argv[0], ...argv[1]].join(' ')}): ${`${result.stderr}\n${result.stdout}`.trim().split('\n').slice(-10).join('\n')}`,
    );
  const info = await rt.docker.inspectContainer(name);
  if (!info) throw new OperationError('E_COMPOSE_FAILED', `compose did not create ${name}`);
  // compose gives one-off containers no restart policy; a colour must survive a crash or a reboot.
  await rt.docker.setRestartPolicy(info.id, 'unless-stopped');
  return { name, id: info.id };
}

/** The health gate: the colour's own address, not through nginx; it must say it is that colour when it says any. */
async function gate(rt: Runtime, container: string, color: Color, timeoutMs: number): Promise<number> {
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

/** The colour an answer came from: the X-App-Color header, or the JSON body's `color`. */
export function answeredColor(response: { headers: Record<string, string>; body: string }): string | undefined {
  const header = response.headers['x-app-color'];
  if (header) return header;
  try {
    const color = (JSON.parse(response.body) as { color?: unknown }).color;
    return typeof color === 'string' ? color : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The switch. Socket mode: re-point `live.sock` at the new colour's socket (atomic rename, no reload),
 * reloading only when the rendered upstream differs from the live one (its first use, or a changed
 * template), after `nginx -t` on a copy beside the live files. Reload mode: render the upstream for the
 * colour, `nginx -t` it, swap the file atomically, reload. Both then verify through nginx that answers
 * come from the new colour, and switch back when they do not.
 */
async function switchTo(rt: Runtime, color: Color, slot: ColorSlot): Promise<number> {
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
  if (sockets) await sockets.waitFor(slot.container!, 10_000);
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
  const verifyMs = parseDuration(config.cutover.verifyTimeout, 'cutover.verifyTimeout');
  const tcpOnly = config.deploy.healthCheck === 'tcp';
  const verified = await pollUntil(
    rt.ctx.clock,
    { timeoutMs: verifyMs, initialDelayMs: 20, maxDelayMs: 200 },
    async () => {
      try {
        const r = await rt.ctx.http.request(`${base}${config.cutover.verifyPath}`, { timeoutMs: 2000 });
        const said = answeredColor(r);
        if (r.status === 200 && said === color) return { done: true, value: 'named' as const };
        // An app checked by a TCP connect may have no path that names its colour: any answer but a 5xx.
        if (tcpOnly && said === undefined && r.status < 500) return { done: true, value: 'unnamed' as const };
        return { done: false, last: `HTTP ${r.status} from ${said ?? 'an unnamed colour'}` };
      } catch (error) {
        return { done: false, last: (error as Error).message };
      }
    },
  );
  if (!verified.ok) {
    await undo();
    throw new OperationError(
      'E_VERIFY_FAILED',
      `after the switch, answers through nginx did not come from ${color} within ${formatDuration(verifyMs)} (last: ${verified.last}); switched back`,
      {
        hint: `does ${config.cutover.verifyPath} report its colour (JSON "color" or X-App-Color)? is nginx.url right?`,
      },
    );
  }
  if (verified.value === 'unnamed') {
    rt.ctx.reporter.info(
      `${config.cutover.verifyPath} through nginx names no colour: verified that nginx answers (HTTP < 500), not which colour does (deploy.healthCheck: tcp)`,
    );
  }
  return rt.ctx.clock.monotonicMs() - started;
}

async function saveColors(rt: Runtime, colors: CutoverState): Promise<void> {
  await writeState(rt.ctx.fs, rt.stateFile, { ...rt.state, cutover: colors });
  rt.state = { ...rt.state, cutover: colors };
  rt.colors = colors;
}

/**
 * Stops a colour that is no longer live: gracefully first (gunicorn finishes what nginx's draining old
 * workers still send it), then removes it.
 */
async function retire(rt: Runtime, container: string): Promise<void> {
  await rt.docker.stopContainer(container, 30).catch(() => {});
  await rt.docker.removeContainer(container);
  await rt.relay?.remove(container);
  await rt.sockets?.forget(container);
}

async function finalize(rt: Runtime): Promise<SwitchResult> {
  const idle = other(rt.colors.live);
  const slot = rt.colors.colors[idle];
  const started = rt.ctx.clock.monotonicMs();
  if (!slot?.container)
    return {
      action: 'finalize',
      changed: false,
      from: rt.colors.live,
      to: rt.colors.live,
      image: null,
      container: null,
      switchMs: null,
      durationMs: 0,
      oldColor: slot ? { color: idle, image: slot.image, state: 'stopped', stopAfter: null } : null,
    };
  await retire(rt, slot.container);
  await saveColors(rt, recordFinalize(rt.colors, rt.ctx.clock.now().toISOString()));
  rt.ctx.reporter.info(`stopped the old colour ${idle} (${slot.image}); \`opskit rollback\` can still start it again`);
  return {
    action: 'finalize',
    changed: true,
    from: rt.colors.live,
    to: rt.colors.live,
    image: slot.image,
    container: slot.host,
    switchMs: null,
    durationMs: Math.round(rt.ctx.clock.monotonicMs() - started),
    oldColor: { color: idle, image: slot.image, state: 'stopped', stopAfter: null },
  };
}

/** A detached `opskit cutover --finalize --if-due` that stops the old colour when --keep-old runs out. */
async function scheduleFinalize(ctx: Context, at: string): Promise<void> {
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

export async function runCutover(
  ctx: Context,
  input: CutoverInput & { finalize?: boolean; ifDue?: string | undefined },
): Promise<SwitchResult> {
  const config = ctx.loaded!.config;
  if (input.finalize && input.ifDue) {
    // The detached run that --keep-old started: wait for its deadline, then finalize if it still stands.
    const due = new Date(input.ifDue).getTime();
    if (Number.isNaN(due))
      throw new UsageError(`--if-due ${input.ifDue}: expected an ISO time`, { code: 'E_BAD_FLAG' });
    const wait = due - ctx.clock.now().getTime();
    if (wait > 0) await ctx.clock.sleep(wait);
  }
  const healthTimeoutMs = parseDuration(
    input.healthTimeout ?? config.cutover.healthTimeout,
    input.healthTimeout ? '--health-timeout' : 'cutover.healthTimeout',
  );
  const keepOld = input.keepOld ?? config.cutover.keepOld;
  const keepOldMs = keepOld ? parseDuration(keepOld, input.keepOld ? '--keep-old' : 'cutover.keepOld') : undefined;
  const base = await setup(ctx, { requireColors: true });
  const imageName = config.image.name ?? config.project.name!;

  if (ctx.globals.dryRun) {
    const colors = base.colors!;
    const idle = other(colors.live);
    const image = input.build ? (await buildImage(ctx, input.build)).tags[0]! : resolveImageRef(imageName, input);
    const name = colorContainerName(base.target.project, config.deploy.webService, idle, '<id>');
    const plan: PlannedStep[] = [
      ...(input.migrate
        ? [
            {
              kind: 'exec' as const,
              argv: [
                ...composeArgv(base.target, [
                  'run',
                  '--rm',
                  '--no-deps',
                  '-T',
                  config.deploy.webService,
                  ...config.deploy.migrateCommand,
                ]),
              ].flat(),
              description: 'the migrations, in the new image (they must work with the live colour too)',
            },
          ]
        : []),
      {
        kind: 'exec',
        argv: composeArgv(base.target, [
          'run',
          '-d',
          '--no-deps',
          '--name',
          name,
          '-e',
          `APP_COLOR=${idle}`,
          '-l',
          `org.opskit.color=${idle}`,
          '-l',
          'org.opskit.role=web',
          config.deploy.webService,
        ]).flat(),
        description: `start ${idle} with ${image} (WEB_IMAGE)`,
      },
      {
        kind: 'wait',
        what: `${name} to answer ${describeProbe(healthProbe(config))} on its own address`,
        timeoutMs: healthTimeoutMs,
        description: 'health gate',
      },
      ...(config.cutover.switch === 'relay'
        ? [
            {
              kind: 'docker' as const,
              call: 'POST /containers/create',
              options: { name: `${name}-relay`, socket: socketName('<id>') },
              description: `the relay from ${name}'s TCP port to its unix socket (nginx stream)`,
            },
          ]
        : []),
      ...(config.cutover.smoke
        ? [
            {
              kind: 'docker' as const,
              call: 'POST /containers/{name}/exec',
              options: { name, Cmd: config.cutover.smoke },
              description: 'smoke command',
            },
          ]
        : []),
      ...(config.cutover.switch !== 'reload'
        ? [
            {
              kind: 'write' as const,
              path: path.join(projectPath(ctx, config.paths.sockets), 'live.sock'),
              bytes: 0,
              overwrite: true,
              description: `link -> ${socketName('<id>')}, atomically, no reload (nginx -t and a reload first only when the upstream file would change)`,
            },
          ]
        : [
            {
              kind: 'exec' as const,
              argv: ['nginx', '-t', '-c', '<copy of nginx.conf with the new upstream>'],
              description: 'check the new upstream',
            },
            {
              kind: 'write' as const,
              path: projectPath(ctx, config.nginx.upstreamFile),
              bytes: 0,
              overwrite: true,
              description: `upstream -> ${name}:${config.deploy.healthPort}, atomically`,
            },
            {
              kind: 'exec' as const,
              argv: ['nginx', '-s', 'reload'],
              description: config.nginx.mode === 'compose' ? `in the ${config.nginx.service} container` : 'on the host',
            },
          ]),
      {
        kind: 'http',
        method: 'GET',
        url: `<nginx>${config.cutover.verifyPath}`,
        description: `until it answers from ${idle}; otherwise switch back`,
      },
      {
        kind: 'write',
        path: base.stateFile,
        bytes: 0,
        overwrite: true,
        description: `record: ${idle} live, ${colors.live} kept warm`,
      },
      ...(colors.colors[idle]?.container
        ? [
            {
              kind: 'docker' as const,
              call: 'POST /containers/{id}/stop, DELETE /containers/{id}',
              options: { id: colors.colors[idle]!.container },
              description: `retire the ${idle} container the new one replaces (SIGTERM, 30 s)`,
            },
          ]
        : []),
    ];
    for (const step of plan) ctx.reporter.dryRun(step);
    return {
      action: 'cutover',
      changed: false,
      from: colors.live,
      to: idle,
      image,
      container: name,
      switchMs: null,
      durationMs: 0,
      plan,
    };
  }

  return withMutation(ctx, 'cutover', async () => {
    const rt: Runtime = {
      ...base,
      colors: base.colors!,
      nginx: await base.nginx(),
      sockets: socketsOf(ctx),
      relay: relaysOf(ctx, base),
    };
    const started = ctx.clock.monotonicMs();
    if (input.finalize) {
      if (input.ifDue && (rt.colors.keepOldUntil !== input.ifDue || !oldColorExpired(rt.colors, ctx.clock.now()))) {
        return {
          action: 'none',
          changed: false,
          from: rt.colors.live,
          to: rt.colors.live,
          image: null,
          container: null,
          switchMs: null,
          durationMs: 0,
        };
      }
      return finalize(rt);
    }
    const build = input.build ? await buildImage(ctx, input.build, rt.docker) : undefined;
    const image = build ? build.tags[0]! : resolveImageRef(imageName, input);
    const info = await rt.docker.inspectImage(image);
    if (!info)
      throw new UsageError(`image ${image} not found on the Docker engine`, {
        code: 'E_IMAGE_NOT_FOUND',
        hint: 'build it first (`opskit build`), pass --build, or name another with --image/--tag',
      });
    const live = rt.colors.live;
    const idle = other(live);
    const liveSlot = rt.colors.colors[live]!;
    if (liveSlot.imageId === info.id) {
      ctx.reporter.info(`${image} is already live on ${live}: nothing to switch`);
      return {
        action: 'none',
        changed: false,
        from: live,
        to: live,
        image,
        container: liveSlot.host,
        switchMs: null,
        durationMs: 0,
      };
    }
    let migrations: string[] | undefined;
    if (input.migrate) {
      const step = ctx.reporter.step('run the migrations in the new image (backward compatible with the live colour)');
      migrations = await runMigrations(ctx, {
        argv: composeArgv(rt.target, [
          'run',
          '--rm',
          '--no-deps',
          '-T',
          config.deploy.webService,
          ...config.deploy.migrateCommand,
        ]),
        env: { ...rt.env, WEB_IMAGE: image },
        timeoutMs: parseDuration(config.deploy.migrateTimeout, 'deploy.migrateTimeout'),
        cwd: path.dirname(rt.target.composeFile),
        keepsServing: `switched: ${live} keeps serving`,
        webService: idle,
      });
      step.succeed(`migrations: ${migrations.length ? `applied ${migrations.join(', ')}` : 'none pending'}`);
    }
    // The idle slot's current occupant (the colour before last) stays up, a rollback target, until the switch is done.
    const old = rt.colors.colors[idle];
    let step = ctx.reporter.step(`start ${idle} with ${image}`);
    const started2 = await startColor(rt, idle, image);
    try {
      step.succeed(`started ${started2.name}`);
      step = ctx.reporter.step(`gate ${idle} on ${describeProbe(healthProbe(config))}`);
      const healthMs = await gate(rt, started2.name, idle, healthTimeoutMs);
      step.succeed(
        `${idle} is healthy (${formatDuration(healthMs)}${config.deploy.healthCheck === 'tcp' ? ': it accepts TCP connections; its answers are not checked' : ''})`,
      );
      if (rt.relay) {
        step = ctx.reporter.step(`open ${idle}'s relay (TCP port ${config.deploy.healthPort} to its unix socket)`);
        await rt.relay.start((await rt.docker.inspectContainer(started2.id))!);
        step.succeed(`${idle}'s relay is listening`);
      }
      if (config.cutover.smoke) {
        step = ctx.reporter.step(`smoke: ${config.cutover.smoke.join(' ')}`);
        const smoke = await rt.docker.exec(started2.id, config.cutover.smoke);
        if (smoke.exitCode !== 0)
          throw new OperationError(
            'E_SMOKE_FAILED',
            `the smoke command ${config.cutover.smoke.join(' ')} failed (exit ${smoke.exitCode}) in ${idle}; ${live} keeps serving\n${smoke.output.trim().split('\n').slice(-30).join('\n')}`,
          );
        step.succeed('smoke passed');
      }
      step = ctx.reporter.step(`switch nginx to ${idle}`);
      const slot: ColorSlot = {
        image,
        imageId: info.id,
        host: started2.name,
        container: started2.id,
        since: ctx.clock.now().toISOString(),
        managedBy: 'opskit',
      };
      const switchMs = await switchTo(rt, idle, slot);
      step.succeed(`nginx serves ${idle} (switch ${formatDuration(switchMs)})`);
      const stopAfter = keepOldMs !== undefined ? new Date(ctx.clock.now().getTime() + keepOldMs).toISOString() : null;
      await saveColors(
        rt,
        recordSwitch(rt.colors, {
          action: 'cutover',
          to: idle,
          slot,
          at: ctx.clock.now().toISOString(),
          switchMs,
          keepOldUntil: stopAfter,
        }),
      );
      if (old?.container && old.container !== started2.id) await retire(rt, old.container);
      if (stopAfter) await scheduleFinalize(ctx, stopAfter);
      return {
        action: 'cutover',
        changed: true,
        from: live,
        to: idle,
        image,
        container: started2.name,
        switchMs: Math.round(switchMs),
        durationMs: Math.round(ctx.clock.monotonicMs() - started),
        ...(migrations ? { migrations } : {}),
        oldColor: { color: live, image: liveSlot.image, state: 'warm', stopAfter },
      };
    } catch (error) {
      step.fail();
      ctx.reporter.error(await diagnostics(rt, started2.name));
      await rt.docker.removeContainer(started2.id);
      await rt.relay?.remove(started2.id);
      await rt.sockets?.forget(started2.id);
      throw error;
    }
  });
}

export async function runRollback(ctx: Context, input: { healthTimeout?: string | undefined }): Promise<SwitchResult> {
  const config = ctx.loaded!.config;
  const base = await setup(ctx, { requireColors: false });
  const colors = base.colors;
  const target = colors ? other(colors.live) : undefined;
  const slot = target ? colors!.colors[target] : undefined;
  if (!colors || !target || !slot) {
    throw new OperationError('E_NOTHING_TO_ROLL_BACK', 'nothing to roll back to: no previous colour is recorded', {
      hint: 'a rollback needs an earlier `opskit cutover`',
    });
  }
  if (ctx.globals.dryRun) {
    const plan: PlannedStep[] = [
      {
        kind: 'http',
        method: 'GET',
        url: `http://${slot.host}:${config.deploy.healthPort}${config.deploy.healthPath}`,
        description: `${target} (${slot.image}) must be healthy; started again from its image when stopped`,
      },
      ...(config.cutover.switch !== 'reload'
        ? [
            {
              kind: 'write' as const,
              path: path.join(projectPath(ctx, config.paths.sockets), 'live.sock'),
              bytes: 0,
              overwrite: true,
              description: `link -> ${slot.host}'s socket, atomically, no reload; then verify answers come from ${target}`,
            },
          ]
        : [
            {
              kind: 'write' as const,
              path: projectPath(ctx, config.nginx.upstreamFile),
              bytes: 0,
              overwrite: true,
              description: `upstream -> ${slot.host}, after nginx -t`,
            },
            {
              kind: 'exec' as const,
              argv: ['nginx', '-s', 'reload'],
              description: `then verify answers come from ${target}`,
            },
          ]),
    ];
    for (const step of plan) ctx.reporter.dryRun(step);
    return {
      action: 'rollback',
      changed: false,
      from: colors.live,
      to: target,
      image: slot.image,
      container: slot.host,
      switchMs: null,
      durationMs: 0,
      plan,
    };
  }
  return withMutation(ctx, 'rollback', async () => {
    const rt: Runtime = {
      ...base,
      colors,
      nginx: await base.nginx(),
      sockets: socketsOf(ctx),
      relay: relaysOf(ctx, base),
    };
    const started = ctx.clock.monotonicMs();
    const from = colors.live;
    const info = slot.container ? await rt.docker.inspectContainer(slot.container) : undefined;
    let current = slot;
    let restarted = false;
    if (info?.running) {
      // Warm: one quick look at its health, then the switch (its relay opened again if it is gone).
      await gate(rt, info.id, target, 2000);
      await rt.relay?.ensure(info);
    } else {
      const step = ctx.reporter.step(`${target} is stopped: starting it again from ${slot.image}`);
      const startedColor = await startColor(rt, target, slot.image);
      try {
        await gate(
          rt,
          startedColor.name,
          target,
          parseDuration(input.healthTimeout ?? config.cutover.healthTimeout, '--health-timeout'),
        );
        await rt.relay?.start((await rt.docker.inspectContainer(startedColor.id))!);
      } catch (error) {
        await rt.docker.removeContainer(startedColor.id);
        await rt.relay?.remove(startedColor.id);
        await rt.sockets?.forget(startedColor.id);
        throw error;
      }
      step.succeed(`${target} is healthy again`);
      current = {
        ...slot,
        host: startedColor.name,
        container: startedColor.id,
        since: ctx.clock.now().toISOString(),
        managedBy: 'opskit',
      };
      restarted = true;
    }
    const step = ctx.reporter.step(`switch nginx back to ${target}`);
    const switchMs = await switchTo(rt, target, current);
    step.succeed(`nginx serves ${target} again (switch ${formatDuration(switchMs)})`);
    await saveColors(
      rt,
      recordSwitch(rt.colors, {
        action: 'rollback',
        to: target,
        slot: current,
        at: ctx.clock.now().toISOString(),
        switchMs,
        keepOldUntil: null,
      }),
    );
    return {
      action: 'rollback',
      changed: true,
      from,
      to: target,
      image: current.image,
      container: current.host,
      switchMs: Math.round(switchMs),
      durationMs: Math.round(ctx.clock.monotonicMs() - started),
      restarted,
      oldColor: { color: from, image: colors.colors[from]!.image, state: 'warm', stopAfter: null },
    };
  });
}

export interface StatusReport {
  project: string;
  compose: string;
  live: Color | null;
  colors: Array<{
    color: Color;
    live: boolean;
    image: string;
    host: string;
    state: string;
    health: string;
    since: string;
  }>;
  keepOldUntil: string | null;
  lastSwitch: CutoverState['history'][number] | null;
}

export async function runStatus(ctx: Context): Promise<StatusReport> {
  const base = await setup(ctx, { requireColors: false });
  const colors = base.colors;
  const rows: StatusReport['colors'] = [];
  for (const color of ['blue', 'green'] as const) {
    const slot = colors?.colors[color];
    if (!slot) continue;
    const info = slot.container ? await base.docker.inspectContainer(slot.container) : undefined;
    rows.push({
      color,
      live: colors!.live === color,
      image: slot.image,
      host: slot.host,
      state: info ? info.state : 'stopped',
      health: info ? info.health : 'none',
      since: slot.since,
    });
  }
  return {
    project: base.target.project,
    compose: describeCli(base.target.cli),
    live: colors?.live ?? null,
    colors: rows,
    keepOldUntil: colors?.keepOldUntil ?? null,
    lastSwitch: colors?.history[0] ?? null,
  };
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

export function renderStatus(report: StatusReport, colour: ChalkInstance): string {
  if (!report.live) return `${report.project}: nothing deployed yet`;
  const lines = [`${report.project}: ${colour.bold(report.live)} is live`];
  for (const c of report.colors)
    lines.push(
      `  ${c.live ? colour.green('●') : '○'} ${c.color.padEnd(5)}  ${c.image}  ${c.state}${c.health !== 'none' ? ` (${c.health})` : ''}  since ${c.since}${c.live ? '' : '  (rollback target)'}`,
    );
  if (report.keepOldUntil) lines.push(`  the old colour stops at ${report.keepOldUntil}`);
  if (report.lastSwitch)
    lines.push(
      `  last: ${report.lastSwitch.action} ${report.lastSwitch.from} -> ${report.lastSwitch.to} at ${report.lastSwitch.at}${report.lastSwitch.switchMs !== null ? ` (switch ${report.lastSwitch.switchMs}ms)` : ''}`,
    );
  return lines.join('\n');
}
