import path from 'node:path';
import type { ChalkInstance } from 'chalk';
import {
  type BuildxBinary,
  buildxPluginCandidates,
  buildxSupported,
  DOCKER_BUILDX,
  parseBuildxVersion,
} from '../adapters/buildx.js';
import type { DockerAdapter } from '../adapters/docker.js';
import type { ExecResult } from '../adapters/exec.js';
import { type BuildSecretSpec, describeSecret } from '../config/build-secrets.js';
import { OperationError, UsageError } from '../errors.js';
import { type Context, projectPath, projectRoot, withMutation } from '../runtime/context.js';
import { formatDuration } from '../runtime/duration.js';
import { isSensitive, Sensitive } from '../sensitive.js';
import {
  type BuildxCommand,
  type BuildxInput,
  buildxArgv,
  frontendUnavailable,
  imageIdFromMetadata,
  planStageSizes,
  stageProbeTag,
} from './buildx.js';
import {
  contextFilter,
  type DockerfileStage,
  declaredArgs,
  dockerfileStages,
  selectContextFiles,
  syntaxDirective,
} from './context.js';
import { buildParameters, displayParameters } from './plan.js';
import {
  addedLines,
  type BuildProgress,
  buildkitFailure,
  describeStep,
  emptyProgress,
  reduceBuildEvent,
  reduceSolveStatus,
  stageImages,
  TAIL_LINES,
} from './progress.js';
import { emptySplitter, flushRawJson, type RawJsonItem, splitRawJson } from './rawjson.js';

export interface BuildInput {
  tags: string[];
  target?: string | undefined;
  buildArgs: Record<string, string | Sensitive>;
  noCache: boolean;
  file?: string | undefined;
  context?: string | undefined;
  /** --secret flags (paths relative to the working directory); image.secrets adds to them. */
  secrets?: BuildSecretSpec[] | undefined;
}

export interface BuildResult {
  imageId: string;
  tags: string[];
  sizeBytes: number;
  durationMs: number;
  revision: string;
  /** BuildKit (docker buildx) or the Engine API's classic builder. */
  builder: 'buildkit' | 'classic';
  steps: number;
  /** Steps the cache can serve (not FROM, not a global ARG) and how many it did. */
  cacheableSteps: number;
  cachedSteps: number;
  contextFiles: number;
  stages: Array<{ name: string | null; from: string; sizeBytes: number | null }>;
  /** Multi-stage: the final image against the first (builder) stage. */
  finalVsBuilder: { finalBytes: number; builderBytes: number; ratio: number } | null;
  buildArgs: Record<string, string>;
  /** Build secrets: their ids and where they come from (`id=pip,src=/path`), never their values. */
  secrets: string[];
  dryRun?: {
    call: string;
    /** BuildKit: the buildx argv, and the variables added to its environment (values ***). */
    argv?: string[];
    env?: Record<string, string>;
    /** Classic: the Engine API parameters. */
    parameters?: Record<string, unknown>;
    context: string;
    files: string[];
  };
}

type Builder = { kind: 'buildkit'; version: string; binary: BuildxBinary } | { kind: 'classic' };

/**
 * Pure: `abc1234`, or `abc1234-dirty` with uncommitted changes; outside a git checkout `ctx-` and the
 * context's content hash, so an unchanged context keeps its tag (and its build cache).
 */
export function revisionFrom(sha: ExecResult, status: ExecResult, contextHash: string): string {
  if (sha.failed || !sha.stdout.trim()) return `ctx-${contextHash.slice(0, 12)}`;
  return `${sha.stdout.trim()}${!status.failed && status.stdout.trim() ? '-dirty' : ''}`;
}

/**
 * image.builder: `classic` is the Engine API; `buildkit` needs docker buildx (>= 0.12, for
 * --progress=rawjson); `auto` takes BuildKit when buildx answers, else classic with a warning saying why.
 */
