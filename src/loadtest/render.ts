import type { ChalkInstance } from 'chalk';
import { formatDuration } from '../runtime/duration.js';
import { type LoadtestPlan, type LoadtestResult, loadtestFailure } from './action.js';
import { describeErrors } from './summary.js';

/** A load test's result as a table (and its plan, for --dry-run). */

export const fixed = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : String(n));

export const size = (bytes: number) =>
  bytes >= 1e6 ? `${fixed(bytes / 1e6)} MB` : bytes >= 1e3 ? `${fixed(bytes / 1e3)} kB` : `${Math.round(bytes)} B`;

export function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) =>
    r
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}

export function renderPlan(plan: LoadtestPlan): string {
  return `${JSON.stringify(plan.autocannon, null, 2)}\n`;
}

export function renderLoadtest(r: LoadtestResult, c: ChalkInstance): string {
  const l = r.latency;
  const lines = [
    `${c.bold('target')}      ${r.target.url}  (${r.load.connections} connection${r.load.connections === 1 ? '' : 's'}, ${r.load.amount !== undefined ? `${r.load.amount} requests` : `${r.load.durationS}s`}${r.load.rate ? `, ${r.load.rate} req/s` : ''}${r.load.pipelining > 1 ? `, pipelining ${r.load.pipelining}` : ''})`,
    `${c.bold('requests')}    ${r.requests.total} answered in ${formatDuration(r.durationMs)}; ${r.errors} without an answer (${r.timeouts} timed out, ${r.dropped} dropped by the server)${r.errors ? `: ${describeErrors(r.errorsByCode)}` : ''}`,
    `${c.bold('req/s')}       ${fixed(r.requests.rps.avg)} avg, ±${fixed(r.requests.rps.stddev)} (min ${r.requests.rps.min}, max ${r.requests.rps.max})`,
    `${c.bold('latency')}     p50 ${l.p50}ms  p90 ${l.p90}ms  p97.5 ${l.p97_5}ms  p99 ${l.p99}ms  max ${l.max}ms  (avg ${l.avg}ms ±${l.stddev})`,
    `${c.bold('throughput')}  ${size(r.throughput.avgBytesPerSec)}/s avg, ${size(r.throughput.totalBytes)} in all`,
    `${c.bold('status')}      ${
      Object.entries(r.statusCodes)
        .map(([code, n]) => `${/^2/.test(code) ? code : c.yellow(code)}: ${n}`)
        .join('  ') || 'none'
    }${r.non2xx ? c.yellow(`  (${r.non2xx} non-2xx)`) : ''}`,
  ];
  if (r.perRequest.length > 1) {
    lines.push(
      '',
      ...table([
        ['request', 'weight', 'answered', 'share', 'non-2xx', 'p50 ms', 'p99 ms', 'max ms'],
        ...r.perRequest.map((p) => [
          p.name,
          String(p.weight),
          String(p.requests),
          `${r.requests.total ? fixed((p.requests / r.requests.total) * 100, 1) : '0.0'}%`,
          String(p.non2xx),
          String(p.latency.p50),
          String(p.latency.p99),
          String(p.latency.max),
        ]),
      ]),
    );
  }
  if (r.thresholds.length) {
    lines.push('', c.bold('thresholds'));
    for (const t of r.thresholds)
      lines.push(
        `  ${t.passed ? c.green('✔') : c.red('✖')} ${t.expression}  (${t.shown})${t.source === '--threshold' ? '' : c.dim(`  ${t.source}`)}`,
      );
  }
  if (r.baseline) {
    lines.push('', c.bold(`baseline ${r.baseline.file}`));
    lines.push(
      ...table([
        ['metric', 'baseline', 'now', 'change', 'p', 'verdict'],
        ...r.baseline.metrics.map((m) => [
          m.metric,
          fixed(m.baseline),
          fixed(m.current),
          `${m.change >= 0 ? '+' : ''}${fixed(m.change * 100, 1)}%`,
          m.pValue === null ? '-' : fixed(m.pValue, 3),
          m.significant === null
            ? m.worse
              ? 'worse (untested)'
              : 'not worse (untested)'
            : m.significant
              ? m.worse
                ? c.red('worse, significant')
                : c.green('better, significant')
              : 'no significant change',
        ]),
      ]).map((line) => `  ${line}`),
    );
  }
  if (r.files.out || r.files.csv)
    lines.push('', `written: ${[r.files.out, ...(r.files.csv ?? [])].filter(Boolean).join(', ')}`);
  const failure = loadtestFailure(r);
  lines.push('', failure ? c.red(`✖ ${failure.message}`) : c.green('✔ passed'));
  return `${lines.join('\n')}\n`;
}
