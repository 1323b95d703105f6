import { CommanderError } from 'commander';
import { Redactor } from '../config/redact.js';
import { ExitCode, type OpskitError, toOpskitError } from '../errors.js';
import { type Io, SCHEMA_VERSION } from './run.js';

/** The first word that is not an option: the subcommand the user meant, for the JSON document. */
function commandWord(argv: readonly string[]): string | null {
  const withValue = new Set(['-c', '--config', '-e', '--env', '--set', '--lock-wait']);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return argv[i + 1] ?? null;
    if (withValue.has(arg)) {
      i++;
      continue;
    }
    if (!arg.startsWith('-')) return arg;
  }
  return null;
}

/**
 * Turns whatever ended a run into its exit code, printing what nobody printed yet. Used only by the
 * entry point (bin.ts), which is the one place that exits.
 */
export function exitCodeFor(error: unknown, io: Io): number {
  const json = io.argv.includes('--json');
  const redactor = new Redactor();
  redactor.addFromEnv(io.env);
  if (error instanceof CommanderError) {
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return ExitCode.ok;
    // Commander already printed the message and usage on stderr.
    if (json) {
      const message =
        error.code === 'commander.help'
          ? 'a command is required'
          : redactor.scrub(error.message.replace(/^error: /, ''));
      io.stdout.write(
        `${JSON.stringify({ schemaVersion: SCHEMA_VERSION, command: commandWord(io.argv), ok: false, error: { code: 'E_USAGE', message, hint: 'run opskit --help for usage' } }, null, 2)}\n`,
      );
    }
    return ExitCode.usage;
  }
  const opskitError: OpskitError = toOpskitError(error);
  if (!opskitError.reported) {
    const message = redactor.scrub(opskitError.message);
    if (json) {
      io.stdout.write(
        `${JSON.stringify({ schemaVersion: SCHEMA_VERSION, command: commandWord(io.argv), ok: false, error: { code: opskitError.code, message } }, null, 2)}\n`,
      );
    }
    io.stderr.write(`error: ${message}\n`);
  }
  return opskitError.exitCode;
}
