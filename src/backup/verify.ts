import { OperationError } from '../errors.js';
import { type Context, withMutation } from '../runtime/context.js';
import { formatDuration } from '../runtime/duration.js';
import { type PgReach, pgReach } from './reach.js';
import { countRows, fetchVerified } from './restoring.js';
import { type BackupFlags, requireUrl, target } from './target.js';

/** `opskit backup verify`: a restore test into a scratch database, its tables counted, then dropped. */

export interface VerifyResult {
  id: string;
  scratchDatabase: string;
  sha256: string;
  checksum: 'ok';
  downloaded: boolean;
  tables: Record<string, number>;
  rows: number;
  restoreMs: number;
  durationMs: number;
}

/** The restore test: into a scratch database on the same server, created and dropped here. */
export async function runVerify(ctx: Context, flags: BackupFlags & { id: string }): Promise<VerifyResult> {
  const t = target(ctx, flags);
  const url = requireUrl(t);
  return withMutation(ctx, 'backup verify', async () => {
    const reach = await pgReach(ctx, url);
    try {
      return await verifyWith(ctx, t, reach, flags.id);
    } finally {
      await reach.close();
    }
  });
}

async function verifyWith(
  ctx: Context,
  t: ReturnType<typeof target>,
  reach: PgReach,
  id: string,
): Promise<VerifyResult> {
  const started = ctx.clock.monotonicMs();
  const got = await fetchVerified(ctx, t, id);
  const scratch = `opskit_verify_${ctx.clock.now().getTime().toString(36)}_${ctx.system.pid}`;
  await reach
    .session(undefined, (q) => q(`CREATE DATABASE ${scratch}`))
    .catch((error: unknown) => {
      throw new OperationError(
        'E_VERIFY_SCRATCH',
        `cannot create the scratch database ${scratch}: ${ctx.redactor.scrub((error as Error).message)}`,
        { hint: 'the role in database.url needs CREATEDB' },
      );
    });
  try {
    const step = ctx.reporter.step(`restore ${got.manifest.name} into the scratch database ${scratch}`);
    const t0 = ctx.clock.monotonicMs();
    await reach.restore(t, got.file, scratch);
    const restoreMs = Math.round(ctx.clock.monotonicMs() - t0);
    const tables = await countRows(reach, scratch);
    if (Object.keys(tables).length === 0)
      throw new OperationError('E_VERIFY_EMPTY', `${got.manifest.name} restored no table`);
    step.succeed(`restored ${Object.keys(tables).length} tables in ${formatDuration(restoreMs)}`);
    return {
      id: got.manifest.name,
      scratchDatabase: scratch,
      sha256: got.manifest.sha256,
      checksum: 'ok',
      downloaded: got.downloaded,
      tables,
      rows: Object.values(tables).reduce((a, b) => a + b, 0),
      restoreMs,
      durationMs: Math.round(ctx.clock.monotonicMs() - started),
    };
  } finally {
    await reach
      .session(undefined, (q) => q(`DROP DATABASE IF EXISTS ${scratch} WITH (FORCE)`))
      .catch(() => ctx.reporter.warn(`could not drop the scratch database ${scratch}`));
  }
}

export function renderVerify(r: VerifyResult): string {
  return [
    `verified ${r.id}: sha256 ok, restored into ${r.scratchDatabase} (dropped) in ${formatDuration(r.restoreMs)}: ${Object.keys(r.tables).length} tables, ${r.rows} rows`,
    ...Object.entries(r.tables).map(([t, n]) => `  ${t}: ${n}`),
  ].join('\n');
}
