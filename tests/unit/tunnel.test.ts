import { describe, expect, it } from 'vitest';
import type { HttpAdapter } from '../../src/adapters/http.js';
import type { NgrokSdk, NgrokSdkListener } from '../../src/adapters/ngrok.js';
import { sdkDriver, type TunnelDriver, type TunnelSession, TunnelStartError } from '../../src/tunnel/drivers.js';
import {
  afterHealthyCheck,
  agentCommand,
  agentEnv,
  assessCheck,
  chooseDriver,
  configVersionOf,
  decideAfterFailure,
  findTunnel,
  isPermanentFailure,
  isTunnelSupervisor,
  parseAgentLogLine,
  parsePid,
  type ReconnectPolicy,
  reconnectDelay,
  renderAgentConfig,
  resolveUrl,
  sdkForwardConfig,
  startedTunnelUrl,
  type TunnelState,
  tunnelStatus,
} from '../../src/tunnel/plan.js';
import { type SupervisorEvent, superviseTunnel } from '../../src/tunnel/supervisor.js';
import { manualClock, strictFake } from '../helpers/fakes.js';

const policy: ReconnectPolicy = {
  maxAttempts: 5,
  delayMs: 10_000,
  backoff: 2,
  maxDelayMs: 60_000,
  resetAfterMs: 300_000,
};

