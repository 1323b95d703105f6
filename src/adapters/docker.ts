/**
 * Longer than 400 lines: the one adapter of the Engine API; its calls share one connection, one error
 * shape and the lazy dockerode, and split by resource they would repeat those.
 *
 * Every Docker Engine call opskit makes goes through this adapter, so that what is decided (which
 * colour, which image, healthy or not) stays apart from where it runs, and Docker Swarm can later sit
 * behind the same interface. dockerode is imported lazily: commands that do not talk to Docker never
 * load it.
 */
export interface DockerEngineInfo {
  version: string;
  apiVersion: string;
  minApiVersion: string | undefined;
  os: string;
  arch: string;
}

/** One JSON message of the Engine's build stream (`{stream}`, `{aux: {ID}}`, `{error, errorDetail}`). */
export interface BuildEvent {
  stream?: string;
  status?: string;
  aux?: { ID?: string };
  error?: string;
  errorDetail?: { message?: string; code?: number };
}

/** The Engine API's build parameters (POST /build), as opskit's build plan produces them. */
export interface BuildParameters {
  t: string[];
  dockerfile: string;
  target?: string;
  buildargs: Record<string, string>;
  nocache: boolean;
  labels: Record<string, string>;
  rm: boolean;
  forcerm: boolean;
}

export interface ImageInfo {
  id: string;
  tags: string[];
  sizeBytes: number;
  user: string;
  created: string;
  labels: Record<string, string>;
}

export type HealthStatus = 'healthy' | 'unhealthy' | 'starting' | 'none';

export interface ContainerInfo {
  id: string;
  name: string;
  image: string;
  imageId: string;
  labels: Record<string, string>;
  state: string;
  running: boolean;
  exitCode: number;
  restartCount: number;
  health: HealthStatus;
  healthLog: Array<{ exitCode: number; output: string; end: string }>;
  /** Addresses by network name. */
  addresses: Record<string, string>;
  startedAt: string;
  mounts: Array<{ source: string; destination: string }>;
}

/** The Engine API's container create body (POST /containers/create), the fields opskit sets. */
export interface ContainerSpec {
  Image: string;
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  User?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  HostConfig?: {
    Binds?: string[];
    NetworkMode?: string;
    RestartPolicy?: { Name: string };
    LogConfig?: { Type: string; Config: Record<string, string> };
  };
}

export interface DockerAdapter {
  /** Where the engine is reached, for messages: `unix:///var/run/docker.sock`, `tcp://host:2375`. */
  readonly endpoint: string;
  ping(): Promise<void>;
  version(): Promise<DockerEngineInfo>;
  /** Sends the listed files of `context` (already filtered by .dockerignore) and streams the build. */
  buildImage(
    context: string,
    files: readonly string[],
    parameters: BuildParameters,
    onEvent: (event: BuildEvent) => void,
  ): Promise<void>;
  /** undefined when there is no such image. */
  inspectImage(ref: string): Promise<ImageInfo | undefined>;
  /** Containers whose labels match all of these, running or not. */
  listContainers(labels: Record<string, string>): Promise<ContainerInfo[]>;
  inspectContainer(id: string): Promise<ContainerInfo | undefined>;
  /** The last `tail` lines of stdout and stderr. */
  containerLogs(id: string, tail: number): Promise<string>;
  /** One sample of the stats API: CPU percent (of all CPUs) and memory use. */
  containerStats(id: string): Promise<{ cpuPercent: number; memoryBytes: number; memoryLimitBytes: number }>;
  /** Restart policy, e.g. `unless-stopped` (compose's one-off containers get none). */
  setRestartPolicy(id: string, policy: string): Promise<void>;
  stopContainer(id: string, timeoutSeconds: number): Promise<void>;
  /** Creates and starts a container; returns its id. */
  runContainer(name: string, spec: ContainerSpec): Promise<string>;
  startContainer(id: string): Promise<void>;
  removeContainer(id: string): Promise<void>;
  /** Runs argv inside a running container; its exit code and output. */
  exec(id: string, argv: readonly string[]): Promise<{ exitCode: number; output: string }>;
  /** The container's processes as the Engine's `top` lists them (pid and command line). */
  containerProcesses(id: string): Promise<{ pid: number; command: string }[]>;
  /**
   * A command in a running container whose stdout is a stream (pg_dump in the db service); env goes through the API,
   * not an argv.
   */
  execStream(
    id: string,
    argv: readonly string[],
    env: Record<string, string>,
  ): Promise<{ stdout: NodeJS.ReadableStream; done: Promise<{ exitCode: number; stderr: string }> }>;
  /** A command in a running container reading `input` on its stdin (psql loading a dump); env through the API. */
  execStdin(
    id: string,
    argv: readonly string[],
    env: Record<string, string>,
    input: NodeJS.ReadableStream,
  ): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  /**
   * Container events (start, die, health_status, ...) of containers with these labels, as they
   * happen, until the returned function is called. Lets a wait wake at once instead of polling late.
   */
  watchContainers(
    labels: Record<string, string>,
    onEvent: (event: { action: string; id: string }) => void,
  ): Promise<() => void>;
}

