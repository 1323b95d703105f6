import { describe, expect, it } from 'vitest';
import { cpuAndMemory } from '../../src/adapters/docker.js';
import type { NetAdapter } from '../../src/adapters/net.js';
import { createContext } from '../../src/cli/run.js';
import { Redactor } from '../../src/config/redact.js';
import { configSchema, type HealthCheckConfig } from '../../src/config/schema.js';
import {
  evaluateContainer,
  evaluateDisk,
  evaluateHttp,
  evaluateResources,
  jsonPath,
  statusMatches,
  thresholdBytes,
  worst,
} from '../../src/health/evaluate.js';
import { type CheckResult, changes, runCheck, summarizeHealth } from '../../src/health/run.js';
import { checksFromFlags, defaultChecks, toSpec } from '../../src/health/spec.js';
import { Sensitive } from '../../src/sensitive.js';
import { BufferStream, manualClock, strictFake } from '../helpers/fakes.js';

const now = new Date('2026-12-01T00:00:00Z');
const expect200 = { expectStatus: '2xx' as string | number, certWarnDays: 14, certFailDays: 3 };

describe('judging HTTP answers', () => {
  it('matches statuses, ranges and classes', () => {
    expect(statusMatches(200, 200)).toBe(true);
    expect(statusMatches('2xx', 204)).toBe(true);
    expect(statusMatches('2xx', 301)).toBe(false);
    expect(statusMatches('200-399', 302)).toBe(true);
    expect(statusMatches('200,503', 503)).toBe(true);
  });
  it('reads JSON paths', () => {
    expect(jsonPath({ a: { b: [{ c: 'x' }] } }, 'a.b[0].c')).toBe('x');
    expect(jsonPath({ items: [1, 2] }, 'items.length')).toBe(2);
    expect(jsonPath({}, 'a.b')).toBeUndefined();
  });
  it('fails a wrong status, a missing body match and a JSON mismatch; warns on latency', () => {
    expect(evaluateHttp(expect200, { status: 500, body: '', latencyMs: 3 }, now)).toMatchObject({
      status: 'fail',
      detail: 'HTTP 500, expected 2xx',
    });
    expect(
      evaluateHttp({ ...expect200, bodyContains: 'ok' }, { status: 200, body: 'nope', latencyMs: 3 }, now),
    ).toMatchObject({ status: 'fail', detail: 'body does not contain "ok"' });
    expect(
      evaluateHttp(
        { ...expect200, json: { path: 'status', equals: 'ok' } },
        { status: 200, body: '{"status":"error"}', latencyMs: 3 },
        now,
      ),
    ).toMatchObject({
      status: 'fail',
      detail: 'status is "error", expected "ok"',
      observed: { json: { path: 'status', value: 'error' } },
    });
    expect(
      evaluateHttp(
        { ...expect200, warnLatencyMs: 100, failLatencyMs: 1000 },
        { status: 200, body: '', latencyMs: 250 },
        now,
      ),
    ).toMatchObject({ status: 'warn', detail: 'latency 250ms > 100ms' });
    expect(
      evaluateHttp(
        { ...expect200, warnLatencyMs: 100, failLatencyMs: 200 },
        { status: 200, body: '', latencyMs: 250 },
        now,
      ).status,
    ).toBe('fail');
    expect(evaluateHttp(expect200, { status: 200, body: '', latencyMs: 12.4 }, now)).toMatchObject({
      status: 'pass',
      detail: 'HTTP 200 in 12ms',
      observed: { status: 200, latencyMs: 12 },
    });
  });
  it("counts the certificate's days left", () => {
    const soon = { status: 200, body: '', latencyMs: 1, tls: { validTo: 'Dec 11 00:00:00 2026 GMT' } };
    expect(evaluateHttp(expect200, soon, now)).toMatchObject({ status: 'warn', observed: { certificateDaysLeft: 10 } });
    expect(evaluateHttp(expect200, { ...soon, tls: { validTo: 'Dec  2 12:00:00 2026 GMT' } }, now).status).toBe('fail');
    expect(evaluateHttp(expect200, { ...soon, tls: { validTo: 'Dec  1 00:00:00 2027 GMT' } }, now).status).toBe('pass');
  });
});

