/**
 * Longer than 400 lines: the one adapter of Swarm's API, with the spec types it carries and the pure readers of
 * its answers, which split apart would only re-export each other.
 *
 * Docker Swarm's part of the Engine API (nodes, services, tasks, networks, the registry calls a deploy needs),
 * spoken to a manager. The swarm engine (src/platform/engine/swarm.ts) decides; this adapter only carries the calls.
 * dockerode is loaded on the first call, as in docker.ts, and speaks unix sockets, tcp and TLS alike.
 */
import { demuxLogs, engineGet, parseDockerHost } from './docker.js';

/** Credentials for a registry, sent in the X-Registry-Auth header (never logged). */
export interface RegistryAuth {
  username?: string;
  password?: string;
  serveraddress: string;
}

export interface SwarmInfo {
  /** inactive | pending | active | error | locked */
  localNodeState: string;
  /** true on a manager: only managers answer the swarm endpoints. */
  controlAvailable: boolean;
  nodeId: string;
  engineVersion: string;
  nodes: number;
  managers: number;
}

export interface SwarmNode {
  id: string;
  hostname: string;
  role: 'manager' | 'worker';
  availability: 'active' | 'pause' | 'drain';
  /** ready | down | unknown | disconnected */
  state: string;
  address: string;
  leader: boolean;
  labels: Record<string, string>;
  engineVersion: string;
}

/** A service as the Engine API returns it (GET /services/{id}), with what opskit reads of it. */
export interface SwarmService {
  id: string;
  version: number;
  name: string;
  spec: ServiceSpec;
  createdAt: string;
  updatedAt: string;
  /** Absent after a create; `updating`, `completed`, `paused`, `rollback_started`, ... after an update. */
  updateStatus?: { state: string; message?: string };
}

export interface SwarmTask {
  id: string;
  serviceId: string;
  nodeId: string;
  slot?: number;
  /**
   * new | pending | assigned | accepted | preparing | starting | running | complete | failed | shutdown |
   * rejected | orphaned | remove
   */
  state: string;
  desiredState: string;
  message: string;
  error?: string;
  exitCode?: number;
  containerId?: string;
  image: string;
  /** The task's addresses on its networks, without the prefix length. */
  addresses: string[];
  createdAt: string;
  updatedAt: string;
  jobIteration?: number;
}

/** The Engine API's ServiceSpec, as far as opskit writes it (the API's own field names). */
export interface ServiceSpec {
  Name: string;
  Labels?: Record<string, string>;
  TaskTemplate: {
    ContainerSpec: {
      Image: string;
      Command?: string[];
      Args?: string[];
      Env?: string[];
      Labels?: Record<string, string>;
      Mounts?: Array<{ Type: 'volume' | 'bind' | 'tmpfs'; Source?: string; Target: string; ReadOnly?: boolean }>;
      Healthcheck?: { Test: string[]; Interval?: number; Timeout?: number; Retries?: number; StartPeriod?: number };
      StopGracePeriod?: number;
      StopSignal?: string;
      User?: string;
      Init?: boolean;
    };
    Placement?: { Constraints?: string[]; MaxReplicas?: number };
    RestartPolicy?: { Condition: 'none' | 'on-failure' | 'any'; Delay?: number; MaxAttempts?: number };
    Networks?: Array<{ Target: string; Aliases?: string[] }>;
    ForceUpdate?: number;
  };
  Mode:
    | { Replicated: { Replicas: number } }
    | { Global: Record<string, never> }
    | { ReplicatedJob: { MaxConcurrent: number; TotalCompletions: number } };
  UpdateConfig?: {
    Parallelism: number;
    Order: 'start-first' | 'stop-first';
    FailureAction: 'pause' | 'continue' | 'rollback';
    Monitor?: number;
  };
  EndpointSpec?: {
    Mode: 'vip' | 'dnsrr';
    Ports?: Array<{
      Protocol: 'tcp' | 'udp';
      TargetPort: number;
      PublishedPort: number;
      PublishMode: 'host' | 'ingress';
    }>;
  };
}

