import path from 'node:path';
import { parse } from 'yaml';
import { type ComposeTarget, composeArgv, serviceLabels } from '../adapters/compose.js';
import type { ContainerInfo, ContainerSpec, DockerAdapter } from '../adapters/docker.js';
import type { Config } from '../config/schema.js';
import { ConfigError, OperationError } from '../errors.js';
import { type Context, projectPath } from '../runtime/context.js';
import { pollUntil } from '../runtime/poll.js';
import { socketName } from './sockets.js';

/**
 * The relay switch (`cutover.switch: relay`), for apps that listen only on TCP. Beside each web container
 * opskit runs a small nginx (stream module, layer 4) that listens on the unix socket the socket switch
 * expects (`web-<id>.sock` in the sockets directory) and relays every connection, byte for byte, to the
 * container's TCP port by its name on the project network. nginx's `live.sock` link then switches between
 * colours exactly as in socket mode: a rename, no reload, no client connection closed.
 *
 * The relay reaches the app by name through Docker's embedded DNS (re-resolved every few seconds), not
 * by a shared network namespace, so a web container that Docker restarts in place (a new namespace, maybe
 * a new address) is reached again without opskit.
 */

/** Where the relay sees the sockets directory, and its config file. */
const RELAY_SOCKET_DIR = '/run/opskit';
const RELAY_CONF = '/etc/opskit-relay.conf';
export const RELAY_ROLE = 'relay';

export interface RelayTarget {
  /** The web container's id (its socket file is named after it) and name (its DNS name on the network). */
  id: string;
  name: string;
  port: number;
}

