import { sampleOf, welchTest } from './stats.js';
import type { LoadSummary } from './summary.js';

/** `--baseline`: this run against an earlier one, metric by metric, with a significance test where samples allow. */

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

export type Extract = {
  value: (s: LoadSummary) => number;
  samples: (s: LoadSummary) => number[];
  better: 'higher' | 'lower';
};

/** Whole seconds only: the last, partial one would pull a per-second mean down. */
export const fullSeconds = (s: LoadSummary) => (s.history.length > 2 ? s.history.slice(0, -1) : s.history);

export const COMPARED: Record<string, Extract> = {
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
