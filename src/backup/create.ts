import path from 'node:path';
import { abortFailureKind } from '../adapters/s3.js';
import { ConfigError, OperationError } from '../errors.js';
import { type Context, withMutation } from '../runtime/context.js';
import { formatDuration } from '../runtime/duration.js';
import type { Sensitive } from '../sensitive.js';
import { composeDumper, type Dumper, hostDumper } from './dumpers.js';
import {
  backupName,
  type Manifest,
  manifestFromMetadata,
  manifestMetadata,
  objectKey,
  parseUploadJournal,
  planLeftovers,
  type RetentionPolicy,
  UPLOAD_JOURNAL_SUFFIX,
  type UploadJournal,
} from './plan.js';
import { type PruneResult, policyFrom, prune } from './prune.js';
import {
  type BackupDeps,
  type BackupFlags,
  formatBytes,
  pgEnv,
  requireUrl,
  s3Cause,
  type Target,
  target,
} from './target.js';

/** `opskit backup create`: pg_dump streamed, checksummed, to the local directory and the bucket. */

/**
 * What became of a multipart upload that an interrupted run started (its journal names it): aborted;
 * gone (it had completed, or was aborted already); unsupported (the store cannot abort: a lifecycle rule
 * must); failed (tried again next run); elsewhere (another bucket than this run's: left for a run that
 * has it).
 */
export type InterruptedUploadOutcome = 'aborted' | 'gone' | 'unsupported' | 'failed' | 'elsewhere';

export interface CreateResult {
  /** null with --dry-run: nothing was dumped; `plan` lists the steps. */
  backup: (Manifest & { file: string }) | null;
  plan?: import('../output/plan.js').PlannedStep[];
  s3: { bucket: string; key: string; uploaded: boolean; error?: string } | null;
  /** Files an interrupted run left, removed: `.partial` files, a manifest whose rename never came, temporary files. */
  removedPartials: string[];
  /** Multipart uploads an interrupted run left, and what was done about them. */
  interruptedUploads: Array<{
    bucket: string;
    key: string;
    uploadId: string | null;
    outcome: InterruptedUploadOutcome;
  }>;
  prune?: PruneResult;
}

/**
 * Aborts the multipart upload a journal names. Never throws: a backup does not fail because an earlier
 * one's leftovers could not be cleaned; the outcome says whether the journal is still needed.
 */
export async function abortUpload(ctx: Context, t: Target, journal: UploadJournal): Promise<InterruptedUploadOutcome> {
  const where = `s3://${journal.bucket}/${journal.key} (${journal.uploadId ? `upload id ${journal.uploadId}` : 'its upload id not yet known'})`;
  if (!t.s3 || t.s3.bucket !== journal.bucket) {
    ctx.reporter.warn(
      `an interrupted run left an incomplete multipart upload to ${where}; a run with that bucket configured aborts it`,
    );
    return 'elsewhere';
  }
  try {
    const adapter = await t.s3.adapter();
    // Killed while CreateMultipartUpload was under way: whatever upload it created is found by its key.
    const ids = journal.uploadId ? [journal.uploadId] : await adapter.listMultipartUploads(journal.key);
    let outcome: 'aborted' | 'gone' = 'gone';
    for (const id of ids) if ((await adapter.abortMultipart(journal.key, id)) === 'aborted') outcome = 'aborted';
    if (outcome === 'aborted') ctx.reporter.info(`aborted the incomplete multipart upload to ${where}`);
    return outcome;
  } catch (error) {
    const kind = abortFailureKind(error as Parameters<typeof abortFailureKind>[0]);
    const cause = ctx.redactor.scrub(s3Cause(error));
    ctx.reporter.warn(
      kind === 'unsupported'
        ? `the store cannot abort the incomplete multipart upload to ${where} (${cause}): its parts stay until a lifecycle rule (AbortIncompleteMultipartUpload) removes them`
        : `could not abort the incomplete multipart upload to ${where} (${cause}); the next run tries again`,
    );
    return kind;
  }
}

/**
 * The journals of multipart uploads killed runs left: each upload aborted, each journal removed unless still needed.
 */
