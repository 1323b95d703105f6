import path from 'node:path';
import { OperationError, OpskitError } from '../errors.js';
import type { PlannedStep } from '../output/plan.js';
import { colorAlias, colorServiceName, colorSocket, warmth } from '../platform/engine/swarm-colors.js';
import { type ImageBuild, resolveImageRef, runMigrations } from '../platform/release.js';
import { type Context, withMutation } from '../runtime/context.js';
import { formatDuration, parseDuration } from '../runtime/duration.js';
import { type ColorSlot, oldColorExpired, other, recordFinalize, recordSwitch } from './plan.js';
import {
  edgeFallbackKnows,
  gateColor,
  parkColor,
  refreshEdgeFallback,
  requireColors,
  type SwarmRun,
  saveSwarmColors,
  startColorService,
  swarmSetup,
  switchSwarm,
} from './swarm-run.js';
import { releaseImage, type SwitchResult, scheduleFinalize } from './switch.js';

/**
 * `opskit cutover` and `opskit rollback` on Swarm: the same steps as on one host (lock, migrations as a
 * job, the idle colour started and gated on every task, smoke as a job, the switch verified through the
 * edge, the old colour kept warm, state and audit), with the colours as services.
 */
export interface SwarmCutoverInput {
  image?: string | undefined;
  tag?: string | undefined;
  build?: ImageBuild | undefined;
  migrate: boolean;
  healthTimeoutMs: number;
  keepOldMs: number | undefined;
  finalize?: boolean;
  ifDue?: string | undefined;
}

const none = (run: SwarmRun, image: string | null): SwitchResult => ({
  action: 'none',
  changed: false,
  from: run.colors?.live ?? null,
  to: run.colors?.live ?? null,
  image,
  container: null,
  switchMs: null,
  durationMs: 0,
});

async function finalizeSwarm(run: SwarmRun): Promise<SwitchResult> {
  const colors = requireColors(run);
  const idle = other(colors.live);
  const slot = colors.colors[idle];
  const started = run.ctx.clock.monotonicMs();
  const parked = slot ? await parkColor(run, idle) : false;
  if (parked) await refreshEdgeFallback(run);
  if (slot && (parked || slot.container)) {
    await saveSwarmColors(run, recordFinalize(colors, run.ctx.clock.now().toISOString()));
    run.ctx.reporter.info(`stopped the old colour ${idle} (${slot.image}): its service has 0 tasks`);
  }
  return {
    action: 'finalize',
    changed: parked,
    from: colors.live,
    to: colors.live,
    image: slot?.image ?? null,
    container: slot ? colorServiceName(run.project, run.web, idle) : null,
    switchMs: null,
    durationMs: Math.round(run.ctx.clock.monotonicMs() - started),
    oldColor: slot ? { color: idle, image: slot.image, state: 'stopped', stopAfter: null } : null,
  };
}

async function planCutover(run: SwarmRun, image: string, input: SwarmCutoverInput): Promise<PlannedStep[]> {
  const colors = requireColors(run);
  const idle = other(colors.live);
  const name = colorServiceName(run.project, run.web, idle);
  return [
    ...(await run.engine.planPublish(image, 'push the image; the colour runs it by digest')),
    ...(input.migrate
      ? await run.engine.planJob(
          run.web,
          run.config.deploy.migrateCommand,
          image,
          'the migrations, in the new image (they must work with the live colour too)',
        )
      : []),
    {
      kind: 'docker',
      call: (await run.swarm.service(name)) ? `POST /services/${name}/update` : 'POST /services/create',
      options: { name, alias: colorAlias(run.web, idle), env: `APP_COLOR=${idle}`, image },
      description: `${idle}: the web's definition, every task replaced at once (nothing reaches it)`,
    },
    {
      kind: 'wait',
      what: `every ${idle} task running, then each asked for ${run.config.deploy.healthPath} from inside the edge`,
      timeoutMs: input.healthTimeoutMs,
      description: 'health gate',
    },
    ...(run.config.cutover.smoke
      ? [
          {
            kind: 'docker' as const,
            call: 'POST /services/create',
            options: { mode: 'replicated-job', command: run.config.cutover.smoke },
            description: 'smoke command, as a job of the new image',
          },
        ]
      : []),
    {
      kind: 'write',
      path: path.join(run.sockets.dir, 'live.sock'),
      bytes: 0,
      overwrite: true,
      description: `link -> ${colorSocket(idle)}, atomically, after ${colorSocket(idle)} answers from ${idle}`,
    },
    {
      kind: 'http',
      method: 'GET',
      url: `${run.config.nginx.url ?? '<nginx.url>'}${run.config.cutover.verifyPath}`,
      description: `until it answers from ${idle}; otherwise switch back`,
    },
    {
      kind: 'write',
      path: run.stateFile,
      bytes: 0,
      overwrite: true,
      description: `record: ${idle} live, ${colors.live} kept warm`,
    },
  ];
}

/** Errors of a connection to the Engine that stopped answering (not an answer from it). */
const LOST = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * The manager's Engine lost in the middle of a switch. Nothing after the link's rename needs the Engine (the
 * verification goes through the edge, the state is a file), so the link is where it was, or moved and
 * verified: never half-switched. Said as such, with the colour the edge serves, and what to do.
 */
