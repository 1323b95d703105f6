import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { BIN, closedPort, opskit, parseSingleJson, tempDir } from '../helpers/cli.js';
import { docker, removeLabelled, TEST_LABEL, uniqueName } from '../helpers/docker.js';
import { schemaValidator } from '../helpers/schema.js';
import { delayed, json, startServer, type TestServer } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

const PG_USER = process.env.OPSKIT_TEST_PG_USER ?? 'opskit_test';
const PG_PASSWORD = process.env.OPSKIT_TEST_PG_PASSWORD ?? 'opskit-test-pw';
const WRONG_PASSWORD = 'Wr0ng-Pass-7c1d';
const pgUrl = (password: string) => `postgresql://${PG_USER}:${password}@127.0.0.1:5432/postgres`;

const validate = schemaValidator('health');
type Check = {
  name: string;
  kind: string;
  status: string;
  detail: string;
  target: string;
  observed: Record<string, unknown> | null;
};
/** A project directory whose opskit.yaml holds just these settings. */
function projectWith(config: Record<string, unknown>): string {
  const dir = tempDir();
  writeFileSync(path.join(dir, 'opskit.yaml'), stringify(config));
  return dir;
}
const checksOf = (doc: Record<string, unknown>) => Object.fromEntries((doc.checks as Check[]).map((c) => [c.name, c]));

