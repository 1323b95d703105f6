import os from 'node:os';
import path from 'node:path';
import type { ChalkInstance } from 'chalk';
import { SECRET_FILE_MODE } from '../adapters/fs.js';
import { ConfigError, LockHeldError, OperationError, UsageError } from '../errors.js';
import { type Context, projectPath, withMutation } from '../runtime/context.js';
import { formatDuration, parseDuration } from '../runtime/duration.js';
import { pollUntil } from '../runtime/poll.js';
import { agentDriver, queryAgentApi, sdkDriver, type TunnelDriver, TunnelStartError } from './drivers.js';
import {
  agentCommand,
  agentEnv,
  chooseDriver,
  configVersionOf,
  isTunnelSupervisor,
  parsePid,
  parseState,
  type ReconnectPolicy,
  type ResolvedUrl,
  renderAgentConfig,
  resolveUrl,
  type TunnelDriverName,
  type TunnelState,
  type TunnelStatusReport,
  tunnelStatus,
} from './plan.js';
import { type SupervisorEvent, type SupervisorResult, superviseTunnel } from './supervisor.js';

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

export interface StartFlags {
  port?: string;
  monitor?: boolean;
  detach?: boolean;
  driver?: TunnelDriverName;
  checkInterval?: string;
  checkPath?: string;
  reconnectAttempts?: string;
  reconnectDelay?: string;
}

interface StartSettings {
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

function wholeNumber(text: string, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const value = /^\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(
      `${field}: "${text}" is not a whole number from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}`,
      { code: 'E_BAD_FLAG' },
    );
  }
  return value;
}

/** Flags over config, every value checked before anything starts (exit 2, nothing written). */
async function resolveStart(ctx: Context, flags: StartFlags, paths: TunnelPaths): Promise<StartSettings> {
  const { tunnel, ngrok } = ctx.loaded!.config;
  const ms = (flag: string | undefined, flagName: string, configured: string, key: string) =>
    parseDuration(flag ?? configured, flag !== undefined ? flagName : `tunnel.${key}`);
  const checkPath = flags.checkPath ?? tunnel.checkPath;
  if (!checkPath.startsWith('/'))
    throw new UsageError(`--check-path: "${checkPath}" must start with /`, { code: 'E_BAD_FLAG' });
  const settings: StartSettings = {
    driver: chooseDriver(flags.driver, tunnel.driver, ngrok.bin !== undefined),
    port: flags.port !== undefined ? wholeNumber(flags.port, '--port', 1, 65535) : tunnel.port,
    monitor: Boolean(flags.monitor),
    checkIntervalMs: ms(flags.checkInterval, '--check-interval', tunnel.checkInterval, 'checkInterval'),
    checkPath,
    checkTimeoutMs: parseDuration(tunnel.checkTimeout, 'tunnel.checkTimeout'),
    startTimeoutMs: parseDuration(tunnel.startTimeout, 'tunnel.startTimeout'),
    policy: {
      maxAttempts:
        flags.reconnectAttempts !== undefined
          ? wholeNumber(flags.reconnectAttempts, '--reconnect-attempts', 1)
          : tunnel.reconnectAttempts,
      delayMs: ms(flags.reconnectDelay, '--reconnect-delay', tunnel.reconnectDelay, 'reconnectDelay'),
      backoff: tunnel.backoff,
      maxDelayMs: parseDuration(tunnel.maxReconnectDelay, 'tunnel.maxReconnectDelay'),
      resetAfterMs: parseDuration(tunnel.resetAfter, 'tunnel.resetAfter'),
    },
    webAddr: ngrok.webAddr,
    url: ngrok.url,
  };
  if (settings.checkIntervalMs <= 0)
    throw new UsageError('--check-interval must be more than 0', { code: 'E_BAD_FLAG' });
  if (settings.driver === 'agent') {
    const env = ctx.loaded!.env;
    const named = ngrok.bin;
    const bin = await ctx.exec.which(named ?? 'ngrok', env);
    if (!bin) {
      throw new ConfigError(
        named
          ? `ngrok.bin (or NGROK_BIN): "${named}" is not an executable file`
          : '--driver agent: no ngrok agent found: set NGROK_BIN or ngrok.bin, or put ngrok on PATH',
        {
          code: 'E_NGROK_BIN',
          hint: 'without an agent, tunnels use the in-process @ngrok/ngrok SDK (--driver sdk)',
        },
      );
    }
    let userConfig: string | undefined;
    if (ngrok.configFile) {
      userConfig = projectPath(ctx, ngrok.configFile);
      if (!(await ctx.fs.exists(userConfig)))
        throw new ConfigError(`ngrok.configFile: ${userConfig} does not exist`, { code: 'E_NGROK_CONFIG' });
    } else {
      const home = env.HOME ?? os.homedir();
      const fallback = path.join(home, '.config', 'ngrok', 'ngrok.yml');
      if (await ctx.fs.exists(fallback)) userConfig = fallback;
    }
    const version = configVersionOf(userConfig ? await ctx.fs.readText(userConfig) : undefined);
    const configFiles = [...(userConfig ? [userConfig] : []), paths.agentConfig];
    settings.agent = {
      bin,
      userConfig,
      configText: renderAgentConfig(settings.webAddr, version),
      argv: agentCommand({ bin, port: settings.port, configFiles, ...(settings.url ? { url: settings.url } : {}) }),
    };
  }
  return settings;
}

