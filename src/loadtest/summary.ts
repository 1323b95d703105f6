import type { AutocannonResult } from '../adapters/load.js';
import type { LoadSpec } from './plan.js';
import type { LatencySummary, RequestStats, SecondStats } from './stats.js';
import type { ThresholdVerdict } from './thresholds.js';

/**
 * A run's summary from autocannon's result and opskit's own counts: what the table, the JSON and the thresholds read.
 */

export interface LoadSummary {
  target: { url: string; requests: Array<{ name: string; method: string; path: string; weight: number }> };
  load: {
    connections: number;
    durationS?: number;
    amount?: number;
    rate?: number;
    pipelining: number;
    timeoutS: number;
  };
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  requests: { total: number; sent: number; rps: { avg: number; stddev: number; min: number; max: number } };
  latency: LatencySummary;
  throughput: { avgBytesPerSec: number; stddev: number; totalBytes: number };
  statusCodes: Record<string, number>;
  non2xx: number;
  non2xxByCode: Record<string, number>;
  /** Requests that got no answer: connection errors and timeouts (as autocannon counts them), and dropped. */
  errors: number;
  timeouts: number;
  /** Sent on a connection the server closed before answering (part of errors). */
  dropped: number;
  /** The errors by their code (ECONNRESET, ECONNREFUSED, ETIMEDOUT, dropped...): why requests got no answer. */
  errorsByCode: Record<string, number>;
  mismatches: number;
  /** Requests tried: answered plus unanswered; the denominator of errorRate and failureRate. */
  attempts: number;
  errorRate: number;
  /** Unanswered or not 2xx. */
  failureRate: number;
  perRequest: RequestStats[];
  history: SecondStats[];
  interrupted: boolean;
}

export const round2 = (n: number) => Math.round(n * 100) / 100;

/**
 * With a rate, autocannon counts each connection's first requests as its per-second rate instead of the
 * pipelined requests it really wrote (run.js: `totalRequests += pipelining < rate ? rate : pipelining`):
 * its `sent` is too high by this much.
 */
export function autocannonSentExcess(spec: Pick<LoadSpec, 'rate' | 'connections' | 'pipelining'>): number {
  if (!spec.rate) return 0;
  const connections = Math.min(spec.connections, spec.rate);
  let excess = 0;
  for (let i = 0; i < connections; i++) {
    const rate = Math.floor(spec.rate / connections) + (i + 1 <= spec.rate % connections ? 1 : 0);
    excess += Math.max(0, rate - spec.pipelining);
  }
  return excess;
}

export function summarizeRun(
  spec: LoadSpec,
  displayUrl: string,
  result: AutocannonResult,
  recorded: {
    latency: LatencySummary;
    perRequest: RequestStats[];
    history: SecondStats[];
    errorsByCode?: Record<string, number>;
  },
  interrupted: boolean,
): LoadSummary {
  const statusCodes: Record<string, number> = Object.fromEntries(
    Object.entries(result.statusCodeStats ?? {})
      .map(([code, s]): [string, number] => [code, Number(s.count)])
      .sort(([a], [b]) => Number(a) - Number(b)),
  );
  const non2xxByCode = Object.fromEntries(Object.entries(statusCodes).filter(([code]) => !/^2\d\d$/.test(code)));
  const answered = Object.values(statusCodes).reduce((a, b) => a + b, 0);
  const sent = result.requests.sent - autocannonSentExcess(spec);
  // autocannon reconnects silently when the server closes a connection with a request pending, and
  // counts nothing: those are the requests sent that got neither an answer nor an error, beyond the
  // at most connections x pipelining still in flight when the run stopped.
  const dropped = Math.max(0, sent - answered - result.errors - spec.connections * spec.pipelining);
  const errors = result.errors + dropped;
  const attempts = answered + errors;
  return {
    target: {
      url: displayUrl,
      requests: spec.requests.map((r) => ({ name: r.name, method: r.method, path: r.path, weight: r.weight })),
    },
    load: {
      connections: spec.connections,
      ...(spec.amount !== undefined ? { amount: spec.amount } : { durationS: spec.durationS ?? 10 }),
      ...(spec.rate !== undefined ? { rate: spec.rate } : {}),
      pipelining: spec.pipelining,
      timeoutS: spec.timeoutS,
    },
    startedAt: new Date(result.start).toISOString(),
    finishedAt: new Date(result.finish).toISOString(),
    durationMs: Math.round(result.duration * 1000),
    requests: {
      total: answered,
      sent,
      rps: {
        avg: round2(result.requests.average),
        stddev: round2(result.requests.stddev),
        min: result.requests.min,
        max: result.requests.max,
      },
    },
    latency: recorded.latency,
    throughput: {
      avgBytesPerSec: round2(result.throughput.average),
      stddev: round2(result.throughput.stddev),
      totalBytes: result.throughput.total,
    },
    statusCodes,
    non2xx: result.non2xx,
    non2xxByCode,
    errors,
    timeouts: result.timeouts,
    dropped,
    errorsByCode: { ...recorded.errorsByCode, ...(dropped ? { dropped } : {}) },
    mismatches: result.mismatches,
    attempts,
    errorRate: attempts > 0 ? errors / attempts : 0,
    failureRate: attempts > 0 ? (errors + result.non2xx) / attempts : 0,
    perRequest: recorded.perRequest,
    history: recorded.history,
    interrupted,
  };
}

/** What thresholds are judged on. */
export function thresholdFacts(summary: LoadSummary) {
  return {
    latency: summary.latency as unknown as Record<string, number>,
    rps: summary.requests.rps.avg,
    requests: summary.requests.total,
    throughput: summary.throughput.avgBytesPerSec,
    counts: {
      errors: summary.errors,
      timeouts: summary.timeouts,
      non2xx: summary.non2xx,
      failures: summary.errors + summary.non2xx,
    },
    attempts: summary.attempts,
  };
}

/** `10%` -> 0.1 (the % is required: a bare 10 is ambiguous). */
export function parsePercent(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(text);
  return m ? Number(m[1]) / 100 : undefined;
}

export type { ThresholdVerdict };

/** Pure: `ECONNRESET 3, ETIMEDOUT 1`: why requests got no answer, most frequent first. */
export function describeErrors(byCode: Record<string, number>): string {
  return Object.entries(byCode)
    .sort(([, a], [, b]) => b - a)
    .map(([code, n]) => `${code} ${n}`)
    .join(', ');
}
