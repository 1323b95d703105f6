import type { ChalkInstance } from 'chalk';
import path from 'node:path';
import type { DockerAdapter } from '../adapters/docker.js';
import type { ExecResult } from '../adapters/exec.js';
import type { Sensitive } from '../config/sensitive.js';
import { OperationError, UsageError } from '../errors.js';
import { type Context, projectRoot, withMutation } from '../runtime/context.js';
import { formatDuration } from '../runtime/duration.js';
import { contextFilter, declaredArgs, selectContextFiles } from './context.js';
import { buildParameters, displayParameters } from './plan.js';
import { describeStep, emptyProgress, reduceBuildEvent, stageImages, type BuildProgress } from './progress.js';

export interface BuildInput {
  tags: string[];
  target?: string | undefined;
  buildArgs: Record<string, string | Sensitive>;
  noCache: boolean;
  file?: string | undefined;
  context?: string | undefined;
}

export interface BuildResult {
  imageId: string;
  tags: string[];
  sizeBytes: number;
  durationMs: number;
  revision: string;
  steps: number;
  /** Steps the cache can serve (not FROM, not a global ARG) and how many it did. */
  cacheableSteps: number;
  cachedSteps: number;
  contextFiles: number;
  stages: Array<{ name: string | null; from: string; sizeBytes: number | null }>;
  /** Multi-stage: the final image against the first (builder) stage. */
  finalVsBuilder: { finalBytes: number; builderBytes: number; ratio: number } | null;
  buildArgs: Record<string, string>;
  dryRun?: { call: string; parameters: Record<string, unknown>; context: string; files: string[] };
}

/**
 * Pure: `abc1234`, or `abc1234-dirty` with uncommitted changes; outside a git checkout `ctx-` and the
 * context's content hash, so an unchanged context keeps its tag (and its build cache).
 */
export function revisionFrom(sha: ExecResult, status: ExecResult, contextHash: string): string {
  if (sha.failed || !sha.stdout.trim()) return `ctx-${contextHash.slice(0, 12)}`;
  return `${sha.stdout.trim()}${!status.failed && status.stdout.trim() ? '-dirty' : ''}`;
}

