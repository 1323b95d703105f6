import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/adapters/clock.js';
import { parseTop } from '../../src/adapters/docker.js';
import { nodeFs } from '../../src/adapters/fs.js';
import { nodeHttp } from '../../src/adapters/http.js';
import { configSchema } from '../../src/config/schema.js';
import {
  type CutoverState,
  colorContainerName,
  currentColors,
  oldColorExpired,
  other,
  recordFinalize,
  recordSwitch,
} from '../../src/cutover/plan.js';
import { answeredColor, servesColor } from '../../src/cutover/verify.js';
import { reloadSettled, servingWorkers } from '../../src/platform/reload-wait.js';
import { liveServer, liveSocket, socketName } from '../../src/platform/sockets.js';
import { emptyState } from '../../src/platform/state.js';
import {
  DEFAULT_SOCKET_UPSTREAM_TEMPLATE,
  DEFAULT_UPSTREAM_TEMPLATE,
  renderUpstream,
  sameNginxConfig,
} from '../../src/platform/upstream.js';

const deployed = {
  ...emptyState(),
  deploy: {
    current: { image: 'shop:1', imageId: 'sha256:1', deployedAt: 't0', migrationsApplied: [], durationMs: 1 },
    history: [],
  },
};

describe('colours', () => {
  it('before any cutover, blue is live on the compose web service', () => {
    expect(currentColors(emptyState(), 'web', undefined)).toBeUndefined();
    expect(currentColors(deployed, 'web', { id: 'c-web' })).toEqual({
      live: 'blue',
      colors: {
        blue: {
          image: 'shop:1',
          imageId: 'sha256:1',
          host: 'web',
          container: 'c-web',
          since: 't0',
          managedBy: 'compose',
        },
      },
      keepOldUntil: null,
      history: [],
    });
    expect(other('blue')).toBe('green');
    expect(colorContainerName('shop', 'web', 'green', 'k1')).toBe('shop_web_green_k1');
  });

  it('renders the upstream for the live colour', () => {
    expect(
      renderUpstream(DEFAULT_UPSTREAM_TEMPLATE, { server: 'shop_web_green:8000', color: 'green', image: 'shop:2' }),
    ).toBe(
      '# Managed by opskit: `opskit cutover` and `opskit rollback` replace this file. Edits by hand are lost.\n# live: green (shop:2)\nupstream web {\n  server shop_web_green:8000 max_fails=0;\n  keepalive 32;\n}\n',
    );
  });

  it('records switches, keeps the previous colour, and finalizes it', () => {
    const start = currentColors(deployed, 'web', { id: 'c-web' })!;
    const green = {
      image: 'shop:2',
      imageId: 'sha256:2',
      host: 'shop_web_green',
      container: 'c-green',
      since: 't1',
      managedBy: 'opskit' as const,
    };
    const afterCutover = recordSwitch(start, {
      action: 'cutover',
      to: 'green',
      slot: green,
      at: 't1',
      switchMs: 250.4,
      keepOldUntil: '2026-12-01T00:10:00.000Z',
    });
    expect(afterCutover.live).toBe('green');
    expect(afterCutover.colors.blue!.image).toBe('shop:1');
    expect(afterCutover.history[0]).toEqual({
      at: 't1',
      action: 'cutover',
      from: 'blue',
      to: 'green',
      image: 'shop:2',
      switchMs: 250,
    });
    const back: CutoverState = recordSwitch(afterCutover, {
      action: 'rollback',
      to: 'blue',
      at: 't2',
      switchMs: 100,
      keepOldUntil: null,
    });
    expect(back.live).toBe('blue');
    expect(back.history.map((h) => h.action)).toEqual(['rollback', 'cutover']);
    const finalized = recordFinalize(afterCutover, 't3');
    expect(finalized.colors.blue!.container).toBeNull();
    expect(finalized.colors.blue!.image).toBe('shop:1'); // a rollback can still start it again
    expect(oldColorExpired(afterCutover, new Date('2026-12-01T00:09:59Z'))).toBe(false);
    expect(oldColorExpired(afterCutover, new Date('2026-12-01T00:10:00Z'))).toBe(true);
  });

  it('reads which colour answered', () => {
    expect(answeredColor({ headers: { 'x-app-color': 'green' }, body: '' })).toBe('green');
    expect(answeredColor({ headers: {}, body: '{"color":"blue"}' })).toBe('blue');
    expect(answeredColor({ headers: {}, body: 'plain' })).toBeUndefined();
  });

  it('an answer serves the colour when it names it with a 200; a TCP-checked app may name none, but not with a 5xx', () => {
    const r = (status: number, color?: string) => ({
      status,
      headers: (color ? { 'x-app-color': color } : {}) as Record<string, string>,
      body: '',
    });
    expect(servesColor(r(200, 'green'), 'green', false)).toBe('named');
    expect(servesColor(r(200, 'blue'), 'green', false)).toBeUndefined();
    expect(servesColor(r(503, 'green'), 'green', false)).toBeUndefined();
    expect(servesColor(r(404), 'green', false)).toBeUndefined();
    expect(servesColor(r(404), 'green', true)).toBe('unnamed');
    expect(servesColor(r(502), 'green', true)).toBeUndefined();
    expect(servesColor(r(200, 'blue'), 'green', true)).toBeUndefined();
  });

  it('asks over a unix socket (what the check before a switch does), the URL giving only the path', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'opskit-sock-'));
    const socketPath = path.join(dir, 'web.sock');
    const server = http.createServer((req, res) => {
      res.setHeader('x-app-color', 'green');
      res.end(req.url);
    });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    try {
      const r = await nodeHttp.request('http://localhost/health?x=1', { socketPath, timeoutMs: 5000 });
      expect(r).toMatchObject({ status: 200, body: '/health?x=1', headers: { 'x-app-color': 'green' } });
      await expect(
        nodeHttp.request('http://localhost/health', { socketPath: path.join(dir, 'none.sock'), timeoutMs: 5000 }),
      ).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the socket switch', () => {
  it('renders the same upstream for every colour, and the init template matches it', async () => {
    const { readFileSync } = await import('node:fs');
    const blue = renderUpstream(DEFAULT_SOCKET_UPSTREAM_TEMPLATE, {
      server: 'unix:/run/opskit/live.sock',
      color: 'blue',
      image: 'shop:1',
    });
    const green = renderUpstream(DEFAULT_SOCKET_UPSTREAM_TEMPLATE, {
      server: 'unix:/run/opskit/live.sock',
      color: 'green',
      image: 'shop:2',
    });
    expect(green).toBe(blue);
    expect(blue).not.toMatch(/keepalive/); // a cached upstream connection would keep reaching the old colour
    const initTemplate = readFileSync(new URL('../../nginx/upstream/web.conf', import.meta.url), 'utf8').replaceAll(
      '{{upstream}}',
      'unix:/run/opskit/live.sock',
    );
    expect(sameNginxConfig(initTemplate, blue)).toBe(true);
    expect(sameNginxConfig(blue, blue.replace('max_fails=0', 'max_fails=1'))).toBe(false);
    expect(sameNginxConfig('# a\nupstream web {\n  server x;\n}\n', 'upstream   web {\n\n server x;  # b\n}')).toBe(
      true,
    );
  });

  it("names a container's socket by its hostname (the id's first 12 characters); nginx sees the compose mount or the host path", () => {
    expect(socketName('0123456789abcdef0123')).toBe('web-0123456789ab.sock');
    const config = configSchema.parse({});
    expect(liveServer(config, '/srv/shop/run')).toBe('unix:/run/opskit/live.sock');
    expect(liveServer(configSchema.parse({ nginx: { mode: 'host' } }), '/srv/shop/run')).toBe(
      'unix:/srv/shop/run/live.sock',
    );
  });

  it('re-points live.sock atomically with a relative link, creates the directory writable by all (sticky)', async () => {
    const { mkdtempSync, statSync, readlinkSync, writeFileSync } = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'opskit-sock-')), 'run');
    const sockets = liveSocket(nodeFs, systemClock, dir);
    await sockets.prepare();
    expect(statSync(dir).mode & 0o7777).toBe(0o1777);
    expect(await sockets.current()).toBeUndefined();
    await sockets.point('web-aaaaaaaaaaaa.sock');
    await sockets.point('web-bbbbbbbbbbbb.sock');
    expect(readlinkSync(path.join(dir, 'live.sock'))).toBe('web-bbbbbbbbbbbb.sock');
    expect(await sockets.current()).toBe('web-bbbbbbbbbbbb.sock');
    await expect(sockets.waitFor('cccccccccccc', 150)).rejects.toMatchObject({ code: 'E_NO_SOCKET' });
    writeFileSync(path.join(dir, 'web-cccccccccccc.sock'), '');
    await sockets.waitFor('cccccccccccc', 150);
    await sockets.forget('cccccccccccc');
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(dir).sort()).toEqual(['live.sock']);
  });
});

