import { honourConnectionClose } from './connection-close.js';

/**
 * A steady load in the background, until stopped: what the tests, the demo, the soak and the bench put
 * on the platform while it switches. Every failed request's error is kept by its code, so a check that
 * fails says why (ECONNRESET, ECONNREFUSED, a timeout...), not only how many.
 */
export interface BackgroundLoadResult {
  /** Answered requests. */
  requests: number;
  ok2xx: number;
  non2xx: number;
  /** Requests without an answer: connection errors and timeouts. */
  errors: number;
  timeouts: number;
  /** Sent but neither answered nor failed, beyond those still in flight when the load stopped. */
  dropped: number;
  statusCodes: Record<string, number>;
  /** Each failed request's error, counted by its code (`ETIMEDOUT` for autocannon's own timeouts). */
  errorsByCode: Record<string, number>;
  rps: number;
  durationMs: number;
  /** The answers' latency: what a stall (a lost node's task, a slow switch) costs the requests it meets. */
  latencyMs: { p50: number; p99: number; max: number };
}

export interface BackgroundLoad {
  stop(): Promise<BackgroundLoadResult>;
}

/** Pure: the code a request error is counted under. */
export function errorCode(error: Error & { code?: unknown }): string {
  if (typeof error.code === 'string' && error.code) return error.code;
  if (/timed out/i.test(error.message)) return 'ETIMEDOUT';
  return error.message.slice(0, 60) || 'unknown';
}

/**
 * autocannon against a URL (127.0.0.1 or a test host the caller made), `connections` at once, bounded by
 * `maxSeconds` even if nobody stops it. Resolves when stopped.
 */
export async function startBackgroundLoad(
  url: string,
  options: { connections?: number; maxSeconds?: number; timeoutS?: number } = {},
): Promise<BackgroundLoad> {
  const { default: autocannon } = await import('autocannon');
  const connections = options.connections ?? 50;
  const errorsByCode: Record<string, number> = {};
  let finish: (r: BackgroundLoadResult) => void;
  let fail: (e: Error) => void;
  const done = new Promise<BackgroundLoadResult>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const instance = autocannon(
    {
      url,
      connections,
      duration: options.maxSeconds ?? 240,
      timeout: options.timeoutS ?? 10,
      setupClient: honourConnectionClose as unknown as (client: unknown) => void,
    } as Parameters<typeof autocannon>[0],
    (error: Error | null, result: unknown) => {
      if (error) return fail(error);
      const r = result as {
        requests: { total: number; sent: number; average: number };
        '2xx': number;
        non2xx: number;
        errors: number;
        timeouts: number;
        duration: number;
        latency?: { p50?: number; p99?: number; max?: number };
        statusCodeStats?: Record<string, { count: number | string }>;
      };
      const statusCodes = Object.fromEntries(
        Object.entries(r.statusCodeStats ?? {}).map(([code, s]) => [code, Number(s.count)]),
      );
      const answered = Object.values(statusCodes).reduce((a, b) => a + b, 0);
      finish({
        requests: answered,
        ok2xx: r['2xx'],
        non2xx: r.non2xx,
        errors: r.errors,
        timeouts: r.timeouts,
        dropped: Math.max(0, r.requests.sent - answered - r.errors - connections),
        statusCodes,
        errorsByCode,
        rps: Math.round(r.requests.average),
        durationMs: Math.round(r.duration * 1000),
        latencyMs: { p50: r.latency?.p50 ?? 0, p99: r.latency?.p99 ?? 0, max: r.latency?.max ?? 0 },
      });
    },
  );
  let last: unknown;
  // autocannon emits one reqError per pipelined request for the same error: count it once, as it does.
  (instance as unknown as { on(e: 'reqError', l: (error: Error) => void): void }).on('reqError', (error) => {
    if (error === last) return;
    last = error;
    const code = errorCode(error);
    errorsByCode[code] = (errorsByCode[code] ?? 0) + 1;
  });
  return {
    stop() {
      instance.stop();
      return done;
    },
  };
}

/** Pure: every kind of failure a load saw, with the error codes when there were errors (for a check's message). */
export function failures(
  r: BackgroundLoadResult,
): { non2xx: number; errors: number; timeouts: number; dropped: number } & Record<string, unknown> {
  return {
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    dropped: r.dropped,
    ...(r.non2xx ? { statusCodes: r.statusCodes } : {}),
    ...(r.errors ? { errorsByCode: r.errorsByCode } : {}),
  };
}
