import { describe, expect, it } from 'vitest';
import type { AutocannonResult } from '../../src/adapters/load.js';
import { isSecretHeader } from '../../src/config/redact.js';
import { compareWithBaseline, parseBaseline } from '../../src/loadtest/baseline.js';
import {
  HISTORY_CSV_COLUMNS,
  renderHistoryCsv,
  renderSummaryCsv,
  SUMMARY_CSV_COLUMNS,
} from '../../src/loadtest/csv.js';
import {
  buildAutocannonOptions,
  integerWeights,
  type LoadSpec,
  rateCap,
  scenarioRequests,
  scenarioSchema,
  weightedSequence,
} from '../../src/loadtest/plan.js';
import { LoadRecorder, sampleOf, welchTest } from '../../src/loadtest/stats.js';
import {
  autocannonSentExcess,
  type LoadSummary,
  parsePercent,
  summarizeRun,
  thresholdFacts,
} from '../../src/loadtest/summary.js';
import { evaluateThresholds, parseThreshold, ThresholdSyntaxError } from '../../src/loadtest/thresholds.js';
import { Sensitive } from '../../src/sensitive.js';

describe('thresholds', () => {
  it('parses k6-style expressions into metric, comparator and a value in base units', () => {
    expect(parseThreshold('p(99)<500', '--threshold')).toEqual({
      expression: 'p(99)<500',
      source: '--threshold',
      metric: { kind: 'latency', stat: 'percentile', percentile: 99 },
      op: '<',
      value: 500,
    });
    expect(parseThreshold(' p(97.5) <= 1.5s ', 'x').value).toBe(1500);
    expect(parseThreshold('avg<200ms', 'x').metric).toEqual({ kind: 'latency', stat: 'avg' });
    expect(parseThreshold('med<10', 'x').metric).toEqual({ kind: 'latency', stat: 'percentile', percentile: 50 });
    expect(parseThreshold('errors<1%', 'x')).toMatchObject({
      metric: { kind: 'count', of: 'errors', rate: true },
      value: 0.01,
    });
    expect(parseThreshold('non2xx==0', 'x')).toMatchObject({
      metric: { kind: 'count', of: 'non2xx', rate: false },
      op: '==',
      value: 0,
    });
    expect(parseThreshold('rps>1000', 'x')).toMatchObject({ metric: { kind: 'rps' }, op: '>', value: 1000 });
    expect(parseThreshold('throughput>=2MB', 'x').value).toBe(2e6);
    expect(parseThreshold('throughput>1MiB/s', 'x').value).toBe(1024 * 1024);
    expect(parseThreshold('failures!=5', 'x').op).toBe('!=');
  });

  it('rejects what does not parse, naming the problem', () => {
    const bad: Array<[string, RegExp]> = [
      ['p(99)<<500', /expected METRIC OP VALUE/],
      ['latency', /expected METRIC OP VALUE/],
      ['p(98)<500', /p\(98\) is not a percentile a run reports/],
      ['p99<500', /unknown metric "p99"/],
      ['rps>1k', /rps takes a plain number/],
      ['errors<1ms', /errors takes a count or a percentage/],
      ['avg<2%', /"%" is not a unit of time/],
      ['throughput>3 apples', /expected METRIC OP VALUE|not a size/],
    ];
    for (const [text, message] of bad) {
      expect(() => parseThreshold(text, 'x'), text).toThrow(ThresholdSyntaxError);
      expect(() => parseThreshold(text, 'x'), text).toThrow(message);
    }
  });

  it('judges a run: rates over the attempts, latency in ms', () => {
    const facts = {
      latency: { avg: 12, p99: 480, p50: 8, max: 900, min: 1, stddev: 3 },
      rps: 1500,
      requests: 15000,
      throughput: 3e6,
      counts: { errors: 30, timeouts: 10, non2xx: 120, failures: 150 },
      attempts: 15030,
    };
    const verdicts = evaluateThresholds(
      ['p(99)<500', 'errors<0.1%', 'rps>1000', 'non2xx==0', 'max<=900', 'throughput>1MB'].map((t) =>
        parseThreshold(t, '--threshold'),
      ),
      facts,
    );
    expect(verdicts.map((v) => [v.expression, v.passed, v.shown])).toEqual([
      ['p(99)<500', true, '480ms'],
      ['errors<0.1%', false, '0.2%'],
      ['rps>1000', true, '1500'],
      ['non2xx==0', false, '120'],
      ['max<=900', true, '900ms'],
      ['throughput>1MB', true, '3MB/s'],
    ]);
    expect(evaluateThresholds([parseThreshold('p(99.99)<5', 'x')], { ...facts, latency: {} })[0]).toMatchObject({
      passed: false,
      shown: 'n/a',
    });
  });
});

