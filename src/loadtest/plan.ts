import { z } from 'zod';
import type { AutocannonPlan, AutocannonResult } from '../adapters/load.js';
import { Sensitive } from '../sensitive.js';
import type { LatencySummary, RequestStats, SecondStats } from './stats.js';
import { sampleOf, welchTest } from './stats.js';
import type { ThresholdVerdict } from './thresholds.js';

/**
 * What `opskit loadtest` decides, purely: the scenario, the weighted order of its requests, the exact
 * autocannon options, the summary of a run, its CSV files, and the comparison with a baseline.
 */

export interface ScenarioRequest {
  name: string;
  method: string;
  path: string;
  headers: Record<string, string | Sensitive>;
  body?: string;
  weight: number;
}

export interface LoadSpec {
  /** The target's origin and, for a single request, its path: `http://127.0.0.1:8080/health`. */
  url: string;
  connections: number;
  /** Exactly one of the two bounds. */
  durationS?: number;
  amount?: number;
  /** Requests per second over all connections; latencies are corrected for coordinated omission. */
  rate?: number;
  pipelining: number;
  timeoutS: number;
  requests: ScenarioRequest[];
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

export const scenarioSchema = z.strictObject({
  /** The target (origin, or origin and base path); --url wins. */
  url: z
    .string()
    .regex(/^https?:\/\/\S+$/i, { error: 'expected an http(s) URL' })
    .optional(),
  /** Headers sent with every request; a request's own win. */
  headers: z.record(z.string(), z.string(), { error: 'expected a mapping of header: value' }).default({}),
  thresholds: z.array(z.string(), { error: 'expected a list of expressions, e.g. ["p(99)<500"]' }).default([]),
  requests: z
    .array(
      z.strictObject({
        name: z.string().min(1).optional(),
        method: z
          .string()
          .transform((m) => m.toUpperCase())
          .pipe(z.enum(METHODS, { error: `expected one of ${METHODS.join(', ')}` }))
          .default('GET'),
        path: z.string().regex(/^\//, { error: 'expected a path starting with /' }),
        headers: z.record(z.string(), z.string(), { error: 'expected a mapping of header: value' }).default({}),
        /** A string, or structured data sent as JSON (with content-type: application/json). */
        body: z.union([z.string(), z.record(z.string(), z.unknown()), z.array(z.unknown())]).optional(),
        weight: z
          .number({ error: 'expected a positive number' })
          .positive({ error: 'expected a positive number' })
          .default(1),
      }),
      { error: 'expected a list of requests' },
    )
    .min(1, { error: 'expected at least one request' }),
});
export type ScenarioFile = z.output<typeof scenarioSchema>;

/** A scenario file's requests, names made unique, JSON bodies encoded, secret headers kept as secrets. */
export function scenarioRequests(file: ScenarioFile, isSecretHeader: (name: string) => boolean): ScenarioRequest[] {
  const seen = new Map<string, number>();
  return file.requests.map((r) => {
    const base = r.name ?? `${r.method} ${r.path}`;
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    const json = r.body !== undefined && typeof r.body !== 'string';
    const headers: Record<string, string | Sensitive> = {};
    for (const [k, v] of Object.entries({
      ...(json ? { 'content-type': 'application/json' } : {}),
      ...file.headers,
      ...r.headers,
    }))
      headers[k.toLowerCase()] = isSecretHeader(k) ? new Sensitive(v) : v;
    return {
      name: n > 1 ? `${base} #${n}` : base,
      method: r.method,
      path: r.path,
      headers,
      ...(r.body !== undefined ? { body: json ? JSON.stringify(r.body) : (r.body as string) } : {}),
      weight: r.weight,
    };
  });
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** Integer weights in the same ratio, the total kept small (at most about 1000). */
export function integerWeights(weights: readonly number[]): number[] {
  const scaled = weights.every(Number.isInteger) ? [...weights] : weights.map((w) => Math.max(1, Math.round(w * 100)));
  const divisor = scaled.reduce((a, b) => gcd(a, b));
  let ints = scaled.map((w) => w / divisor);
  const total = ints.reduce((a, b) => a + b, 0);
  if (total > 1000) ints = ints.map((w) => Math.max(1, Math.round((w * 1000) / total)));
  return ints;
}

/**
 * The order autocannon cycles through, each request as often as its weight, spread out (nginx's smooth
 * weighted round-robin), so that every stretch of a run has about the right mix.
 */
export function weightedSequence(weights: readonly number[]): number[] {
  const ints = integerWeights(weights);
  const total = ints.reduce((a, b) => a + b, 0);
  const current = ints.map(() => 0);
  const order: number[] = [];
  for (let step = 0; step < total; step++) {
    let best = 0;
    for (let i = 0; i < ints.length; i++) {
      current[i]! += ints[i]!;
      if (current[i]! > current[best]!) best = i;
    }
    current[best]! -= total;
    order.push(best);
  }
  return order;
}

const reveal = (headers: Record<string, string | Sensitive>) =>
  Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, typeof v === 'string' ? v : v.reveal()]));