describe('tunnel plan', () => {
  it('chooses the agent when a binary is named, the SDK otherwise; --driver and the config win', () => {
    expect(chooseDriver(undefined, 'auto', true)).toBe('agent');
    expect(chooseDriver(undefined, 'auto', false)).toBe('sdk');
    expect(chooseDriver(undefined, 'agent', false)).toBe('agent');
    expect(chooseDriver('sdk', 'agent', true)).toBe('sdk');
  });

  it('builds the agent command line: JSON logs on stdout, merged configs, never the authtoken', () => {
    expect(
      agentCommand({
        bin: '/usr/local/bin/ngrok',
        port: 8000,
        configFiles: ['/home/ops/.config/ngrok/ngrok.yml', '/srv/app/.opskit/ngrok-agent.yml'],
      }),
    ).toEqual([
      '/usr/local/bin/ngrok',
      [
        'http',
        '8000',
        '--config',
        '/home/ops/.config/ngrok/ngrok.yml,/srv/app/.opskit/ngrok-agent.yml',
        '--log',
        'stdout',
        '--log-format',
        'json',
        '--log-level',
        'info',
      ],
    ]);
    expect(
      agentCommand({ bin: 'ngrok', port: 80, configFiles: ['a.yml'], url: 'https://app.ngrok.dev' })[1].slice(-2),
    ).toEqual(['--url', 'https://app.ngrok.dev']);
    expect(agentEnv({ PATH: '/bin' }, 'tok')).toEqual({ PATH: '/bin', NGROK_AUTHTOKEN: 'tok' });
    expect(agentEnv({ PATH: '/bin' }, undefined)).toEqual({ PATH: '/bin' });
  });

  it("writes the agent config in the version of the operator's own file", () => {
    expect(configVersionOf('version: 3\nagent:\n  authtoken: x\n')).toBe('3');
    expect(configVersionOf('version: "2"\nauthtoken: x\n')).toBe('2');
    expect(configVersionOf(undefined)).toBe('2');
    expect(renderAgentConfig('127.0.0.1:4040', '3')).toMatch(
      /\nversion: 3\nagent:\n {2}web_addr: 127\.0\.0\.1:4040\n$/,
    );
    expect(renderAgentConfig('127.0.0.1:4041', '2')).toMatch(/\nversion: "2"\nweb_addr: 127\.0\.0\.1:4041\n$/);
  });

  it("hands the SDK the port and the token (or the environment's)", () => {
    expect(sdkForwardConfig(8000, 'tok', undefined)).toEqual({ addr: 8000, proto: 'http', authtoken: 'tok' });
    expect(sdkForwardConfig(8000, undefined, 'https://app.ngrok.dev')).toEqual({
      addr: 8000,
      proto: 'http',
      authtoken_from_env: true,
      domain: 'app.ngrok.dev',
    });
  });

  it("reads the agent's JSON log lines: the started tunnel's URL, errors", () => {
    const started = parseAgentLogLine(
      '{"addr":"http://localhost:8000","lvl":"info","msg":"started tunnel","name":"command_line","obj":"tunnels","t":"2026-12-01T10:00:00Z","url":"https://ab12.ngrok-free.app"}',
    )!;
    expect(startedTunnelUrl(started)).toBe('https://ab12.ngrok-free.app');
    const failed = parseAgentLogLine(
      '{"lvl":"eror","msg":"session closing","obj":"tunnels.session","err":"authentication failed: ERR_NGROK_105"}',
    )!;
    expect(failed).toEqual({
      level: 'eror',
      message: 'session closing',
      error: 'authentication failed: ERR_NGROK_105',
    });
    expect(startedTunnelUrl(failed)).toBeUndefined();
    expect(parseAgentLogLine('ERROR:  open x.yml: no such file or directory')).toEqual({
      level: 'eror',
      message: 'ERROR:  open x.yml: no such file or directory',
    });
    expect(parseAgentLogLine('   ')).toBeUndefined();
  });

  it('tells failures no retry fixes from transient ones', () => {
    expect(isPermanentFailure('authentication failed: The authtoken you specified ... ERR_NGROK_105')).toBe(true);
    expect(isPermanentFailure('ERR_NGROK_4018')).toBe(true);
    expect(isPermanentFailure('failed to dial ngrok server: no such host')).toBe(false);
    expect(isPermanentFailure('the ngrok agent exited (code 1)')).toBe(false);
  });

  it('finds our tunnel in the agent API answer, https first', () => {
    const body = {
      tunnels: [
        { name: 'other', public_url: 'https://x.ngrok.app', proto: 'https', config: { addr: 'http://localhost:3000' } },
        {
          name: 'command_line (http)',
          public_url: 'http://y.ngrok.app',
          proto: 'http',
          config: { addr: 'http://localhost:8000' },
        },
        {
          name: 'command_line',
          public_url: 'https://y.ngrok.app',
          proto: 'https',
          config: { addr: 'http://localhost:8000' },
        },
      ],
    };
    expect(findTunnel(body, 8000)).toEqual({
      name: 'command_line',
      publicUrl: 'https://y.ngrok.app',
      proto: 'https',
      addr: 'http://localhost:8000',
    });
    expect(findTunnel(body, 9000)).toBeUndefined();
    expect(findTunnel(body, undefined)?.publicUrl).toBe('https://x.ngrok.app');
    expect(findTunnel({ tunnels: [] }, 8000)).toBeUndefined();
    expect(findTunnel('nonsense', 8000)).toBeUndefined();
  });

  it('backs off from the delay, capped', () => {
    expect([1, 2, 3, 4, 5].map((n) => reconnectDelay(n, policy))).toEqual([10_000, 20_000, 40_000, 60_000, 60_000]);
    expect([1, 2, 3].map((n) => reconnectDelay(n, { ...policy, backoff: 1 }))).toEqual([10_000, 10_000, 10_000]);
  });

  it('reconnects until the attempts are spent, gives up at once on a permanent failure, resets after a healthy period', () => {
    expect(decideAfterFailure({ attempts: 0, reconnects: 0, upSinceMs: 0 }, policy)).toEqual({
      action: 'reconnect',
      attempt: 1,
      delayMs: 10_000,
    });
    expect(decideAfterFailure({ attempts: 4, reconnects: 3, upSinceMs: 0 }, policy)).toEqual({
      action: 'reconnect',
      attempt: 5,
      delayMs: 60_000,
    });
    expect(decideAfterFailure({ attempts: 5, reconnects: 4, upSinceMs: 0 }, policy)).toEqual({
      action: 'give-up',
      attempts: 5,
    });
    expect(decideAfterFailure({ attempts: 0, reconnects: 0, upSinceMs: 0 }, policy, true)).toEqual({
      action: 'give-up',
      attempts: 0,
    });
    const state = { attempts: 3, reconnects: 3, upSinceMs: 1000 };
    expect(afterHealthyCheck(state, policy, 1000 + 299_999)).toBe(state);
    expect(afterHealthyCheck(state, policy, 1000 + 300_000)).toEqual({ ...state, attempts: 0 });
  });

  it("judges a check: listed and answering; ngrok's upstream error is not a tunnel failure", () => {
    const listed = { ok: true, detail: 'listed' };
    expect(assessCheck(listed, { kind: 'response', status: 200, headers: {} }, '/health')).toEqual({
      ok: true,
      upstreamDown: false,
      detail: 'GET /health through the public URL: HTTP 200',
    });
    expect(assessCheck(listed, { kind: 'response', status: 404, headers: {} }, '/health').ok).toBe(true);
    expect(
      assessCheck(
        listed,
        { kind: 'response', status: 502, headers: { 'ngrok-error-code': 'ERR_NGROK_8012' } },
        '/health',
      ),
    ).toMatchObject({ ok: true, upstreamDown: true });
    expect(
      assessCheck(
        listed,
        { kind: 'response', status: 404, headers: { 'ngrok-error-code': 'ERR_NGROK_3200' } },
        '/health',
      ),
    ).toMatchObject({ ok: false, detail: 'GET /health through the public URL: HTTP 404 ERR_NGROK_3200' });
    expect(assessCheck(listed, { kind: 'error', message: 'timed out after 10.00s' }, '/health')).toMatchObject({
      ok: false,
      detail: 'GET /health through the public URL: timed out after 10.00s',
    });
    expect(assessCheck({ ok: false, detail: 'not listed' }, undefined, '/health')).toEqual({
      ok: false,
      upstreamDown: false,
      detail: 'not listed',
    });
  });

  it('resolves the URL: live file, then the API, then the cache marked stale', () => {
    expect(
      resolveUrl({ file: { url: 'https://a', writerAlive: true }, api: 'https://b', cached: 'https://c' }),
    ).toEqual({ url: 'https://a', source: 'file', stale: false });
    expect(resolveUrl({ file: { url: 'https://a', writerAlive: false }, api: 'https://b' })).toEqual({
      url: 'https://b',
      source: 'api',
      stale: false,
    });
    expect(resolveUrl({ file: { url: 'https://a', writerAlive: false } })).toEqual({
      url: 'https://a',
      source: 'cache',
      stale: true,
    });
    expect(resolveUrl({ cached: 'https://c' })).toEqual({ url: 'https://c', source: 'cache', stale: true });
    expect(resolveUrl({})).toBeUndefined();
  });

  it('reads PID files and tells our supervisor from a recycled pid', () => {
    expect(parsePid('1234\n')).toBe(1234);
    expect(parsePid('abc')).toBeUndefined();
    expect(parsePid('0')).toBeUndefined();
    expect(isTunnelSupervisor(['/usr/bin/node', '/opt/opskit/dist/bin.js', 'tunnel', 'start'])).toBe(true);
    expect(isTunnelSupervisor(['/usr/bin/node', '/usr/local/bin/opskit', 'tunnel', 'start', '--monitor'])).toBe(true);
    expect(isTunnelSupervisor(['/usr/sbin/nginx', '-g', 'daemon off;'])).toBe(false);
    expect(isTunnelSupervisor(undefined)).toBe(true);
  });

  it('reports status: up only when the process runs, says up, and the agent lists the tunnel', () => {
    const state: TunnelState = {
      pid: 10,
      driver: 'agent',
      port: 8000,
      webAddr: '127.0.0.1:4040',
      status: 'up',
      publicUrl: 'https://a',
      startedAt: '2026-12-01T10:00:00.000Z',
      connectedAt: '2026-12-01T10:00:01.000Z',
      reconnects: 2,
      monitor: true,
      updatedAt: '2026-12-01T10:00:01.000Z',
    };
    const listed = { name: 'command_line', publicUrl: 'https://a', proto: 'https', addr: 'http://localhost:8000' };
    const nowMs = Date.parse('2026-12-01T10:05:01.000Z');
    const up = tunnelStatus({ pid: 10, alive: true, state, api: { answering: true, listed }, nowMs });
    expect(up).toMatchObject({ up: true, uptimeMs: 300_000, reconnects: 2, publicUrl: 'https://a', problems: [] });
    expect(
      tunnelStatus({ pid: 10, alive: true, state, api: { answering: false, error: 'ECONNREFUSED' }, nowMs }),
    ).toMatchObject({ up: false, problems: ["the agent's local API does not answer (ECONNREFUSED)"] });
    expect(tunnelStatus({ pid: 10, alive: false, state, nowMs })).toMatchObject({
      up: false,
      status: 'stopped',
      problems: ['the PID file names pid 10, which is not running (stale)'],
    });
    expect(tunnelStatus({ alive: false, nowMs })).toMatchObject({
      up: false,
      reconnects: 0,
      api: null,
      problems: ['no tunnel is running (no PID file)'],
    });
    expect(
      tunnelStatus({ pid: 10, alive: true, state: { ...state, driver: 'sdk', status: 'reconnecting' }, nowMs }),
    ).toMatchObject({ up: false, problems: ['the tunnel is reconnecting'] });
    // The state file of an earlier run, while a new supervisor has just started: not up, and not its status.
    expect(tunnelStatus({ pid: 11, alive: true, state, nowMs })).toMatchObject({
      up: false,
      status: 'stopped',
      problems: ['the supervisor (pid 11) has not reported its tunnel yet'],
    });
  });
});

