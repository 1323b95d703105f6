/**
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

export interface DockerAdapter {
  /** Where the engine is reached, for messages: `unix:///var/run/docker.sock`, `tcp://host:2375`. */
  readonly endpoint: string;
  ping(): Promise<void>;
  version(): Promise<DockerEngineInfo>;
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
    return { host: tcp[2]!, port: tcp[3] ? Number(tcp[3]) : protocol === 'https' ? 2376 : 2375, protocol, endpoint: host };
  }
  if (host.startsWith('/')) return { socketPath: host, endpoint: `unix://${host}` };
  throw new Error(`docker host "${host}" is not unix://PATH or tcp://HOST:PORT`);
}

export async function createDockerAdapter(host: string | undefined, timeoutMs = 10_000): Promise<DockerAdapter> {
  const connection = parseDockerHost(host);
  const { default: Docker } = await import('dockerode');
  const { endpoint, ...options } = connection;
  const docker = new Docker({ ...options, timeout: timeoutMs });
  return {
    endpoint,
    async ping() {
      await docker.ping();
    },
    async version() {
      const v = await docker.version();
      return {
        version: v.Version,
        apiVersion: v.ApiVersion,
        minApiVersion: (v as { MinAPIVersion?: string }).MinAPIVersion,
        os: v.Os,
        arch: v.Arch,
      };
    },
  };
}
