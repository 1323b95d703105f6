import type { Command } from 'commander';
import { type Io, runCommand } from './run.js';

export function registerConfig(program: Command, io: Io): void {
  program
    .command('config')
    .description('print the resolved configuration, secrets redacted (--verbose: where each value came from)')
    .action(async (_options: unknown, command: Command) => {
      await runCommand(command, io, { name: 'config', mutating: false, config: 'required' }, async (ctx) => {
        const { describeConfig, renderConfig } = await import('../config/show.js');
        const result = describeConfig(ctx.loaded!);
        return {
          result,
          render: (reporter) => renderConfig(result, { verbose: ctx.globals.verbose, colour: reporter.out }),
        };
      });
    });
}
