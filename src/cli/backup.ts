import { type Command, Option } from 'commander';
import { type Io, runCommand } from './run.js';

const s3Flags = (c: Command) =>
  c
    .option('--database-url <url>', 'the database (default: database.url / DATABASE_URL); its password is never shown')
    .option('--dir <dir>', 'the local backup directory (default: backup.dir, backups)')
    .option(
      '--s3-bucket <bucket>',
      'upload to / list this bucket (default: s3.bucket); credentials from the AWS environment or profile',
    )
    .option('--s3-prefix <prefix>', 'key prefix, e.g. myapp/ (default: s3.prefix)')
    .option('--s3-endpoint <url>', 'an S3-compatible endpoint (path-style addressing)')
    .option('--s3-region <region>', 'the region (default: s3.region)');
const retention = (c: Command) =>
  c
    .option('--keep-days <n>', 'keep everything younger than N days (default: backup.retentionDays, 30)')
    .option('--keep-daily <n>', 'keep the newest backup of each of the last N days that have one')
    .option('--keep-weekly <n>', 'likewise for N ISO weeks')
    .option('--keep-monthly <n>', 'likewise for N months');

type Flags = {
  databaseUrl?: string;
  dir?: string;
  s3Bucket?: string;
  s3Prefix?: string;
  s3Endpoint?: string;
  s3Region?: string;
  keepDays?: string;
  keepDaily?: string;
  keepWeekly?: string;
  keepMonthly?: string;
};

export function registerBackup(program: Command, io: Io): void {
  const backup = program
    .command('backup')
    .description(
      'PostgreSQL backups: pg_dump | gzip to a local file and S3, with retention, restore and a restore test',
    );

  retention(
    s3Flags(backup.command('create').description('dump, gzip, checksum, keep locally, upload to S3 when configured')),
  )
    .option('--prune', 'after a successful backup, apply the retention')
    .addOption(
      new Option(
        '--via <where>',
        "host: the host's pg_dump; compose: pg_dump inside the db service (default: backup.via)",
      ).choices(['host', 'compose']),
    )
    .action(async (o: Flags & { prune?: boolean; via?: 'host' | 'compose' }, command: Command) => {
      await runCommand(command, io, { name: 'backup create', mutating: true, config: 'required' }, async (ctx) => {
        const [{ runCreate, renderCreate }, { policyFrom }] = await Promise.all([
          import('../backup/create.js'),
          import('../backup/prune.js'),
        ]);
        const policy = policyFrom(ctx, o);
        const result = await runCreate(ctx, { ...o, prune: Boolean(o.prune), policy });
        return { result, render: () => renderCreate(result) };
      });
    });

  s3Flags(backup.command('list').description('local and S3 backups merged: age, size, where, checksum known')).action(
    async (o: Flags, command: Command) => {
      await runCommand(command, io, { name: 'backup list', mutating: false, config: 'required' }, async (ctx) => {
        const { runList, renderList } = await import('../backup/list.js');
        const result = await runList(ctx, o);
        return { result, render: (reporter) => renderList(result, reporter.out) };
      });
    },
  );

  retention(
    s3Flags(
      backup
        .command('prune')
        .description(
          'retention by age and grandfather-father-son; never the newest good backup; --dry-run prints the plan',
        ),
    ),
  ).action(async (o: Flags, command: Command) => {
    await runCommand(command, io, { name: 'backup prune', mutating: true, config: 'required' }, async (ctx) => {
      const { runPrune, renderPrune, policyFrom } = await import('../backup/prune.js');
      const result = await runPrune(ctx, { ...o, policy: policyFrom(ctx, o) });
      return { result, render: () => renderPrune(result) };
    });
  });

  s3Flags(
    backup
      .command('restore')
      .description('download when needed, verify the sha256, restore into --target')
      .argument('<id>', 'a backup name, or latest'),
  )
    .requiredOption('--target <url>', 'the database to restore into (its password is never shown)')
    .option('--yes', 'restore even when the target already has tables')
    .action(async (id: string, o: Flags & { target: string; yes?: boolean }, command: Command) => {
      await runCommand(command, io, { name: 'backup restore', mutating: true, config: 'required' }, async (ctx) => {
        const { runRestore, renderRestore } = await import('../backup/restore.js');
        const result = await runRestore(ctx, { ...o, id, yes: Boolean(o.yes) });
        return { result, render: () => renderRestore(result) };
      });
    });

  s3Flags(
    backup
      .command('verify')
      .description(
        'the restore test: restore into a scratch database, count tables and rows, drop it; exit 1 on any mismatch',
      )
      .argument('[id]', 'a backup name, or latest', 'latest'),
  ).action(async (id: string, o: Flags, command: Command) => {
    await runCommand(command, io, { name: 'backup verify', mutating: true, config: 'required' }, async (ctx) => {
      const { runVerify, renderVerify } = await import('../backup/verify.js');
      const result = await runVerify(ctx, { ...o, id });
      return { result, render: () => renderVerify(result) };
    });
  });
}
