import { OperationError } from '../errors.js';
import type { Context } from '../runtime/context.js';
import { formatDuration, parseDuration } from '../runtime/duration.js';
import { cleanStale, readState, stopOrphanAgent, supervisorAlive, terminate, tunnelPaths } from './files.js';
import { parsePid } from './plan.js';

/** `opskit tunnel stop`: the supervisor ended by its pid, gracefully, then the agent it left, if any. */

export interface StopResult {
  wasRunning: boolean;
  stale: boolean;
  pid?: number;
  forced: boolean;
  message: string;
}

export async function runStop(ctx: Context, timeoutText: string | undefined): Promise<StopResult> {
  const paths = tunnelPaths(ctx);
  const timeoutMs = parseDuration(timeoutText ?? '15s', '--timeout');
  const pid = parsePid(await ctx.fs.readText(paths.pidFile));
  if (pid === undefined) {
    if (await ctx.fs.exists(paths.pidFile)) {
      await ctx.fs.remove(paths.pidFile);
      return {
        wasRunning: false,
        stale: true,
        forced: false,
        message: `removed an unreadable PID file ${paths.pidFile}`,
      };
    }
    const orphan = ctx.globals.dryRun ? undefined : await stopOrphanAgent(ctx, await readState(ctx, paths));
    return {
      wasRunning: false,
      stale: false,
      forced: false,
      message: orphan
        ? `no tunnel was running; stopped an orphaned ngrok agent (pid ${orphan})`
        : 'no tunnel is running',
    };
  }
  if (!supervisorAlive(ctx, pid)) {
    if (ctx.globals.dryRun)
      return {
        wasRunning: false,
        stale: true,
        pid,
        forced: false,
        message: `would remove the stale PID file ${paths.pidFile} (pid ${pid} is not running)`,
      };
    return { wasRunning: false, stale: true, pid, forced: false, message: await cleanStale(ctx, paths, pid) };
  }
  if (ctx.globals.dryRun)
    return { wasRunning: true, stale: false, pid, forced: false, message: `would send SIGTERM to pid ${pid}` };
  const step = ctx.reporter.step(`stopping the tunnel (pid ${pid})`);
  const ended = await terminate(ctx, pid, timeoutMs);
  if (ended === 'exited') {
    step.succeed(`tunnel stopped (pid ${pid})`);
    return { wasRunning: true, stale: false, pid, forced: false, message: `stopped the tunnel (pid ${pid})` };
  }
  if (ended === 'stuck') {
    step.fail();
    throw new OperationError('E_TUNNEL_STOP', `pid ${pid} did not stop, even after SIGKILL`);
  }
  // Killed: the supervisor could not clean up after itself.
  const cleanup = await cleanStale(ctx, paths, pid);
  step.warn(`the tunnel did not stop within ${formatDuration(timeoutMs)}; killed it`);
  return {
    wasRunning: true,
    stale: false,
    pid,
    forced: true,
    message: `killed the tunnel (pid ${pid}) after ${formatDuration(timeoutMs)}; ${cleanup}`,
  };
}
