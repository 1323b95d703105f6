/**
 * Pure: backup names, manifests, the merged listing and the retention plan.
 * A backup is `<db>_YYYYMMDD_HHMMSS.sql.gz` with its manifest `<name>.json` beside it (locally) or in the
 * object's metadata (S3). Only backups with a manifest are ours: nothing else is ever listed as good or pruned.
 */

export interface Manifest {
  /** The file name, e.g. app_20261201_020000.sql.gz: the backup's id. */
  name: string;
  database: string;
  serverVersion: string;
  sizeBytes: number;
  sha256: string;
  startedAt: string;
  endedAt: string;
  durationMs: number;
  /** The opskit manifest format. */
  format: 1;
}

const NAME = /^([A-Za-z0-9_.-]+)_(\d{8})_(\d{6})\.sql\.gz$/;

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** The file name of a backup of `database` taken at `at` (UTC). */
export function backupName(database: string, at: Date): string {
  const safe = database.replace(/[^A-Za-z0-9_.-]/g, '_');
  return `${safe}_${at.getUTCFullYear()}${pad(at.getUTCMonth() + 1)}${pad(at.getUTCDate())}_${pad(at.getUTCHours())}${pad(at.getUTCMinutes())}${pad(at.getUTCSeconds())}.sql.gz`;
}

/** The time a backup name says it was taken, or undefined when the name is not one of ours. */
export function parseBackupName(name: string): { database: string; takenAt: Date } | undefined {
  const m = NAME.exec(name);
  if (!m) return undefined;
  const [, database, d, t] = m as unknown as [string, string, string, string];
  const takenAt = new Date(
    Date.UTC(+d.slice(0, 4), +d.slice(4, 6) - 1, +d.slice(6, 8), +t.slice(0, 2), +t.slice(2, 4), +t.slice(4, 6)),
  );
  return Number.isNaN(takenAt.getTime()) ? undefined : { database, takenAt };
}

/** The manifest from its JSON, or undefined when it is not a complete one. */
export function parseManifest(text: string | undefined): Manifest | undefined {
  if (!text) return undefined;
  try {
    const m = JSON.parse(text) as Partial<Manifest>;
    if (
      m.format !== 1 ||
      typeof m.name !== 'string' ||
      typeof m.sha256 !== 'string' ||
      !/^[0-9a-f]{64}$/.test(m.sha256) ||
      typeof m.sizeBytes !== 'number'
    )
      return undefined;
    return m as Manifest;
  } catch {
    return undefined;
  }
}

/** S3 user metadata (lower-case keys, string values) carrying the manifest's facts. */
export function manifestMetadata(m: Manifest): Record<string, string> {
  return {
    'opskit-format': '1',
    'opskit-database': m.database,
    'opskit-server-version': m.serverVersion,
    'opskit-size': String(m.sizeBytes),
    'opskit-sha256': m.sha256,
    'opskit-started-at': m.startedAt,
    'opskit-ended-at': m.endedAt,
    'opskit-duration-ms': String(m.durationMs),
  };
}

export function manifestFromMetadata(name: string, meta: Record<string, string> | undefined): Manifest | undefined {
  if (meta?.['opskit-format'] !== '1') return undefined;
  const sha256 = meta['opskit-sha256'] ?? '';
  const size = Number(meta['opskit-size']);
  if (!/^[0-9a-f]{64}$/.test(sha256) || !Number.isFinite(size)) return undefined;
  return {
    name,
    database: meta['opskit-database'] ?? '',
    serverVersion: meta['opskit-server-version'] ?? '',
    sizeBytes: size,
    sha256,
    startedAt: meta['opskit-started-at'] ?? '',
    endedAt: meta['opskit-ended-at'] ?? '',
    durationMs: Number(meta['opskit-duration-ms'] ?? 0),
    format: 1,
  };
}

export interface LocalEntry {
  name: string;
  sizeBytes: number;
  manifest: Manifest | undefined;
}
export interface RemoteEntry {
  key: string;
  name: string;
  sizeBytes: number;
  manifest: Manifest | undefined;
}