/**
 * Pure: how many requests a run at `rate` req/s for `durationS` sends in all: exactly rate x duration.
 * autocannon paces a rate in one-second windows from each connection's start, and the window that opens
 * as the duration ends still goes out before it stops: `--rate 200 --duration 2s` sent 600 requests, not
 * 400 (issue 15). Capping the total (autocannon's maxOverallRequests, shared across the connections)
 * closes that last window. At least one request per connection, since a connection's share of 0 would
 * mean no cap at all.
 */
export function rateCap(rate: number, durationS: number, connections: number): number {
  return Math.max(Math.round(rate * durationS), Math.min(connections, rate));
}

/** The exact options handed to autocannon (secrets revealed: only the load adapter sees this). */
export function buildAutocannonOptions(spec: LoadSpec): AutocannonPlan {
  const order = spec.requests.length === 1 ? [0] : weightedSequence(spec.requests.map((r) => r.weight));
  return {
    options: {
      url: spec.url,
      connections: spec.connections,
      pipelining: spec.pipelining,
      timeout: spec.timeoutS,
      ...(spec.amount !== undefined ? { amount: spec.amount } : { duration: spec.durationS ?? 10 }),
      ...(spec.rate !== undefined ? { overallRate: spec.rate } : {}),
      ...(spec.rate !== undefined && spec.amount === undefined
        ? { maxOverallRequests: rateCap(spec.rate, spec.durationS ?? 10, spec.connections) }
        : {}),
      requests: order.map((i) => {
        const r = spec.requests[i]!;
        return {
          method: r.method,
          path: r.path,
          headers: reveal(r.headers),
          ...(r.body !== undefined ? { body: r.body } : {}),
        };
      }),
    },
    requestIndex: order,
  };
}

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

const round2 = (n: number) => Math.round(n * 100) / 100;

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

