import path from 'node:path';
import type { DockerAdapter } from '../adapters/docker.js';
import { describeSecret } from '../config/build-secrets.js';
import { OperationError } from '../errors.js';
import { type Context, projectPath, projectRoot } from '../runtime/context.js';
import { formatDuration } from '../runtime/duration.js';
import { isSensitive } from '../sensitive.js';
import {
  type BuildxCommand,
  type BuildxInput,
  buildxArgv,
  frontendUnavailable,
  imageIdFromMetadata,
  planStageSizes,
  stageProbeTag,
} from './buildx.js';
import { type DockerfileStage, dockerfileStages, syntaxDirective } from './context.js';
import {
  addedLines,
  type BuildProgress,
  buildkitFailure,
  describeStep,
  emptyProgress,
  reduceSolveStatus,
} from './progress.js';
import { emptySplitter, flushRawJson, type RawJsonItem, splitRawJson } from './rawjson.js';
import {
  type BuildPlan,
  type BuildResult,
  buildFailed,
  finalVsBuilder,
  formatBytes,
  notBuilt,
  stepCounts,
} from './result.js';

/**
 * BuildKit through docker buildx: progress from its raw JSON stream, the image id from --metadata-file, the first stage
 * measured from the cache.
 */

/** The child's environment: the process's, plus the builder's additions, revealed only here. */
export function childEnv(ctx: Context, command: BuildxCommand): Record<string, string | undefined> {
  return {
    ...ctx.processEnv,
    ...Object.fromEntries(Object.entries(command.env).map(([k, v]) => [k, isSensitive(v) ? v.reveal() : v])),
  };
}

/** Runs docker buildx and folds its raw JSON progress; resolves when it has exited. */
export async function runBuildx(
  ctx: Context,
  command: BuildxCommand,
  stages: readonly DockerfileStage[],
  onProgress: (before: BuildProgress, after: BuildProgress) => void,
): Promise<{ progress: BuildProgress; exitCode: number | undefined; notFound: boolean }> {
  let progress = emptyProgress(stages);
  const splitters = { stdout: emptySplitter(), stderr: emptySplitter() };
  const fold = (items: RawJsonItem[]) => {
    for (const item of items) {
      const before = progress;
      progress = reduceSolveStatus(progress, item);
      onProgress(before, progress);
    }
  };
  const child = await ctx.exec.start(command.file, command.args, {
    cwd: projectRoot(ctx),
    env: childEnv(ctx, command),
    onLine: (line, stream) => {
      const { state, items } = splitRawJson(splitters[stream], `${line}\n`);
      splitters[stream] = state;
      fold(items);
    },
  });
  const exit = await child.exited;
  fold([...flushRawJson(splitters.stdout), ...flushRawJson(splitters.stderr)]);
  return { progress, exitCode: exit.exitCode, notFound: exit.notFound };
}

