import path from 'node:path';
import { OperationError, UsageError } from '../errors.js';
import type { PlannedStep } from '../output/plan.js';
import { describeProbe, healthProbe } from '../platform/probe.js';
import { relayName } from '../platform/relay.js';
import { type ImageBuild, resolveImageRef, runMigrations } from '../platform/release.js';
import { socketName } from '../platform/sockets.js';
import { type Context, projectPath, withMutation } from '../runtime/context.js';
import { formatDuration, parseDuration } from '../runtime/duration.js';
import { type ColorSlot, colorContainerName, oldColorExpired, other, recordFinalize, recordSwitch } from './plan.js';
import { runSwarmCutover } from './swarm.js';
import {
  diagnostics,
  gate,
  type Runtime,
  releaseImage,
  retire,
  runtimeOf,
  type SwitchResult,
  saveColors,
  scheduleFinalize,
  setup,
  startColor,
  switchTo,
} from './switch.js';

/** `opskit cutover`: a new colour beside the live one, gated, switched to; and `--finalize`. */
export interface CutoverInput {
  image?: string | undefined;
  tag?: string | undefined;
  build?: ImageBuild | undefined;
  migrate: boolean;
  healthTimeout?: string | undefined;
  keepOld?: string | undefined;
}

export async function finalize(rt: Runtime): Promise<SwitchResult> {
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
  if (config.engine === 'swarm') return runSwarmCutover(ctx, { ...input, healthTimeoutMs, keepOldMs });
  const base = await setup(ctx, { requireColors: true });
  const imageName = config.image.name ?? config.project.name!;

  if (ctx.globals.dryRun) {
    const colors = base.colors!;
    const idle = other(colors.live);
    const image = input.build ? (await input.build()).tags[0]! : resolveImageRef(imageName, input);
    const name = colorContainerName(base.target.project, config.deploy.webService, idle, '<id>');
    const plan: PlannedStep[] = [
      ...(input.migrate
        ? await base.engine.planJob(
            config.deploy.webService,
            config.deploy.migrateCommand,
            image,
            'the migrations, in the new image (they must work with the live colour too)',
          )
        : []),
      ...base.engine.colors!.plan(name, idle, config.deploy.webService, image, `start ${idle}`),
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
              options: { name: relayName({ name }), socket: socketName('<id>') },
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
    const rt = await runtimeOf(base, base.colors!);
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
    const { image, imageId } = await releaseImage(ctx, rt.docker, input);
    const info = { id: imageId };
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
      migrations = await runMigrations(ctx, rt.engine, {
        service: config.deploy.webService,
        command: config.deploy.migrateCommand,
        image,
        timeoutMs: parseDuration(config.deploy.migrateTimeout, 'deploy.migrateTimeout'),
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
