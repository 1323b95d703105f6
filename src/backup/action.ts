import path from 'node:path';
import type { ChalkInstance } from 'chalk';
import { type BackupStore, nodeBackupStore } from '../adapters/backupstore.js';
import { abortFailureKind, createS3Adapter, type S3Adapter, type S3Settings } from '../adapters/s3.js';
import { Sensitive } from '../config/sensitive.js';
import { ConfigError, OperationError, UsageError } from '../errors.js';
import { renderTable } from '../output/table.js';
import { type Context, projectPath, withMutation } from '../runtime/context.js';
import { formatDuration } from '../runtime/duration.js';
import {
  type BackupRow,
  backupName,
  copyToRestore,
  type Manifest,
  manifestFromMetadata,
  manifestMetadata,
  mergeListing,
  normalizePrefix,
  objectKey,
  type PruneDecision,
  parseBackupName,
  parseManifest,
  parseUploadJournal,
  planLeftovers,
  planPrune,
  type RemoteEntry,
  type RetentionPolicy,
  UPLOAD_JOURNAL_SUFFIX,
  type UploadJournal,
} from './plan.js';

/** Flags that stand in for the config file, so cron and CI need none. */
export interface BackupFlags {
  databaseUrl?: string | undefined;
  dir?: string | undefined;
  s3Bucket?: string | undefined;
  s3Prefix?: string | undefined;
  s3Endpoint?: string | undefined;
  s3Region?: string | undefined;
}

interface Target {
  dir: string;
  url: Sensitive | undefined;
  s3: { adapter: () => Promise<S3Adapter>; bucket: string; prefix: string } | undefined;
  store: BackupStore;
}

/** The adapters a backup action uses beyond the context's: the real ones unless a test passes fakes. */
export interface BackupDeps {
  store?: BackupStore;
  s3?: (settings: S3Settings) => Promise<S3Adapter>;
}

function target(ctx: Context, flags: BackupFlags, deps: BackupDeps = {}): Target {
  const store = deps.store ?? nodeBackupStore;
  const connect = deps.s3 ?? createS3Adapter;
  const config = ctx.loaded!.config;
  const url = flags.databaseUrl ? Sensitive.url(flags.databaseUrl) : config.database.url;
  if (flags.databaseUrl) ctx.redactor.addUrl(flags.databaseUrl);
  const bucket = flags.s3Bucket ?? config.s3.bucket;
  const prefix = normalizePrefix(flags.s3Prefix ?? config.s3.prefix);
  const endpoint = flags.s3Endpoint ?? config.s3.endpoint ?? ctx.loaded!.env.AWS_ENDPOINT_URL_S3;
  const region = flags.s3Region ?? config.s3.region;
  const secret = config.s3.secretAccessKey;
  if (secret) ctx.redactor.add(secret.reveal());
  let adapter: Promise<S3Adapter> | undefined;
  return {
    dir: projectPath(ctx, flags.dir ?? config.backup.dir),
    url,
    store,
    s3: bucket
      ? {
          bucket,
          prefix,
          adapter: () =>
            (adapter ??= connect({
              bucket,
              region,
              endpoint,
              // An endpoint is an S3-compatible store: path-style addressing unless told otherwise.
              forcePathStyle: config.s3.forcePathStyle || Boolean(endpoint),
              credentials:
                config.s3.accessKeyId && secret
                  ? { accessKeyId: config.s3.accessKeyId, secretAccessKey: secret }
                  : undefined,
            })),
        }
      : undefined,
  };
}