describe('scenarios and the autocannon options', () => {
  it('spreads weighted requests over a cycle, in the exact ratio', () => {
    expect(weightedSequence([6, 3, 1])).toEqual([0, 1, 0, 0, 1, 0, 2, 0, 1, 0]);
    expect(weightedSequence([1, 1])).toEqual([0, 1]);
    expect(integerWeights([0.5, 0.25, 0.25])).toEqual([2, 1, 1]);
    expect(integerWeights([4, 2])).toEqual([2, 1]);
    const big = integerWeights([5000, 1]);
    expect(big.reduce((a, b) => a + b)).toBeLessThanOrEqual(1001);
    expect(big[1]).toBe(1);
  });

  it('reads a scenario: names made unique, JSON bodies encoded with their content type, credential headers secret', () => {
    const file = scenarioSchema.parse({
      headers: { 'X-Client': 'opskit', Authorization: 'Bearer s3cret' },
      requests: [
        { path: '/health', weight: 6 },
        { path: '/health' },
        { name: 'create', method: 'post', path: '/api/items', body: { name: 'x' }, weight: 1 },
      ],
    });
    const requests = scenarioRequests(file, isSecretHeader);
    expect(requests.map((r) => [r.name, r.method, r.path, r.weight, r.body])).toEqual([
      ['GET /health', 'GET', '/health', 6, undefined],
      ['GET /health #2', 'GET', '/health', 1, undefined],
      ['create', 'POST', '/api/items', 1, '{"name":"x"}'],
    ]);
    expect(requests[2]!.headers['content-type']).toBe('application/json');
    expect(requests[0]!.headers.authorization).toBeInstanceOf(Sensitive);
    expect(String(requests[0]!.headers.authorization)).toBe('***');
    expect(scenarioSchema.safeParse({ requests: [{ path: 'health' }] }).error?.issues[0]).toMatchObject({
      path: ['requests', 0, 'path'],
      message: 'expected a path starting with /',
    });
    expect(scenarioSchema.safeParse({ requests: [] }).error?.issues[0]?.message).toBe('expected at least one request');
    expect(scenarioSchema.safeParse({ requests: [{ path: '/', method: 'FETCH' }] }).success).toBe(false);
  });

  it('builds exactly the options autocannon runs, the secret revealed only there', () => {
    const spec: LoadSpec = {
      url: 'http://127.0.0.1:8080/health',
      connections: 20,
      durationS: 30,
      rate: 500,
      pipelining: 1,
      timeoutS: 5,
      requests: [
        {
          name: 'GET /health',
          method: 'GET',
          path: '/health',
          headers: { authorization: new Sensitive('Bearer t') },
          weight: 1,
        },
      ],
    };
    expect(buildAutocannonOptions(spec)).toEqual({
      options: {
        url: 'http://127.0.0.1:8080/health',
        connections: 20,
        pipelining: 1,
        timeout: 5,
        duration: 30,
        overallRate: 500,
        maxOverallRequests: 15_000,
        requests: [{ method: 'GET', path: '/health', headers: { authorization: 'Bearer t' } }],
      },
      requestIndex: [0],
    });
    const scenario = buildAutocannonOptions({
      ...spec,
      url: 'http://127.0.0.1:8080',
      durationS: undefined,
      amount: 1000,
      rate: undefined,
      requests: [
        { name: 'a', method: 'GET', path: '/a', headers: {}, weight: 2 },
        { name: 'b', method: 'POST', path: '/b', headers: {}, body: '{}', weight: 1 },
      ],
    });
    expect(scenario.options).toMatchObject({
      amount: 1000,
      requests: [
        { method: 'GET', path: '/a' },
        { method: 'POST', path: '/b', body: '{}' },
        { method: 'GET', path: '/a' },
      ],
    });
    expect(scenario.options).not.toHaveProperty('duration');
    expect(scenario.requestIndex).toEqual([0, 1, 0]);
    expect(scenario.options).not.toHaveProperty('maxOverallRequests');
  });

  it('caps a rated run at exactly rate x duration, never below one request per connection', () => {
    expect(rateCap(200, 2, 4)).toBe(400);
    expect(rateCap(150, 10, 20)).toBe(1500);
    expect(rateCap(7, 1.5, 3)).toBe(11);
    expect(rateCap(100, 0.1, 50)).toBe(50);
    expect(rateCap(5, 0.1, 50)).toBe(5);
  });
});

