import { OperationError, UsageError } from '../errors.js';
import { type Context, withMutation } from '../runtime/context.js';
import { formatDuration } from '../runtime/duration.js';
import { Sensitive } from '../sensitive.js';
import { type PgReach, pgReach } from './reach.js';
import { countRows, fetchVerified, TABLES } from './restoring.js';
import { type BackupFlags, pgEnv, target } from './target.js';

/** `opskit backup restore`: a backup loaded into the database, after its checksum is verified. */

export interface RestoreResult {
  id: string;
  target: string;
  downloaded: boolean;
  sha256: string;
  tables: number;
  rows: number;
  durationMs: number;
}

export async function runRestore(
  ctx: Context,
  flags: BackupFlags & { id: string; target: string; yes: boolean },
): Promise<RestoreResult> {
  const t = target(ctx, flags);
  ctx.redactor.addUrl(flags.target);
  const to = Sensitive.url(flags.target);
  const env = pgEnv(to);
  return withMutation(ctx, 'backup restore', async () => {
    const started = ctx.clock.monotonicMs();
    const reach = await pgReach(ctx, to);
    try {
      return await restoreWith(ctx, t, reach, { ...flags, to, env, started });
    } finally {
      await reach.close();
    }
  });
}

async function restoreWith(
  ctx: Context,
  t: ReturnType<typeof target>,
  reach: PgReach,
  input: { id: string; yes: boolean; to: Sensitive; env: Record<string, string>; started: number },
): Promise<RestoreResult> {
  const { to, env, started } = input;
  const flags = input;
  const existing = await reach
    .session(undefined, async (q) => (await q(TABLES)).length)
    .catch((error: unknown) => {
      throw new OperationError(
        'E_PG_CONNECT',
        `cannot connect to the target ${to.toString()}: ${ctx.redactor.scrub((error as Error).message)}`,
      );
    });
  if (existing > 0 && !flags.yes)
    throw new UsageError(
      `the target ${to.toString()} already has ${existing} table(s); pass --yes to restore into it anyway`,
      { code: 'E_TARGET_NOT_EMPTY' },
    );
  const got = await fetchVerified(ctx, t, flags.id);
  const step = ctx.reporter.step(`restore ${got.manifest.name} into ${env.PGDATABASE} (${reach.where})`);
  await reach.restore(t, got.file);
  const counts = await countRows(reach, undefined);
  step.succeed(`restored: ${Object.keys(counts).length} tables`);
  return {
    id: got.manifest.name,
    target: to.toString(),
    downloaded: got.downloaded,
    sha256: got.manifest.sha256,
    tables: Object.keys(counts).length,
    rows: Object.values(counts).reduce((a, b) => a + b, 0),
    durationMs: Math.round(ctx.clock.monotonicMs() - started),
  };
}

export function renderRestore(r: RestoreResult): string {
  return `restored ${r.id} into ${r.target}: ${r.tables} tables, ${r.rows} rows, in ${formatDuration(r.durationMs)} (sha256 verified${r.downloaded ? ', downloaded from S3' : ''})`;
}
