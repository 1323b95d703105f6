import type { ChalkInstance } from 'chalk';
import { isSensitive } from '../sensitive.js';
import { getPath, type LoadedConfig, leafPaths, type ValueSource } from './load.js';

export interface ConfigReport {
  file: string | null;
  root: string;
  envFiles: string[];
  config: unknown;
  sources: Record<string, string>;
}

export function describeSource(source: ValueSource): string {
  switch (source.kind) {
    case 'default':
      return 'default';
    case 'file':
      return source.interpolated?.length ? `${source.file} (\${${source.interpolated.join('}, ${')}})` : source.file;
    case 'envFile':
      return `${source.file} (${source.variable})`;
    case 'env':
      return `env ${source.variable}`;
    case 'flag':
      return `flag ${source.flag}`;
  }
}

/** Pure: the report of `opskit config`. Secrets stay Sensitive here; every renderer shows them redacted. */
export function describeConfig(loaded: LoadedConfig): ConfigReport {
  const sources: Record<string, string> = {};
  for (const leaf of leafPaths(loaded.config)) {
    const source = loaded.sources[leaf];
    if (source) sources[leaf] = describeSource(source);
  }
  return { file: loaded.file ?? null, root: loaded.root, envFiles: loaded.envFiles, config: loaded.config, sources };
}

function show(value: unknown): string {
  if (isSensitive(value)) return value.toString();
  if (typeof value === 'string') return value === '' ? '""' : value;
  return JSON.stringify(value);
}

export function renderConfig(report: ConfigReport, options: { verbose: boolean; colour: ChalkInstance }): string {
  const { colour } = options;
  const lines = [
    `${colour.bold('config file')}  ${report.file ?? '(none: defaults, env and flags only)'}`,
    `${colour.bold('project dir')}  ${report.root}`,
    `${colour.bold('env files')}    ${report.envFiles.length ? report.envFiles.join(', ') : '(none)'}`,
    '',
  ];
  const leaves = leafPaths(report.config);
  const width = Math.max(...leaves.map((l) => l.length));
  const valueWidth = Math.min(48, Math.max(...leaves.map((l) => show(getPath(report.config, l)).length)));
  for (const leaf of leaves) {
    const value = show(getPath(report.config, leaf));
    const source = report.sources[leaf] ?? 'default';
    const line = `${leaf.padEnd(width)}  ${options.verbose ? value.padEnd(valueWidth) : value}`;
    lines.push(options.verbose ? `${line}  ${colour.dim(source)}` : line);
  }
  return lines.join('\n');
}