describe('waiting for a reload to replace the workers', () => {
  const procs = (...entries: [number, string][]) => entries.map(([pid, command]) => ({ pid, command }));

  it('counts only the workers that accept connections', () => {
    const list = procs(
      [1, 'nginx: master process nginx -g daemon off;'],
      [7, 'nginx: worker process'],
      [8, 'nginx: worker process is shutting down'],
      [9, 'nginx: cache manager process'],
      [10, 'nginx: worker process\0\0'],
    );
    expect(servingWorkers(list)).toEqual([7, 10]);
  });

  it('is settled only when no old worker serves and a new one does', () => {
    expect(reloadSettled([7], procs([7, 'nginx: worker process']))).toBe(false);
    expect(reloadSettled([7], procs([7, 'nginx: worker process'], [11, 'nginx: worker process']))).toBe(false);
    expect(reloadSettled([7], procs([7, 'nginx: worker process is shutting down']))).toBe(false);
    expect(
      reloadSettled([7], procs([7, 'nginx: worker process is shutting down'], [11, 'nginx: worker process'])),
    ).toBe(true);
    expect(reloadSettled([7], procs([11, 'nginx: worker process']))).toBe(true);
  });

  it('has nothing to wait for when the workers could not be listed', () => {
    expect(reloadSettled([], [])).toBe(true);
  });

  it("reads the Engine's top answer by its column titles", () => {
    const titles = ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD'];
    const rows = [
      ['root', '4242', '4200', '0', '12:00', '?', '00:00:00', 'nginx: master process nginx -g daemon off;'],
      ['101', '4250', '4242', '0', '12:00', '?', '00:00:00', 'nginx: worker process'],
      ['101', 'x', '4242', '0', '12:00', '?', '00:00:00', 'garbage'],
    ];
    expect(parseTop(titles, rows)).toEqual([
      { pid: 4242, command: 'nginx: master process nginx -g daemon off;' },
      { pid: 4250, command: 'nginx: worker process' },
    ]);
    expect(parseTop(['USER', 'NAME'], rows)).toEqual([]);
  });
});