function csvCell(value: unknown): string {
  const text = value === undefined || value === null ? '' : String(value);
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
const csv = (rows: unknown[][]) => `${rows.map((row) => row.map(csvCell).join(',')).join('\n')}\n`;

export const SUMMARY_CSV_COLUMNS = [
  'name',
  'method',
  'path',
  'weight',
  'requests',
  'failures',
  'non2xx',
  'errors',
  'timeouts',
  'rps',
  'latency_avg_ms',
  'latency_p50_ms',
  'latency_p90_ms',
  'latency_p97_5_ms',
  'latency_p99_ms',
  'latency_max_ms',
  'bytes_per_sec',
];
export const HISTORY_CSV_COLUMNS = [
  'second',
  'timestamp',
  'requests',
  'non2xx',
  'errors',
  'timeouts',
  'bytes',
  'latency_avg_ms',
  'latency_p50_ms',
  'latency_p90_ms',
  'latency_p99_ms',
  'latency_max_ms',
];

/**
 * Locust's `--csv` pair: `<prefix>_stats.csv` (a row per request and an Aggregated row) and
 * `<prefix>_stats_history.csv` (a row per second).
 */
export function renderSummaryCsv(s: LoadSummary): string {
  const seconds = Math.max(s.durationMs / 1000, 0.001);
  const rows: unknown[][] = [SUMMARY_CSV_COLUMNS];
  for (const r of s.perRequest) {
    rows.push([
      r.name,
      r.method,
      r.path,
      r.weight,
      r.requests,
      r.non2xx,
      r.non2xx,
      '',
      '',
      round2(r.requests / seconds),
      r.latency.avg,
      r.latency.p50,
      r.latency.p90,
      r.latency.p97_5,
      r.latency.p99,
      r.latency.max,
      round2(r.bytes / seconds),
    ]);
  }
  const l = s.latency;
  rows.push([
    'Aggregated',
    '',
    '',
    '',
    s.requests.total,
    s.errors + s.non2xx,
    s.non2xx,
    s.errors,
    s.timeouts,
    s.requests.rps.avg,
    l.avg,
    l.p50,
    l.p90,
    l.p97_5,
    l.p99,
    l.max,
    s.throughput.avgBytesPerSec,
  ]);
  return csv(rows);
}

export function renderHistoryCsv(s: LoadSummary): string {
  return csv([
    HISTORY_CSV_COLUMNS,
    ...s.history.map((h) => [
      h.second,
      h.at,
      h.requests,
      h.non2xx,
      h.errors,
      h.timeouts,
      h.bytes,
      h.latency.avg,
      h.latency.p50,
      h.latency.p90,
      h.latency.p99,
      h.latency.max,
    ]),
  ]);
}

export interface MetricComparison {
  metric: string;
  baseline: number;
  current: number;
  /** current / baseline - 1. */
  change: number;
  better: 'higher' | 'lower';
  worse: boolean;
  /** Welch's t-test over the per-second samples; null when either run has fewer than two seconds. */
  pValue: number | null;
  significant: boolean | null;
}

export interface BaselineComparison {
  file: string;
  metrics: MetricComparison[];
  maxRegression?: number;
  /** The metrics worse by more than maxRegression (and significantly so, when that can be tested). */
  regressions: string[];
}

type Extract = { value: (s: LoadSummary) => number; samples: (s: LoadSummary) => number[]; better: 'higher' | 'lower' };

/** Whole seconds only: the last, partial one would pull a per-second mean down. */
const fullSeconds = (s: LoadSummary) => (s.history.length > 2 ? s.history.slice(0, -1) : s.history);

const COMPARED: Record<string, Extract> = {
  rps: { value: (s) => s.requests.rps.avg, samples: (s) => fullSeconds(s).map((h) => h.requests), better: 'higher' },
  'latency.avg': {
    value: (s) => s.latency.avg,
    samples: (s) => fullSeconds(s).map((h) => h.latency.avg),
    better: 'lower',
  },
  'latency.p50': {
    value: (s) => s.latency.p50,
    samples: (s) => fullSeconds(s).map((h) => h.latency.p50),
    better: 'lower',
  },
  'latency.p90': {
    value: (s) => s.latency.p90,
    samples: (s) => fullSeconds(s).map((h) => h.latency.p90),
    better: 'lower',
  },
  'latency.p99': {
    value: (s) => s.latency.p99,
    samples: (s) => fullSeconds(s).map((h) => h.latency.p99),
    better: 'lower',
  },
  throughput: {
    value: (s) => s.throughput.avgBytesPerSec,
    samples: (s) => fullSeconds(s).map((h) => h.bytes),
    better: 'higher',
  },
};

export const SIGNIFICANCE = 0.05;

export function compareWithBaseline(
  file: string,
  baseline: LoadSummary,
  current: LoadSummary,
  maxRegression?: number,
): BaselineComparison {
  const metrics = Object.entries(COMPARED).map(([metric, m]): MetricComparison => {
    const before = m.value(baseline);
    const now = m.value(current);
    const change = before === 0 ? (now === 0 ? 0 : Infinity) : now / before - 1;
    const test = welchTest(sampleOf(m.samples(current)), sampleOf(m.samples(baseline)));
    return {
      metric,
      baseline: before,
      current: now,
      change: Number.isFinite(change) ? Math.round(change * 10000) / 10000 : change,
      better: m.better,
      worse: m.better === 'higher' ? now < before : now > before,
      pValue: test ? Math.round(test.p * 10000) / 10000 : null,
      significant: test ? test.p < SIGNIFICANCE : null,
    };
  });
  const regressions =
    maxRegression === undefined
      ? []
      : metrics
          .filter((m) => m.worse && Math.abs(m.change) > maxRegression && m.significant !== false)
          .map((m) => m.metric);
  return { file, metrics, ...(maxRegression !== undefined ? { maxRegression } : {}), regressions };
}

/** A baseline must be an earlier `opskit loadtest --json` / `--out` document. */
export function parseBaseline(text: string): LoadSummary | undefined {
  try {
    const doc = JSON.parse(text) as Partial<LoadSummary> & { command?: string };
    if (doc.command !== 'loadtest' || !doc.requests || !doc.latency || !doc.throughput || !Array.isArray(doc.history))
      return undefined;
    return doc as LoadSummary;
  } catch {
    return undefined;
  }
}

/** `10%` -> 0.1 (the % is required: a bare 10 is ambiguous). */
export function parsePercent(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(text);
  return m ? Number(m[1]) / 100 : undefined;
}

export type { ThresholdVerdict };