/** A supervisor that is alive and really ours (not a recycled pid). */
function supervisorAlive(ctx: Context, pid: number | undefined): boolean {
  return pid !== undefined && ctx.system.isPidAlive(pid) && isTunnelSupervisor(ctx.system.processArgv(pid));
}

/** An agent left behind by a supervisor that was killed outright: stopped, so its port and URL are free. */
async function stopOrphanAgent(ctx: Context, state: TunnelState | undefined): Promise<number | undefined> {
  const pid = state?.agentPid;
  if (!pid || !state?.agentBin || !ctx.system.isPidAlive(pid)) return undefined;
  const argv = ctx.system.processArgv(pid);
  if (!argv?.join(' ').includes(path.basename(state.agentBin))) return undefined;
  await terminate(ctx, pid, 5000);
  return pid;
}

/** SIGTERM, up to graceMs to exit, then SIGKILL and up to 5 s more. */
async function terminate(ctx: Context, pid: number, graceMs: number): Promise<'exited' | 'killed' | 'stuck'> {
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
async function markUrlStale(ctx: Context, paths: TunnelPaths): Promise<void> {
  if (await ctx.fs.exists(paths.urlFile)) await ctx.fs.rename(paths.urlFile, paths.staleUrlFile);
}

async function readState(ctx: Context, paths: TunnelPaths): Promise<TunnelState | undefined> {
  return parseState(await ctx.fs.readText(paths.stateFile));
}

/** A PID file whose process is gone: removed (with the URL marked stale and any orphaned agent stopped). */
async function cleanStale(ctx: Context, paths: TunnelPaths, pid: number): Promise<string> {
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

/** A small queue, so file writes from events land in order without blocking the supervisor. */
function serial(onError: (error: Error) => void) {
  let tail: Promise<void> = Promise.resolve();
  return {
    push(task: () => Promise<void>) {
      tail = tail.then(task).catch(onError);
    },
    drain: () => tail,
  };
}

export async function runStart(ctx: Context, flags: StartFlags): Promise<StartResult> {
  const paths = tunnelPaths(ctx);
  const settings = await resolveStart(ctx, flags, paths);
  const files = {
    pid: paths.pidFile,
    url: paths.urlFile,
    log: settings.driver === 'agent' ? paths.agentLog : paths.detachLog,
  };
  const base = {
    driver: settings.driver,
    port: settings.port,
    monitor: settings.monitor,
    detached: Boolean(flags.detach),
    reconnects: 0,
    files,
  };
  if (ctx.globals.dryRun) {
    const plan = settings.agent
      ? {
          argv: [settings.agent.argv[0], ...settings.agent.argv[1]],
          agentConfigFile: paths.agentConfig,
          agentConfig: settings.agent.configText,
          env: ctx.loaded!.config.ngrok.authtoken ? ['NGROK_AUTHTOKEN=***'] : [],
        }
      : {};
    ctx.reporter.info(
      settings.agent
        ? `would start: ${plan.argv!.join(' ')}`
        : `would open an in-process tunnel (the @ngrok/ngrok SDK) to port ${settings.port}`,
    );
    return { ...base, outcome: 'planned', plan };
  }
  const existing = parsePid(await ctx.fs.readText(paths.pidFile));
  if (existing !== undefined) {
    if (supervisorAlive(ctx, existing)) {
      const state = await readState(ctx, paths);
      throw new LockHeldError(
        `a tunnel is already running (pid ${existing}${state?.publicUrl ? `, ${state.publicUrl}` : ''})`,
        { hint: 'opskit tunnel status shows it; opskit tunnel stop stops it', details: { pid: existing } },
      );
    }
    ctx.reporter.warn(await cleanStale(ctx, paths, existing));
  } else {
    // No PID file, but an agent a killed supervisor left behind would hold the local API's port.
    const orphan = await stopOrphanAgent(ctx, await readState(ctx, paths));
    if (orphan) ctx.reporter.warn(`stopped an orphaned ngrok agent (pid ${orphan})`);
  }
  if (flags.detach) return startDetached(ctx, settings, paths, base);
  return withMutation(ctx, 'tunnel start', () => runForeground(ctx, settings, paths, base), undefined, { lock: false });
}

async function startDetached(
  ctx: Context,
  settings: StartSettings,
  paths: TunnelPaths,
  base: Omit<StartResult, 'outcome'>,
): Promise<StartResult> {
  const [file, prefix] = ctx.system.selfCommand();
  // The same command, in the foreground of a process of its own; its output goes to the log.
  const args = [...prefix, ...ctx.argv.filter((word) => word !== '--detach' && word !== '--json')];
  const pid = await ctx.exec.spawnDetached(file, args, {
    cwd: ctx.cwd,
    env: { ...ctx.processEnv },
    logFile: paths.detachLog,
  });
  const step = ctx.reporter.step(`starting the tunnel in the background (pid ${pid})`);
  const up = await pollUntil(
    ctx.clock,
    { timeoutMs: settings.startTimeoutMs + 5000, initialDelayMs: 100, maxDelayMs: 500 },
    async () => {
      const state = await readState(ctx, paths);
      if (state?.pid === pid && state.status === 'up' && state.publicUrl) return { done: true, value: state };
      if (!ctx.system.isPidAlive(pid)) return { done: true, value: undefined };
      return { done: false, last: state?.pid === pid ? `the tunnel is ${state.status}` : 'not started yet' };
    },
  );
  if (!up.ok || !up.value) {
    step.fail();
    const log = (await ctx.fs.readText(paths.detachLog)) ?? '';
    const tail = log.trim().split('\n').slice(-3).join(' | ');
    if (ctx.system.isPidAlive(pid)) ctx.system.kill(pid, 'SIGTERM');
    throw new OperationError(
      'E_TUNNEL_START',
      `the background tunnel did not come up${up.ok ? '' : ` within ${formatDuration(settings.startTimeoutMs + 5000)}`}${tail ? `: ${tail}` : ''}`,
      { hint: `its log: ${paths.detachLog}` },
    );
  }
  step.succeed(`tunnel up in the background: ${up.value.publicUrl} (pid ${pid})`);
  return { ...base, pid, publicUrl: up.value.publicUrl!, outcome: 'running' };
}

async function runForeground(
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

export async function runUrl(ctx: Context, fresh: boolean): Promise<ResolvedUrl> {
  const paths = tunnelPaths(ctx);
  const fileUrl = (await ctx.fs.readText(paths.urlFile))?.trim();
  const pid = parsePid(await ctx.fs.readText(paths.pidFile));
  const writerAlive = supervisorAlive(ctx, pid);
  const state = await readState(ctx, paths);
  let api: string | undefined;
  if (!(fileUrl && writerAlive)) {
    const webAddr = state?.webAddr ?? ctx.loaded!.config.ngrok.webAddr;
    const port = state?.port ?? ctx.loaded!.config.tunnel.port;
    const answer = await queryAgentApi(ctx.http, webAddr, port);
    // An agent started by hand may forward some other port: any tunnel it lists is better than none.
    api =
      answer.listed?.publicUrl ??
      (answer.answering ? (await queryAgentApi(ctx.http, webAddr, undefined)).listed?.publicUrl : undefined);
  }
  const cached = (await ctx.fs.readText(paths.staleUrlFile))?.trim() || state?.publicUrl;
  const resolved = resolveUrl({
    ...(fileUrl ? { file: { url: fileUrl, writerAlive } } : {}),
    ...(api ? { api } : {}),
    ...(cached ? { cached } : {}),
  });
  if (!resolved)
    throw new OperationError(
      'E_NO_TUNNEL_URL',
      'no public URL: no live URL file, no agent API answering, nothing cached',
      { hint: 'opskit tunnel start --detach --monitor' },
    );
  if (resolved.stale && fresh)
    throw new OperationError(
      'E_TUNNEL_URL_STALE',
      `only a stale URL is known (${resolved.url}): the tunnel is not running`,
      { hint: 'opskit tunnel start --detach --monitor' },
    );
  if (resolved.stale) ctx.reporter.warn(`the tunnel is not running: ${resolved.url} is the last URL it had (stale)`);
  return resolved;
}

export async function runStatus(ctx: Context): Promise<TunnelStatusReport> {
  const paths = tunnelPaths(ctx);
  const pid = parsePid(await ctx.fs.readText(paths.pidFile));
  const alive = supervisorAlive(ctx, pid);
  const state = await readState(ctx, paths);
  const api =
    alive && state && state.pid === pid && state.driver === 'agent'
      ? await queryAgentApi(ctx.http, state.webAddr ?? ctx.loaded!.config.ngrok.webAddr, state.port)
      : undefined;
  return tunnelStatus({
    ...(pid !== undefined ? { pid } : {}),
    alive,
    ...(state ? { state } : {}),
    ...(api ? { api } : {}),
    nowMs: ctx.clock.now().getTime(),
  });
}

export function renderStart(result: StartResult): string {
  if (result.outcome === 'planned')
    return result.plan?.argv ? `${result.plan.argv.join(' ')}\n` : `in-process tunnel to port ${result.port}\n`;
  if (result.outcome === 'running') return `${result.publicUrl}\n`;
  return `tunnel stopped${result.signal ? ` (${result.signal})` : ''}; ${result.reconnects} reconnect${result.reconnects === 1 ? '' : 's'}\n`;
}

export function renderStatus(report: TunnelStatusReport, c: ChalkInstance): string {
  const rows: Array<[string, string]> = [
    ['tunnel', report.up ? c.green('up') : c.red('down')],
    ['driver', report.driver ?? '-'],
    [
      'process',
      report.process.pid !== undefined
        ? `pid ${report.process.pid} ${report.process.alive ? 'running' : 'not running'}`
        : 'none',
    ],
    [
      'agent API',
      report.api === null
        ? report.driver === 'sdk'
          ? 'n/a (in-process SDK)'
          : '-'
        : report.api.answering
          ? 'answering'
          : `not answering${report.api.error ? ` (${report.api.error})` : ''}`,
    ],
    ['public URL', report.publicUrl ?? '-'],
    ['uptime', report.uptimeMs !== undefined ? formatDuration(report.uptimeMs) : '-'],
    ['reconnects', String(report.reconnects)],
    ['monitor', report.monitor ? 'on' : 'off'],
  ];
  if (report.lastCheck)
    rows.push([
      'last check',
      `${report.lastCheck.ok ? 'ok' : 'failed'} at ${report.lastCheck.at}: ${report.lastCheck.detail}`,
    ]);
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
  for (const problem of report.problems) lines.push(c.yellow(`! ${problem}`));
  return `${lines.join('\n')}\n`;
}
