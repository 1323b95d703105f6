import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { type BackupStore, nodeBackupStore } from '../../src/adapters/backupstore.js';
import type { DatastoreAdapter } from '../../src/adapters/datastores.js';
import type { ExecAdapter, StreamingProcess } from '../../src/adapters/exec.js';
import { nodeFs } from '../../src/adapters/fs.js';
import { abortFailureKind, planParts, type S3Adapter } from '../../src/adapters/s3.js';
import { runCreate } from '../../src/backup/create.js';
import { whereCell } from '../../src/backup/list.js';
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
  parseBackupName,
  parseManifest,
  parseUploadJournal,
  planLeftovers,
  planPrune,
} from '../../src/backup/plan.js';
import { type BackupDeps, pgEnv } from '../../src/backup/target.js';
import { createContext } from '../../src/cli/run.js';
import { loadConfig } from '../../src/config/load.js';
import { Redactor } from '../../src/config/redact.js';
import { Sensitive } from '../../src/sensitive.js';
import { BufferStream, manualClock, strictFake } from '../helpers/fakes.js';

const at = (iso: string) => new Date(iso);
const manifest = (name: string, size = 100): Manifest => ({
  name,
  database: 'app',
  serverVersion: '15.1',
  sizeBytes: size,
  sha256: 'a'.repeat(64),
  startedAt: '',
  endedAt: '',
  durationMs: 1,
  format: 1,
});

describe('backup names and manifests', () => {
  it('names a backup by database and UTC time, and reads the time back; other names are not ours', () => {
    const name = backupName('app', at('2026-12-01T02:03:04Z'));
    expect(name).toBe('app_20261201_020304.sql.gz');
    expect(parseBackupName(name)).toEqual({ database: 'app', takenAt: at('2026-12-01T02:03:04Z') });
    expect(parseBackupName('app_20261201_020304.sql.gz.partial')).toBeUndefined();
    expect(parseBackupName('notes.txt')).toBeUndefined();
    expect(backupName('my db', at('2026-01-01T00:00:00Z'))).toBe('my_db_20260101_000000.sql.gz');
  });
  it('round-trips the manifest through S3 metadata; incomplete manifests are refused', () => {
    const m = manifest('app_20261201_020304.sql.gz');
    expect(manifestFromMetadata(m.name, manifestMetadata(m))).toEqual(m);
    expect(manifestFromMetadata(m.name, { 'opskit-format': '1', 'opskit-sha256': 'short' })).toBeUndefined();
    expect(parseManifest(JSON.stringify(m))).toEqual(m);
    expect(parseManifest('{"format":1}')).toBeUndefined();
    expect(parseManifest('not json')).toBeUndefined();
  });
  it('prefixes: an exact directory-like prefix', () => {
    expect(normalizePrefix('shop')).toBe('shop/');
    expect(normalizePrefix('/shop/')).toBe('shop/');
    expect(normalizePrefix('')).toBe('');
    expect(objectKey('shop', 'a.sql.gz')).toBe('shop/a.sql.gz');
  });
  it('passes the connection as PG* variables, never on the command line', () => {
    expect(pgEnv(Sensitive.url('postgres://u:p%40ss@db.example:6543/app?sslmode=require'))).toEqual({
      PGHOST: 'db.example',
      PGPORT: '6543',
      PGDATABASE: 'app',
      PGUSER: 'u',
      PGPASSWORD: 'p@ss',
      PGSSLMODE: 'require',
    });
    expect(() => pgEnv(Sensitive.url('mysql://u@h/app'))).toThrow(/postgres/);
  });
});