/** A driver whose opens follow a script: each entry opens a session or throws. */
function scriptedDriver(script: Array<'ok' | 'fail' | 'auth'>) {
  const sessions: Array<TunnelSession & { end(reason: string): void; closed: boolean; listedOk: boolean }> = [];
  let opens = 0;
  const driver: TunnelDriver = {
    name: 'agent',
    async open() {
      const step = script[Math.min(opens, script.length - 1)]!;
      opens++;
      if (step === 'fail') throw new TunnelStartError('the ngrok agent exited (code 1): failed to dial', false);
      if (step === 'auth') throw new TunnelStartError('authentication failed: ERR_NGROK_105', true);
      let end!: (reason: string) => void;
      const ended = new Promise<string>((resolve) => (end = resolve));
      const session = {
        driver: 'agent' as const,
        publicUrl: `https://t${opens}.ngrok.app`,
        agentPid: 1000 + opens,
        ended,
        closed: false,
        listedOk: true,
        end: (reason: string) => end(reason),
        async listed() {
          return session.listedOk
            ? { ok: true, detail: 'listed', publicUrl: session.publicUrl }
            : { ok: false, detail: 'not listed' };
        },
        async close() {
          session.closed = true;
        },
      };
      sessions.push(session);
      return session;
    },
  };
  return { driver, sessions, opens: () => opens };
}

