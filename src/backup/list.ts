import type { ChalkInstance } from 'chalk';
import { OperationError } from '../errors.js';
import { renderTable } from '../output/table.js';
import type { Context } from '../runtime/context.js';
import { formatDuration } from '../runtime/duration.js';
import { type BackupRow, mergeListing, type RemoteEntry } from './plan.js';
import { type BackupFlags, formatBytes, listLocal, listRemote, s3Cause, type Target, target } from './target.js';

/** `opskit backup list`: the backups in the local directory and the bucket, side by side. */

export interface ListResult {
  dir: string;
  s3: { bucket: string; prefix: string } | null;
  backups: BackupRow[];
}

export async function runList(ctx: Context, flags: BackupFlags): Promise<ListResult> {
  const { remote: _remote, ...result } = await listing(ctx, target(ctx, flags));
  return result;
}

export async function listing(ctx: Context, t: Target): Promise<ListResult & { remote: RemoteEntry[] }> {
  let remote: Awaited<ReturnType<typeof listRemote>>;
  try {
    remote = await listRemote(t);
  } catch (error) {
    throw new OperationError(
      'E_S3_LIST',
      `listing s3://${t.s3!.bucket}/${t.s3!.prefix} failed: ${ctx.redactor.scrub(s3Cause(error))}`,
    );
  }
  return {
    dir: t.dir,
    s3: t.s3 ? { bucket: t.s3.bucket, prefix: t.s3.prefix } : null,
    backups: mergeListing(await listLocal(ctx, t), remote, ctx.clock.now()),
    remote,
  };
}

/** Where the copies are; in a good row, a copy that is not good (an upload killed mid-way) says so. */
export function whereCell(b: BackupRow): string {
  const where = [b.local ? 'local' : '', b.s3 ? 's3' : ''].filter(Boolean).join('+');
  const bad = b.good ? [b.local && !b.localGood ? 'local' : '', b.s3 && !b.s3Good ? 's3' : ''].filter(Boolean) : [];
  return bad.length ? `${where} (${bad.join(', ')} copy not good)` : where;
}

export function renderList(r: ListResult, colour: ChalkInstance): string {
  if (r.backups.length === 0) return `no backups in ${r.dir}${r.s3 ? ` or s3://${r.s3.bucket}/${r.s3.prefix}` : ''}`;
  const age = (ms: number) => formatDuration(Math.max(0, ms));
  return renderTable(
    ['backup', 'age', 'size', 'where', 'checksum'],
    r.backups.map((b) => [
      b.id,
      age(b.ageMs),
      formatBytes(b.sizeBytes),
      whereCell(b),
      b.good ? b.sha256!.slice(0, 12) : 'unknown',
    ]),
    (row, column, cell) => (column === 4 ? (r.backups[row]!.good ? colour.green(cell) : colour.yellow(cell)) : cell),
  );
}
