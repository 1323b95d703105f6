import type { DockerAdapter } from '../adapters/docker.js';
import type { Context } from '../runtime/context.js';
import { formatDuration } from '../runtime/duration.js';
import { type buildParameters, displayParameters } from './plan.js';
import {
  type BuildProgress,
  describeStep,
  emptyProgress,
  reduceBuildEvent,
  stageImages,
  TAIL_LINES,
} from './progress.js';
import {
  type BuildPlan,
  type BuildResult,
  buildFailed,
  finalVsBuilder,
  formatBytes,
  notBuilt,
  stepCounts,
} from './result.js';

/** The Engine API's classic builder: the fallback when buildx is missing (doctor says why). */

/** The Engine API's classic builder (POST /build), honouring .dockerignore: what opskit did before BuildKit. */
export async function buildClassic(
  ctx: Context,
  plan: BuildPlan,
  parameters: ReturnType<typeof buildParameters>['parameters'],
  docker: DockerAdapter | undefined,
): Promise<BuildResult> {
  const config = ctx.loaded!.config;
  const { base, files, contextDir } = plan;
  if (ctx.globals.dryRun) {
    const shown = displayParameters(parameters, plan.buildArgs);
    ctx.reporter.dryRun({
      kind: 'docker',
      call: 'POST /build',
      options: shown,
      description: `classic builder, context ${contextDir}, ${files.length} files after .dockerignore`,
    });
    return { ...base, ...notBuilt, dryRun: { call: 'POST /build', parameters: shown, context: contextDir, files } };
  }

  const engine = docker ?? (await ctx.docker(config.docker.host ?? ctx.loaded!.env.DOCKER_HOST));
  const started = ctx.clock.monotonicMs();
  const step = ctx.reporter.step(`building ${base.tags.join(', ')} (${files.length} files in the context)`);
  let progress: BuildProgress = emptyProgress();
  try {
    await engine.buildImage(contextDir, files, parameters, (event) => {
      const before = progress;
      progress = reduceBuildEvent(progress, event);
      for (const line of progress.log.slice(before.log.length)) ctx.reporter.debug(line);
      const current = progress.steps[progress.steps.length - 1];
      if (current && current !== before.steps[before.steps.length - 1]) step.update(describeStep(current));
    });
  } catch (error) {
    progress = reduceBuildEvent(progress, { error: (error as Error).message });
  }
  if (progress.error || !progress.imageId) {
    buildFailed(
      step,
      progress.steps[progress.steps.length - 1],
      progress.error ?? 'the engine reported no image',
      progress.log.slice(-TAIL_LINES),
    );
  }
  const imageId = progress.imageId!;
  const image = await engine.inspectImage(imageId);
  const stages = await Promise.all(
    stageImages(progress).map(async ({ stage, imageId: id }) => ({
      name: stage.name ?? null,
      from: stage.from,
      sizeBytes: id ? ((await engine.inspectImage(id))?.sizeBytes ?? null) : null,
    })),
  );
  const finalBytes = image?.sizeBytes ?? 0;
  const builderBytes = stages.length > 1 ? stages[0]!.sizeBytes : null;
  const durationMs = Math.round(ctx.clock.monotonicMs() - started);
  const counts = stepCounts(progress);
  step.succeed(
    `built ${base.tags[0]} (${formatBytes(finalBytes)}, ${counts.steps} steps, ${counts.cachedSteps} cached) in ${formatDuration(durationMs)}`,
  );
  return {
    ...base,
    imageId,
    sizeBytes: finalBytes,
    durationMs,
    ...counts,
    stages,
    finalVsBuilder: finalVsBuilder(finalBytes, builderBytes),
  };
}
