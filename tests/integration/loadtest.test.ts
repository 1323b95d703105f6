import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HISTORY_CSV_COLUMNS, SUMMARY_CSV_COLUMNS } from '../../src/loadtest/csv.js';
import { closedPort, opskit, parseSingleJson, tempDir } from '../helpers/cli.js';
import { schemaValidator } from '../helpers/schema.js';

const validate = schemaValidator('loadtest');

/** A local HTTP server that counts what it receives, by method and path, and can drop connections or be slow. */
async function counting(options: { delayMs?: number } = {}) {
  const hits = new Map<string, number>();
  const authorizations = new Set<string>();
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    const key = `${req.method} ${(req.url ?? '/').split('?')[0]}`;
    hits.set(key, (hits.get(key) ?? 0) + 1);
    if (req.headers.authorization) authorizations.add(req.headers.authorization);
    const url = req.url ?? '/';
    if (url.startsWith('/drop')) {
      req.socket.destroy();
      return;
    }
    req.resume();
    const answer = () => {
      if (url.startsWith('/unavailable')) {
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end('down');
      } else if (url.startsWith('/mixed')) {
        const n = hits.get(key)!;
        res.writeHead(n % 10 === 0 ? 500 : 200, { 'content-type': 'text/plain' });
        res.end('ok');
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"status":"ok"}');
      }
    };
    if (options.delayMs) setTimeout(answer, options.delayMs);
    else req.on('end', answer);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    authorizations,
    total: () => [...hits.values()].reduce((a, b) => a + b, 0),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

let fast: Awaited<ReturnType<typeof counting>>;
let slow: Awaited<ReturnType<typeof counting>>;
let dir: string;

beforeAll(async () => {
  fast = await counting();
  slow = await counting({ delayMs: 15 });
  dir = tempDir('opskit-loadtest-');
});

afterAll(async () => {
  await fast.close();
  await slow.close();
});

const run = (args: string[], env: Record<string, string> = {}, cwd = dir) =>
  opskit(['loadtest', ...args], { cwd, env, timeoutMs: 90_000 });
const runJson = async (args: string[], env: Record<string, string> = {}) => {
  const result = await run(['--json', ...args], env);
  const doc = parseSingleJson(result.stdout) as Record<string, any>;
  // Every full result follows the published schema (usage errors carry only the envelope).
  if (result.exitCode !== 2) expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
  return { ...result, doc };
};

