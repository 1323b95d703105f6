import type { Command } from 'commander';
import { parseDuration } from '../runtime/duration.js';
import { type Io, runCommand } from './run.js';

export function registerDoctor(program: Command, io: Io): void {
  program
    .command('doctor')
    .description('check this machine: Docker engine, compose CLI, nginx, pg_dump/psql, ngrok, S3, the config')
    .option('--timeout <duration>', 'timeout of each check', '5s')
    .action(async (options: { timeout: string }, command: Command) => {
      await runCommand(command, io, { name: 'doctor', mutating: false, config: 'tolerant' }, async (ctx) => {
        const timeoutMs = parseDuration(options.timeout, '--timeout');
        const { runDoctor, renderDoctor } = await import('../doctor/action.js');
        return renderDoctor(await runDoctor(ctx, { timeoutMs }));
      });
    });
}
