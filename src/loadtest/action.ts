import path from 'node:path';
import type { AutocannonResult } from '../adapters/load.js';
import { isSecretHeader } from '../config/redact.js';
import { CheckFailedError, OperationError, type OpskitError } from '../errors.js';
import type { Context } from '../runtime/context.js';
import { formatDuration } from '../runtime/duration.js';
import { Sensitive } from '../sensitive.js';
import { SCHEMA_VERSION } from '../version.js';
import { type BaselineComparison, compareWithBaseline } from './baseline.js';
import { renderHistoryCsv, renderSummaryCsv } from './csv.js';
import { buildAutocannonOptions, type LoadSpec, type ScenarioRequest, scenarioRequests } from './plan.js';
import { frontUrl, type LoadtestFlags, resolveRun } from './resolve.js';
import { LoadRecorder } from './stats.js';
import { describeErrors, type LoadSummary, summarizeRun, thresholdFacts } from './summary.js';
import { evaluateThresholds, type ThresholdVerdict } from './thresholds.js';

export interface LoadtestResult extends LoadSummary {
  thresholds: ThresholdVerdict[];
  baseline?: BaselineComparison;
  files: { out?: string; csv?: string[] };
}

export interface LoadtestPlan {
  planned: true;
  target: string;
  autocannon: Record<string, unknown>;
  thresholds: string[];
}

export async function runLoadtest(ctx: Context, flags: LoadtestFlags): Promise<LoadtestResult | LoadtestPlan> {
  const resolved = await resolveRun(ctx, flags);
  const config = ctx.loaded!.config.loadtest;
  // The front is looked up even in a dry run (a read): the plan shows the address it would load.
  const target = resolved.explicit ?? `${await frontUrl(ctx)}${config.path}`;
  ctx.redactor.addUrl(target);
  const url = new URL(target);
  const basePath = url.pathname.replace(/\/$/, '');
  const requests: ScenarioRequest[] = resolved.scenario
    ? scenarioRequests(resolved.scenario, isSecretHeader).map((r) => ({
        ...r,
        path: `${basePath}${r.path}`,
        headers: { ...resolved.headers, ...r.headers },
      }))
    : [
        {
          name: `${resolved.method} ${url.pathname}${url.search}`,
          method: resolved.method,
          path: `${url.pathname}${url.search}`,
          headers: resolved.headers,
          ...(resolved.body !== undefined ? { body: resolved.body } : {}),
          weight: 1,
        },
      ];
  for (const r of requests)
    for (const value of Object.values(r.headers)) if (value instanceof Sensitive) ctx.redactor.add(value);
  const spec: LoadSpec = { url: resolved.scenario ? url.origin : target, ...resolved.load, requests };
  const display = Sensitive.url(target).toString();
  const plan = buildAutocannonOptions(spec);

  if (ctx.globals.dryRun) {
    const shown = {
      ...plan.options,
      url: Sensitive.url(plan.options.url).toString(),
      requests: plan.options.requests.map((r, i) => ({
        ...r,
        headers: Object.fromEntries(
          Object.entries(spec.requests[plan.requestIndex[i]!]!.headers).map(([k, v]) => [k, String(v)]),
        ),
      })),
    };
    ctx.reporter.info(
      `would send load to ${display}: ${spec.connections} connections, ${spec.amount !== undefined ? `${spec.amount} requests` : formatDuration(resolved.durationMs)}${spec.rate ? `, ${spec.rate} req/s` : ''}`,
    );
    return {
      planned: true,
      target: display,
      autocannon: shown,
      thresholds: resolved.thresholds.map((t) => t.expression),
    };
  }

  const files = outputFiles(ctx, flags);
  const perConnectionRate = spec.rate ? spec.rate / spec.connections : undefined;
  const started = ctx.clock.now().getTime();
  const startMono = ctx.clock.monotonicMs();
  const recorder = new LoadRecorder(
    spec.requests.map((r) => ({ name: r.name, method: r.method, path: r.path, weight: r.weight })),
    started,
    perConnectionRate ? 1e6 / perConnectionRate : undefined,
  );
  const totalS = spec.amount === undefined ? spec.durationS! : undefined;
  const step = ctx.reporter.step(
    `load: ${display}, ${spec.connections} connections, ${spec.amount !== undefined ? `${spec.amount} requests` : formatDuration(resolved.durationMs)}`,
  );
  // On a TTY the spinner shows every second; plain lines (CI, cron) at most about 20 per run.
  const every = ctx.reporter.interactive || totalS === undefined ? 1 : Math.max(1, Math.ceil(totalS / 20));
  let seconds = 0;
  let answered = 0;
  let failed = 0;
  const controller = new AbortController();
  let interrupted = false;
  const dispose = ctx.system.onInterrupt(() => {
    interrupted = true;
    controller.abort();
  });
  let result: AutocannonResult;
  try {
    result = await ctx.load.run(
      plan,
      {
        onResponse: (index, status, latency, bytes) => {
          answered++;
          recorder.response(index, status, latency, bytes, ctx.clock.monotonicMs() - startMono);
        },
        onError: (timeout, code) => {
          failed++;
          recorder.error(timeout, ctx.clock.monotonicMs() - startMono, code);
        },
        onTick: (count) => {
          seconds++;
          // autocannon ticks once more as it stops: not a second of load.
          if (totalS !== undefined && seconds > Math.ceil(totalS)) return;
          if (seconds % every === 0)
            step.update(
              `load: ${seconds}s${totalS ? `/${totalS}s` : ''}, ${count} req/s, ${answered} answered, ${failed} without an answer`,
            );
        },
      },
      controller.signal,
    );
  } catch (error) {
    step.fail();
    throw new OperationError('E_LOAD', `the load test could not run: ${(error as Error).message}`);
  } finally {
    dispose();
  }
  const summary = summarizeRun(
    spec,
    display,
    result,
    recorder.finish(ctx.clock.monotonicMs() - startMono),
    interrupted,
  );
  (summary.requests.total === 0 || summary.errors > 0 ? step.warn : step.succeed)(
    `load: ${summary.requests.total} answered in ${formatDuration(summary.durationMs)}, ${summary.requests.rps.avg} req/s, p99 ${summary.latency.p99}ms${summary.errors ? `, ${summary.errors} without an answer` : ''}`,
  );
  const thresholds = evaluateThresholds(resolved.thresholds, thresholdFacts(summary));
  const baseline = resolved.baseline
    ? compareWithBaseline(flags.baseline!, resolved.baseline, summary, resolved.maxRegression)
    : undefined;
  const out: LoadtestResult = {
    ...summary,
    thresholds,
    ...(baseline ? { baseline } : {}),
    files: { ...(files.out ? { out: files.out } : {}), ...(files.csv ? { csv: files.csv } : {}) },
  };
  const failure = loadtestFailure(out);
  if (files.out)
    await ctx.fs.writeFileAtomic(
      files.out,
      `${JSON.stringify({ schemaVersion: SCHEMA_VERSION, command: 'loadtest', ok: failure === undefined, ...out }, null, 2)}\n`,
    );
  if (files.csv) {
    await ctx.fs.writeFileAtomic(files.csv[0]!, renderSummaryCsv(summary));
    await ctx.fs.writeFileAtomic(files.csv[1]!, renderHistoryCsv(summary));
  }
  return out;
}