/** Pure: the relay's nginx.conf: one stream server from the unix socket to the app's port. */
export function relayConfig(target: RelayTarget): string {
  return [
    `# Managed by opskit (cutover.switch: relay): ${socketName(target.id)} relayed to ${target.name}:${target.port}.`,
    '# Debian-built nginx loads its stream module from here; the official image has it built in.',
    'include /etc/nginx/modules-enabled/*.conf;',
    'worker_processes 1;',
    'pid /tmp/opskit-relay.pid;',
    'events {',
    '  worker_connections 8192;',
    '}',
    'stream {',
    "  # Docker's embedded DNS: the name follows the container across restarts.",
    '  resolver 127.0.0.11 valid=5s ipv6=off;',
    `  map $remote_addr $opskit_app {`,
    `    default ${target.name}:${target.port};`,
    '  }',
    '  server {',
    `    listen unix:${RELAY_SOCKET_DIR}/${socketName(target.id)};`,
    '    proxy_pass $opskit_app;',
    '    proxy_connect_timeout 5s;',
    '    # Idle keep-alive connections stay open as long as nginx keeps them.',
    '    proxy_timeout 1h;',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Pure: the relay container's name, beside its web container's. */
export function relayName(target: Pick<RelayTarget, 'name'>): string {
  return `${target.name}-relay`;
}

/** Pure: the Engine API's create body for a relay (POST /containers/create). */
export function relayContainerSpec(input: {
  target: RelayTarget;
  image: string;
  network: string;
  project: string;
  socketsHostDir: string;
  confHostFile: string;
  /** The operator's ids: the socket is theirs, so opskit can remove one a killed relay left behind. */
  user: { uid: number; gid: number };
}): ContainerSpec {
  return {
    Image: input.image,
    User: `${input.user.uid}:${input.user.gid}`,
    Entrypoint: ['nginx'],
    Cmd: ['-e', 'stderr', '-c', RELAY_CONF, '-g', 'daemon off;'],
    Labels: {
      'com.docker.compose.project': input.project,
      'org.opskit.role': RELAY_ROLE,
      'org.opskit.relay-for': input.target.id,
    },
    StopSignal: 'SIGQUIT',
    HostConfig: {
      Binds: [`${input.socketsHostDir}:${RELAY_SOCKET_DIR}`, `${input.confHostFile}:${RELAY_CONF}:ro`],
      NetworkMode: input.network,
      RestartPolicy: { Name: 'unless-stopped' },
      LogConfig: { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '2' } },
    },
  };
}

/** Starts, replaces and removes relays for one project. */
export interface Relays {
  /** Starts the relay of a web container (replacing one it already has) and waits for its socket. */
  start(container: ContainerInfo): Promise<void>;
  /** Starts the relay only when the container has no running one (it was removed, or died). */
  ensure(container: ContainerInfo): Promise<void>;
  /** Stops (gracefully: nginx ends its sessions) and removes a web container's relay, if it has one. */
  remove(containerId: string): Promise<void>;
  /** Removes the relays whose web container no longer exists (a deploy replaced it). */
  reap(): Promise<void>;
}

/** How to ask compose for the nginx service's image when no nginx container exists yet (a first deploy). */
export interface ComposeSource {
  target: ComposeTarget;
  env: Record<string, string>;
}

/**
 * The relay image: cutover.relayImage, else the image of the platform's nginx service (compose mode): its
 * container's, or before there is one (a first deploy starts nginx after the web service), the image
 * `compose config` names. It needs nginx with the stream module (the official nginx image has it).
 */
async function relayImage(
  ctx: Context,
  config: Config,
  project: string,
  docker: DockerAdapter,
  compose: ComposeSource | undefined,
): Promise<string> {
  if (config.cutover.relayImage) return config.cutover.relayImage;
  if (config.nginx.mode === 'compose') {
    const containers = await docker.listContainers(serviceLabels(project, config.nginx.service));
    const container = containers.find((c) => c.running) ?? containers[0];
    if (container) return container.imageId;
    if (compose) {
      const [file, args] = composeArgv(compose.target, ['config']);
      const result = await ctx.exec.run(file, args, {
        env: compose.env,
        timeoutMs: 30_000,
        cwd: path.dirname(compose.target.composeFile),
      });
      if (!result.failed) {
        const image = (parse(result.stdout) as { services?: Record<string, { image?: unknown }> } | null)?.services?.[
          config.nginx.service
        ]?.image;
        if (typeof image === 'string' && image) return image;
      }
    }
  }
  throw new ConfigError(
    'cutover.relayImage: with cutover.switch relay, name an image with nginx and its stream module (e.g. nginx:1)',
    {
      code: 'E_RELAY_IMAGE',
      hint: `opskit takes the image of the ${config.nginx.service} service when nginx runs in compose; here it found none`,
    },
  );
}

export function relays(
  ctx: Context,
  config: Config,
  project: string,
  docker: DockerAdapter,
  compose?: ComposeSource,
): Relays {
  const socketsDir = projectPath(ctx, config.paths.sockets);
  const confDir = path.join(path.dirname(socketsDir), 'relay');
  const confFile = (id: string) => path.join(confDir, `${id.slice(0, 12)}.conf`);
  const mine = (extra: Record<string, string> = {}) =>
    docker.listContainers({ 'com.docker.compose.project': project, 'org.opskit.role': RELAY_ROLE, ...extra });

  const remove = async (containerId: string) => {
    for (const relay of await mine({ 'org.opskit.relay-for': containerId })) {
      await docker.stopContainer(relay.id, 10).catch(() => {});
      await docker.removeContainer(relay.id);
    }
    await ctx.fs.remove(confFile(containerId)).catch(() => {});
  };

  const api: Relays = {
    remove,
    async ensure(container) {
      if (!(await mine({ 'org.opskit.relay-for': container.id })).some((r) => r.running)) await api.start(container);
    },
    async start(container) {
      const network = Object.keys(container.addresses)[0];
      if (!network)
        throw new OperationError('E_RELAY_FAILED', `${container.name} is on no network: a relay cannot reach it`);
      const target: RelayTarget = { id: container.id, name: container.name, port: config.deploy.healthPort };
      await remove(container.id);
      // A relay killed without its graceful stop leaves its socket: nginx could not bind it again.
      const socket = path.join(socketsDir, socketName(container.id));
      await ctx.fs.remove(socket).catch(() => {});
      await ctx.fs.writeFileAtomic(confFile(container.id), relayConfig(target), { mode: 0o644 });
      const name = relayName(target);
      const image = await relayImage(ctx, config, project, docker, compose);
      const spec = relayContainerSpec({
        target,
        image,
        network,
        project,
        socketsHostDir: socketsDir,
        confHostFile: confFile(container.id),
        user: ctx.system.ids(),
      });
      const id = await docker.runContainer(name, spec);
      const poll = await pollUntil(ctx.clock, { timeoutMs: 15_000, initialDelayMs: 20, maxDelayMs: 200 }, async () => {
        if (await ctx.fs.exists(socket)) return { done: true, value: true };
        const relay = await docker.inspectContainer(id);
        if (relay && !relay.running && relay.state !== 'created') return { done: true, value: false };
        return { done: false, last: `${socket} does not exist` };
      });
      if (!poll.ok || !poll.value) {
        const logs = (await docker.containerLogs(id, 20).catch(() => '')).trim();
        await remove(container.id);
        const noStream = /unknown directive "stream"/.test(logs);
        throw new OperationError(
          'E_RELAY_FAILED',
          `the relay for ${container.name} (${image}) did not open ${socketName(container.id)}${logs ? `:\n${logs}` : ''}`,
          {
            hint: noStream
              ? 'its nginx has no stream module: set cutover.relayImage to an image that has it (the official nginx image does; on Debian, install libnginx-mod-stream)'
              : 'see its log above',
          },
        );
      }
    },
    async reap() {
      for (const relay of await mine()) {
        const of = relay.labels['org.opskit.relay-for'];
        if (of && !(await docker.inspectContainer(of))) await remove(of);
      }
    },
  };
  return api;
}
