#!/usr/bin/env node
import { createHash } from 'node:crypto';
import {
  createReadStream,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
// The backup SIGKILL soak (issue 15, item 6): `opskit backup create` with an upload to S3, against a
// PostgreSQL database of more than 50 MB, killed with SIGKILL at N random moments spread over a whole run
// (one uninterrupted run is measured first: its length and its phases). After each kill, three checks:
//   1. `backup list` shows no damaged or partial backup as good: every copy it calls good (local file,
//      S3 object) hashes to its manifest's sha256;
//   2. `backup verify` passes for every backup it shows as good (each once: a backup's bytes never change);
//   3. the next `backup create` succeeds, and leaves nothing of the killed run behind (no .partial, no
//      upload journal, no temporary file, no lock).
// Prints a table (kill #, moment, phase, what list showed, verify, next create) and a line of totals;
// --json prints one JSON object instead. Exit 1 when any check failed. `npm run soak:backup` builds first.
//
//   npm run soak:backup [-- --kills 20] [--json]
//
// Needs what the integration tests need: PostgreSQL on 127.0.0.1:5432 (OPSKIT_TEST_PG_USER /
// OPSKIT_TEST_PG_PASSWORD, default opskit_test), pg_dump and psql. s3rver runs on a free 127.0.0.1 port.
// Everything it creates (the database, temp directories, s3rver and its storage) goes at the end.
import { execa } from 'execa';
import pg from 'pg';
import { freePort } from './lib.mjs';

const repo = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(repo, 'bin', 'opskit');

const flag = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const kills = Number(flag('kills', '20'));
const json = process.argv.includes('--json');
if (!Number.isInteger(kills) || kills < 1 || kills > 1000) {
  process.stderr.write(`--kills ${flag('kills')}: expected a whole number from 1 to 1000\n`);
  process.exit(2);
}
const say = (line) => process.stderr.write(`[soak:backup] ${line}\n`);

const PG_USER = process.env.OPSKIT_TEST_PG_USER ?? 'opskit_test';
const PG_PASSWORD = process.env.OPSKIT_TEST_PG_PASSWORD ?? 'opskit-test-pw';
const runId = Date.now().toString(36);
const DB = `opskit_soak_bk_${runId}`;
const BUCKET = 'opskit-soak';
const PREFIX = `soak-${runId}/`;
// ~52 MB of dump, ~28 MB gzipped (random hex: gzip halves it, no more), uploaded in 8 MiB parts.
const ROWS = 400_000;
const PART_MIB = 8;
const AWS = {
  AWS_ACCESS_KEY_ID: 'S3RVER',
  AWS_SECRET_ACCESS_KEY: 'S3RVER-secret-key-xyz',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
};
const dbUrl = (db) => `postgres://${PG_USER}:${PG_PASSWORD}@127.0.0.1:5432/${db}`;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it answers (not undefined), every `intervalMs`, up to a deadline. */
async function waitFor(what, probe, deadlineMs, intervalMs = 10) {
  const deadline = performance.now() + deadlineMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`gave up waiting for ${what} after ${deadlineMs} ms`);
    await sleep(intervalMs);
  }
}

async function sql(db, query) {
  const client = new pg.Client({ connectionString: dbUrl(db) });
  await client.connect();
  try {
    return (await client.query(query)).rows;
  } finally {
    await client.end();
  }
}

async function sha256Of(stream) {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk);
  return hash.digest('hex');
}

const isAlive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The pids of a process's children (Linux /proc): a create's pg_dump. */
function childPids(pid) {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((task) =>
      readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
    );
  } catch {
    return [];
  }
}

// What this run created, for the cleanup.
const dir = mkdtempSync(path.join(os.tmpdir(), 'opskit-soak-backup-'));
const backups = path.join(dir, 'backups');
let s3 = null; // { child, pid, endpoint, directory }
let current = null; // the create in progress
let dbCreated = false;

