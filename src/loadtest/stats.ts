import * as hdr from 'hdr-histogram-js';
import { PERCENTILES, percentileKey } from './thresholds.js';

/**
 * What a load run records beside autocannon's own totals: latency histograms at microsecond resolution
 * (overall, per scenario request, per second), status codes per request, and a per-second history.
 */

export interface LatencySummary {
  /** Milliseconds. */
  avg: number;
  stddev: number;
  min: number;
  max: number;
  [percentile: `p${string}`]: number;
}

type Histogram = ReturnType<typeof hdr.build>;

// 1 µs to 10 min, 3 significant digits: about 60 KiB a histogram.
const newHistogram = (): Histogram =>
  hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 600_000_000,
    numberOfSignificantValueDigits: 3,
    autoResize: true,
  });

function summarize(histogram: Histogram): LatencySummary {
  if (histogram.totalCount === 0)
    return { avg: 0, stddev: 0, min: 0, max: 0, ...Object.fromEntries(PERCENTILES.map((p) => [percentileKey(p), 0])) };
  const ms = (us: number) => Math.round(us) / 1000;
  return {
    avg: ms(histogram.mean),
    stddev: ms(histogram.stdDeviation),
    min: ms(histogram.minNonZeroValue),
    max: ms(histogram.maxValue),
    ...Object.fromEntries(PERCENTILES.map((p) => [percentileKey(p), ms(histogram.getValueAtPercentile(p))])),
  };
}

export interface RequestStats {
  name: string;
  method: string;
  path: string;
  weight: number;
  requests: number;
  non2xx: number;
  statusCodes: Record<string, number>;
  bytes: number;
  latency: LatencySummary;
}

export interface SecondStats {
  /** 1-based: the first second of the run is 1. */
  second: number;
  at: string;
  requests: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  bytes: number;
  latency: { avg: number; p50: number; p90: number; p99: number; max: number };
}

export interface RequestInfo {
  name: string;
  method: string;
  path: string;
  weight: number;
}

