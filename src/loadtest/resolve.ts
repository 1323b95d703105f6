import path from 'node:path';
import { parse } from 'yaml';
import { isSecretHeader } from '../config/redact.js';
import { ConfigError, UsageError } from '../errors.js';
import type { Context } from '../runtime/context.js';
import { formatDuration, parseDuration } from '../runtime/duration.js';
import { Sensitive } from '../sensitive.js';
import { parseBaseline } from './baseline.js';
import { scenarioSchema } from './plan.js';
import { type LoadSummary, parsePercent } from './summary.js';
import { parseThreshold, type Threshold, ThresholdSyntaxError } from './thresholds.js';

/**
 * A load test's settings from its flags, loadtest.* and a scenario file: checked, named by flag, before anything runs.
 */

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

export const positive = (text: string, flag: string, integer: boolean): number => {
  const value = Number(text);
  if (!text.trim() || !Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new UsageError(`${flag}: "${text}" is not a ${integer ? 'whole number' : 'number'} greater than 0`, {
      code: 'E_BAD_FLAG',
    });
  }
  return value;
};

/** `Name: value` (curl's form); values of credential headers become secrets at once. */
export function parseHeaders(values: readonly string[], ctx: Context): Record<string, string | Sensitive> {
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

export function parseThresholds(
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

export async function readScenario(ctx: Context, file: string) {
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
export async function frontUrl(ctx: Context): Promise<string> {
  const config = ctx.loaded!.config;
  if (config.nginx.url) return config.nginx.url.replace(/\/$/, '');
  const { nginxOps } = await import('../platform/nginx.js');
  const docker = await ctx.docker(config.docker.host ?? ctx.loaded!.env.DOCKER_HOST);
  const ops = await nginxOps(ctx, config, config.compose.project ?? config.project.name!, docker);
  return ops.baseUrl();
}

export function checkUrl(text: string, source: string): URL {
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
export async function resolveRun(ctx: Context, flags: LoadtestFlags) {
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
