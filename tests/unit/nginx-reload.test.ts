import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ContainerInfo, DockerAdapter } from '../../src/adapters/docker.js';
import type { ExecAdapter } from '../../src/adapters/exec.js';
import { nodeFs } from '../../src/adapters/fs.js';
import { createContext } from '../../src/cli/run.js';
import { loadConfig } from '../../src/config/load.js';
import { Redactor } from '../../src/config/redact.js';
import { nginxOps } from '../../src/platform/nginx.js';
import { BufferStream, manualClock, strictFake } from '../helpers/fakes.js';

const worker = (pid: number, shuttingDown = false) => ({
  pid,
  command: `nginx: worker process${shuttingDown ? ' is shutting down' : ''}`,
});
const master = { pid: 1, command: 'nginx: master process nginx -g daemon off;' };

/** nginxOps for a compose nginx whose process list goes through `lists`, one per call (the last repeats). */
async function setup(lists: { pid: number; command: string }[][], reloadExit = 0) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'opskit-nginx-reload-'));
  mkdirSync(path.join(dir, 'nginx/upstream'), { recursive: true });
  writeFileSync(path.join(dir, 'nginx/nginx.conf'), 'events {}\nhttp { include upstream/web.conf; }\n');
  writeFileSync(path.join(dir, 'opskit.yaml'), 'project:\n  name: shop\n');
  const events: string[] = [];
  let calls = 0;
  const nginx: ContainerInfo = {
    id: 'n1',
    name: 'shop_nginx_1',
    image: 'nginx',
    imageId: 'sha256:n',
    labels: {},
    state: 'running',
    running: true,
    exitCode: 0,
    restartCount: 0,
    health: 'none',
    healthLog: [],
    addresses: { net: '10.0.0.2' },
    startedAt: '',
    mounts: [],
  };
  const docker = strictFake<DockerAdapter>('docker', {
    endpoint: 'unix:///var/run/docker.sock',
    listContainers: async () => [nginx],
    containerProcesses: async () => {
      const list = lists[Math.min(calls, lists.length - 1)]!;
      calls++;
      events.push(`top ${list.map((p) => `${p.pid}${p.command.endsWith('down') ? '-' : ''}`).join(',')}`);
      return list;
    },
    exec: async (_id, argv) => {
      events.push(argv.join(' '));
      return { exitCode: reloadExit, output: reloadExit ? 'nginx: [error] invalid PID number' : '' };
    },
  });
  const clock = manualClock();
  const ctx = createContext(
    {
      stdout: new BufferStream(),
      stderr: new BufferStream(),
      env: {},
      cwd: dir,
      argv: ['cutover'],
      adapters: { exec: strictFake<ExecAdapter>('exec', {}), docker: async () => docker, clock },
    },
    { json: false, dryRun: false, quiet: false, verbose: false, color: false, set: [] },
    new Redactor(),
  );
  ctx.loaded = await loadConfig(nodeFs, { cwd: dir, processEnv: {} });
  const ops = await nginxOps(ctx, ctx.loaded.config, 'shop', docker);
  return { ops, events, clock };
}

describe('nginx reload: returns only once the old workers stopped accepting', () => {
  it('polls after the reload until every old worker shuts down and a new one serves', async () => {
    const { ops, events } = await setup([
      [master, worker(7), worker(8)],
      [master, worker(7), worker(8)],
      [master, worker(7, true), worker(8), worker(11), worker(12)],
      [master, worker(7, true), worker(8, true), worker(11), worker(12)],
    ]);
    await ops.reload();
    expect(events).toEqual(['top 1,7,8', 'nginx -s reload', 'top 1,7,8', 'top 1,7-,8,11,12', 'top 1,7-,8-,11,12']);
  });

  it('says the new configuration was not applied when the old workers still serve at the deadline', async () => {
    const { ops, clock } = await setup([[master, worker(7)]]);
    const error = (await ops.reload().catch((e: unknown) => e)) as { code?: string; message?: string };
    expect(error.code).toBe('E_NGINX_RELOAD');
    expect(error.message).toContain('the new configuration was not applied');
    expect(clock.monotonicMs()).toBeGreaterThan(10_000);
  });

  it('does not wait when the workers cannot be listed, and a failed reload says why', async () => {
    const { ops, events } = await setup([[]]);
    await ops.reload();
    expect(events).toEqual(['top ', 'nginx -s reload']);
    const failing = await setup([[master, worker(7)]], 1);
    const error = (await failing.ops.reload().catch((e: unknown) => e)) as { code?: string; message?: string };
    expect(error.code).toBe('E_NGINX_RELOAD');
    expect(error.message).toContain('invalid PID number');
  });
});