/** `opskit build`: through the Engine API, honouring .dockerignore. Also called by deploy --build, inside its lock. */
export async function buildImage(ctx: Context, input: BuildInput, docker?: DockerAdapter): Promise<BuildResult> {
  const config = ctx.loaded!.config;
  const root = projectRoot(ctx);
  const contextDir = path.resolve(root, input.context ?? config.image.context);
  const dockerfile = input.file ?? config.image.dockerfile;
  const dockerfilePath = path.resolve(contextDir, dockerfile);
  const dockerfileText = await ctx.fs.readText(dockerfilePath);
  if (dockerfileText === undefined) {
    throw new UsageError(`${input.file ? '--file' : 'image.dockerfile'}: ${path.relative(ctx.cwd, dockerfilePath) || dockerfilePath} not found`, { code: 'E_DOCKERFILE_NOT_FOUND', hint: 'run `opskit init` to write one, or pass --file' });
  }
  const relativeDockerfile = path.relative(contextDir, dockerfilePath).split(path.sep).join('/');
  if (relativeDockerfile.startsWith('..')) throw new UsageError(`--file: the Dockerfile must be inside the build context ${contextDir}`, { code: 'E_DOCKERFILE_OUTSIDE' });

  const filter = contextFilter(await ctx.fs.readText(path.join(contextDir, '.dockerignore')));
  const files = selectContextFiles(await ctx.fs.walkFiles(contextDir, filter.canPrune), filter, relativeDockerfile);

  const [sha, status] = await Promise.all([
    ctx.exec.run('git', ['-C', contextDir, 'rev-parse', '--short', 'HEAD'], { timeoutMs: 5000 }),
    ctx.exec.run('git', ['-C', contextDir, 'status', '--porcelain'], { timeoutMs: 5000 }),
  ]);
  const revision = revisionFrom(sha, status, sha.failed ? await ctx.fs.hashFiles(contextDir, files) : '');
  const { parameters, tags, buildArgs } = buildParameters({
    imageName: config.image.name ?? config.project.name!,
    tags: input.tags,
    revision,
    dockerfile: relativeDockerfile,
    target: input.target ?? config.image.target,
    noCache: input.noCache,
    project: config.project.name!,
    declaredArgs: declaredArgs(dockerfileText),
    env: ctx.loaded!.env,
    configArgs: config.image.buildArgs,
    flagArgs: input.buildArgs,
  });
  for (const value of Object.values(buildArgs)) if (typeof value !== 'string') ctx.redactor.add(value);
  const shownArgs = Object.fromEntries(Object.entries(buildArgs).map(([k, v]) => [k, String(v)]));

  const base: Omit<BuildResult, 'imageId' | 'sizeBytes' | 'durationMs' | 'steps' | 'cacheableSteps' | 'cachedSteps' | 'stages' | 'finalVsBuilder'> = { tags, revision, contextFiles: files.length, buildArgs: shownArgs };
  if (ctx.globals.dryRun) {
    const shown = displayParameters(parameters, buildArgs);
    ctx.reporter.dryRun({ kind: 'docker', call: 'POST /build', options: shown, description: `context ${contextDir}, ${files.length} files after .dockerignore` });
    return { ...base, imageId: '', sizeBytes: 0, durationMs: 0, steps: 0, cacheableSteps: 0, cachedSteps: 0, stages: [], finalVsBuilder: null, dryRun: { call: 'POST /build', parameters: shown, context: contextDir, files } };
  }

  const engine = docker ?? (await ctx.docker(config.docker.host ?? ctx.loaded!.env.DOCKER_HOST));
  const started = ctx.clock.monotonicMs();
  const step = ctx.reporter.step(`building ${tags.join(', ')} (${files.length} files in the context)`);
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
    const failing = progress.steps[progress.steps.length - 1];
    const tail = progress.log.slice(-30);
    step.fail(`build failed${failing ? ` at ${describeStep(failing)}` : ''}`);
    throw new OperationError('E_BUILD_FAILED', `build failed${failing ? ` at ${describeStep(failing)}` : ''}: ${progress.error ?? 'the engine reported no image'}\n--- last ${tail.length} lines of build output ---\n${tail.join('\n')}`, {
      hint: 'fix the failing step; --verbose shows the whole build log',
      details: { failedStep: failing ?? null, logTail: tail },
    });
  }
  const image = await engine.inspectImage(progress.imageId);
  const stages = await Promise.all(
    stageImages(progress).map(async ({ stage, imageId }) => ({
      name: stage.name ?? null,
      from: stage.from,
      sizeBytes: imageId ? ((await engine.inspectImage(imageId))?.sizeBytes ?? null) : null,
    })),
  );
  const finalBytes = image?.sizeBytes ?? 0;
  const builderBytes = stages.length > 1 ? stages[0]!.sizeBytes : null;
  const durationMs = Math.round(ctx.clock.monotonicMs() - started);
  const cachedSteps = progress.steps.filter((s) => s.cached).length;
  step.succeed(`built ${tags[0]} (${formatBytes(finalBytes)}, ${progress.steps.length} steps, ${cachedSteps} cached) in ${formatDuration(durationMs)}`);
  return {
    ...base,
    imageId: progress.imageId,
    sizeBytes: finalBytes,
    durationMs,
    steps: progress.steps.length,
    cacheableSteps: progress.steps.filter((s) => s.stage >= 0 && !/^FROM\s/i.test(s.instruction)).length,
    cachedSteps,
    stages,
    finalVsBuilder: builderBytes ? { finalBytes, builderBytes, ratio: Math.round((finalBytes / builderBytes) * 1000) / 1000 } : null,
  };
}

export async function runBuild(ctx: Context, input: BuildInput): Promise<BuildResult> {
  if (ctx.globals.dryRun) return buildImage(ctx, input);
  return withMutation(ctx, 'build', () => buildImage(ctx, input));
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let value = bytes;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function renderBuild(result: BuildResult, colour: ChalkInstance): string {
  if (result.dryRun) return `would build ${result.tags.join(', ')} from ${result.dryRun.context} (${result.contextFiles} files)`;
  const lines = [
    `${colour.green('built')} ${result.imageId.replace(/^sha256:/, '').slice(0, 12)}  ${result.tags.join(', ')}`,
    `  size      ${formatBytes(result.sizeBytes)}`,
    `  steps     ${result.steps} (${result.cachedSteps} of ${result.cacheableSteps} cacheable from cache)`,
    `  duration  ${formatDuration(result.durationMs)}`,
    `  revision  ${result.revision}`,
  ];
  if (result.finalVsBuilder) {
    lines.push(`  stages    ${result.stages.map((s) => `${s.name ?? 'final'} ${s.sizeBytes === null ? '?' : formatBytes(s.sizeBytes)}`).join(', ')}`);
    lines.push(`  final image is ${Math.round(result.finalVsBuilder.ratio * 100)}% of the builder stage (${formatBytes(result.finalVsBuilder.finalBytes)} vs ${formatBytes(result.finalVsBuilder.builderBytes)})`);
  }
  return lines.join('\n');
}