describe('the listing', () => {
  it('merges local and S3 by name, newest first; good only with a manifest of the stored size', () => {
    const now = at('2026-12-02T00:00:00Z');
    const rows = mergeListing(
      [
        { name: 'app_20261201_000000.sql.gz', sizeBytes: 100, manifest: manifest('app_20261201_000000.sql.gz') },
        { name: 'app_20261130_000000.sql.gz', sizeBytes: 99, manifest: manifest('app_20261130_000000.sql.gz') },
        { name: 'random.sql.gz', sizeBytes: 1, manifest: undefined },
      ],
      [
        {
          key: 'p/app_20261201_000000.sql.gz',
          name: 'app_20261201_000000.sql.gz',
          sizeBytes: 100,
          manifest: manifest('app_20261201_000000.sql.gz'),
        },
        {
          key: 'p/app_20261129_000000.sql.gz',
          name: 'app_20261129_000000.sql.gz',
          sizeBytes: 100,
          manifest: undefined,
        },
      ],
      now,
    );
    expect(rows.map((r) => [r.id, r.local, r.s3, r.good])).toEqual([
      ['app_20261201_000000.sql.gz', true, true, true],
      ['app_20261130_000000.sql.gz', true, false, false],
      ['app_20261129_000000.sql.gz', false, true, false],
    ]);
    expect(rows[0]!.ageMs).toBe(86_400_000);
  });

  it('judges each copy on its own: a good local copy does not vouch for a partial S3 object, nor the reverse', () => {
    const name = 'app_20261201_000000.sql.gz';
    const other = { ...manifest(name, 50), sha256: 'b'.repeat(64) };
    const now = at('2026-12-02T00:00:00Z');
    // An upload killed mid-way (s3rver keeps the bytes it got, without our metadata), or a short object.
    for (const s3 of [
      { sizeBytes: 40, manifest: undefined },
      { sizeBytes: 40, manifest: manifest(name) },
    ]) {
      const [row] = mergeListing(
        [{ name, sizeBytes: 100, manifest: manifest(name) }],
        [{ key: `p/${name}`, name, ...s3 }],
        now,
      );
      expect(row).toMatchObject({
        local: true,
        s3: true,
        good: true,
        localGood: true,
        s3Good: false,
        sizeBytes: 100,
        sha256: 'a'.repeat(64),
      });
      expect(whereCell(row!)).toBe('local+s3 (s3 copy not good)');
    }
    // No local manifest (or one of another size), a good S3 copy: the row takes the good copy's facts.
    const [row] = mergeListing(
      [{ name, sizeBytes: 10, manifest: other }],
      [{ key: `p/${name}`, name, sizeBytes: 100, manifest: manifest(name) }],
      now,
    );
    expect(row).toMatchObject({ good: true, localGood: false, s3Good: true, sizeBytes: 100, sha256: 'a'.repeat(64) });
    expect(whereCell(row!)).toBe('local+s3 (local copy not good)');
    // Nothing good: no copy is singled out.
    const [bad] = mergeListing([{ name, sizeBytes: 10, manifest: undefined }], [], now);
    expect(bad).toMatchObject({ good: false, localGood: false, s3Good: false, sha256: null });
    expect(whereCell(bad!)).toBe('local');
  });

  it('restores from a good copy first, then from the copy with a manifest (its checksum check says what is wrong)', () => {
    const row = (o: Partial<BackupRow> & { localManifest?: boolean; s3Manifest?: boolean }) => ({
      local: true,
      s3: true,
      localGood: false,
      s3Good: false,
      localManifest: false,
      s3Manifest: false,
      ...o,
    });
    expect(copyToRestore(row({ localGood: true, s3Good: true }))).toBe('local');
    expect(copyToRestore(row({ localGood: false, s3Good: true, localManifest: true }))).toBe('s3');
    expect(copyToRestore(row({ localManifest: true, s3Manifest: true }))).toBe('local');
    expect(copyToRestore(row({ local: false, s3Manifest: true }))).toBe('s3');
    expect(copyToRestore(row({ s3: false, s3Manifest: true }))).toBeUndefined();
    expect(copyToRestore(row({}))).toBeUndefined();
  });
});

