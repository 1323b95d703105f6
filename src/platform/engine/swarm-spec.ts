/**
 * Pure: the compose file, as `docker compose config --format json` normalizes it, turned into the Engine
 * API's Swarm specs (what `docker stack deploy` would send, with opskit's choices spelled out): one
 * overlay network per compose network, one service per compose service named `<project>_<service>` and
 * reachable on its networks by its compose name (so DATABASE_URL's `db` still resolves), and the
 * migrations as a one-off replicated job of the web service's spec.
 */
import type { NetworkSpec, ServiceSpec } from '../../adapters/swarm.js';
import { ConfigError } from '../../errors.js';
import { parseDuration } from '../../runtime/duration.js';

/** What opskit reads of `docker compose config --format json`. */
export interface ComposeModel {
  name?: string;
  services: Record<string, ComposeServiceModel>;
  networks?: Record<string, { name?: string; external?: boolean } | null>;
  volumes?: Record<string, { name?: string; external?: boolean } | null>;
}

export interface ComposeServiceModel {
  image?: string;
  command?: string[] | null;
  entrypoint?: string[] | null;
  environment?: Record<string, string | null>;
  healthcheck?: {
    test?: string[];
    interval?: string;
    timeout?: string;
    retries?: number;
    start_period?: string;
    disable?: boolean;
  };
  networks?: Record<string, { aliases?: string[] } | null>;
  ports?: Array<{ mode?: string; target: number; published?: string | number; protocol?: string; host_ip?: string }>;
  volumes?: Array<{ type: string; source?: string; target: string; read_only?: boolean }>;
  restart?: string;
  stop_grace_period?: string;
  stop_signal?: string;
  user?: string;
  init?: boolean;
  labels?: Record<string, string>;
  deploy?: {
    mode?: string;
    replicas?: number;
    endpoint_mode?: string;
    placement?: { constraints?: string[]; max_replicas_per_node?: number };
    update_config?: { order?: string; parallelism?: number; failure_action?: string; monitor?: string };
    restart_policy?: { condition?: string; delay?: string; max_attempts?: number };
  };
}

/** The labels opskit puts on what it creates; `com.docker.stack.namespace` lets `docker stack ps` list them too. */
export function stackLabels(project: string, service?: string): Record<string, string> {
  return {
    'com.docker.stack.namespace': project,
    'opskit.project': project,
    ...(service ? { 'opskit.service': service } : {}),
  };
}

export const swarmServiceName = (project: string, service: string) => `${project}_${service}`;
export const migrationJobName = (project: string, service: string) => `${project}_${service}-migrate`;

const NS_PER_MS = 1_000_000;
const nanos = (text: string | undefined, field: string) =>
  text === undefined ? undefined : parseDuration(text, field) * NS_PER_MS;
/** compose config writes a literal `$` as `$$` (its own escape); the Engine must get the `$`. */
const unescapeDollars = (text: string) => text.replaceAll('$$', '$');
const defined = <T extends object>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

/** The overlay name of a compose network. */
function networkName(model: ComposeModel, project: string, key: string): string {
  return model.networks?.[key]?.name ?? `${project}_${key}`;
}

/** Pure: the overlay networks the services need (attachable: one-off containers and jobs join them). */
export function networkSpecs(model: ComposeModel, project: string): NetworkSpec[] {
  const keys = new Set<string>();
  for (const service of Object.values(model.services))
    for (const key of Object.keys(service.networks ?? { default: null })) keys.add(key);
  return [...keys]
    .filter((key) => !model.networks?.[key]?.external)
    .sort()
    .map((key) => ({
      Name: networkName(model, project, key),
      Driver: 'overlay' as const,
      Attachable: true,
      Labels: stackLabels(project),
    }));
}

function restartPolicy(service: ComposeServiceModel, field: string): ServiceSpec['TaskTemplate']['RestartPolicy'] {
  const policy = service.deploy?.restart_policy;
  if (policy) {
    const condition = policy.condition ?? 'any';
    if (condition !== 'none' && condition !== 'on-failure' && condition !== 'any')
      throw new ConfigError(`${field}.deploy.restart_policy.condition: expected none, on-failure or any`, {
        code: 'E_SWARM_SPEC',
      });
    return defined({
      Condition: condition as 'none' | 'on-failure' | 'any',
      Delay: nanos(policy.delay, `${field}.deploy.restart_policy.delay`),
      MaxAttempts: policy.max_attempts,
    });
  }
  if (service.restart === 'no') return { Condition: 'none' };
  if (service.restart?.startsWith('on-failure')) return { Condition: 'on-failure' };
  return { Condition: 'any' };
}

/**
 * Pure: one compose service as a Swarm service running `image` (already pinned to its digest by the
 * caller). Rolling updates start the new task first, except where two tasks cannot live side by side: a
 * named volume (a database's data) or a host-mode port (one per node) stop the old task first.
 */