export async function abortInterruptedUploads(
  ctx: Context,
  t: Target,
  journals: readonly string[],
): Promise<CreateResult['interruptedUploads']> {
  const out: CreateResult['interruptedUploads'] = [];
  for (const file of journals) {
    const journalPath = path.join(t.dir, file);
    const journal = parseUploadJournal(await ctx.fs.readText(journalPath));
    if (!journal) {
      // Journals are written atomically: one we cannot read names nothing we could abort.
      ctx.reporter.warn(`removed ${file}: not a readable upload journal`);
      await ctx.fs.remove(journalPath);
      continue;
    }
    const outcome = await abortUpload(ctx, t, journal);
    if (outcome !== 'failed' && outcome !== 'elsewhere') await ctx.fs.remove(journalPath);
    out.push({ bucket: journal.bucket, key: journal.key, uploadId: journal.uploadId ?? null, outcome });
  }
  return out;
}

export async function runCreate(
  ctx: Context,
  flags: BackupFlags & { prune?: boolean; policy?: RetentionPolicy; via?: 'host' | 'compose' | undefined },
  deps: BackupDeps = {},
): Promise<CreateResult> {
  const config = ctx.loaded!.config;
  const t = target(ctx, flags, deps);
  const url = requireUrl(t);
  const env = pgEnv(url);
  if (ctx.globals.dryRun) {
    const name = backupName(env.PGDATABASE!, ctx.clock.now());
    const plan: import('../output/plan.js').PlannedStep[] = [
      {
        kind: 'exec',
        argv: [config.backup.pgDump, '--no-password', '--no-owner', '--no-acl'],
        description: `pg_dump of ${env.PGDATABASE} (${(flags.via ?? config.backup.via) === 'compose' ? `in the ${config.database.service} container` : 'connection from PG* variables'}), gzip level ${config.backup.gzipLevel}`,
      },
      {
        kind: 'write',
        path: path.join(t.dir, `${name}.partial`),
        bytes: 0,
        overwrite: false,
        description: `when pg_dump exited 0, its manifest ${name}.json, then renamed to ${name}`,
      },
      ...(t.s3
        ? [
            {
              kind: 'http' as const,
              method: 'PUT',
              url: `s3://${t.s3.bucket}/${objectKey(t.s3.prefix, name)}`,
              description: `multipart, ${config.backup.partSizeMiB} MiB parts; HeadObject must confirm the size`,
            },
          ]
        : []),
    ];
    for (const step of plan) ctx.reporter.dryRun(step);
    return { backup: null, s3: null, removedPartials: [], interruptedUploads: [], plan };
  }
  return withMutation(ctx, 'backup create', async () => {
    await ctx.fs.mkdirp(t.dir);
    // Under the lock no other run is writing: what a killed run left is judged by planLeftovers.
    const leftovers = planLeftovers((await t.store.list(t.dir)).map((f) => f.name));
    const removedPartials: string[] = [];
    for (const file of leftovers.remove) {
      await ctx.fs.remove(path.join(t.dir, file));
      removedPartials.push(file);
      ctx.reporter.warn(`removed ${file}, left by an interrupted run`);
    }
    const interruptedUploads = await abortInterruptedUploads(ctx, t, leftovers.uploads);
    const startedAt = await freeStartTime(ctx, t, env.PGDATABASE!);
    const started = ctx.clock.monotonicMs();
    const via = flags.via ?? config.backup.via;
    // On Swarm, inside the overlay: a container of the database's image there runs pg_dump (no port published).
    const overlay =
      via === 'compose' && config.engine === 'swarm'
        ? await (await import('./overlay.js')).overlayReach(ctx, url)
        : undefined;
    try {
      return await createWith(ctx, t, {
        url,
        env,
        startedAt,
        started,
        removedPartials,
        interruptedUploads,
        flags,
        dumper: overlay
          ? overlay.dumper
          : via === 'compose'
            ? await composeDumper(ctx, env)
            : hostDumper(ctx, url, env),
      });
    } finally {
      await overlay?.close();
    }
  });
}

