import { type BuildSecretSpec, isSecretProblem, parseSecretSpec, showSecretText } from '../config/build-secrets.js';
import { isSecretName } from '../config/redact.js';
import { UsageError } from '../errors.js';
import type { ImageBuild } from '../platform/release.js';
import type { Context } from '../runtime/context.js';
import { Sensitive } from '../sensitive.js';

export const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

/** `--build-arg K=V` (repeatable) -> a map; values of secret-looking names become Sensitive. */
export function parseKeyValues(
  flag: string,
  values: readonly string[] | undefined,
): Record<string, string | Sensitive> {
  const out: Record<string, string | Sensitive> = {};
  for (const item of values ?? []) {
    const eq = item.indexOf('=');
    const key = eq > 0 ? item.slice(0, eq) : '';
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key))
      throw new UsageError(`${flag} ${eq > 0 ? key : item}: expected NAME=VALUE`, { code: 'E_BAD_FLAG' });
    const value = item.slice(eq + 1);
    out[key] = isSecretName(key) ? new Sensitive(value) : value;
  }
  return out;
}

export function secretsIn(values: Record<string, string | Sensitive>): Sensitive[] {
  return Object.values(values).filter((v): v is Sensitive => v instanceof Sensitive);
}

/** `--secret id=NAME[,src=FILE|,env=VAR]` (repeatable): where each build secret comes from, never its value. */
export function parseSecretFlags(values: readonly string[] | undefined): BuildSecretSpec[] {
  return (values ?? []).map((text) => {
    const spec = parseSecretSpec(text);
    if (isSecretProblem(spec))
      throw new UsageError(`--secret ${showSecretText(text)}: ${spec.problem}`, { code: 'E_BAD_FLAG' });
    return spec;
  });
}

export const SECRET_FLAG_HELP =
  'build secret for RUN --mount=type=secret,id=NAME (repeatable; without src or env: the variable NAME); never in a layer or the output';

/**
 * `--build [--build-arg ...] [--secret ...] [--tag T]` of deploy and cutover: the build to run first, its secrets
 * registered.
 */
export function buildFirst(
  options: { build?: boolean; buildArg?: string[]; secret?: string[]; tag?: string },
  ctx: Context,
): ImageBuild | undefined {
  const buildArgs = parseKeyValues('--build-arg', options.buildArg);
  for (const secret of secretsIn(buildArgs)) ctx.redactor.add(secret);
  const secrets = parseSecretFlags(options.secret);
  if (!options.build && secrets.length > 0)
    throw new UsageError('--secret: only with --build (the build it is for)', { code: 'E_BAD_FLAG' });
  if (!options.build) return undefined;
  const input = { tags: options.tag ? [options.tag] : [], buildArgs, secrets, noCache: false };
  // The build command's action, run by deploy or cutover inside their lock.
  return async (docker) => {
    const { buildImage } = await import('../build/action.js');
    return buildImage(ctx, input, docker);
  };
}
