import type { NgrokSdk } from '../../src/tunnel/drivers.js';
import { describe, expect, it } from 'vitest';
import type { DockerAdapter } from '../../src/adapters/docker.js';
import type { ExecAdapter, ExecResult } from '../../src/adapters/exec.js';
import type { FsAdapter } from '../../src/adapters/fs.js';
import type { HttpAdapter } from '../../src/adapters/http.js';
import { createContext } from '../../src/cli/run.js';
import { Redactor } from '../../src/config/redact.js';
import { configSchema } from '../../src/config/schema.js';
import { ConfigError } from '../../src/errors.js';
import { renderDoctor, runDoctor } from '../../src/doctor/action.js';
import { detectCompose } from '../../src/adapters/compose.js';
import { finishCheck, parseVersion, planDoctorChecks } from '../../src/doctor/checks.js';
import { BufferStream, strictFake } from '../helpers/fakes.js';

const ok = (argv: string[], stdout: string, stderr = ''): ExecResult => ({ argv, exitCode: 0, stdout, stderr, failed: false, timedOut: false, notFound: false });
const missing = (argv: string[]): ExecResult => ({ argv, exitCode: undefined, stdout: '', stderr: '', failed: true, timedOut: false, notFound: true });

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
  'nginx -v': ok(['nginx'], '', 'nginx version: nginx/1.22.1'),
  'pg_dump --version': ok(['pg_dump'], 'pg_dump (PostgreSQL) 15.18'),
  'psql --version': ok(['psql'], 'psql (PostgreSQL) 15.18'),
};

function context(options: { exec: ExecAdapter; docker?: DockerAdapter; http?: HttpAdapter; fs?: FsAdapter; env?: Record<string, string>; configError?: ConfigError; ngrok?: () => Promise<NgrokSdk> }) {
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
        fs: options.fs ?? strictFake<FsAdapter>('fs', {}),
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
      nginx: 'pass',
      pg_dump: 'pass',
      psql: 'pass',
      ngrok: 'pass',
      s3: 'skip',
    });
    expect(result.checks.find((c) => c.name === 'ngrok')?.detail).toMatch(/in-process @ngrok\/ngrok SDK, which loads/);
    const noSdk = await runDoctor(context({ exec: execFake(tools), ngrok: async () => { throw new Error('Cannot find module @ngrok/ngrok-linux-x64-gnu\nRequire stack: ...'); } }), { timeoutMs: 1000 });
    expect(noSdk.checks.find((c) => c.name === 'ngrok')).toMatchObject({ status: 'warn', required: false, detail: 'no ngrok agent binary, and the @ngrok/ngrok SDK does not load here: Cannot find module @ngrok/ngrok-linux-x64-gnu' });
    expect(result.checks.find((c) => c.name === 'compose')).toMatchObject({ version: '2.29.1', detail: 'docker compose 2.29.1 (v2)' });
    expect(result.checks.find((c) => c.name === 'docker')).toMatchObject({ version: '28.0.1', detail: expect.stringContaining('API 1.48') });
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
    expect(docker).toMatchObject({ status: 'fail', required: true, detail: 'no Docker engine answers at unix:///nope.sock: connect ENOENT /nope.sock' });
    expect(result.checks.find((c) => c.name === 'pg_dump')).toMatchObject({ status: 'warn', detail: 'pg_dump not found on PATH' });
    const outcome = renderDoctor(result);
    expect(outcome.failure?.exitCode).toBe(3);
    expect(outcome.failure?.message).toContain('docker');
  });

  it('reports an invalid config as a failed check and still runs the others', async () => {
    const error = new ConfigError('invalid configuration', { details: { problems: ['backup.retentionDays: expected a positive integer'] } });
    const result = await runDoctor(context({ exec: execFake(tools), configError: error }), { timeoutMs: 1000 });
    expect(result.checks[0]).toMatchObject({ name: 'config', status: 'fail', detail: 'backup.retentionDays: expected a positive integer' });
    expect(result.checks.find((c) => c.name === 'docker')!.status).toBe('pass');
  });

  it('gives each check its own timeout, in parallel', async () => {
    const slowDocker = strictFake<DockerAdapter>('docker', { endpoint: 'tcp://10.255.255.1:2375', ping: () => new Promise(() => {}) });
    // A ping that never answers: without its own timeout the run would never end.
    const result = await runDoctor(context({ exec: execFake(tools), docker: slowDocker }), { timeoutMs: 300 });
    expect(result.checks.find((c) => c.name === 'docker')).toMatchObject({ status: 'fail', detail: 'timed out after 300ms' });
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
    const http = strictFake<HttpAdapter>('http', { request: async () => ({ status: 403, headers: {}, body: '', latencyMs: 1 }) });
    const reachable = await s3.run(context({ exec: execFake({}), http, env }), config);
    expect(reachable).toMatchObject({ status: 'pass', detail: expect.stringContaining('answered HTTP 403') });

    const refused = strictFake<HttpAdapter>('http', {
      request: async () => {
        throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
      },
    });
    expect(await s3.run(context({ exec: execFake({}), http: refused, env }), config)).toMatchObject({ status: 'fail', detail: 'endpoint http://127.0.0.1:9 does not answer: ECONNREFUSED' });
  });

  it('requires an ngrok binary only when one is named', async () => {
    const config = configSchema.parse({});
    const named = planDoctorChecks(config, { NGROK_BIN: '/opt/ngrok' }, 500).find((c) => c.name === 'ngrok')!;
    expect(named.required).toBe(true);
    const result = await named.run(context({ exec: execFake({ '/opt/ngrok version': missing(['/opt/ngrok']) }) }), config);
    expect(finishCheck(named, result, 1).status).toBe('fail');
  });
});

describe('detectCompose', () => {
  it('prefers v2, falls back to v1, and honours the config', async () => {
    const v1Only = execFake({ 'docker compose version --short': { ...missing(['docker']), notFound: false }, 'docker-compose version --short': ok(['docker-compose'], '1.29.2') });
    expect(await detectCompose(v1Only, 'auto', 100)).toEqual({ flavor: 'v1', version: '1.29.2', file: 'docker-compose', prefix: [] });
    expect(await detectCompose(v1Only, 'v2', 100)).toBeUndefined();
  });
  it('parses versions', () => {
    expect(parseVersion('nginx version: nginx/1.22.1')).toBe('1.22.1');
    expect(parseVersion('Docker Compose version v2.29.1')).toBe('2.29.1');
  });
});
