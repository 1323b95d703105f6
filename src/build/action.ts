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
import { type Context, projectRoot, withMutation } from '../runtime/context.js';
import { formatDuration } from '../runtime/duration.js';
import { isSensitive, Sensitive } from '../sensitive.js';
import { buildWithBuildkit } from './buildkit.js';
import { buildClassic } from './classic.js';
import { contextFilter, declaredArgs, selectContextFiles } from './context.js';
import { buildParameters } from './plan.js';
import { type BuildPlan, type BuildResult, formatBytes } from './result.js';

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

export type Builder = { kind: 'buildkit'; version: string; binary: BuildxBinary } | { kind: 'classic' };

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
export async function chooseBuilder(ctx: Context, wanted: 'auto' | 'buildkit' | 'classic'): Promise<Builder> {
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
export async function resolveSecrets(
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

export async function runBuild(ctx: Context, input: BuildInput): Promise<BuildResult> {
  if (ctx.globals.dryRun) return buildImage(ctx, input);
  return withMutation(ctx, 'build', () => buildImage(ctx, input));
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
