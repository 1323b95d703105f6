import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeFs } from '../../src/adapters/fs.js';
import { layerEnv } from '../../src/config/envfiles.js';
import { loadConfig, resolveConfig } from '../../src/config/load.js';
import { didYouMean } from '../../src/config/suggest.js';
import { ConfigError } from '../../src/errors.js';
import { Sensitive } from '../../src/sensitive.js';

const base = { fileName: 'opskit.yaml', envSources: {}, flags: [], projectDir: '/srv/My App' };

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).exitCode).toBe(2);
    return ((error as ConfigError).details as { problems: string[] }).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('resolveConfig', () => {
  it('fills every default and names the project after its directory', () => {
    const { config, sources } = resolveConfig({ ...base, fileText: undefined, fileName: undefined, env: {} });
    expect(config.project.name).toBe('my-app');
    expect(config.backup.retentionDays).toBe(30);
    expect(config.compose.cli).toBe('auto');
    expect(sources['backup.retentionDays']).toEqual({ kind: 'default' });
  });

  it('applies the precedence flags > env > env files > file > defaults', () => {
    const fileText =
      'backup:\n  retentionDays: 10\n  dir: from-file\ns3:\n  region: eu-west-1\n  bucket: file-bucket\n';
    const env = { OPSKIT_S3_BUCKET: 'env-bucket', AWS_REGION: 'us-west-2' };
    const envSources = {
      OPSKIT_S3_BUCKET: { kind: 'env' as const },
      AWS_REGION: { kind: 'envFile' as const, file: '.env.prod' },
    };
    const flags = [{ path: 'backup.retentionDays', flag: '--set backup.retentionDays', value: '7' }];
    const { config, sources } = resolveConfig({ ...base, fileText, env, envSources, flags });
    expect(config.backup.retentionDays).toBe(7);
    expect(sources['backup.retentionDays']).toEqual({ kind: 'flag', flag: '--set backup.retentionDays' });
    expect(config.s3.bucket).toBe('env-bucket');
    expect(sources['s3.bucket']).toEqual({ kind: 'env', variable: 'OPSKIT_S3_BUCKET' });
    expect(config.s3.region).toBe('us-west-2');
    expect(sources['s3.region']).toEqual({ kind: 'envFile', file: '.env.prod', variable: 'AWS_REGION' });
    expect(config.backup.dir).toBe('from-file');
    expect(sources['backup.dir']).toEqual({ kind: 'file', file: 'opskit.yaml' });
  });

  it('takes every number from a --set flag as text, the backup part size and gzip level too', () => {
    const flags = [
      { path: 'backup.partSizeMiB', flag: '--set backup.partSizeMiB', value: '8' },
      { path: 'backup.gzipLevel', flag: '--set backup.gzipLevel', value: '1' },
    ];
    const { config } = resolveConfig({ ...base, fileText: undefined, fileName: undefined, env: {}, flags });
    expect(config.backup).toMatchObject({ partSizeMiB: 8, gzipLevel: 1 });
    expect(() =>
      resolveConfig({
        ...base,
        fileText: undefined,
        fileName: undefined,
        env: {},
        flags: [{ ...flags[0]!, value: '4' }],
      }),
    ).toThrow(/backup\.partSizeMiB/);
  });

  it('interpolates ${VAR} in file values and records which variables', () => {
    const { config, sources } = resolveConfig({
      ...base,
      fileText: 'database:\n  url: ${DB_URL}\ns3:\n  prefix: ${P:-backups/}\n',
      env: { DB_URL: 'postgresql://u:pw1234@h/d' },
    });
    expect(config.database.url).toBeInstanceOf(Sensitive);
    expect(config.database.url!.reveal()).toBe('postgresql://u:pw1234@h/d');
    expect(String(config.database.url)).toBe('postgresql://u:***@h/d');
    expect(config.s3.prefix).toBe('backups/');
    expect(sources['database.url']).toEqual({ kind: 'file', file: 'opskit.yaml', interpolated: ['DB_URL'] });
  });

  it('reports every problem with its path, unknown keys with a did-you-mean', () => {
    const fileText =
      'backup:\n  retentionDays: -1\n  retentiondays: 3\ns3:\n  bukcet: b\ncompose:\n  cli: v3\ndatabse: {}\n';
    expect(problemsOf(() => resolveConfig({ ...base, fileText, env: {} }))).toEqual([
      'compose.cli: expected one of auto, v2, v1',
      's3.bukcet: unknown key (did you mean "bucket"?)',
      'backup.retentionDays: expected a positive integer',
      'backup.retentiondays: unknown key (did you mean "retentionDays"?)',
      'databse: unknown key (did you mean "database"?)',
    ]);
  });

  it('names the environment variable behind a bad value', () => {
    expect(
      problemsOf(() =>
        resolveConfig({
          ...base,
          fileText: undefined,
          fileName: undefined,
          env: { OPSKIT_COMPOSE_CLI: 'v9' },
          envSources: { OPSKIT_COMPOSE_CLI: { kind: 'env' } },
        }),
      ),
    ).toEqual(['compose.cli: expected one of auto, v2, v1 (from the environment variable OPSKIT_COMPOSE_CLI)']);
  });

  it('reports unset interpolations and YAML syntax errors', () => {
    expect(problemsOf(() => resolveConfig({ ...base, fileText: 's3:\n  bucket: ${BUCKET}\n', env: {} }))).toEqual([
      's3.bucket: ${BUCKET} is not set',
    ]);
    expect(problemsOf(() => resolveConfig({ ...base, fileText: 's3: [unclosed\n', env: {} }))[0]).toMatch(
      /^opskit\.yaml: /,
    );
    expect(problemsOf(() => resolveConfig({ ...base, fileText: '- a\n- b\n', env: {} }))).toEqual([
      'opskit.yaml: expected a mapping of sections at the top level',
    ]);
  });

  it('treats an empty section (all keys commented out) as defaults', () => {
    const { config } = resolveConfig({ ...base, fileText: 'docker:\nngrok:\n', env: {} });
    expect(config.docker).toEqual({});
  });

  it('rejects a --set of an unknown key with a suggestion', () => {
    expect(
      problemsOf(() =>
        resolveConfig({
          ...base,
          fileText: undefined,
          fileName: undefined,
          env: {},
          flags: [{ path: 'backup.retentionDay', flag: '--set backup.retentionDay', value: '3' }],
        }),
      ),
    ).toEqual(['backup.retentionDay: unknown key (did you mean "retentionDays"?)']);
  });
});

