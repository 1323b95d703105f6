import type { DockerAdapter } from '../adapters/docker.js';
import { OperationError, UsageError } from '../errors.js';
import type { Context } from '../runtime/context.js';
import { formatDuration } from '../runtime/duration.js';
import type { Engine } from './engine/engine.js';

/**
 * A release of the web service, as deploy and cutover both make one: which image it runs, and its
 * migrations, run in a one-off container of that image before anything serves it.
 */

/**
 * `--build` of deploy and cutover: the build command's own action, handed down by the CLI (a capability
 * does not reach into another), run inside the caller's lock on its Docker connection. The result is
 * the build's JSON document; its first tag is the image released.
 */
export type ImageBuild = (docker?: DockerAdapter) => Promise<{ tags: string[] }>;

/** How many lines of the migrations' output a failure shows. */
const TAIL = 30;

/** Pure: the image a deploy or a cutover runs: --image, or --tag on the configured image name, or :latest. */
export function resolveImageRef(
  imageName: string,
  input: { image?: string | undefined; tag?: string | undefined },
): string {
  if (input.image && input.tag)
    throw new UsageError('--image and --tag: give one of them, not both', { code: 'E_BAD_FLAG' });
  if (input.image) return input.image;
  return `${imageName}:${input.tag ?? 'latest'}`;
}

/** Pure: the migrate command's summary line (the last JSON object it printed), if any. */
export function parseMigrateSummary(output: string): { applied: string[] } | undefined {
  const lines = output.trim().split('\n').reverse();
  for (const line of lines) {
    if (!line.trim().startsWith('{')) continue;
    try {
      const parsed = JSON.parse(line) as { applied?: unknown };
      if (Array.isArray(parsed.applied)) return { applied: parsed.applied.map(String) };
    } catch {
      // not the summary
    }
  }
  return undefined;
}

/**
 * The migrations in a one-off job of the new image (compose `run` of the web service with WEB_IMAGE set, or a
 * Swarm replicated job of the web's spec), output streamed. Shared by deploy and cutover --migrate. Returns
 * the versions applied; a failure is E_MIGRATION_FAILED with the output's tail.
 */
export async function runMigrations(
  ctx: Context,
  engine: Engine,
  run: {
    service: string;
    command: readonly string[];
    image: string;
    timeoutMs: number;
    keepsServing: string;
    webService: string;
  },
): Promise<string[]> {
  const lines: string[] = [];
  const result = await engine.runJob(run.service, run.command, run.image, {
    timeoutMs: run.timeoutMs,
    onLine: (line) => {
      lines.push(line);
      ctx.reporter.info(`[migrate] ${line}`);
    },
  });
  if (result.exitCode !== 0 || result.timedOut) {
    throw new OperationError(
      'E_MIGRATION_FAILED',
      `the migrations failed (${result.timedOut ? `timed out after ${formatDuration(run.timeoutMs)}` : `exit ${result.exitCode}`}); ${run.webService} was not ${run.keepsServing}\n--- migration output ---\n${lines.slice(-TAIL).join('\n')}`,
      {
        hint: 'fix the migration and deploy again; each migration runs in a transaction, so a failed one left no trace',
        details: { output: lines.slice(-TAIL) },
      },
    );
  }
  return parseMigrateSummary(result.output.join('\n'))?.applied ?? [];
}
