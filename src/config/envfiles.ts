import { parse } from 'dotenv';

export type EnvSource = { kind: 'envFile'; file: string } | { kind: 'env' };

export interface LayeredEnv {
  values: Record<string, string>;
  sources: Record<string, EnvSource>;
}

/**
 * `.env`, then `.env.<name>`, then the process environment: each later layer wins (README: precedence).
 * Pure: the caller reads the files.
 */
export function layerEnv(
  files: ReadonlyArray<{ file: string; text: string }>,
  processEnv: Readonly<Record<string, string | undefined>>,
): LayeredEnv {
  const values: Record<string, string> = {};
  const sources: Record<string, EnvSource> = {};
  for (const { file, text } of files) {
    for (const [name, value] of Object.entries(parse(text))) {
      values[name] = value;
      sources[name] = { kind: 'envFile', file };
    }
  }
  for (const [name, value] of Object.entries(processEnv)) {
    if (value === undefined) continue;
    values[name] = value;
    sources[name] = { kind: 'env' };
  }
  return { values, sources };
}
