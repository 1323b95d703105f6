import type { Context } from '../runtime/context.js';
import type { Sensitive } from '../sensitive.js';
import { psqlRestore } from './restoring.js';
import { pgEnv, type Target } from './target.js';

/**
 * How restore and verify reach PostgreSQL: from this machine (database.url's host, the host's psql), or on
 * Swarm with backup.via compose from inside the overlay network (overlay.ts). Both give the same few
 * operations, so the restore test is the same wherever the database runs.
 */
export interface PgReach {
  where: string;
  /** Queries on `database` (or database.url's own), rows as column -> value. */
  session<T>(
    database: string | undefined,
    fn: (query: (sql: string) => Promise<Array<Record<string, unknown>>>) => Promise<T>,
  ): Promise<T>;
  /** A gzipped plain dump loaded by psql in one transaction (rolled back on the first error). */
  restore(t: Target, file: string, database?: string): Promise<void>;
  close(): Promise<void>;
}

export function hostReach(ctx: Context, url: Sensitive): PgReach {
  return {
    where: 'from this machine',
    session: (database, fn) => ctx.datastores.postgresSession(url, database, fn),
    restore: (t, file, database) => psqlRestore(ctx, t, file, pgEnv(url, database)),
    close: async () => {},
  };
}

/** The reach a command uses: inside the overlay on Swarm with backup.via compose, else from this machine. */
export async function pgReach(ctx: Context, url: Sensitive): Promise<PgReach> {
  const config = ctx.loaded!.config;
  if (config.engine === 'swarm' && config.backup.via === 'compose') {
    const { overlayReach } = await import('./overlay.js');
    return overlayReach(ctx, url);
  }
  return hostReach(ctx, url);
}

/** Pure: psql's argv for a restore from stdin (the password in PGPASSWORD, never here). */
export function psqlRestoreArgv(psql: string): string[] {
  return [psql, '--no-password', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '--single-transaction', '-o', '/dev/null'];
}

/** Pure: `psql --csv` output (a header line, then rows; RFC 4180 quoting) as rows. */
export function readCsv(text: string): Array<Record<string, string>> {
  const records: string[][] = [];
  let field = '';
  let row: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n') {
      row.push(field);
      records.push(row);
      row = [];
      field = '';
    } else if (c !== '\r') field += c;
  }
  if (field !== '' || row.length) {
    row.push(field);
    records.push(row);
  }
  const [header, ...rows] = records;
  if (!header) return [];
  return rows.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i] ?? ''])));
}