describe('opskit health against real targets', () => {
  let server: TestServer;
  let tlsServer: TestServer;
  const run = uniqueName('health');
  const names = {
    healthy: `${run}-healthy`,
    unhealthy: `${run}-unhealthy`,
    exited: `${run}-exited`,
    restarting: `${run}-restarting`,
  };

  beforeAll(async () => {
    server = await startServer({
      '/ok': json(200, { status: 'ok', version: '1.2.3' }),
      '/error': json(500, { status: 'error' }),
      '/degraded': json(200, { status: 'degraded' }),
      '/slow': delayed(3000, json(200, { status: 'ok' })),
      '/second': delayed(1000, json(200, { status: 'ok' })),
    });
    // A self-signed certificate that expires in 10 days.
    const dir = tempDir('opskit-tls-');
    await execa('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      path.join(dir, 'key.pem'),
      '-out',
      path.join(dir, 'cert.pem'),
      '-days',
      '10',
      '-subj',
      '/CN=127.0.0.1',
    ]);
    tlsServer = await startServer(
      { '/ok': json(200, { status: 'ok' }) },
      { key: readFileSync(path.join(dir, 'key.pem'), 'utf8'), cert: readFileSync(path.join(dir, 'cert.pem'), 'utf8') },
    );
    const label = ['--label', `${TEST_LABEL}=${run}`];
    await Promise.all([
      docker([
        'run',
        '-d',
        ...label,
        '--name',
        names.healthy,
        '--health-cmd',
        'true',
        '--health-interval',
        '1s',
        'opskit-test/busybox:latest',
        'sleep',
        '600',
      ]),
      docker([
        'run',
        '-d',
        ...label,
        '--name',
        names.unhealthy,
        '--health-cmd',
        'echo backend down; exit 1',
        '--health-interval',
        '1s',
        '--health-retries',
        '1',
        'opskit-test/busybox:latest',
        'sleep',
        '600',
      ]),
      docker(['run', '-d', ...label, '--name', names.exited, 'opskit-test/busybox:latest', 'sh', '-c', 'exit 3']),
      docker([
        'run',
        '-d',
        ...label,
        '--name',
        names.restarting,
        '--restart',
        'always',
        'opskit-test/busybox:latest',
        'sh',
        '-c',
        'sleep 0.2; exit 1',
      ]),
    ]);
    // Let the health checks run and the restart loop get going.
    for (let i = 0; i < 40; i++) {
      const h = (await docker(['inspect', '-f', '{{.State.Health.Status}}', names.healthy])).stdout.trim();
      const u = (await docker(['inspect', '-f', '{{.State.Health.Status}}', names.unhealthy])).stdout.trim();
      if (h === 'healthy' && u === 'unhealthy') break;
      await new Promise((r) => setTimeout(r, 250));
    }
  });
  afterAll(async () => {
    await server?.close();
    await tlsServer?.close();
    await removeLabelled(run);
  });

  it('HTTP: 200 passes, 500 fails, slower than the timeout fails, a closed port fails; exit 3; the output matches the JSON Schema', async () => {
    const closed = await closedPort();
    const r = await opskit(
      [
        'health',
        '--json',
        '--timeout',
        '1s',
        '--url',
        `${server.url}/ok`,
        '--url',
        `${server.url}/error`,
        '--url',
        `${server.url}/slow`,
        '--url',
        `http://127.0.0.1:${closed}/`,
      ],
      { cwd: tempDir() },
    );
    expect(r.exitCode).toBe(3);
    const doc = parseSingleJson(r.stdout);
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
    const checks = doc.checks as Check[];
    expect(checks.map((c) => c.status)).toEqual(['pass', 'fail', 'fail', 'fail']);
    expect(checks[1]!.detail).toBe('HTTP 500, expected 2xx');
    expect(checks[2]!.detail).toBe('timed out after 1.00s');
    expect(checks[3]!.detail).toContain('ECONNREFUSED');
    expect(doc).toMatchObject({ ok: false, status: 'fail', summary: { pass: 1, warn: 0, fail: 3 }, source: 'flags' });
  });

  it('HTTP: JSON path and body matches, latency warn (exit 0, or 3 with --fail-on warn), https certificate days', async () => {
    const dir = projectWith({
      health: {
        checks: [
          {
            name: 'json ok',
            kind: 'http',
            url: `${server.url}/ok`,
            json: { path: 'status', equals: 'ok' },
            bodyContains: '1.2.3',
          },
          {
            name: 'json degraded',
            kind: 'http',
            url: `${server.url}/degraded`,
            json: { path: 'status', equals: 'ok' },
          },
          { name: 'slowish', kind: 'http', url: `${server.url}/second`, warnLatency: '300ms', failLatency: '3s' },
          { name: 'tls', kind: 'http', url: `${tlsServer.url}/ok`, tlsVerify: false },
          { name: 'tls verified', kind: 'http', url: `${tlsServer.url}/ok` },
        ],
      },
    });
    const all = await opskit(['health', '--json'], { cwd: dir });
    const checks = checksOf(parseSingleJson(all.stdout));
    expect(checks['json ok']!.status).toBe('pass');
    expect(checks['json degraded']).toMatchObject({ status: 'fail', detail: 'status is "degraded", expected "ok"' });
    expect(checks.slowish).toMatchObject({ status: 'warn', detail: expect.stringMatching(/^latency \d+ms > 300ms$/) });
    expect(checks.tls).toMatchObject({ status: 'warn', observed: { certificateDaysLeft: 9 } });
    expect(checks['tls verified']).toMatchObject({ status: 'fail', detail: expect.stringMatching(/self[- ]signed/) });

    // Flags replace the configured checks for that run.
    const flagsOnly = await opskit(['health', '--json', '--url', `${server.url}/ok`], { cwd: dir });
    expect(flagsOnly.exitCode).toBe(0);
    expect(parseSingleJson(flagsOnly.stdout).checks).toHaveLength(1);
    const configWarn = projectWith({
      health: { checks: [{ kind: 'http', url: `${server.url}/second`, warnLatency: '100ms' }] },
    });
    expect((await opskit(['health'], { cwd: configWarn })).exitCode).toBe(0);
    expect((await opskit(['health', '--fail-on', 'warn'], { cwd: configWarn })).exitCode).toBe(3);
  });

  it('PostgreSQL with the right and a wrong password; the password appears in no output', async () => {
    const r = await opskit(
      ['health', '--json', '--postgres', pgUrl(PG_PASSWORD), '--postgres', pgUrl(WRONG_PASSWORD)],
      { cwd: tempDir() },
    );
    const human = await opskit(
      ['health', '--verbose', '--postgres', pgUrl(PG_PASSWORD), '--postgres', pgUrl(WRONG_PASSWORD)],
      { cwd: tempDir() },
    );
    expect(r.exitCode).toBe(3);
    const checks = parseSingleJson(r.stdout).checks as Check[];
    expect(checks[0]).toMatchObject({
      status: 'pass',
      target: `postgresql://${PG_USER}:***@127.0.0.1:5432/postgres`,
      observed: { serverVersion: expect.stringMatching(/^15\./) },
    });
    expect(checks[1]).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('password authentication failed'),
    });
    for (const out of [r.stdout, r.stderr, human.stdout, human.stderr]) {
      expect(out).not.toContain(PG_PASSWORD);
      expect(out).not.toContain(WRONG_PASSWORD);
    }
  });

  it('Redis: PING answers PONG; a closed port fails', async () => {
    const closed = await closedPort();
    const r = await opskit(
      [
        'health',
        '--json',
        '--timeout',
        '2s',
        '--redis',
        'redis://127.0.0.1:6379',
        '--redis',
        `redis://127.0.0.1:${closed}`,
      ],
      { cwd: tempDir() },
    );
    const checks = parseSingleJson(r.stdout).checks as Check[];
    expect(checks.map((c) => c.status)).toEqual(['pass', 'fail']);
    expect(checks[0]!.detail).toMatch(/^PING answered PONG/);
    expect(r.exitCode).toBe(3);
  });

  it('containers: healthy passes; unhealthy, exited and restarting fail, with the last health output', async () => {
    const r = await opskit(['health', '--json', ...Object.values(names).flatMap((n) => ['--container', n])], {
      cwd: tempDir(),
    });
    const checks = parseSingleJson(r.stdout).checks as Check[];
    expect(checks.map((c) => [c.name.replace(`${run}-`, ''), c.status])).toEqual([
      ['container healthy', 'pass'],
      ['container unhealthy', 'fail'],
      ['container exited', 'fail'],
      ['container restarting', 'fail'],
    ]);
    expect(checks[1]!.detail).toContain('is unhealthy: backend down');
    expect(checks[2]!.detail).toContain('exited (exit code 3)');
    expect(checks[3]!.detail).toMatch(/restarting|restarted/);
  });

  it('tcp, disk and resources from the config; --only filters by kind', async () => {
    const dir = projectWith({
      health: {
        checks: [
          { kind: 'tcp', target: '127.0.0.1:5432' },
          { name: 'disk ok', kind: 'disk', path: '.', warnFree: '1%', failFree: '1MiB' },
          { name: 'disk full', kind: 'disk', path: '.', failFree: '100%' },
          { kind: 'resources', containers: [names.healthy] },
        ],
      },
    });
    const r = await opskit(['health', '--json'], { cwd: dir });
    const checks = checksOf(parseSingleJson(r.stdout));
    expect(checks['tcp 127.0.0.1:5432']!.status).toBe('pass');
    expect(checks['disk ok']!.status).toBe('pass');
    expect(checks['disk full']).toMatchObject({ status: 'fail', detail: expect.stringContaining('below 100%') });
    expect(checks.resources).toMatchObject({ status: 'pass', observed: [{ name: names.healthy }] });
    expect(r.exitCode).toBe(3);
    const only = await opskit(['health', '--json', '--only', 'tcp'], { cwd: dir });
    expect(only.exitCode).toBe(0);
    expect((parseSingleJson(only.stdout).checks as Check[]).map((c) => c.kind)).toEqual(['tcp']);
  });

  it("nginx on the host: a good config passes, a broken one fails with nginx's message, a stopped master fails", async () => {
    const dir = tempDir('opskit-nginx-');
    const prefix = path.join(dir, 'prefix');
    mkdirSync(path.join(prefix, 'logs'), { recursive: true });
    const port = await closedPort();
    const good = `pid ${prefix}/nginx.pid;\nerror_log ${prefix}/logs/error.log;\nevents {}\nhttp {\n  access_log off;\n  server { listen 127.0.0.1:${port}; location / { return 200 "ok"; } }\n}\n`;
    writeFileSync(path.join(dir, 'nginx.conf'), good);
    writeFileSync(
      path.join(dir, 'opskit.yaml'),
      stringify({
        nginx: { mode: 'host', config: 'nginx.conf', prefix: 'prefix', pidFile: 'prefix/nginx.pid' },
        health: { checks: [{ kind: 'nginx' }] },
      }),
    );
    await execa('nginx', ['-c', path.join(dir, 'nginx.conf'), '-p', prefix]);
    try {
      const ok = await opskit(['health', '--json'], { cwd: dir });
      expect(ok.exitCode, ok.stdout).toBe(0);
      expect(checksOf(parseSingleJson(ok.stdout)).nginx!.detail).toMatch(
        /^configuration ok, master running \(pid \d+\)$/,
      );
      writeFileSync(path.join(dir, 'nginx.conf'), good.replace('return 200', 'retrun 200'));
      const broken = await opskit(['health', '--json'], { cwd: dir });
      expect(broken.exitCode).toBe(3);
      expect(checksOf(parseSingleJson(broken.stdout)).nginx).toMatchObject({
        status: 'fail',
        detail: expect.stringContaining('unknown directive "retrun"'),
      });
      writeFileSync(path.join(dir, 'nginx.conf'), good);
    } finally {
      await execa('nginx', ['-c', path.join(dir, 'nginx.conf'), '-p', prefix, '-s', 'stop'], { reject: false });
    }
    await waitFor('nginx to stop', () => !existsSync(path.join(prefix, 'nginx.pid')), 30_000);
    const stopped = await opskit(['health', '--json'], { cwd: dir });
    expect(stopped.exitCode).toBe(3);
    expect(checksOf(parseSingleJson(stopped.stdout)).nginx!.detail).toContain('master:');
  });

  it('bad input is exit 2 and names the flag', async () => {
    const cases: Array<[string[], string]> = [
      [['--url', 'ftp://x'], '--url ftp://x: expected an http(s) URL'],
      [['--tcp', 'nohost'], '--tcp nohost: expected host:port'],
      [['--only', 'dns', '--url', 'http://x'], '--only dns: expected one of'],
      [['--retries', '-1', '--url', 'http://x'], '--retries: expected a whole number'],
      [['--timeout', 'soon', '--url', 'http://x'], '--timeout: "soon" is not a duration'],
      [['--watch', '1s', '--json', '--url', 'http://x'], '--watch prints a stream of changes'],
    ];
    for (const [args, message] of cases) {
      const r = await opskit(['health', ...args], { cwd: tempDir() });
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(message);
    }
  });

  it('--start-period waits out a target that comes up late; without it the check fails', async () => {
    const port = await closedPort();
    const net = await import('node:net');
    const late = net.createServer((socket) => socket.destroy());
    setTimeout(() => late.listen(port, '127.0.0.1'), 1500);
    try {
      const r = await opskit(
        ['health', '--json', '--tcp', `127.0.0.1:${port}`, '--start-period', '6s', '--retry-delay', '200ms'],
        { cwd: tempDir() },
      );
      expect(r.exitCode, r.stdout).toBe(0);
      const check = (parseSingleJson(r.stdout).checks as Array<{ attempts: number }>)[0]!;
      expect(check.attempts).toBeGreaterThan(3);
    } finally {
      late.close();
    }
    const closed = await closedPort();
    expect(
      (
        await opskit(['health', '--tcp', `127.0.0.1:${closed}`, '--retries', '2', '--retry-delay', '100ms'], {
          cwd: tempDir(),
        })
      ).exitCode,
    ).toBe(3);
  });

  it('--watch prints the table, then only what changed, until interrupted', async () => {
    let healthy = true;
    const flapping = await startServer({
      '/health': (_q, res) => {
        res.writeHead(healthy ? 200 : 503);
        res.end();
      },
    });
    try {
      const child = execa(BIN, ['health', '--watch', '200ms', '--url', `${flapping.url}/health`], {
        cwd: tempDir(),
        reject: false,
        env: { NO_COLOR: '1' },
      });
      let out = '';
      child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
      await waitFor('the first table', () => /CHECK[\s\S]*pass/.test(out));
      healthy = false;
      await waitFor('the change to be printed', () => /-> fail/.test(out));
      // A few more rounds (200 ms each) in the failed state: the change is not printed again.
      await new Promise((r) => setTimeout(r, 1000));
      child.kill('SIGINT');
      const r = await child;
      expect(r.stdout).toContain('CHECK');
      expect(r.stdout).toMatch(/http http:\/\/127\.0\.0\.1:\d+\/health: pass -> fail +HTTP 503, expected 2xx/);
      expect(r.stdout.match(/-> fail/g)).toHaveLength(1); // printed once, when it changed
      expect(r.exitCode).toBe(3); // the last round failed
    } finally {
      await flapping.close();
    }
  });
});