/** BuildKit: `docker buildx build --load`, progress from its raw JSON stream, the image id from --metadata-file. */
export async function buildWithBuildkit(
  ctx: Context,
  plan: BuildPlan,
  docker: DockerAdapter | undefined,
): Promise<BuildResult> {
  const config = ctx.loaded!.config;
  const { base, files, contextDir } = plan;
  const dockerHost = config.docker.host ?? ctx.loaded!.env.DOCKER_HOST;
  const metadataFile = path.join(projectPath(ctx, config.paths.state), 'build', `metadata-${ctx.system.pid}.json`);
  const allStages = dockerfileStages(plan.dockerfileText);
  const { builtStages, measured: first } = planStageSizes(allStages, plan.target);
  const buildxInput: BuildxInput = {
    binary: plan.binary,
    contextDir,
    dockerfile: plan.dockerfilePath,
    tags: base.tags,
    target: plan.target,
    noCache: plan.noCache,
    buildArgs: plan.buildArgs,
    labels: plan.labels,
    secrets: plan.secrets,
    secretValues: plan.secretValues,
    metadataFile,
    dockerHost,
  };
  const command = buildxArgv(buildxInput);
  const probeTag = first ? stageProbeTag(plan.imageName, first.name!, ctx.system.pid) : undefined;
  const probe = probeTag
    ? buildxArgv({ ...buildxInput, tags: [probeTag], target: first!.name, noCache: false, metadataFile: undefined })
    : undefined;

  if (ctx.globals.dryRun) {
    const env = Object.fromEntries(
      Object.keys(command.env).map((k) => [k, isSensitive(command.env[k]) ? '***' : String(command.env[k])]),
    );
    const shownEnv = Object.entries(env)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    const argv = [command.file, ...command.args];
    // The reporter shows a `--secret` flag's value as ***: the description says where each secret comes from.
    const secrets = plan.secrets.length > 0 ? `; secrets ${plan.secrets.map(describeSecret).join(' ')}` : '';
    ctx.reporter.dryRun({
      kind: 'exec',
      argv,
      description: `BuildKit, context ${contextDir}, ${files.length} files after .dockerignore${secrets}${shownEnv ? `; environment ${shownEnv}` : ''}`,
    });
    if (probe && probeTag) {
      ctx.reporter.dryRun({
        kind: 'exec',
        argv: [probe.file, ...probe.args],
        description: `the ${first!.name} stage alone, from the cache, to measure it`,
      });
      ctx.reporter.dryRun({
        kind: 'exec',
        argv: ['docker', 'image', 'rm', probeTag],
        description: 'then drop that temporary tag',
      });
    }
    return { ...base, ...notBuilt, dryRun: { call: 'docker buildx build', argv, env, context: contextDir, files } };
  }

  const engine = docker ?? (await ctx.docker(dockerHost));
  const started = ctx.clock.monotonicMs();
  const step = ctx.reporter.step(
    `building ${base.tags.join(', ')} with BuildKit (${files.length} files in the context)`,
  );
  await ctx.fs.mkdirp(path.dirname(metadataFile));
  await ctx.fs.remove(metadataFile).catch(() => undefined);
  let run: Awaited<ReturnType<typeof runBuildx>>;
  let metadata: string | undefined;
  try {
    run = await runBuildx(ctx, command, allStages, (before, after) => {
      for (const line of addedLines(before, after)) ctx.reporter.debug(line);
      const current = after.steps[after.steps.length - 1];
      if (current && current !== before.steps[before.steps.length - 1]) step.update(describeStep(current));
    });
    metadata = run.exitCode === 0 ? await ctx.fs.readText(metadataFile) : undefined;
  } finally {
    await ctx.fs.remove(metadataFile).catch(() => undefined);
  }
  // Engines before 23 (20.10 here) leave the image id out of buildx's metadata: the tag it loaded says it.
  const imageId =
    imageIdFromMetadata(metadata) ?? (run.exitCode === 0 ? (await engine.inspectImage(base.tags[0]!))?.id : undefined);
  if (run.notFound) {
    step.fail('build failed');
    throw new OperationError('E_BUILD_FAILED', 'build failed: the docker CLI is not on PATH', {
      hint: 'install the docker CLI and its buildx plugin, or set image.builder: classic',
    });
  }
  if (run.exitCode !== 0 || !imageId) {
    const { step: failing, error, tail } = buildkitFailure(run.progress, run.exitCode);
    const syntax = syntaxDirective(plan.dockerfileText);
    if (frontendUnavailable(syntax, run.progress)) {
      buildFailed(step, failing, error, tail, {
        code: 'E_BUILD_FRONTEND',
        message: `build failed: the Dockerfile's \`# syntax=${syntax}\` line names a frontend image that BuildKit must pull, and it could not: ${error}`,
        hint: `remove the \`# syntax=${syntax}\` line to use the Engine's built-in Dockerfile frontend (it handles RUN --mount and heredocs), or make a registry that serves ${syntax} reachable`,
      });
    }
    buildFailed(
      step,
      failing,
      run.exitCode === 0 ? `${error}: buildx wrote no image id to its metadata file` : error,
      tail,
    );
  }
  const image = await engine.inspectImage(imageId);
  const finalBytes = image?.sizeBytes ?? 0;
  const builderBytes =
    probe && probeTag
      ? await stageSize(ctx, imageId, first!.name!, () =>
          measureStage(ctx, engine, probe, probeTag, first!.name!, step),
        )
      : null;
  const stages = builtStages.map((s, i) => ({
    name: s.name ?? null,
    from: s.from,
    sizeBytes: i === builtStages.length - 1 ? finalBytes : i === 0 ? builderBytes : null,
  }));
  const durationMs = Math.round(ctx.clock.monotonicMs() - started);
  const counts = stepCounts(run.progress);
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

/**
 * The builder stage's size, remembered per final image: an image id is its content, so the same final
 * image (a no-change rebuild, the common case in CI) was built from the same stages, and the measuring
 * build (about 180 ms) is skipped. Kept in the state directory, the newest 20.
 */
export async function stageSize(
  ctx: Context,
  imageId: string,
  stage: string,
  measure: () => Promise<number | null>,
): Promise<number | null> {
  const file = path.join(projectPath(ctx, ctx.loaded!.config.paths.state), 'build', 'stage-sizes.json');
  let known: Array<{ imageId: string; stage: string; bytes: number }> = [];
  try {
    const parsed = JSON.parse((await ctx.fs.readText(file)) ?? '[]') as unknown;
    if (Array.isArray(parsed))
      known = parsed.filter(
        (e) => typeof e?.imageId === 'string' && typeof e?.stage === 'string' && typeof e?.bytes === 'number',
      );
  } catch {
    known = [];
  }
  const hit = known.find((e) => e.imageId === imageId && e.stage === stage);
  if (hit) return hit.bytes;
  const bytes = await measure();
  if (bytes !== null) {
    const next = [{ imageId, stage, bytes }, ...known.filter((e) => e.imageId !== imageId)].slice(0, 20);
    await ctx.fs.writeFileAtomic(file, `${JSON.stringify(next)}\n`).catch(() => undefined);
  }
  return bytes;
}

/**
 * BuildKit builds no intermediate images: the first stage is built alone (`--target`, every step from
 * the cache the main build just filled) into a temporary tag, measured, and the tag removed. A failure
 * here costs the measurement (null), not the build.
 */
export async function measureStage(
  ctx: Context,
  engine: DockerAdapter,
  probe: BuildxCommand,
  tag: string,
  stage: string,
  step: { update(text: string): void },
): Promise<number | null> {
  step.update(`measuring the ${stage} stage (built alone, from the cache)`);
  let built = false;
  try {
    const run = await runBuildx(ctx, probe, [], () => undefined);
    built = run.exitCode === 0;
    if (!built) {
      ctx.reporter.warn(`could not measure the ${stage} stage: ${buildkitFailure(run.progress, run.exitCode).error}`);
      return null;
    }
    return (await engine.inspectImage(tag))?.sizeBytes ?? null;
  } finally {
    if (built) {
      const removed = await ctx.exec.run('docker', ['image', 'rm', tag], {
        env: childEnv(ctx, { ...probe, args: [] }),
        timeoutMs: 60_000,
      });
      if (removed.failed)
        ctx.reporter.warn(`could not remove the temporary tag ${tag}: ${removed.stderr.split('\n')[0] ?? ''}`);
    }
  }
}