export function outputFiles(ctx: Context, flags: LoadtestFlags): { out?: string; csv?: [string, string] } {
  return {
    ...(flags.out ? { out: path.resolve(ctx.cwd, flags.out) } : {}),
    ...(flags.csv
      ? {
          csv: [
            path.resolve(ctx.cwd, `${flags.csv}_stats.csv`),
            path.resolve(ctx.cwd, `${flags.csv}_stats_history.csv`),
          ] as [string, string],
        }
      : {}),
  };
}

/**
 * Exit 1 for a run that never reached the target or was interrupted; exit 3 for breached thresholds or a regression.
 */
export function loadtestFailure(result: LoadtestResult): OpskitError | undefined {
  if (result.interrupted)
    return new OperationError(
      'E_INTERRUPTED',
      `the load test was interrupted after ${formatDuration(result.durationMs)}; the figures are partial`,
    );
  if (result.requests.total === 0) {
    const why = result.errors ? `; ${describeErrors(result.errorsByCode)}` : '';
    return new OperationError(
      'E_NO_ANSWER',
      `not one request was answered (${result.errors} without an answer: ${result.timeouts} timed out, ${result.dropped} dropped by the server${why}): is ${result.target.url} up?`,
    );
  }
  const breached = result.thresholds.filter((t) => !t.passed);
  const regressions = result.baseline?.regressions ?? [];
  if (breached.length === 0 && regressions.length === 0) return undefined;
  const why = result.errors ? `; errors by code: ${describeErrors(result.errorsByCode)}` : '';
  const parts = [
    ...(breached.length
      ? [
          `threshold${breached.length > 1 ? 's' : ''} breached: ${breached.map((t) => `${t.expression} (${t.shown})`).join(', ')}${why}`,
        ]
      : []),
    ...(regressions.length
      ? [
          `worse than the baseline by more than ${Math.round((result.baseline!.maxRegression ?? 0) * 100)}%: ${regressions.join(', ')}`,
        ]
      : []),
  ];
  return new CheckFailedError(parts.join('; '), { code: breached.length ? 'E_THRESHOLD' : 'E_REGRESSION' });
}