export interface DockerConnection {
  socketPath?: string;
  host?: string;
  port?: number;
  protocol?: 'http' | 'https';
  endpoint: string;
}

/** DOCKER_HOST (or the config's docker.host) to dockerode's connection options. Pure. */
export function parseDockerHost(host: string | undefined): DockerConnection {
  if (!host) return { socketPath: '/var/run/docker.sock', endpoint: 'unix:///var/run/docker.sock' };
  const unix = /^unix:\/\/(.+)$/.exec(host);
  if (unix) return { socketPath: unix[1]!, endpoint: host };
  const tcp = /^(tcp|http|https):\/\/([^:/]+)(?::(\d+))?\/?$/.exec(host);
  if (tcp) {
    const protocol = tcp[1] === 'https' ? 'https' : 'http';
    return {
      host: tcp[2]!,
      port: tcp[3] ? Number(tcp[3]) : protocol === 'https' ? 2376 : 2375,
      protocol,
      endpoint: host,
    };
  }
  if (host.startsWith('/')) return { socketPath: host, endpoint: `unix://${host}` };
  throw new Error(`docker host "${host}" is not unix://PATH or tcp://HOST:PORT`);
}

/** Splits the Engine's multiplexed log stream (8-byte frame headers) into text. Pure. */
/** The Engine's `top` answer (`ps -ef` columns by default) as pids and command lines. */
export function parseTop(
  titles: readonly string[],
  rows: readonly (readonly string[])[],
): { pid: number; command: string }[] {
  const pidAt = titles.indexOf('PID');
  const cmdAt = titles.findIndex((t) => t === 'CMD' || t === 'COMMAND');
  if (pidAt < 0 || cmdAt < 0) return [];
  return rows
    .map((row) => ({ pid: Number(row[pidAt]), command: row[cmdAt] ?? '' }))
    .filter((p) => Number.isInteger(p.pid) && p.pid > 0);
}

export function demuxLogs(buffer: Buffer): string {
  const parts: string[] = [];
  let offset = 0;
  const framed =
    buffer.length >= 8 && (buffer[0] === 1 || buffer[0] === 2) && buffer[1] === 0 && buffer[2] === 0 && buffer[3] === 0;
  if (!framed) return buffer.toString('utf8');
  while (offset + 8 <= buffer.length) {
    const size = buffer.readUInt32BE(offset + 4);
    parts.push(buffer.subarray(offset + 8, offset + 8 + size).toString('utf8'));
    offset += 8 + size;
  }
  return parts.join('');
}

interface RawStats {
  cpu_stats: {
    cpu_usage: { total_usage: number; percpu_usage?: number[] };
    system_cpu_usage?: number;
    online_cpus?: number;
  };
  precpu_stats: { cpu_usage: { total_usage: number }; system_cpu_usage?: number };
  memory_stats: { usage?: number; limit?: number; stats?: { cache?: number; inactive_file?: number } };
}

/**
 * Pure: the `docker stats` arithmetic (CPU % as docker stats shows it, 100 per busy CPU; memory less the page cache).
 */
