import type { ServiceSpec, SwarmService, SwarmTask } from '../../adapters/swarm.js';
import type { ColorName } from './engine.js';
import { swarmServiceName } from './swarm-spec.js';

/**
 * Blue-green on Swarm, the pure part. Each colour is a service of the web's definition: blue is the stack's
 * web service itself (`<project>_web`, as `opskit deploy` made it), green is `<project>_web_green`. Each
 * answers on the overlay by its colour's name (`web-blue`, `web-green`, endpoint mode dnsrr: the name
 * resolves to the tasks), which the edge nginx proxies to from one unix socket per colour; the switch
 * re-points the `live.sock` link. A cutover replaces the idle colour in place (nothing reaches it), all
 * its tasks at once; the live colour is never touched.
 */

/** The colour's service (as `swarmServiceName` names services: `<project>_<service>`). */
export function colorService(webService: string, color: ColorName): string {
  return color === 'blue' ? webService : `${webService}_${color}`;
}

export function colorServiceName(project: string, webService: string, color: ColorName): string {
  return swarmServiceName(project, colorService(webService, color));
}

/** The name the edge nginx proxies to for a colour (a network alias of its service). */
export function colorAlias(webService: string, color: ColorName): string {
  return `${webService}-${color}`;
}

/** The edge's socket for a colour, in the sockets directory; `live.sock` links to one of them. */
export function colorSocket(color: ColorName): string {
  return `${color}.sock`;
}

/**
 * Pure: the colour's service spec from the web's (its image, env, networks, placement, healthcheck): its
 * own name, APP_COLOR, the colour's alias on each network (blue keeps the web's own names too), and an
 * update that replaces every task at once (the idle colour serves nobody). `replicas` 0 parks it.
 */
export function colorSpec(
  web: ServiceSpec,
  input: { project: string; webService: string; color: ColorName; replicas?: number },
): ServiceSpec {
  const { project, webService, color } = input;
  const container = web.TaskTemplate.ContainerSpec;
  const env = [...(container.Env ?? []).filter((e) => !e.startsWith('APP_COLOR=')), `APP_COLOR=${color}`].sort();
  const alias = colorAlias(webService, color);
  const replicas = input.replicas ?? ('Replicated' in web.Mode ? web.Mode.Replicated.Replicas : 1);
  return {
    ...web,
    Name: colorServiceName(project, webService, color),
    Labels: { ...(web.Labels ?? {}), 'opskit.service': colorService(webService, color), 'opskit.color': color },
    TaskTemplate: {
      ...web.TaskTemplate,
      ContainerSpec: {
        ...container,
        Env: env,
        Labels: {
          ...(container.Labels ?? {}),
          'opskit.service': colorService(webService, color),
          'opskit.color': color,
        },
      },
      ...(web.TaskTemplate.Networks
        ? {
            Networks: web.TaskTemplate.Networks.map((n) => ({
              Target: n.Target,
              Aliases: color === 'blue' ? [...new Set([...(n.Aliases ?? []), alias])] : [alias],
            })),
          }
        : {}),
    },
    Mode: { Replicated: { Replicas: replicas } },
    UpdateConfig: { Parallelism: 0, Order: 'stop-first', FailureAction: 'pause' },
  };
}

/** Pure: the replicas a service asks for (0 for a global one's absence of a count). */
export function replicasOf(service: Pick<SwarmService, 'spec'>): number {
  return 'Replicated' in service.spec.Mode ? service.spec.Mode.Replicated.Replicas : 0;
}

/**
 * Pure: is a colour warm, i.e. can a rollback switch to it at once? Its service asks for tasks, runs the
 * recorded image (by its pinned reference), and every task it asks for runs on a node that is up.
 */
export function warmth(
  service: Pick<SwarmService, 'spec'> | undefined,
  tasks: readonly Pick<SwarmTask, 'state' | 'desiredState' | 'image' | 'nodeId'>[],
  upNodes: ReadonlySet<string>,
  ref: string,
): { warm: boolean; why: string } {
  if (!service) return { warm: false, why: 'its service is gone' };
  const want = replicasOf(service);
  if (want === 0) return { warm: false, why: 'it was stopped (0 replicas)' };
  const image = service.spec.TaskTemplate.ContainerSpec.Image;
  if (image !== ref) return { warm: false, why: `it runs ${image}, not ${ref}` };
  const running = tasks.filter(
    (t) => t.desiredState === 'running' && t.state === 'running' && t.image === ref && upNodes.has(t.nodeId),
  ).length;
  return running >= want
    ? { warm: true, why: `${running}/${want} tasks running` }
    : { warm: false, why: `${running}/${want} tasks running` };
}

