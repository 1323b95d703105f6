import { type LoadSummary, round2 } from './summary.js';

/** The summary and the per-second history as CSV (`--csv`), columns fixed and documented. */

export function csvCell(value: unknown): string {
  const text = value === undefined || value === null ? '' : String(value);
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export const csv = (rows: unknown[][]) => `${rows.map((row) => row.map(csvCell).join(',')).join('\n')}\n`;

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
