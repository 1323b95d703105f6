import path from 'node:path';
import type { ChalkInstance } from 'chalk';
import type { DockerAdapter } from '../adapters/docker.js';
import { type HealthCheckConfig, healthCheckSchema } from '../config/schema.js';
import { CheckFailedError, UsageError } from '../errors.js';
import type { CommandOutcome } from '../output/outcome.js';
import { renderTable } from '../output/table.js';
import { colorService } from '../platform/engine/swarm-colors.js';
import { readState } from '../platform/state.js';
import { type Context, projectPath } from '../runtime/context.js';
import { formatDuration, parseDuration } from '../runtime/duration.js';
import { type ProbeContext, swarmOf } from './probes.js';
import { type CheckResult, changes, type HealthSummary, runChecks, summarizeHealth } from './run.js';
import { CHECK_KINDS, type CheckKind, checksFromFlags, defaultChecks, type HealthFlags, toSpec } from './spec.js';

export interface HealthInput {
  flags: HealthFlags;
  only: string[];
  timeout?: string | undefined;
  retries?: string | undefined;
  retryDelay?: string | undefined;
  startPeriod?: string | undefined;
  failOn?: string | undefined;
  watch?: string | undefined;
}

export interface HealthReport extends HealthSummary {
  startedAt: string;
  durationMs: number;
  source: 'flags' | 'config' | 'defaults';
  checks: CheckResult[];
}

const FLAG_OF: Record<string, string> = {
  http: '--url',
  tcp: '--tcp',
  container: '--container',
  postgres: '--postgres',
  redis: '--redis',
};

/** Pure-ish: the flags' checks validated by the same schema as the config's, errors naming the flag. */
function validatedFlagChecks(flags: HealthFlags, services: readonly string[]): HealthCheckConfig[] {
  return checksFromFlags(flags, services).map((check) => {
    const parsed = healthCheckSchema.safeParse(check);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const value = check.kind === 'http' ? check.url : check.kind === 'tcp' ? check.target : '';
      throw new UsageError(`${FLAG_OF[check.kind]} ${value}: ${issue.message}`.replace(/\s+:/, ':'), {
        code: 'E_BAD_FLAG',
      });
    }
    return parsed.data;
  });
}

/** `colorServices`: on Swarm after a cutover, the green colour's service, checked beside the web (blue). */
export function planHealth(ctx: Context, input: HealthInput, colorServices: readonly string[] = []) {
  const config = ctx.loaded!.config;
  const defaults = {
    ...config.health,
    ...(input.timeout ? { timeout: input.timeout } : {}),
    ...(input.retryDelay ? { retryDelay: input.retryDelay } : {}),
    ...(input.startPeriod ? { startPeriod: input.startPeriod } : {}),
  };
  for (const [flag, value] of [
    ['--timeout', input.timeout],
    ['--retry-delay', input.retryDelay],
    ['--start-period', input.startPeriod],
  ] as const)
    if (value) parseDuration(value, flag);
  let retries: number | undefined;
  if (input.retries !== undefined) {
    retries = Number(input.retries);
    if (!Number.isInteger(retries) || retries < 0)
      throw new UsageError(`--retries: expected a whole number, 0 or more, got "${input.retries}"`, {
        code: 'E_BAD_FLAG',
      });
  }
  const failOn = (input.failOn ?? config.health.failOn) as 'fail' | 'warn';
  if (failOn !== 'fail' && failOn !== 'warn')
    throw new UsageError(`--fail-on: expected fail or warn, got "${input.failOn}"`, { code: 'E_BAD_FLAG' });
  const only = input.only
    .flatMap((o) => o.split(','))
    .map((o) => o.trim())
    .filter(Boolean);
  for (const kind of only)
    if (!CHECK_KINDS.includes(kind as CheckKind))
      throw new UsageError(`--only ${kind}: expected one of ${CHECK_KINDS.join(', ')}`, { code: 'E_BAD_FLAG' });

  const services = [...config.deploy.dependencies, config.deploy.webService, ...config.deploy.frontServices];
  const fromFlags = validatedFlagChecks(input.flags, services);
  const source: HealthReport['source'] = fromFlags.length
    ? 'flags'
    : config.health.checks.length
      ? 'config'
      : 'defaults';
  const checks =
    source === 'flags' ? fromFlags : source === 'config' ? config.health.checks : defaultChecks(config, colorServices);
  const specs = checks
    .map((check, index) => toSpec(retries === undefined ? check : { ...check, retries }, defaults, config, index))
    .filter((spec) => only.length === 0 || only.includes(spec.kind));
  if (specs.length === 0) {
    throw new UsageError(only.length ? `--only ${only.join(',')}: no check of that kind` : 'no checks to run', {
      code: 'E_NO_CHECKS',
      hint: 'give --url/--tcp/--container/--postgres/--redis, or health.checks in opskit.yaml',
    });
  }
  const names = new Set<string>();
  for (const spec of specs) {
    let name = spec.name;
    for (let n = 2; names.has(name); n++) name = `${spec.name} #${n}`;
    spec.name = name;
    names.add(name);
  }
  return { specs, failOn, source };
}