export interface BackupRow {
  id: string;
  database: string;
  takenAt: string;
  ageMs: number;
  /** The size of a good copy when there is one. */
  sizeBytes: number;
  /** A copy is stored there, good or not. */
  local: boolean;
  s3: boolean;
  /** A good copy's sha256 when there is one, else any manifest's; null when no manifest is known. */
  sha256: string | null;
  /** At least one copy is good. */
  good: boolean;
  /**
   * Each copy on its own: a manifest is known and its size matches what is stored. A good local copy
   * must not vouch for a partial S3 object of the same name (an upload killed mid-way), nor the reverse.
   */
  localGood: boolean;
  s3Good: boolean;
}

/** Pure: local files and S3 objects merged by name, newest first. Names that are not ours are left out. */
export function mergeListing(local: readonly LocalEntry[], remote: readonly RemoteEntry[], now: Date): BackupRow[] {
  const rows = new Map<string, BackupRow>();
  const add = (name: string, size: number, manifest: Manifest | undefined, where: 'local' | 's3') => {
    const parsed = parseBackupName(name);
    if (!parsed) return;
    const good = manifest !== undefined && manifest.sizeBytes === size;
    const row = rows.get(name) ?? {
      id: name,
      database: parsed.database,
      takenAt: parsed.takenAt.toISOString(),
      ageMs: now.getTime() - parsed.takenAt.getTime(),
      sizeBytes: size,
      local: false,
      s3: false,
      sha256: null,
      good: false,
      localGood: false,
      s3Good: false,
    };
    row[where] = true;
    row[where === 'local' ? 'localGood' : 's3Good'] = good;
    if (good && !row.good) {
      // The facts of the first good copy win over those of a copy that is not good.
      row.sizeBytes = size;
      row.sha256 = manifest.sha256;
    } else {
      row.sha256 ??= manifest?.sha256 ?? null;
    }
    row.good ||= good;
    rows.set(name, row);
  };
  for (const l of local) add(l.name, l.sizeBytes, l.manifest, 'local');
  for (const r of remote) add(r.name, r.sizeBytes, r.manifest, 's3');
  return [...rows.values()].sort((a, b) => b.takenAt.localeCompare(a.takenAt));
}

/**
 * Pure: which copy a restore or verify reads. A good copy first (local, then S3), so that a backup listed
 * as good restores even when its other copy is damaged; with no good copy, the one with a manifest, so
 * that the checksum check says what is wrong; undefined when no copy has a manifest.
 */
export function copyToRestore(
  row: Pick<BackupRow, 'local' | 's3' | 'localGood' | 's3Good'> & { localManifest: boolean; s3Manifest: boolean },
): 'local' | 's3' | undefined {
  if (row.local && row.localGood) return 'local';
  if (row.s3 && row.s3Good) return 's3';
  if (row.local && row.localManifest) return 'local';
  if (row.s3 && row.s3Manifest) return 's3';
  return undefined;
}

/** The journal of a multipart upload in flight, beside the backup: `<name>.upload.json`. */
export const UPLOAD_JOURNAL_SUFFIX = '.upload.json';

export interface UploadJournal {
  bucket: string;
  key: string;
  /** Unset while CreateMultipartUpload is under way: the upload, if any, is found by its key. */
  uploadId: string | undefined;
  startedAt: string;
}

export function parseUploadJournal(text: string | undefined): UploadJournal | undefined {
  if (!text) return undefined;
  try {
    const j = JSON.parse(text) as Partial<UploadJournal>;
    if (typeof j.bucket !== 'string' || typeof j.key !== 'string' || j.key === '') return undefined;
    if (j.uploadId !== undefined && (typeof j.uploadId !== 'string' || j.uploadId === '')) return undefined;
    return { bucket: j.bucket, key: j.key, uploadId: j.uploadId, startedAt: String(j.startedAt ?? '') };
  } catch {
    return undefined;
  }
}

export interface Leftovers {
  /** Files a killed run left that are not a backup, to remove. */
  remove: string[];
  /** Journals of multipart uploads a killed run started: their uploads are to be aborted. */
  uploads: string[];
}

// `.<file>.<pid>.<8 hex>.tmp`: writeFileAtomic's temporary file (src/adapters/fs.ts), here of a manifest or a journal.
const ATOMIC_TEMP = /^\.(.+)\.\d+\.[0-9a-f]{8}\.tmp$/;

