import type { Command } from 'commander';
import { buildFirst, collect, SECRET_FLAG_HELP } from './options.js';
import { type Io, runCommand } from './run.js';

export function registerDeploy(program: Command, io: Io): void {
  program
    .command('deploy')
    .description(
      'migrate-then-start: start the database, wait until healthy, migrate with the new image, then start the API',
    )
    .option('--image <ref>', 'the image to deploy (default: <image.name>:latest)')
    .option('--tag <tag>', 'deploy <image.name>:<tag>')
    .option('--build', 'build the image first (opskit build), then deploy what it built')
    .option('--build-arg <name=value>', 'with --build: a build argument (repeatable)', collect)
    .option('--secret <id=NAME[,src=FILE|,env=VAR]>', `with --build: a ${SECRET_FLAG_HELP}`, collect)
    .option('--skip-migrations', 'do not run the migrations')
    .option(
      '--wait-timeout <duration>',
      'deadline for the dependencies to become healthy (default: deploy.waitTimeout, 120s)',
    )
    .option(
      '--health-timeout <duration>',
      'deadline for the new API to answer its health path (default: deploy.healthTimeout, 60s)',
    )
    .action(
      async (
        options: {
          image?: string;
          tag?: string;
          build?: boolean;
          buildArg?: string[];
          secret?: string[];
          skipMigrations?: boolean;
          waitTimeout?: string;
          healthTimeout?: string;
        },
        command: Command,
      ) => {
        await runCommand(command, io, { name: 'deploy', mutating: true, config: 'required' }, async (ctx) => {
          const { runDeploy } = await import('../deploy/action.js');
          const { renderDeploy } = await import('../deploy/render.js');
          const result = await runDeploy(ctx, {
            image: options.image,
            tag: options.tag,
            build: buildFirst(options, ctx),
            skipMigrations: Boolean(options.skipMigrations),
            waitTimeout: options.waitTimeout,
            healthTimeout: options.healthTimeout,
          });
          return { result, render: (reporter) => renderDeploy(result, reporter.out) };
        });
      },
    );
}