function probeContext(ctx: Context): ProbeContext {
  let docker: Promise<DockerAdapter> | undefined;
  return {
    ctx,
    docker: () => (docker ??= ctx.docker(ctx.loaded!.config.docker.host ?? ctx.loaded!.env.DOCKER_HOST)),
    // One Swarm connection for every service, nodes and inside check of the run.
    swarm: swarmOf(ctx),
  };
}

async function round(ctx: Context, pc: ProbeContext, plan: ReturnType<typeof planHealth>): Promise<HealthReport> {
  const startedAt = ctx.clock.now().toISOString();
  const t0 = ctx.clock.monotonicMs();
  const checks = await runChecks(pc, plan.specs);
  return {
    ...summarizeHealth(checks, plan.failOn),
    startedAt,
    durationMs: Math.round(ctx.clock.monotonicMs() - t0),
    source: plan.source,
    checks,
  };
}

export async function runHealth(ctx: Context, input: HealthInput): Promise<HealthReport> {
  const config = ctx.loaded!.config;
  const blueGreen =
    config.engine === 'swarm' &&
    (await readState(ctx.fs, projectPath(ctx, path.join(config.paths.state, 'state.json')))).cutover !== undefined;
  const plan = planHealth(ctx, input, blueGreen ? [colorService(config.deploy.webService, 'green')] : []);
  const pc = probeContext(ctx);
  if (!input.watch) {
    const step = ctx.reporter.step(`running ${plan.specs.length} checks`);
    const report = await round(ctx, pc, plan);
    (report.ok ? step.succeed : step.fail)(
      `${report.status}: ${report.summary.pass} pass, ${report.summary.warn} warn, ${report.summary.fail} fail in ${formatDuration(report.durationMs)}`,
    );
    return report;
  }
  // --watch: every interval until interrupted, printing what changed.
  if (ctx.globals.json)
    throw new UsageError(
      '--watch prints a stream of changes: it does not go with --json (run `opskit health --json` from a loop instead)',
      { code: 'E_BAD_FLAG' },
    );
  const intervalMs = parseDuration(input.watch, '--watch');
  const controller = new AbortController();
  const stop = ctx.system.onInterrupt(() => controller.abort());
  let previous: HealthReport | undefined;
  try {
    while (!controller.signal.aborted) {
      const report = await round(ctx, pc, plan);
      if (!previous) ctx.reporter.result(renderHealthTable(report, ctx.reporter.out));
      else {
        for (const c of changes(previous.checks, report.checks))
          ctx.reporter.result(
            `${report.startedAt}  ${c.name}: ${c.from ?? 'new'} -> ${paint(ctx.reporter.out, c.to)}  ${c.detail}`,
          );
      }
      previous = report;
      await ctx.clock.sleep(intervalMs, controller.signal).catch(() => {});
    }
  } finally {
    stop();
  }
  ctx.reporter.info(`stopped watching; last round: ${previous!.status}`);
  return { ...previous!, watched: true } as HealthReport;
}

function paint(colour: ChalkInstance, status: string): string {
  return status === 'pass' ? colour.green(status) : status === 'warn' ? colour.yellow(status) : colour.red(status);
}

export function renderHealthTable(report: HealthReport, colour: ChalkInstance): string {
  const rows = report.checks.map((c) => [
    c.name,
    c.kind,
    c.status,
    c.latencyMs === null ? '' : `${c.latencyMs}ms`,
    c.detail,
  ]);
  const table = renderTable(['CHECK', 'KIND', 'STATUS', 'LATENCY', 'DETAIL'], rows, (_row, column, cell) =>
    column === 2 ? paint(colour, cell.trimEnd()) + cell.slice(cell.trimEnd().length) : cell,
  );
  const s = report.summary;
  return `${table}\n\n${paint(colour, report.status)}: ${s.pass} pass, ${s.warn} warn, ${s.fail} fail in ${formatDuration(report.durationMs)}`;
}

export function renderHealth(report: HealthReport): CommandOutcome<HealthReport> {
  const failing = report.checks.filter((c) => c.status === 'fail' || (!report.ok && c.status === 'warn'));
  return {
    result: report,
    ...(report.ok
      ? {}
      : {
          failure: new CheckFailedError(`health ${report.status}: ${failing.map((c) => c.name).join(', ')}`, {
            code: 'E_HEALTH_FAILED',
          }),
        }),
    render: (reporter) => ((report as { watched?: boolean }).watched ? '' : renderHealthTable(report, reporter.out)),
  };
}
