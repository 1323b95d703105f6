import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BIN, closedPort, opskit, parseSingleJson, REPO, tempDir } from '../helpers/cli.js';
import { schemaValidator } from '../helpers/schema.js';
import { startServer, type TestServer } from '../helpers/servers.js';

const validateStatus = schemaValidator('tunnel-status');

// ngrok's cloud is out of reach here: the agent path runs end to end against a fake agent with the real
// agent's command line, local API, log lines and URL forwarding (tests/fixtures/fake-ngrok.mjs).
const FAKE_AGENT = path.join(REPO, 'tests', 'fixtures', 'fake-ngrok.mjs');
const TOKEN = 'NgrokTunnelTok-7c1e93ab';

interface Project {
  dir: string;
  webAddr: string;
  state: string;
  env: Record<string, string>;
  file(relative: string): string;
  read(relative: string): string | undefined;
  launches(): Array<{ pid: number; launch: number; argv: string[]; hasToken: boolean; tokenInArgv: boolean }>;
}

let upstream: TestServer;
const running: ResultPromise[] = [];

beforeAll(async () => {
  upstream = await startServer({
    '/health': (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"ok"}');
    },
  });
});

afterAll(async () => {
  await upstream.close();
});

afterEach(async () => {
  for (const child of running.splice(0)) {
    child.kill('SIGKILL');
    await child.catch(() => undefined);
  }
  // Agents a SIGKILLed supervisor left behind.
  await execa('pkill', ['-KILL', '-f', FAKE_AGENT], { reject: false });
});

