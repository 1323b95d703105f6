import path from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import type { FsAdapter } from '../adapters/fs.js';
import { ConfigError } from '../errors.js';
import { isSensitive, type Sensitive } from '../sensitive.js';
import { type EnvSource, layerEnv } from './envfiles.js';
import { interpolate } from './interpolate.js';
import { type Config, configSchema, ENV_BINDINGS } from './schema.js';
import { didYouMean, knownKeysAt } from './suggest.js';

export type ValueSource =
  | { kind: 'default' }
  | { kind: 'file'; file: string; interpolated?: string[] }
  | { kind: 'envFile'; file: string; variable: string }
  | { kind: 'env'; variable: string }
  | { kind: 'flag'; flag: string };

/** A value given on the command line, keyed by its config path (e.g. `database.url`). */
export interface FlagValue {
  path: string;
  flag: string;
  value: unknown;
}

export interface LoadConfigInput {
  cwd: string;
  /** `-c FILE`; when given it must exist. Otherwise `./opskit.yaml` is used when present. */
  configPath?: string | undefined;
  /** `-e NAME`: loads `.env.NAME` over `.env`; the file must exist. */
  envName?: string | undefined;
  processEnv: Readonly<Record<string, string | undefined>>;
  flags?: readonly FlagValue[];
}

export interface LoadedConfig {
  config: Config;
  /** The project directory: the config file's, or the working directory. */
  root: string;
  file: string | undefined;
  envFiles: string[];
  /** The layered environment (`.env` < `.env.NAME` < process env), for interpolation and children. */
  env: Record<string, string>;
  envSources: Record<string, EnvSource>;
  /** Where each leaf value came from, by dotted path. */
  sources: Record<string, ValueSource>;
  /** Every Sensitive value in the config, for the redactor. */
  secrets: Sensitive[];
}

export const DEFAULT_CONFIG_FILE = 'opskit.yaml';

export async function loadConfig(fs: FsAdapter, input: LoadConfigInput): Promise<LoadedConfig> {
  const explicit = input.configPath !== undefined;
  const file = path.resolve(input.cwd, input.configPath ?? DEFAULT_CONFIG_FILE);
  const fileText = await fs.readText(file);
  if (fileText === undefined && explicit) {
    throw new ConfigError(`config file ${input.configPath} not found`, {
      code: 'E_CONFIG_NOT_FOUND',
      hint: 'pass an existing file with -c, or run `opskit init` to write one',
    });
  }
  const root = fileText === undefined ? path.resolve(input.cwd) : path.dirname(file);

  const envFileNames = ['.env', ...(input.envName ? [`.env.${input.envName}`] : [])];
  const envFiles: Array<{ file: string; text: string }> = [];
  for (const name of envFileNames) {
    const text = await fs.readText(path.join(root, name));
    if (text === undefined) {
      if (name === '.env') continue;
      throw new ConfigError(`env file ${name} not found in ${root} (from -e ${input.envName})`, {
        code: 'E_ENV_FILE_NOT_FOUND',
        hint: `create ${name}, or drop -e`,
      });
    }
    envFiles.push({ file: name, text });
  }
  const env = layerEnv(envFiles, input.processEnv);
  const resolved = resolveConfig({
    fileText,
    fileName: fileText === undefined ? undefined : path.relative(input.cwd, file) || DEFAULT_CONFIG_FILE,
    env: env.values,
    envSources: env.sources,
    flags: input.flags ?? [],
    projectDir: root,
  });
  const secrets: Sensitive[] = [];
  collectSecrets(resolved.config, secrets);
  return {
    ...resolved,
    root,
    file: fileText === undefined ? undefined : file,
    envFiles: envFiles.map((f) => f.file),
    env: env.values,
    envSources: env.sources,
    secrets,
  };
}

export interface ResolveInput {
  fileText: string | undefined;
  fileName: string | undefined;
  env: Readonly<Record<string, string>>;
  envSources: Readonly<Record<string, EnvSource>>;
  flags: readonly FlagValue[];
  projectDir: string;
}

