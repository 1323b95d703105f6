import type { Command } from 'commander';
import { collect, parseKeyValues, parseSecretFlags, SECRET_FLAG_HELP, secretsIn } from './options.js';
import { type Io, runCommand } from './run.js';

export function registerBuild(program: Command, io: Io): void {
  program
    .command('build')
    .description(
      "build the image with BuildKit (docker buildx; else the Engine API's classic builder): multi-stage, .dockerignore, progress, size",
    )
    .option('--tag <tag>', 'tag to apply (repeatable; default: <image>:<git sha> and <image>:latest)', collect)
    .option('--target <stage>', 'build up to this stage')
    .option('--build-arg <name=value>', 'build argument (repeatable; secret-looking names are redacted)', collect)
    .option('--secret <id=NAME[,src=FILE|,env=VAR]>', SECRET_FLAG_HELP, collect)
    .option('--no-cache', 'do not use the build cache')
    .option('--file <dockerfile>', 'Dockerfile, relative to the context (default: image.dockerfile)')
    .option('--context <dir>', 'build context directory (default: image.context)')
    .action(
      async (
        options: {
          tag?: string[];
          target?: string;
          buildArg?: string[];
          secret?: string[];
          cache: boolean;
          file?: string;
          context?: string;
        },
        command: Command,
      ) => {
        await runCommand(command, io, { name: 'build', mutating: true, config: 'required' }, async (ctx) => {
          const buildArgs = parseKeyValues('--build-arg', options.buildArg);
          for (const secret of secretsIn(buildArgs)) ctx.redactor.add(secret);
          const secrets = parseSecretFlags(options.secret);
          const { runBuild, renderBuild } = await import('../build/action.js');
          const result = await runBuild(ctx, {
            tags: options.tag ?? [],
            target: options.target,
            buildArgs,
            secrets,
            noCache: !options.cache,
            file: options.file,
            context: options.context,
          });
          return { result, render: (reporter) => renderBuild(result, reporter.out) };
        });
      },
    );
}
