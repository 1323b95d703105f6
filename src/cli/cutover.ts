import { type Command, Option } from 'commander';
import { buildFirst, collect, SECRET_FLAG_HELP } from './options.js';
import { type Io, runCommand } from './run.js';

export function registerCutover(program: Command, io: Io): void {
  program
    .command('cutover')
    .description(
      'blue-green: start the idle colour with the new image, gate it on health, switch nginx, keep the old colour warm',
    )
    .option('--image <ref>', 'the image for the new colour (default: <image.name>:latest)')
    .option('--tag <tag>', 'use <image.name>:<tag>')
    .option('--build', 'build the image first')
    .option('--build-arg <name=value>', 'with --build: a build argument (repeatable)', collect)
    .option('--secret <id=NAME[,src=FILE|,env=VAR]>', `with --build: a ${SECRET_FLAG_HELP}`, collect)
    .option(
      '--migrate',
      'run the migrations in the new image first (they must then be backward compatible with the live colour)',
    )
    .option(
      '--health-timeout <duration>',
      "deadline of the new colour's health gate (default: cutover.healthTimeout, 60s)",
    )
    .option(
      '--keep-old <duration>',
      'stop the old colour this long after the switch (default: keep it warm until the next cutover)',
    )
    .option('--finalize', 'stop the old colour now (a rollback can still start it again from its image)')
    .addOption(
      new Option(
        '--if-due <time>',
        'with --finalize: only if this keep-old deadline is still the one recorded and has passed',
      ).hideHelp(),
    )
    .action(
      async (
        o: {
          image?: string;
          tag?: string;
          build?: boolean;
          buildArg?: string[];
          secret?: string[];
          migrate?: boolean;
          healthTimeout?: string;
          keepOld?: string;
          finalize?: boolean;
          ifDue?: string;
        },
        command: Command,
      ) => {
        await runCommand(command, io, { name: 'cutover', mutating: true, config: 'required' }, async (ctx) => {
          const [{ runCutover }, { renderSwitch }] = await Promise.all([
            import('../cutover/cutover.js'),
            import('../cutover/switch.js'),
          ]);
          const result = await runCutover(ctx, {
            image: o.image,
            tag: o.tag,
            build: buildFirst(o, ctx),
            migrate: Boolean(o.migrate),
            healthTimeout: o.healthTimeout,
            keepOld: o.keepOld,
            finalize: Boolean(o.finalize),
            ifDue: o.ifDue,
          });
          return { result, render: (reporter) => renderSwitch(result, reporter.out) };
        });
      },
    );

  program
    .command('rollback')
    .description(
      'switch nginx back to the previous colour: instant when it is warm, started again from its image when stopped',
    )
    .option('--health-timeout <duration>', 'deadline when the previous colour has to be started again')
    .action(async (o: { healthTimeout?: string }, command: Command) => {
      await runCommand(command, io, { name: 'rollback', mutating: true, config: 'required' }, async (ctx) => {
        const [{ runRollback }, { renderSwitch }] = await Promise.all([
          import('../cutover/rollback.js'),
          import('../cutover/switch.js'),
        ]);
        const result = await runRollback(ctx, { healthTimeout: o.healthTimeout });
        return { result, render: (reporter) => renderSwitch(result, reporter.out) };
      });
    });

  program
    .command('status')
    .description("the live colour, each colour's image, container state and since when")
    .action(async (_o: unknown, command: Command) => {
      await runCommand(command, io, { name: 'status', mutating: false, config: 'required' }, async (ctx) => {
        const { runStatus, renderStatus } = await import('../cutover/status.js');
        const result = await runStatus(ctx);
        return { result, render: (reporter) => renderStatus(result, reporter.out) };
      });
    });
}
