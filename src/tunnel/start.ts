import os from 'node:os';
import path from 'node:path';
import { ConfigError, LockHeldError, OperationError, UsageError } from '../errors.js';
import { type Context, projectPath, withMutation } from '../runtime/context.js';
import { formatDuration, parseDuration } from '../runtime/duration.js';
import { pollUntil } from '../runtime/poll.js';
import { cleanStale, readState, stopOrphanAgent, supervisorAlive, type TunnelPaths, tunnelPaths } from './files.js';
import type { StartResult, StartSettings } from './foreground.js';
import { runForeground } from './foreground.js';
import {
  agentCommand,
  chooseDriver,
  configVersionOf,
  parsePid,
  renderAgentConfig,
  type TunnelDriverName,
} from './plan.js';

/** `opskit tunnel start`: its settings resolved, then the supervisor run here or detached. */

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

export function wholeNumber(text: string, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
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
export async function resolveStart(ctx: Context, flags: StartFlags, paths: TunnelPaths): Promise<StartSettings> {
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

export async function startDetached(
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

export function renderStart(result: StartResult): string {
  if (result.outcome === 'planned')
    return result.plan?.argv ? `${result.plan.argv.join(' ')}\n` : `in-process tunnel to port ${result.port}\n`;
  if (result.outcome === 'running') return `${result.publicUrl}\n`;
  return `tunnel stopped${result.signal ? ` (${result.signal})` : ''}; ${result.reconnects} reconnect${result.reconnects === 1 ? '' : 's'}\n`;
}
