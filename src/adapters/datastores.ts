import type { Sensitive } from '../sensitive.js';

/**
 * PostgreSQL and Redis probes. The drivers (pg, ioredis) load only when a check of that kind runs.
 * URLs arrive as Sensitive and are revealed only here, to the driver.
 */
export interface DatastoreAdapter {
  postgres(url: Sensitive, timeoutMs: number): Promise<{ version: string; serverVersion: string; latencyMs: number }>;
  redis(url: Sensitive, timeoutMs: number): Promise<{ reply: string; latencyMs: number }>;
  /** One connection to `url` (or another database on its server), for a few queries, then closed. */
  postgresSession<T>(
    url: Sensitive,
    database: string | undefined,
    fn: (query: (sql: string) => Promise<Array<Record<string, unknown>>>) => Promise<T>,
  ): Promise<T>;
}

export const nodeDatastores: DatastoreAdapter = {
  async postgres(url, timeoutMs) {
    const { default: pg } = await import('pg');
    const started = performance.now();
    const client = new pg.Client({
      connectionString: url.reveal(),
      connectionTimeoutMillis: timeoutMs,
      query_timeout: timeoutMs,
      statement_timeout: timeoutMs,
    });
    client.on('error', () => {});
    try {
      await client.connect();
      const version = await client.query<{ version: string }>('SELECT version()');
      const server = await client.query<{ server_version: string }>('SHOW server_version');
      return {
        version: version.rows[0]!.version,
        serverVersion: server.rows[0]!.server_version,
        latencyMs: performance.now() - started,
      };
    } finally {
      await client.end().catch(() => {});
    }
  },
  async postgresSession(url, database, fn) {
    const { default: pg } = await import('pg');
    const u = new URL(url.reveal());
    if (database) u.pathname = `/${encodeURIComponent(database)}`;
    const client = new pg.Client({ connectionString: u.toString(), connectionTimeoutMillis: 10_000 });
    client.on('error', () => {});
    await client.connect();
    try {
      return await fn(async (sql) => (await client.query(sql)).rows as Array<Record<string, unknown>>);
    } finally {
      await client.end().catch(() => {});
    }
  },
  async redis(url, timeoutMs) {
    const { Redis } = await import('ioredis');
    const started = performance.now();
    const client = new Redis(url.reveal(), {
      lazyConnect: true,
      connectTimeout: timeoutMs,
      commandTimeout: timeoutMs,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      enableOfflineQueue: false,
    });
    client.on('error', () => {});
    try {
      await client.connect();
      const reply = await client.ping();
      return { reply, latencyMs: performance.now() - started };
    } finally {
      client.disconnect();
    }
  },
};
