/**
 * Thresholds in k6's style (`p(99)<500`, `errors<1%`, `rps>1000`): parsed before any load is sent, and
 * judged against a run's summary. Pure.
 */

export type Comparator = '<' | '<=' | '>' | '>=' | '==' | '!=';

/** The percentiles a run reports (autocannon's, plus the ones opskit adds from its own histograms). */
export const PERCENTILES = [0.001, 0.01, 0.1, 1, 2.5, 10, 25, 50, 75, 90, 97.5, 99, 99.9, 99.99, 99.999] as const;

export type ThresholdMetric =
  | { kind: 'latency'; stat: 'percentile'; percentile: number }
  | { kind: 'latency'; stat: 'avg' | 'min' | 'max' | 'stddev' }
  | { kind: 'rps' }
  | { kind: 'requests' }
  | { kind: 'throughput' }
  | { kind: 'count'; of: 'errors' | 'timeouts' | 'non2xx' | 'failures'; rate: boolean };

export interface Threshold {
  /** As written, for the report. */
  expression: string;
  /** Where it came from: `--threshold`, `loadtest.thresholds[1]`, the scenario file. */
  source: string;
  metric: ThresholdMetric;
  op: Comparator;
  /** In the metric's base unit: milliseconds, requests/s, bytes/s, a count, or a fraction (0.01 for 1%). */
  value: number;
}

export class ThresholdSyntaxError extends Error {}

const LATENCY_UNITS: Record<string, number> = { '': 1, ms: 1, s: 1000, us: 0.001, µs: 0.001 };
const BYTE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1000,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};
const GRAMMAR = 'expected METRIC OP VALUE, e.g. p(99)<500, avg<200ms, errors<1%, non2xx==0, rps>1000, throughput>1MB';

/** One expression; throws ThresholdSyntaxError naming what is wrong. */
export function parseThreshold(text: string, source: string): Threshold {
  const match =
    /^\s*([a-z0-9_.]+(?:\(\s*[\d.]+\s*\))?)\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*([a-zµ%/]*)\s*$/i.exec(text);
  if (!match) throw new ThresholdSyntaxError(`"${text}": ${GRAMMAR}`);
  const [, rawMetric, op, rawValue, rawUnit] = match as unknown as [string, string, Comparator, string, string];
  const name = rawMetric.replace(/\s+/g, '').toLowerCase();
  const unit = rawUnit.toLowerCase();
  const number = Number(rawValue);
  const fail = (why: string): never => {
    throw new ThresholdSyntaxError(`"${text}": ${why}`);
  };

  const percentile = /^p\(([\d.]+)\)$/.exec(name);
  let metric: ThresholdMetric;
  let value: number;
  if (percentile || ['avg', 'min', 'max', 'stddev', 'med'].includes(name)) {
    if (percentile) {
      const p = Number(percentile[1]);
      if (!(PERCENTILES as readonly number[]).includes(p))
        fail(`p(${percentile[1]}) is not a percentile a run reports; use one of ${PERCENTILES.join(', ')}`);
      metric = { kind: 'latency', stat: 'percentile', percentile: p };
    } else if (name === 'med') metric = { kind: 'latency', stat: 'percentile', percentile: 50 };
    else metric = { kind: 'latency', stat: name as 'avg' | 'min' | 'max' | 'stddev' };
    const factor = LATENCY_UNITS[unit];
    if (factor === undefined) fail(`"${rawUnit}" is not a unit of time here (ms, s, us; none means ms)`);
    value = number * factor!;
  } else if (name === 'rps' || name === 'requests') {
    if (unit) fail(`${name} takes a plain number, not "${rawUnit}"`);
    metric = { kind: name };
    value = number;
  } else if (name === 'throughput') {
    const factor = BYTE_UNITS[unit.replace(/\/s$/, '')];
    if (factor === undefined) fail(`"${rawUnit}" is not a size per second here (B, KB, MB, GB, KiB, MiB, GiB)`);
    metric = { kind: 'throughput' };
    value = number * factor!;
  } else if (['errors', 'timeouts', 'non2xx', 'failures'].includes(name)) {
    if (unit && unit !== '%') fail(`${name} takes a count or a percentage, not "${rawUnit}"`);
    metric = { kind: 'count', of: name as 'errors' | 'timeouts' | 'non2xx' | 'failures', rate: unit === '%' };
    value = unit === '%' ? number / 100 : number;
  } else {
    return fail(
      `unknown metric "${rawMetric}"; metrics: p(N), avg, med, min, max, stddev (latency), rps, requests, throughput, errors, timeouts, non2xx, failures`,
    );
  }
  return { expression: text.trim(), source, metric, op, value };
}

/** What thresholds are judged against: a run's summary figures. */
export interface ThresholdFacts {
  latency: Record<string, number>;
  rps: number;
  requests: number;
  throughput: number;
  counts: { errors: number; timeouts: number; non2xx: number; failures: number };
  /** Requests attempted (answered plus failed to answer): the denominator of the rates. */
  attempts: number;
}

export interface ThresholdVerdict {
  expression: string;
  source: string;
  actual: number;
  /** `actual` in the expression's terms: `0.4%`, `312ms`, `1530`. */
  shown: string;
  passed: boolean;
}

export function percentileKey(p: number): string {
  return `p${String(p).replace('.', '_')}`;
}

function actualOf(metric: ThresholdMetric, facts: ThresholdFacts): number {
  switch (metric.kind) {
    case 'latency':
      return metric.stat === 'percentile'
        ? (facts.latency[percentileKey(metric.percentile)] ?? NaN)
        : (facts.latency[metric.stat] ?? NaN);
    case 'rps':
      return facts.rps;
    case 'requests':
      return facts.requests;
    case 'throughput':
      return facts.throughput;
    case 'count': {
      const count = facts.counts[metric.of];
      return metric.rate ? (facts.attempts > 0 ? count / facts.attempts : 0) : count;
    }
  }
}

function compare(actual: number, op: Comparator, value: number): boolean {
  if (Number.isNaN(actual)) return false;
  switch (op) {
    case '<':
      return actual < value;
    case '<=':
      return actual <= value;
    case '>':
      return actual > value;
    case '>=':
      return actual >= value;
    case '==':
      return actual === value;
    case '!=':
      return actual !== value;
  }
}

function show(metric: ThresholdMetric, actual: number): string {
  if (Number.isNaN(actual)) return 'n/a';
  if (metric.kind === 'latency') return `${round(actual)}ms`;
  if (metric.kind === 'count' && metric.rate) return `${round(actual * 100)}%`;
  if (metric.kind === 'throughput') return `${round(actual / 1e6)}MB/s`;
  return String(round(actual));
}

const round = (n: number) => Math.round(n * 100) / 100;

export function evaluateThresholds(thresholds: readonly Threshold[], facts: ThresholdFacts): ThresholdVerdict[] {
  return thresholds.map((t) => {
    const actual = actualOf(t.metric, facts);
    return {
      expression: t.expression,
      source: t.source,
      actual,
      shown: show(t.metric, actual),
      passed: compare(actual, t.op, t.value),
    };
  });
}
