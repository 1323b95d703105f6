import path from 'node:path';
import type { ChalkInstance } from 'chalk';
import { parse } from 'yaml';
import type { AutocannonResult } from '../adapters/load.js';
import { isSecretHeader } from '../config/redact.js';
import { CheckFailedError, ConfigError, OperationError, type OpskitError, UsageError } from '../errors.js';
import type { Context } from '../runtime/context.js';
import { formatDuration, parseDuration } from '../runtime/duration.js';
import { Sensitive } from '../sensitive.js';
import { SCHEMA_VERSION } from '../version.js';
import {
  type BaselineComparison,
  buildAutocannonOptions,
  compareWithBaseline,
  type LoadSpec,
  type LoadSummary,
  parseBaseline,
  parsePercent,
  renderHistoryCsv,
  renderSummaryCsv,
  type ScenarioRequest,
  scenarioRequests,
  scenarioSchema,
  summarizeRun,
  thresholdFacts,
} from './plan.js';
import { LoadRecorder } from './stats.js';
import {
  evaluateThresholds,
  parseThreshold,
  type Threshold,
  ThresholdSyntaxError,
  type ThresholdVerdict,
} from './thresholds.js';

export interface LoadtestFlags {
  url?: string;
  connections?: string;
  duration?: string;
  amount?: string;
  rate?: string;
  pipelining?: string;
  timeout?: string;
  method?: string;
  header?: string[];
  body?: string;
  scenario?: string;
  threshold?: string[];
  baseline?: string;
  maxRegression?: string;
  out?: string;
  csv?: string;
}

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

const positive = (text: string, flag: string, integer: boolean): number => {
  const value = Number(text);
  if (!text.trim() || !Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new UsageError(`${flag}: "${text}" is not a ${integer ? 'whole number' : 'number'} greater than 0`, {
      code: 'E_BAD_FLAG',
    });
  }
  return value;
};

/** `Name: value` (curl's form); values of credential headers become secrets at once. */
function parseHeaders(values: readonly string[], ctx: Context): Record<string, string | Sensitive> {
  const headers: Record<string, string | Sensitive> = {};
  for (const item of values) {
    const colon = item.indexOf(':');
    const name = colon > 0 ? item.slice(0, colon).trim() : '';
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name))
      throw new UsageError(`--header ${isSecretHeader(name) ? `${name}: ***` : item}: expected "Name: value"`, {
        code: 'E_BAD_FLAG',
      });
    const value = item.slice(colon + 1).trim();
    if (isSecretHeader(name)) {
      const secret = new Sensitive(value);
      ctx.redactor.add(secret);
      headers[name.toLowerCase()] = secret;
    } else headers[name.toLowerCase()] = value;
  }
  return headers;
}

function parseThresholds(
  ctx: Context,
  flags: readonly string[],
  fromScenario: readonly string[],
  scenarioFile: string | undefined,
): Threshold[] {
  const parse = (text: string, source: string, label: string, asConfig: boolean): Threshold => {
    try {
      return parseThreshold(text, source);
    } catch (error) {
      if (!(error instanceof ThresholdSyntaxError)) throw error;
      const message = `${label} ${error.message}`;
      throw asConfig
        ? new ConfigError(message, { code: 'E_BAD_THRESHOLD' })
        : new UsageError(message, { code: 'E_BAD_THRESHOLD' });
    }
  };
  return [
    ...ctx.loaded!.config.loadtest.thresholds.map((text, i) =>
      parse(text, `loadtest.thresholds[${i}]`, `loadtest.thresholds[${i}]:`, true),
    ),
    ...fromScenario.map((text, i) =>
      parse(text, `${scenarioFile}: thresholds[${i}]`, `${scenarioFile}: thresholds[${i}]:`, false),
    ),
    ...flags.map((text) => parse(text, '--threshold', '--threshold', false)),
  ];
}

async function readScenario(ctx: Context, file: string) {
  const absolute = path.resolve(ctx.cwd, file);
  const text = await ctx.fs.readText(absolute);
  if (text === undefined) throw new UsageError(`--scenario: ${file} does not exist`, { code: 'E_SCENARIO' });
  let data: unknown;
  try {
    data = parse(text);
  } catch (error) {
    throw new UsageError(`--scenario ${file}: not valid YAML: ${(error as Error).message.split('\n')[0]}`, {
      code: 'E_SCENARIO',
    });
  }
  const parsed = scenarioSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new UsageError(`--scenario ${file}: ${issue.path.join('.') || '(top level)'}: ${issue.message}`, {
      code: 'E_SCENARIO',
      hint: 'a scenario is { url?, headers?, thresholds?, requests: [{ name?, method?, path, headers?, body?, weight? }] }',
    });
  }
  return parsed.data;
}

/** The platform's front: nginx.url, else the nginx service's address (compose mode). */
async function frontUrl(ctx: Context): Promise<string> {
  const config = ctx.loaded!.config;
  if (config.nginx.url) return config.nginx.url.replace(/\/$/, '');
  const { nginxOps } = await import('../platform/nginx.js');
  const docker = await ctx.docker(config.docker.host ?? ctx.loaded!.env.DOCKER_HOST);
  const ops = await nginxOps(ctx, config, config.compose.project ?? config.project.name!, docker);
  return ops.baseUrl();
}