export class LoadRecorder {
  readonly #start: number;
  readonly #overall = newHistogram();
  readonly #perRequest: Array<{
    info: RequestInfo;
    histogram: Histogram;
    requests: number;
    non2xx: number;
    bytes: number;
    codes: Map<number, number>;
  }>;
  /** The expected interval between requests on one connection (µs) with --rate: corrects coordinated omission. */
  readonly #expectedIntervalUs: number | undefined;
  #second = 1;
  #current = this.#emptySecond();
  #secondHistogram = newHistogram();
  readonly #history: SecondStats[] = [];
  readonly #errorsByCode = new Map<string, number>();

  /** `startMs`: the wall-clock start (epoch ms), for the history's timestamps. */
  constructor(requests: readonly RequestInfo[], startMs: number, expectedIntervalUs?: number) {
    this.#start = startMs;
    this.#expectedIntervalUs = expectedIntervalUs;
    this.#perRequest = requests.map((info) => ({
      info,
      histogram: newHistogram(),
      requests: 0,
      non2xx: 0,
      bytes: 0,
      codes: new Map(),
    }));
  }

  #emptySecond() {
    return { requests: 0, non2xx: 0, errors: 0, timeouts: 0, bytes: 0 };
  }

  /** Closes the seconds up to `elapsedMs` (those with no traffic too: a stall shows as zeros). */
  #advance(elapsedMs: number): void {
    const second = Math.floor(elapsedMs / 1000) + 1;
    while (this.#second < second) this.#closeSecond();
  }

  #closeSecond(): void {
    const h = this.#secondHistogram;
    const ms = (us: number) => Math.round(us) / 1000;
    this.#history.push({
      second: this.#second,
      at: new Date(this.#start + (this.#second - 1) * 1000).toISOString(),
      ...this.#current,
      latency:
        h.totalCount === 0
          ? { avg: 0, p50: 0, p90: 0, p99: 0, max: 0 }
          : {
              avg: ms(h.mean),
              p50: ms(h.getValueAtPercentile(50)),
              p90: ms(h.getValueAtPercentile(90)),
              p99: ms(h.getValueAtPercentile(99)),
              max: ms(h.maxValue),
            },
    });
    h.reset();
    this.#current = this.#emptySecond();
    this.#second++;
  }

  /** `elapsedMs`: since the start of the run (a monotonic clock). */
  response(index: number, status: number, latencyMs: number, bytes: number, elapsedMs: number): void {
    this.#advance(elapsedMs);
    const us = Math.max(1, Math.round(latencyMs * 1000));
    if (this.#expectedIntervalUs) this.#overall.recordValueWithExpectedInterval(us, this.#expectedIntervalUs);
    else this.#overall.recordValue(us);
    this.#secondHistogram.recordValue(us);
    const bad = status < 200 || status > 299;
    this.#current.requests++;
    this.#current.bytes += bytes;
    if (bad) this.#current.non2xx++;
    const r = this.#perRequest[index];
    if (r) {
      r.histogram.recordValue(us);
      r.requests++;
      r.bytes += bytes;
      if (bad) r.non2xx++;
      r.codes.set(status, (r.codes.get(status) ?? 0) + 1);
    }
  }

  /** A request without an answer; `code` is its error's (ECONNRESET, ETIMEDOUT...). */
  error(timeout: boolean, elapsedMs: number, code = timeout ? 'ETIMEDOUT' : 'unknown'): void {
    this.#advance(elapsedMs);
    this.#errorsByCode.set(code, (this.#errorsByCode.get(code) ?? 0) + 1);
    this.#current.errors++;
    if (timeout) this.#current.timeouts++;
  }

  /** Ends the run: the last (partial) second is kept, marked by its smaller count. */
  finish(elapsedMs: number): {
    latency: LatencySummary;
    perRequest: RequestStats[];
    history: SecondStats[];
    errorsByCode: Record<string, number>;
  } {
    this.#advance(elapsedMs);
    if (this.#current.requests + this.#current.errors > 0) this.#closeSecond();
    const result = {
      latency: summarize(this.#overall),
      perRequest: this.#perRequest.map((r) => ({
        ...r.info,
        requests: r.requests,
        non2xx: r.non2xx,
        statusCodes: Object.fromEntries(
          [...r.codes.entries()].sort(([a], [b]) => a - b).map(([code, n]) => [String(code), n]),
        ),
        bytes: r.bytes,
        latency: summarize(r.histogram),
      })),
      history: [...this.#history],
      errorsByCode: Object.fromEntries([...this.#errorsByCode.entries()].sort(([a], [b]) => a.localeCompare(b))),
    };
    for (const h of [this.#overall, this.#secondHistogram, ...this.#perRequest.map((r) => r.histogram)]) h.destroy();
    return result;
  }
}

export interface Sample {
  mean: number;
  sd: number;
  n: number;
}

export function sampleOf(values: readonly number[]): Sample {
  const n = values.length;
  const mean = n > 0 ? values.reduce((a, b) => a + b, 0) / n : 0;
  const variance = n > 1 ? values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1) : 0;
  return { mean, sd: Math.sqrt(variance), n };
}

/**
 * Welch's t-test (unequal variances), two-sided: the p-value that two samples share a mean. Undefined
 * with fewer than two values on a side.
 */
export function welchTest(a: Sample, b: Sample): { t: number; df: number; p: number } | undefined {
  if (a.n < 2 || b.n < 2) return undefined;
  const va = a.sd ** 2 / a.n;
  const vb = b.sd ** 2 / b.n;
  if (va + vb === 0) return { t: a.mean === b.mean ? 0 : Infinity, df: a.n + b.n - 2, p: a.mean === b.mean ? 1 : 0 };
  const t = (a.mean - b.mean) / Math.sqrt(va + vb);
  const df = (va + vb) ** 2 / (va ** 2 / (a.n - 1) + vb ** 2 / (b.n - 1));
  const p = regularizedBeta(df / (df + t * t), df / 2, 0.5);
  return { t, df, p: Math.min(1, Math.max(0, p)) };
}

function logGamma(x: number): number {
  // Lanczos approximation (g = 7, n = 9).
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  x -= 1;
  let a = c[0]!;
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** I_x(a, b), by its continued fraction (Numerical Recipes' betacf). */
function regularizedBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  if (x > (a + 1) / (a + b + 2)) return 1 - regularizedBeta(1 - x, b, a);
  const tiny = 1e-30;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let f = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    f *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-12) break;
  }
  return (front * f) / a;
}