describe('what a killed run leaves (planLeftovers)', () => {
  const n = 'app_20261201_020304.sql.gz';
  it('removes a .partial of ours, with the manifest written before a rename that never came', () => {
    expect(planLeftovers([`${n}.partial`])).toEqual({ remove: [`${n}.partial`], uploads: [] });
    expect(planLeftovers([`${n}.partial`, `${n}.json`])).toEqual({
      remove: [`${n}.partial`, `${n}.json`],
      uploads: [],
    });
    // A file under the final name keeps its manifest (a same-named .partial is the dead one).
    expect(planLeftovers([n, `${n}.json`, `${n}.partial`])).toEqual({ remove: [`${n}.partial`], uploads: [] });
    expect(planLeftovers([`${n}.download.partial`]).remove).toEqual([`${n}.download.partial`]);
  });
  it('removes temporary files of an atomic write of our manifests and journals; returns upload journals apart', () => {
    expect(
      planLeftovers([`.${n}.json.4242.0a1b2c3d.tmp`, `.${n}.upload.json.7.ffffffff.tmp`, `${n}.upload.json`]),
    ).toEqual({
      remove: [`.${n}.json.4242.0a1b2c3d.tmp`, `.${n}.upload.json.7.ffffffff.tmp`],
      uploads: [`${n}.upload.json`],
    });
  });
  it("leaves alone what is not provably a dead run's: backups, their manifests, a final file without one, other files", () => {
    const keep = [
      n,
      `${n}.json`,
      'app_20261130_000000.sql.gz',
      'notes.partial',
      'x.sql.gz.partial',
      '.other.json.1.0a1b2c3d.tmp',
      `.${n}.json.tmp`,
      `${n}.json.orig`,
    ];
    expect(planLeftovers(keep)).toEqual({ remove: [], uploads: [] });
  });
  it('reads an upload journal only when complete', () => {
    expect(parseUploadJournal('{"bucket":"b","key":"p/x","uploadId":"u1","startedAt":"t"}')).toEqual({
      bucket: 'b',
      key: 'p/x',
      uploadId: 'u1',
      startedAt: 't',
    });
    expect(parseUploadJournal('{"bucket":"b","key":"p/x","startedAt":"t"}')).toEqual({
      bucket: 'b',
      key: 'p/x',
      uploadId: undefined,
      startedAt: 't',
    });
    expect(parseUploadJournal('{"bucket":"b","key":"p/x","uploadId":""}')).toBeUndefined();
    expect(parseUploadJournal('{"bucket":"b"')).toBeUndefined();
    expect(parseUploadJournal(undefined)).toBeUndefined();
  });
});

describe('S3 uploads: parts and aborts', () => {
  const MiB = 2 ** 20;
  it('splits into parts of the configured size, the last shorter; one part below it', () => {
    expect(planParts(20 * MiB + 5, 8 * MiB)).toEqual([
      { partNumber: 1, start: 0, length: 8 * MiB },
      { partNumber: 2, start: 8 * MiB, length: 8 * MiB },
      { partNumber: 3, start: 16 * MiB, length: 4 * MiB + 5 },
    ]);
    expect(planParts(16 * MiB, 8 * MiB)).toHaveLength(2);
    expect(planParts(1000, 8 * MiB)).toEqual([{ partNumber: 1, start: 0, length: 1000 }]);
    expect(planParts(0, 8 * MiB)).toEqual([{ partNumber: 1, start: 0, length: 0 }]);
  });
  it('grows the part size to whole MiB when 10,000 parts would not hold the object', () => {
    const parts = planParts(100_000 * MiB, 5 * MiB);
    expect(parts).toHaveLength(10_000);
    expect(parts[0]!.length).toBe(10 * MiB);
    expect(parts.at(-1)!.start + parts.at(-1)!.length).toBe(100_000 * MiB);
  });
  it('tells an upload that is gone from a store that cannot abort and from a failure worth another try', () => {
    expect(abortFailureKind({ name: 'NoSuchUpload', $metadata: { httpStatusCode: 404 } })).toBe('gone');
    expect(abortFailureKind({ name: 'MethodNotAllowed', $metadata: { httpStatusCode: 405 } })).toBe('unsupported');
    expect(abortFailureKind({ name: 'NotImplemented', $metadata: { httpStatusCode: 501 } })).toBe('unsupported');
    expect(abortFailureKind({ name: 'TimeoutError' })).toBe('failed');
    expect(abortFailureKind({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } })).toBe('failed');
  });
});

