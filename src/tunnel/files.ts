import path from 'node:path';
import { type Context, projectPath } from '../runtime/context.js';
import { pollUntil } from '../runtime/poll.js';
import { isTunnelSupervisor, parseState, type TunnelState } from './plan.js';

/**
 * The tunnel's files (state, PID, URL) and processes (the supervisor, the ngrok agent): how every tunnel
 * command finds, judges and ends what an earlier run left.
 */

export interface TunnelPaths {
  pidFile: string;
  urlFile: string;
  /** Where the URL file goes when the tunnel stops: the last URL, kept as a stale cache. */
  staleUrlFile: string;
  stateFile: string;
  agentConfig: string;
  agentLog: string;
  /** stdout and stderr of a --detach supervisor. */
  detachLog: string;
}

export function tunnelPaths(ctx: Context): TunnelPaths {
  const config = ctx.loaded!.config;
  const urlFile = projectPath(ctx, config.tunnel.urlFile);
  return {
    pidFile: projectPath(ctx, config.tunnel.pidFile),
    urlFile,
    staleUrlFile: `${urlFile}.stale`,
    stateFile: projectPath(ctx, path.join(config.paths.state, 'tunnel.json')),
    agentConfig: projectPath(ctx, path.join(config.paths.state, 'ngrok-agent.yml')),
    agentLog: projectPath(ctx, config.tunnel.logFile),
    detachLog: projectPath(ctx, path.join(config.paths.logs, 'tunnel.log')),
  };
}

/** A supervisor that is alive and really ours (not a recycled pid). */
export function supervisorAlive(ctx: Context, pid: number | undefined): boolean {
  return pid !== undefined && ctx.system.isPidAlive(pid) && isTunnelSupervisor(ctx.system.processArgv(pid));
}

/** An agent left behind by a supervisor that was killed outright: stopped, so its port and URL are free. */
export async function stopOrphanAgent(ctx: Context, state: TunnelState | undefined): Promise<number | undefined> {
  const pid = state?.agentPid;
  if (!pid || !state?.agentBin || !ctx.system.isPidAlive(pid)) return undefined;
  const argv = ctx.system.processArgv(pid);
  if (!argv?.join(' ').includes(path.basename(state.agentBin))) return undefined;
  await terminate(ctx, pid, 5000);
  return pid;
}

/** SIGTERM, up to graceMs to exit, then SIGKILL and up to 5 s more. */
export async function terminate(ctx: Context, pid: number, graceMs: number): Promise<'exited' | 'killed' | 'stuck'> {
  const gone = (timeoutMs: number) =>
    pollUntil(ctx.clock, { timeoutMs, initialDelayMs: 50, maxDelayMs: 500 }, async () =>
      ctx.system.isPidAlive(pid) ? { done: false, last: 'still running' } : { done: true, value: true },
    );
  ctx.system.kill(pid, 'SIGTERM');
  if ((await gone(graceMs)).ok) return 'exited';
  ctx.system.kill(pid, 'SIGKILL');
  return (await gone(5000)).ok ? 'killed' : 'stuck';
}

/**
 * The URL file moves aside when the tunnel stops: readers of it never get a dead URL; `url` keeps it as a stale cache.
 */
export async function markUrlStale(ctx: Context, paths: TunnelPaths): Promise<void> {
  if (await ctx.fs.exists(paths.urlFile)) await ctx.fs.rename(paths.urlFile, paths.staleUrlFile);
}

export async function readState(ctx: Context, paths: TunnelPaths): Promise<TunnelState | undefined> {
  return parseState(await ctx.fs.readText(paths.stateFile));
}

/** A PID file whose process is gone: removed (with the URL marked stale and any orphaned agent stopped). */
export async function cleanStale(ctx: Context, paths: TunnelPaths, pid: number): Promise<string> {
  const state = await readState(ctx, paths);
  await ctx.fs.remove(paths.pidFile);
  await markUrlStale(ctx, paths);
  const orphan = await stopOrphanAgent(ctx, state);
  if (state && state.status !== 'stopped' && state.status !== 'failed')
    await ctx.fs.writeFileAtomic(
      paths.stateFile,
      `${JSON.stringify({ ...state, status: 'stopped', updatedAt: ctx.clock.now().toISOString() }, null, 2)}\n`,
    );
  return `removed a stale PID file ${paths.pidFile} (pid ${pid} is not running)${orphan ? `; stopped its orphaned ngrok agent (pid ${orphan})` : ''}`;
}
