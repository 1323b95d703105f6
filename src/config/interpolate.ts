/**
 * `${VAR}`, `${VAR:-default}` (unset or empty), `${VAR-default}` (unset), `${VAR:?message}` and `$$`,
 * as docker compose does, applied to the string values of the parsed YAML (never to its raw text, so
 * a value can't inject YAML). An unset `${VAR}` with no default is an error, not an empty string.
 */
export interface InterpolationResult {
  value: string;
  variables: string[];
  errors: string[];
}

const PATTERN = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^}\\]|\\.)*))?\}|\$\{([^}]*)\}?/g;

export function interpolate(input: string, env: Readonly<Record<string, string | undefined>>): InterpolationResult {
  const variables: string[] = [];
  const errors: string[] = [];
  const value = input.replace(
    PATTERN,
    (match, name: string | undefined, op: string | undefined, arg: string | undefined) => {
      if (match === '$$') return '$';
      if (name === undefined) {
        errors.push(`invalid interpolation "${match}"`);
        return match;
      }
      variables.push(name);
      const current = env[name];
      const unset = current === undefined;
      const empty = unset || current === '';
      switch (op) {
        case undefined:
          if (unset) {
            errors.push(`\${${name}} is not set`);
            return '';
          }
          return current!;
        case ':-':
          return empty ? (arg ?? '') : current!;
        case '-':
          return unset ? (arg ?? '') : current!;
        case ':?':
        case '?':
          if (op === ':?' ? empty : unset) {
            errors.push(`\${${name}} is not set${arg ? `: ${arg}` : ''}`);
            return '';
          }
          return current!;
        default:
          return match;
      }
    },
  );
  return { value, variables, errors };
}