function httpAnswering(statuses: Array<number | Error>): HttpAdapter & { urls: string[] } {
  const urls: string[] = [];
  let i = 0;
  return {
    urls,
    async request(url) {
      urls.push(url);
      const next = statuses[Math.min(i++, statuses.length - 1)]!;
      if (next instanceof Error) throw next;
      return { status: next, headers: {}, body: '', latencyMs: 1 };
    },
  };
}

/** Like manualClock, but a sleep of an hour or more lasts until it is aborted: the interval never ends by itself. */
function haltingClock() {
  const clock = manualClock();
  const sleep = clock.sleep;
  clock.sleep = (ms: number, signal?: AbortSignal) =>
    ms < 3_600_000
      ? sleep(ms)
      : new Promise<void>((_, reject) =>
          signal?.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' })), {
            once: true,
          }),
        );
  return clock;
}

const options = { monitor: true, checkIntervalMs: 30_000, checkPath: '/health', checkTimeoutMs: 10_000, policy };

describe('superviseTunnel', () => {
  it('checks every interval through the public URL, and stops on a stop request, closing the tunnel', async () => {
    const clock = manualClock();
    const { driver, sessions } = scriptedDriver(['ok']);
    const http = httpAnswering([200]);
    const stop = new AbortController();
    const events: SupervisorEvent[] = [];
    const result = await superviseTunnel(driver, { clock, http }, options, stop.signal, (event) => {
      events.push(event);
      if (events.filter((e) => e.type === 'check').length === 3) stop.abort();
    });
    expect(result).toEqual({ outcome: 'stopped', publicUrl: 'https://t1.ngrok.app', reconnects: 0, attempts: 0 });
    expect(http.urls).toEqual([
      'https://t1.ngrok.app/health',
      'https://t1.ngrok.app/health',
      'https://t1.ngrok.app/health',
    ]);
    expect(clock.slept).toEqual([30_000, 30_000, 30_000]);
    expect(sessions[0]!.closed).toBe(true);
    expect(events[0]).toEqual({ type: 'connected', url: 'https://t1.ngrok.app', agentPid: 1001, reconnect: false });
  });

  it('reconnects a failing tunnel after the delay, with backoff, and reports the new URL', async () => {
    const clock = manualClock();
    const { driver, sessions } = scriptedDriver(['ok', 'fail', 'ok']);
    const http = httpAnswering([new Error('timed out after 10.00s'), 200]);
    const stop = new AbortController();
    const events: SupervisorEvent[] = [];
    const result = await superviseTunnel(driver, { clock, http }, options, stop.signal, (event) => {
      events.push(event);
      if (event.type === 'connected' && event.reconnect) stop.abort();
    });
    expect(result).toMatchObject({ outcome: 'stopped', publicUrl: 'https://t3.ngrok.app', reconnects: 1, attempts: 2 });
    expect(sessions[0]!.closed).toBe(true);
    expect(clock.slept).toEqual([30_000, 10_000, 20_000]);
    expect(events.map((e) => e.type)).toEqual([
      'connected',
      'check',
      'down',
      'reconnecting',
      'attempt-failed',
      'reconnecting',
      'connected',
    ]);
    expect(events.at(-1)).toEqual({
      type: 'connected',
      url: 'https://t3.ngrok.app',
      agentPid: 1003,
      reconnect: true,
      previousUrl: 'https://t1.ngrok.app',
    });
  });

  it('reconnects at once (after the delay) when the agent exits, without waiting for a check', async () => {
    const clock = haltingClock();
    const { driver, sessions } = scriptedDriver(['ok']);
    const http = strictFake<HttpAdapter>('http', {});
    const stop = new AbortController();
    const events: SupervisorEvent[] = [];
    const promise = superviseTunnel(
      driver,
      { clock, http },
      { ...options, checkIntervalMs: 3_600_000 },
      stop.signal,
      (event) => {
        events.push(event);
        if (event.type === 'connected' && event.reconnect) stop.abort();
      },
    );
    await new Promise((resolve) => setImmediate(resolve));
    sessions[0]!.end('the ngrok agent exited (signal SIGKILL)');
    const result = await promise;
    expect(result).toMatchObject({ outcome: 'stopped', reconnects: 1 });
    expect(events.find((e) => e.type === 'down')).toEqual({
      type: 'down',
      reason: 'the ngrok agent exited (signal SIGKILL)',
    });
  });

  it('gives up when the attempts are spent', async () => {
    const clock = manualClock();
    const { driver, opens } = scriptedDriver(['ok', 'fail']);
    const http = httpAnswering([new Error('ECONNRESET')]);
    const result = await superviseTunnel(
      driver,
      { clock, http },
      { ...options, policy: { ...policy, maxAttempts: 3 } },
      new AbortController().signal,
      () => undefined,
    );
    expect(result).toEqual({
      outcome: 'gave-up',
      publicUrl: 'https://t1.ngrok.app',
      reconnects: 0,
      attempts: 3,
      lastError: 'the ngrok agent exited (code 1): failed to dial',
    });
    expect(opens()).toBe(4);
    expect(clock.slept).toEqual([30_000, 10_000, 20_000, 40_000]);
  });

  it('gives up at once on a permanent failure, and resets the attempt count after a healthy period', async () => {
    const clock = manualClock();
    const auth = scriptedDriver(['ok', 'auth']);
    const first = await superviseTunnel(
      auth.driver,
      { clock, http: httpAnswering([new Error('ECONNRESET')]) },
      options,
      new AbortController().signal,
      () => undefined,
    );
    expect(first).toMatchObject({ outcome: 'gave-up', attempts: 1, lastError: 'authentication failed: ERR_NGROK_105' });
    expect(auth.opens()).toBe(2);

    // fail, reconnect; healthy for resetAfter; fail again: the attempts start from 1 again.
    const { driver, sessions } = scriptedDriver(['ok']);
    const http = httpAnswering([200]);
    const stop = new AbortController();
    const reconnecting: number[] = [];
    let checks = 0;
    const result = await superviseTunnel(
      driver,
      { clock, http },
      { ...options, policy: { ...policy, resetAfterMs: 60_000 } },
      stop.signal,
      (event) => {
        if (event.type === 'reconnecting') reconnecting.push(event.attempt);
        if (event.type === 'check') checks++;
        if (event.type === 'connected' && sessions.length === 1) sessions[0]!.listedOk = false;
        if (event.type === 'check' && checks === 4) sessions.at(-1)!.listedOk = false;
        if (event.type === 'connected' && sessions.length === 3) stop.abort();
      },
    );
    expect(result).toMatchObject({ outcome: 'stopped', reconnects: 2 });
    expect(reconnecting).toEqual([1, 1]);
  });

  it('without --monitor: no checks; the tunnel ending is the end (exit 1 upstream); a first failure is thrown', async () => {
    const clock = manualClock();
    const { driver, sessions } = scriptedDriver(['ok']);
    const promise = superviseTunnel(
      driver,
      { clock, http: strictFake<HttpAdapter>('http', {}) },
      { ...options, monitor: false },
      new AbortController().signal,
      () => undefined,
    );
    await new Promise((resolve) => setImmediate(resolve));
    sessions[0]!.end('the ngrok agent exited (code 1)');
    expect(await promise).toMatchObject({ outcome: 'ended', lastError: 'the ngrok agent exited (code 1)' });
    await expect(
      superviseTunnel(
        scriptedDriver(['fail']).driver,
        { clock, http: strictFake<HttpAdapter>('http', {}) },
        { ...options, monitor: false },
        new AbortController().signal,
        () => undefined,
      ),
    ).rejects.toThrow(/failed to dial/);
  });

  it('with --monitor, a failed first start is retried', async () => {
    const clock = manualClock();
    const { driver } = scriptedDriver(['fail', 'ok']);
    const stop = new AbortController();
    const result = await superviseTunnel(
      driver,
      { clock, http: httpAnswering([200]) },
      options,
      stop.signal,
      (event) => {
        if (event.type === 'connected') stop.abort();
      },
    );
    expect(result).toMatchObject({ outcome: 'stopped', publicUrl: 'https://t2.ngrok.app', reconnects: 1 });
  });
});

