import { Command } from 'commander';
import { registerBackup } from './cli/backup.js';
import { registerBuild } from './cli/build.js';
import { registerConfig } from './cli/config.js';
import { registerCutover } from './cli/cutover.js';
import { registerDeploy } from './cli/deploy.js';
import { registerDoctor } from './cli/doctor.js';
import { registerHealth } from './cli/health.js';
import { registerInit } from './cli/init.js';
import { registerLoadtest } from './cli/loadtest.js';
import { collect } from './cli/options.js';
import { type Io, processIo } from './cli/run.js';
import { registerTunnel } from './cli/tunnel.js';
import { Redactor } from './config/redact.js';
import { VERSION } from './version.js';

/**
 * The commander program. Parses nothing and touches nothing on import; tests call
 * `createProgram(io).parseAsync([...], { from: 'user' })`. Subcommand files load their actions lazily.
 */
export function createProgram(io: Io = processIo(process.argv.slice(2))): Command {
  // Commander echoes arguments in its messages: scrub them like every other output path.
  const redactor = new Redactor();
  redactor.addFromEnv(io.env);
  const program = new Command('opskit');
  program
    .description(
      'Run a Flask/gunicorn + PostgreSQL + Redis + nginx platform on Docker hosts: build, deploy, cut over, check, back up.',
    )
    .version(VERSION, '-V, --version', 'print the version')
    .option('-c, --config <file>', 'config file (default: ./opskit.yaml when it exists)')
    .option('-e, --env <name>', 'load .env, then .env.<name>, from the project directory')
    .option('--set <key=value>', 'set a config value, e.g. --set backup.retentionDays=7 (repeatable)', collect)
    .option('--json', 'print exactly one JSON document on stdout')
    .option('--dry-run', 'print every step it would take, change nothing')
    .option('-q, --quiet', 'only warnings and errors on stderr')
    .option('-v, --verbose', 'more detail; stack traces on errors')
    .option('--no-color', 'no colours (also: NO_COLOR=1)')
    .option('--lock-wait <duration>', 'wait this long for the project lock (e.g. 30s, 5m) instead of exiting 4')
    .exitOverride()
    .showHelpAfterError()
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .configureOutput({
      writeOut: (text) => void io.stdout.write(text),
      writeErr: (text) => void io.stderr.write(redactor.scrub(text)),
    });
  registerInit(program, io);
  registerBuild(program, io);
  registerDeploy(program, io);
  registerCutover(program, io);
  registerHealth(program, io);
  registerBackup(program, io);
  registerTunnel(program, io);
  registerLoadtest(program, io);
  registerConfig(program, io);
  registerDoctor(program, io);
  // Each command's help names its page (docs/ ships with the package); subcommands share their parent's.
  for (const command of program.commands) {
    const page = `\nDocs: docs/${command.name()}.md in the opskit package.`;
    command.addHelpText('after', page);
    for (const sub of command.commands) sub.addHelpText('after', page);
  }
  program.addHelpText(
    'after',
    '\nExit codes: 0 ok, 1 the operation failed, 2 usage or configuration error, 3 a check failed, 4 the lock is held.\nDocs: README.md and docs/ in the opskit package.',
  );
  return program;
}