describe('judging disks, containers and resources', () => {
  it('disk thresholds in percent or bytes', () => {
    expect(thresholdBytes('15%', 1000)).toBe(150);
    expect(thresholdBytes('1GiB', 0)).toBe(1024 ** 3);
    expect(() => thresholdBytes('lots', 1)).toThrow(/not a percentage or a size/);
    const gib = 1024 ** 3;
    expect(evaluateDisk({ freeBytes: 50 * gib, totalBytes: 100 * gib }, '15%', '5%').status).toBe('pass');
    expect(evaluateDisk({ freeBytes: 10 * gib, totalBytes: 100 * gib }, '15%', '5%')).toMatchObject({
      status: 'warn',
      detail: '10.0 GiB free of 100.0 GiB (10%), below 15%',
    });
    expect(evaluateDisk({ freeBytes: 2 * gib, totalBytes: 100 * gib }, '15%', '5GiB').status).toBe('fail');
  });
  it('container states', () => {
    const base = {
      name: 'web',
      state: 'running',
      running: true,
      exitCode: 0,
      restartCount: 0,
      health: 'healthy' as const,
    };
    expect(evaluateContainer(base).status).toBe('pass');
    expect(evaluateContainer({ ...base, health: 'none' }).detail).toBe('web is running (no healthcheck)');
    expect(evaluateContainer({ ...base, health: 'starting' }).status).toBe('warn');
    expect(evaluateContainer({ ...base, restartCount: 2 })).toMatchObject({
      status: 'warn',
      detail: 'web is running, but has restarted 2 times',
    });
    expect(evaluateContainer({ ...base, health: 'unhealthy', lastHealthOutput: 'curl: (7) refused\n' })).toMatchObject({
      status: 'fail',
      detail: 'web is unhealthy: curl: (7) refused',
    });
    expect(evaluateContainer({ ...base, state: 'exited', running: false, exitCode: 3 })).toMatchObject({
      status: 'fail',
      detail: 'web is exited (exit code 3)',
    });
    expect(
      evaluateContainer({ ...base, state: 'restarting', running: true, restartCount: 5, exitCode: 1 }).status,
    ).toBe('fail');
    const at = new Date('2026-12-01T12:00:00Z');
    expect(
      evaluateContainer({ ...base, restartCount: 4, exitCode: 1, startedAt: '2026-12-01T11:59:50Z' }, at),
    ).toMatchObject({ status: 'fail', detail: 'web is crash-looping: 4 restarts, up for 10s (last exit code 1)' });
    expect(evaluateContainer({ ...base, restartCount: 4, startedAt: '2026-12-01T11:00:00Z' }, at).status).toBe('warn');
  });
  it('CPU and memory, as docker stats computes them', () => {
    const sample = cpuAndMemory({
      cpu_stats: { cpu_usage: { total_usage: 2_000_000_000 }, system_cpu_usage: 20_000_000_000, online_cpus: 2 },
      precpu_stats: { cpu_usage: { total_usage: 1_000_000_000 }, system_cpu_usage: 10_000_000_000 },
      memory_stats: { usage: 300, limit: 1000, stats: { inactive_file: 100 } },
    });
    expect(sample).toEqual({ cpuPercent: 20, memoryBytes: 200, memoryLimitBytes: 1000 });
    const t = { warnCpu: 80, failCpu: 95, warnMemory: 80, failMemory: 95 };
    expect(
      evaluateResources([{ name: 'web', cpuPercent: 85, memoryBytes: 10, memoryLimitBytes: 100 }], t),
    ).toMatchObject({ status: 'warn', detail: 'web CPU 85% >= 80%' });
    expect(evaluateResources([{ name: 'web', cpuPercent: 1, memoryBytes: 96, memoryLimitBytes: 100 }], t).status).toBe(
      'fail',
    );
    expect(evaluateResources([], t).status).toBe('fail');
  });
});

const config = configSchema.parse({ project: { name: 'shop' } });

describe('check specs', () => {
  it('flags become checks; a compose service name becomes a service check', () => {
    const checks = checksFromFlags(
      {
        url: ['http://x/health'],
        tcp: ['db:5432'],
        container: ['web', 'legacy_1'],
        postgres: ['postgresql://u:pw@h/d'],
        redis: [],
      },
      ['db', 'web'],
    );
    expect(checks.map((c) => c.kind)).toEqual(['http', 'tcp', 'container', 'container', 'postgres']);
    expect(checks[2]).toEqual({ kind: 'container', service: 'web' });
    expect(checks[3]).toEqual({ kind: 'container', container: 'legacy_1' });
  });
  it('resolve timing against the defaults and name datastores without their password', () => {
    const spec = toSpec(
      { kind: 'postgres', url: Sensitive.url('postgresql://app:pw-9@db:5432/app'), retries: 2 },
      config.health,
      config,
      0,
    );
    expect(spec).toMatchObject({
      name: 'postgres app@db:5432/app',
      target: 'postgresql://app:***@db:5432/app',
      timing: { timeoutMs: 5000, retries: 2, retryDelayMs: 1000, startPeriodMs: 0 },
    });
    expect(() => toSpec({ kind: 'container' }, config.health, config, 3)).toThrow(
      'health.checks[3]: a container check names a service or a container',
    );
  });
  it("defaults to the platform's services, the platform through nginx, and the disk", () => {
    expect(defaultChecks(config).map((c) => (c.kind === 'container' ? c.service : c.kind))).toEqual([
      'db',
      'redis',
      'web',
      'nginx',
      'front',
      'disk',
    ]);
    // On Swarm: the nodes, a service check per service, and the datastores asked from inside the overlay.
    const swarm = configSchema.parse({
      project: { name: 'shop' },
      engine: 'swarm',
      database: { url: 'postgresql://app:pw@db:5432/app' },
      nginx: { url: 'http://10.231.0.11:8080' },
    });
    const checks = defaultChecks(swarm);
    expect(checks.map((c) => ('service' in c && c.kind === 'service' ? `service ${c.service}` : c.kind))).toEqual([
      'nodes',
      'service db',
      'service redis',
      'service web',
      'service nginx',
      'front',
      'postgres',
      'redis',
      'disk',
    ]);
    // After a cutover on Swarm, the green colour's service is checked beside the web's (blue).
    expect(
      defaultChecks(swarm, ['web_green'])
        .filter((c) => c.kind === 'service')
        .map((c) => (c as { service: string }).service),
    ).toEqual(['db', 'redis', 'web', 'web_green', 'nginx']);
    expect(toSpec(checks[6]!, swarm.health, swarm, 6)).toMatchObject({
      kind: 'postgres',
      target: 'postgresql://app:***@db:5432/app from network shop_default',
      inside: { network: 'shop_default', service: 'db', project: 'shop', engine: 'swarm' },
    });
    const noFront = configSchema.parse({ project: { name: 'x' }, deploy: { frontServices: [] } });
    expect(defaultChecks(noFront).map((c) => c.kind)).not.toContain('front');
    const front = toSpec({ kind: 'front', expectStatus: '2xx' } as HealthCheckConfig, config.health, config, 0);
    expect(front).toMatchObject({
      kind: 'front',
      name: 'through nginx /health',
      path: '/health',
      target: 'service nginx /health',
    });
    expect(defaultChecks(config).find((c) => c.kind === 'front')).toMatchObject({ expectStatus: '2xx' });
    // An app checked by a TCP connect may have no health path: through nginx, anything but a 5xx.
    const tcpOnly = configSchema.parse({ project: { name: 'x' }, deploy: { healthCheck: 'tcp' } });
    expect(defaultChecks(tcpOnly).find((c) => c.kind === 'front')).toMatchObject({ expectStatus: '1xx,2xx,3xx,4xx' });
  });
});

