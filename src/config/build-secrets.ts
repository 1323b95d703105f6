/**
 * Build secrets (`RUN --mount=type=secret,id=NAME`): BuildKit mounts them for one RUN step; they land in
 * no layer and in no image history. opskit names where each comes from (a file, or an environment
 * variable) and never reads them into any output.
 */

/** Where a secret's value comes from: a file (a path, not a secret itself) or an environment variable. */
export type BuildSecretSpec =
  | { id: string; src: string; env?: undefined }
  | { id: string; env: string; src?: undefined };

const SECRET_ID = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const SECRET_SPEC_FORM = 'id=NAME[,src=FILE|,env=VAR]';

/**
 * Pure: `id=NAME`, `id=NAME,src=FILE`, `id=NAME,env=VAR` (buildx's `source=` and `type=file|env` too).
 * Without src or env the value is the environment variable named like the id. A problem comes back
 * as text, for the caller to name its flag or key.
 */
export function parseSecretSpec(text: string): BuildSecretSpec | { problem: string } {
  const fields: Record<string, string> = {};
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) return { problem: `expected ${SECRET_SPEC_FORM}` };
    const key = part.slice(0, eq).trim().toLowerCase();
    if (!['id', 'src', 'source', 'env', 'type'].includes(key))
      return { problem: `unknown field ${key}: expected ${SECRET_SPEC_FORM}` };
    if (fields[key === 'source' ? 'src' : key] !== undefined) return { problem: `${key} given twice` };
    fields[key === 'source' ? 'src' : key] = part.slice(eq + 1).trim();
  }
  return checkSecretSpec({ id: fields.id, src: fields.src, env: fields.env, type: fields.type });
}

/** Pure: the same rules for the object form of `image.secrets` (`{ id, src }` or `{ id, env }`). */
export function checkSecretSpec(input: {
  id?: unknown;
  src?: unknown;
  env?: unknown;
  type?: unknown;
}): BuildSecretSpec | { problem: string } {
  const { id, type } = input;
  let { src, env } = input;
  if (typeof id !== 'string' || !SECRET_ID.test(id))
    return { problem: `expected ${SECRET_SPEC_FORM}: id is letters, digits, _ . -` };
  if (type !== undefined && type !== 'file' && type !== 'env') return { problem: 'type: expected file or env' };
  // buildx: `type=env,src=VAR` names the variable in src.
  if (type === 'env' && env === undefined && src !== undefined) [env, src] = [src, undefined];
  if (src !== undefined && env !== undefined) return { problem: 'expected src or env, not both' };
  if (src !== undefined) {
    if (typeof src !== 'string' || src === '') return { problem: 'src: expected a file path' };
    return { id, src };
  }
  const variable = env ?? id;
  if (typeof variable !== 'string' || !ENV_NAME.test(variable))
    return {
      problem: `env: expected an environment variable name${env === undefined ? ' (without src or env, the id names it)' : ''}`,
    };
  return { id, env: variable };
}

export function isSecretProblem(value: BuildSecretSpec | { problem: string }): value is { problem: string } {
  return 'problem' in value;
}

/** Pure: the flags' secrets over the config's (the same id: the flag wins), in order. */
export function mergeSecrets(
  configSecrets: readonly BuildSecretSpec[],
  flagSecrets: readonly BuildSecretSpec[],
): BuildSecretSpec[] {
  const byId = new Map<string, BuildSecretSpec>();
  for (const secret of [...configSecrets, ...flagSecrets]) {
    byId.delete(secret.id);
    byId.set(secret.id, secret);
  }
  return [...byId.values()];
}

/** Pure: how a secret is shown (result, dry run): its id and where it comes from, never its value. */
export function describeSecret(secret: BuildSecretSpec): string {
  return secret.src !== undefined ? `id=${secret.id},src=${secret.src}` : `id=${secret.id},env=${secret.env}`;
}

/** Pure: one entry of `image.secrets`: the flag's text form, or `{ id, src }` / `{ id, env }`. */
export function secretSpecFrom(value: unknown): BuildSecretSpec | { problem: string } {
  if (typeof value === 'string') return parseSecretSpec(value);
  if (!value || typeof value !== 'object' || Array.isArray(value))
    return { problem: `expected ${SECRET_SPEC_FORM}, or { id, src } or { id, env }` };
  const unknown = Object.keys(value).filter((k) => !['id', 'src', 'env'].includes(k));
  if (unknown.length > 0) return { problem: `unknown key ${unknown[0]}: expected id and src or env` };
  return checkSecretSpec(value as { id?: unknown; src?: unknown; env?: unknown });
}

/** Pure: a --secret value as an error may show it: known fields as given, anything else as `key=...`. */
export function showSecretText(text: string): string {
  return text
    .split(',')
    .map((part) => {
      const eq = part.indexOf('=');
      const key = eq > 0 ? part.slice(0, eq).trim().toLowerCase() : '';
      return ['id', 'src', 'source', 'env', 'type'].includes(key) ? part : `${eq > 0 ? part.slice(0, eq) : ''}=...`;
    })
    .join(',');
}
