import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ContainerInfo, DockerAdapter } from '../../src/adapters/docker.js';
import type { ExecAdapter, ExecOptions, ExecResult } from '../../src/adapters/exec.js';
import { nodeFs } from '../../src/adapters/fs.js';
import type { HttpAdapter } from '../../src/adapters/http.js';
import { createContext } from '../../src/cli/run.js';
import { loadConfig } from '../../src/config/load.js';
import { Redactor } from '../../src/config/redact.js';
import { runDeploy } from '../../src/deploy/action.js';
import { BufferStream, manualClock, strictFake } from '../helpers/fakes.js';

const ok = (stdout = ''): ExecResult => ({
  argv: [],
  exitCode: 0,
  stdout,
  stderr: '',
  failed: false,
  timedOut: false,
  notFound: false,
});
const fail = (stderr: string): ExecResult => ({
  argv: [],
  exitCode: 1,
  stdout: '',
  stderr,
  failed: true,
  timedOut: false,
  notFound: false,
});

function healthy(service: string, imageId = 'sha256:db'): ContainerInfo {
  return {
    id: service,
    name: `shop_${service}_1`,
    image: 'x',
    imageId,
    labels: {},
    state: 'running',
    running: true,
    exitCode: 0,
    restartCount: 0,
    health: 'healthy',
    healthLog: [],
    addresses: { net: '10.0.0.9' },
    startedAt: '',
    mounts: [],
  };
}

async function setup(answers: Record<string, (options?: ExecOptions) => ExecResult>) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'opskit-deploy-'));
  mkdirSync(path.join(dir, 'compose'));
  writeFileSync(path.join(dir, 'compose/docker-compose.prod.yml'), 'services: {}\n');
  writeFileSync(path.join(dir, 'opskit.yaml'), 'project:\n  name: shop\n');
  mkdirSync(path.join(dir, 'nginx'));
  writeFileSync(path.join(dir, 'nginx/nginx.conf'), 'events {}\nhttp { include upstream/web.conf; }\n');
  const calls: string[] = [];
  // nginx runs once the deploy has started it.
  let nginxUp = false;
  const exec = strictFake<ExecAdapter>('exec', {
    run: async (file, args, options) => {
      const key = [file, ...args].join(' ').replace(` -p shop -f ${dir}/compose/docker-compose.prod.yml`, '');
      calls.push(key);
      const answer = answers[key];
      if (!answer) throw new Error(`unexpected exec: ${key}`);
      if (key.endsWith('up -d --no-deps nginx')) nginxUp = true;
      return answer(options);
    },
    which: async (name) => `/usr/bin/${name}`,
  });
  const docker = strictFake<DockerAdapter>('docker', {
    endpoint: 'unix:///var/run/docker.sock',
    inspectImage: async (ref) =>
      ref === 'shop:latest'
        ? { id: 'sha256:new', tags: [ref], sizeBytes: 1, user: 'appuser', created: '', labels: {} }
        : undefined,
    listContainers: async (labels) => {
      const service = labels['com.docker.compose.service']!;
      const c = healthy(service, service === 'web' ? 'sha256:new' : 'sha256:db');
      return [service === 'nginx' && !nginxUp ? { ...c, running: false, state: 'created', health: 'none' } : c];
    },
    containerLogs: async () => 'log line',
    watchContainers: async () => () => {},
  });
  const http = strictFake<HttpAdapter>('http', {
    request: async () => ({ status: 200, headers: {}, body: '{"status":"ok"}', latencyMs: 1 }),
  });
  const stderr = new BufferStream();
  const ctx = createContext(
    {
      stdout: new BufferStream(),
      stderr,
      env: {},
      cwd: dir,
      argv: ['deploy'],
      adapters: { exec, docker: async () => docker, http, clock: manualClock() },
    },
    { json: false, dryRun: false, quiet: false, verbose: false, color: false, set: [] },
    new Redactor(),
  );
  ctx.loaded = await loadConfig(nodeFs, { cwd: dir, processEnv: {} });
  return { ctx, calls, dir, stderr };
}

const common = {
  'docker compose version --short': () => fail('not a docker command'),
  'docker-compose version --short': () => ok('1.29.2'),
  'docker-compose up -d db redis': () => ok(),
};

