import { type Config, configSchema } from '../config/schema.js';
import { CheckFailedError } from '../errors.js';
import type { CommandOutcome } from '../output/outcome.js';
import { renderTable } from '../output/table.js';
import type { Context } from '../runtime/context.js';
import { formatDuration } from '../runtime/duration.js';
import { type DoctorCheckResult, type DoctorSummary, finishCheck, planDoctorChecks, summarize } from './checks.js';

export interface DoctorResult {
  summary: DoctorSummary;
  checks: DoctorCheckResult[];
  durationMs: number;
}

/** Every check at once, each under its own timeout: the run lasts about as long as the slowest check. */
export async function runDoctor(ctx: Context, options: { timeoutMs: number }): Promise<DoctorResult> {
  const started = ctx.clock.monotonicMs();
  // With an invalid config the other checks still run, against the defaults.
  const config: Config = ctx.loaded?.config ?? configSchema.parse({});
  const env = ctx.loaded?.env ?? ctx.processEnv;
  const checks = planDoctorChecks(config, env, options.timeoutMs);
  const step = ctx.reporter.step(`running ${checks.length} checks`);
  const results = await Promise.all(
    checks.map(async (check) => {
      const t0 = ctx.clock.monotonicMs();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`timed out after ${formatDuration(options.timeoutMs)}`)),
          options.timeoutMs,
        );
      });
      try {
        const outcome = await Promise.race([check.run(ctx, config), timeout]);
        return finishCheck(check, outcome, ctx.clock.monotonicMs() - t0);
      } catch (error) {
        return finishCheck(check, { status: 'fail', detail: (error as Error).message }, ctx.clock.monotonicMs() - t0);
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  const summary = summarize(results);
  if (summary.fail > 0) step.fail(`${summary.fail} required check(s) failed`);
  else step.succeed(`${summary.pass} passed, ${summary.warn} warnings, ${summary.skip} skipped`);
  return { summary, checks: results, durationMs: Math.round(ctx.clock.monotonicMs() - started) };
}

export function renderDoctor(result: DoctorResult): CommandOutcome<DoctorResult> {
  const failed = result.checks.filter((c) => c.status === 'fail');
  return {
    result,
    ...(failed.length > 0
      ? {
          failure: new CheckFailedError(
            `${failed.length} required check(s) failed: ${failed.map((c) => c.name).join(', ')}`,
            {
              code: 'E_DOCTOR_FAILED',
              hint:
                failed
                  .map((c) => c.hint)
                  .filter(Boolean)
                  .join('; ') || undefined,
            },
          ),
        }
      : {}),
    render: (reporter) => {
      const colour = reporter.out;
      const paint = { pass: colour.green, warn: colour.yellow, fail: colour.red, skip: colour.dim };
      const rows = result.checks.map((c) => [c.name, c.status, c.required ? 'yes' : 'no', c.version ?? '', c.detail]);
      const table = renderTable(['CHECK', 'STATUS', 'REQUIRED', 'VERSION', 'DETAIL'], rows, (row, column, cell) =>
        column === 1 ? paint[result.checks[row]!.status](cell) : cell,
      );
      const hints = result.checks
        .filter((c) => c.hint && (c.status === 'fail' || c.status === 'warn'))
        .map((c) => `  ${c.name}: ${c.hint}`);
      const s = result.summary;
      return [
        table,
        '',
        `${s.pass} passed, ${s.warn} warnings, ${s.fail} failed, ${s.skip} skipped in ${formatDuration(result.durationMs)}`,
        ...(hints.length ? ['', 'hints:', ...hints] : []),
      ].join('\n');
    },
  };
}