async function engineLost<T>(run: SwarmRun, what: string, flow: () => Promise<T>): Promise<T> {
  try {
    return await flow();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (error instanceof OpskitError || typeof code !== 'string' || !LOST.has(code)) throw error;
    const link = await run.sockets.current().catch(() => undefined);
    throw new OperationError(
      'E_ENGINE_LOST',
      `the manager's Docker Engine (${run.swarm.endpoint}) stopped answering during the ${what} (${code}); live.sock still links to ${link ?? 'nothing'}: nothing was switched`,
      {
        hint: `when the Engine answers again (opskit doctor), run the ${what} again: it starts from the colours as recorded`,
      },
    );
  }
}

export async function runSwarmCutover(ctx: Context, input: SwarmCutoverInput): Promise<SwitchResult> {
  const run = await swarmSetup(ctx);
  const colors = requireColors(run);
  const config = run.config;
  const imageName = config.image.name ?? config.project.name!;
  if (ctx.globals.dryRun) {
    if (input.finalize) return none(run, null);
    const image = input.build ? (await input.build()).tags[0]! : resolveImageRef(imageName, input);
    const plan = await planCutover(run, image, input);
    for (const step of plan) ctx.reporter.dryRun(step);
    const idle = other(colors.live);
    return {
      action: 'cutover',
      changed: false,
      from: colors.live,
      to: idle,
      image,
      container: colorServiceName(run.project, run.web, idle),
      switchMs: null,
      durationMs: 0,
      plan,
    };
  }
  return withMutation(ctx, 'cutover', () =>
    engineLost(run, 'cutover', async () => {
      const started = ctx.clock.monotonicMs();
      if (input.finalize) {
        if (input.ifDue && (colors.keepOldUntil !== input.ifDue || !oldColorExpired(colors, ctx.clock.now())))
          return none(run, null);
        return finalizeSwarm(run);
      }
      // The edge's fallback first: the live colour's tasks as they are now, in case the Engine goes mid-way.
      await refreshEdgeFallback(run);
      const { image, imageId } = await releaseImage(ctx, run.docker, input);
      const info = { id: imageId };
      const live = colors.live;
      const idle = other(live);
      if (colors.colors[live]?.imageId === info.id) {
        ctx.reporter.info(`${image} is already live on ${live}: nothing to switch`);
        return { ...none(run, image), container: colorServiceName(run.project, run.web, live) };
      }
      let step = ctx.reporter.step(`push ${image} to the registry`);
      const ref = await run.engine.publish(image, (line) => step.update(line));
      step.succeed(`pushed: the nodes pull ${ref}`);
      let migrations: string[] | undefined;
      if (input.migrate) {
        step = ctx.reporter.step('run the migrations in the new image (backward compatible with the live colour)');
        migrations = await runMigrations(ctx, run.engine, {
          service: run.web,
          command: config.deploy.migrateCommand,
          image: ref,
          timeoutMs: parseDuration(config.deploy.migrateTimeout, 'deploy.migrateTimeout'),
          keepsServing: `switched: ${live} keeps serving`,
          webService: idle,
        });
        step.succeed(`migrations: ${migrations.length ? `applied ${migrations.join(', ')}` : 'none pending'}`);
      }
      const name = colorServiceName(run.project, run.web, idle);
      step = ctx.reporter.step(`start ${idle} (${name}) with ${image}`);
      const startedColor = await startColorService(run, idle, ref);
      let switchMs: number;
      try {
        step.succeed(`${name} ${startedColor.created ? 'created' : 'updated: every task replaced at once'}`);
        step = ctx.reporter.step(`gate ${idle}: every task healthy`);
        const healthMs = await gateColor(run, idle, input.healthTimeoutMs);
        step.succeed(`${idle} is healthy on every task (${formatDuration(healthMs)})`);
        if (config.cutover.smoke) {
          step = ctx.reporter.step(`smoke: ${config.cutover.smoke.join(' ')} (a job of the new image)`);
          const smoke = await run.engine.runJob(run.web, config.cutover.smoke, ref, {
            timeoutMs: 120_000,
            onLine: (line) => ctx.reporter.info(`[smoke] ${line}`),
          });
          if (smoke.exitCode !== 0)
            throw new OperationError(
              'E_SMOKE_FAILED',
              `the smoke command ${config.cutover.smoke.join(' ')} failed (exit ${smoke.exitCode}); ${live} keeps serving\n${smoke.output.slice(-30).join('\n')}`,
            );
          step.succeed('smoke passed');
        }
        step = ctx.reporter.step("the edge's fallback: each colour's tasks, for when Docker's DNS is down");
        const known = await refreshEdgeFallback(run);
        step.succeed(
          `the edge's fallback ${known.loaded ? 'knows' : 'was written with'} ${known.tasks.blue.length} blue and ${known.tasks.green.length} green task(s)`,
        );
        step = ctx.reporter.step(`switch the edge to ${idle}`);
        switchMs = await switchSwarm(run, idle);
        step.succeed(`the edge serves ${idle} (switch ${formatDuration(switchMs)})`);
      } catch (error) {
        ctx.reporter.warn(`${idle} is put back as it was; ${live} keeps serving`);
        await startedColor.undo().catch((e: Error) => {
          ctx.reporter.warn(
            `${idle} could not be put back (${e.message}): it is not live; the next cutover replaces it`,
          );
        });
        throw error;
      }
      const slot: ColorSlot = {
        image,
        imageId: info.id,
        host: name,
        container: startedColor.id,
        since: ctx.clock.now().toISOString(),
        managedBy: 'opskit',
        ref,
      };
      const stopAfter =
        input.keepOldMs !== undefined ? new Date(ctx.clock.now().getTime() + input.keepOldMs).toISOString() : null;
      await saveSwarmColors(
        run,
        recordSwitch(colors, {
          action: 'cutover',
          to: idle,
          slot,
          at: ctx.clock.now().toISOString(),
          switchMs,
          keepOldUntil: stopAfter,
        }),
      );
      if (stopAfter) await scheduleFinalize(ctx, stopAfter);
      const old = colors.colors[live]!;
      return {
        action: 'cutover',
        changed: true,
        from: live,
        to: idle,
        image,
        container: name,
        switchMs: Math.round(switchMs),
        durationMs: Math.round(ctx.clock.monotonicMs() - started),
        ...(migrations ? { migrations } : {}),
        oldColor: { color: live, image: old.image, state: 'warm', stopAfter },
      };
    }),
  );
}

