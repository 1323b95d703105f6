import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSingleJson } from '../helpers/cli.js';
import { docker } from '../helpers/docker.js';
import { freshColors, freshJson } from '../helpers/http.js';
import { failures, type LoadResult, NO_FAILURES, startLoad } from '../helpers/load.js';
import { createPlatform, type Platform } from '../helpers/platform.js';
import { waitFor } from '../helpers/wait.js';

/** Cycles of rollback + cutover in the suite's soak (OPSKIT_TEST_CYCLES overrides; at least 20 in CI). */
const CYCLES = Number(process.env.OPSKIT_TEST_CYCLES ?? 20);

describe('opskit cutover / rollback / status: blue-green under load', () => {
  let p: Platform;
  let v1 = '';
  let v2 = '';
  let front = '';

  beforeAll(async () => {
    p = await createPlatform('opskit-cutover-');
    const deployed = await p.run(['deploy', '--build', '--json']);
    expect(deployed.exitCode, deployed.stderr).toBe(0);
    v1 = parseSingleJson(deployed.stdout).image as string;
    appendFileSync(path.join(p.dir, 'app.py'), '\n# version 2\n');
    const built = await p.run(['build', '--json']);
    expect(built.exitCode, built.stderr).toBe(0);
    v2 = (parseSingleJson(built.stdout).tags as string[])[0]!;
    // Load goes to the nginx container's own address: through nginx, without the userland proxy.
    const nginx = (
      await docker([
        'ps',
        '-q',
        '--filter',
        `label=com.docker.compose.project=${p.project}`,
        '--filter',
        'label=com.docker.compose.service=nginx',
      ])
    ).stdout.trim();
    const ip = (
      await docker(['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', nginx])
    ).stdout.trim();
    front = `http://${ip}:80/health`;
    nginxId = nginx;
  });
  let nginxId = '';
  /** nginx's processes as the host sees them: a reload would replace the workers. */
  // nginx's own processes only: the container's healthcheck (curl, every 5 s) comes and goes beside them.
  const nginxPids = async () =>
    (await docker(['top', nginxId, '-o', 'pid,comm'])).stdout
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s+/))
      .filter(([pid, comm]) => pid && comm === 'nginx')
      .map(([pid]) => pid)
      .sort();
  afterAll(async () => {
    await p?.destroy();
    const leftovers = (
      await docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${p?.project}`], { reject: false })
    ).stdout
      .split('\n')
      .filter(Boolean);
    if (leftovers.length) await docker(['rm', '-f', ...leftovers], { reject: false });
  });

  // On a connection of its own: after a reload-mode switch an old keep-alive connection may still reach an old worker.
  const colorNow = () => freshJson<{ color: string; version: string }>(front);

  it('with nothing to roll back to, rollback exits 1', async () => {
    const r = await p.run(['rollback']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('nothing to roll back to');
  });

  it('blue to green under a 50-connection load through nginx: 0 non-2xx, 0 errors, 0 timeouts, the traffic ends on green', async () => {
    expect((await colorNow()).color).toBe('blue');
    const pidsBefore = await nginxPids();
    const load = await startLoad(front, 50);
    await new Promise((r) => setTimeout(r, 1000));
    const r = await p.run(['cutover', '--image', v2, '--json']);
    await new Promise((r) => setTimeout(r, 1000));
    const result = await load.stop();
    expect(r.exitCode, r.stderr).toBe(0);
    expect(failures(result)).toEqual(NO_FAILURES);
    expect(result.requests).toBeGreaterThan(100);
    expect(await colorNow()).toMatchObject({ color: 'green' });
    expect(await nginxPids(), 'the switch re-points live.sock; nginx is not reloaded').toEqual(pidsBefore);
    const doc = parseSingleJson(r.stdout);
    expect(doc).toMatchObject({
      action: 'cutover',
      from: 'blue',
      to: 'green',
      image: v2,
      oldColor: { color: 'blue', state: 'warm' },
    });
    expect(doc.switchMs as number).toBeGreaterThan(0); // how fast is the bench's business (npm run bench, npm run soak)
    const status = parseSingleJson((await p.run(['status', '--json'])).stdout);
    expect(status).toMatchObject({
      live: 'green',
      colors: [
        { color: 'blue', live: false, image: v1, state: 'running' },
        { color: 'green', live: true, image: v2, state: 'running' },
      ],
    });
  });

  // The soak's short form (npm run soak runs 100 cycles): each cycle a warm rollback and a cutover to a
  // fresh container of the other image, all under one 50-connection load through nginx.
  it(`${CYCLES} cycles of a warm rollback and a real cutover under that load: 0 failed requests of any kind`, {
    timeout: 900_000,
  }, async () => {
    const load = await startLoad(front, 50, 800);
    let result: LoadResult | undefined;
    try {
      for (let i = 0; i < CYCLES; i++) {
        const back = await p.run(['rollback', '--json']);
        expect(back.exitCode, back.stderr).toBe(0);
        const doc = parseSingleJson(back.stdout);
        expect(doc).toMatchObject({ action: 'rollback', restarted: false });
        const live = await colorNow();
        expect(live.color, `cycle ${i}: after the rollback`).toBe(doc.to);
        const forward = await p.run(['cutover', '--image', live.version === v1.split(':')[1] ? v2 : v1, '--json']);
        expect(forward.exitCode, forward.stderr).toBe(0);
        expect((await colorNow()).color, `cycle ${i}: after the cutover`).toBe(parseSingleJson(forward.stdout).to);
      }
    } finally {
      result = await load.stop();
    }
    expect(failures(result)).toEqual(NO_FAILURES);
    expect(result.requests).toBeGreaterThan(CYCLES * 10);
  });

  it('a warm rollback (no load) restarts nothing and reloads nothing', async () => {
    const pids = await nginxPids();
    expect(pids.length, 'nginx master and workers').toBeGreaterThan(1);
    for (let i = 0; i < 2; i++) {
      const before = (await colorNow()).color;
      const r = await p.run(['rollback', '--json']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(parseSingleJson(r.stdout)).toMatchObject({ action: 'rollback', restarted: false, from: before });
      expect((await colorNow()).color).not.toBe(before);
    }
    expect(await nginxPids()).toEqual(pids);
  });

  it('an unhealthy new colour aborts: exit 1, the live colour keeps serving with 0 failed requests', async () => {
    // The same app, carrying a migration that was never applied: its /health answers 503.
    const context = path.join(p.dir, '.bad-image');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(context, { recursive: true });
    writeFileSync(
      path.join(context, 'Dockerfile'),
      `FROM ${v2}\nRUN echo 'SELECT 1;' > /app/migrations/9999_future.sql\nLABEL org.opskit.project=${p.project}\n`,
    );
    await docker(['build', '-q', '-t', `${p.project}:unhealthy`, context]);
    const before = await colorNow();
    const load = await startLoad(front, 50);
    const r = await p.run(['cutover', '--tag', 'unhealthy', '--health-timeout', '4s']);
    const result = await load.stop();
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('did not pass its health check');
    expect(r.stderr).toContain('older than this version expects');
    // An aborted cutover never reloads nginx: here not even a reset.
    expect(failures(result)).toEqual(NO_FAILURES);
    expect((await colorNow()).color).toBe(before.color);
  });

  it("a failing smoke command aborts; a passing one (the example's pytest) lets the cutover through", async () => {
    const yamlPath = path.join(p.dir, 'opskit.yaml');
    const original = readFileSync(yamlPath, 'utf8');
    const before = await colorNow();
    try {
      writeFileSync(
        yamlPath,
        original.replace(
          '  # smoke: [pytest, -q, tests/]',
          '  smoke: [python3, -c, "import sys; print(\'smoke says no\'); sys.exit(3)"]',
        ),
      );
      const failed = await p.run(['cutover', '--image', before.version === v1.split(':')[1] ? v2 : v1]);
      expect(failed.exitCode).toBe(1);
      expect(failed.stderr).toContain('the smoke command');
      expect(failed.stderr).toContain('smoke says no');
      expect((await colorNow()).color).toBe(before.color);
      writeFileSync(
        yamlPath,
        original.replace(
          '  # smoke: [pytest, -q, tests/]',
          '  smoke: [python3, -m, pytest, -q, -p, no:cacheprovider, tests/]',
        ),
      );
      const passed = await p.run(['cutover', '--image', before.version === v1.split(':')[1] ? v2 : v1]);
      expect(passed.exitCode, passed.stderr).toBe(0);
      expect((await colorNow()).color).not.toBe(before.color);
    } finally {
      writeFileSync(yamlPath, original);
    }
  });

  it("a broken upstream template aborts with nginx's message and the live config intact", async () => {
    const upstream = path.join(p.dir, 'nginx/upstream/web.conf');
    const live = readFileSync(upstream, 'utf8');
    writeFileSync(
      path.join(p.dir, 'broken-upstream.tmpl'),
      'upstream web {\n  server {{server}} no_such_parameter;\n}\n',
    );
    const before = await colorNow();
    const r = await p.run([
      'cutover',
      '--image',
      before.version === v1.split(':')[1] ? v2 : v1,
      '--set',
      'nginx.upstreamTemplate=broken-upstream.tmpl',
    ]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('nginx -t rejected the new upstream; the live config is untouched');
    expect(r.stderr).toContain('no_such_parameter');
    expect(readFileSync(upstream, 'utf8')).toBe(live);
    expect((await colorNow()).color).toBe(before.color);
  });

  it('a second cutover while one runs exits 4', async () => {
    const first = p.run(['cutover', '--tag', 'unhealthy', '--health-timeout', '20s']);
    // The second starts once the first holds the lock (it then gates for 20 s).
    await waitFor('the first cutover to take the lock', () => existsSync(path.join(p.dir, '.opskit', 'lock')));
    const second = await p.run(['cutover', '--image', v1]);
    expect(second.exitCode).toBe(4);
    expect(second.stderr).toContain('running "opskit cutover"');
    expect((await first).exitCode).toBe(1);
  });

  it('rollback to a stopped previous colour starts it again from its image, gated on health', async () => {
    const before = await colorNow();
    const fin = await p.run(['cutover', '--finalize', '--json']);
    expect(fin.exitCode, fin.stderr).toBe(0);
    expect(parseSingleJson(fin.stdout)).toMatchObject({ action: 'finalize', changed: true });
    const status = parseSingleJson((await p.run(['status', '--json'])).stdout) as {
      colors: Array<{ live: boolean; state: string }>;
    };
    expect(status.colors.find((c) => !c.live)!.state).toBe('stopped');
    const r = await p.run(['rollback', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(parseSingleJson(r.stdout)).toMatchObject({ action: 'rollback', restarted: true });
    expect((await colorNow()).color).not.toBe(before.color);
  });

  it('--migrate --build: migrations first with the new image, the live colour keeps serving on the new schema, then the switch', async () => {
    writeFileSync(
      path.join(p.dir, 'migrations/0003_add_price.sql'),
      'ALTER TABLE items ADD COLUMN price numeric NOT NULL DEFAULT 0;\n',
    );
    const load = await startLoad(front, 20);
    const r = await p.run(['cutover', '--migrate', '--build', '--json']);
    const result = await load.stop();
    expect(r.exitCode, r.stderr).toBe(0);
    expect(parseSingleJson(r.stdout)).toMatchObject({ action: 'cutover', migrations: ['0003'] });
    expect(failures(result)).toEqual(NO_FAILURES);
    expect(await freshJson(front)).toMatchObject({ schema: '0003', expectedSchema: '0003', status: 'ok' });
  });

  it('--keep-old stops the old colour after the delay; deploy refuses once blue-green is in use', async () => {
    const before = await colorNow();
    const r = await p.run([
      'cutover',
      '--image',
      before.version === v1.split(':')[1] ? v2 : v1,
      '--keep-old',
      '2s',
      '--json',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(parseSingleJson(r.stdout)).toMatchObject({ oldColor: { state: 'warm', stopAfter: expect.any(String) } });
    let state = '';
    for (let i = 0; i < 40 && state !== 'stopped'; i++) {
      await new Promise((res) => setTimeout(res, 250));
      const s = parseSingleJson((await p.run(['status', '--json'])).stdout) as {
        colors: Array<{ live: boolean; state: string }>;
      };
      state = s.colors.find((c) => !c.live)!.state;
    }
    expect(state).toBe('stopped');
    const deploy = await p.run(['deploy']);
    expect(deploy.exitCode).toBe(2);
    expect(deploy.stderr).toContain('runs blue-green');
  });

  it('cutover.switch: reload names the colour in the upstream file and reloads nginx; back to socket mode, one reload restores the link upstream', async () => {
    const upstream = path.join(p.dir, 'nginx/upstream/web.conf');
    const before = await colorNow();
    const pids = await nginxPids();
    const r = await p.run([
      'cutover',
      '--image',
      before.version === v1.split(':')[1] ? v2 : v1,
      '--set',
      'cutover.switch=reload',
      '--json',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    const to = parseSingleJson(r.stdout).to as string;
    expect(readFileSync(upstream, 'utf8')).toMatch(new RegExp(`server ${p.project}_web_${to}_[a-z0-9]+:8000`));
    expect(await nginxPids()).not.toEqual(pids);
    // opskit returns only once nginx's old workers stopped accepting: every new connection meets the new colour.
    expect(await freshColors(front)).toEqual(Array(10).fill(to));
    const back = await p.run(['rollback', '--json']);
    expect(back.exitCode, back.stderr).toBe(0);
    expect(readFileSync(upstream, 'utf8')).toContain('server unix:/run/opskit/live.sock');
    expect(await freshColors(front)).toEqual(Array(10).fill(before.color));
  });
});
