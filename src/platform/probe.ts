import type { ContainerInfo } from '../adapters/docker.js';
import type { HttpAdapter, HttpResponse } from '../adapters/http.js';
import type { NetAdapter } from '../adapters/net.js';

/** A health probe's answer; a TCP-only probe has no response (nothing of the app's answers is checked). */
export type ContainerHealth =
  | { ok: true; address: string; response: HttpResponse | undefined }
  | { ok: false; last: string };

/** How a web container is judged healthy (deploy.healthCheck, healthPort, healthPath). */
export interface HealthProbe {
  kind: 'http' | 'tcp';
  port: number;
  path: string;
}

/** Pure: what a probe checks, for step labels and messages. */
export function describeProbe(probe: HealthProbe): string {
  return probe.kind === 'tcp'
    ? `a TCP connect to port ${probe.port} (deploy.healthCheck: tcp; its answers are not checked)`
    : probe.path;
}

/**
 * One look at a container on its own network address (not through nginx): its HTTP health path, or
 * with `tcp` only whether its port accepts a connection. Deploy's web gate and cutover's colour gate
 * both poll it.
 */
export async function probeContainerHealth(
  io: { http: HttpAdapter; net: NetAdapter },
  container: ContainerInfo | undefined,
  probe: HealthProbe,
): Promise<ContainerHealth> {
  if (!container?.running)
    return { ok: false, last: container ? `${container.name} is ${container.state}` : 'no running container' };
  const address = Object.values(container.addresses)[0];
  if (!address) return { ok: false, last: `${container.name} has no network address` };
  if (probe.kind === 'tcp') {
    try {
      await io.net.connect(address, probe.port, 3000);
      return { ok: true, address, response: undefined };
    } catch (error) {
      const e = error as { code?: string; message?: string };
      return { ok: false, last: `TCP ${address}:${probe.port}: ${e.code ?? e.message}` };
    }
  }
  const url = `http://${address}:${probe.port}${probe.path}`;
  try {
    const response = await io.http.request(url, { timeoutMs: 3000 });
    if (response.status === 200) return { ok: true, address, response };
    return { ok: false, last: `HTTP ${response.status} from ${url}: ${response.body.slice(0, 200)}` };
  } catch (error) {
    const e = error as { code?: string; message?: string; cause?: { code?: string } };
    return { ok: false, last: `${url}: ${e.code ?? e.cause?.code ?? e.message}` };
  }
}

/** Pure: the web service's probe from the config. */
export function healthProbe(config: {
  deploy: { healthCheck: 'http' | 'tcp'; healthPort: number; healthPath: string };
}): HealthProbe {
  return { kind: config.deploy.healthCheck, port: config.deploy.healthPort, path: config.deploy.healthPath };
}
