import type { BuildParameters } from '../adapters/docker.js';
import { isSecretName } from '../config/redact.js';
import { isSensitive, Sensitive } from '../sensitive.js';

export interface BuildPlanInput {
  imageName: string;
  /** --tag values; empty: the default tags. */
  tags: readonly string[];
  revision: string;
  dockerfile: string;
  target: string | undefined;
  noCache: boolean;
  project: string;
  /** ARGs the Dockerfile declares: those found in the environment are passed. */
  declaredArgs: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  configArgs: Readonly<Record<string, string>>;
  flagArgs: Readonly<Record<string, string | Sensitive>>;
}

/** `name:rev` plus `name:latest`; a tag given without a repository gets the image name. */
export function resolveTags(imageName: string, tags: readonly string[], revision: string): string[] {
  if (tags.length === 0) return [`${imageName}:${revision}`, `${imageName}:latest`];
  return tags.map((t) => {
    if (t.split('/').pop()!.includes(':')) return t; // repository:tag (a registry port is not a tag)
    return t.includes('/') ? `${t}:latest` : `${imageName}:${t}`;
  });
}

/**
 * The build arguments: --build-arg > image.buildArgs > the layered environment (for ARGs the
 * Dockerfile declares, e.g. BASE_IMAGE from .env.offline), and APP_VERSION defaults to the revision.
 * A secret-looking name (or a secret flag value) stays Sensitive.
 */
export function resolveBuildArgs(
  input: Pick<BuildPlanInput, 'declaredArgs' | 'env' | 'configArgs' | 'flagArgs' | 'revision'>,
): Record<string, string | Sensitive> {
  const args: Record<string, string | Sensitive> = {};
  for (const name of input.declaredArgs) {
    const value = input.env[name];
    if (value !== undefined && value !== '') args[name] = value;
  }
  if (input.declaredArgs.includes('APP_VERSION') && args.APP_VERSION === undefined) args.APP_VERSION = input.revision;
  Object.assign(args, input.configArgs, input.flagArgs);
  for (const [name, value] of Object.entries(args))
    if (!isSensitive(value) && isSecretName(name)) args[name] = new Sensitive(value);
  return args;
}

/** Pure: the Engine API parameters of the build. Secrets are revealed only here, for the engine. */
export function buildParameters(input: BuildPlanInput): {
  parameters: BuildParameters;
  tags: string[];
  buildArgs: Record<string, string | Sensitive>;
} {
  const tags = resolveTags(input.imageName, input.tags, input.revision);
  const buildArgs = resolveBuildArgs(input);
  return {
    tags,
    buildArgs,
    parameters: {
      t: tags,
      dockerfile: input.dockerfile,
      ...(input.target ? { target: input.target } : {}),
      buildargs: Object.fromEntries(Object.entries(buildArgs).map(([k, v]) => [k, isSensitive(v) ? v.reveal() : v])),
      nocache: input.noCache,
      labels: { 'org.opskit.project': input.project, 'org.opencontainers.image.revision': input.revision },
      rm: true,
      forcerm: true,
    },
  };
}

/** The same parameters for display (dry run, JSON): secrets as ***. */
export function displayParameters(
  parameters: BuildParameters,
  buildArgs: Record<string, string | Sensitive>,
): Record<string, unknown> {
  return { ...parameters, buildargs: Object.fromEntries(Object.entries(buildArgs).map(([k, v]) => [k, String(v)])) };
}
