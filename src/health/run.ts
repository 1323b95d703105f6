import { formatDuration } from '../runtime/duration.js';
import { type HealthStatus, worst } from './evaluate.js';
import { type ProbeContext, probe } from './probes.js';
import { type CheckKind, type CheckSpec, expectedOf } from './spec.js';

export interface CheckResult {
  name: string;
  kind: CheckKind;
  target: string;
  status: HealthStatus;
  latencyMs: number | null;
  observed: unknown;
  expected: unknown;
  detail: string;
  error: string | null;
  attempts: number;
}

function describeError(error: unknown): string {
  const e = error as { code?: string; message?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code;
  const message = e.message ?? String(error);
  return code && !message.includes(code) && !/timed out/.test(message) ? `${code}: ${message}` : message;
}

async function once(pc: ProbeContext, spec: CheckSpec): Promise<Omit<CheckResult, 'attempts'>> {
  const base = { name: spec.name, kind: spec.kind, target: spec.target };
  let timer: NodeJS.Timeout | undefined;
  const started = performance.now();
  try {
    const outcome = await Promise.race([
      probe(pc, spec, spec.timing.timeoutMs),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              Object.assign(new Error(`timed out after ${formatDuration(spec.timing.timeoutMs)}`), {
                code: 'ETIMEDOUT',
              }),
            ),
          spec.timing.timeoutMs,
        );
      }),
    ]);
    return {
      ...base,
      status: outcome.status,
      latencyMs: outcome.latencyMs,
      observed: outcome.observed,
      expected: outcome.expected,
      detail: outcome.detail,
      error: null,
    };
  } catch (error) {
    const message = describeError(error);
    return {
      ...base,
      status: 'fail',
      latencyMs: Math.round(performance.now() - started),
      observed: null,
      expected: expectedOf(spec),
      detail: message,
      error: message,
    };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * One check with Docker HEALTHCHECK semantics: a failure is retried `retries` times, `retryDelay`
 * apart; failures inside the start period (from `startedAt`, the run's start) do not count.
 */
export async function runCheck(pc: ProbeContext, spec: CheckSpec, startedAt: number): Promise<CheckResult> {
  let counted = 0;
  let attempts = 0;
  for (;;) {
    attempts++;
    const result = await once(pc, spec);
    if (result.status !== 'fail') return { ...result, attempts };
    const inStartPeriod = pc.ctx.clock.monotonicMs() - startedAt < spec.timing.startPeriodMs;
    if (!inStartPeriod) counted++;
    if (!inStartPeriod && counted > spec.timing.retries) return { ...result, attempts };
    await pc.ctx.clock.sleep(spec.timing.retryDelayMs);
  }
}

/** All at once, each under its own timeout: the run takes about as long as its slowest check. */
export function runChecks(pc: ProbeContext, specs: readonly CheckSpec[]): Promise<CheckResult[]> {
  const startedAt = pc.ctx.clock.monotonicMs();
  return Promise.all(specs.map((spec) => runCheck(pc, spec, startedAt)));
}

export interface HealthSummary {
  status: HealthStatus;
  ok: boolean;
  summary: { pass: number; warn: number; fail: number };
}

/** Pure: the run takes the worst status; warn passes unless failOn is warn. */
export function summarizeHealth(results: readonly CheckResult[], failOn: 'fail' | 'warn'): HealthSummary {
  const summary = { pass: 0, warn: 0, fail: 0 };
  for (const r of results) summary[r.status]++;
  const status = worst(results.map((r) => r.status));
  return { status, ok: status === 'pass' || (status === 'warn' && failOn === 'fail'), summary };
}

/** Pure: what changed between two rounds of --watch, by check name. */
export function changes(
  previous: readonly CheckResult[],
  current: readonly CheckResult[],
): Array<{ name: string; from: HealthStatus | null; to: HealthStatus; detail: string }> {
  const before = new Map(previous.map((r) => [r.name, r]));
  return current
    .filter((r) => before.get(r.name)?.status !== r.status)
    .map((r) => ({ name: r.name, from: before.get(r.name)?.status ?? null, to: r.status, detail: r.detail }));
}
