import { describe, expect, it } from 'vitest';
import { detectCompose } from '../../src/adapters/compose.js';
import type { DockerAdapter } from '../../src/adapters/docker.js';
import type { ExecAdapter, ExecResult } from '../../src/adapters/exec.js';
import type { FsAdapter } from '../../src/adapters/fs.js';
import type { HttpAdapter } from '../../src/adapters/http.js';
import type { NgrokSdk } from '../../src/adapters/ngrok.js';
import { createContext } from '../../src/cli/run.js';
import { Redactor } from '../../src/config/redact.js';
import { configSchema } from '../../src/config/schema.js';
import { renderDoctor, runDoctor } from '../../src/doctor/action.js';
import {
  exposedEnvFiles,
  finishCheck,
  parseVersion,
  planDoctorChecks,
  secretEnvKeys,
  socketsGuard,
} from '../../src/doctor/checks.js';
import { ConfigError } from '../../src/errors.js';
import { BufferStream, strictFake } from '../helpers/fakes.js';

const ok = (argv: string[], stdout: string, stderr = ''): ExecResult => ({
  argv,
  exitCode: 0,
  stdout,
  stderr,
  failed: false,
  timedOut: false,
  notFound: false,
});
const missing = (argv: string[]): ExecResult => ({
  argv,
  exitCode: undefined,
  stdout: '',
  stderr: '',
  failed: true,
  timedOut: false,
  notFound: true,
});

/** An exec fake that answers exactly the argv it was given and throws on any other. */
function execFake(answers: Record<string, ExecResult>, which: Record<string, string> = {}): ExecAdapter {
  return strictFake<ExecAdapter>('exec', {
    run: async (file, args) => {
      const key = [file, ...args].join(' ');
      const answer = answers[key];
      if (!answer) throw new Error(`unexpected exec: ${key}`);
      return answer;
    },
    which: async (name) => which[name],
  });
}

const healthyDocker = strictFake<DockerAdapter>('docker', {
  endpoint: 'unix:///var/run/docker.sock',
  ping: async () => {},
  version: async () => ({ version: '28.0.1', apiVersion: '1.48', minApiVersion: '1.24', os: 'linux', arch: 'amd64' }),
});

const tools = {
  'docker compose version --short': ok(['docker'], '2.29.1'),
  'docker-compose version --short': missing(['docker-compose']),
  'docker buildx version': ok(['docker'], 'github.com/docker/buildx 0.13.1+ds1 0.13.1+ds1-3'),
  'nginx -v': ok(['nginx'], '', 'nginx version: nginx/1.22.1'),
  'pg_dump --version': ok(['pg_dump'], 'pg_dump (PostgreSQL) 15.18'),
  'psql --version': ok(['psql'], 'psql (PostgreSQL) 15.18'),
};

function context(options: {
  exec: ExecAdapter;
  docker?: DockerAdapter;
  http?: HttpAdapter;
  fs?: FsAdapter;
  env?: Record<string, string>;
  configError?: ConfigError;
  ngrok?: () => Promise<NgrokSdk>;
}) {
  const ctx = createContext(
    {
      stdout: new BufferStream(),
      stderr: new BufferStream(),
      env: options.env ?? {},
      cwd: '/srv/app',
      argv: ['doctor'],
      adapters: {
        exec: options.exec,
        docker: async () => options.docker ?? healthyDocker,
        http: options.http ?? strictFake<HttpAdapter>('http', {}),
        // A project directory with no env files and no sockets directory yet.
        fs: options.fs ?? strictFake<FsAdapter>('fs', { listDir: async () => [], fileMode: async () => undefined }),
        ngrok: options.ngrok ?? (async () => strictFake<NgrokSdk>('ngrok', {})),
      },
    },
    { json: true, dryRun: false, quiet: true, verbose: false, color: false, set: [] },
    new Redactor(),
  );
  ctx.configError = options.configError;
  return ctx;
}