describe('LoadRecorder', () => {
  it('attributes answers to requests and seconds, keeps empty seconds, and corrects for coordinated omission with a rate', () => {
    const start = Date.parse('2026-12-01T12:00:00.000Z');
    const r = new LoadRecorder(
      [
        { name: 'a', method: 'GET', path: '/a', weight: 1 },
        { name: 'b', method: 'GET', path: '/b', weight: 1 },
      ],
      start,
    );
    r.response(0, 200, 1.5, 100, 10);
    r.response(1, 503, 3, 50, 900);
    r.error(true, 950);
    r.error(false, 960, 'ECONNRESET');
    r.response(0, 200, 2.5, 100, 2500); // second 3; second 2 is empty
    const out = r.finish(2600);
    expect(out.history.map((h) => [h.second, h.at, h.requests, h.non2xx, h.errors, h.timeouts, h.bytes])).toEqual([
      [1, '2026-12-01T12:00:00.000Z', 2, 1, 2, 1, 150],
      [2, '2026-12-01T12:00:01.000Z', 0, 0, 0, 0, 0],
      [3, '2026-12-01T12:00:02.000Z', 1, 0, 0, 0, 100],
    ]);
    expect(out.perRequest.map((p) => [p.name, p.requests, p.non2xx, p.statusCodes, p.latency.max])).toEqual([
      ['a', 2, 0, { 200: 2 }, expect.closeTo(2.5, 2)],
      ['b', 1, 1, { 503: 1 }, expect.closeTo(3, 2)],
    ]);
    expect(out.errorsByCode).toEqual({ ECONNRESET: 1, ETIMEDOUT: 1 });
    expect(out.latency.max).toBeCloseTo(3, 2);
    expect(out.latency.p50).toBeCloseTo(2.5, 2);

    // At 10 req/s on a connection (100 ms apart), one 1-second stall stands for the requests it held up.
    const corrected = new LoadRecorder([{ name: 'a', method: 'GET', path: '/a', weight: 1 }], start, 100_000);
    corrected.response(0, 200, 1000, 10, 1000);
    expect(corrected.finish(1000).latency).toMatchObject({ max: 1000, min: 100 });
  });
});

describe('significance', () => {
  it("Welch's t-test matches the textbook example", () => {
    // Wikipedia, "Welch's t-test", example 1: t = -2.46, df = 24.9, p = 0.021.
    const a1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4];
    const a2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4];
    const test = welchTest(sampleOf(a1), sampleOf(a2))!;
    expect(test.t).toBeCloseTo(-2.46, 2);
    expect(test.df).toBeGreaterThan(24.5);
    expect(test.df).toBeLessThan(25.5);
    expect(test.p).toBeCloseTo(0.021, 3);
    expect(welchTest(sampleOf([1, 2, 3]), sampleOf([1, 2, 3]))!.p).toBeCloseTo(1, 6);
    expect(welchTest(sampleOf([1]), sampleOf([1, 2]))).toBeUndefined();
  });
});