describe('layerEnv', () => {
  it('layers .env < .env.NAME < process env and remembers each source', () => {
    const env = layerEnv(
      [
        { file: '.env', text: 'A=1\nB=1\nC=1\n' },
        { file: '.env.prod', text: 'B=2\nC=2\n' },
      ],
      { C: '3' },
    );
    expect(env.values).toMatchObject({ A: '1', B: '2', C: '3' });
    expect(env.sources.A).toEqual({ kind: 'envFile', file: '.env' });
    expect(env.sources.B).toEqual({ kind: 'envFile', file: '.env.prod' });
    expect(env.sources.C).toEqual({ kind: 'env' });
  });
});

describe('loadConfig (real files)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'opskit-config-'));
  writeFileSync(
    path.join(dir, 'opskit.yaml'),
    'database:\n  url: ${DATABASE_URL}\nbackup:\n  retentionDays: ${KEEP:-14}\n',
  );
  writeFileSync(path.join(dir, '.env'), 'DATABASE_URL=postgresql://app:base-pass@db/app\nKEEP=5\n');
  writeFileSync(path.join(dir, '.env.staging'), 'DATABASE_URL=postgresql://app:staging-pass@db/app\n');

  it('reads .env then .env.NAME from the config file directory', async () => {
    const loaded = await loadConfig(nodeFs, {
      cwd: os.tmpdir(),
      configPath: path.join(dir, 'opskit.yaml'),
      envName: 'staging',
      processEnv: {},
    });
    expect(loaded.root).toBe(dir);
    expect(loaded.envFiles).toEqual(['.env', '.env.staging']);
    expect(loaded.config.database.url!.reveal()).toBe('postgresql://app:staging-pass@db/app');
    expect(loaded.config.backup.retentionDays).toBe(5);
    expect(loaded.sources['database.url']).toEqual({ kind: 'envFile', file: '.env.staging', variable: 'DATABASE_URL' });
    expect(loaded.secrets.map((s) => s.reveal())).toContain('postgresql://app:staging-pass@db/app');
  });

  it('the process environment beats the env files', async () => {
    const loaded = await loadConfig(nodeFs, { cwd: dir, envName: 'staging', processEnv: { KEEP: '9' } });
    expect(loaded.config.backup.retentionDays).toBe(9);
  });

  it('an explicit -c that does not exist, or a missing .env.NAME, is a config error', async () => {
    await expect(loadConfig(nodeFs, { cwd: dir, configPath: 'nope.yaml', processEnv: {} })).rejects.toMatchObject({
      code: 'E_CONFIG_NOT_FOUND',
      exitCode: 2,
    });
    await expect(loadConfig(nodeFs, { cwd: dir, envName: 'prod', processEnv: {} })).rejects.toMatchObject({
      code: 'E_ENV_FILE_NOT_FOUND',
      exitCode: 2,
    });
  });

  it('without any file, flags and env suffice', async () => {
    const empty = mkdtempSync(path.join(os.tmpdir(), 'opskit-empty-'));
    const loaded = await loadConfig(nodeFs, { cwd: empty, processEnv: { DATABASE_URL: 'postgresql://u:x9x9@h/d' } });
    expect(loaded.file).toBeUndefined();
    expect(loaded.config.database.url!.reveal()).toBe('postgresql://u:x9x9@h/d');
  });
});

describe('didYouMean', () => {
  it('suggests only close words', () => {
    expect(didYouMean('retentiondays', ['dir', 'retentionDays'])).toBe('retentionDays');
    expect(didYouMean('zzz', ['dir', 'retentionDays'])).toBeUndefined();
  });
});
