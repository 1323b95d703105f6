import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ContainerInfo, ContainerSpec, DockerAdapter } from '../../src/adapters/docker.js';
import type { ExecAdapter } from '../../src/adapters/exec.js';
import { nodeFs } from '../../src/adapters/fs.js';
import { createContext } from '../../src/cli/run.js';
import { loadConfig } from '../../src/config/load.js';
import { Redactor } from '../../src/config/redact.js';
import { relayConfig, relayContainerSpec, relayName, relays } from '../../src/platform/relay.js';
import { BufferStream, manualClock, strictFake } from '../helpers/fakes.js';

const app = { id: 'abcdef0123456789', name: 'shop_web_green_x1', port: 5000 };

describe('the relay (cutover.switch: relay), pure parts', () => {
  it('is one stream server from the socket the link expects to the app by its DNS name', () => {
    const conf = relayConfig(app);
    expect(conf).toContain('include /etc/nginx/modules-enabled/*.conf;');
    expect(conf).toContain('resolver 127.0.0.11 valid=5s ipv6=off;');
    expect(conf).toContain('default shop_web_green_x1:5000;');
    expect(conf).toContain('listen unix:/run/opskit/web-abcdef012345.sock;');
    expect(conf).toContain('proxy_pass $opskit_app;');
    expect(conf).not.toContain('http {');
  });

  it("is created on the app's network with the sockets directory and its config mounted, restartable, labelled", () => {
    expect(relayName(app)).toBe('shop_web_green_x1-relay');
    const spec = relayContainerSpec({
      target: app,
      image: 'sha256:ng',
      network: 'shop_default',
      project: 'shop',
      socketsHostDir: '/srv/shop/run/sockets',
      confHostFile: '/srv/shop/run/relay/abcdef012345.conf',
      user: { uid: 1000, gid: 1000 },
    });
    expect(spec).toEqual({
      Image: 'sha256:ng',
      User: '1000:1000',
      Entrypoint: ['nginx'],
      Cmd: ['-e', 'stderr', '-c', '/etc/opskit-relay.conf', '-g', 'daemon off;'],
      Labels: {
        'com.docker.compose.project': 'shop',
        'org.opskit.role': 'relay',
        'org.opskit.relay-for': 'abcdef0123456789',
      },
      StopSignal: 'SIGQUIT',
      HostConfig: {
        Binds: ['/srv/shop/run/sockets:/run/opskit', '/srv/shop/run/relay/abcdef012345.conf:/etc/opskit-relay.conf:ro'],
        NetworkMode: 'shop_default',
        RestartPolicy: { Name: 'unless-stopped' },
        LogConfig: { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '2' } },
      },
    } satisfies ContainerSpec);
  });
});

function info(over: Partial<ContainerInfo>): ContainerInfo {
  return {
    id: 'x',
    name: 'x',
    image: 'x',
    imageId: 'sha256:x',
    labels: {},
    state: 'running',
    running: true,
    exitCode: 0,
    restartCount: 0,
    health: 'none',
    healthLog: [],
    addresses: { shop_default: '10.0.0.5' },
    startedAt: '',
    mounts: [],
    ...over,
  };
}

