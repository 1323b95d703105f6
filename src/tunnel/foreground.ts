import path from 'node:path';
import { SECRET_FILE_MODE } from '../adapters/fs.js';
import { LockHeldError, OperationError } from '../errors.js';
import type { Context } from '../runtime/context.js';
import { formatDuration } from '../runtime/duration.js';
import { agentDriver, sdkDriver, type TunnelDriver, TunnelStartError } from './drivers.js';
import { markUrlStale, type TunnelPaths } from './files.js';
import type { ReconnectPolicy, TunnelDriverName } from './plan.js';
import { agentEnv, type TunnelState } from './plan.js';
import { type SupervisorEvent, type SupervisorResult, superviseTunnel } from './supervisor.js';

/**
 * The supervised tunnel in this process (`tunnel start` without --detach, and the detached child): health checks,
 * reconnects, files kept current.
 */

/** A small queue, so file writes from events land in order without blocking the supervisor. */
export function serial(onError: (error: Error) => void) {
  let tail: Promise<void> = Promise.resolve();
  return {
    push(task: () => Promise<void>) {
      tail = tail.then(task).catch(onError);
    },
    drain: () => tail,
  };
}

export async function runForeground(
  ctx: Context,
  settings: StartSettings,
  paths: TunnelPaths,
  base: Omit<StartResult, 'outcome'>,
): Promise<StartResult> {
  const myPid = `${ctx.system.pid}\n`;
  if (!(await ctx.fs.createExclusive(paths.pidFile, myPid))) {
    throw new LockHeldError(`another tunnel start wrote ${paths.pidFile} first`, {
      hint: 'opskit tunnel status shows it',
    });
  }
  const writes = serial((error) => ctx.reporter.warn(`could not write a tunnel file: ${error.message}`));
  const agentLines = serial(() => undefined);
  const now = () => ctx.clock.now().toISOString();
  const state: TunnelState = {
    pid: ctx.system.pid,
    driver: settings.driver,
    port: settings.port,
    ...(settings.agent ? { webAddr: settings.webAddr, agentBin: settings.agent.bin } : {}),
    status: 'starting',
    startedAt: now(),
    reconnects: 0,
    monitor: settings.monitor,
    updatedAt: now(),
  };
  const persist = () => {
    const snapshot = `${JSON.stringify({ ...state, updatedAt: now() }, null, 2)}\n`;
    writes.push(() => ctx.fs.writeFileAtomic(paths.stateFile, snapshot));
  };
  const writeUrl = (url: string) => writes.push(() => ctx.fs.writeFileAtomic(paths.urlFile, `${url}\n`));
  persist();

  const stop = new AbortController();
  let signal: string | undefined;
  const dispose = ctx.system.onInterrupt((received) => {
    signal ??= received;
    ctx.reporter.info(`${received}: closing the tunnel`);
    stop.abort();
  });

  const token = ctx.loaded!.config.ngrok.authtoken?.reveal();
  let driver: TunnelDriver;
  if (settings.agent) {
    // An ngrok config file is where an authtoken goes: owner only, whatever opskit puts in it today.
    await ctx.fs.writeFileAtomic(paths.agentConfig, settings.agent.configText, { mode: SECRET_FILE_MODE });
    await ctx.fs.mkdirp(path.dirname(paths.agentLog));
    driver = agentDriver(ctx, {
      spec: {
        bin: settings.agent.bin,
        port: settings.port,
        configFiles: [...(settings.agent.userConfig ? [settings.agent.userConfig] : []), paths.agentConfig],
        ...(settings.url ? { url: settings.url } : {}),
      },
      env: agentEnv(ctx.processEnv, token),
      webAddr: settings.webAddr,
      startTimeoutMs: settings.startTimeoutMs,
      // The agent's own lines, scrubbed: ERR_NGROK_105 repeats the authtoken it rejected.
      onAgentLine: (line) => agentLines.push(() => ctx.fs.appendLine(paths.agentLog, ctx.redactor.scrub(line))),
    });
  } else {
    driver = sdkDriver({
      port: settings.port,
      authtoken: token,
      url: settings.url,
      startTimeoutMs: settings.startTimeoutMs,
      clock: ctx.clock,
      load: () => ctx.ngrok(),
      onLog: (line) => ctx.reporter.debug(`ngrok: ${line}`),
    });
  }

  const onEvent = (event: SupervisorEvent) => {
    switch (event.type) {
      case 'connected':
        state.status = 'up';
        state.publicUrl = event.url;
        state.connectedAt = now();
        if (event.agentPid !== undefined) state.agentPid = event.agentPid;
        if (event.reconnect) state.reconnects++;
        writeUrl(event.url);
        if (event.previousUrl)
          ctx.reporter.warn(
            `the public URL changed: ${event.previousUrl} -> ${event.url} (written to ${paths.urlFile})`,
          );
        ctx.reporter.info(
          `${event.reconnect ? 'reconnected' : 'tunnel up'}: ${event.url} -> localhost:${settings.port} (${settings.driver}${event.agentPid !== undefined ? `, agent pid ${event.agentPid}` : ''})`,
        );
        break;
      case 'url-changed':
        state.publicUrl = event.to;
        writeUrl(event.to);
        ctx.reporter.warn(`the public URL changed: ${event.from} -> ${event.to} (written to ${paths.urlFile})`);
        break;
      case 'check':
        state.lastCheck = { at: now(), ok: event.verdict.ok, detail: event.verdict.detail };
        if (event.verdict.upstreamDown) ctx.reporter.warn(event.verdict.detail);
        else ctx.reporter.debug(`check: ${event.verdict.detail}`);
        break;
      case 'down':
        state.status = settings.monitor ? 'reconnecting' : 'failed';
        ctx.reporter.warn(`tunnel down: ${event.reason}`);
        break;
      case 'reconnecting':
        state.status = 'reconnecting';
        ctx.reporter.info(
          `reconnect attempt ${event.attempt}/${event.maxAttempts} in ${formatDuration(event.delayMs)}`,
        );
        break;
      case 'attempt-failed':
        ctx.reporter.warn(
          `reconnect attempt ${event.attempt} failed${event.permanent ? ' (no retry can fix this)' : ''}: ${event.error}`,
        );
        break;
    }
    persist();
  };

  let result: SupervisorResult | undefined;
  try {
    result = await superviseTunnel(
      driver,
      { clock: ctx.clock, http: ctx.http },
      {
        monitor: settings.monitor,
        checkIntervalMs: settings.checkIntervalMs,
        checkPath: settings.checkPath,
        checkTimeoutMs: settings.checkTimeoutMs,
        policy: settings.policy,
      },
      stop.signal,
      onEvent,
    );
  } catch (error) {
    state.status = 'failed';
    if (error instanceof TunnelStartError) {
      throw new OperationError('E_TUNNEL_START', `the tunnel did not start: ${error.message}`, {
        hint: error.permanent
          ? 'check the authtoken (NGROK_AUTHTOKEN or ngrok.authtoken) and the ngrok account'
          : settings.agent
            ? `the agent's log: ${paths.agentLog}`
            : 'pass --monitor to retry',
      });
    }
    throw error;
  } finally {
    dispose();
    if (result?.outcome === 'stopped') state.status = 'stopped';
    else if (result) state.status = 'failed';
    persist();
    await writes.drain();
    await agentLines.drain();
    // Ours only: never remove a PID file another start wrote after ours was cleaned up.
    if ((await ctx.fs.readText(paths.pidFile)) === myPid) await ctx.fs.remove(paths.pidFile);
    await markUrlStale(ctx, paths);
  }
  const done: StartResult = {
    ...base,
    pid: ctx.system.pid,
    ...(result.publicUrl ? { publicUrl: result.publicUrl } : {}),
    outcome: result.outcome,
    ...(signal ? { signal } : {}),
    reconnects: result.reconnects,
  };
  if (result.outcome === 'gave-up') {
    throw new OperationError(
      'E_TUNNEL_GAVE_UP',
      `the tunnel is down and did not come back after ${result.attempts} reconnect attempt${result.attempts === 1 ? '' : 's'}: ${result.lastError ?? 'unknown'}`,
      {
        hint: settings.agent ? `the agent's log: ${paths.agentLog}` : 'check the network and the ngrok account',
        details: { reconnects: result.reconnects, attempts: result.attempts },
      },
    );
  }
  if (result.outcome === 'ended') {
    throw new OperationError('E_TUNNEL_ENDED', `the tunnel ended: ${result.lastError ?? 'unknown'}`, {
      hint: 'with --monitor, opskit reconnects it',
    });
  }
  return done;
}

export interface StartSettings {
  driver: TunnelDriverName;
  port: number;
  monitor: boolean;
  checkIntervalMs: number;
  checkPath: string;
  checkTimeoutMs: number;
  startTimeoutMs: number;
  policy: ReconnectPolicy;
  webAddr: string;
  url: string | undefined;
  /** Agent driver: the binary and the config files merged (the operator's, then opskit's). */
  agent?: { bin: string; userConfig: string | undefined; configText: string; argv: [string, string[]] };
}

export interface StartResult {
  driver: TunnelDriverName;
  port: number;
  monitor: boolean;
  detached: boolean;
  pid?: number;
  publicUrl?: string;
  /** stopped: by a signal (exit 0); running: --detach left it running. */
  outcome: SupervisorResult['outcome'] | 'running' | 'planned';
  signal?: string;
  reconnects: number;
  files: { pid: string; url: string; log: string };
  plan?: { argv?: string[]; agentConfig?: string; agentConfigFile?: string; env?: string[] };
}