describe('runDeploy against strict fakes', () => {
  it('a failed migration never starts the web service, and exits 1 with its output', async () => {
    const { ctx, calls, dir } = await setup({
      ...common,
      'docker-compose run --rm --no-deps -T web python3 migrate.py': (options) => {
        options?.onLine?.('migrate: 0003_bad failed: relation "nope" does not exist', 'stderr');
        return fail('migrate: 0003_bad failed');
      },
    });
    const error = await runDeploy(ctx, { skipMigrations: false }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'E_MIGRATION_FAILED', exitCode: 1 });
    expect((error as Error).message).toContain('relation "nope" does not exist');
    expect((error as Error).message).toContain('web was not started');
    expect(calls.some((c) => c.includes('up -d --no-deps web'))).toBe(false);
    expect(existsSync(path.join(dir, '.opskit/state.json'))).toBe(false);
    const audit = JSON.parse(readFileSync(path.join(dir, 'logs/opskit-audit.jsonl'), 'utf8'));
    expect(audit).toMatchObject({
      command: 'deploy',
      outcome: 'failed',
      exitCode: 1,
      error: { code: 'E_MIGRATION_FAILED' },
    });
  });

  it('runs every step in order and records the deployment', async () => {
    const { ctx, calls, dir } = await setup({
      ...common,
      'docker-compose run --rm --no-deps -T web python3 migrate.py': (options) => {
        expect(options?.env?.WEB_IMAGE).toBe('shop:latest');
        return ok('{"ok": true, "applied": ["0001", "0002"], "alreadyApplied": []}');
      },
      'docker-compose up -d --no-deps web': (options) => {
        expect(options?.env?.WEB_IMAGE).toBe('shop:latest');
        // What the new container's gunicorn does on start: bind its socket in the shared directory.
        writeFileSync(path.join(dir, 'run', 'sockets', 'web-web.sock'), '');
        return ok();
      },
      'docker-compose up -d --no-deps nginx': () => {
        // nginx starts with live.sock already pointing at the new web container, and an upstream naming it.
        expect(readlinkSync(path.join(dir, 'run', 'sockets', 'live.sock'))).toBe('web-web.sock');
        expect(readFileSync(path.join(dir, 'nginx', 'upstream', 'web.conf'), 'utf8')).toContain(
          'server unix:/run/opskit/live.sock',
        );
        return ok();
      },
    });
    const result = await runDeploy(ctx, { skipMigrations: false });
    expect(calls.filter((c) => !c.includes('version'))).toEqual([
      'docker-compose up -d db redis',
      'docker-compose run --rm --no-deps -T web python3 migrate.py',
      'docker-compose up -d --no-deps web',
      'docker-compose up -d --no-deps nginx',
    ]);
    expect(result).toMatchObject({
      changed: true,
      image: 'shop:latest',
      imageId: 'sha256:new',
      migrations: { ran: true, applied: ['0001', '0002'] },
      web: { address: '10.0.0.9' },
    });
    const state = JSON.parse(readFileSync(path.join(dir, '.opskit/state.json'), 'utf8'));
    expect(state.deploy.current).toMatchObject({
      image: 'shop:latest',
      imageId: 'sha256:new',
      migrationsApplied: ['0001', '0002'],
    });

    // The same image again, everything healthy: no compose call at all.
    calls.length = 0;
    const again = await runDeploy(ctx, { skipMigrations: false });
    expect(again.changed).toBe(false);
    expect(calls.filter((c) => !c.includes('version'))).toEqual([]);
  });

  it('a missing image is exit 2 before anything starts', async () => {
    const { ctx, calls } = await setup({ ...common });
    await expect(runDeploy(ctx, { skipMigrations: false, tag: 'nope' })).rejects.toMatchObject({
      code: 'E_IMAGE_NOT_FOUND',
      exitCode: 2,
    });
    expect(calls.filter((c) => !c.includes('version'))).toEqual([]);
  });

  it('runs a before-migrate hook first, and its failure aborts the deploy', async () => {
    const { ctx, calls } = await setup({ ...common });
    let callsBeforeHook = -1;
    const failing = {
      name: 'backup',
      run: async () => {
        callsBeforeHook = calls.filter((c) => !c.includes('version')).length;
        throw new Error('backup failed');
      },
    };
    await expect(runDeploy(ctx, { skipMigrations: false, hooks: [failing] })).rejects.toThrow('backup failed');
    expect(callsBeforeHook).toBe(1); // after the dependencies started, before anything else
    expect(calls.some((c) => c.includes('migrate.py'))).toBe(false);
  });
});