export function cpuAndMemory(stats: RawStats): { cpuPercent: number; memoryBytes: number; memoryLimitBytes: number } {
  const cpuDelta = stats.cpu_stats.cpu_usage.total_usage - stats.precpu_stats.cpu_usage.total_usage;
  const systemDelta = (stats.cpu_stats.system_cpu_usage ?? 0) - (stats.precpu_stats.system_cpu_usage ?? 0);
  const cpus = stats.cpu_stats.online_cpus ?? stats.cpu_stats.cpu_usage.percpu_usage?.length ?? 1;
  const cpuPercent = systemDelta > 0 && cpuDelta > 0 ? (cpuDelta / systemDelta) * cpus * 100 : 0;
  const cache = stats.memory_stats.stats?.inactive_file ?? stats.memory_stats.stats?.cache ?? 0;
  return {
    cpuPercent,
    memoryBytes: Math.max(0, (stats.memory_stats.usage ?? 0) - cache),
    memoryLimitBytes: stats.memory_stats.limit ?? 0,
  };
}

interface RawContainer {
  Id: string;
  Name: string;
  Image: string;
  Config: { Image: string; Labels: Record<string, string> | null };
  State: {
    Status: string;
    Running: boolean;
    ExitCode: number;
    StartedAt: string;
    Health?: { Status: string; Log?: Array<{ ExitCode: number; Output: string; End: string }> };
  };
  RestartCount: number;
  NetworkSettings: { Networks: Record<string, { IPAddress: string }> };
  Mounts?: Array<{ Source: string; Destination: string }>;
}

function toContainerInfo(raw: RawContainer): ContainerInfo {
  const health = raw.State.Health?.Status;
  return {
    id: raw.Id,
    name: raw.Name.replace(/^\//, ''),
    image: raw.Config.Image,
    imageId: raw.Image,
    labels: raw.Config.Labels ?? {},
    state: raw.State.Status,
    running: raw.State.Running,
    exitCode: raw.State.ExitCode,
    restartCount: raw.RestartCount,
    health: health === 'healthy' || health === 'unhealthy' || health === 'starting' ? health : 'none',
    healthLog: (raw.State.Health?.Log ?? []).map((l) => ({ exitCode: l.ExitCode, output: l.Output, end: l.End })),
    addresses: Object.fromEntries(
      Object.entries(raw.NetworkSettings.Networks ?? {})
        .map(([name, n]) => [name, n.IPAddress])
        .filter(([, ip]) => ip),
    ),
    startedAt: raw.State.StartedAt,
    mounts: (raw.Mounts ?? []).map((m) => ({ source: m.Source, destination: m.Destination })),
  };
}

function isNotFound(error: unknown): boolean {
  return (error as { statusCode?: number }).statusCode === 404;
}

/**
 * One GET of the Engine API, answered as JSON, over plain HTTP (a unix socket or tcp://): the read-only
 * calls every command makes need no client library, and loading dockerode (with its gRPC and SSH
 * dependencies) costs about 150 ms of start-up. A non-2xx answer rejects with its statusCode, as
 * dockerode's errors do.
 */
export async function engineGet<T>(connection: DockerConnection, pathname: string, timeoutMs: number): Promise<T> {
  const http = await import('node:http');
  return new Promise<T>((resolve, reject) => {
    const target = connection.socketPath
      ? { socketPath: connection.socketPath }
      : { host: connection.host, port: connection.port };
    const request = http.request(
      { ...target, path: pathname, method: 'GET', headers: { host: 'docker' } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = response.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            try {
              resolve(JSON.parse(text) as T);
            } catch (error) {
              reject(error as Error);
            }
            return;
          }
          let message = text.trim();
          try {
            message = (JSON.parse(text) as { message?: string }).message ?? message;
          } catch {
            // not JSON: the text itself
          }
          reject(Object.assign(new Error(`(HTTP code ${status}) ${message}`), { statusCode: status, reason: message }));
        });
      },
    );
    request.setTimeout(timeoutMs, () =>
      request.destroy(
        Object.assign(new Error(`the Docker engine did not answer GET ${pathname} within ${timeoutMs} ms`), {
          code: 'ETIMEDOUT',
        }),
      ),
    );
    request.on('error', reject);
    request.end();
  });
}