async function chooseBuilder(ctx: Context, wanted: 'auto' | 'buildkit' | 'classic'): Promise<Builder> {
  if (wanted === 'classic') return { kind: 'classic' };
  // The plugin binary where the docker CLI would find it (buildx's standalone mode), else `docker buildx`.
  let binary = DOCKER_BUILDX;
  for (const candidate of buildxPluginCandidates({
    DOCKER_CONFIG: ctx.processEnv.DOCKER_CONFIG,
    HOME: ctx.processEnv.HOME,
  })) {
    if (await ctx.fs.exists(candidate)) {
      binary = { file: candidate, prefix: [] };
      break;
    }
  }
  let probe = await ctx.exec.run(binary.file, [...binary.prefix, 'version'], { timeoutMs: 10_000 });
  if (probe.failed && binary !== DOCKER_BUILDX) {
    binary = DOCKER_BUILDX;
    probe = await ctx.exec.run('docker', ['buildx', 'version'], { timeoutMs: 10_000 });
  }
  const version = probe.failed ? undefined : parseBuildxVersion(`${probe.stdout}\n${probe.stderr}`);
  let why: string | undefined;
  if (probe.notFound) why = 'the docker CLI is not on PATH';
  else if (probe.failed)
    why = `\`docker buildx version\` failed: ${(probe.stderr || probe.stdout).split('\n')[0] || `exit ${probe.exitCode}`}`;
  else if (!version) why = `\`docker buildx version\` printed no version: ${probe.stdout.split('\n')[0]}`;
  else if (!buildxSupported(version)) why = `docker buildx ${version} is older than 0.12 (no --progress=rawjson)`;
  if (!why) return { kind: 'buildkit', version: version!, binary };
  if (wanted === 'buildkit') {
    throw new OperationError('E_BUILDX_MISSING', `image.builder is buildkit, but ${why}`, {
      hint: 'install the docker buildx plugin (0.12 or later), or set image.builder: classic',
    });
  }
  ctx.reporter.warn(
    `BuildKit is not available (${why.replace(/\.$/, '')}): building with the Engine's classic builder, which has no RUN --mount, heredocs or build secrets; ` +
      'install the docker buildx plugin, or set image.builder: classic to silence this',
  );
  return { kind: 'classic' };
}

/**
 * Build secrets: flags (relative to the working directory) over image.secrets (relative to the project).
 * A file must exist and an env variable be set; each value is registered with the redactor, so a step
 * that prints it shows ***, and env values go to the child's environment only.
 */
async function resolveSecrets(
  ctx: Context,
  flags: readonly BuildSecretSpec[],
): Promise<{ secrets: BuildSecretSpec[]; values: Record<string, Sensitive> }> {
  const home = ctx.processEnv.HOME;
  const resolvePath = (base: string, file: string) =>
    path.resolve(base, home && /^~(\/|$)/.test(file) ? path.join(home, file.slice(1)) : file);
  const named = [
    ...ctx.loaded!.config.image.secrets.map((s) => ({
      spec: s.src !== undefined ? { ...s, src: resolvePath(projectRoot(ctx), s.src) } : s,
      origin: 'image.secrets',
    })),
    ...flags.map((s) => ({
      spec: s.src !== undefined ? { ...s, src: resolvePath(ctx.cwd, s.src) } : s,
      origin: '--secret',
    })),
  ];
  const byId = new Map<string, { spec: BuildSecretSpec; origin: string }>();
  for (const entry of named) {
    byId.delete(entry.spec.id);
    byId.set(entry.spec.id, entry);
  }
  const values: Record<string, Sensitive> = {};
  for (const { spec, origin } of byId.values()) {
    if (spec.src !== undefined) {
      const text = await ctx.fs.readText(spec.src).catch(() => undefined);
      if (text === undefined)
        throw new UsageError(`${origin} id=${spec.id}: ${spec.src} not found or not readable`, {
          code: 'E_SECRET_NOT_FOUND',
          hint: 'name a file that holds the secret (src=FILE)',
        });
      ctx.redactor.add(new Sensitive(text));
      ctx.redactor.add(new Sensitive(text.trim()));
    } else {
      const value = ctx.loaded!.env[spec.env] ?? ctx.processEnv[spec.env];
      if (value === undefined || value === '') {
        throw new UsageError(
          `${origin} id=${spec.id}: the environment variable ${spec.env} is not set (environment or env files)`,
          { code: 'E_SECRET_NOT_FOUND', hint: `set ${spec.env}, or name a file: id=${spec.id},src=FILE` },
        );
      }
      values[spec.id] = new Sensitive(value);
      ctx.redactor.add(values[spec.id]);
    }
  }
  return { secrets: [...byId.values()].map((e) => e.spec), values };
}

/** The child's environment: the process's, plus the builder's additions, revealed only here. */
function childEnv(ctx: Context, command: BuildxCommand): Record<string, string | undefined> {
  return {
    ...ctx.processEnv,
    ...Object.fromEntries(Object.entries(command.env).map(([k, v]) => [k, isSensitive(v) ? v.reveal() : v])),
  };
}