/** PG* variables for pg_dump and psql: the password never goes on a command line. */
export function pgEnv(url: Sensitive, database?: string): Record<string, string> {
  const u = new URL(url.reveal());
  if (!/^postgres(ql)?:$/.test(u.protocol))
    throw new ConfigError('database.url: expected a postgres:// URL', { code: 'E_BAD_DATABASE_URL' });
  const env: Record<string, string> = {
    PGHOST: decodeURIComponent(u.hostname || 'localhost'),
    PGPORT: u.port || '5432',
    PGDATABASE: database ?? decodeURIComponent(u.pathname.replace(/^\//, '')),
  };
  if (u.username) env.PGUSER = decodeURIComponent(u.username);
  if (u.password) env.PGPASSWORD = decodeURIComponent(u.password);
  const ssl = u.searchParams.get('sslmode');
  if (ssl) env.PGSSLMODE = ssl;
  if (!env.PGDATABASE) throw new ConfigError('database.url: the URL names no database', { code: 'E_BAD_DATABASE_URL' });
  return env;
}

function requireUrl(t: Target, flag = '--database-url'): Sensitive {
  if (!t.url)
    throw new ConfigError(`no database to back up: set database.url (or DATABASE_URL) or pass ${flag}`, {
      code: 'E_NO_DATABASE_URL',
    });
  return t.url;
}

const s3Cause = (error: unknown): string => {
  const e = error as { name?: string; message?: string; code?: string; cause?: { code?: string; message?: string } };
  return [e.name, e.code ?? e.cause?.code, e.message].filter(Boolean).join(': ');
};

interface Dumper {
  where: string;
  serverVersion(): Promise<string>;
  dump(): Promise<{
    stdout: NodeJS.ReadableStream & import('node:stream').Readable;
    done: Promise<{ exitCode: number | undefined; signal?: string | undefined; stderr: string; notFound: boolean }>;
    kill(): void;
  }>;
}

function hostDumper(ctx: Context, url: Sensitive, env: Record<string, string>): Dumper {
  const config = ctx.loaded!.config;
  return {
    where: `on ${env.PGHOST}:${env.PGPORT}`,
    serverVersion: async () => (await ctx.datastores.postgres(url, 10_000)).serverVersion,
    dump: async () => {
      const p = await ctx.exec.stream(config.backup.pgDump, ['--no-password', '--no-owner', '--no-acl'], {
        env: { ...ctx.processEnv, ...env },
        stdin: 'ignore',
      });
      return { stdout: p.stdout, done: p.done, kill: p.kill };
    },
  };
}

/** pg_dump inside the db service's container, over its local socket; the password goes in the exec's env. */
async function composeDumper(ctx: Context, env: Record<string, string>): Promise<Dumper> {
  const config = ctx.loaded!.config;
  const { pickServiceContainer, serviceLabels } = await import('../adapters/compose.js');
  const project = config.compose.project ?? config.project.name!;
  const docker = await ctx.docker(config.docker.host ?? ctx.loaded!.env.DOCKER_HOST);
  const c = pickServiceContainer(await docker.listContainers(serviceLabels(project, config.database.service)));
  if (!c?.running)
    throw new OperationError(
      'E_DB_DOWN',
      `backup.via compose: the ${config.database.service} service of ${project} is not running`,
      { hint: 'start it (opskit deploy), or use backup.via: host' },
    );
  const inner = {
    PGUSER: env.PGUSER ?? 'postgres',
    PGDATABASE: env.PGDATABASE!,
    ...(env.PGPASSWORD ? { PGPASSWORD: env.PGPASSWORD } : {}),
  };
  return {
    where: `in the ${config.database.service} container (${c.name})`,
    async serverVersion() {
      const r = await docker.execStream(c.id, ['psql', '-X', '-Atc', 'SHOW server_version'], inner);
      let out = '';
      r.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      const exit = await r.done;
      if (exit.exitCode !== 0) throw new Error(exit.stderr.trim() || `psql exited ${exit.exitCode}`);
      return out.trim();
    },
    async dump() {
      const r = await docker.execStream(c.id, [config.backup.pgDump, '--no-password', '--no-owner', '--no-acl'], inner);
      return {
        stdout: r.stdout as NodeJS.ReadableStream & import('node:stream').Readable,
        done: r.done.then((d) => ({ ...d, notFound: false })),
        kill: () => {},
      };
    },
  };
}

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
  plan?: import('../runtime/plan.js').PlannedStep[];
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
async function abortUpload(ctx: Context, t: Target, journal: UploadJournal): Promise<InterruptedUploadOutcome> {
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
async function abortInterruptedUploads(
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
    const plan: import('../runtime/plan.js').PlannedStep[] = [
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
    const dumper = via === 'compose' ? await composeDumper(ctx, env) : hostDumper(ctx, url, env);
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
  });
}

/**
 * Now, or the next whole second when a backup already has the name that now gives: names have whole
 * seconds, and a second run within one second would write its manifest over the first one's (it is
 * written before the rename). Bounded: a name still taken after three seconds is an error.
 */
async function freeStartTime(ctx: Context, t: Target, database: string): Promise<Date> {
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

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = -1;
  do {
    v /= 1024;
    i++;
  } while (v >= 1024 && i < units.length - 1);
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

async function listLocal(ctx: Context, t: Target) {
  const files = await t.store.list(t.dir);
  const out = [];
  for (const f of files) {
    if (!parseBackupName(f.name)) continue;
    out.push({
      name: f.name,
      sizeBytes: f.sizeBytes,
      manifest: parseManifest(await ctx.fs.readText(path.join(t.dir, `${f.name}.json`))),
    });
  }
  return out;
}

async function listRemote(t: Target) {
  if (!t.s3) return [];
  const adapter = await t.s3.adapter();
  const objects = await adapter.list(t.s3.prefix);
  const out = [];
  for (const o of objects) {
    const name = o.key.slice(t.s3.prefix.length);
    // Exactly under the prefix, and one of ours by name; the manifest is in its metadata.
    if (name.includes('/') || !parseBackupName(name)) continue;
    const head = await adapter.head(o.key);
    out.push({ key: o.key, name, sizeBytes: o.sizeBytes, manifest: manifestFromMetadata(name, head?.metadata) });
  }
  return out;
}

export interface ListResult {
  dir: string;
  s3: { bucket: string; prefix: string } | null;
  backups: BackupRow[];
}

export async function runList(ctx: Context, flags: BackupFlags): Promise<ListResult> {
  const { remote: _remote, ...result } = await listing(ctx, target(ctx, flags));
  return result;
}

async function listing(ctx: Context, t: Target): Promise<ListResult & { remote: RemoteEntry[] }> {
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

export interface PruneResult {
  dryRun: boolean;
  local: PruneDecision[];
  s3: PruneDecision[];
  deleted: { local: string[]; s3: string[] };
}

export function policyFrom(
  ctx: Context,
  o: {
    keepDays?: string | undefined;
    keepDaily?: string | undefined;
    keepWeekly?: string | undefined;
    keepMonthly?: string | undefined;
  },
): RetentionPolicy {
  const b = ctx.loaded!.config.backup;
  const num = (v: string | undefined, flag: string, fallback: number | undefined) => {
    if (v === undefined) return fallback;
    if (!/^\d+$/.test(v) || Number(v) < 1)
      throw new UsageError(`${flag} ${v}: expected a whole number of at least 1`, { code: 'E_BAD_FLAG' });
    return Number(v);
  };
  return {
    keepDays: num(o.keepDays, '--keep-days', b.retentionDays),
    keepDaily: num(o.keepDaily, '--keep-daily', b.keepDaily),
    keepWeekly: num(o.keepWeekly, '--keep-weekly', b.keepWeekly),
    keepMonthly: num(o.keepMonthly, '--keep-monthly', b.keepMonthly),
  };
}

async function prune(ctx: Context, t: Target, policy: RetentionPolicy): Promise<PruneResult> {
  if (t.s3 && t.s3.prefix === '')
    throw new ConfigError(
      's3.prefix: prune only works under a non-empty prefix (e.g. myapp/), so it never judges objects that are not ours',
      { code: 'E_EMPTY_PREFIX' },
    );
  // Both listings first: when either fails, nothing is deleted anywhere.
  let local: Awaited<ReturnType<typeof listLocal>>;
  let remote: Awaited<ReturnType<typeof listRemote>>;
  try {
    local = await listLocal(ctx, t);
    remote = await listRemote(t);
  } catch (error) {
    throw new OperationError(
      'E_PRUNE_LISTING',
      `a listing failed, so nothing was deleted: ${ctx.redactor.scrub(s3Cause(error))}`,
    );
  }
  const now = ctx.clock.now();
  const judge = (entries: Array<{ name: string; sizeBytes: number; manifest: Manifest | undefined }>) =>
    planPrune(
      entries
        .filter((e) => e.manifest && e.manifest.sizeBytes === e.sizeBytes)
        .map((e) => ({ name: e.name, takenAt: parseBackupName(e.name)!.takenAt })),
      policy,
      now,
    );
  const localPlan = judge(local);
  const s3Plan = judge(remote);
  const deleted = { local: [] as string[], s3: [] as string[] };
  if (!ctx.globals.dryRun) {
    for (const d of localPlan.filter((d) => !d.keep)) {
      await ctx.fs.remove(path.join(t.dir, d.name));
      await ctx.fs.remove(path.join(t.dir, `${d.name}.json`));
      deleted.local.push(d.name);
    }
    const keys = s3Plan.filter((d) => !d.keep).map((d) => objectKey(t.s3!.prefix, d.name));
    if (keys.length) {
      await (await t.s3!.adapter()).remove(keys);
      deleted.s3.push(...s3Plan.filter((d) => !d.keep).map((d) => d.name));
    }
  }
  for (const d of [...localPlan, ...s3Plan].filter((d) => !d.keep))
    ctx.reporter.info(`${ctx.globals.dryRun ? 'would delete' : 'deleted'} ${d.name}`);
  return { dryRun: ctx.globals.dryRun, local: localPlan, s3: s3Plan, deleted };
}

export async function runPrune(ctx: Context, flags: BackupFlags & { policy: RetentionPolicy }): Promise<PruneResult> {
  const t = target(ctx, flags);
  return withMutation(ctx, 'backup prune', () => prune(ctx, t, flags.policy));
}

/** Finds a backup (an id or `latest`) and makes sure a verified local copy exists. */
async function fetchVerified(
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

async function psqlRestore(ctx: Context, t: Target, file: string, env: Record<string, string>): Promise<void> {
  const config = ctx.loaded!.config;
  const psql = await ctx.exec.stream(
    config.backup.psql,
    ['--no-password', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '--single-transaction', '-o', '/dev/null'],
    { env: { ...ctx.processEnv, ...env }, stdin: 'pipe' },
  );
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

const TABLES =
  "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) AS t FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1";

async function countRows(ctx: Context, url: Sensitive, database: string | undefined) {
  return ctx.datastores.postgresSession(url, database, async (q) => {
    const tables = (await q(TABLES)).map((r) => String(r.t));
    const rows: Record<string, number> = {};
    for (const table of tables) rows[table] = Number((await q(`SELECT count(*) AS n FROM ${table}`))[0]!.n);
    return rows;
  });
}

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
    const existing = await ctx.datastores
      .postgresSession(to, undefined, async (q) => (await q(TABLES)).length)
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
    const step = ctx.reporter.step(`restore ${got.manifest.name} into ${env.PGDATABASE}`);
    await psqlRestore(ctx, t, got.file, env);
    const counts = await countRows(ctx, to, undefined);
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
  });
}

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
    const started = ctx.clock.monotonicMs();
    const got = await fetchVerified(ctx, t, flags.id);
    const scratch = `opskit_verify_${ctx.clock.now().getTime().toString(36)}_${ctx.system.pid}`;
    await ctx.datastores
      .postgresSession(url, undefined, (q) => q(`CREATE DATABASE ${scratch}`))
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
      await psqlRestore(ctx, t, got.file, pgEnv(url, scratch));
      const restoreMs = Math.round(ctx.clock.monotonicMs() - t0);
      const tables = await countRows(ctx, url, scratch);
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
      await ctx.datastores
        .postgresSession(url, undefined, (q) => q(`DROP DATABASE IF EXISTS ${scratch} WITH (FORCE)`))
        .catch(() => ctx.reporter.warn(`could not drop the scratch database ${scratch}`));
    }
  });
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

export function renderPrune(r: PruneResult): string {
  const lines = [];
  for (const [where, plan] of [
    ['local', r.local],
    ['s3', r.s3],
  ] as const) {
    for (const d of plan)
      lines.push(
        `${where.padEnd(5)} ${d.keep ? 'keep  ' : r.dryRun ? 'WOULD DELETE' : 'delete'} ${d.name}${d.keep ? `  (${d.reasons.join('; ')})` : ''}`,
      );
  }
  return lines.length ? lines.join('\n') : 'no good backups to judge';
}

export function renderRestore(r: RestoreResult): string {
  return `restored ${r.id} into ${r.target}: ${r.tables} tables, ${r.rows} rows, in ${formatDuration(r.durationMs)} (sha256 verified${r.downloaded ? ', downloaded from S3' : ''})`;
}

export function renderVerify(r: VerifyResult): string {
  return [
    `verified ${r.id}: sha256 ok, restored into ${r.scratchDatabase} (dropped) in ${formatDuration(r.restoreMs)}: ${Object.keys(r.tables).length} tables, ${r.rows} rows`,
    ...Object.entries(r.tables).map(([t, n]) => `  ${t}: ${n}`),
  ].join('\n');
}