/** Pure: the layers merged in precedence order, validated, with each value's source. */
export function resolveConfig(input: ResolveInput): { config: Config; sources: Record<string, ValueSource> } {
  const problems: string[] = [];
  const sources: Record<string, ValueSource> = {};
  const raw: Record<string, unknown> = {};

  if (input.fileText !== undefined && input.fileName !== undefined) {
    const fromFile = parseConfigText(input.fileText, input.fileName, input.env, problems, sources);
    Object.assign(raw, fromFile);
  }

  const boundPaths = new Set<string>();
  for (const [variable, key] of ENV_BINDINGS) {
    const value = input.env[variable];
    if (value === undefined || value === '' || boundPaths.has(key)) continue;
    boundPaths.add(key);
    setPath(raw, key, value);
    const source = input.envSources[variable];
    sources[key] =
      source?.kind === 'envFile' ? { kind: 'envFile', file: source.file, variable } : { kind: 'env', variable };
  }

  for (const { path: key, flag, value } of input.flags) {
    if (value === undefined) continue;
    setPath(raw, key, value);
    sources[key] = { kind: 'flag', flag };
  }

  const parsed = configSchema.safeParse(raw);
  // A value that failed to interpolate is reported once, for its real cause.
  const reported = new Set(problems.map((p) => p.slice(0, p.indexOf(':'))));
  if (!parsed.success)
    problems.push(
      ...formatIssues(
        parsed.error.issues.filter((i) => !reported.has(i.path.map(String).join('.'))),
        sources,
      ),
    );
  if (problems.length > 0 || !parsed.success) {
    throw new ConfigError(`invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`, {
      code: 'E_CONFIG_INVALID',
      hint: 'fix the values named above (in the file, an env file, the environment or a --set flag); nothing was changed',
      details: { problems },
    });
  }
  const config = parsed.data;
  if (config.project.name === undefined) {
    config.project.name =
      path
        .basename(input.projectDir)
        .toLowerCase()
        .replace(/[^a-z0-9_.-]/g, '-') || 'opskit';
    sources['project.name'] = { kind: 'default' };
  }
  for (const leaf of leafPaths(config)) sources[leaf] ??= { kind: 'default' };
  return { config, sources };
}

function parseConfigText(
  text: string,
  fileName: string,
  env: Readonly<Record<string, string>>,
  problems: string[],
  sources: Record<string, ValueSource>,
): Record<string, unknown> {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    for (const error of doc.errors) problems.push(`${fileName}: ${error.message.split('\n')[0]}`);
    return {};
  }
  const data: unknown = doc.toJS();
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    problems.push(`${fileName}: expected a mapping of sections at the top level`);
    return {};
  }
  const walk = (value: unknown, at: string): unknown => {
    if (typeof value === 'string') {
      const result = interpolate(value, env);
      for (const error of result.errors) problems.push(`${at}: ${error}`);
      sources[at] =
        result.variables.length > 0
          ? { kind: 'file', file: fileName, interpolated: result.variables }
          : { kind: 'file', file: fileName };
      return result.value;
    }
    if (Array.isArray(value)) {
      sources[at] = { kind: 'file', file: fileName };
      return value.map((item, index) => walk(item, `${at}[${index}]`));
    }
    if (value && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      // `key:` with nothing after it (e.g. a section whose keys are all commented out) means unset.
      for (const [key, item] of Object.entries(value))
        if (item !== null) out[key] = walk(item, at ? `${at}.${key}` : key);
      return out;
    }
    if (value !== null) sources[at] = { kind: 'file', file: fileName };
    return value;
  };
  return walk(data, '') as Record<string, unknown>;
}

function describeSource(source: ValueSource | undefined): string {
  switch (source?.kind) {
    case 'env':
      return ` (from the environment variable ${source.variable})`;
    case 'envFile':
      return ` (from ${source.variable} in ${source.file})`;
    case 'flag':
      return ` (from ${source.flag})`;
    default:
      return '';
  }
}

export function formatIssues(issues: readonly z.core.$ZodIssue[], sources: Record<string, ValueSource> = {}): string[] {
  const out: string[] = [];
  for (const issue of issues) {
    const at = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(configSchema, issue.path.map(String));
      for (const key of issue.keys) {
        const suggestion = didYouMean(key, known);
        out.push(`${at ? `${at}.` : ''}${key}: unknown key${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`);
      }
      continue;
    }
    let message = issue.message;
    if (issue.code === 'invalid_type' && /^Invalid input/.test(message)) message = `expected ${issue.expected}`;
    if (issue.code === 'invalid_union') message = unionMessage(issue) ?? message;
    out.push(`${at || '(top level)'}: ${message}${describeSource(sources[at])}`);
  }
  return out;
}

function unionMessage(issue: z.core.$ZodIssueInvalidUnion): string | undefined {
  for (const branch of issue.errors) {
    const custom = branch.find((i) => !/^Invalid input/.test(i.message));
    if (custom) return custom.message;
  }
  return undefined;
}

function setPath(target: Record<string, unknown>, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (!next || typeof next !== 'object' || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]!] = value;
}

export function leafPaths(value: unknown, prefix = ''): string[] {
  if (value && typeof value === 'object' && !Array.isArray(value) && !isSensitive(value)) {
    return Object.entries(value).flatMap(([key, item]) => leafPaths(item, prefix ? `${prefix}.${key}` : key));
  }
  return prefix ? [prefix] : [];
}

export function getPath(value: unknown, dotted: string): unknown {
  let node: unknown = value;
  for (const key of dotted.split('.')) {
    if (!node || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

function collectSecrets(value: unknown, into: Sensitive[]): void {
  if (isSensitive(value)) into.push(value);
  else if (value && typeof value === 'object') for (const item of Object.values(value)) collectSecrets(item, into);
}