function fakeRun(rpsPerSecond: number[], latencyMs: number): { summary: LoadSummary } {
  const spec: LoadSpec = {
    url: 'http://t/health',
    connections: 10,
    durationS: rpsPerSecond.length,
    pipelining: 1,
    timeoutS: 10,
    requests: [{ name: 'GET /health', method: 'GET', path: '/health', headers: {}, weight: 1 }],
  };
  const start = Date.parse('2026-12-01T12:00:00.000Z');
  const recorder = new LoadRecorder([{ name: 'GET /health', method: 'GET', path: '/health', weight: 1 }], start);
  let total = 0;
  rpsPerSecond.forEach((n, second) => {
    for (let i = 0; i < n; i++)
      recorder.response(0, i % 50 === 0 ? 500 : 200, latencyMs + (i % 7) * 0.1, 100, second * 1000 + (i * 1000) / n);
    total += n;
  });
  const mean = rpsPerSecond.reduce((a, b) => a + b, 0) / rpsPerSecond.length;
  const result: AutocannonResult = {
    requests: {
      average: mean,
      stddev: sampleOf(rpsPerSecond).sd,
      min: Math.min(...rpsPerSecond),
      max: Math.max(...rpsPerSecond),
      total,
      sent: total + 3,
    },
    throughput: { average: mean * 100, stddev: 0, min: 0, max: 0, total: total * 100 },
    duration: rpsPerSecond.length,
    errors: 3,
    timeouts: 1,
    mismatches: 0,
    non2xx: rpsPerSecond.reduce((a, n) => a + Math.ceil(n / 50), 0),
    statusCodeStats: {
      200: { count: total - rpsPerSecond.reduce((a, n) => a + Math.ceil(n / 50), 0) },
      500: { count: rpsPerSecond.reduce((a, n) => a + Math.ceil(n / 50), 0) },
    },
    start: new Date(start),
    finish: new Date(start + rpsPerSecond.length * 1000),
  };
  return {
    summary: summarizeRun(spec, 'http://t/health', result, recorder.finish(rpsPerSecond.length * 1000 - 1), false),
  };
}

