import { type BuildxBinary, DOCKER_BUILDX } from '../adapters/buildx.js';
import type { BuildSecretSpec } from '../config/build-secrets.js';
import { isSensitive, type Sensitive } from '../sensitive.js';
import type { DockerfileStage } from './context.js';
import type { BuildProgress } from './progress.js';

export interface BuildxInput {
  /** How to run buildx; default `docker buildx`. */
  binary?: BuildxBinary;
  /** Absolute paths. */
  contextDir: string;
  dockerfile: string;
  tags: readonly string[];
  target: string | undefined;
  noCache: boolean;
  buildArgs: Readonly<Record<string, string | Sensitive>>;
  labels: Readonly<Record<string, string>>;
  /** File secrets with their path resolved; env secrets name the variable the child reads. */
  secrets: readonly BuildSecretSpec[];
  /** Values for env secrets, from the layered environment. */
  secretValues: Readonly<Record<string, Sensitive>>;
  /** Where buildx writes the image id (`containerimage.config.digest`); none for a build whose id is not needed. */
  metadataFile: string | undefined;
  /** The engine opskit talks to (docker.host, DOCKER_HOST), so that --load lands there. */
  dockerHost: string | undefined;
}

export interface BuildxCommand {
  file: string;
  args: string[];
  /** Added to the child's environment. Sensitive values are revealed only by the executor. */
  env: Record<string, string | Sensitive>;
}

/**
 * Pure: `docker buildx build` with BuildKit's raw JSON progress on stderr, the image loaded into the
 * engine. A secret never goes into argv (other local users can read a process's argv): a secret build
 * arg is `--build-arg NAME`, whose value buildx reads from its environment, and a build secret is a
 * file path or the name of a variable.
 */
export function buildxArgv(input: BuildxInput): BuildxCommand {
  const binary = input.binary ?? DOCKER_BUILDX;
  const args = [...binary.prefix, 'build', '--progress=rawjson', '--load', '-f', input.dockerfile];
  const env: Record<string, string | Sensitive> = {};
  for (const tag of input.tags) args.push('-t', tag);
  if (input.target) args.push('--target', input.target);
  if (input.noCache) args.push('--no-cache');
  for (const [name, value] of Object.entries(input.buildArgs)) {
    if (isSensitive(value)) {
      args.push('--build-arg', name);
      env[name] = value;
    } else {
      args.push('--build-arg', `${name}=${value}`);
    }
  }
  for (const [name, value] of Object.entries(input.labels)) args.push('--label', `${name}=${value}`);
  for (const secret of input.secrets) {
    if (secret.src !== undefined) {
      args.push('--secret', `id=${secret.id},src=${secret.src}`);
    } else {
      args.push('--secret', `id=${secret.id},env=${secret.env}`);
      const value = input.secretValues[secret.id];
      if (value) env[secret.env] = value;
    }
  }
  if (input.metadataFile) args.push('--metadata-file', input.metadataFile);
  args.push(input.contextDir);
  if (input.dockerHost) env.DOCKER_HOST = input.dockerHost;
  return { file: binary.file, args, env };
}

/** Pure: the image id from buildx's --metadata-file. */
export function imageIdFromMetadata(text: string | undefined): string | undefined {
  if (!text) return undefined;
  try {
    const metadata = JSON.parse(text) as Record<string, unknown>;
    const id = metadata['containerimage.config.digest'];
    return typeof id === 'string' && id.startsWith('sha256:') ? id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Pure: the temporary tag the first stage is loaded under to measure it (BuildKit builds no
 * intermediate images); removed straight after.
 */
export function stageProbeTag(imageName: string, stage: string, pid: number): string {
  const tag = `opskit-stage-${stage}-${pid}`.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 128);
  return `${imageName}:${tag}`;
}

/**
 * Pure: whether a failed build failed fetching the frontend that a `# syntax=` line names (BuildKit
 * pulls that image before it reads the Dockerfile; offline, that fails).
 */
export function frontendUnavailable(
  syntax: string | undefined,
  progress: Pick<BuildProgress, 'error' | 'failure'>,
): boolean {
  if (!syntax) return false;
  const repository = syntax
    .replace(/@.*$/, '')
    .replace(/:[^/:]*$/, '')
    .replace(/^docker\.io\//, '');
  const failedResolving =
    progress.failure !== undefined &&
    /^resolve image config for /.test(progress.failure.name) &&
    progress.failure.name.includes(repository);
  const text = `${progress.error ?? ''}\n${progress.failure?.error ?? ''}`;
  return (
    failedResolving ||
    (text.includes(repository) && /resolve|pull|request|dial|lookup|not found|denied|manifest/i.test(text))
  );
}

/**
 * Pure: the stages a build goes through (all of them, or up to --target), and the one to measure
 * apart: the first, when there are several and it has a name to pass as --target (else its size is
 * unknown: null).
 */
export function planStageSizes(
  stages: readonly DockerfileStage[],
  target: string | undefined,
): { builtStages: DockerfileStage[]; measured: DockerfileStage | undefined } {
  const targetIndex = target
    ? stages.findIndex((s) => s.name === target.toLowerCase() || `stage-${s.index}` === target)
    : -1;
  const builtStages = targetIndex >= 0 ? stages.slice(0, targetIndex + 1) : [...stages];
  return { builtStages, measured: builtStages.length > 1 && builtStages[0]!.name ? builtStages[0] : undefined };
}