/** Stands in for the `@ngrok/ngrok` module at the SDK driver's boundary: forward, listeners, status changes. */
function fakeSdk() {
  const forwarded: Array<Record<string, unknown>> = [];
  const open = new Map<string, NgrokSdkListener & { finish(): void; closed: boolean }>();
  let n = 0;
  const sdk: NgrokSdk & { failNext?: Error } = {
    async forward(config) {
      forwarded.push(config);
      if (sdk.failNext) {
        const error = sdk.failNext;
        sdk.failNext = undefined;
        throw error;
      }
      const id = `tun_${++n}`;
      let finish!: () => void;
      const joined = new Promise<void>((resolve) => (finish = resolve));
      const listener = {
        closed: false,
        id: () => id,
        url: () => `https://sdk${n}.ngrok-free.app`,
        join: () => joined,
        finish,
        async close() {
          listener.closed = true;
          open.delete(id);
          finish();
        },
      };
      open.set(id, listener);
      return listener;
    },
    async listeners() {
      return [...open.values()];
    },
  };
  return { sdk, forwarded, open };
}

describe('sdkDriver with the supervisor', () => {
  it('connects, notices a closed session through its status, reconnects, and disconnects on stop', async () => {
    const clock = manualClock();
    const { sdk, forwarded, open } = fakeSdk();
    const driver = sdkDriver({
      port: 8000,
      authtoken: 'tok_sdk',
      url: undefined,
      startTimeoutMs: 30_000,
      clock,
      load: async () => sdk,
      onLog: () => undefined,
    });
    const stop = new AbortController();
    const events: SupervisorEvent[] = [];
    let checks = 0;
    const result = await superviseTunnel(
      driver,
      { clock, http: httpAnswering([200]) },
      options,
      stop.signal,
      (event) => {
        events.push(event);
        if (event.type === 'check' && ++checks === 1) (forwarded[0]!.onStatusChange as (s: string) => void)('closed');
        if (event.type === 'connected' && event.reconnect) stop.abort();
      },
    );
    expect(forwarded).toHaveLength(2);
    expect(forwarded[0]).toMatchObject({ addr: 8000, proto: 'http', authtoken: 'tok_sdk' });
    expect(events.find((e) => e.type === 'down')).toEqual({ type: 'down', reason: 'the SDK session is disconnected' });
    expect(result).toMatchObject({ outcome: 'stopped', publicUrl: 'https://sdk2.ngrok-free.app', reconnects: 1 });
    expect(open.size).toBe(0);
  });

  it('treats a listener that ends as a down tunnel, and an SDK auth error as permanent', async () => {
    const clock = haltingClock();
    const { sdk, open } = fakeSdk();
    const driver = sdkDriver({
      port: 8000,
      authtoken: 'bad',
      url: undefined,
      startTimeoutMs: 30_000,
      clock,
      load: async () => sdk,
      onLog: () => undefined,
    });
    const stop = new AbortController();
    const events: SupervisorEvent[] = [];
    const promise = superviseTunnel(
      driver,
      { clock, http: httpAnswering([200]) },
      { ...options, checkIntervalMs: 3_600_000 },
      stop.signal,
      (event) => {
        events.push(event);
        if (event.type === 'connected' && !event.reconnect)
          sdk.failNext = Object.assign(
            new Error('failed to connect session: authentication failed: The authtoken you specified is invalid'),
            { errorCode: 'ERR_NGROK_105' },
          );
      },
    );
    await new Promise((resolve) => setImmediate(resolve));
    [...open.values()][0]!.finish();
    const result = await promise;
    expect(events.find((e) => e.type === 'down')).toEqual({ type: 'down', reason: 'the SDK listener closed' });
    expect(result).toMatchObject({ outcome: 'gave-up', attempts: 1 });
    expect(result.lastError).toMatch(/authentication failed.*\(ERR_NGROK_105\)/);
  });

  it('a stop while the SDK is still connecting ends the start at once, and closes the listener when it arrives', async () => {
    let arrive!: (l: NgrokSdkListener) => void;
    let closed = false;
    const sdk: NgrokSdk = {
      forward: () => new Promise((resolve) => (arrive = resolve)),
      listeners: async () => [],
    };
    const driver = sdkDriver({
      port: 8000,
      authtoken: undefined,
      url: undefined,
      startTimeoutMs: 3_600_000,
      clock: haltingClock(),
      load: async () => sdk,
      onLog: () => undefined,
    });
    const stop = new AbortController();
    const opening = driver.open(stop.signal);
    await new Promise((resolve) => setImmediate(resolve));
    stop.abort();
    await expect(opening).rejects.toMatchObject({ message: 'stopped while the SDK was connecting', permanent: false });
    arrive({
      id: () => 'x',
      url: () => 'https://late.ngrok.app',
      join: () => new Promise(() => undefined),
      close: async () => {
        closed = true;
      },
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(closed).toBe(true);
  });

  it('a module that cannot load is a permanent start failure naming the way out', async () => {
    const driver = sdkDriver({
      port: 8000,
      authtoken: undefined,
      url: undefined,
      startTimeoutMs: 1000,
      clock: manualClock(),
      load: async () => {
        throw new Error('Cannot find module @ngrok/ngrok-linux-x64-gnu');
      },
      onLog: () => undefined,
    });
    await expect(driver.open()).rejects.toMatchObject({
      permanent: true,
      message: expect.stringMatching(/could not be loaded .*set NGROK_BIN/),
    });
  });
});