describe('summaries, CSV and baselines', () => {
  it('summarizes a run: totals, non-2xx by code, rates over the attempts', () => {
    const { summary } = fakeRun([100, 100], 2);
    expect(summary).toMatchObject({
      requests: { total: 200, sent: 203 },
      dropped: 0,
      non2xx: 4,
      non2xxByCode: { 500: 4 },
      statusCodes: { 200: 196, 500: 4 },
      errors: 3,
      timeouts: 1,
      attempts: 203,
      load: { connections: 10, durationS: 2 },
    });
    expect(summary.errorRate).toBeCloseTo(3 / 203);
    expect(summary.failureRate).toBeCloseTo(7 / 203);
    expect(thresholdFacts(summary).counts).toEqual({ errors: 3, timeouts: 1, non2xx: 4, failures: 7 });
    // Sent beyond what was answered, failed, and could still be in flight (10 connections): dropped by the server.
    const spec: LoadSpec = {
      url: 'http://t/',
      connections: 10,
      durationS: 1,
      pipelining: 1,
      timeoutS: 10,
      requests: [{ name: 'GET /', method: 'GET', path: '/', headers: {}, weight: 1 }],
    };
    const result: AutocannonResult = {
      requests: { average: 0, stddev: 0, min: 0, max: 0, total: 0, sent: 500 },
      throughput: { average: 0, stddev: 0, min: 0, max: 0, total: 0 },
      duration: 1,
      errors: 2,
      timeouts: 0,
      mismatches: 0,
      non2xx: 0,
      statusCodeStats: { 200: { count: 100 } },
      start: new Date(0),
      finish: new Date(1000),
    };
    const drops = summarizeRun(spec, 'http://t/', result, new LoadRecorder([], 0).finish(1000), false);
    expect(drops).toMatchObject({ dropped: 388, errors: 390, attempts: 490 });
    // With a rate, autocannon over-counts each connection's first requests (its rate, not what it wrote).
    expect(autocannonSentExcess({ rate: 150, connections: 10, pipelining: 1 })).toBe(140);
    expect(autocannonSentExcess({ rate: 25, connections: 10, pipelining: 1 })).toBe(15);
    expect(autocannonSentExcess({ rate: 5, connections: 10, pipelining: 1 })).toBe(0);
    expect(autocannonSentExcess({ connections: 10, pipelining: 1 })).toBe(0);
    const rated = summarizeRun(
      { ...spec, rate: 150 },
      'http://t/',
      { ...result, errors: 0, requests: { ...result.requests, sent: 250 } },
      new LoadRecorder([], 0).finish(1000),
      false,
    );
    expect(rated).toMatchObject({ dropped: 0, requests: { sent: 110 } });
  });

  it('writes Locust-style CSVs: a row per request plus Aggregated, a row per second', () => {
    const { summary } = fakeRun([100, 120, 80], 2);
    const stats = renderSummaryCsv(summary).trim().split('\n');
    expect(stats[0]).toBe(SUMMARY_CSV_COLUMNS.join(','));
    expect(stats).toHaveLength(3);
    expect(stats[1]).toMatch(/^GET \/health,GET,\/health,1,300,7,7,,,/);
    expect(stats[2]).toMatch(/^Aggregated,,,,300,10,7,3,1,100,/);
    const history = renderHistoryCsv(summary).trim().split('\n');
    expect(history[0]).toBe(HISTORY_CSV_COLUMNS.join(','));
    expect(history.slice(1).map((l) => l.split(',').slice(0, 4))).toEqual([
      ['1', '2026-12-01T12:00:00.000Z', '100', '2'],
      ['2', '2026-12-01T12:00:01.000Z', '120', '3'],
      ['3', '2026-12-01T12:00:02.000Z', '80', '2'],
    ]);
  });

  it('compares with a baseline: a worse, significant result beyond the limit is a regression; noise is not', () => {
    const base = fakeRun([1000, 1010, 990, 1005, 995, 1000, 500], 2).summary;
    const slower = fakeRun([700, 710, 690, 705, 695, 700, 300], 3).summary;
    const same = fakeRun([1000, 990, 1010, 995, 1005, 1002, 480], 2).summary;
    const worse = compareWithBaseline('base.json', base, slower, 0.1);
    expect(worse.metrics.find((m) => m.metric === 'rps')).toMatchObject({
      change: expect.closeTo(-0.3, 1),
      worse: true,
      significant: true,
    });
    expect(worse.metrics.find((m) => m.metric === 'latency.avg')).toMatchObject({ worse: true, significant: true });
    expect(worse.regressions).toEqual(expect.arrayContaining(['rps', 'latency.avg', 'latency.p50', 'throughput']));
    const noise = compareWithBaseline('base.json', base, same, 0.1);
    expect(noise.regressions).toEqual([]);
    expect(noise.metrics.find((m) => m.metric === 'rps')).toMatchObject({ significant: false });
    // Within the limit, even a significant change is not a regression.
    expect(compareWithBaseline('base.json', base, slower, 0.5).regressions).toEqual([]);
    // One second per run: nothing to test, the magnitude decides.
    const short = compareWithBaseline('b', fakeRun([1000], 2).summary, fakeRun([500], 2).summary, 0.1);
    expect(short.metrics.find((m) => m.metric === 'rps')).toMatchObject({ pValue: null, significant: null });
    expect(short.regressions).toContain('rps');
  });

  it('reads only opskit loadtest documents as baselines, and percentages with a %', () => {
    const { summary } = fakeRun([10, 10], 1);
    expect(
      parseBaseline(JSON.stringify({ schemaVersion: 1, command: 'loadtest', ok: true, ...summary })),
    ).toMatchObject({ requests: { total: 20 } });
    expect(parseBaseline(JSON.stringify({ command: 'health' }))).toBeUndefined();
    expect(parseBaseline('not json')).toBeUndefined();
    expect(parsePercent('10%')).toBe(0.1);
    expect(parsePercent('2.5 %')).toBe(0.025);
    expect(parsePercent('10')).toBeUndefined();
  });
});