async function project(extra: Record<string, unknown> = {}, env: Record<string, string> = {}): Promise<Project> {
  const dir = tempDir('opskit-tunnel-');
  const webAddr = `127.0.0.1:${await closedPort()}`;
  const state = path.join(dir, 'fake-agent');
  const tunnel = { port: upstream.port, checkTimeout: '1s', startTimeout: '10s', maxReconnectDelay: '2s', ...extra };
  writeFileSync(
    path.join(dir, 'opskit.yaml'),
    `ngrok:\n  webAddr: ${webAddr}\ntunnel:\n${Object.entries(tunnel)
      .map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`)
      .join('\n')}\n`,
  );
  mkdirSync(path.join(dir, 'home'));
  const file = (relative: string) => path.join(dir, relative);
  return {
    dir,
    webAddr,
    state,
    env: {
      NGROK_BIN: FAKE_AGENT,
      NGROK_AUTHTOKEN: TOKEN,
      FAKE_NGROK_STATE: state,
      HOME: path.join(dir, 'home'),
      ...env,
    },
    file,
    read: (relative) => (existsSync(file(relative)) ? readFileSync(file(relative), 'utf8') : undefined),
    launches: () =>
      existsSync(path.join(state, 'launches.jsonl'))
        ? readFileSync(path.join(state, 'launches.jsonl'), 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l))
        : [],
  };
}

/** `opskit tunnel start ...` in the background, as an operator's terminal or a service manager runs it. */
function startTunnel(p: Project, args: string[], env: Record<string, string> = {}) {
  const child = execa(BIN, ['tunnel', 'start', ...args], {
    cwd: p.dir,
    env: { ...p.env, ...env },
    reject: false,
    stdin: 'ignore',
  });
  running.push(child);
  return child;
}

async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function get(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.text() };
}

describe('opskit tunnel (agent driver, against the fake ngrok agent)', () => {
  it('start writes the PID and URL files, forwards, answers url and status; SIGTERM stops the agent and cleans up', async () => {
    const p = await project();
    const child = startTunnel(p, []);
    const url = (await waitFor('the URL file', () => p.read('logs/ngrok-url.txt')?.trim())) as string;
    expect(Number(p.read('logs/ngrok.pid'))).toBe(child.pid);

    const api = (await (await fetch(`http://${p.webAddr}/api/tunnels`)).json()) as {
      tunnels: Array<{ public_url: string }>;
    };
    expect(api.tunnels[0]!.public_url).toBe(url);
    expect(await get(`${url}/health`)).toEqual({ status: 200, body: '{"status":"ok"}' });

    const [launch] = p.launches();
    expect(launch).toMatchObject({ hasToken: true, tokenInArgv: false });
    expect(launch!.argv).toEqual([
      'http',
      String(upstream.port),
      '--config',
      p.file('.opskit/ngrok-agent.yml'),
      '--log',
      'stdout',
      '--log-format',
      'json',
      '--log-level',
      'info',
    ]);

    const found = await opskit(['--json', 'tunnel', 'url'], { cwd: p.dir, env: p.env });
    expect(found.exitCode).toBe(0);
    expect(parseSingleJson(found.stdout)).toMatchObject({ ok: true, url, source: 'file', stale: false });

    const status = await opskit(['--json', 'tunnel', 'status'], { cwd: p.dir, env: p.env });
    expect(status.exitCode).toBe(0);
    expect(validateStatus(parseSingleJson(status.stdout)), JSON.stringify(validateStatus.errors)).toBe(true);
    expect(parseSingleJson(status.stdout)).toMatchObject({
      up: true,
      driver: 'agent',
      process: { pid: child.pid, alive: true },
      api: { answering: true, url },
      publicUrl: url,
      reconnects: 0,
    });

    child.kill('SIGTERM');
    const done = await child;
    expect(done.exitCode).toBe(0);
    expect(done.stdout).toMatch(/tunnel stopped \(SIGTERM\)/);
    expect(alive(launch!.pid)).toBe(false);
    expect(p.read('logs/ngrok.pid')).toBeUndefined();
    expect(p.read('logs/ngrok-url.txt')).toBeUndefined();
    expect(p.read('logs/ngrok-url.txt.stale')?.trim()).toBe(url);
    expect(p.read('logs/ngrok.log')).toMatch(/"msg":"received stop request"/);

    const stale = await opskit(['--json', 'tunnel', 'url'], { cwd: p.dir, env: p.env });
    expect(stale.exitCode).toBe(0);
    expect(parseSingleJson(stale.stdout)).toMatchObject({ url, source: 'cache', stale: true });
    expect(stale.stderr).toMatch(/stale/);
    expect((await opskit(['tunnel', 'url', '--fresh'], { cwd: p.dir, env: p.env })).exitCode).toBe(1);
    const down = await opskit(['tunnel', 'status'], { cwd: p.dir, env: p.env });
    expect(down.exitCode).toBe(3);
    const downJson = await opskit(['--json', 'tunnel', 'status'], { cwd: p.dir, env: p.env });
    expect(downJson.exitCode).toBe(3);
    expect(validateStatus(parseSingleJson(downJson.stdout)), JSON.stringify(validateStatus.errors)).toBe(true);
    expect(parseSingleJson(downJson.stdout)).toMatchObject({ ok: false, up: false, error: { code: 'E_TUNNEL_DOWN' } });
    expect(down.stdout).toMatch(/tunnel\s+down/);

    const audit = p
      .read('logs/opskit-audit.jsonl')!
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(audit.at(-1)).toMatchObject({ command: 'tunnel start', outcome: 'ok', exitCode: 0 });
    for (const text of [
      done.stdout,
      done.stderr,
      found.stdout,
      status.stdout,
      p.read('logs/ngrok.log')!,
      p.read('.opskit/tunnel.json')!,
      p.read('.opskit/ngrok-agent.yml')!,
      p.read('logs/opskit-audit.jsonl')!,
    ]) {
      expect(text).not.toContain(TOKEN);
    }
  });

  it('SIGINT stops it the same way (exit 0)', async () => {
    const p = await project();
    const child = startTunnel(p, []);
    await waitFor('the URL file', () => p.read('logs/ngrok-url.txt'));
    child.kill('SIGINT');
    expect((await child).exitCode).toBe(0);
    expect(p.read('logs/ngrok.pid')).toBeUndefined();
    expect(alive(p.launches()[0]!.pid)).toBe(false);
  });

  it('SIGTERM while the agent is still starting stops it at once (exit 0), leaving nothing behind', async () => {
    const p = await project({}, { FAKE_NGROK_PLAN: 'slow' });
    const child = startTunnel(p, ['--monitor']);
    await waitFor('the agent to be launched', () => p.launches().length === 1);
    const signalled = Date.now();
    child.kill('SIGTERM');
    const done = await child;
    expect(done.exitCode).toBe(0);
    // The fake takes 30 s to report its tunnel: a stop that waited for it could not end this soon.
    expect(Date.now() - signalled).toBeLessThan(15_000);
    expect(alive(p.launches()[0]!.pid)).toBe(false);
    expect(p.read('logs/ngrok.pid')).toBeUndefined();
    expect(p.read('logs/ngrok-url.txt')).toBeUndefined();
  });

  it('--monitor: a killed agent is restarted within the delay and the new URL written', async () => {
    const p = await project();
    // Checks every 10 min: only noticing the agent's exit at once can restart it before the test's deadline.
    const child = startTunnel(p, ['--monitor', '--check-interval', '10m', '--reconnect-delay', '300ms']);
    const first = (await waitFor('the URL file', () => p.read('logs/ngrok-url.txt')?.trim())) as string;
    const agent = p.launches()[0]!;
    const killedAt = Date.now();
    process.kill(agent.pid, 'SIGKILL');
    const second = (await waitFor('a new URL', () => {
      const now = p.read('logs/ngrok-url.txt')?.trim();
      return now && now !== first ? now : undefined;
    })) as string;
    // Restarted long before the next check (10 min away): the exit was noticed at once.
    expect(Date.now() - killedAt).toBeLessThan(120_000);
    expect(p.launches()).toHaveLength(2);
    expect(await get(`${second}/health`)).toMatchObject({ status: 200 });

    const status = parseSingleJson((await opskit(['--json', 'tunnel', 'status'], { cwd: p.dir, env: p.env })).stdout);
    expect(status).toMatchObject({ up: true, publicUrl: second, reconnects: 1, monitor: true });
    child.kill('SIGTERM');
    const done = await child;
    expect(done.exitCode).toBe(0);
    expect(done.stderr).toMatch(/tunnel down: the ngrok agent exited \(signal SIGKILL\)/);
    expect(done.stderr).toMatch(/reconnect attempt 1\/5 in 300ms/);
    expect(done.stderr).toMatch(/the public URL changed/);
  });

  it('--monitor: a tunnel that stops answering fails its check and is replaced', async () => {
    const p = await project({}, { FAKE_NGROK_PLAN: 'hang,ok' });
    const child = startTunnel(p, ['--monitor', '--check-interval', '300ms', '--reconnect-delay', '200ms']);
    const first = (await waitFor('the URL file', () => p.read('logs/ngrok-url.txt')?.trim())) as string;
    await waitFor('a second launch', () => p.launches().length === 2);
    const second = (await waitFor('a new URL', () => {
      const now = p.read('logs/ngrok-url.txt')?.trim();
      return now && now !== first ? now : undefined;
    })) as string;
    expect(await get(`${second}/health`)).toMatchObject({ status: 200 });
    expect(alive(p.launches()[0]!.pid)).toBe(false);
    child.kill('SIGTERM');
    const done = await child;
    expect(done.exitCode).toBe(0);
    expect(done.stderr).toMatch(/tunnel down: GET \/health through the public URL: timed out/);
  });

  it('--monitor: consecutive failures up to the maximum end in exit 1, with a clear message and an audit line', async () => {
    const p = await project({}, { FAKE_NGROK_PLAN: 'die:600,fail' });
    const child = startTunnel(p, [
      '--monitor',
      '--check-interval',
      '5s',
      '--reconnect-attempts',
      '3',
      '--reconnect-delay',
      '200ms',
    ]);
    const done = await child;
    expect(done.exitCode).toBe(1);
    expect(done.stderr).toMatch(
      /the tunnel is down and did not come back after 3 reconnect attempts: the ngrok agent exited \(code 1\): failed to reconnect session/,
    );
    expect(done.stderr).toMatch(/reconnect attempt 3\/3 in 800ms/); // 200 ms, doubled each time
    expect(p.launches()).toHaveLength(4);
    expect(p.read('logs/ngrok.pid')).toBeUndefined();
    const audit = JSON.parse(p.read('logs/opskit-audit.jsonl')!.trim().split('\n').at(-1)!);
    expect(audit).toMatchObject({
      command: 'tunnel start',
      outcome: 'failed',
      exitCode: 1,
      error: { code: 'E_TUNNEL_GAVE_UP' },
    });
    expect(JSON.parse(p.read('.opskit/tunnel.json')!)).toMatchObject({ status: 'failed' });
  });

  it('without --monitor, an agent that dies ends the run with exit 1', async () => {
    const p = await project({}, { FAKE_NGROK_PLAN: 'die:400' });
    const done = await startTunnel(p, []);
    expect(done.exitCode).toBe(1);
    expect(done.stderr).toMatch(/the tunnel ended: the ngrok agent exited \(code 1\)/);
    expect(p.launches()).toHaveLength(1);
  });

  it('a rejected authtoken exits 1 at once, even with --monitor, and is scrubbed from every output', async () => {
    const p = await project({}, { FAKE_NGROK_REQUIRE_TOKEN: 'the-right-token' });
    const done = await startTunnel(p, ['--monitor', '--reconnect-delay', '200ms']);
    expect(done.exitCode).toBe(1);
    expect(done.stderr).toMatch(/the tunnel did not start: .*authentication failed.*ERR_NGROK_105/s);
    expect(done.stderr).toMatch(/hint: check the authtoken/);
    expect(p.launches()).toHaveLength(1);
    // The agent prints "Your authtoken: <token>"; opskit's copy of its log shows *** instead.
    expect(p.read('logs/ngrok.log')).toMatch(/Your authtoken: \*\*\*/);
    for (const text of [done.stdout, done.stderr, p.read('logs/ngrok.log')!, p.read('logs/opskit-audit.jsonl')!])
      expect(text).not.toContain(TOKEN);
  });

  it('url from the agent API when no URL file exists, and exit 1 when no source has one', async () => {
    const p = await project();
    const none = await opskit(['--json', 'tunnel', 'url'], { cwd: p.dir, env: p.env });
    expect(none.exitCode).toBe(1);
    expect(parseSingleJson(none.stdout)).toMatchObject({ ok: false, error: { code: 'E_NO_TUNNEL_URL' } });

    // An agent an operator started by hand, outside opskit.
    const config = p.file('hand.yml');
    writeFileSync(config, `version: "2"\nweb_addr: ${p.webAddr}\n`);
    const agent = execa(
      FAKE_AGENT,
      ['http', String(upstream.port), '--config', config, '--log', 'stdout', '--log-format', 'json'],
      { env: p.env, reject: false },
    );
    running.push(agent);
    await waitFor('the hand-started agent', () => p.launches().length === 1);
    let fromApi: Record<string, unknown> | undefined;
    for (let i = 0; i < 100 && !fromApi; i++) {
      const run = await opskit(['--json', 'tunnel', 'url'], { cwd: p.dir, env: p.env });
      if (run.exitCode === 0) fromApi = parseSingleJson(run.stdout);
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(fromApi).toMatchObject({
      ok: true,
      source: 'api',
      stale: false,
      url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
    });
  });

  it('a stale PID file: stop cleans it up with a message, status exits 3, start proceeds', async () => {
    const p = await project();
    mkdirSync(p.file('logs'));
    const exited = execa('true');
    const dead = exited.pid!;
    await exited;
    writeFileSync(p.file('logs/ngrok.pid'), `${dead}\n`);
    writeFileSync(p.file('logs/ngrok-url.txt'), 'https://old.ngrok-free.app\n');
    const status = await opskit(['tunnel', 'status'], { cwd: p.dir, env: p.env });
    expect(status.exitCode).toBe(3);
    expect(status.stdout).toMatch(new RegExp(`pid ${dead}, which is not running \\(stale\\)`));
    const stop = await opskit(['tunnel', 'stop'], { cwd: p.dir, env: p.env });
    expect(stop.exitCode).toBe(0);
    expect(stop.stdout).toMatch(new RegExp(`removed a stale PID file .*ngrok\\.pid \\(pid ${dead} is not running\\)`));
    expect(p.read('logs/ngrok.pid')).toBeUndefined();
    expect(p.read('logs/ngrok-url.txt.stale')).toBe('https://old.ngrok-free.app\n');
    expect((await opskit(['tunnel', 'stop'], { cwd: p.dir, env: p.env })).stdout).toMatch(/no tunnel is running/);

    writeFileSync(p.file('logs/ngrok.pid'), `${dead}\n`);
    const child = startTunnel(p, []);
    await waitFor('the URL file', () => p.read('logs/ngrok-url.txt'));
    // A second start while this one runs: exit 4, its files untouched.
    const second = await opskit(['tunnel', 'start'], { cwd: p.dir, env: p.env });
    expect(second.exitCode).toBe(4);
    expect(second.stderr).toMatch(new RegExp(`a tunnel is already running \\(pid ${child.pid}`));
    expect(Number(p.read('logs/ngrok.pid'))).toBe(child.pid);
    child.kill('SIGTERM');
    expect((await child).stderr).toMatch(/removed a stale PID file/);
  });

  it('--detach runs it in the background; stop stops it and its agent', async () => {
    const p = await project();
    const started = await opskit(['--json', 'tunnel', 'start', '--detach', '--monitor', '--check-interval', '1s'], {
      cwd: p.dir,
      env: p.env,
    });
    expect(started.exitCode).toBe(0);
    const doc = parseSingleJson(started.stdout);
    expect(doc).toMatchObject({
      ok: true,
      detached: true,
      outcome: 'running',
      publicUrl: expect.stringMatching(/^http:\/\//),
    });
    const pid = doc.pid as number;
    expect(alive(pid)).toBe(true);
    expect(Number(p.read('logs/ngrok.pid'))).toBe(pid);
    expect(await get(`${doc.publicUrl as string}/health`)).toMatchObject({ status: 200 });
    expect((await opskit(['tunnel', 'status'], { cwd: p.dir, env: p.env })).exitCode).toBe(0);

    const stop = await opskit(['tunnel', 'stop'], { cwd: p.dir, env: p.env });
    expect(stop.exitCode).toBe(0);
    expect(stop.stdout).toMatch(new RegExp(`stopped the tunnel \\(pid ${pid}\\)`));
    expect(alive(pid)).toBe(false);
    expect(alive(p.launches()[0]!.pid)).toBe(false);
    expect(p.read('logs/ngrok.pid')).toBeUndefined();
    expect(p.read('logs/tunnel.log')).toMatch(/SIGTERM: closing the tunnel/);
  });

  it('a supervisor killed outright leaves an agent behind: the next stop or start stops it', async () => {
    const p = await project();
    const child = startTunnel(p, []);
    await waitFor('the URL file', () => p.read('logs/ngrok-url.txt'));
    const agent = p.launches()[0]!.pid;
    child.kill('SIGKILL');
    await child;
    expect(alive(agent)).toBe(true);
    const stop = await opskit(['tunnel', 'stop'], { cwd: p.dir, env: p.env });
    expect(stop.exitCode).toBe(0);
    expect(stop.stdout).toMatch(new RegExp(`stopped its orphaned ngrok agent \\(pid ${agent}\\)`));
    await waitFor('the orphan to exit', () => !alive(agent), 5000);
  });

  it('--dry-run prints the agent command with the token hidden and starts nothing', async () => {
    const p = await project();
    const run = await opskit(['--json', '--dry-run', 'tunnel', 'start', '--port', '9000'], { cwd: p.dir, env: p.env });
    expect(run.exitCode).toBe(0);
    expect(parseSingleJson(run.stdout)).toMatchObject({
      dryRun: true,
      outcome: 'planned',
      port: 9000,
      plan: {
        argv: [
          FAKE_AGENT,
          'http',
          '9000',
          '--config',
          p.file('.opskit/ngrok-agent.yml'),
          '--log',
          'stdout',
          '--log-format',
          'json',
          '--log-level',
          'info',
        ],
        env: ['NGROK_AUTHTOKEN=***'],
      },
    });
    expect(p.launches()).toHaveLength(0);
    expect(existsSync(p.file('logs'))).toBe(false);
    expect(run.stdout).not.toContain(TOKEN);
  });

  it('bad input exits 2 naming the flag or key, and writes nothing', async () => {
    const p = await project();
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [['--port', '0'], {}, /--port: "0" is not a whole number from 1 to 65535/],
      [['--port', 'http'], {}, /--port/],
      [['--check-interval', 'soon'], {}, /--check-interval: "soon" is not a duration/],
      [['--reconnect-attempts', '0'], {}, /--reconnect-attempts/],
      [
        ['--driver', 'agent'],
        { NGROK_BIN: '', PATH: '/usr/bin:/bin' },
        /--driver agent: no ngrok agent found: set NGROK_BIN or ngrok.bin/,
      ],
      [
        [],
        { NGROK_BIN: path.join(p.dir, 'missing-ngrok') },
        /ngrok.bin \(or NGROK_BIN\): ".*missing-ngrok" is not an executable file/,
      ],
      [['--driver', 'cloud'], {}, /--driver.*Allowed choices are agent, sdk/],
    ];
    for (const [args, env, message] of cases) {
      const run = await opskit(['tunnel', 'start', ...args], { cwd: p.dir, env: { ...p.env, ...env } });
      expect(run.exitCode, args.join(' ')).toBe(2);
      expect(run.stderr, args.join(' ')).toMatch(message);
    }
    expect(p.launches()).toHaveLength(0);
    expect(existsSync(p.file('logs'))).toBe(false);
  });
});

describe('opskit tunnel (SDK driver)', () => {
  it('loads the real @ngrok/ngrok SDK; with ngrok unreachable it exits 1 naming the cause, the token never shown', async () => {
    const p = await project();
    const env = { ...p.env, NGROK_BIN: '' };
    const run = await opskit(['--json', 'tunnel', 'start', '--driver', 'sdk'], { cwd: p.dir, env, timeoutMs: 60_000 });
    expect(run.exitCode).toBe(1);
    const doc = parseSingleJson(run.stdout);
    expect(doc).toMatchObject({
      ok: false,
      error: {
        code: 'E_TUNNEL_START',
        message: expect.stringMatching(/the ngrok SDK could not open the tunnel: failed to connect session/),
      },
    });
    expect(run.stdout + run.stderr).not.toContain(TOKEN);
    expect(p.read('logs/ngrok.pid')).toBeUndefined();
  });
});
