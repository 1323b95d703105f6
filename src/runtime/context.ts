import path from 'node:path';
import type { Clock } from '../adapters/clock.js';
import type { DatastoreAdapter } from '../adapters/datastores.js';
import type { DockerAdapter } from '../adapters/docker.js';
import type { ExecAdapter } from '../adapters/exec.js';
import type { FsAdapter } from '../adapters/fs.js';
import type { HttpAdapter } from '../adapters/http.js';
import type { LoadAdapter } from '../adapters/load.js';
import type { NetAdapter } from '../adapters/net.js';
import type { NgrokSdk } from '../adapters/ngrok.js';
import type { SystemAdapter } from '../adapters/system.js';
import type { LoadedConfig } from '../config/load.js';
import type { Redactor } from '../config/redact.js';
import { type ConfigError, type OpskitError, toOpskitError } from '../errors.js';
import type { Reporter } from '../output/reporter.js';
import { appendAudit, buildAuditEntry } from './audit.js';
import { parseDuration } from './duration.js';
import { acquireLock, describeHolder } from './lock.js';

/** The options every subcommand shares (README: "Options every command takes"). */
export interface GlobalOptions {
  config?: string;
  env?: string;
  json: boolean;
  dryRun: boolean;
  quiet: boolean;
  verbose: boolean;
  color: boolean;
  lockWait?: string;
  set: string[];
}

export interface Adapters {
  fs: FsAdapter;
  exec: ExecAdapter;
  clock: Clock;
  http: HttpAdapter;
  net: NetAdapter;
  datastores: DatastoreAdapter;
  system: SystemAdapter;
  /** The load generator (autocannon), loaded only by `opskit loadtest`. */
  load: LoadAdapter;
  /** The official ngrok SDK, loaded only by `tunnel start --driver sdk`. */
  ngrok(): Promise<NgrokSdk>;
  /** Connects lazily: dockerode loads only for the commands that talk to Docker. */
  docker(host: string | undefined): Promise<DockerAdapter>;
}

/** What an action is handed: its adapters, its output, and the resolved configuration. */
export interface Context extends Adapters {
  cwd: string;
  processEnv: Readonly<Record<string, string | undefined>>;
  globals: GlobalOptions;
  /** The user's words after `opskit`, for the audit log (scrubbed there). */
  argv: readonly string[];
  reporter: Reporter;
  redactor: Redactor;
  /** Set for commands that load the configuration. */
  loaded: LoadedConfig | undefined;
  /** Set instead of `loaded` when a command tolerates an invalid config (doctor reports it). */
  configError: ConfigError | undefined;
}

export function projectRoot(ctx: Context): string {
  return ctx.loaded?.root ?? path.resolve(ctx.cwd);
}

export function projectPath(ctx: Context, relative: string): string {
  return path.resolve(projectRoot(ctx), relative);
}

export function lockFilePath(ctx: Context): string {
  return projectPath(ctx, path.join(ctx.loaded?.config.paths.state ?? '.opskit', 'lock'));
}

export function auditLogPath(ctx: Context): string {
  return projectPath(ctx, ctx.loaded?.config.paths.auditLog ?? 'logs/opskit-audit.jsonl');
}

/**
 * Runs a mutating action under the project lock and appends its audit line, whatever the outcome.
 * With --dry-run neither happens: a dry run changes nothing, not even the lock or the log.
 */
export async function withMutation<T>(
  ctx: Context,
  command: string,
  action: () => Promise<T>,
  exitCodeOf: (result: T) => number = () => 0,
  options: { lock?: boolean } = {},
): Promise<T> {
  if (ctx.globals.dryRun) return action();
  const started = ctx.clock.monotonicMs();
  const startedAt = ctx.clock.now();
  let exitCode = 0;
  let failure: OpskitError | undefined;
  let lock: Awaited<ReturnType<typeof acquireLock>> | undefined;
  try {
    if (options.lock !== false)
      lock = await acquireLock(ctx, lockFilePath(ctx), `opskit ${command}`, {
        waitMs: ctx.globals.lockWait ? parseDuration(ctx.globals.lockWait, '--lock-wait') : 0,
        onWait: (holder) => ctx.reporter.info(`waiting for the lock: ${describeHolder(holder)}`),
        onTakeover: (stale) =>
          ctx.reporter.warn(
            stale
              ? `taking over a stale lock: ${describeHolder(stale)} is no longer running`
              : 'taking over an unreadable lock file',
          ),
      });
    const result = await action();
    exitCode = exitCodeOf(result);
    return result;
  } catch (error) {
    failure = toOpskitError(error);
    exitCode = failure.exitCode;
    throw error;
  } finally {
    try {
      await lock?.release();
    } finally {
      const entry = buildAuditEntry(
        {
          time: startedAt.toISOString(),
          user: ctx.system.user(),
          host: ctx.system.hostname(),
          pid: ctx.system.pid,
          command,
          args: ctx.argv,
          durationMs: ctx.clock.monotonicMs() - started,
          exitCode,
          ...(failure ? { error: { code: failure.code, message: failure.message } } : {}),
        },
        ctx.redactor,
      );
      await appendAudit(ctx.fs, auditLogPath(ctx), entry).catch((error: unknown) =>
        ctx.reporter.warn(`could not append to the audit log ${auditLogPath(ctx)}: ${(error as Error).message}`),
      );
    }
  }
}
