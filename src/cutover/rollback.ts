import path from 'node:path';
import { OperationError } from '../errors.js';
import type { PlannedStep } from '../output/plan.js';
import { type Context, projectPath, withMutation } from '../runtime/context.js';
import { formatDuration, parseDuration } from '../runtime/duration.js';
import { other, recordSwitch } from './plan.js';
import { runSwarmRollback } from './swarm.js';
import { gate, runtimeOf, type SwitchResult, saveColors, setup, startColor, switchTo } from './switch.js';

export async function runRollback(ctx: Context, input: { healthTimeout?: string | undefined }): Promise<SwitchResult> {
  const config = ctx.loaded!.config;
  if (config.engine === 'swarm') {
    return runSwarmRollback(ctx, {
      healthTimeoutMs: parseDuration(input.healthTimeout ?? config.cutover.healthTimeout, '--health-timeout'),
    });
  }
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
    const rt = await runtimeOf(base, colors);
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