export interface NetworkSpec {
  Name: string;
  Driver: 'overlay';
  Attachable: boolean;
  Labels: Record<string, string>;
}

export interface SwarmAdapter {
  readonly endpoint: string;
  info(): Promise<SwarmInfo>;
  nodes(): Promise<SwarmNode[]>;
  /** Services whose labels match all of these. */
  services(labels: Record<string, string>): Promise<SwarmService[]>;
  /** By name or id; undefined when there is none. */
  service(name: string): Promise<SwarmService | undefined>;
  createService(spec: ServiceSpec, auth?: RegistryAuth): Promise<string>;
  /** `version` is the one read with the spec: a stale one is refused ("update out of sequence"). */
  updateService(id: string, version: number, spec: ServiceSpec, auth?: RegistryAuth): Promise<void>;
  /** Back to the service's previous spec (the Engine keeps one). */
  rollbackService(id: string, version: number): Promise<void>;
  removeService(id: string): Promise<void>;
  /** Tasks of a service (by name or id), none when there is no such service. */
  tasks(filters: { service?: string; desiredState?: string }): Promise<SwarmTask[]>;
  /** The last `tail` lines of a service's tasks (stdout and stderr), node-independent. */
  serviceLogs(id: string, tail: number): Promise<string>;
  network(name: string): Promise<{ id: string; driver: string; attachable: boolean } | undefined>;
  createNetwork(spec: NetworkSpec): Promise<string>;
  /** The registry's digest of a pushed image: what every node pulls (the Engine does not pin it itself). */
  distributionDigest(ref: string, auth?: RegistryAuth): Promise<string>;
  /** Pushes `ref`, calling onProgress with the Engine's status lines; rejects with the registry's error. */
  pushImage(ref: string, auth: RegistryAuth | undefined, onProgress: (line: string) => void): Promise<void>;
}

type Raw = Record<string, unknown>;
const obj = (v: unknown): Raw => (v && typeof v === 'object' ? (v as Raw) : {});
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** Pure: a node of GET /nodes. */
export function toNode(raw: Raw): SwarmNode {
  const spec = obj(raw.Spec);
  const status = obj(raw.Status);
  const manager = obj(raw.ManagerStatus);
  const description = obj(raw.Description);
  return {
    id: str(raw.ID),
    hostname: str(description.Hostname),
    role: spec.Role === 'manager' ? 'manager' : 'worker',
    availability: (str(spec.Availability) || 'active') as SwarmNode['availability'],
    state: str(status.State) || 'unknown',
    address: str(status.Addr),
    leader: manager.Leader === true,
    labels: obj(spec.Labels) as Record<string, string>,
    engineVersion: str(obj(description.Engine).EngineVersion),
  };
}

/** Pure: a service of GET /services. */
export function toService(raw: Raw): SwarmService {
  const spec = obj(raw.Spec) as unknown as ServiceSpec;
  const update = obj(raw.UpdateStatus);
  return {
    id: str(raw.ID),
    version: Number(obj(raw.Version).Index ?? 0),
    name: spec.Name,
    spec,
    createdAt: str(raw.CreatedAt),
    updatedAt: str(raw.UpdatedAt),
    ...(update.State ? { updateStatus: { state: str(update.State), message: str(update.Message) } } : {}),
  };
}

