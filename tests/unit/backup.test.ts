import { describe, expect, it } from 'vitest';
import { pgEnv } from '../../src/backup/action.js';
import { backupName, manifestFromMetadata, manifestMetadata, mergeListing, normalizePrefix, objectKey, parseBackupName, parseManifest, planPrune, type Manifest } from '../../src/backup/plan.js';
import { Sensitive } from '../../src/config/sensitive.js';

const at = (iso: string) => new Date(iso);
const manifest = (name: string, size = 100): Manifest => ({ name, database: 'app', serverVersion: '15.1', sizeBytes: size, sha256: 'a'.repeat(64), startedAt: '', endedAt: '', durationMs: 1, format: 1 });

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
    expect(pgEnv(Sensitive.url('postgres://u:p%40ss@db.example:6543/app?sslmode=require'))).toEqual({ PGHOST: 'db.example', PGPORT: '6543', PGDATABASE: 'app', PGUSER: 'u', PGPASSWORD: 'p@ss', PGSSLMODE: 'require' });
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
        { key: 'p/app_20261201_000000.sql.gz', name: 'app_20261201_000000.sql.gz', sizeBytes: 100, manifest: manifest('app_20261201_000000.sql.gz') },
        { key: 'p/app_20261129_000000.sql.gz', name: 'app_20261129_000000.sql.gz', sizeBytes: 100, manifest: undefined },
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
});

describe('planPrune (restic semantics)', () => {
  const now = at('2026-12-31T12:00:00Z');
  const daily = Array.from({ length: 90 }, (_, i) => ({ name: `d${i}`, takenAt: new Date(now.getTime() - i * 86_400_000 - 3_600_000) }));
  const kept = (policy: Parameters<typeof planPrune>[1], list = daily) => planPrune(list, policy, now).filter((d) => d.keep).map((d) => d.name);

  it('--keep-days keeps everything younger; the newest is kept even when everything is old', () => {
    expect(kept({ keepDays: 3 })).toEqual(['d0', 'd1', 'd2']);
    const old = [{ name: 'old1', takenAt: at('2020-01-02T00:00:00Z') }, { name: 'old0', takenAt: at('2020-01-01T00:00:00Z') }];
    expect(kept({ keepDays: 1 }, old)).toEqual(['old1']);
    expect(planPrune(old, { keepDays: 1 }, now)[0]!.reasons).toEqual(['the newest good backup']);
  });
  it('--keep-daily/weekly/monthly keep the newest of each of the N most recent periods that have one', () => {
    expect(kept({ keepDaily: 2 })).toEqual(['d0', 'd1']);
    // Two backups on one day count as one day.
    const twice = [{ name: 'late', takenAt: at('2026-12-31T11:00:00Z') }, { name: 'early', takenAt: at('2026-12-31T01:00:00Z') }, { name: 'yesterday', takenAt: at('2026-12-30T11:00:00Z') }];
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