describe('doctor', () => {
  it('passes with a healthy machine; without an agent the ngrok check is the SDK loading; s3 is skipped when not configured', async () => {
    const ctx = context({ exec: execFake(tools) });
    const result = await runDoctor(ctx, { timeoutMs: 1000 });
    expect(Object.fromEntries(result.checks.map((c) => [c.name, c.status]))).toEqual({
      config: 'pass',
      docker: 'pass',
      compose: 'pass',
      buildx: 'pass',
      nginx: 'pass',
      pg_dump: 'pass',
      psql: 'pass',
      ngrok: 'pass',
      'env-files': 'pass',
      sockets: 'skip',
      s3: 'skip',
    });
    expect(result.checks.find((c) => c.name === 'ngrok')?.detail).toMatch(/in-process @ngrok\/ngrok SDK, which loads/);
    const noSdk = await runDoctor(
      context({
        exec: execFake(tools),
        ngrok: async () => {
          throw new Error('Cannot find module @ngrok/ngrok-linux-x64-gnu\nRequire stack: ...');
        },
      }),
      { timeoutMs: 1000 },
    );
    expect(noSdk.checks.find((c) => c.name === 'ngrok')).toMatchObject({
      status: 'warn',
      required: false,
      detail:
        'no ngrok agent binary, and the @ngrok/ngrok SDK does not load here: Cannot find module @ngrok/ngrok-linux-x64-gnu',
    });
    expect(result.checks.find((c) => c.name === 'compose')).toMatchObject({
      version: '2.29.1',
      detail: 'docker compose 2.29.1 (v2)',
    });
    expect(result.checks.find((c) => c.name === 'docker')).toMatchObject({
      version: '28.0.1',
      detail: expect.stringContaining('API 1.48'),
    });
  });

  it('buildx: its version, or a warning that builds fall back to the classic builder; required only for image.builder: buildkit', async () => {
    const result = await runDoctor(context({ exec: execFake(tools) }), { timeoutMs: 1000 });
    expect(result.checks.find((c) => c.name === 'buildx')).toMatchObject({
      status: 'pass',
      required: false,
      version: '0.13.1',
      detail: 'docker buildx 0.13.1: opskit build uses BuildKit',
    });
    const noBuildx = {
      ...tools,
      'docker buildx version': {
        ...missing(['docker']),
        notFound: false,
        exitCode: 1,
        stderr: "docker: 'buildx' is not a docker command.",
      },
    };
    const warned = await runDoctor(context({ exec: execFake(noBuildx) }), { timeoutMs: 1000 });
    expect(warned.checks.find((c) => c.name === 'buildx')).toMatchObject({
      status: 'warn',
      detail:
        "docker buildx does not answer (docker: 'buildx' is not a docker command.): opskit build falls back to the Engine's classic builder (no RUN --mount, heredocs or build secrets)",
      hint: expect.stringContaining('install the docker buildx plugin'),
    });
    expect(renderDoctor(warned).failure).toBeUndefined();
    const old = planDoctorChecks(configSchema.parse({}), {}, 500).find((c) => c.name === 'buildx')!;
    const oldCtx = context({
      exec: execFake({ 'docker buildx version': ok(['docker'], 'github.com/docker/buildx v0.10.4 c513d34') }),
    });
    expect(await old.run(oldCtx, configSchema.parse({}))).toMatchObject({
      status: 'fail',
      version: '0.10.4',
      detail: expect.stringContaining('older than 0.12'),
    });
    const classic = configSchema.parse({ image: { builder: 'classic' } });
    expect(
      await planDoctorChecks(classic, {}, 500)
        .find((c) => c.name === 'buildx')!
        .run(context({ exec: execFake({}) }), classic),
    ).toMatchObject({ status: 'skip' });
    const buildkit = configSchema.parse({ image: { builder: 'buildkit' } });
    expect(planDoctorChecks(buildkit, {}, 500).find((c) => c.name === 'buildx')!.required).toBe(true);
  });

  it('fails (exit 3) when the engine does not answer; a missing optional tool is only a warning', async () => {
    const deadDocker = strictFake<DockerAdapter>('docker', {
      endpoint: 'unix:///nope.sock',
      ping: async () => {
        throw new Error('connect ENOENT /nope.sock');
      },
    });
    const exec = execFake({ ...tools, 'pg_dump --version': missing(['pg_dump']) });
    const ctx = context({ exec, docker: deadDocker });
    ctx.loaded = undefined;
    const result = await runDoctor(ctx, { timeoutMs: 1000 });
    const docker = result.checks.find((c) => c.name === 'docker')!;
    expect(docker).toMatchObject({
      status: 'fail',
      required: true,
      detail: 'no Docker engine answers at unix:///nope.sock: connect ENOENT /nope.sock',
    });
    expect(result.checks.find((c) => c.name === 'pg_dump')).toMatchObject({
      status: 'warn',
      detail: 'pg_dump not found on PATH',
    });
    const outcome = renderDoctor(result);
    expect(outcome.failure?.exitCode).toBe(3);
    expect(outcome.failure?.message).toContain('docker');
  });

  it('reports an invalid config as a failed check and still runs the others', async () => {
    const error = new ConfigError('invalid configuration', {
      details: { problems: ['backup.retentionDays: expected a positive integer'] },
    });
    const result = await runDoctor(context({ exec: execFake(tools), configError: error }), { timeoutMs: 1000 });
    expect(result.checks[0]).toMatchObject({
      name: 'config',
      status: 'fail',
      detail: 'backup.retentionDays: expected a positive integer',
    });
    expect(result.checks.find((c) => c.name === 'docker')!.status).toBe('pass');
  });

  it('gives each check its own timeout, in parallel', async () => {
    const slowDocker = strictFake<DockerAdapter>('docker', {
      endpoint: 'tcp://10.255.255.1:2375',
      ping: () => new Promise(() => {}),
    });
    // A ping that never answers: without its own timeout the run would never end.
    const result = await runDoctor(context({ exec: execFake(tools), docker: slowDocker }), { timeoutMs: 300 });
    expect(result.checks.find((c) => c.name === 'docker')).toMatchObject({
      status: 'fail',
      detail: 'timed out after 300ms',
    });
  });

  it('runs its checks at once: each tool check waits until all of them have started', async () => {
    // A barrier: no exec answers until every tool check has called it. Checks run one after another
    // would never get past the first, and that one would time out instead of passing.
    const keys = Object.keys(tools);
    const started = new Set<string>();
    let release!: () => void;
    const all = new Promise<void>((resolve) => (release = resolve));
    const exec = strictFake<ExecAdapter>('exec', {
      run: async (file, args) => {
        const key = [file, ...args].join(' ');
        started.add(key);
        if (keys.every((k) => started.has(k))) release();
        await all;
        return tools[key as keyof typeof tools];
      },
      which: async () => undefined,
    });
    const result = await runDoctor(context({ exec }), { timeoutMs: 5000 });
    expect(started).toEqual(new Set(keys));
    for (const name of ['nginx', 'pg_dump', 'psql'])
      expect(result.checks.find((c) => c.name === name)?.status, name).toBe('pass');
  });

  it('checks S3 credentials and the endpoint when a bucket is configured', async () => {
    const config = configSchema.parse({ s3: { bucket: 'b', endpoint: 'http://127.0.0.1:9' } });
    const checks = planDoctorChecks(config, {}, 500);
    const s3 = checks.find((c) => c.name === 's3')!;
    expect(s3.required).toBe(true);
    const fs = strictFake<FsAdapter>('fs', { exists: async () => false });
    const noCreds = await s3.run(context({ exec: execFake({}), fs }), config);
    expect(noCreds).toMatchObject({ status: 'fail', detail: 'bucket b: no credentials found' });

    const env = { AWS_ACCESS_KEY_ID: 'AKIA1', AWS_SECRET_ACCESS_KEY: 'shh-secret' };
    const http = strictFake<HttpAdapter>('http', {
      request: async () => ({ status: 403, headers: {}, body: '', latencyMs: 1 }),
    });
    const reachable = await s3.run(context({ exec: execFake({}), http, env }), config);
    expect(reachable).toMatchObject({ status: 'pass', detail: expect.stringContaining('answered HTTP 403') });

    const refused = strictFake<HttpAdapter>('http', {
      request: async () => {
        throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
      },
    });
    expect(await s3.run(context({ exec: execFake({}), http: refused, env }), config)).toMatchObject({
      status: 'fail',
      detail: 'endpoint http://127.0.0.1:9 does not answer: ECONNREFUSED',
    });
  });

  it('requires an ngrok binary only when one is named', async () => {
    const config = configSchema.parse({});
    const named = planDoctorChecks(config, { NGROK_BIN: '/opt/ngrok' }, 500).find((c) => c.name === 'ngrok')!;
    expect(named.required).toBe(true);
    const result = await named.run(
      context({ exec: execFake({ '/opt/ngrok version': missing(['/opt/ngrok']) }) }),
      config,
    );
    expect(finishCheck(named, result, 1).status).toBe('fail');
  });
});

