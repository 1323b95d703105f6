import path from 'node:path';
import { ConfigError, OperationError } from '../errors.js';
import type { Context } from '../runtime/context.js';
import { listing } from './list.js';
import { copyToRestore, type Manifest, objectKey, parseManifest } from './plan.js';
import type { PgReach } from './reach.js';
import { psqlRestoreArgv } from './reach.js';
import type { Target } from './target.js';

/** A backup fetched back (checked against its manifest) and loaded into a database: what restore and verify share. */

/** Finds a backup (an id or `latest`) and makes sure a verified local copy exists. */
export async function fetchVerified(
  ctx: Context,
  t: Target,
  id: string,
): Promise<{ file: string; manifest: Manifest; downloaded: boolean }> {
  const found = await listing(ctx, t);
  // latest: the newest backup with a manifest, good or not, so that a damaged newest backup fails the test.
  const known = found.backups.filter((b) => b.sha256 !== null);
  const row = id === 'latest' ? known[0] : found.backups.find((b) => b.id === id);
  if (!row)
    throw new OperationError(
      'E_NO_BACKUP',
      id === 'latest' ? 'no backup with a manifest to restore' : `no backup ${id} (see opskit backup list)`,
    );
  const local = path.join(t.dir, row.id);
  const localManifest = row.local ? parseManifest(await ctx.fs.readText(`${local}.json`)) : undefined;
  const manifest = t.s3 ? found.remote.find((r) => r.name === row.id)?.manifest : undefined;
  const copy = copyToRestore({
    ...row,
    localManifest: localManifest !== undefined,
    s3Manifest: manifest !== undefined,
  });
  if (copy === 'local') {
    const actual = await t.store.sha256(local);
    if (actual.sha256 !== localManifest!.sha256)
      throw new OperationError(
        'E_CHECKSUM',
        `${row.id}: sha256 ${actual.sha256} does not match its manifest (${localManifest!.sha256})`,
      );
    return { file: local, manifest: localManifest!, downloaded: false };
  }
  if (!row.s3 || !t.s3)
    throw new OperationError('E_NO_BACKUP', `${row.id} has no manifest and no S3 copy: its checksum is unknown`);
  const adapter = await t.s3.adapter();
  const key = objectKey(t.s3.prefix, row.id);
  if (copy === undefined || !manifest)
    throw new OperationError('E_NO_BACKUP', `s3://${t.s3.bucket}/${key} carries no opskit manifest`);
  await ctx.fs.mkdirp(t.dir);
  const partial = `${local}.download.partial`;
  const saved = await t.store.saveTo(await adapter.download(key), partial);
  if (saved.sha256 !== manifest.sha256) {
    await ctx.fs.remove(partial);
    throw new OperationError(
      'E_CHECKSUM',
      `${row.id} from S3: sha256 ${saved.sha256} does not match its manifest (${manifest.sha256})`,
    );
  }
  await t.store.commit(partial, local);
  await ctx.fs.writeFileAtomic(`${local}.json`, `${JSON.stringify(manifest, null, 2)}\n`);
  return { file: local, manifest, downloaded: true };
}

export async function psqlRestore(ctx: Context, t: Target, file: string, env: Record<string, string>): Promise<void> {
  const config = ctx.loaded!.config;
  const [psqlFile, ...psqlArgs] = psqlRestoreArgv(config.backup.psql);
  const psql = await ctx.exec.stream(psqlFile!, psqlArgs, { env: { ...ctx.processEnv, ...env }, stdin: 'pipe' });
  const { pipeline } = await import('node:stream/promises');
  const [, exit] = await Promise.all([pipeline(t.store.gunzipStream(file), psql.stdin).catch(() => {}), psql.done]);
  if (exit.notFound)
    throw new ConfigError(`backup.psql: ${config.backup.psql} not found`, {
      code: 'E_NO_PSQL',
      hint: 'install postgresql-client',
    });
  if (exit.exitCode !== 0)
    throw new OperationError(
      'E_RESTORE_FAILED',
      `psql failed (exit ${exit.exitCode}); the restore was rolled back: ${ctx.redactor.scrub(exit.stderr.trim().split('\n').slice(-5).join('\n'))}`,
    );
}

export const TABLES =
  "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) AS t FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1";

export async function countRows(reach: PgReach, database: string | undefined) {
  return reach.session(database, async (q) => {
    const tables = (await q(TABLES)).map((r) => String(r.t));
    const rows: Record<string, number> = {};
    for (const table of tables) rows[table] = Number((await q(`SELECT count(*) AS n FROM ${table}`))[0]!.n);
    return rows;
  });
}
