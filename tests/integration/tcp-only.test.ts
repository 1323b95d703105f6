import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSingleJson } from '../helpers/cli.js';
import { docker } from '../helpers/docker.js';
import { freshColors } from '../helpers/http.js';
import { failures, type LoadResult, NO_FAILURES, startLoad } from '../helpers/load.js';
import { createPlatform, type Platform } from '../helpers/platform.js';

/**
 * An app that listens only on TCP and has no health endpoint opskit may rely on: the example with its
 * unix-socket bind removed, `cutover.switch: relay` (a relay beside each colour opens the socket the
 * link switches between) and `deploy.healthCheck: tcp`.
 */
describe('a TCP-only app: cutover.switch relay, a TCP-connect health check', () => {
  let p: Platform;
  let v1 = '';
  let v2 = '';
  let front = '';
  const settings = ['--set', 'cutover.switch=relay', '--set', 'deploy.healthCheck=tcp'];
  const run = (args: string[]) => p.run([...args, ...settings]);
  const relaysRunning = async () =>
    (
      await docker([
        'ps',
        '-q',
        '--filter',
        `label=com.docker.compose.project=${p.project}`,
        '--filter',
        'label=org.opskit.role=relay',
      ])
    ).stdout
      .split('\n')
      .filter(Boolean);

  beforeAll(async () => {
    p = await createPlatform('opskit-tcp-only-');
    const conf = path.join(p.dir, 'gunicorn.conf.py');
    writeFileSync(conf, readFileSync(conf, 'utf8').replace(/\nif os\.path\.isdir\(socket_dir\)[^\n]*\n[^\n]*\n/, '\n'));
    expect(readFileSync(conf, 'utf8')).not.toContain('bind.append');
    // And a Dockerfile as operators write them today: pip's downloads in a BuildKit cache mount.
    const dockerfile = path.join(p.dir, 'Dockerfile.prod');
    writeFileSync(
      dockerfile,
      readFileSync(dockerfile, 'utf8').replace(
        'RUN mkdir -p /install',
        'RUN --mount=type=cache,target=/root/.cache/pip mkdir -p /install',
      ),
    );
    expect(readFileSync(dockerfile, 'utf8')).toContain('RUN --mount=type=cache,target=/root/.cache/pip');
  });
  afterAll(async () => {
    const leftovers = (
      await docker(
        [
          'ps',
          '-aq',
          '--filter',
          `label=com.docker.compose.project=${p?.project}`,
          '--filter',
          'label=org.opskit.role',
        ],
        { reject: false },
      )
    ).stdout
      .split('\n')
      .filter(Boolean);
    if (leftovers.length) await docker(['rm', '-f', ...leftovers], { reject: false });
    await p?.destroy();
  });

  it('deploy --build (a RUN --mount=type=cache Dockerfile): gated on a TCP connect (said so), the relay opens the socket, nginx answers through the live.sock link', async () => {
    const r = await run(['deploy', '--build', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    v1 = parseSingleJson(r.stdout).image as string;
    expect(r.stderr).toContain('accepts a TCP connection on port 8000 (its answers are not checked)');
    expect(r.stderr).toContain('start the relay');
    expect(readFileSync(path.join(p.dir, 'nginx/upstream/web.conf'), 'utf8')).toContain(
      'server unix:/run/opskit/live.sock',
    );
    expect(await relaysRunning()).toHaveLength(1);
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
    expect(await freshColors(front, 3)).toEqual(['blue', 'blue', 'blue']);
    const health = await run(['health', '--json']);
    expect(health.exitCode, health.stdout).toBe(0);
    expect(parseSingleJson(health.stdout).checks).toContainEqual(
      expect.objectContaining({ name: 'through nginx /health', status: 'pass' }),
    );
    appendFileSync(path.join(p.dir, 'app.py'), '\n# tcp-only v2\n');
    const built = await run(['build', '--json']);
    expect(built.exitCode, built.stderr).toBe(0);
    v2 = (parseSingleJson(built.stdout).tags as string[])[0]!;
  });

  it('15 switches (5 × cutover, rollback, cutover) under a 50-connection load through nginx: 0 failed requests of any kind', {
    timeout: 600_000,
  }, async () => {
    const load = await startLoad(front, 50, 400);
    let result: LoadResult | undefined;
    try {
      for (let i = 0; i < 5; i++) {
        const cut = await run(['cutover', '--image', i % 2 === 0 ? v2 : v1, '--json']);
        expect(cut.exitCode, cut.stderr).toBe(0);
        const to = parseSingleJson(cut.stdout).to as string;
        expect(await freshColors(front, 3), `cycle ${i}: after the cutover`).toEqual([to, to, to]);
        const back = await run(['rollback', '--json']);
        expect(back.exitCode, back.stderr).toBe(0);
        const doc = parseSingleJson(back.stdout);
        expect(doc).toMatchObject({ action: 'rollback', restarted: false });
        expect(await freshColors(front, 3), `cycle ${i}: after the rollback`).toEqual([doc.to, doc.to, doc.to]);
        const forward = await run(['cutover', '--image', i % 2 === 0 ? v2 : v1, '--json']);
        expect(forward.exitCode, forward.stderr).toBe(0);
      }
    } finally {
      result = await load.stop();
    }
    const failed = failures(result);
    expect(failed, failed.non2xx || failed.errors ? await p.nginxErrors() : '').toEqual(NO_FAILURES);
    expect(result.requests).toBeGreaterThan(1000);
    // One relay per web container still up: the live colour and the warm one.
    expect(await relaysRunning()).toHaveLength(2);
  });

  it('a warm colour whose relay is gone gets it back at the rollback; --finalize stops the old colour and its relay', async () => {
    const status = parseSingleJson((await run(['status', '--json'])).stdout) as {
      live: string;
      colors: Array<{ color: string; host: string }>;
    };
    const warm = status.colors.find((c) => c.color !== status.live)!;
    await docker(['rm', '-f', `${warm.host}-relay`]);
    expect(await relaysRunning()).toHaveLength(1);
    const back = await run(['rollback', '--json']);
    expect(back.exitCode, back.stderr).toBe(0);
    expect(await freshColors(front, 3)).toEqual([warm.color, warm.color, warm.color]);
    expect(await relaysRunning()).toHaveLength(2);
    const fin = await run(['cutover', '--finalize', '--json']);
    expect(fin.exitCode, fin.stderr).toBe(0);
    expect(await relaysRunning()).toHaveLength(1);
    expect(await freshColors(front, 3)).toEqual([warm.color, warm.color, warm.color]);
  });
});
