import { UsageError } from '../errors.js';

export type HealthStatus = 'pass' | 'warn' | 'fail';

export interface Verdict {
  status: HealthStatus;
  observed: unknown;
  expected: unknown;
  detail: string;
}

const RANK: Record<HealthStatus, number> = { pass: 0, warn: 1, fail: 2 };

export function worst(statuses: readonly HealthStatus[]): HealthStatus {
  return statuses.reduce<HealthStatus>((a, b) => (RANK[b] > RANK[a] ? b : a), 'pass');
}

/** Pure: does an HTTP status meet `200`, `"200-299"`, `"2xx"` or a comma list of them? */
export function statusMatches(expected: number | string, status: number): boolean {
  return String(expected)
    .split(',')
    .some((part) => {
      const p = part.trim();
      if (/^[1-5]xx$/i.test(p)) return Math.floor(status / 100) === Number(p[0]);
      const range = /^(\d{3})-(\d{3})$/.exec(p);
      if (range) return status >= Number(range[1]) && status <= Number(range[2]);
      return status === Number(p);
    });
}

/** Pure: `status`, `checks[0].name`, `data.items.length`: a value inside parsed JSON, or undefined. */
export function jsonPath(value: unknown, path: string): unknown {
  let node = value;
  for (const key of path
    .replace(/\[(\d+)\]/g, '.$1')
    .split('.')
    .filter(Boolean)) {
    if (node === null || node === undefined) return undefined;
    if (key === 'length' && (Array.isArray(node) || typeof node === 'string')) node = node.length;
    else node = (node as Record<string, unknown>)[key];
  }
  return node;
}

export interface HttpExpectation {
  expectStatus: number | string;
  bodyContains?: string | undefined;
  json?: { path: string; equals: unknown } | undefined;
  warnLatencyMs?: number | undefined;
  failLatencyMs?: number | undefined;
  certWarnDays: number;
  certFailDays: number;
}

/** Pure: an HTTP answer judged against its expectations; the worst finding decides. */
export function evaluateHttp(
  expect: HttpExpectation,
  response: { status: number; body: string; latencyMs: number; tls?: { validTo: string } },
  now: Date,
): Verdict {
  const findings: Array<{ status: HealthStatus; detail: string }> = [];
  const observed: Record<string, unknown> = { status: response.status, latencyMs: Math.round(response.latencyMs) };
  const expected: Record<string, unknown> = { status: expect.expectStatus };
  if (!statusMatches(expect.expectStatus, response.status))
    findings.push({ status: 'fail', detail: `HTTP ${response.status}, expected ${expect.expectStatus}` });
  if (expect.bodyContains !== undefined) {
    expected.bodyContains = expect.bodyContains;
    if (!response.body.includes(expect.bodyContains))
      findings.push({ status: 'fail', detail: `body does not contain ${JSON.stringify(expect.bodyContains)}` });
  }
  if (expect.json) {
    expected.json = expect.json;
    let actual: unknown;
    try {
      actual = jsonPath(JSON.parse(response.body), expect.json.path);
    } catch {
      actual = undefined;
      findings.push({ status: 'fail', detail: 'body is not JSON' });
    }
    observed.json = { path: expect.json.path, value: actual ?? null };
    if (actual !== expect.json.equals && !findings.some((f) => f.detail === 'body is not JSON')) {
      findings.push({
        status: 'fail',
        detail: `${expect.json.path} is ${JSON.stringify(actual ?? null)}, expected ${JSON.stringify(expect.json.equals)}`,
      });
    }
  }
  if (expect.failLatencyMs !== undefined) expected.failLatencyMs = expect.failLatencyMs;
  if (expect.warnLatencyMs !== undefined) expected.warnLatencyMs = expect.warnLatencyMs;
  if (expect.failLatencyMs !== undefined && response.latencyMs > expect.failLatencyMs)
    findings.push({
      status: 'fail',
      detail: `latency ${Math.round(response.latencyMs)}ms > ${expect.failLatencyMs}ms`,
    });
  else if (expect.warnLatencyMs !== undefined && response.latencyMs > expect.warnLatencyMs)
    findings.push({
      status: 'warn',
      detail: `latency ${Math.round(response.latencyMs)}ms > ${expect.warnLatencyMs}ms`,
    });
  if (response.tls) {
    const days = Math.floor((new Date(response.tls.validTo).getTime() - now.getTime()) / 86_400_000);
    observed.certificateDaysLeft = days;
    expected.certificateDaysLeft = `>= ${expect.certWarnDays}`;
    if (days < expect.certFailDays) findings.push({ status: 'fail', detail: `certificate expires in ${days} days` });
    else if (days < expect.certWarnDays)
      findings.push({ status: 'warn', detail: `certificate expires in ${days} days` });
  }
  const status = worst(findings.map((f) => f.status));
  const detail = findings.length
    ? findings.map((f) => f.detail).join('; ')
    : `HTTP ${response.status} in ${Math.round(response.latencyMs)}ms${observed.certificateDaysLeft !== undefined ? `, certificate valid ${String(observed.certificateDaysLeft)} more days` : ''}`;
  return { status, observed, expected, detail };
}

const UNIT: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/** Pure: `15%` of total, or `10GiB`, in bytes. */
export function thresholdBytes(threshold: string, totalBytes: number): number {
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(threshold.trim());
  if (pct) return (Number(pct[1]) / 100) * totalBytes;
  const size = /^(\d+(?:\.\d+)?)\s*([a-z]+)$/i.exec(threshold.trim());
  if (!size || !UNIT[size[2]!.toLowerCase()])
    throw new UsageError(`"${threshold}" is not a percentage or a size`, { code: 'E_BAD_CHECK' });
  return Number(size[1]) * UNIT[size[2]!.toLowerCase()]!;
}

