import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { type Io, runCommand } from './run.js';

export function registerInit(program: Command, io: Io): void {
  program
    .command('init')
    .description('write opskit.yaml and the Dockerfile, compose, nginx, env and crontab templates into this directory')
    .option('--force', 'overwrite files that already exist')
    .option('--workers <n>', 'gunicorn workers to render (default: 2 x CPUs + 1 of this machine)')
    .option(
      '--example [dir]',
      'also write the sample platform (Flask API, migrations, .env, .env.offline), into DIR or here',
    )
    .option('--engine <engine>', 'compose (one host, the default) or swarm (Docker Swarm: docs/swarm.md)')
    .action(
      async (
        options: { force?: boolean; workers?: string; example?: boolean | string; engine?: string },
        command: Command,
      ) => {
        await runCommand(command, io, { name: 'init', mutating: true, config: 'none' }, async (ctx) => {
          let workers: number | undefined;
          if (options.workers !== undefined) {
            workers = Number(options.workers);
            if (!Number.isInteger(workers) || workers < 1)
              throw new UsageError(`--workers: expected a positive integer, got "${options.workers}"`);
          }
          const engine = options.engine ?? 'compose';
          if (engine !== 'compose' && engine !== 'swarm')
            throw new UsageError(`--engine: expected compose or swarm, got "${engine}"`);
          const { runInit, renderInitResult } = await import('../init/action.js');
          const result = await runInit(ctx, {
            force: Boolean(options.force),
            workers,
            example: options.example !== undefined && options.example !== false,
            directory: typeof options.example === 'string' ? options.example : undefined,
            engine,
            // The lab's env (`npm run lab -- up`, then `. .lab/env`), or the operator's own.
            site: {
              registry: io.env.OPSKIT_REGISTRY ?? io.env.OPSKIT_LAB_REGISTRY,
              edge: io.env.OPSKIT_LAB_NODES?.trim().split(/\s+/)[0],
            },
          });
          return { result, render: (reporter) => renderInitResult(result, reporter.out) };
        });
      },
    );
}