/** Pure: a task of GET /tasks. Addresses lose their prefix length (10.0.1.5/24 → 10.0.1.5). */
export function toTask(raw: Raw): SwarmTask {
  const status = obj(raw.Status);
  const container = obj(status.ContainerStatus);
  const spec = obj(obj(raw.Spec).ContainerSpec);
  const attachments = Array.isArray(raw.NetworksAttachments) ? (raw.NetworksAttachments as Raw[]) : [];
  const iteration = obj(raw.JobIteration).Index;
  return {
    id: str(raw.ID),
    serviceId: str(raw.ServiceID),
    nodeId: str(raw.NodeID),
    ...(typeof raw.Slot === 'number' ? { slot: raw.Slot } : {}),
    state: str(status.State),
    desiredState: str(raw.DesiredState),
    message: str(status.Message),
    ...(status.Err ? { error: str(status.Err) } : {}),
    ...(typeof container.ExitCode === 'number' ? { exitCode: container.ExitCode } : {}),
    ...(container.ContainerID ? { containerId: str(container.ContainerID) } : {}),
    image: str(spec.Image),
    addresses: attachments.flatMap((a) =>
      (Array.isArray(a.Addresses) ? (a.Addresses as string[]) : []).map((cidr) => cidr.split('/')[0]!),
    ),
    createdAt: str(raw.CreatedAt),
    updatedAt: str(raw.UpdatedAt),
    ...(raw.JobIteration ? { jobIteration: Number(iteration ?? 0) } : {}),
  };
}

/** Pure: the Engine API's `filters` query value. */
export function filtersQuery(filters: Record<string, string[]>): string {
  return JSON.stringify(filters);
}