describe('doctor: secrets at rest (issue 15)', () => {
  const envText = [
    'POSTGRES_USER=app',
    'POSTGRES_PASSWORD=s3cret-pw',
    'DATABASE_URL=postgresql://app:s3cret-pw@db:5432/app',
    'REDIS_URL=redis://redis:6379/0',
    'AWS_ACCESS_KEY_ID=AKIA1',
    'NGROK_AUTHTOKEN=',
    'APP_ENV=production',
  ].join('\n');

  it('secretEnvKeys: secret names with a value, and URLs that carry a password; not an empty value, a key id or a plain URL', () => {
    expect(secretEnvKeys(envText)).toEqual(['POSTGRES_PASSWORD', 'DATABASE_URL']);
    expect(
      secretEnvKeys('# names only\nPOSTGRES_PASSWORD=\nAWS_SECRET_ACCESS_KEY=\nBASE_IMAGE=python:3.11-slim\n'),
    ).toEqual([]);
    expect(secretEnvKeys('export API_TOKEN="t0k3n"\nSENTRY_DSN=https://user:pw@sentry.example/1\n')).toEqual([
      'API_TOKEN',
      'SENTRY_DSN',
    ]);
  });

  it('exposedEnvFiles: a file with a secret and any group or other bit; owner-only files and files without secrets pass', () => {
    expect(
      exposedEnvFiles([
        { file: '.env', mode: 0o644, text: envText },
        { file: '.env.prod', mode: 0o640, text: 'AWS_SECRET_ACCESS_KEY=k' },
        { file: '.env.ci', mode: 0o602, text: 'API_TOKEN=t' },
        { file: '.env.staging', mode: 0o600, text: envText },
        { file: '.env.offline', mode: 0o644, text: 'NGINX_PORT=8080\n' },
        { file: '.env.example', mode: 0o644, text: 'POSTGRES_PASSWORD=\nDATABASE_URL=\n' },
      ]),
    ).toEqual([
      { file: '.env', mode: '0644', keys: ['POSTGRES_PASSWORD', 'DATABASE_URL'] },
      { file: '.env.prod', mode: '0640', keys: ['AWS_SECRET_ACCESS_KEY'] },
      { file: '.env.ci', mode: '0602', keys: ['API_TOKEN'] },
    ]);
  });

  /** A project directory of env files (name -> [mode, text]); the sockets directory does not exist. */
  function projectFs(files: Record<string, [number, string]>): FsAdapter {
    const at = (file: string) => files[file.replace(/^\/srv\/app\//, '')];
    return strictFake<FsAdapter>('fs', {
      listDir: async (dir) => (dir === '/srv/app' ? [...Object.keys(files), 'opskit.yaml', 'run'].sort() : []),
      fileMode: async (file) => at(file)?.[0],
      readText: async (file) => at(file)?.[1],
    });
  }

  it('the env-files check warns (never fails the run), naming each file, its mode, its secrets, and the chmod that fixes it', async () => {
    const fs = projectFs({
      '.env': [0o644, envText],
      '.env.prod': [0o600, envText],
      '.env.example': [0o644, 'POSTGRES_PASSWORD=\n'],
    });
    const result = await runDoctor(context({ exec: execFake(tools), fs }), { timeoutMs: 1000 });
    const check = result.checks.find((c) => c.name === 'env-files')!;
    expect(check).toMatchObject({
      status: 'warn',
      required: false,
      detail: '.env is 0644, open to group or others, and holds POSTGRES_PASSWORD, DATABASE_URL',
      hint: 'chmod 600 .env',
    });
    expect(renderDoctor(result).failure).toBeUndefined();
    expect(JSON.stringify(check)).not.toContain('s3cret-pw');

    const fixed = await runDoctor(
      context({ exec: execFake(tools), fs: projectFs({ '.env': [0o600, envText], '.env.prod': [0o400, envText] }) }),
      { timeoutMs: 1000 },
    );
    expect(fixed.checks.find((c) => c.name === 'env-files')).toMatchObject({
      status: 'pass',
      detail: 'owner only: .env (0600), .env.prod (0400)',
    });
  });

  it('socketsGuard: the first directory from / down that others cannot pass, or none', () => {
    const chain = (run: number) => [
      { dir: '/', mode: 0o755 },
      { dir: '/srv', mode: 0o755 },
      { dir: '/srv/app', mode: 0o755 },
      { dir: '/srv/app/run', mode: run },
      { dir: '/srv/app/run/sockets', mode: 0o1777 },
    ];
    expect(socketsGuard(chain(0o700))).toEqual({ dir: '/srv/app/run', mode: '0700' });
    expect(socketsGuard(chain(0o750))).toEqual({ dir: '/srv/app/run', mode: '0750' });
    expect(socketsGuard(chain(0o755))).toBeUndefined();
    expect(socketsGuard(chain(0o1777))).toBeUndefined();
  });

  it('the sockets check warns when other users can reach the sockets, with the fix for the layout it finds', async () => {
    const modes: Record<string, number> = {
      '/': 0o755,
      '/srv': 0o755,
      '/srv/app': 0o755,
      '/srv/app/run': 0o755,
      '/srv/app/run/sockets': 0o1777,
    };
    const fs = (listing: string[]) =>
      strictFake<FsAdapter>('fs', {
        fileMode: async (file) => modes[file],
        listDir: async (dir) => (dir === '/srv/app/run' ? listing : []),
      });
    const config = configSchema.parse({});
    const check = planDoctorChecks(config, {}, 500).find((c) => c.name === 'sockets')!;
    expect(check.required).toBe(false);
    expect(await check.run(context({ exec: execFake({}), fs: fs(['sockets']) }), config)).toMatchObject({
      status: 'fail',
      detail:
        "other local users can connect to the app's socket in run/sockets and create files there: every directory down to it lets them pass",
      hint: 'chmod o-rwx run',
    });
    expect(
      (await check.run(context({ exec: execFake({}), fs: fs(['sockets', 'web-old.sock']) }), config)).hint,
    ).toContain('paths.sockets: run/sockets');
    modes['/srv/app/run'] = 0o700;
    expect(await check.run(context({ exec: execFake({}), fs: fs(['sockets']) }), config)).toMatchObject({
      status: 'pass',
      detail: 'other users cannot pass run (0700) to reach run/sockets',
    });
    const reload = configSchema.parse({ cutover: { switch: 'reload' } });
    expect(await check.run(context({ exec: execFake({}) }), reload)).toMatchObject({ status: 'skip' });
  });
});

describe('detectCompose', () => {
  it('prefers v2, falls back to v1, and honours the config', async () => {
    const v1Only = execFake({
      'docker compose version --short': { ...missing(['docker']), notFound: false },
      'docker-compose version --short': ok(['docker-compose'], '1.29.2'),
    });
    expect(await detectCompose(v1Only, 'auto', 100)).toEqual({
      flavor: 'v1',
      version: '1.29.2',
      file: 'docker-compose',
      prefix: [],
    });
    expect(await detectCompose(v1Only, 'v2', 100)).toBeUndefined();
  });
  it('parses versions', () => {
    expect(parseVersion('nginx version: nginx/1.22.1')).toBe('1.22.1');
    expect(parseVersion('Docker Compose version v2.29.1')).toBe('2.29.1');
  });
});