/**
 * Pure: what a run killed at any moment (SIGKILL, OOM, power) left in the backup directory, judged by
 * the next run under the lock (so no other run is writing). `create` writes `<name>.partial`, then the
 * manifest `<name>.json`, then renames the partial to `<name>`; a killed run therefore leaves a
 * `.partial`, perhaps with its manifest but never a final name without one. Removed: every `.partial` of
 * ours (a dump's, or a download's), the manifest of a partial that was never renamed (when no file has
 * the final name), and temporary files of an atomic write of our manifests or journals. Upload journals
 * are returned apart: their multipart uploads must be aborted before the journal goes. Anything else,
 * including a final file without a manifest, is not provably ours and is left alone.
 */
export function planLeftovers(files: readonly string[]): Leftovers {
  const present = new Set(files);
  const remove: string[] = [];
  const uploads: string[] = [];
  const ours = (file: string, suffix: string) =>
    file.endsWith(suffix) && parseBackupName(file.slice(0, -suffix.length)) !== undefined;
  for (const file of [...files].sort()) {
    if (ours(file, '.download.partial')) remove.push(file);
    else if (ours(file, '.partial')) {
      remove.push(file);
      const name = file.slice(0, -'.partial'.length);
      if (present.has(`${name}.json`) && !present.has(name)) remove.push(`${name}.json`);
    } else if (ours(file, UPLOAD_JOURNAL_SUFFIX)) uploads.push(file);
    else {
      const temp = ATOMIC_TEMP.exec(file)?.[1];
      if (temp !== undefined && (ours(temp, '.json') || ours(temp, UPLOAD_JOURNAL_SUFFIX))) remove.push(file);
    }
  }
  return { remove, uploads };
}

export interface RetentionPolicy {
  keepDays?: number | undefined;
  keepDaily?: number | undefined;
  keepWeekly?: number | undefined;
  keepMonthly?: number | undefined;
}

export interface PruneDecision {
  name: string;
  takenAt: string;
  keep: boolean;
  reasons: string[];
}

const isoWeek = (d: Date): string => {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - day);
  const year = t.getUTCFullYear();
  const week = Math.ceil(((t.getTime() - Date.UTC(year, 0, 1)) / 86_400_000 + 1) / 7);
  return `${year}-W${pad(week)}`;
};

/**
 * Pure: which good backups to keep, with restic's `forget` semantics: --keep-daily N keeps the newest
 * backup of each of the N most recent days that have one (likewise weeks and months); --keep-days keeps
 * everything younger than N days; a backup kept by any rule is kept. The newest good backup is always
 * kept. Only the backups given (ours, good) are judged: anything else is never touched.
 */
export function planPrune(
  backups: ReadonlyArray<{ name: string; takenAt: Date }>,
  policy: RetentionPolicy,
  now: Date,
): PruneDecision[] {
  const sorted = [...backups].sort((a, b) => b.takenAt.getTime() - a.takenAt.getTime());
  const reasons = new Map<string, string[]>(sorted.map((b) => [b.name, []]));
  if (sorted[0]) reasons.get(sorted[0].name)!.push('the newest good backup');
  if (policy.keepDays !== undefined) {
    const cutoff = now.getTime() - policy.keepDays * 86_400_000;
    for (const b of sorted)
      if (b.takenAt.getTime() >= cutoff) reasons.get(b.name)!.push(`younger than ${policy.keepDays} days`);
  }
  const bucketed = (count: number | undefined, label: string, bucket: (d: Date) => string) => {
    if (!count) return;
    const seen = new Set<string>();
    for (const b of sorted) {
      const key = bucket(b.takenAt);
      if (seen.has(key)) continue;
      if (seen.size >= count) break;
      seen.add(key);
      reasons.get(b.name)!.push(`${label} ${key}`);
    }
  };
  bucketed(policy.keepDaily, 'daily', (d) => d.toISOString().slice(0, 10));
  bucketed(policy.keepWeekly, 'weekly', isoWeek);
  bucketed(policy.keepMonthly, 'monthly', (d) => d.toISOString().slice(0, 7));
  return sorted.map((b) => ({
    name: b.name,
    takenAt: b.takenAt.toISOString(),
    keep: reasons.get(b.name)!.length > 0,
    reasons: reasons.get(b.name)!,
  }));
}

/** Pure: the S3 key of a backup under a prefix ('' or ending in '/'). */
export function objectKey(prefix: string, name: string): string {
  return `${normalizePrefix(prefix)}${name}`;
}

export function normalizePrefix(prefix: string): string {
  const p = prefix.replace(/^\/+/, '');
  return p === '' || p.endsWith('/') ? p : `${p}/`;
}