const tempDirs: string[] = [];
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** runCreate against a fake pg_dump, a fake S3 and the real filesystem of a temp directory. */
async function createSetup(s3: Partial<S3Adapter>, store: BackupStore = nodeBackupStore) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'opskit-backup-unit-'));
  tempDirs.push(dir);
  const dump = Buffer.from('-- PostgreSQL database dump\n'.repeat(2000));
  const exec = strictFake<ExecAdapter>('exec', {
    stream: async () =>
      ({
        stdout: Readable.from([dump]),
        stdin: undefined as never,
        done: Promise.resolve({ exitCode: 0, signal: undefined, stderr: '', failed: false, notFound: false }),
        kill: () => {},
      }) satisfies StreamingProcess,
  });
  const datastores = strictFake<DatastoreAdapter>('datastores', {
    postgres: async () => ({ version: 'PostgreSQL 15.1', serverVersion: '15.1', latencyMs: 1 }),
  });
  const clock = manualClock(new Date('2026-12-01T02:03:04.250Z'));
  const stderr = new BufferStream();
  const ctx = createContext(
    {
      stdout: new BufferStream(),
      stderr,
      env: {},
      cwd: dir,
      argv: ['backup', 'create'],
      adapters: { exec, datastores, clock },
    },
    { json: false, dryRun: false, quiet: false, verbose: false, color: false, set: [] },
    new Redactor(),
  );
  ctx.loaded = await loadConfig(nodeFs, { cwd: dir, processEnv: {} });
  const adapter = strictFake<S3Adapter>('s3', s3);
  const deps: BackupDeps = { store, s3: async () => adapter };
  const flags = { databaseUrl: 'postgres://u:pw@127.0.0.1:5432/app', s3Bucket: 'b', s3Prefix: 'p/' };
  const backups = path.join(dir, 'backups');
  return { ctx, deps, flags, backups, stderr, clock, run: () => runCreate(ctx, flags, deps) };
}

const NAME = 'app_20261201_020304.sql.gz';