describe('opskit loadtest (against local HTTP servers)', () => {
  it('passing thresholds exit 0; a breached one exits 3 and is named', async () => {
    const pass = await runJson([
      '--url',
      `${fast.url}/health`,
      '--amount',
      '2000',
      '--threshold',
      'p(99)<1000',
      '--threshold',
      'errors<1%',
      '--threshold',
      'rps>10',
    ]);
    expect(pass.exitCode).toBe(0);
    expect(pass.doc).toMatchObject({
      ok: true,
      command: 'loadtest',
      requests: { total: 2000 },
      errors: 0,
      non2xx: 0,
      statusCodes: { 200: 2000 },
    });
    expect(pass.doc.thresholds.map((t: any) => [t.expression, t.passed])).toEqual([
      ['p(99)<1000', true],
      ['errors<1%', true],
      ['rps>10', true],
    ]);
    expect(pass.doc.latency).toMatchObject({
      p50: expect.any(Number),
      p90: expect.any(Number),
      p97_5: expect.any(Number),
      p99: expect.any(Number),
      max: expect.any(Number),
    });
    expect(pass.doc.requests.rps).toMatchObject({ avg: expect.any(Number), stddev: expect.any(Number) });

    const fail = await run([
      '--url',
      `${fast.url}/mixed`,
      '--amount',
      '1000',
      '--threshold',
      'non2xx==0',
      '--threshold',
      'failures<1%',
      '--threshold',
      'p(99)<1000',
    ]);
    expect(fail.exitCode).toBe(3);
    expect(fail.stdout).toMatch(/✖ non2xx==0 {2}\(100\)/);
    expect(fail.stdout).toMatch(/✖ failures<1% {2}\(10%\)/);
    expect(fail.stdout).toMatch(/✔ p\(99\)<1000/);
    expect(fail.stdout).toMatch(/500: 100/);
  });

  it('a threshold from the config applies too, and a bad one there exits 2 naming the key', async () => {
    const project = tempDir('opskit-loadtest-config-');
    writeFileSync(
      path.join(project, 'opskit.yaml'),
      `loadtest:\n  url: ${fast.url}/health\n  thresholds: ["rps>100000000"]\n`,
    );
    const breached = await run(['--amount', '500'], {}, project);
    expect(breached.exitCode).toBe(3);
    expect(breached.stdout).toMatch(/✖ rps>100000000 .*loadtest\.thresholds\[0\]/);
    writeFileSync(
      path.join(project, 'opskit.yaml'),
      `loadtest:\n  url: ${fast.url}/config-bad\n  thresholds: ["p(99)<<1"]\n`,
    );
    const bad = await run(['--amount', '500'], {}, project);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/loadtest\.thresholds\[0\]: "p\(99\)<<1": expected METRIC OP VALUE/);
    expect(fast.hits.get('GET /config-bad')).toBeUndefined();
  });

  it('bad expressions and bad flags exit 2 before any request is sent', async () => {
    const before = fast.total();
    const cases: Array<[string[], RegExp]> = [
      [['--threshold', 'p(99)<<500'], /--threshold "p\(99\)<<500": expected METRIC OP VALUE/],
      [['--threshold', 'p(98)<500'], /p\(98\) is not a percentile a run reports/],
      [['--threshold', 'latency<5'], /unknown metric "latency"/],
      [['--duration', '2s', '--amount', '10'], /--duration and --amount: choose one/],
      [['--connections', '0'], /--connections: "0" is not a whole number greater than 0/],
      [['--rate', 'fast'], /--rate: "fast" is not a whole number/],
      [['--duration', 'soon'], /--duration: "soon" is not a duration/],
      [['--method', 'FETCH'], /--method: "FETCH" is not one of/],
      [['--header', 'no colon'], /--header no colon: expected "Name: value"/],
      [['--max-regression', '10%'], /--max-regression needs --baseline/],
      [['--baseline', 'missing.json'], /--baseline: missing.json does not exist/],
      [['--scenario', 'missing.yaml'], /--scenario: missing.yaml does not exist/],
    ];
    for (const [args, message] of cases) {
      const result = await run(['--url', `${fast.url}/health`, ...args]);
      expect(result.exitCode, args.join(' ')).toBe(2);
      expect(result.stderr, args.join(' ')).toMatch(message);
    }
    const scenario = path.join(dir, 'bad-scenario.yaml');
    writeFileSync(scenario, 'requests:\n  - path: health\n');
    const badScenario = await run(['--url', fast.url, '--scenario', scenario]);
    expect(badScenario.exitCode).toBe(2);
    expect(badScenario.stderr).toMatch(/bad-scenario\.yaml: requests\.0\.path: expected a path starting with \//);
    writeFileSync(path.join(dir, 'not-a-result.json'), '{"command":"health"}');
    const badBaseline = await run(['--url', `${fast.url}/health`, '--baseline', 'not-a-result.json']);
    expect(badBaseline.exitCode).toBe(2);
    expect(badBaseline.stderr).toMatch(/not an opskit loadtest result/);
    expect(fast.total()).toBe(before);
  });

  it('writes --out (a baseline for later) and --csv files with the right columns', async () => {
    const prefix = path.join(dir, 'results');
    const out = path.join(dir, 'run.json');
    const result = await runJson([
      '--url',
      `${fast.url}/health`,
      '--duration',
      '2s',
      '--connections',
      '4',
      '--out',
      out,
      '--csv',
      prefix,
    ]);
    expect(result.exitCode).toBe(0);
    const written = JSON.parse(readFileSync(out, 'utf8'));
    expect(written).toMatchObject({
      schemaVersion: 1,
      command: 'loadtest',
      ok: true,
      requests: { total: result.doc.requests.total },
    });
    expect(written.history.length).toBeGreaterThanOrEqual(2);
    const stats = readFileSync(`${prefix}_stats.csv`, 'utf8').trim().split('\n');
    expect(stats[0]).toBe(SUMMARY_CSV_COLUMNS.join(','));
    expect(stats.at(-1)).toMatch(new RegExp(`^Aggregated,,,,${result.doc.requests.total},0,0,0,0,`));
    const history = readFileSync(`${prefix}_stats_history.csv`, 'utf8').trim().split('\n');
    expect(history[0]).toBe(HISTORY_CSV_COLUMNS.join(','));
    const rows = history.slice(1).map((l) => l.split(','));
    expect(rows.length).toBeGreaterThanOrEqual(2);
    expect(rows.length).toBeLessThanOrEqual(3);
    expect(rows.reduce((a, r) => a + Number(r[2]), 0)).toBe(result.doc.requests.total);
    expect(result.doc.files).toEqual({ out, csv: [`${prefix}_stats.csv`, `${prefix}_stats_history.csv`] });
  });

  it('honours scenario weights (counted by the server) and breaks the results down per request', async () => {
    const scenario = path.join(dir, 'platform.yaml');
    writeFileSync(
      scenario,
      [
        'requests:',
        '  - name: health',
        '    path: /health',
        '    weight: 6',
        '  - name: list items',
        '    path: /api/items',
        '    weight: 3',
        '  - name: create item',
        '    method: POST',
        '    path: /api/items',
        '    body: { name: load }',
        '    weight: 1',
        'thresholds: ["p(99)<2000"]',
      ].join('\n'),
    );
    const before = new Map(fast.hits);
    const count = (key: string) => (fast.hits.get(key) ?? 0) - (before.get(key) ?? 0);
    const result = await runJson([
      '--url',
      fast.url,
      '--scenario',
      scenario,
      '--amount',
      '3000',
      '--connections',
      '10',
    ]);
    expect(result.exitCode).toBe(0);
    expect([count('GET /health'), count('GET /api/items'), count('POST /api/items')]).toEqual([1800, 900, 300]);
    expect(result.doc.perRequest.map((r: any) => [r.name, r.method, r.path, r.weight, r.requests])).toEqual([
      ['health', 'GET', '/health', 6, 1800],
      ['list items', 'GET', '/api/items', 3, 900],
      ['create item', 'POST', '/api/items', 1, 300],
    ]);
    expect(result.doc.thresholds).toEqual([
      expect.objectContaining({ expression: 'p(99)<2000', passed: true, source: `${scenario}: thresholds[0]` }),
    ]);
    const human = await run(['--url', fast.url, '--scenario', scenario, '--amount', '1000']);
    expect(human.stdout).toMatch(/request\s+weight\s+answered\s+share/);
    expect(human.stdout).toMatch(/health\s+6\s+600\s+60\.0%/);
  });

  it('counts errors when the server drops connections; not one answer is exit 1', async () => {
    const dropped = await runJson([
      '--url',
      `${fast.url}/drop`,
      '--duration',
      '1s',
      '--connections',
      '2',
      '--threshold',
      'errors<1%',
    ]);
    expect(dropped.exitCode).toBe(1);
    expect(dropped.doc.errors).toBeGreaterThan(100);
    expect(dropped.doc.dropped).toBe(dropped.doc.errors);
    expect(dropped.doc.error).toMatchObject({ code: 'E_NO_ANSWER' });
    expect(dropped.doc.thresholds[0]).toMatchObject({ expression: 'errors<1%', passed: false, shown: '100%' });

    const refused = await runJson(['--url', `http://127.0.0.1:${await closedPort()}/health`, '--duration', '1s']);
    expect(refused.exitCode).toBe(1);
    expect(refused.doc.error.message).toMatch(/not one request was answered/);
  });

  it('reports non-2xx by status code', async () => {
    const result = await runJson(['--url', `${fast.url}/unavailable`, '--amount', '200', '--connections', '2']);
    expect(result.exitCode).toBe(0);
    expect(result.doc).toMatchObject({
      non2xx: 200,
      non2xxByCode: { 503: 200 },
      statusCodes: { 503: 200 },
      failureRate: 1,
    });
  });

  it('respects the duration bound, and --rate caps the request rate', async () => {
    const bounded = await runJson(['--url', `${slow.url}/health`, '--duration', '2s', '--connections', '5']);
    expect(bounded.exitCode).toBe(0);
    expect(bounded.doc.durationMs).toBeGreaterThanOrEqual(1900);
    expect(bounded.doc.durationMs).toBeLessThan(20_000); // it stops: a wall-clock bound on its own belongs in the bench
    // Exactly rate x duration (±5 %), counted by autocannon and by the server itself.
    for (const [rate, duration] of [
      [200, 2],
      [100, 5],
    ] as const) {
      const before = fast.total();
      const rated = await runJson([
        '--url',
        `${fast.url}/health`,
        '--duration',
        `${duration}s`,
        '--connections',
        '4',
        '--rate',
        String(rate),
      ]);
      const seen = fast.total() - before;
      expect(rated.exitCode).toBe(0);
      expect(rated.doc.load).toMatchObject({ rate, connections: 4, durationS: duration });
      expect(rated.doc).toMatchObject({ dropped: 0, errors: 0 });
      const want = rate * duration;
      expect(rated.doc.requests.total, `answered at --rate ${rate} for ${duration}s`).toBeGreaterThanOrEqual(
        want * 0.95,
      );
      expect(rated.doc.requests.total).toBeLessThanOrEqual(want * 1.05);
      expect(seen, `requests the server saw at --rate ${rate} for ${duration}s`).toBeGreaterThanOrEqual(want * 0.95);
      expect(seen).toBeLessThanOrEqual(want * 1.05);
    }
  });

  it('compares with a baseline: a slower target is a significant regression (exit 3); the same target is not', async () => {
    const baseline = path.join(dir, 'baseline.json');
    const first = await run([
      '--url',
      `${fast.url}/health`,
      '--duration',
      '4s',
      '--connections',
      '4',
      '--out',
      baseline,
    ]);
    expect(first.exitCode).toBe(0);
    const worse = await runJson([
      '--url',
      `${slow.url}/health`,
      '--duration',
      '4s',
      '--connections',
      '4',
      '--baseline',
      baseline,
      '--max-regression',
      '10%',
    ]);
    expect(worse.exitCode).toBe(3);
    // The slow target answers after 15 ms, the fast one at once: its latency is tens of times the baseline's.
    expect(worse.doc.error).toMatchObject({
      code: 'E_REGRESSION',
      message: expect.stringMatching(/worse than the baseline by more than 10%: .*latency\.p50/),
    });
    expect(worse.doc.baseline.metrics.find((m: any) => m.metric === 'rps')).toMatchObject({ worse: true });
    expect(worse.doc.baseline.metrics.find((m: any) => m.metric === 'latency.p50')).toMatchObject({
      worse: true,
      significant: true,
    });
    // The same target again: only a machine 4x slower than a moment ago could call it a regression.
    const compared = await run([
      '--url',
      `${fast.url}/health`,
      '--duration',
      '4s',
      '--connections',
      '4',
      '--baseline',
      baseline,
      '--max-regression',
      '300%',
    ]);
    expect(compared.exitCode).toBe(0);
    expect(compared.stdout).toMatch(/baseline .*baseline\.json/);
    expect(compared.stdout).toMatch(/rps\s+[\d.]+\s+[\d.]+\s+[+-][\d.]+%\s+[\d.]+/);
  });

  it('sends credential headers but never shows them, not even in a dry run', async () => {
    const token = 'Bearer LoadTok-93be1f';
    const result = await run([
      '--url',
      `${fast.url}/health`,
      '--amount',
      '100',
      '--header',
      `Authorization: ${token}`,
      '--header',
      'X-Client: opskit',
      '--json',
      '--verbose',
    ]);
    expect(result.exitCode).toBe(0);
    expect(fast.authorizations.has(token)).toBe(true);
    const dry = await run([
      '--url',
      `${fast.url}/health`,
      '--header',
      `Authorization: ${token}`,
      '--dry-run',
      '--json',
    ]);
    expect(dry.exitCode).toBe(0);
    expect(parseSingleJson(dry.stdout)).toMatchObject({
      planned: true,
      autocannon: { requests: [{ headers: { authorization: '***' } }] },
    });
    for (const text of [result.stdout, result.stderr, dry.stdout, dry.stderr])
      expect(text).not.toContain('LoadTok-93be1f');
  });

  it('shows live progress on a TTY, and plain lines elsewhere', async () => {
    const pty = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'fixtures', 'pty-run.py');
    const { execa } = await import('execa');
    const { BIN } = await import('../helpers/cli.js');
    const tty = await execa('python3', [pty, BIN, 'loadtest', '--url', `${fast.url}/health`, '--duration', '2s'], {
      cwd: dir,
      reject: false,
      env: { TERM: 'xterm' },
      timeout: 60_000,
    });
    expect(tty.exitCode).toBe(0);
    expect(tty.stdout).toContain('\u001b[?25l'); // a spinner
    expect(tty.stdout).toMatch(/load: 1s\/2s, \d+ req\/s/);
    const plain = await run(['--url', `${fast.url}/health`, '--duration', '2s']);
    expect(plain.stderr).toMatch(/\d{4}-\d\d-\d\dT[\d:.]+Z step {2}load: 1s\/2s, \d+ req\/s, \d+ answered/);
  });

  it('SIGINT stops the load early and reports the partial figures, exit 1', async () => {
    const { execa } = await import('execa');
    const { BIN } = await import('../helpers/cli.js');
    const child = execa(BIN, ['--json', 'loadtest', '--url', `${fast.url}/health`, '--duration', '60s'], {
      cwd: dir,
      reject: false,
    });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const started = Date.now();
    while (!/load: \d+s\/60s/.test(stderr) && Date.now() - started < 40_000)
      await new Promise((resolve) => setTimeout(resolve, 50));
    expect(stderr, 'a progress line before the interrupt').toMatch(/load: \d+s\/60s/);
    child.kill('SIGINT');
    const done = await child;
    expect(done.exitCode).toBe(1);
    const doc = parseSingleJson(done.stdout) as Record<string, any>;
    expect(doc).toMatchObject({ ok: false, interrupted: true, error: { code: 'E_INTERRUPTED' } });
    expect(doc.requests.total).toBeGreaterThan(0);
    expect(doc.durationMs).toBeLessThan(50_000); // stopped early: the run was for 60 s
  });

  it('without --url, loads the platform front: nginx.url and loadtest.path', async () => {
    const project = tempDir('opskit-loadtest-front-');
    writeFileSync(path.join(project, 'opskit.yaml'), `nginx:\n  url: ${fast.url}\nloadtest:\n  path: /front-door\n`);
    const result = await opskit(['--json', 'loadtest', '--amount', '100'], { cwd: project });
    expect(result.exitCode).toBe(0);
    expect(parseSingleJson(result.stdout)).toMatchObject({ target: { url: `${fast.url}/front-door` } });
    expect(fast.hits.get('GET /front-door')).toBe(100);
    expect(existsSync(path.join(project, 'logs'))).toBe(false);
  });
});