async function setup(opts: { relayOpens: boolean; logs?: string; yaml?: string; nginxRuns?: boolean }) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'opskit-relay-'));
  mkdirSync(path.join(dir, 'run/sockets'), { recursive: true });
  writeFileSync(path.join(dir, 'opskit.yaml'), `project:\n  name: shop\ncutover:\n  switch: relay\n${opts.yaml ?? ''}`);
  const events: string[] = [];
  const created: Array<{ name: string; spec: ContainerSpec }> = [];
  const running = new Map<string, ContainerInfo>();
  const docker = strictFake<DockerAdapter>('docker', {
    endpoint: 'unix:///var/run/docker.sock',
    listContainers: async (labels) => {
      if (labels['com.docker.compose.service'] === 'nginx')
        return opts.nginxRuns === false ? [] : [info({ id: 'n1', name: 'shop-nginx-1', imageId: 'sha256:nginximage' })];
      return [...running.values()].filter((c) => Object.entries(labels).every(([k, v]) => c.labels[k] === v));
    },
    runContainer: async (name, spec) => {
      created.push({ name, spec });
      events.push(`run ${name}`);
      running.set(
        'r1',
        info({
          id: 'r1',
          name,
          labels: spec.Labels!,
          running: opts.relayOpens,
          state: opts.relayOpens ? 'running' : 'exited',
        }),
      );
      // nginx opens the socket in the shared directory once it runs.
      if (opts.relayOpens) writeFileSync(path.join(dir, 'run/sockets/web-abcdef012345.sock'), '');
      return 'r1';
    },
    inspectContainer: async (id) => running.get(id),
    containerLogs: async () => opts.logs ?? '',
    stopContainer: async (id) => void events.push(`stop ${id}`),
    removeContainer: async (id) => {
      events.push(`remove ${id}`);
      running.delete(id);
    },
  });
  // compose config: what a first deploy asks before the nginx service has a container.
  const exec = strictFake<ExecAdapter>('exec', {
    run: async (file, args) => {
      events.push([file, ...args].join(' '));
      return {
        argv: [],
        exitCode: 0,
        stdout: 'name: shop\nservices:\n  nginx:\n    image: nginx:1.27\n  web:\n    image: shop:latest\n',
        stderr: '',
        failed: false,
        timedOut: false,
        notFound: false,
      };
    },
  });
  const ctx = createContext(
    {
      stdout: new BufferStream(),
      stderr: new BufferStream(),
      env: {},
      cwd: dir,
      argv: ['cutover'],
      adapters: { exec, docker: async () => docker, clock: manualClock() },
    },
    { json: false, dryRun: false, quiet: false, verbose: false, color: false, set: [] },
    new Redactor(),
  );
  ctx.loaded = await loadConfig(nodeFs, { cwd: dir, processEnv: {} });
  const target = {
    cli: { flavor: 'v2' as const, version: '2.26.1', file: 'docker', prefix: ['compose'] },
    project: 'shop',
    composeFile: path.join(dir, 'compose.yml'),
  };
  return { r: relays(ctx, ctx.loaded.config, 'shop', docker, { target, env: {} }), events, created, dir };
}

describe('relays against strict fakes', () => {
  it("starts with the nginx service's image, writes its config, waits for its socket; remove stops it and deletes the config", async () => {
    const { r, events, created, dir } = await setup({ relayOpens: true });
    await r.start(info({ id: 'abcdef0123456789', name: 'shop_web_green_x1' }));
    expect(created[0]!.name).toBe('shop_web_green_x1-relay');
    expect(created[0]!.spec.Image).toBe('sha256:nginximage');
    expect(created[0]!.spec.HostConfig!.NetworkMode).toBe('shop_default');
    const conf = path.join(dir, 'run/relay/abcdef012345.conf');
    expect(readFileSync(conf, 'utf8')).toContain('default shop_web_green_x1:8000;');
    await r.remove('abcdef0123456789');
    expect(events).toEqual(['run shop_web_green_x1-relay', 'stop r1', 'remove r1']);
    expect(existsSync(conf)).toBe(false);
  });

  it('before nginx has a container (a first deploy), the image is the one compose config names for the nginx service', async () => {
    const { r, events, created, dir } = await setup({ relayOpens: true, nginxRuns: false });
    await r.start(info({ id: 'abcdef0123456789', name: 'shop-web-1' }));
    expect(events[0]).toBe(`docker compose -p shop -f ${path.join(dir, 'compose.yml')} config`);
    expect(created[0]!.spec.Image).toBe('nginx:1.27');
  });

  it('a relay image without the stream module: exit 1 with its log and what to do', async () => {
    const { r, events } = await setup({
      relayOpens: false,
      logs: 'nginx: [emerg] unknown directive "stream" in /etc/opskit-relay.conf:8',
      yaml: '  relayImage: debian-nginx:light\n',
    });
    const error = (await r
      .start(info({ id: 'abcdef0123456789', name: 'shop_web_green_x1' }))
      .catch((e: unknown) => e)) as { code?: string; message?: string; hint?: string };
    expect(error.code).toBe('E_RELAY_FAILED');
    expect(error.message).toContain('unknown directive "stream"');
    expect(error.hint).toContain('libnginx-mod-stream');
    // The failed relay does not stay behind.
    expect(events).toEqual(['run shop_web_green_x1-relay', 'stop r1', 'remove r1']);
  });
});