/** The dump itself, once the leftovers of an interrupted run are handled and the dumper is chosen. */
async function createWith(
  ctx: Context,
  t: Target,
  input: {
    url: Sensitive;
    env: Record<string, string>;
    startedAt: Date;
    started: number;
    removedPartials: string[];
    interruptedUploads: CreateResult['interruptedUploads'];
    flags: { prune?: boolean; policy?: RetentionPolicy };
    dumper: Dumper;
  },
): Promise<CreateResult> {
  const config = ctx.loaded!.config;
  const { url, env, startedAt, started, removedPartials, interruptedUploads, flags, dumper } = input;
  let step = ctx.reporter.step(`connect to ${env.PGDATABASE} ${dumper.where}`);
  const serverVersion = await dumper.serverVersion().catch((error: unknown) => {
    step.fail();
    throw new OperationError(
      'E_PG_CONNECT',
      `cannot connect to ${url.toString()}: ${ctx.redactor.scrub((error as Error).message)}`,
      { hint: 'nothing was written' },
    );
  });
  step.succeed(`PostgreSQL ${serverVersion}`);
  const server = { serverVersion };
  const name = backupName(env.PGDATABASE!, startedAt);
  const final = path.join(t.dir, name);
  const partial = `${final}.partial`;
  step = ctx.reporter.step(`pg_dump ${env.PGDATABASE} | gzip > ${path.relative(ctx.cwd, final) || final}`);
  const dump = await dumper.dump();
  let written: { rawBytes: number; sizeBytes: number; sha256: string };
  let manifest: Manifest;
  let manifestWritten = false;
  try {
    const [w, exit] = await Promise.all([t.store.gzipTo(dump.stdout, partial, config.backup.gzipLevel), dump.done]);
    written = w;
    if (exit.notFound)
      throw new ConfigError(`backup.pgDump: ${config.backup.pgDump} not found`, {
        code: 'E_NO_PG_DUMP',
        hint: 'install postgresql-client',
      });
    if (exit.exitCode !== 0)
      throw new OperationError(
        'E_PG_DUMP_FAILED',
        `pg_dump failed (exit ${exit.exitCode ?? exit.signal ?? 'unknown'}): ${ctx.redactor.scrub(exit.stderr.trim().split('\n').slice(-5).join('\n'))}`,
        { hint: 'nothing was written or uploaded' },
      );
    if (w.rawBytes < config.backup.minDumpBytes)
      throw new OperationError(
        'E_DUMP_TOO_SMALL',
        `the dump is ${w.rawBytes} bytes, below backup.minDumpBytes (${config.backup.minDumpBytes}): not a backup`,
      );
    const endedAt = ctx.clock.now();
    manifest = {
      name,
      database: env.PGDATABASE!,
      serverVersion: server.serverVersion,
      sizeBytes: written.sizeBytes,
      sha256: written.sha256,
      startedAt: startedAt.toISOString(),
      endedAt: endedAt.toISOString(),
      durationMs: Math.round(ctx.clock.monotonicMs() - started),
      format: 1,
    };
    // The manifest before the final name, so that a file under a backup's name always has one: a run
    // killed in between leaves a .partial and its manifest, which the next run removes (planLeftovers).
    await ctx.fs.writeFileAtomic(`${final}.json`, `${JSON.stringify(manifest, null, 2)}\n`);
    manifestWritten = true;
    await t.store.commit(partial, final);
  } catch (error) {
    step.fail();
    dump.kill();
    await ctx.fs.remove(partial);
    if (manifestWritten) await ctx.fs.remove(`${final}.json`);
    throw error;
  }
  step.succeed(
    `${name}: ${formatBytes(written.sizeBytes)} (${formatBytes(written.rawBytes)} dumped), sha256 ${written.sha256.slice(0, 12)}`,
  );
  let s3: CreateResult['s3'] = null;
  if (t.s3) {
    const { bucket } = t.s3;
    const key = objectKey(t.s3.prefix, name);
    const journalPath = `${final}${UPLOAD_JOURNAL_SUFFIX}`;
    // Set while a multipart upload may be open: recorded beside the backup before CreateMultipartUpload,
    // then with its id before the first part, so that the next run aborts the upload of a run killed
    // mid-way (its parts are billed until someone does).
    let journal: UploadJournal | undefined;
    const record = async (uploadId: string | undefined) => {
      journal = { bucket, key, uploadId, startedAt: journal?.startedAt ?? ctx.clock.now().toISOString() };
      await ctx.fs.writeFileAtomic(journalPath, `${JSON.stringify(journal)}\n`);
    };
    step = ctx.reporter.step(`upload to s3://${bucket}/${key}`);
    try {
      const adapter = await t.s3.adapter();
      await adapter.upload(
        key,
        { sizeBytes: manifest.sizeBytes, read: (start, length) => t.store.readRange(final, start, length) },
        {
          metadata: manifestMetadata(manifest),
          partSizeBytes: config.backup.partSizeMiB * 2 ** 20,
          queueSize: config.backup.queueSize,
          onMultipart: { creating: () => record(undefined), created: (uploadId) => record(uploadId) },
        },
      );
      if (journal) {
        journal = undefined;
        await ctx.fs.remove(journalPath);
      }
      const head = await adapter.head(key);
      const stored = head && manifestFromMetadata(name, head.metadata);
      if (head?.sizeBytes !== manifest.sizeBytes || stored?.sha256 !== manifest.sha256) {
        await adapter.remove([key]).catch(() => {});
        const says = head ? `${head.sizeBytes} bytes${stored ? '' : ', no opskit manifest'}` : 'no object';
        throw new Error(
          `HeadObject says ${says}, expected ${manifest.sizeBytes} bytes and sha256 ${manifest.sha256.slice(0, 12)}`,
        );
      }
      step.succeed(`uploaded, ${formatBytes(head.sizeBytes)} confirmed`);
      s3 = { bucket, key, uploaded: true };
    } catch (error) {
      step.fail();
      if (journal && (await abortUpload(ctx, t, journal)) !== 'failed') await ctx.fs.remove(journalPath);
      throw new OperationError(
        'E_S3_UPLOAD',
        `the upload to S3 (s3://${bucket}/${key}) failed: ${ctx.redactor.scrub(s3Cause(error))}`,
        { hint: `the local backup ${final} is kept`, details: { backup: { ...manifest, file: final } } },
      );
    }
  }
  const result: CreateResult = { backup: { ...manifest, file: final }, s3, removedPartials, interruptedUploads };
  if (flags.prune) result.prune = await prune(ctx, t, flags.policy ?? policyFrom(ctx, {}));
  return result;
}