describe('runCreate against fakes: the order of its effects is what a SIGKILL at any moment relies on', () => {
  it('writes the manifest before the final name appears; journals a multipart upload before its first part, and drops the journal once complete', async () => {
    const events: string[] = [];
    let stored: { size: number; metadata: Record<string, string> } | undefined;
    const store: BackupStore = {
      ...nodeBackupStore,
      commit: async (partial, final) => {
        events.push(`rename, manifest ${existsSync(`${final}.json`) ? 'present' : 'absent'}`);
        await nodeBackupStore.commit(partial, final);
      },
    };
    const s = await createSetup(
      {
        upload: async (_key, source, options) => {
          const journal = () =>
            JSON.parse(readFileSync(path.join(s.backups, `${NAME}.upload.json`), 'utf8')) as Record<string, unknown>;
          await options.onMultipart!.creating();
          events.push(
            `CreateMultipartUpload, journal of ${journal().key} without an id: ${!('uploadId' in journal())}`,
          );
          await options.onMultipart!.created('upload-1');
          events.push(`first part, journal with id ${journal().uploadId}`);
          stored = { size: (await source.read(0, source.sizeBytes)).length, metadata: options.metadata };
          events.push('complete');
        },
        head: async () => ({ sizeBytes: stored!.size, metadata: stored!.metadata }),
      },
      store,
    );
    const r = await s.run();
    expect(events).toEqual([
      'rename, manifest present',
      `CreateMultipartUpload, journal of p/${NAME} without an id: true`,
      'first part, journal with id upload-1',
      'complete',
    ]);
    expect(readdirSync(s.backups).sort()).toEqual([NAME, `${NAME}.json`]);
    expect(r).toMatchObject({
      backup: { name: NAME },
      s3: { key: `p/${NAME}`, uploaded: true },
      removedPartials: [],
      interruptedUploads: [],
    });
  });

  it('a failed multipart upload is aborted; its journal stays only when the abort itself failed (the next run tries again)', async () => {
    for (const [abort, journalLeft] of [
      [async () => 'aborted' as const, false],
      [
        async () =>
          Promise.reject(
            Object.assign(new Error('no'), { name: 'MethodNotAllowed', $metadata: { httpStatusCode: 405 } }),
          ),
        false,
      ],
      [async () => Promise.reject(Object.assign(new Error('socket hang up'), { name: 'TimeoutError' })), true],
    ] as const) {
      const aborted: string[] = [];
      const s = await createSetup({
        upload: async (_key, _source, options) => {
          await options.onMultipart!.creating();
          await options.onMultipart!.created('upload-2');
          throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
        },
        abortMultipart: async (key, uploadId) => {
          aborted.push(`${key} ${uploadId}`);
          return abort();
        },
      });
      await expect(s.run()).rejects.toMatchObject({ code: 'E_S3_UPLOAD', exitCode: 1 });
      expect(aborted).toEqual([`p/${NAME} upload-2`]);
      expect(existsSync(path.join(s.backups, `${NAME}.upload.json`))).toBe(journalLeft);
      // The local backup is kept, with its manifest.
      expect(existsSync(path.join(s.backups, NAME)) && existsSync(path.join(s.backups, `${NAME}.json`))).toBe(true);
    }
  });

  it('the next run removes what a killed run left and aborts its uploads, then backs up under a name of its own', async () => {
    let stored: { size: number; metadata: Record<string, string> } | undefined;
    const aborted: string[] = [];
    const s = await createSetup({
      abortMultipart: async (key, uploadId) => {
        aborted.push(`${key} ${uploadId}`);
        return uploadId === 'upload-0' ? 'gone' : 'aborted';
      },
      // Killed while CreateMultipartUpload was under way: the upload is found by its key.
      listMultipartUploads: async (key) => (key === `p/${older}` ? ['upload-x'] : []),
      upload: async (_key, source, options) => {
        stored = { size: source.sizeBytes, metadata: options.metadata };
      },
      head: async () => ({ sizeBytes: stored!.size, metadata: stored!.metadata }),
    });
    mkdirSync(s.backups);
    // Killed between its manifest and its rename (same second as this run: the name is free again once
    // the leftovers are gone), and an earlier run killed mid-upload.
    const earlier = 'app_20261201_010000.sql.gz';
    const older = 'app_20261130_010000.sql.gz';
    for (const [file, text] of [
      [`${NAME}.partial`, 'half a dump'],
      [`${NAME}.json`, JSON.stringify(manifest(NAME))],
      [`.${NAME}.json.999.0a1b2c3d.tmp`, '{"na'],
      [earlier, 'a whole dump'],
      [`${earlier}.json`, JSON.stringify(manifest(earlier, 12))],
      [
        `${earlier}.upload.json`,
        JSON.stringify({ bucket: 'b', key: `p/${earlier}`, uploadId: 'upload-0', startedAt: '' }),
      ],
      [`${older}.upload.json`, JSON.stringify({ bucket: 'b', key: `p/${older}`, startedAt: '' })],
    ])
      writeFileSync(path.join(s.backups, file!), text!);
    const r = await s.run();
    expect(r.removedPartials.sort()).toEqual(
      [`.${NAME}.json.999.0a1b2c3d.tmp`, `${NAME}.json`, `${NAME}.partial`].sort(),
    );
    expect(r.interruptedUploads).toEqual([
      { bucket: 'b', key: `p/${older}`, uploadId: null, outcome: 'aborted' },
      { bucket: 'b', key: `p/${earlier}`, uploadId: 'upload-0', outcome: 'gone' },
    ]);
    expect(aborted).toEqual([`p/${older} upload-x`, `p/${earlier} upload-0`]);
    expect(r.backup!.name).toBe(NAME);
    expect(readdirSync(s.backups).sort()).toEqual([earlier, `${earlier}.json`, NAME, `${NAME}.json`].sort());
  });

  it('a backup of the same second already there: waits for the next second rather than write its manifest over the other', async () => {
    const s = await createSetup({ upload: async () => {}, head: async () => undefined });
    mkdirSync(s.backups);
    writeFileSync(path.join(s.backups, NAME), 'a whole dump');
    writeFileSync(path.join(s.backups, `${NAME}.json`), JSON.stringify(manifest(NAME, 12)));
    // (The fake S3 then loses the object: HeadObject says none, so the run fails after the local backup.)
    await expect(s.run()).rejects.toMatchObject({ code: 'E_S3_UPLOAD' });
    expect(s.clock.slept).toContain(750);
    expect(readFileSync(path.join(s.backups, `${NAME}.json`), 'utf8')).toBe(JSON.stringify(manifest(NAME, 12)));
    expect(existsSync(path.join(s.backups, 'app_20261201_020305.sql.gz.json'))).toBe(true);
  });
});