export async function createSwarmAdapter(host: string | undefined, timeoutMs = 15_000): Promise<SwarmAdapter> {
  const connection = parseDockerHost(host);
  const { endpoint, ...options } = connection;
  type Dockerode = import('dockerode');
  let client: Promise<{ docker: Dockerode; streams: Dockerode }> | undefined;
  const lib = () =>
    (client ??= import('dockerode').then(({ default: Docker }) => ({
      docker: new Docker({ ...options, timeout: timeoutMs }),
      // Pushes last as long as the image takes: no request timeout on that connection.
      streams: new Docker({ ...options }),
    })));
  /** One Engine API call through dockerode's modem: `_query` becomes the query string, `_body` the JSON body. */
  const call = async <T>(request: {
    path: string;
    method: 'GET' | 'POST' | 'DELETE';
    query?: Record<string, unknown>;
    body?: unknown;
    auth?: RegistryAuth | undefined;
    statusCodes?: Record<number, boolean | string>;
  }): Promise<T> => {
    const { docker } = await lib();
    return new Promise<T>((resolve, reject) => {
      docker.modem.dial(
        {
          path: `${request.path}?`,
          method: request.method,
          options: { _query: request.query ?? {}, ...(request.body !== undefined ? { _body: request.body } : {}) },
          ...(request.auth ? { authconfig: request.auth } : {}),
          statusCodes: {
            200: true,
            201: true,
            204: true,
            304: true,
            400: 'bad parameter',
            404: 'no such object',
            409: 'conflict',
            500: 'server error',
            503: 'node is not part of a swarm, or not a manager',
            ...request.statusCodes,
          },
        },
        (error: unknown, data: unknown) => (error ? reject(error as Error) : resolve(data as T)),
      );
    });
  };
  const notFound = (error: unknown) => (error as { statusCode?: number }).statusCode === 404;
  /**
   * A read of JSON: over plain HTTP (a unix socket or tcp://) without loading dockerode, whose start costs
   * about 150 ms that `status` and `health` would pay on every run; through dockerode over TLS.
   */
  const read = async <T>(pathname: string, query: Record<string, string | boolean> = {}): Promise<T> => {
    if (connection.protocol === 'https') return call<T>({ path: pathname, method: 'GET', query });
    const qs = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)])).toString();
    return engineGet<T>(connection, qs ? `${pathname}?${qs}` : pathname, timeoutMs);
  };

  return {
    endpoint,
    async info() {
      const raw = await read<Raw>('/info');
      const swarm = obj(raw.Swarm);
      return {
        localNodeState: str(swarm.LocalNodeState) || 'inactive',
        controlAvailable: swarm.ControlAvailable === true,
        nodeId: str(swarm.NodeID),
        engineVersion: str(raw.ServerVersion),
        nodes: Number(swarm.Nodes ?? 0),
        managers: Number(swarm.Managers ?? 0),
      };
    },
    async nodes() {
      return (await read<Raw[]>('/nodes')).map(toNode);
    },
    async services(labels) {
      const label = Object.entries(labels).map(([k, v]) => `${k}=${v}`);
      const raw = await read<Raw[]>('/services', label.length ? { filters: filtersQuery({ label }) } : {});
      return raw.map(toService);
    },
    async service(name) {
      try {
        // By name, the Engine also matches an id prefix: the name must be the service's own.
        const found = toService(await read<Raw>(`/services/${encodeURIComponent(name)}`));
        return found.name === name || found.id === name ? found : undefined;
      } catch (error) {
        if (notFound(error)) return undefined;
        throw error;
      }
    },
    async createService(spec, auth) {
      const created = await call<{ ID: string }>({ path: '/services/create', method: 'POST', body: spec, auth });
      return created.ID;
    },
    async updateService(id, version, spec, auth) {
      await call({ path: `/services/${id}/update`, method: 'POST', query: { version }, body: spec, auth });
    },
    async rollbackService(id, version) {
      const current = await call<Raw>({ path: `/services/${id}`, method: 'GET' });
      await call({
        path: `/services/${id}/update`,
        method: 'POST',
        query: { version, rollback: 'previous' },
        body: current.Spec,
      });
    },
    async removeService(id) {
      await call({ path: `/services/${id}`, method: 'DELETE' }).catch((error: unknown) => {
        if (!notFound(error)) throw error;
      });
    },
    async tasks(filters) {
      const f: Record<string, string[]> = {};
      if (filters.service) f.service = [filters.service];
      if (filters.desiredState) f['desired-state'] = [filters.desiredState];
      try {
        return (await read<Raw[]>('/tasks', { filters: filtersQuery(f) })).map(toTask);
      } catch (error) {
        // A service filter that names no service is a 404, not an empty list.
        if (notFound(error)) return [];
        throw error;
      }
    },
    async serviceLogs(id, tail) {
      const data = await call<Buffer | string>({
        path: `/services/${id}/logs`,
        method: 'GET',
        query: { stdout: true, stderr: true, tail: String(tail) },
      });
      return Buffer.isBuffer(data) ? demuxLogs(data) : String(data);
    },
    async network(name) {
      try {
        const raw = await read<Raw>(`/networks/${encodeURIComponent(name)}`);
        if (str(raw.Name) !== name) return undefined;
        return { id: str(raw.Id), driver: str(raw.Driver), attachable: raw.Attachable === true };
      } catch (error) {
        if (notFound(error)) return undefined;
        throw error;
      }
    },
    async createNetwork(spec) {
      const created = await call<{ Id: string }>({ path: '/networks/create', method: 'POST', body: spec });
      return created.Id;
    },
    async distributionDigest(ref, auth) {
      const raw = await call<Raw>({ path: `/distribution/${ref}/json`, method: 'GET', auth });
      const digest = str(obj(raw.Descriptor).digest);
      if (!digest) throw new Error(`the registry gave no digest for ${ref}`);
      return digest;
    },
    async pushImage(ref, auth, onProgress) {
      const { streams } = await lib();
      const colon = ref.lastIndexOf(':');
      const slash = ref.lastIndexOf('/');
      const [name, tag] = colon > slash ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, 'latest'];
      // An empty auth ({}) is what the CLI sends for a registry without credentials.
      const stream = (await streams.getImage(name).push({
        tag,
        authconfig: auth ?? { serveraddress: name.split('/')[0]! },
      })) as NodeJS.ReadableStream;
      await new Promise<void>((resolve, reject) => {
        let failure: string | undefined;
        streams.modem.followProgress(
          stream,
          (error: Error | null) => (error ? reject(error) : failure ? reject(new Error(failure)) : resolve()),
          (event: { status?: string; id?: string; error?: string; errorDetail?: { message?: string } }) => {
            if (event.error) failure = event.errorDetail?.message ?? event.error;
            else if (event.status && !event.id) onProgress(event.status);
          },
        );
      });
    },
  };
}