export async function createDockerAdapter(host: string | undefined, timeoutMs = 10_000): Promise<DockerAdapter> {
  const connection = parseDockerHost(host);
  const { endpoint, ...options } = connection;
  // dockerode is loaded on the first call that needs it (writes, streams, TLS).
  type Clients = { docker: import('dockerode'); builder: import('dockerode') };
  let clients: Promise<Clients> | undefined;
  const lib = () =>
    (clients ??= import('dockerode').then(({ default: Docker }) => ({
      docker: new Docker({ ...options, timeout: timeoutMs }),
      // Builds and event streams last minutes: no request timeout on that connection.
      builder: new Docker({ ...options }),
    })));
  const plain = connection.protocol !== 'https';
  const get = async <T>(pathname: string, viaLib: (docker: import('dockerode')) => Promise<unknown>): Promise<T> =>
    plain ? engineGet<T>(connection, pathname, timeoutMs) : ((await viaLib((await lib()).docker)) as T);
  return {
    endpoint,
    async ping() {
      await get('/_ping', (d) => d.ping()).catch(async (error: unknown) => {
        // /_ping answers text ("OK"), not JSON: a parse error means it answered.
        if (error instanceof SyntaxError) return;
        throw error;
      });
    },
    async version() {
      const v = await get<{ Version: string; ApiVersion: string; MinAPIVersion?: string; Os: string; Arch: string }>(
        '/version',
        (d) => d.version(),
      );
      return {
        version: v.Version,
        apiVersion: v.ApiVersion,
        minApiVersion: (v as { MinAPIVersion?: string }).MinAPIVersion,
        os: v.Os,
        arch: v.Arch,
      };
    },
    async buildImage(context, files, parameters, onEvent) {
      const { builder } = await lib();
      const stream = await builder.buildImage(
        { context, src: [...files] },
        parameters as unknown as Record<string, unknown>,
      );
      await new Promise<void>((resolve, reject) => {
        builder.modem.followProgress(
          stream,
          (error: Error | null) => (error ? reject(error) : resolve()),
          (event: BuildEvent) => onEvent(event),
        );
      });
    },
    async inspectImage(ref) {
      try {
        type RawImage = {
          Id: string;
          RepoTags?: string[];
          Size: number;
          Created: string;
          Config?: { User?: string; Labels?: Record<string, string> | null };
        };
        const image = await get<RawImage>(`/images/${encodeURIComponent(ref)}/json`, (d) => d.getImage(ref).inspect());
        return {
          id: image.Id,
          tags: image.RepoTags ?? [],
          sizeBytes: image.Size,
          user: image.Config?.User ?? '',
          created: image.Created,
          labels: image.Config?.Labels ?? {},
        };
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    },
    async listContainers(labels) {
      const filters = { label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) };
      const list = await get<Array<{ Id: string }>>(
        `/containers/json?all=1&filters=${encodeURIComponent(JSON.stringify(filters))}`,
        (d) => d.listContainers({ all: true, filters }),
      );
      const infos = await Promise.all(
        list.map(
          async (c) =>
            (await get<RawContainer>(`/containers/${c.Id}/json`, (d) => d.getContainer(c.Id).inspect()).catch(
              () => undefined,
            )) as RawContainer | undefined,
        ),
      );
      return infos.filter((c): c is RawContainer => c !== undefined).map(toContainerInfo);
    },
    async inspectContainer(id) {
      try {
        return toContainerInfo(
          await get<RawContainer>(`/containers/${encodeURIComponent(id)}/json`, (d) => d.getContainer(id).inspect()),
        );
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    },
    async containerStats(id) {
      const { docker } = await lib();
      const stats = (await docker.getContainer(id).stats({ stream: false })) as unknown as RawStats;
      return cpuAndMemory(stats);
    },
    async setRestartPolicy(id, policy) {
      const { docker } = await lib();
      await docker.getContainer(id).update({ RestartPolicy: { Name: policy } });
    },
    async stopContainer(id, timeoutSeconds) {
      const { docker } = await lib();
      await docker
        .getContainer(id)
        .stop({ t: timeoutSeconds })
        .catch((error: { statusCode?: number }) => {
          if (error.statusCode !== 304 && error.statusCode !== 404) throw error;
        });
    },
    async runContainer(name, spec) {
      const { docker } = await lib();
      const container = await docker.createContainer({ name, ...spec });
      await container.start();
      return container.id;
    },
    async startContainer(id) {
      const { docker } = await lib();
      await docker
        .getContainer(id)
        .start()
        .catch((error: { statusCode?: number }) => {
          if (error.statusCode !== 304) throw error;
        });
    },
    async removeContainer(id) {
      const { docker } = await lib();
      await docker
        .getContainer(id)
        .remove({ force: true, v: true })
        .catch((error: { statusCode?: number }) => {
          if (error.statusCode !== 404) throw error;
        });
    },
    async exec(id, argv) {
      const { docker } = await lib();
      const execution = await docker.getContainer(id).exec({ Cmd: [...argv], AttachStdout: true, AttachStderr: true });
      const stream = await execution.start({ hijack: true, stdin: false });
      const chunks: Buffer[] = [];
      await new Promise<void>((resolve, reject) => {
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => resolve());
        stream.on('error', reject);
      });
      const inspected = await execution.inspect();
      return { exitCode: inspected.ExitCode ?? -1, output: demuxLogs(Buffer.concat(chunks)) };
    },
    async containerProcesses(id) {
      const top = await get<{ Titles?: string[]; Processes?: string[][] }>(
        `/containers/${encodeURIComponent(id)}/top`,
        (d) => d.getContainer(id).top(),
      );
      return parseTop(top.Titles ?? [], top.Processes ?? []);
    },
    async execStream(id, argv, env) {
      const { docker } = await lib();
      const { PassThrough } = await import('node:stream');
      const execution = await docker.getContainer(id).exec({
        Cmd: [...argv],
        Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
        AttachStdout: true,
        AttachStderr: true,
      });
      const stream = await execution.start({ hijack: true, stdin: false });
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      let err = '';
      stderr.on('data', (chunk: Buffer) => {
        err = (err + chunk.toString()).slice(-65_536);
      });
      docker.modem.demuxStream(stream, stdout, stderr);
      const done = new Promise<{ exitCode: number; stderr: string }>((resolve, reject) => {
        stream.on('end', () => {
          stdout.end();
          stderr.end();
          execution.inspect().then((i) => resolve({ exitCode: i.ExitCode ?? -1, stderr: err }), reject);
        });
        stream.on('error', reject);
      });
      return { stdout, done };
    },
    async execStdin(id, argv, env, input) {
      const { docker } = await lib();
      const { PassThrough } = await import('node:stream');
      const execution = await docker.getContainer(id).exec({
        Cmd: [...argv],
        Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
      });
      const stream = (await execution.start({ hijack: true, stdin: true })) as NodeJS.ReadWriteStream & {
        end(): void;
      };
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      let out = '';
      let err = '';
      stdout.on('data', (chunk: Buffer) => {
        out = (out + chunk.toString()).slice(-65_536);
      });
      stderr.on('data', (chunk: Buffer) => {
        err = (err + chunk.toString()).slice(-65_536);
      });
      docker.modem.demuxStream(stream, stdout, stderr);
      const ended = new Promise<void>((resolve, reject) => {
        stream.on('end', () => resolve());
        stream.on('error', reject);
      });
      // The input's end closes the process's stdin (a half-close of the hijacked connection).
      input.pipe(stream);
      await ended;
      const inspected = await execution.inspect();
      return { exitCode: inspected.ExitCode ?? -1, stdout: out, stderr: err };
    },
    async watchContainers(labels, onEvent) {
      // No request timeout: the stream stays open for the whole wait.
      const { builder } = await lib();
      const stream = (await builder.getEvents({
        filters: { type: ['container'], label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) },
      })) as NodeJS.ReadableStream & { destroy(): void };
      let pending = '';
      stream.on('data', (chunk: Buffer) => {
        pending += chunk.toString();
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) {
          if (!line.trim()) continue;
          try {
            const event = JSON.parse(line) as {
              Action?: string;
              status?: string;
              id?: string;
              Actor?: { ID?: string };
            };
            onEvent({ action: event.Action ?? event.status ?? '', id: event.Actor?.ID ?? event.id ?? '' });
          } catch {
            // a partial or foreign line: ignore
          }
        }
      });
      stream.on('error', () => {});
      return () => stream.destroy();
    },
    async containerLogs(id, tail) {
      const { docker } = await lib();
      const buffer = (await docker
        .getContainer(id)
        .logs({ stdout: true, stderr: true, tail, follow: false })) as unknown as Buffer;
      return demuxLogs(Buffer.isBuffer(buffer) ? buffer : Buffer.from(String(buffer)));
    },
  };
}
