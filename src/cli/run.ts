import type { Command } from 'commander';
import { systemClock } from '../adapters/clock.js';
import { nodeDatastores } from '../adapters/datastores.js';
import { createDockerAdapter } from '../adapters/docker.js';
import { createExecAdapter } from '../adapters/exec.js';
import { nodeFs } from '../adapters/fs.js';
import { nodeHttp } from '../adapters/http.js';
import { autocannonLoad } from '../adapters/load.js';
import { nodeNet } from '../adapters/net.js';
import { nodeSystem } from '../adapters/system.js';
import type { FlagValue } from '../config/load.js';
import { Redactor } from '../config/redact.js';
import { ConfigError, type OpskitError, toOpskitError, UsageError } from '../errors.js';
import type { CommandOutcome } from '../output/outcome.js';
import { Reporter, type Stream } from '../output/reporter.js';
import type { Adapters, Context, GlobalOptions } from '../runtime/context.js';
import type { Sensitive } from '../sensitive.js';
import { SCHEMA_VERSION } from '../version.js';

export { SCHEMA_VERSION };

/** Where a program reads and writes: the real process, or a test's buffers. */
export interface Io {
  stdout: Stream;
  stderr: Stream;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  argv: readonly string[];
  adapters?: Partial<Adapters>;
}

export function processIo(argv: readonly string[]): Io {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd(), argv };
}

export type { CommandOutcome };

export interface CommandSpec {
  name: string;
  /** Mutating commands take the project lock and append an audit line (not with --dry-run). */
  mutating: boolean;
  /** `required`: an invalid config is exit 2; `tolerant`: the action sees ctx.configError; `none`. */
  config: 'required' | 'tolerant' | 'none';
  /** Flag values that set config keys: the highest layer of precedence. */
  flags?: FlagValue[];
  /** Secrets given as flags, so that every output path scrubs them. */
  secrets?: Sensitive[];
}

export function readGlobals(command: Command): GlobalOptions {
  const o = command.optsWithGlobals() as Record<string, unknown>;
  return {
    config: o.config as string | undefined,
    env: o.env as string | undefined,
    json: Boolean(o.json),
    dryRun: Boolean(o.dryRun),
    quiet: Boolean(o.quiet),
    verbose: Boolean(o.verbose),
    color: o.color !== false,
    lockWait: o.lockWait as string | undefined,
    set: (o.set as string[] | undefined) ?? [],
  };
}

/** `--set backup.retentionDays=7` -> a flag-layer value for that key. */
export function parseSetFlags(values: readonly string[]): FlagValue[] {
  return values.map((item) => {
    const eq = item.indexOf('=');
    if (eq <= 0)
      throw new UsageError(`--set ${item}: expected KEY=VALUE, e.g. --set backup.retentionDays=7`, {
        code: 'E_BAD_SET',
      });
    return { path: item.slice(0, eq).trim(), flag: `--set ${item.slice(0, eq).trim()}`, value: item.slice(eq + 1) };
  });
}

export function createContext(io: Io, globals: GlobalOptions, redactor: Redactor): Context {
  const env = io.env;
  const reporter = new Reporter(
    {
      json: globals.json,
      quiet: globals.quiet,
      verbose: globals.verbose,
      color: globals.color && !env.NO_COLOR,
      stdout: io.stdout,
      stderr: io.stderr,
      clock: io.adapters?.clock ?? systemClock,
      redactor,
    },
    io.stderr.isTTY && !globals.json && !globals.quiet ? oraLoader : undefined,
  );
  const fs = io.adapters?.fs ?? nodeFs;
  return {
    fs,
    exec: io.adapters?.exec ?? createExecAdapter(fs),
    clock: io.adapters?.clock ?? systemClock,
    http: io.adapters?.http ?? nodeHttp,
    net: io.adapters?.net ?? nodeNet,
    datastores: io.adapters?.datastores ?? nodeDatastores,
    system: io.adapters?.system ?? nodeSystem,
    docker: io.adapters?.docker ?? ((host) => createDockerAdapter(host)),
    load: io.adapters?.load ?? autocannonLoad,
    ngrok: io.adapters?.ngrok ?? (async () => (await import('../tunnel/drivers.js')).loadNgrokSdk()),
    cwd: io.cwd,
    processEnv: env,
    globals,
    argv: io.argv,
    reporter,
    redactor,
    loaded: undefined,
    configError: undefined,
  };
}