function checkUrl(text: string, source: string): URL {
  let parsed: URL | undefined;
  try {
    parsed = new URL(text);
  } catch {
    parsed = undefined;
  }
  if (!parsed || !/^https?:$/.test(parsed.protocol))
    throw new UsageError(`${source}: "${Sensitive.url(text)}" is not an http(s) URL`, { code: 'E_BAD_FLAG' });
  return parsed;
}

/** Every input checked (exit 2) before a single request is sent. */
async function resolveRun(ctx: Context, flags: LoadtestFlags) {
  const config = ctx.loaded!.config.loadtest;
  if (flags.duration !== undefined && flags.amount !== undefined)
    throw new UsageError('--duration and --amount: choose one bound', { code: 'E_BAD_FLAG' });
  const scenario = flags.scenario ? await readScenario(ctx, flags.scenario) : undefined;
  if (scenario && (flags.method !== undefined || flags.body !== undefined)) {
    throw new UsageError('--method and --body do not go with --scenario: set them per request in the scenario file', {
      code: 'E_BAD_FLAG',
    });
  }
  const thresholds = parseThresholds(ctx, flags.threshold ?? [], scenario?.thresholds ?? [], flags.scenario);
  const maxRegressionText = flags.maxRegression ?? config.maxRegression;
  const maxRegression = maxRegressionText !== undefined ? parsePercent(maxRegressionText) : undefined;
  if (maxRegressionText !== undefined && maxRegression === undefined)
    throw new UsageError(`--max-regression: "${maxRegressionText}" is not a percentage, e.g. 10%`, {
      code: 'E_BAD_FLAG',
    });
  if (flags.maxRegression !== undefined && !flags.baseline)
    throw new UsageError('--max-regression needs --baseline <file>: the earlier run to compare with', {
      code: 'E_BAD_FLAG',
    });
  let baseline: LoadSummary | undefined;
  if (flags.baseline) {
    const text = await ctx.fs.readText(path.resolve(ctx.cwd, flags.baseline));
    if (text === undefined)
      throw new UsageError(`--baseline: ${flags.baseline} does not exist`, { code: 'E_BASELINE' });
    baseline = parseBaseline(text);
    if (!baseline)
      throw new UsageError(`--baseline: ${flags.baseline} is not an opskit loadtest result (from --out or --json)`, {
        code: 'E_BASELINE',
      });
  }
  const method = (flags.method ?? 'GET').toUpperCase();
  if (!/^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)$/.test(method))
    throw new UsageError(`--method: "${flags.method}" is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS`, {
      code: 'E_BAD_FLAG',
    });
  const headers = parseHeaders(flags.header ?? [], ctx);
  let body = flags.body;
  if (body?.startsWith('@')) {
    const file = path.resolve(ctx.cwd, body.slice(1));
    body = await ctx.fs.readText(file);
    if (body === undefined) throw new UsageError(`--body: ${file} does not exist`, { code: 'E_BAD_FLAG' });
  }

  const durationMs = parseDuration(
    flags.duration ?? config.duration,
    flags.duration !== undefined ? '--duration' : 'loadtest.duration',
  );
  if (durationMs < 1000)
    throw new UsageError(`--duration: at least 1s (got ${formatDuration(durationMs)})`, { code: 'E_BAD_FLAG' });
  const timeoutMs = parseDuration(
    flags.timeout ?? config.timeout,
    flags.timeout !== undefined ? '--timeout' : 'loadtest.timeout',
  );
  if (timeoutMs <= 0) throw new UsageError('--timeout must be more than 0', { code: 'E_BAD_FLAG' });

  const connections =
    flags.connections !== undefined ? positive(flags.connections, '--connections', true) : config.connections;
  const amount = flags.amount !== undefined ? positive(flags.amount, '--amount', true) : undefined;
  if (amount !== undefined && amount < connections)
    throw new UsageError(`--amount ${amount} is less than --connections ${connections}`, { code: 'E_BAD_FLAG' });
  const load = {
    connections,
    ...(amount !== undefined ? { amount } : { durationS: durationMs / 1000 }),
    ...(flags.rate !== undefined ? { rate: positive(flags.rate, '--rate', true) } : {}),
    pipelining: flags.pipelining !== undefined ? positive(flags.pipelining, '--pipelining', true) : config.pipelining,
    timeoutS: timeoutMs / 1000,
  };

  const explicit = flags.url ?? scenario?.url ?? config.url;
  if (explicit !== undefined)
    checkUrl(explicit, flags.url !== undefined ? '--url' : scenario?.url ? `${flags.scenario}: url` : 'loadtest.url');
  return { scenario, thresholds, baseline, maxRegression, method, headers, body, durationMs, load, explicit };
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

function outputFiles(ctx: Context, flags: LoadtestFlags): { out?: string; csv?: [string, string] } {
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

const fixed = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : String(n));
const size = (bytes: number) =>
  bytes >= 1e6 ? `${fixed(bytes / 1e6)} MB` : bytes >= 1e3 ? `${fixed(bytes / 1e3)} kB` : `${Math.round(bytes)} B`;

/** Pure: `ECONNRESET 3, ETIMEDOUT 1`: why requests got no answer, most frequent first. */
export function describeErrors(byCode: Record<string, number>): string {
  return Object.entries(byCode)
    .sort(([, a], [, b]) => b - a)
    .map(([code, n]) => `${code} ${n}`)
    .join(', ');
}

function table(rows: string[][]): string[] {
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
