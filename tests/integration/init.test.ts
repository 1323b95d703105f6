import { chmodSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { opskit, tempDir } from '../helpers/cli.js';
import { bindMounts, composeArgs } from '../helpers/compose.js';
import { docker, removeLabelled, TEST_LABEL, uniqueName } from '../helpers/docker.js';

const composeEnv = { POSTGRES_PASSWORD: 'init-test-pw', DATABASE_URL: 'postgresql://app:init-test-pw@db:5432/app' };

describe('what opskit init renders, checked by the real tools', () => {
  const dir = tempDir('opskit-init-');
  const run = uniqueName('init');
  beforeAll(async () => {
    const r = await opskit(['init'], { cwd: dir });
    expect(r.exitCode).toBe(0);
  });
  afterAll(async () => {
    await removeLabelled(run);
  });

  it('docker-compose config accepts the compose file: db, redis, web, nginx, each with a full healthcheck', async () => {
    const r = await execa(
      ...composeArgs(['-p', 'initcheck', '-f', path.join(dir, 'compose/docker-compose.prod.yml'), 'config']),
      { env: composeEnv, reject: false },
    );
    expect(r.stderr).not.toMatch(/ERROR/);
    expect(r.exitCode).toBe(0);
    const config = parse(r.stdout) as { services: Record<string, { healthcheck?: Record<string, unknown> }> };
    expect(Object.keys(config.services).sort()).toEqual(['db', 'nginx', 'redis', 'web']);
    for (const [name, service] of Object.entries(config.services)) {
      expect(service.healthcheck, name).toMatchObject({
        test: expect.any(Array),
        interval: expect.any(String),
        timeout: expect.any(String),
        retries: expect.any(Number),
        start_period: expect.any(String),
      });
    }
  });

  it('the compose file mounts paths.sockets (run/sockets, inside the private run/) at /run/opskit in web and nginx', async () => {
    const config = await opskit(['config', '--json'], { cwd: dir });
    expect(config.exitCode).toBe(0);
    const sockets = (JSON.parse(config.stdout) as { config: { paths: { sockets: string } } }).config.paths.sockets;
    expect(sockets).toBe('run/sockets');
    const r = await execa(
      ...composeArgs(['-p', 'initcheck', '-f', path.join(dir, 'compose/docker-compose.prod.yml'), 'config']),
      { env: composeEnv, reject: false },
    );
    expect(r.exitCode).toBe(0);
    const services = (parse(r.stdout) as { services: Record<string, Parameters<typeof bindMounts>[0]> }).services;
    for (const name of ['web', 'nginx'])
      expect(bindMounts(services[name]!), name).toContain(`${path.join(dir, sockets)}:/run/opskit`);
  });

  it('docker-compose config refuses to run without the secrets it needs, naming them', async () => {
    const r = await execa(
      ...composeArgs(['-p', 'initcheck', '-f', path.join(dir, 'compose/docker-compose.prod.yml'), 'config']),
      { env: { DATABASE_URL: 'x' }, extendEnv: false, reject: false },
    );
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain('set POSTGRES_PASSWORD in .env');
  });

  it('nginx -t accepts the nginx config (real nginx, in the nginx image the compose file runs)', async () => {
    const r = await docker(
      [
        'run',
        '--rm',
        '--label',
        `${TEST_LABEL}=${run}`,
        '--add-host',
        'web:127.0.0.1',
        '-v',
        `${dir}/nginx/nginx.conf:/etc/nginx/nginx.conf:ro`,
        '-v',
        `${dir}/nginx/upstream:/etc/nginx/upstream:ro`,
        'opskit-test/nginx:1',
        'nginx',
        '-t',
      ],
      { reject: false },
    );
    expect(r.stderr).toContain('syntax is ok');
    expect(r.stderr).toContain('test is successful');
    expect(r.exitCode).toBe(0);
  });

  it('nginx -t rejects a broken copy (the check can fail)', async () => {
    const broken = tempDir('opskit-nginx-broken-');
    writeFileSync(
      path.join(broken, 'nginx.conf'),
      readFileSync(path.join(dir, 'nginx/nginx.conf'), 'utf8').replace(
        'limit_req zone=api_limit',
        'limit_req zone=no_such_zone',
      ),
    );
    const r = await docker(
      [
        'run',
        '--rm',
        '--label',
        `${TEST_LABEL}=${run}`,
        '--add-host',
        'web:127.0.0.1',
        '-v',
        `${broken}/nginx.conf:/etc/nginx/nginx.conf:ro`,
        '-v',
        `${dir}/nginx/upstream:/etc/nginx/upstream:ro`,
        'opskit-test/nginx:1',
        'nginx',
        '-t',
      ],
      { reject: false },
    );
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain('no_such_zone');
  });

  it('serves through the upstream and rate limits /api/ at 100 r/s with a burst of 200 (PAT-017)', async () => {
    const network = uniqueName('opskit-init-net');
    await docker(['network', 'create', '--label', `${TEST_LABEL}=${run}`, network]);
    // A stand-in for the web service, as the template's gunicorn listens: on a unix socket in the shared
    // directory, with live.sock a relative link to it.
    const sockets = tempDir('opskit-init-sockets-');
    chmodSync(sockets, 0o1777);
    symlinkSync('web-standin.sock', path.join(sockets, 'live.sock'));
    const server = [
      'import http.server, os, socketserver',
      'os.umask(0)  # as gunicorn.conf.py: nginx workers (another user) must be able to connect',
      'class H(http.server.BaseHTTPRequestHandler):',
      '    protocol_version = "HTTP/1.1"',
      '    def address_string(self): return "unix"',
      '    def do_GET(self):',
      '        body = b"pong\\n"',
      '        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)',
      'class S(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):\n    daemon_threads = True\n    request_queue_size = 1024  # gunicorn: 2048',
      'S("/run/opskit/web-standin.sock", H).serve_forever()',
    ].join('\n');
    await docker([
      'run',
      '-d',
      '--label',
      `${TEST_LABEL}=${run}`,
      '--network',
      network,
      '-v',
      `${sockets}:/run/opskit`,
      'opskit-test/python:3.11',
      'python3',
      '-c',
      server,
    ]);
    const nginx = await docker([
      'run',
      '-d',
      '--label',
      `${TEST_LABEL}=${run}`,
      '--network',
      network,
      '-p',
      '127.0.0.1::80',
      '-v',
      `${dir}/nginx/nginx.conf:/etc/nginx/nginx.conf:ro`,
      '-v',
      `${dir}/nginx/upstream:/etc/nginx/upstream:ro`,
      '-v',
      `${sockets}:/run/opskit`,
      'opskit-test/nginx:1',
    ]);
    const id = nginx.stdout.trim();
    const port = (await docker(['port', id, '80/tcp'])).stdout.trim().split(':').pop();
    const base = `http://127.0.0.1:${port}`;
    let ready = false;
    for (let i = 0; i < 50 && !ready; i++) {
      ready = await fetch(`${base}/api/ping`).then(
        (r) => r.ok,
        () => false,
      );
      if (!ready) await new Promise((r) => setTimeout(r, 100));
    }
    expect(ready).toBe(true);
    expect(await (await fetch(`${base}/nginx-health`)).text()).toBe('ok\n');
    // 600 requests at once from one address: the burst (200) passes, and then no more than the rate
    // (100 r/s) allows over however long the batch took; the rest get 429. The bound follows the batch's
    // own duration, so a slow machine changes the figures, never the verdict.
    await new Promise((r) => setTimeout(r, 2100)); // let the bucket drain after the readiness probes
    const t0 = performance.now();
    const statuses = await Promise.all(
      Array.from({ length: 600 }, () => fetch(`${base}/api/ping`).then((r) => r.status)),
    );
    const seconds = (performance.now() - t0) / 1000;
    const ok = statuses.filter((s) => s === 200).length;
    const limited = statuses.filter((s) => s === 429).length;
    expect(ok + limited).toBe(600);
    expect(ok).toBeGreaterThanOrEqual(200);
    expect(ok, `200s in a batch of ${seconds.toFixed(2)} s`).toBeLessThanOrEqual(
      200 + Math.ceil(100 * (seconds + 0.1)) + 1,
    );
    // Past ~4 s the rate alone would let all 600 through: only then may none be limited.
    if (seconds < 3.5) expect(limited).toBeGreaterThan(0);
    // Paths outside /api/ are not limited.
    const root = await Promise.all(
      Array.from({ length: 50 }, () => fetch(`${base}/api/../nginx-health`).then((r) => r.status)),
    );
    expect(root.every((s) => s === 200)).toBe(true);
  });

  it('renders a Dockerfile that builds with the offline base image: non-root, with a healthcheck', async () => {
    const app = tempDir('opskit-init-app-');
    writeFileSync(path.join(app, 'Dockerfile.prod'), readFileSync(path.join(dir, 'Dockerfile.prod')));
    writeFileSync(path.join(app, 'gunicorn.conf.py'), readFileSync(path.join(dir, 'gunicorn.conf.py')));
    writeFileSync(path.join(app, 'requirements.txt'), 'flask\ngunicorn\npsycopg2\n');
    writeFileSync(
      path.join(app, 'app.py'),
      'from flask import Flask\napp = Flask(__name__)\n@app.get("/health")\ndef health():\n    return {"status": "ok"}\n',
    );
    const tag = `opskit-test/init-app:${run}`;
    const build = await execa(
      'docker',
      [
        'build',
        '-q',
        '--force-rm',
        '--label',
        `${TEST_LABEL}=${run}`,
        '--build-arg',
        'BASE_IMAGE=opskit-test/python:3.11',
        '-f',
        'Dockerfile.prod',
        '-t',
        tag,
        '.',
      ],
      {
        cwd: app,
        env: { DOCKER_BUILDKIT: '0' },
        reject: false,
      },
    );
    expect(build.stderr).not.toMatch(/missing requirements/);
    expect(build.exitCode).toBe(0);
    try {
      const inspect = JSON.parse((await docker(['image', 'inspect', tag])).stdout)[0];
      expect(inspect.Config.User).toBe('appuser');
      expect(inspect.Config.Healthcheck.Test[0]).toBe('CMD');
      expect(inspect.Config.Cmd.slice(0, 1)).toEqual(['gunicorn']);
      const name = uniqueName('opskit-init-app');
      await docker(['run', '-d', '--name', name, '--label', `${TEST_LABEL}=${run}`, tag]);
      let health = '';
      for (let i = 0; i < 60 && health !== 'healthy'; i++) {
        health = (await docker(['inspect', '-f', '{{.State.Health.Status}}', name])).stdout.trim();
        if (health !== 'healthy') await new Promise((r) => setTimeout(r, 500));
      }
      expect(health).toBe('healthy');
      expect((await docker(['exec', name, 'id', '-un'])).stdout.trim()).toBe('appuser');
    } finally {
      await docker(['rmi', '-f', tag], { reject: false });
    }
  });

  it('a requirement missing from the base image fails the build, naming it', async () => {
    const app = tempDir('opskit-init-app-');
    writeFileSync(path.join(app, 'Dockerfile.prod'), readFileSync(path.join(dir, 'Dockerfile.prod')));
    writeFileSync(path.join(app, 'requirements.txt'), 'flask\nno-such-package-xyz\n');
    const build = await execa(
      'docker',
      [
        'build',
        '--force-rm',
        '--label',
        `${TEST_LABEL}=${run}`,
        '--build-arg',
        'BASE_IMAGE=opskit-test/python:3.11',
        '-f',
        'Dockerfile.prod',
        '.',
      ],
      {
        cwd: app,
        env: { DOCKER_BUILDKIT: '0' },
        reject: false,
      },
    );
    expect(build.exitCode).not.toBe(0);
    expect(build.stdout + build.stderr).toContain('missing requirements: no-such-package-xyz');
  });
});
