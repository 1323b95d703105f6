import { chmodSync, existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BIN, closedPort, opskit, parseSingleJson, tempDir } from '../helpers/cli.js';
import { type S3Server, startS3Server } from '../helpers/s3.js';

const PG_USER = process.env.OPSKIT_TEST_PG_USER ?? 'opskit_test';
const PG_PASSWORD = process.env.OPSKIT_TEST_PG_PASSWORD ?? 'opskit-test-pw';
const run = Date.now().toString(36);
const SRC = `opskit_bk_src_${run}`;
const DST = `opskit_bk_dst_${run}`;
const url = (db: string, password = PG_PASSWORD) => `postgres://${PG_USER}:${password}@127.0.0.1:5432/${db}`;
const AWS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER-secret-key-xyz' };

async function sql(db: string, query: string): Promise<Array<Record<string, unknown>>> {
  const client = new pg.Client({ connectionString: url(db) });
  await client.connect();
  try {
    return (await client.query(query)).rows as Array<Record<string, unknown>>;
  } finally {
    await client.end();
  }
}

describe('opskit backup: real PostgreSQL, real pg_dump/psql, s3rver', () => {
  let s3: S3Server;
  let dir: string;
  const cli = (args: string[], env: Record<string, string> = {}) =>
    opskit(args, { cwd: dir, env: { ...AWS, ...env }, timeoutMs: 120_000 });
  const s3Flags = () => ['--s3-bucket', 'opskit-test', '--s3-prefix', `it-${run}/`, '--s3-endpoint', s3.endpoint];

  beforeAll(async () => {
    s3 = await startS3Server();
    dir = tempDir('opskit-backup-');
    await sql('postgres', `CREATE DATABASE ${SRC}`);
    await sql('postgres', `CREATE DATABASE ${DST}`);
    await sql(
      SRC,
      "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, created_at timestamptz DEFAULT now()); INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 5000) g; CREATE TABLE tags (item int REFERENCES items, tag text); INSERT INTO tags SELECT g, 't' || (g % 7) FROM generate_series(1, 5000) g",
    );
  });
  // Each test starts from an empty local directory (S3 keeps what earlier tests uploaded).
  beforeEach(() => rmSync(path.join(dir, 'backups'), { recursive: true, force: true }));
  afterAll(async () => {
    await s3?.stop();
    for (const db of [SRC, DST]) await sql('postgres', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => {});
  });

  it('create: a local file and its manifest, and an S3 object whose size HeadObject confirms; the password is in no output', async () => {
    const r = await cli(['backup', 'create', '--database-url', url(SRC), ...s3Flags(), '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = parseSingleJson(r.stdout) as {
      backup: {
        name: string;
        file: string;
        sizeBytes: number;
        sha256: string;
        database: string;
        serverVersion: string;
      };
      s3: { key: string; uploaded: boolean };
    };
    expect(doc.backup.name).toMatch(new RegExp(`^${SRC}_\\d{8}_\\d{6}\\.sql\\.gz$`));
    expect(existsSync(doc.backup.file)).toBe(true);
    expect(existsSync(`${doc.backup.file}.json`)).toBe(true);
    expect(doc.backup.serverVersion).toMatch(/^15/);
    expect(doc.s3).toMatchObject({ key: `it-${run}/${doc.backup.name}`, uploaded: true });
    const sha = (await execa('sha256sum', [doc.backup.file])).stdout.split(' ')[0];
    expect(doc.backup.sha256).toBe(sha);
    expect(r.stdout + r.stderr).not.toContain(PG_PASSWORD);
    expect(r.stdout + r.stderr).not.toContain(AWS.AWS_SECRET_ACCESS_KEY);
  });

  it('list merges local and S3; restore into another database gives equal data; from S3 alone after the local copy is gone', async () => {
    expect((await cli(['backup', 'create', '--database-url', url(SRC), ...s3Flags()])).exitCode).toBe(0);
    const list = parseSingleJson((await cli(['backup', 'list', ...s3Flags(), '--json'])).stdout) as {
      backups: Array<{ id: string; local: boolean; s3: boolean; good: boolean }>;
    };
    expect(list.backups[0]).toMatchObject({ local: true, s3: true, good: true });
    const restored = await cli(['backup', 'restore', 'latest', '--target', url(DST), ...s3Flags(), '--json']);
    expect(restored.exitCode, restored.stderr).toBe(0);
    expect(parseSingleJson(restored.stdout)).toMatchObject({ tables: 2, rows: 10_000, downloaded: false });
    const digest = "SELECT md5(string_agg(id || ':' || name, ',' ORDER BY id)) AS h FROM items";
    expect(await sql(DST, digest)).toEqual(await sql(SRC, digest));
    // A target with tables is refused without --yes (exit 2), and nothing changes.
    const refused = await cli(['backup', 'restore', 'latest', '--target', url(DST), ...s3Flags()]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain('--yes');
    expect(refused.stderr).not.toContain(PG_PASSWORD);
    // Local copy gone: downloaded from S3, checksum verified, restored.
    rmSync(path.join(dir, 'backups'), { recursive: true });
    await sql(DST, 'DROP TABLE tags; DROP TABLE items');
    const fromS3 = await cli(['backup', 'restore', list.backups[0]!.id, '--target', url(DST), ...s3Flags(), '--json']);
    expect(fromS3.exitCode, fromS3.stderr).toBe(0);
    expect(parseSingleJson(fromS3.stdout)).toMatchObject({ downloaded: true, rows: 10_000 });
    expect(await sql(DST, digest)).toEqual(await sql(SRC, digest));
  });

  it('verify: restores into a scratch database, counts tables and rows, drops it; a corrupted file exits 1', async () => {
    const r = await cli(['backup', 'verify', '--database-url', url(SRC), ...s3Flags(), '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = parseSingleJson(r.stdout) as {
      scratchDatabase: string;
      tables: Record<string, number>;
      checksum: string;
    };
    expect(doc).toMatchObject({ checksum: 'ok', tables: { 'public.items': 5000, 'public.tags': 5000 } });
    expect(await sql('postgres', `SELECT 1 FROM pg_database WHERE datname = '${doc.scratchDatabase}'`)).toEqual([]);
    const file = path.join(dir, 'backups', readdirSync(path.join(dir, 'backups')).find((f) => f.endsWith('.sql.gz'))!);
    writeFileSync(file, 'not what was dumped', { flag: 'a' });
    const bad = await cli(['backup', 'verify', '--database-url', url(SRC), '--json']);
    expect(bad.exitCode).toBe(1);
    expect(parseSingleJson(bad.stdout)).toMatchObject({ ok: false, error: { code: 'E_CHECKSUM' } });
    rmSync(path.join(dir, 'backups'), { recursive: true });
  });

  it('pg_dump fails (wrong password, missing database): exit 1, nothing written or uploaded, prune not run; the password shown nowhere', async () => {
    const before = parseSingleJson((await cli(['backup', 'list', ...s3Flags(), '--json'])).stdout) as {
      backups: unknown[];
    };
    for (const target of [url(SRC, 'wrong-pw-123'), url(`no_such_db_${run}`)]) {
      const r = await cli(['backup', 'create', '--database-url', target, ...s3Flags(), '--prune', '--keep-days', '1']);
      expect(r.exitCode, r.stderr).toBe(1);
      expect(r.stdout + r.stderr).not.toContain('wrong-pw-123');
      expect(r.stdout + r.stderr).not.toContain(PG_PASSWORD);
      expect(existsSync(path.join(dir, 'backups')) ? readdirSync(path.join(dir, 'backups')) : []).toEqual([]);
    }
    const after = parseSingleJson((await cli(['backup', 'list', ...s3Flags(), '--json'])).stdout) as {
      backups: unknown[];
    };
    expect(after.backups).toHaveLength(before.backups.length);
  });

  it('S3 unreachable: the local backup is kept, exit 1 naming S3 and the real cause', async () => {
    const port = await closedPort();
    const r = await cli([
      'backup',
      'create',
      '--database-url',
      url(SRC),
      '--s3-bucket',
      'opskit-test',
      '--s3-prefix',
      `it-${run}/`,
      '--s3-endpoint',
      `http://127.0.0.1:${port}`,
      '--json',
    ]);
    expect(r.exitCode).toBe(1);
    const doc = parseSingleJson(r.stdout) as { error: { code: string; message: string } };
    expect(doc.error.code).toBe('E_S3_UPLOAD');
    expect(doc.error.message).toMatch(/S3.*ECONNREFUSED/s);
    const files = readdirSync(path.join(dir, 'backups'));
    expect(files.filter((f) => f.endsWith('.sql.gz'))).toHaveLength(1);
    expect(files.filter((f) => f.endsWith('.json'))).toHaveLength(1);
    rmSync(path.join(dir, 'backups'), { recursive: true });
  });

  it('SIGKILL mid-dump leaves no file under the final name; the next run removes the stale .partial; a concurrent run exits 4', async () => {
    // A pg_dump that writes part of a dump and then hangs, at pg_dump's own interface (argv, PG* env, stdout).
    const slow = path.join(dir, 'slow-pg_dump');
    writeFileSync(slow, '#!/bin/sh\nhead -c 200000 /dev/urandom\nsleep 30\n');
    chmodSync(slow, 0o755);
    const child = execa(
      process.execPath,
      [BIN, 'backup', 'create', '--database-url', url(SRC), '--set', `backup.pgDump=${slow}`],
      { cwd: dir, reject: false, env: AWS },
    );
    const backups = path.join(dir, 'backups');
    for (let i = 0; i < 100 && !(existsSync(backups) && readdirSync(backups).some((f) => f.endsWith('.partial'))); i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(readdirSync(backups).some((f) => f.endsWith('.partial'))).toBe(true);
    const concurrent = await cli(['backup', 'create', '--database-url', url(SRC)]);
    expect(concurrent.exitCode).toBe(4);
    child.kill('SIGKILL');
    await child;
    expect(readdirSync(backups).filter((f) => f.endsWith('.sql.gz'))).toEqual([]);
    const next = await cli(['backup', 'create', '--database-url', url(SRC), '--json']);
    expect(next.exitCode, next.stderr).toBe(0);
    expect((parseSingleJson(next.stdout) as { removedPartials: string[] }).removedPartials).toHaveLength(1);
    expect(readdirSync(backups).filter((f) => f.endsWith('.partial'))).toEqual([]);
    rmSync(backups, { recursive: true });
  });

  it('--dry-run lists the steps and writes nothing; create --prune prunes after a good backup; a failed listing deletes nothing', async () => {
    const dry = await cli(['--dry-run', 'backup', 'create', '--database-url', url(SRC), ...s3Flags(), '--json']);
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(parseSingleJson(dry.stdout)).toMatchObject({ backup: null, plan: expect.any(Array) });
    expect(existsSync(path.join(dir, 'backups'))).toBe(false);
    // An old good backup (a real one, renamed 60 days back, with its manifest).
    const first = parseSingleJson((await cli(['backup', 'create', '--database-url', url(SRC), '--json'])).stdout) as {
      backup: { file: string; name: string };
    };
    const { readFileSync, renameSync } = await import('node:fs');
    const old = `${SRC}_${new Date(Date.now() - 60 * 86_400_000).toISOString().replace(/[-:]/g, '').replace('T', '_').slice(0, 15)}.sql.gz`;
    const backups = path.join(dir, 'backups');
    const manifest = JSON.parse(readFileSync(`${first.backup.file}.json`, 'utf8'));
    renameSync(first.backup.file, path.join(backups, old));
    writeFileSync(path.join(backups, `${old}.json`), JSON.stringify({ ...manifest, name: old }));
    rmSync(`${first.backup.file}.json`);
    // S3 unreachable: the listing fails, so nothing is deleted locally either.
    const port = await closedPort();
    const failed = await cli([
      'backup',
      'prune',
      '--keep-days',
      '30',
      '--s3-bucket',
      'opskit-test',
      '--s3-prefix',
      `it-${run}/`,
      '--s3-endpoint',
      `http://127.0.0.1:${port}`,
    ]);
    expect(failed.exitCode).toBe(1);
    expect(failed.stderr).toContain('nothing was deleted');
    expect(existsSync(path.join(backups, old))).toBe(true);
    // A good new backup, then the retention: the 60-day-old one goes.
    const r = await cli(['backup', 'create', '--database-url', url(SRC), '--prune', '--keep-days', '30', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(parseSingleJson(r.stdout)).toMatchObject({ prune: { deleted: { local: [old], s3: [] } } });
    expect(existsSync(path.join(backups, old))).toBe(false);
    expect(existsSync(path.join(backups, `${old}.json`))).toBe(false);
  });

  it('prune: retention against backdated files and objects; never the newest good backup, never a file without our manifest; --dry-run deletes nothing', async () => {
    // Real backups, renamed to dates in the past (their manifests name them), locally and in S3.
    const prefix = `prune-${run}/`;
    const flags = ['--s3-bucket', 'opskit-test', '--s3-prefix', prefix, '--s3-endpoint', s3.endpoint];
    const created = parseSingleJson((await cli(['backup', 'create', '--database-url', url(SRC), '--json'])).stdout) as {
      backup: { file: string; name: string };
    };
    const { readFileSync } = await import('node:fs');
    const backups = path.join(dir, 'backups');
    const days = [1, 2, 3, 10, 40, 50, 400];
    const names = days.map((d) => {
      const at = new Date(Date.now() - d * 86_400_000);
      const stamp = at.toISOString().replace(/[-:]/g, '').replace('T', '_').slice(0, 15);
      return `${SRC}_${stamp}.sql.gz`;
    });
    const manifest = JSON.parse(readFileSync(`${created.backup.file}.json`, 'utf8'));
    for (const name of names) {
      writeFileSync(path.join(backups, name), readFileSync(created.backup.file));
      writeFileSync(path.join(backups, `${name}.json`), JSON.stringify({ ...manifest, name }));
    }
    rmSync(created.backup.file);
    rmSync(`${created.backup.file}.json`);
    writeFileSync(path.join(backups, `${SRC}_20000101_000000.sql.gz`), 'not ours: no manifest');
    // Upload the same set to S3 with the SDK, our metadata on each.
    const { S3Client, PutObjectCommand } = await import('@aws-sdk/client-s3');
    const client = new S3Client({
      region: 'us-east-1',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: AWS.AWS_ACCESS_KEY_ID, secretAccessKey: AWS.AWS_SECRET_ACCESS_KEY },
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
    const body = readFileSync(path.join(backups, names[0]!));
    for (const name of names) {
      await client.send(
        new PutObjectCommand({
          Bucket: 'opskit-test',
          Key: `${prefix}${name}`,
          Body: body,
          Metadata: {
            'opskit-format': '1',
            'opskit-sha256': manifest.sha256,
            'opskit-size': String(body.length),
            'opskit-database': SRC,
          },
        }),
      );
    }
    await client.send(new PutObjectCommand({ Bucket: 'opskit-test', Key: `${prefix}notes.txt`, Body: 'not a backup' }));

    const dry = await cli(['--dry-run', 'backup', 'prune', '--keep-days', '5', ...flags, '--json']);
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(readdirSync(backups).filter((f) => f.endsWith('.sql.gz'))).toHaveLength(8);
    const r = await cli(['backup', 'prune', '--keep-days', '5', '--keep-monthly', '2', ...flags, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = parseSingleJson(r.stdout) as { deleted: { local: string[]; s3: string[] } };
    // Kept: 1, 2, 3 days (younger than 5) and the newest of the two most recent months with a backup.
    const kept = readdirSync(backups)
      .filter((f) => f.endsWith('.sql.gz'))
      .sort();
    expect(kept).toContain(`${SRC}_20000101_000000.sql.gz`); // no manifest: never touched
    expect(kept).toContain(names[0]);
    expect(doc.deleted.local).toContain(names[6]);
    expect(doc.deleted.s3).toContain(names[6]);
    expect(doc.deleted.local.sort()).toEqual(doc.deleted.s3.sort());
    // Everything old: the newest good one still stays.
    const all = await cli(['backup', 'prune', '--keep-days', '1', '--keep-monthly', '1', ...flags, '--json']);
    expect(all.exitCode).toBe(0);
    const list = parseSingleJson((await cli(['backup', 'list', ...flags, '--json'])).stdout) as {
      backups: Array<{ id: string; good: boolean; s3: boolean }>;
    };
    expect(list.backups.filter((b) => b.good).map((b) => b.id)).toEqual([names[0]]);
    // An empty prefix is refused (exit 2) before anything is deleted.
    const empty = await cli([
      'backup',
      'prune',
      '--s3-bucket',
      'opskit-test',
      '--s3-prefix',
      '',
      '--s3-endpoint',
      s3.endpoint,
    ]);
    expect(empty.exitCode).toBe(2);
    rmSync(backups, { recursive: true });
  });
});

describe('opskit backup create --via compose: pg_dump inside the db service (docker exec through the Engine API)', () => {
  let p: import('../helpers/platform.js').Platform;
  beforeAll(async () => {
    const { createPlatform } = await import('../helpers/platform.js');
    p = await createPlatform('opskit-backup-compose-');
    const deployed = await p.run(['deploy', '--build']);
    expect(deployed.exitCode, deployed.stderr).toBe(0);
  });
  afterAll(async () => {
    await p?.destroy();
  });

  it('dumps the platform database from its container; the file holds its schema and data; the password is in no output', async () => {
    await p.sql("INSERT INTO items (name) VALUES ('from-the-backup-test')");
    const r = await p.run(['backup', 'create', '--via', 'compose', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = parseSingleJson(r.stdout) as {
      backup: { file: string; database: string; serverVersion: string; sha256: string };
    };
    expect(doc.backup).toMatchObject({ database: 'app', serverVersion: expect.stringMatching(/^15/) });
    const { gunzipSync } = await import('node:zlib');
    const { readFileSync } = await import('node:fs');
    const text = gunzipSync(readFileSync(doc.backup.file)).toString();
    expect(text).toContain('CREATE TABLE public.items');
    expect(text).toContain('from-the-backup-test');
    const password = /POSTGRES_PASSWORD=(.*)/.exec(readFileSync(path.join(p.dir, '.env'), 'utf8'))![1]!;
    expect(r.stdout + r.stderr).not.toContain(password);
    // A bad value for --via is exit 2, naming the flag.
    const bad = await p.run(['backup', 'create', '--via', 'ssh']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('--via');
  });
});