describe('planPrune (restic semantics)', () => {
  const now = at('2026-12-31T12:00:00Z');
  const daily = Array.from({ length: 90 }, (_, i) => ({
    name: `d${i}`,
    takenAt: new Date(now.getTime() - i * 86_400_000 - 3_600_000),
  }));
  const kept = (policy: Parameters<typeof planPrune>[1], list = daily) =>
    planPrune(list, policy, now)
      .filter((d) => d.keep)
      .map((d) => d.name);

  it('--keep-days keeps everything younger; the newest is kept even when everything is old', () => {
    expect(kept({ keepDays: 3 })).toEqual(['d0', 'd1', 'd2']);
    const old = [
      { name: 'old1', takenAt: at('2020-01-02T00:00:00Z') },
      { name: 'old0', takenAt: at('2020-01-01T00:00:00Z') },
    ];
    expect(kept({ keepDays: 1 }, old)).toEqual(['old1']);
    expect(planPrune(old, { keepDays: 1 }, now)[0]!.reasons).toEqual(['the newest good backup']);
  });
  it('--keep-daily/weekly/monthly keep the newest of each of the N most recent periods that have one', () => {
    expect(kept({ keepDaily: 2 })).toEqual(['d0', 'd1']);
    // Two backups on one day count as one day.
    const twice = [
      { name: 'late', takenAt: at('2026-12-31T11:00:00Z') },
      { name: 'early', takenAt: at('2026-12-31T01:00:00Z') },
      { name: 'yesterday', takenAt: at('2026-12-30T11:00:00Z') },
    ];
    expect(kept({ keepDaily: 2 }, twice)).toEqual(['late', 'yesterday']);
    // Months: December (d0), November (its newest: d30 is Dec 1 11:00, d31 is Nov 30), October.
    expect(kept({ keepMonthly: 3 })).toEqual(['d0', 'd31', 'd61']);
    const weekly = kept({ keepWeekly: 2 });
    expect(weekly[0]).toBe('d0');
    expect(weekly).toHaveLength(2);
    // Rules add up.
    expect(kept({ keepDays: 2, keepMonthly: 2 })).toEqual(['d0', 'd1', 'd31']);
  });
});