// ora is loaded only when a spinner can be shown (stderr is a TTY): cron and CI never pay for it.
let oraModule: typeof import('ora') | undefined;
const oraLoader = (options: {
  text: string;
  stream: unknown;
  isEnabled: boolean;
  color: 'cyan' | false;
  discardStdin: boolean;
}) => {
  if (!oraModule) throw new Error('ora was not preloaded');
  return oraModule.default(options as Parameters<typeof oraModule.default>[0]);
};

/**
 * The one path every subcommand takes: globals -> context -> (config) -> action -> rendering.
 * Errors are rendered here (a JSON document with --json, else a message and hint on stderr), marked as
 * reported, and re-thrown: only the entry point turns them into an exit code.
 */
export async function runCommand<R extends object>(
  command: Command,
  io: Io,
  spec: CommandSpec,
  execute: (ctx: Context) => Promise<CommandOutcome<R>>,
): Promise<void> {
  const globals = readGlobals(command);
  const redactor = new Redactor();
  redactor.addFromEnv(io.env);
  for (const secret of spec.secrets ?? []) redactor.add(secret);
  const ctx = createContext(io, globals, redactor);
  if (io.stderr.isTTY && !globals.json && !globals.quiet) oraModule ??= await import('ora');
  try {
    if (spec.config !== 'none') {
      try {
        const flags = [...parseSetFlags(globals.set), ...(spec.flags ?? [])];
        // yaml and zod load only for the commands that read the configuration.
        const { loadConfig } = await import('../config/load.js');
        ctx.loaded = await loadConfig(ctx.fs, {
          cwd: io.cwd,
          configPath: globals.config,
          envName: globals.env,
          processEnv: io.env,
          flags,
        });
        redactor.addFromEnv(ctx.loaded.env);
        for (const secret of ctx.loaded.secrets) redactor.add(secret);
      } catch (error) {
        if (spec.config === 'tolerant' && error instanceof ConfigError) ctx.configError = error;
        else throw error;
      }
    } else if (globals.set.length > 0) {
      throw new UsageError(`--set has no effect on "opskit ${spec.name}", which reads no configuration`, {
        code: 'E_BAD_SET',
      });
    }
    const outcome = await execute(ctx);
    if (globals.json) {
      ctx.reporter.json({
        schemaVersion: SCHEMA_VERSION,
        command: spec.name,
        ok: outcome.failure === undefined,
        ...(globals.dryRun ? { dryRun: true } : {}),
        ...outcome.result,
        ...(outcome.failure ? { error: errorJson(outcome.failure) } : {}),
      });
    } else {
      ctx.reporter.result(outcome.render(ctx.reporter));
    }
    if (outcome.failure) {
      outcome.failure.reported = true;
      throw outcome.failure;
    }
  } catch (thrown) {
    const error = toOpskitError(thrown);
    if (!error.reported) {
      reportError(ctx, spec.name, error, thrown);
      error.reported = true;
    }
    throw error;
  }
}

export function errorJson(error: OpskitError): Record<string, unknown> {
  return {
    code: error.code,
    message: error.message,
    ...(error.hint ? { hint: error.hint } : {}),
    ...(error.details !== undefined ? { details: error.details } : {}),
  };
}

function reportError(ctx: Context, command: string, error: OpskitError, thrown: unknown): void {
  if (ctx.globals.json) {
    ctx.reporter.json({ schemaVersion: SCHEMA_VERSION, command, ok: false, error: errorJson(error) });
  }
  const { err } = ctx.reporter;
  const lines = [`${err.red('error:')} ${error.message}`];
  if (error.hint) lines.push(`${err.dim('hint:')} ${error.hint}`);
  if (ctx.globals.verbose && thrown instanceof Error && thrown.stack) lines.push(err.dim(thrown.stack));
  ctx.reporter.options.stderr.write(`${ctx.redactor.scrub(lines.join('\n'))}\n`);
}
