import type { ContainerInfo } from '../adapters/docker.js';
import type { HttpAdapter, HttpResponse } from '../adapters/http.js';

export type ContainerHealth = { ok: true; address: string; response: HttpResponse } | { ok: false; last: string };

/**
 * One look at a container's HTTP health path on its own network address (not through nginx): the
 * probe deploy's web gate and cutover's colour gate both poll.
 */
export async function probeContainerHealth(http: HttpAdapter, container: ContainerInfo | undefined, port: number, path: string): Promise<ContainerHealth> {
  if (!container?.running) return { ok: false, last: container ? `${container.name} is ${container.state}` : 'no running container' };
  const address = Object.values(container.addresses)[0];
  if (!address) return { ok: false, last: `${container.name} has no network address` };
  const url = `http://${address}:${port}${path}`;
  try {
    const response = await http.request(url, { timeoutMs: 3000 });
    if (response.status === 200) return { ok: true, address, response };
    return { ok: false, last: `HTTP ${response.status} from ${url}: ${response.body.slice(0, 200)}` };
  } catch (error) {
    const e = error as { code?: string; message?: string; cause?: { code?: string } };
    return { ok: false, last: `${url}: ${e.code ?? e.cause?.code ?? e.message}` };
  }
}