export async function runSwarmRollback(ctx: Context, input: { healthTimeoutMs: number }): Promise<SwitchResult> {
  const run = await swarmSetup(ctx);
  const colors = run.colors;
  const target = colors ? other(colors.live) : undefined;
  const slot = target ? colors!.colors[target] : undefined;
  if (!colors || !target || !slot)
    throw new OperationError('E_NOTHING_TO_ROLL_BACK', 'nothing to roll back to: no previous colour is recorded', {
      hint: 'a rollback needs an earlier `opskit cutover`',
    });
  const name = colorServiceName(run.project, run.web, target);
  if (ctx.globals.dryRun) {
    const plan: PlannedStep[] = [
      {
        kind: 'http',
        method: 'GET',
        url: `${name}: its tasks`,
        description: `${target} (${slot.image}) must be warm (every task running); started again from its image when not`,
      },
      {
        kind: 'write',
        path: path.join(run.sockets.dir, 'live.sock'),
        bytes: 0,
        overwrite: true,
        description: `link -> ${colorSocket(target)}, atomically, no reload; then verify answers come from ${target}`,
      },
    ];
    for (const step of plan) ctx.reporter.dryRun(step);
    return {
      action: 'rollback',
      changed: false,
      from: colors.live,
      to: target,
      image: slot.image,
      container: name,
      switchMs: null,
      durationMs: 0,
      plan,
    };
  }
  return withMutation(ctx, 'rollback', () =>
    engineLost(run, 'rollback', async () => {
      const started = ctx.clock.monotonicMs();
      const from = colors.live;
      const [service, nodes] = await Promise.all([run.swarm.service(name), run.swarm.nodes()]);
      const tasks = service ? await run.swarm.tasks({ service: service.id, desiredState: 'running' }) : [];
      const up = new Set(nodes.filter((n) => n.state === 'ready').map((n) => n.id));
      const ref = slot.ref ?? service?.spec.TaskTemplate.ContainerSpec.Image ?? slot.image;
      const warm = warmth(service, tasks, up, ref);
      let restarted = false;
      let current = slot;
      if (!warm.warm) {
        const step = ctx.reporter.step(`${target} is not warm (${warm.why}): starting it again from ${slot.image}`);
        const startedColor = await startColorService(run, target, ref);
        try {
          await gateColor(run, target, input.healthTimeoutMs);
        } catch (error) {
          await startedColor.undo().catch(() => {});
          throw error;
        }
        step.succeed(`${target} is healthy again`);
        current = { ...slot, ref, container: startedColor.id, since: ctx.clock.now().toISOString() };
        restarted = true;
      }
      const step = ctx.reporter.step(`switch the edge back to ${target}`);
      // The edge's fallback rewritten beside the switch when the colour's tasks moved since it was written.
      const moved = restarted || !(await edgeFallbackKnows(run, target, tasks));
      const [switchMs] = await Promise.all([
        switchSwarm(run, target),
        moved
          ? refreshEdgeFallback(run).catch((e: Error) =>
              ctx.reporter.warn(`the edge's last-known fallback was not rewritten: ${e.message}`),
            )
          : undefined,
      ]);
      step.succeed(`the edge serves ${target} again (switch ${formatDuration(switchMs)})`);
      await saveSwarmColors(
        run,
        recordSwitch(colors, {
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
        container: name,
        switchMs: Math.round(switchMs),
        durationMs: Math.round(ctx.clock.monotonicMs() - started),
        restarted,
        oldColor: { color: from, image: colors.colors[from]!.image, state: 'warm', stopAfter: null },
      };
    }),
  );
}
