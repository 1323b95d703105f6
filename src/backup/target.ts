import path from 'node:path';
import { type BackupStore, nodeBackupStore } from '../adapters/backupstore.js';
import { createS3Adapter, type S3Adapter, type S3Settings } from '../adapters/s3.js';
import { ConfigError } from '../errors.js';
import { type Context, projectPath } from '../runtime/context.js';
import { Sensitive } from '../sensitive.js';
import { manifestFromMetadata, normalizePrefix, parseBackupName, parseManifest } from './plan.js';

/**
 * Where a backup comes from and goes: the database (on the host, or through the compose network), the local
 * directory and the bucket, and their listings. Every backup command starts here.
 */

/** Flags that stand in for the config file, so cron and CI need none. */
export interface BackupFlags {
  databaseUrl?: string | undefined;
  dir?: string | undefined;
  s3Bucket?: string | undefined;
  s3Prefix?: string | undefined;
  s3Endpoint?: string | undefined;
  s3Region?: string | undefined;
}

export interface Target {
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

export function target(ctx: Context, flags: BackupFlags, deps: BackupDeps = {}): Target {
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

export function requireUrl(t: Target, flag = '--database-url'): Sensitive {
  if (!t.url)
    throw new ConfigError(`no database to back up: set database.url (or DATABASE_URL) or pass ${flag}`, {
      code: 'E_NO_DATABASE_URL',
    });
  return t.url;
}

export const s3Cause = (error: unknown): string => {
  const e = error as { name?: string; message?: string; code?: string; cause?: { code?: string; message?: string } };
  return [e.name, e.code ?? e.cause?.code, e.message].filter(Boolean).join(': ');
};

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

export async function listLocal(ctx: Context, t: Target) {
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

export async function listRemote(t: Target) {
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