/** Pure: `curl -i` output (status line, headers, blank line, body) as a response. */
export function parseCurlInclude(output: string): { status: number; headers: Record<string, string>; body: string } {
  const text = output.replace(/\r\n/g, '\n');
  const split = text.indexOf('\n\n');
  const head = split === -1 ? text : text.slice(0, split);
  const body = split === -1 ? '' : text.slice(split + 2);
  const [statusLine = '', ...lines] = head.split('\n');
  const status = Number(/^HTTP\/[\d.]+\s+(\d{3})/.exec(statusLine)?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status, headers, body };
}

/** The edge's fallback for each colour: its last known tasks, served by a second nginx beside the edge's. */
export const LAST_KNOWN_CONF = 'last-known.conf';

export function lastKnownSocket(color: ColorName): string {
  return `last-known-${color}.sock`;
}

/**
 * Pure: the config of the edge's "last known" nginx. The edge reaches each colour by name through Docker's
 * embedded DNS, which lives in the node's Engine: while that Engine is down (crashed, restarting), no name
 * resolves. The colour servers then hand the request to this nginx, which knows each colour's tasks by the
 * addresses opskit saw when it last gated them (`tasks`, `address` on the overlay), and needs no DNS. opskit
 * rewrites it and reloads this nginx alone: the edge's client connections are never touched. A colour
 * with no known task gets no server (its fallback answers 502, as the edge would without it).
 */
export function lastKnownConfig(input: {
  dir: string;
  port: number;
  tasks: Readonly<Record<ColorName, readonly string[]>>;
  written: string;
}): string {
  const lines = [
    `# Managed by opskit (${input.written}): each colour's last known tasks, used when the edge cannot resolve`,
    "# its name (the node's Engine, and with it Docker's DNS, is down). Rewritten at deploy and cutover.",
    'worker_processes 1;',
    'pid /tmp/opskit-last-known.pid;',
    'error_log stderr warn;',
    'events {',
    '  worker_connections 1024;',
    '}',
    'http {',
    '  access_log off;',
    '  client_max_body_size 0;',
  ];
  for (const color of ['blue', 'green'] as const) {
    const addresses = [...new Set(input.tasks[color])].sort();
    if (addresses.length === 0) continue;
    lines.push(
      `  upstream last_known_${color} {`,
      ...addresses.map((a) => `    server ${a}:${input.port} max_fails=0;`),
      '  }',
      '  server {',
      `    listen unix:${input.dir}/${lastKnownSocket(color)};`,
      '    location / {',
      `      proxy_pass http://last_known_${color};`,
      '      proxy_set_header Host $host;',
      '      proxy_set_header X-Real-IP $http_x_real_ip;',
      '      proxy_set_header X-Forwarded-For $http_x_forwarded_for;',
      '      proxy_set_header X-Forwarded-Proto $http_x_forwarded_proto;',
      '      proxy_next_upstream error timeout http_502 http_503;',
      '      proxy_connect_timeout 1s;',
      '    }',
      '  }',
    );
  }
  lines.push('}', '');
  return lines.join('\n');
}

/** Pure: each colour's addresses in a last-known config (as `lastKnownConfig` writes it), sorted. */
export function lastKnownTasks(text: string | undefined): Record<ColorName, string[]> {
  const tasks: Record<ColorName, string[]> = { blue: [], green: [] };
  let color: ColorName | undefined;
  for (const line of (text ?? '').split('\n')) {
    const upstream = /^\s*upstream last_known_(blue|green) \{/.exec(line);
    if (upstream) color = upstream[1] as ColorName;
    else if (/^\s*\}/.test(line)) color = undefined;
    else if (color) {
      const server = /^\s*server ([0-9a-f.:]+):\d+ /.exec(line);
      if (server) tasks[color].push(server[1]!);
    }
  }
  return { blue: tasks.blue.sort(), green: tasks.green.sort() };
}