/**
 * Now, or the next whole second when a backup already has the name that now gives: names have whole
 * seconds, and a second run within one second would write its manifest over the first one's (it is
 * written before the rename). Bounded: a name still taken after three seconds is an error.
 */
export async function freeStartTime(ctx: Context, t: Target, database: string): Promise<Date> {
  for (let attempt = 0; ; attempt++) {
    const at = ctx.clock.now();
    const final = path.join(t.dir, backupName(database, at));
    if (!(await ctx.fs.exists(final)) && !(await ctx.fs.exists(`${final}.json`))) return at;
    if (attempt === 3)
      throw new OperationError('E_BACKUP_EXISTS', `a backup named ${path.basename(final)} already exists`, {
        hint: 'is the clock stepping back? nothing was written',
      });
    await ctx.clock.sleep(1000 - (at.getTime() % 1000));
  }
}

export function renderCreate(r: CreateResult): string {
  if (!r.backup) return `would back up (${r.plan?.length ?? 0} steps, listed above); nothing was dumped`;
  return [
    `backup ${r.backup.name}: ${formatBytes(r.backup.sizeBytes)}, sha256 ${r.backup.sha256}, in ${formatDuration(r.backup.durationMs)}`,
    `  local: ${r.backup.file}`,
    ...(r.s3 ? [`  s3:    s3://${r.s3.bucket}/${r.s3.key}`] : ['  s3:    not configured (local only)']),
    ...(r.prune ? [`  prune: deleted ${r.prune.deleted.local.length} local, ${r.prune.deleted.s3.length} S3`] : []),
  ].join('\n');
}