const result = (name: string, status: CheckResult['status']): CheckResult => ({
  name,
  kind: 'tcp',
  target: name,
  status,
  latencyMs: 1,
  observed: null,
  expected: null,
  detail: status,
  error: null,
  attempts: 1,
});

describe('summaries', () => {
  it('takes the worst; warn passes unless failOn is warn', () => {
    expect(worst(['pass', 'warn', 'pass'])).toBe('warn');
    expect(summarizeHealth([result('a', 'pass'), result('b', 'warn')], 'fail')).toEqual({
      status: 'warn',
      ok: true,
      summary: { pass: 1, warn: 1, fail: 0 },
    });
    expect(summarizeHealth([result('a', 'pass'), result('b', 'warn')], 'warn').ok).toBe(false);
    expect(summarizeHealth([result('a', 'fail')], 'fail').ok).toBe(false);
  });
  it('reports what changed between watch rounds', () => {
    expect(
      changes(
        [result('a', 'pass'), result('b', 'pass')],
        [result('a', 'pass'), result('b', 'fail'), result('c', 'pass')],
      ),
    ).toEqual([
      { name: 'b', from: 'pass', to: 'fail', detail: 'fail' },
      { name: 'c', from: null, to: 'pass', detail: 'pass' },
    ]);
  });
});

describe('runCheck: retries and the start period (Docker HEALTHCHECK semantics)', () => {
  function setup(failures: number) {
    let calls = 0;
    const clock = manualClock();
    const net = strictFake<NetAdapter>('net', {
      connect: async () => {
        calls++;
        if (calls <= failures) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
        return { latencyMs: 1 };
      },
    });
    const ctx = createContext(
      { stdout: new BufferStream(), stderr: new BufferStream(), env: {}, cwd: '/', argv: [], adapters: { net, clock } },
      { json: true, dryRun: false, quiet: true, verbose: false, color: false, set: [] },
      new Redactor(),
    );
    const spec = (retries: number, startPeriodMs = 0) => ({
      ...toSpec({ kind: 'tcp', target: 'db:5432' }, config.health, config, 0),
      timing: { timeoutMs: 1000, retries, retryDelayMs: 1000, startPeriodMs },
    });
    return { pc: { ctx, docker: () => Promise.reject(new Error('no docker')) }, clock, spec, calls: () => calls };
  }
  it('fails at once with no retries, and passes after retries', async () => {
    const a = setup(2);
    expect(await runCheck(a.pc, a.spec(0), 0)).toMatchObject({
      status: 'fail',
      attempts: 1,
      error: 'connect ECONNREFUSED',
    });
    const b = setup(2);
    expect(await runCheck(b.pc, b.spec(2), 0)).toMatchObject({ status: 'pass', attempts: 3 });
    expect(b.clock.slept).toEqual([1000, 1000]);
  });
  it('failures inside the start period do not use up retries', async () => {
    const c = setup(4);
    // 4 failures: 3 inside a 3 s start period (t=0,1,2), 1 counted at t=3 -> retries 1 still passes at t=4.
    expect(await runCheck(c.pc, c.spec(1, 3000), 0)).toMatchObject({ status: 'pass', attempts: 5 });
    const d = setup(4);
    expect(await runCheck(d.pc, d.spec(0, 3000), 0)).toMatchObject({ status: 'fail', attempts: 4 });
  });
});