export function evaluateDisk(
  space: { freeBytes: number; totalBytes: number },
  warnFree: string,
  failFree: string,
): Verdict {
  const freePercent = space.totalBytes ? (space.freeBytes / space.totalBytes) * 100 : 0;
  const observed = {
    freeBytes: space.freeBytes,
    totalBytes: space.totalBytes,
    freePercent: Math.round(freePercent * 10) / 10,
  };
  const expected = { warnBelow: warnFree, failBelow: failFree };
  const gib = (b: number) => `${(b / 1024 ** 3).toFixed(1)} GiB`;
  const detail = `${gib(space.freeBytes)} free of ${gib(space.totalBytes)} (${observed.freePercent}%)`;
  if (space.freeBytes < thresholdBytes(failFree, space.totalBytes))
    return { status: 'fail', observed, expected, detail: `${detail}, below ${failFree}` };
  if (space.freeBytes < thresholdBytes(warnFree, space.totalBytes))
    return { status: 'warn', observed, expected, detail: `${detail}, below ${warnFree}` };
  return { status: 'pass', observed, expected, detail };
}

export interface ContainerState {
  name: string;
  state: string;
  running: boolean;
  exitCode: number;
  restartCount: number;
  health: 'healthy' | 'unhealthy' | 'starting' | 'none';
  lastHealthOutput?: string | undefined;
  startedAt?: string | undefined;
}

/** A container that restarted this often and came up this recently is crash-looping, even while it is up. */
const CRASH_LOOP_RESTARTS = 3;
const CRASH_LOOP_WINDOW_MS = 60_000;

/**
 * Pure: running and healthy passes; starting, or restarts so far, warn; unhealthy, exited, restarting,
 * or crash-looping (3+ restarts and up for under a minute) fail.
 */
export function evaluateContainer(c: ContainerState, now: Date = new Date()): Verdict {
  const observed = { state: c.state, health: c.health, restartCount: c.restartCount, exitCode: c.exitCode };
  const expected = { state: 'running', health: 'healthy (or no healthcheck)' };
  if (c.state === 'restarting')
    return {
      status: 'fail',
      observed,
      expected,
      detail: `${c.name} is restarting (${c.restartCount} restarts, last exit code ${c.exitCode})`,
    };
  if (!c.running)
    return { status: 'fail', observed, expected, detail: `${c.name} is ${c.state} (exit code ${c.exitCode})` };
  const upMs = c.startedAt ? now.getTime() - new Date(c.startedAt).getTime() : Infinity;
  if (c.restartCount >= CRASH_LOOP_RESTARTS && upMs < CRASH_LOOP_WINDOW_MS) {
    return {
      status: 'fail',
      observed,
      expected,
      detail: `${c.name} is crash-looping: ${c.restartCount} restarts, up for ${Math.round(upMs / 1000)}s (last exit code ${c.exitCode})`,
    };
  }
  if (c.health === 'unhealthy')
    return {
      status: 'fail',
      observed,
      expected,
      detail: `${c.name} is unhealthy${c.lastHealthOutput ? `: ${c.lastHealthOutput.trim().split('\n').slice(-2).join(' | ')}` : ''}`,
    };
  if (c.health === 'starting')
    return { status: 'warn', observed, expected, detail: `${c.name} is still starting (health: starting)` };
  if (c.restartCount > 0)
    return {
      status: 'warn',
      observed,
      expected,
      detail: `${c.name} is running, but has restarted ${c.restartCount} times`,
    };
  return {
    status: 'pass',
    observed,
    expected,
    detail: `${c.name} is running${c.health === 'healthy' ? ' and healthy' : ' (no healthcheck)'}`,
  };
}

export interface ResourceSample {
  name: string;
  cpuPercent: number;
  memoryBytes: number;
  memoryLimitBytes: number;
}

export function evaluateResources(
  samples: readonly ResourceSample[],
  t: { warnCpu: number; failCpu: number; warnMemory: number; failMemory: number },
): Verdict {
  const rows = samples.map((s) => ({
    name: s.name,
    cpuPercent: Math.round(s.cpuPercent * 10) / 10,
    memoryBytes: s.memoryBytes,
    memoryPercent: s.memoryLimitBytes ? Math.round((s.memoryBytes / s.memoryLimitBytes) * 1000) / 10 : 0,
  }));
  const findings: Array<{ status: HealthStatus; detail: string }> = [];
  for (const r of rows) {
    if (r.cpuPercent >= t.failCpu)
      findings.push({ status: 'fail', detail: `${r.name} CPU ${r.cpuPercent}% >= ${t.failCpu}%` });
    else if (r.cpuPercent >= t.warnCpu)
      findings.push({ status: 'warn', detail: `${r.name} CPU ${r.cpuPercent}% >= ${t.warnCpu}%` });
    if (r.memoryPercent >= t.failMemory)
      findings.push({ status: 'fail', detail: `${r.name} memory ${r.memoryPercent}% >= ${t.failMemory}%` });
    else if (r.memoryPercent >= t.warnMemory)
      findings.push({ status: 'warn', detail: `${r.name} memory ${r.memoryPercent}% >= ${t.warnMemory}%` });
  }
  if (rows.length === 0)
    return { status: 'fail', observed: [], expected: t, detail: 'no running container to measure' };
  const summary = rows
    .map((r) => `${r.name} ${r.cpuPercent}% CPU, ${(r.memoryBytes / 1024 ** 2).toFixed(0)} MiB (${r.memoryPercent}%)`)
    .join('; ');
  return {
    status: worst(findings.map((f) => f.status)),
    observed: rows,
    expected: t,
    detail: findings.length ? findings.map((f) => f.detail).join('; ') : summary,
  };
}