async function startS3() {
  const port = await freePort();
  const directory = mkdtempSync(path.join(os.tmpdir(), 'opskit-soak-s3-'));
  const child = execa(process.execPath, [path.join(repo, 'tests/fixtures/s3-server.mjs')], {
    env: { NODE_OPTIONS: '--openssl-legacy-provider', S3_BUCKETS: BUCKET, S3_PORT: String(port), S3_DIR: directory },
    reject: false,
    stdin: 'ignore',
    buffer: false,
  });
  s3 = { child, pid: child.pid, directory, endpoint: undefined };
  let seen = '';
  child.stdout.on('data', (chunk) => (seen += chunk));
  child.stderr.on('data', (chunk) => (seen += chunk));
  const info = await waitFor(
    's3rver to listen',
    () => {
      const line = seen.split('\n').find((l) => l.startsWith('{'));
      if (line) return JSON.parse(line);
      if (!isAlive(child.pid)) throw new Error(`s3rver exited: ${seen}`);
      return undefined;
    },
    15_000,
    50,
  );
  s3.endpoint = info.endpoint;
}

let cleaned = false;
async function cleanup() {
  if (cleaned) return;
  cleaned = true;
  if (current && isAlive(current.pid)) {
    for (const pid of childPids(current.pid)) process.kill(pid, 'SIGKILL');
    process.kill(current.pid, 'SIGKILL');
    await current.catch(() => undefined);
  }
  if (s3?.pid && isAlive(s3.pid)) {
    process.kill(s3.pid, 'SIGTERM');
    await waitFor('s3rver to stop', () => (isAlive(s3.pid) ? undefined : true), 5_000, 50).catch(() =>
      process.kill(s3.pid, 'SIGKILL'),
    );
    await s3.child.catch(() => undefined);
  }
  if (s3?.directory) rmSync(s3.directory, { recursive: true, force: true });
  if (dbCreated)
    await sql('postgres', `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`).catch((e) =>
      say(`could not drop ${DB}: ${e.message}`),
    );
  rmSync(dir, { recursive: true, force: true });
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    say(`${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

const s3Flags = () => ['--s3-bucket', BUCKET, '--s3-prefix', PREFIX, '--s3-endpoint', s3.endpoint];
const createArgs = () => ['backup', 'create', '--database-url', dbUrl(DB), ...s3Flags()];
const cli = (args) =>
  execa(process.execPath, [bin, ...args], { cwd: dir, env: AWS, reject: false, stdin: 'ignore', timeout: 180_000 });
const files = () => (existsSync(backups) ? readdirSync(backups) : []);
const bucketDir = () => path.join(s3.directory, BUCKET);

/** What the run in progress has written so far, as seen from outside. */
function observe(before) {
  let lockPid;
  try {
    lockPid = JSON.parse(readFileSync(path.join(dir, '.opskit', 'lock'), 'utf8')).pid;
  } catch {
    // no lock (yet)
  }
  const now = files();
  const partial = now.find((f) => f.endsWith('.sql.gz.partial'));
  const final = now.find((f) => f.endsWith('.sql.gz') && !before.has(f));
  const journalFile = now.find((f) => f.endsWith('.upload.json'));
  let journal;
  try {
    if (journalFile)
      journal = {
        file: journalFile,
        uploadId: JSON.parse(readFileSync(path.join(backups, journalFile), 'utf8')).uploadId,
      };
  } catch {
    // removed between the listing and the read: the upload completed
  }
  const uploadDir = journal?.uploadId && path.join(bucketDir(), '._S3rver_uploads', journal.uploadId);
  const partsStored =
    uploadDir && existsSync(uploadDir) ? readdirSync(uploadDir).filter((f) => f.endsWith('.md5')).length : 0;
  const objectStored = final !== undefined && existsSync(path.join(bucketDir(), `${PREFIX}${final}._S3rver_object`));
  const manifestBeside = partial !== undefined && now.includes(partial.replace(/\.partial$/, '.json'));
  let partialBytes = 0;
  try {
    if (partial) partialBytes = statSync(path.join(backups, partial)).size;
  } catch {
    // renamed meanwhile
  }
  return { lockPid, partial, partialBytes, manifestBeside, final, journal, partsStored, objectStored };
}

const PHASES = [
  'start (node, config, lock, connect)',
  'pg_dump | gzip',
  'gzip (pg_dump done)',
  'manifest (written, not renamed)',
  'between rename and upload',
  'CreateMultipartUpload',
  'multipart upload (parts)',
  'CompleteMultipartUpload',
  'confirm (HeadObject, exit)',
];

/** Where a run stopped, from what it left (nothing changes locally once it is dead) and whether pg_dump still ran. */
function phaseOf(o, pgDumpAlive) {
  if (o.partial) return o.manifestBeside ? PHASES[3] : pgDumpAlive ? PHASES[1] : PHASES[2];
  if (o.final === undefined) return PHASES[0];
  if (o.journal) return o.journal.uploadId === undefined ? PHASES[5] : o.objectStored ? PHASES[7] : PHASES[6];
  return o.objectStored ? PHASES[8] : PHASES[4];
}

/** s3rver writes an object in place (S3 makes it appear whole): let a request the dead client sent finish. */
async function s3Settled() {
  const sizes = () => {
    try {
      return JSON.stringify(
        readdirSync(bucketDir(), { recursive: true, withFileTypes: true })
          .filter((e) => e.isFile())
          .map((e) => [
            path.join(e.parentPath, e.name),
            statSync(path.join(e.parentPath, e.name), { throwIfNoEntry: false })?.size,
          ]),
      );
    } catch {
      return String(Math.random()); // a directory went away under us: not settled
    }
  };
  let last = sizes();
  let delay = 100;
  await waitFor(
    's3rver to settle',
    async () => {
      await sleep(delay);
      delay = Math.min(delay * 2, 500);
      const now = sizes();
      if (now === last) return true;
      last = now;
      return undefined;
    },
    15_000,
    0,
  );
}

let s3Client;
async function s3Sha256(key) {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { S3Client, GetObjectCommand } = await import('@aws-sdk/client-s3');
  s3Client ??= new S3Client({
    region: 'us-east-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: AWS.AWS_ACCESS_KEY_ID, secretAccessKey: AWS.AWS_SECRET_ACCESS_KEY },
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return sha256Of((await s3Client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body);
}

/** The uninterrupted run: its length and when each phase began, watched from outside every 10 ms. */
async function measure() {
  const before = new Set(files());
  const child = cli([...createArgs(), '--json']);
  current = child;
  const t0 = performance.now();
  const at = {};
  const mark = (name, cond) => {
    if (cond && at[name] === undefined) at[name] = Math.round(performance.now() - t0);
  };
  let exited = false;
  void child.finally(() => (exited = true));
  let dumpers = [];
  while (!exited) {
    const o = observe(before);
    mark('lock', o.lockPid === child.pid);
    mark('partial', o.partial !== undefined);
    if (o.partial && dumpers.length === 0) dumpers = childPids(child.pid);
    mark('pgDumpExited', at.partial !== undefined && dumpers.length > 0 && dumpers.every((pid) => !isAlive(pid)));
    mark('final', o.final !== undefined);
    mark('uploadStart', o.journal !== undefined);
    mark('firstPartStored', o.partsStored > 0);
    mark('objectStored', o.objectStored);
    mark('uploadDone', at.uploadStart !== undefined && o.journal === undefined);
    await sleep(10);
  }
  const r = await child;
  current = null;
  at.exit = Math.round(performance.now() - t0);
  if (r.exitCode !== 0)
    throw new Error(`the uninterrupted run failed (exit ${r.exitCode}): ${r.stderr.split('\n').slice(-10).join('\n')}`);
  const doc = JSON.parse(r.stdout);
  return { durationMs: at.exit, at, sizeBytes: doc.backup.sizeBytes, name: doc.backup.name };
}

const verified = new Set();
const s3Checked = new Set();
const localChecked = new Set();

async function killAt(n, momentMs) {
  const before = new Set(files());
  const child = cli(createArgs());
  current = child;
  const t0 = performance.now();
  let exited = false;
  let ranMs;
  void child.finally(() => {
    exited = true;
    ranMs = Math.round(performance.now() - t0);
  });
  // Watch pg_dump until the moment: whether it still runs tells the dump from the gzip's tail.
  let dumpers = [];
  while (!exited && performance.now() - t0 < momentMs) {
    const kids = childPids(child.pid);
    if (kids.length) dumpers = kids;
    await sleep(Math.max(0, Math.min(10, momentMs - (performance.now() - t0))));
  }
  const pgDumpAlive = dumpers.some(isAlive);
  const atMs = Math.round(performance.now() - t0);
  if (!exited) child.kill('SIGKILL');
  const r = await child;
  current = null;
  // pg_dump dies of SIGPIPE once its reader is gone; ours to end if it does not.
  await waitFor('pg_dump to exit', () => (dumpers.every((pid) => !isAlive(pid)) ? true : undefined), 10_000, 50).catch(
    () => {
      for (const pid of dumpers.filter(isAlive)) process.kill(pid, 'SIGKILL');
    },
  );
  await s3Settled();
  const left = observe(before);
  const killed = r.signal === 'SIGKILL';
  const phase = killed ? phaseOf(left, pgDumpAlive) : `none: it ended (exit ${r.exitCode}) at ${ranMs} ms`;
  const row = {
    kill: n,
    atMs: killed ? atMs : momentMs,
    phase,
    killed,
    ranMs: killed ? undefined : ranMs,
    list: null,
    verify: { run: 0, ok: 0, failures: [] },
    next: null,
    ok: false,
  };

  // 1. list: every copy it calls good is whole.
  const listed = await cli(['backup', 'list', ...s3Flags(), '--json']);
  const bad = [];
  let killedRun = 'absent';
  let rows = [];
  if (listed.exitCode === 0) {
    rows = JSON.parse(listed.stdout).backups;
    for (const b of rows.filter((x) => x.good)) {
      const id = `${b.id} ${b.sha256}`;
      if (b.localGood && !localChecked.has(id)) {
        if ((await sha256Of(createReadStream(path.join(backups, b.id)))) === b.sha256) localChecked.add(id);
        else bad.push(`local ${b.id}`);
      }
      if (b.s3Good && !s3Checked.has(id)) {
        if ((await s3Sha256(`${PREFIX}${b.id}`).catch(() => null)) === b.sha256) s3Checked.add(id);
        else bad.push(`s3 ${b.id}`);
      }
    }
    const mine = rows.find((b) => !before.has(b.id));
    if (mine)
      killedRun = mine.good
        ? `good ${[mine.localGood ? 'local' : '', mine.s3Good ? 's3' : ''].filter(Boolean).join('+')}`
        : `not good (${[mine.local ? 'local' : '', mine.s3 ? 's3' : ''].filter(Boolean).join('+')})`;
    // A run killed before its rename has no backup to show as good.
    if (left.final === undefined && rows.some((b) => !before.has(b.id) && b.good))
      bad.push('a backup of a run killed before its rename is listed as good');
  }
  row.list = {
    exitCode: listed.exitCode,
    backups: rows.length,
    good: rows.filter((b) => b.good).length,
    killedRun,
    badClaims: bad,
    error: listed.exitCode === 0 ? undefined : listed.stderr.split('\n').slice(-3).join(' '),
  };

  // 2. verify every backup shown good (each once).
  for (const b of rows.filter((x) => x.good && !verified.has(`${x.id} ${x.sha256}`))) {
    row.verify.run++;
    const v = await cli(['backup', 'verify', b.id, '--database-url', dbUrl(DB), ...s3Flags(), '--json']);
    let doc;
    try {
      doc = JSON.parse(v.stdout);
    } catch {
      doc = {};
    }
    if (v.exitCode === 0 && doc.checksum === 'ok' && doc.sha256 === b.sha256 && doc.tables?.['public.blobs'] === ROWS) {
      row.verify.ok++;
      verified.add(`${b.id} ${b.sha256}`);
    } else {
      row.verify.failures.push({
        id: b.id,
        exitCode: v.exitCode,
        error: doc.error?.message ?? v.stderr.split('\n').slice(-3).join(' '),
      });
    }
  }

  // 3. the next create succeeds and leaves nothing of the killed run.
  const next = await cli([...createArgs(), '--json']);
  let doc = {};
  try {
    doc = JSON.parse(next.stdout);
  } catch {
    // reported below by the exit code
  }
  const leftovers = files().filter((f) => !/\.sql\.gz(\.json)?$/.test(f));
  const lockLeft = existsSync(path.join(dir, '.opskit', 'lock'));
  const journalHandled =
    !left.journal ||
    (doc.interruptedUploads ?? []).some(
      (u) => u.uploadId === (left.journal.uploadId ?? null) && ['aborted', 'gone', 'unsupported'].includes(u.outcome),
    );
  const partialHandled = !left.partial || (doc.removedPartials ?? []).includes(left.partial);
  row.next = {
    exitCode: next.exitCode,
    uploaded: doc.s3?.uploaded === true,
    removed: doc.removedPartials ?? [],
    interruptedUploads: doc.interruptedUploads ?? [],
    leftovers,
    lockLeft,
    ok:
      next.exitCode === 0 &&
      doc.s3?.uploaded === true &&
      leftovers.length === 0 &&
      !lockLeft &&
      journalHandled &&
      partialHandled,
    error: next.exitCode === 0 ? undefined : (doc.error?.message ?? next.stderr.split('\n').slice(-3).join(' ')),
  };
  row.ok = row.list.exitCode === 0 && bad.length === 0 && row.verify.failures.length === 0 && row.next.ok;
  return row;
}

function pad(cells, widths) {
  return cells
    .map((c, i) => String(c).padEnd(widths[i]))
    .join('  ')
    .trimEnd();
}

const ms = (v) => (v === undefined ? '-' : String(v));

function render(report) {
  const head = ['#', 'at ms', 'phase', 'list showed', 'verify', 'next create'];
  const body = report.kills.map((k) => [
    String(k.kill),
    String(k.atMs),
    k.phase,
    k.list.exitCode !== 0
      ? `FAILED (exit ${k.list.exitCode})`
      : `${k.list.good}/${k.list.backups} good; killed run: ${k.list.killedRun}${k.list.badClaims.length ? `; BAD: ${k.list.badClaims.join(', ')}` : ''}`,
    k.verify.run === 0
      ? 'none new'
      : `${k.verify.ok}/${k.verify.run} ok${k.verify.failures.length ? `; FAILED: ${k.verify.failures.map((f) => f.id).join(', ')}` : ''}`,
    k.next.ok
      ? [
          'ok',
          ...(k.next.removed.length ? [`removed ${k.next.removed.length}`] : []),
          ...k.next.interruptedUploads.map((u) => `upload ${u.outcome}`),
        ].join(', ')
      : `FAILED (exit ${k.next.exitCode}${k.next.leftovers.length ? `, left ${k.next.leftovers.join(' ')}` : ''}${k.next.lockLeft ? ', lock left' : ''})`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const t = report.totals;
  const ref = report.reference;
  return [
    `database ${report.database.name}: ${(report.database.sizeBytes / 1e6).toFixed(0)} MB, ${ROWS} rows; backup ${(ref.sizeBytes / 2 ** 20).toFixed(1)} MiB gzipped, ${PART_MIB} MiB parts`,
    `uninterrupted run: ${ref.durationMs} ms; at ms: lock ${ms(ref.at.lock)}, .partial ${ms(ref.at.partial)}, pg_dump exited ${ms(ref.at.pgDumpExited)}, renamed ${ms(ref.at.final)}, upload ${ms(ref.at.uploadStart)} to ${ms(ref.at.uploadDone)}, exit ${ms(ref.at.exit)}`,
    '',
    pad(head, widths),
    pad(
      widths.map((w) => '-'.repeat(w)),
      widths,
    ),
    ...body.map((r) => pad(r, widths)),
    '',
    `${t.kills} kills (${Object.entries(t.byPhase)
      .map(([p, n]) => `${n} ${p}`)
      .join(
        ', ',
      )})${t.endedBeforeTheirMoment ? `, and ${t.endedBeforeTheirMoment} run(s) that ended before their moment (checked all the same)` : ''}; list ${t.listOk}/${t.runs} ok, verify ${t.verifyOk}/${t.verifyRun} ok, next create ${t.nextCreateOk}/${t.runs} ok: ${report.ok ? 'all checks passed' : t.failed ? `${t.failed} run(s) with a failed check` : `only ${t.kills} of ${kills} kills landed`}`,
  ].join('\n');
}

async function main() {
  await startS3();
  say(`s3rver on ${s3.endpoint} (pid ${s3.pid}); project in ${dir}`);
  writeFileSync(path.join(dir, 'opskit.yaml'), `backup:\n  partSizeMiB: ${PART_MIB}\n`);
  await sql('postgres', `CREATE DATABASE ${DB}`);
  dbCreated = true;
  say(`${DB}: ${ROWS} rows of random hex`);
  await sql(
    DB,
    `CREATE TABLE blobs (id bigserial PRIMARY KEY, a text NOT NULL, b text NOT NULL); INSERT INTO blobs (a, b) SELECT md5(random()::text) || md5(random()::text), md5(g::text || random()::text) || md5(random()::text) FROM generate_series(1, ${ROWS}) g`,
  );
  const sizeBytes = Number((await sql('postgres', `SELECT pg_database_size('${DB}') AS n`))[0].n);
  if (sizeBytes < 50e6) throw new Error(`${DB} is only ${sizeBytes} bytes`);
  const reference = await measure();
  say(`uninterrupted run: ${reference.durationMs} ms, phases at ${JSON.stringify(reference.at)}`);
  // Stratified: one random moment in each of N equal slices of the run (2% short of its end, so that
  // the last slices still find it running), so the kills cover the whole run and vary from soak to soak.
  // A run shorter than the one measured can end before its moment: its checks still run and count, and
  // that slice is drawn again over the shorter length (at most 5 such runs in all).
  let span = reference.durationMs * 0.98;
  const results = [];
  for (let done = 0; done < kills && results.length < kills + 5; ) {
    const moment = Math.round(((done + Math.random()) * span) / kills);
    const row = await killAt(results.length + 1, moment);
    results.push(row);
    if (row.killed) done++;
    else span = Math.min(span, row.ranMs * 0.98);
    say(
      `run ${row.kill}, kill at ${row.atMs} ms: ${row.phase}; list ${row.list.exitCode === 0 ? 'ok' : 'FAILED'}${row.list.badClaims.length ? ` BAD ${row.list.badClaims.join(', ')}` : ''}, verify ${row.verify.ok}/${row.verify.run}, next create ${row.next.ok ? 'ok' : 'FAILED'}`,
    );
  }
  const byPhase = {};
  for (const p of PHASES) byPhase[p] = results.filter((r) => r.killed && r.phase === p).length;
  for (const p of Object.keys(byPhase)) if (byPhase[p] === 0) delete byPhase[p];
  const totals = {
    runs: results.length,
    kills: results.filter((r) => r.killed).length,
    endedBeforeTheirMoment: results.filter((r) => !r.killed).length,
    byPhase,
    listOk: results.filter((r) => r.list.exitCode === 0 && r.list.badClaims.length === 0).length,
    verifyRun: results.reduce((a, r) => a + r.verify.run, 0),
    verifyOk: results.reduce((a, r) => a + r.verify.ok, 0),
    nextCreateOk: results.filter((r) => r.next.ok).length,
    failed: results.filter((r) => !r.ok).length,
  };
  return {
    schemaVersion: 1,
    kind: 'soak-backup',
    ok: totals.failed === 0 && totals.kills === kills,
    database: { name: DB, sizeBytes, rows: ROWS },
    reference,
    kills: results,
    totals,
  };
}

let exitCode = 1;
try {
  const report = await main();
  process.stdout.write(json ? `${JSON.stringify(report)}\n` : `${render(report)}\n`);
  exitCode = report.ok ? 0 : 1;
} catch (error) {
  say(`failed: ${error.stack ?? error.message}`);
  if (json)
    process.stdout.write(
      `${JSON.stringify({ schemaVersion: 1, kind: 'soak-backup', ok: false, error: error.message })}\n`,
    );
} finally {
  s3Client?.destroy();
  await cleanup();
}
process.exit(exitCode);