export function serviceSpec(model: ComposeModel, project: string, name: string, image: string): ServiceSpec {
  const service = model.services[name];
  if (!service) throw new ConfigError(`the compose file has no service "${name}"`, { code: 'E_SWARM_SPEC' });
  const field = `services.${name}`;
  const deploy = service.deploy ?? {};
  const endpointMode = deploy.endpoint_mode === 'dnsrr' ? 'dnsrr' : 'vip';
  const ports = (service.ports ?? []).map((port, index) => {
    const mode = port.mode === 'host' ? 'host' : 'ingress';
    if (mode === 'ingress' && endpointMode === 'dnsrr')
      throw new ConfigError(
        `${field}.ports[${index}]: a port published in ingress mode needs endpoint_mode vip (the routing mesh, IPVS)`,
        { code: 'E_SWARM_SPEC', hint: 'publish it with mode: host (one per node), or use endpoint_mode: vip' },
      );
    if (port.host_ip && port.host_ip !== '0.0.0.0')
      throw new ConfigError(`${field}.ports[${index}].host_ip: Swarm publishes on every address of a node`, {
        code: 'E_SWARM_SPEC',
        hint: 'drop the address; limit who reaches the port with the node firewall',
      });
    return {
      Protocol: port.protocol === 'udp' ? ('udp' as const) : ('tcp' as const),
      TargetPort: port.target,
      PublishedPort: Number(port.published ?? port.target),
      PublishMode: mode as 'host' | 'ingress',
    };
  });
  const mounts = (service.volumes ?? []).map((volume) => {
    if (volume.type !== 'volume' && volume.type !== 'bind' && volume.type !== 'tmpfs')
      throw new ConfigError(`${field}.volumes: type ${volume.type} is not supported on Swarm`, {
        code: 'E_SWARM_SPEC',
      });
    const source =
      volume.type === 'volume' && volume.source
        ? (model.volumes?.[volume.source]?.name ?? `${project}_${volume.source}`)
        : volume.source;
    return defined({
      Type: volume.type as 'volume' | 'bind' | 'tmpfs',
      Source: source,
      Target: volume.target,
      ReadOnly: volume.read_only || undefined,
    });
  });
  const side =
    mounts.some((m) => m.Type === 'volume') || ports.some((p) => p.PublishMode === 'host')
      ? 'stop-first'
      : 'start-first';
  const update = deploy.update_config ?? {};
  const health = service.healthcheck;
  const env = Object.entries(service.environment ?? {})
    .filter((entry): entry is [string, string] => typeof entry[1] === 'string')
    .map(([k, v]) => `${k}=${unescapeDollars(v)}`)
    .sort();
  const networks = Object.entries(service.networks ?? { default: null }).map(([key, options]) => ({
    Target: networkName(model, project, key),
    Aliases: [...new Set([name, ...(options?.aliases ?? [])])],
  }));
  const labels = { ...stackLabels(project, name), ...(service.labels ?? {}) };
  const mode: ServiceSpec['Mode'] =
    deploy.mode === 'global' ? { Global: {} } : { Replicated: { Replicas: deploy.replicas ?? 1 } };
  return {
    Name: swarmServiceName(project, name),
    Labels: labels,
    TaskTemplate: {
      ContainerSpec: defined({
        Image: image,
        Command: service.entrypoint?.map(unescapeDollars),
        Args: service.command?.map(unescapeDollars),
        Env: env.length ? env : undefined,
        Labels: stackLabels(project, name),
        Mounts: mounts.length ? mounts : undefined,
        Healthcheck: health?.disable
          ? { Test: ['NONE'] }
          : health?.test
            ? defined({
                Test: health.test.map(unescapeDollars),
                Interval: nanos(health.interval, `${field}.healthcheck.interval`),
                Timeout: nanos(health.timeout, `${field}.healthcheck.timeout`),
                Retries: health.retries,
                StartPeriod: nanos(health.start_period, `${field}.healthcheck.start_period`),
              })
            : undefined,
        StopGracePeriod: nanos(service.stop_grace_period, `${field}.stop_grace_period`),
        StopSignal: service.stop_signal,
        User: service.user,
        Init: service.init,
      }),
      Placement: defined({
        Constraints: deploy.placement?.constraints?.length ? [...deploy.placement.constraints] : undefined,
        MaxReplicas: deploy.placement?.max_replicas_per_node,
      }),
      RestartPolicy: restartPolicy(service, field),
      Networks: networks,
    },
    Mode: mode,
    UpdateConfig: defined({
      Parallelism: update.parallelism ?? 1,
      Order: (update.order === 'start-first' || update.order === 'stop-first' ? update.order : side) as
        | 'start-first'
        | 'stop-first',
      FailureAction: (update.failure_action ?? 'rollback') as 'pause' | 'continue' | 'rollback',
      Monitor: nanos(update.monitor, `${field}.deploy.update_config.monitor`),
    }),
    EndpointSpec: { Mode: endpointMode, ...(ports.length ? { Ports: ports } : {}) },
  };
}

/**
 * Pure: the migrations as a one-off job of the web service's spec (its image, env, networks and placement):
 * one task, run once. Its restart condition is `none`: the Engine's default re-runs a failed job forever.
 */
export function migrationJobSpec(web: ServiceSpec, name: string, command: readonly string[]): ServiceSpec {
  const container = web.TaskTemplate.ContainerSpec;
  return {
    Name: name,
    Labels: { ...(web.Labels ?? {}), 'opskit.job': 'migrate' },
    TaskTemplate: {
      ContainerSpec: defined({
        ...container,
        Args: [...command],
        Healthcheck: { Test: ['NONE'] },
        Labels: { ...(container.Labels ?? {}), 'opskit.job': 'migrate' },
      }),
      ...(web.TaskTemplate.Placement?.Constraints
        ? { Placement: { Constraints: [...web.TaskTemplate.Placement.Constraints] } }
        : {}),
      RestartPolicy: { Condition: 'none' },
      ...(web.TaskTemplate.Networks ? { Networks: web.TaskTemplate.Networks.map((n) => ({ Target: n.Target })) } : {}),
    },
    Mode: { ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 1 } },
  };
}