/** Runs docker buildx and folds its raw JSON progress; resolves when it has exited. */
async function runBuildx(
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

/**
 * `opskit build`: BuildKit through docker buildx, or the Engine API's classic builder. Also called by deploy --build,
 * inside its lock.
 */
export async function buildImage(ctx: Context, input: BuildInput, docker?: DockerAdapter): Promise<BuildResult> {
  const config = ctx.loaded!.config;
  const root = projectRoot(ctx);
  const contextDir = path.resolve(root, input.context ?? config.image.context);
  const dockerfile = input.file ?? config.image.dockerfile;
  const dockerfilePath = path.resolve(contextDir, dockerfile);
  const dockerfileText = await ctx.fs.readText(dockerfilePath);
  if (dockerfileText === undefined) {
    throw new UsageError(
      `${input.file ? '--file' : 'image.dockerfile'}: ${path.relative(ctx.cwd, dockerfilePath) || dockerfilePath} not found`,
      { code: 'E_DOCKERFILE_NOT_FOUND', hint: 'run `opskit init` to write one, or pass --file' },
    );
  }
  const relativeDockerfile = path.relative(contextDir, dockerfilePath).split(path.sep).join('/');
  if (relativeDockerfile.startsWith('..'))
    throw new UsageError(`--file: the Dockerfile must be inside the build context ${contextDir}`, {
      code: 'E_DOCKERFILE_OUTSIDE',
    });

  // The builder probe, the git revision and the ignore files do not depend on each other: one wait, not four.
  const gitInfo = Promise.all([
    ctx.exec.run('git', ['-C', contextDir, 'rev-parse', '--short', 'HEAD'], { timeoutMs: 5000 }),
    ctx.exec.run('git', ['-C', contextDir, 'status', '--porcelain'], { timeoutMs: 5000 }),
  ]);
  const ignoreFiles = Promise.all([
    ctx.fs.readText(`${dockerfilePath}.dockerignore`),
    ctx.fs.readText(path.join(contextDir, '.dockerignore')),
  ]);
  const builder = await chooseBuilder(ctx, config.image.builder);
  const { secrets, values: secretValues } = await resolveSecrets(ctx, input.secrets ?? []);
  if (builder.kind === 'classic' && secrets.length > 0) {
    throw new UsageError(
      `build secrets (${secrets.map((s) => s.id).join(', ')}) need BuildKit, and this build uses the classic builder`,
      {
        code: 'E_SECRETS_NEED_BUILDKIT',
        hint: 'install the docker buildx plugin and set image.builder: auto or buildkit',
      },
    );
  }

  // BuildKit reads <Dockerfile>.dockerignore before .dockerignore; the Engine API only .dockerignore.
  const [dockerfileIgnore, contextIgnore] = await ignoreFiles;
  const ownIgnore = builder.kind === 'buildkit' ? dockerfileIgnore : undefined;
  const filter = contextFilter(ownIgnore ?? contextIgnore);
  const files = selectContextFiles(await ctx.fs.walkFiles(contextDir, filter.canPrune), filter, relativeDockerfile);

  const [sha, status] = await gitInfo;
  const revision = revisionFrom(sha, status, sha.failed ? await ctx.fs.hashFiles(contextDir, files) : '');
  const target = input.target ?? config.image.target;
  const imageName = config.image.name ?? config.project.name!;
  const { parameters, tags, buildArgs } = buildParameters({
    imageName,
    tags: input.tags,
    revision,
    dockerfile: relativeDockerfile,
    target,
    noCache: input.noCache,
    project: config.project.name!,
    declaredArgs: declaredArgs(dockerfileText),
    env: ctx.loaded!.env,
    configArgs: config.image.buildArgs,
    flagArgs: input.buildArgs,
  });
  for (const value of Object.values(buildArgs)) if (typeof value !== 'string') ctx.redactor.add(value);
  const shownArgs = Object.fromEntries(Object.entries(buildArgs).map(([k, v]) => [k, String(v)]));
  const secretArgs = Object.keys(buildArgs).filter((k) => isSensitive(buildArgs[k]));
  if (secretArgs.length > 0 && !ctx.globals.dryRun) {
    ctx.reporter.warn(
      `build argument${secretArgs.length > 1 ? 's' : ''} ${secretArgs.join(', ')}: a RUN step that uses a build argument records its value in the image history (docker history); ` +
        'pass a secret as a build secret instead (--secret id=NAME,env=VAR and RUN --mount=type=secret,id=NAME)',
    );
  }

  const base = {
    tags,
    revision,
    builder: builder.kind,
    contextFiles: files.length,
    buildArgs: shownArgs,
    secrets: secrets.map(describeSecret),
  };
  const plan: BuildPlan = {
    base,
    contextDir,
    dockerfilePath,
    dockerfileText,
    files,
    target,
    noCache: input.noCache,
    imageName,
    buildArgs,
    secrets,
    secretValues,
    labels: parameters.labels,
    binary: builder.kind === 'buildkit' ? builder.binary : DOCKER_BUILDX,
  };
  if (builder.kind === 'classic') return buildClassic(ctx, plan, parameters, docker);
  return buildWithBuildkit(ctx, plan, docker);
}

interface BuildPlan {
  base: Pick<BuildResult, 'tags' | 'revision' | 'builder' | 'contextFiles' | 'buildArgs' | 'secrets'>;
  contextDir: string;
  dockerfilePath: string;
  dockerfileText: string;
  files: string[];
  target: string | undefined;
  noCache: boolean;
  imageName: string;
  buildArgs: Record<string, string | Sensitive>;
  secrets: BuildSecretSpec[];
  secretValues: Record<string, Sensitive>;
  labels: Record<string, string>;
  /** How buildx is run (BuildKit builds). */
  binary: BuildxBinary;
}

const notBuilt = {
  imageId: '',
  sizeBytes: 0,
  durationMs: 0,
  steps: 0,
  cacheableSteps: 0,
  cachedSteps: 0,
  stages: [],
  finalVsBuilder: null,
};

/** Pure: the counts of the result, from the folded progress. */
function stepCounts(progress: BuildProgress): Pick<BuildResult, 'steps' | 'cacheableSteps' | 'cachedSteps'> {
  // BuildKit reports a FROM of a local image as cached too: only the cacheable steps count as hits.
  const cacheable = progress.steps.filter((s) => s.stage >= 0 && !/^FROM\s/i.test(s.instruction));
  return {
    steps: progress.steps.length,
    cacheableSteps: cacheable.length,
    cachedSteps: cacheable.filter((s) => s.cached).length,
  };
}

function finalVsBuilder(finalBytes: number, builderBytes: number | null): BuildResult['finalVsBuilder'] {
  return builderBytes
    ? { finalBytes, builderBytes, ratio: Math.round((finalBytes / builderBytes) * 1000) / 1000 }
    : null;
}

function buildFailed(
  step: { fail(text?: string): void },
  failing: BuildProgress['steps'][number] | undefined,
  error: string,
  tail: string[],
  options: { code?: string; message?: string; hint?: string } = {},
): never {
  const where = failing ? ` at ${describeStep(failing)}` : '';
  step.fail(`build failed${where}`);
  throw new OperationError(
    options.code ?? 'E_BUILD_FAILED',
    `${options.message ?? `build failed${where}: ${error}`}\n--- last ${tail.length} lines of build output ---\n${tail.join('\n')}`,
    {
      hint: options.hint ?? 'fix the failing step; --verbose shows the whole build log',
      details: { failedStep: failing ?? null, logTail: tail },
    },
  );
}

/** BuildKit: `docker buildx build --load`, progress from its raw JSON stream, the image id from --metadata-file. */
async function buildWithBuildkit(
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
async function stageSize(
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
async function measureStage(
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

/** The Engine API's classic builder (POST /build), honouring .dockerignore: what opskit did before BuildKit. */
async function buildClassic(
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
  const builder = result.builder === 'buildkit' ? 'BuildKit' : 'the classic builder';
  if (result.dryRun)
    return `would build ${result.tags.join(', ')} with ${builder} from ${result.dryRun.context} (${result.contextFiles} files)`;
  const lines = [
    `${colour.green('built')} ${result.imageId.replace(/^sha256:/, '').slice(0, 12)}  ${result.tags.join(', ')}`,
    `  builder   ${builder}`,
    `  size      ${formatBytes(result.sizeBytes)}`,
    `  steps     ${result.steps} (${result.cachedSteps} of ${result.cacheableSteps} cacheable from cache)`,
    `  duration  ${formatDuration(result.durationMs)}`,
    `  revision  ${result.revision}`,
  ];
  if (result.secrets.length > 0) lines.push(`  secrets   ${result.secrets.join('; ')}`);
  if (result.finalVsBuilder) {
    lines.push(
      `  stages    ${result.stages.map((s) => `${s.name ?? 'final'} ${s.sizeBytes === null ? '?' : formatBytes(s.sizeBytes)}`).join(', ')}`,
    );
    lines.push(
      `  final image is ${Math.round(result.finalVsBuilder.ratio * 100)}% of the builder stage (${formatBytes(result.finalVsBuilder.finalBytes)} vs ${formatBytes(result.finalVsBuilder.builderBytes)})`,
    );
  }
  return lines.join('\n');
}
