import path from 'node:path';
import { type ComposeTarget, isOneOff, pickServiceContainer, serviceLabels } from '../adapters/compose.js';
import type { ContainerInfo, DockerAdapter } from '../adapters/docker.js';
import { OperationError } from '../errors.js';
import type { NginxOps } from '../platform/nginx.js';
import { probeContainerHealth } from '../platform/probe.js';
import type { Context } from '../runtime/context.js';
import { formatDuration } from '../runtime/duration.js';
import { pollUntil, Waker } from '../runtime/poll.js';
import type { DeployStep } from './plan.js';

/** The deploy's steps that talk to the platform: compose runs, health waits, the web gate, the check through nginx. */

export const TAIL = 30;

/** Pure: is a service up as a probe means it (Docker health when it has one, else running)? */
export function serviceReadiness(container: ContainerInfo | undefined): { ready: boolean; describe: string } {
  if (!container) return { ready: false, describe: 'no container yet' };
  if (!container.running)
    return {
      ready: false,
      describe: `${container.state} (exit code ${container.exitCode}, ${container.restartCount} restarts)`,
    };
  if (container.health === 'none') return { ready: true, describe: 'running (no healthcheck)' };
  return { ready: container.health === 'healthy', describe: container.health };
}

export interface Runtime {
  ctx: Context;
  docker: DockerAdapter;
  target: ComposeTarget;
  env: Record<string, string>;
}

export async function serviceDiagnostics(rt: Runtime, service: string): Promise<string> {
  const containers = await rt.docker.listContainers(serviceLabels(rt.target.project, service));
  const container = pickServiceContainer(containers);
  if (!container) return `--- ${service}: no container ---`;
  const logs = (
    await rt.docker.containerLogs(container.id, TAIL).catch((e: Error) => `(logs unavailable: ${e.message})`)
  ).trimEnd();
  const health = container.healthLog
    .slice(-3)
    .map((h) => `  ${h.end} exit ${h.exitCode}: ${h.output.trim().split('\n').slice(-3).join(' | ')}`)
    .join('\n');
  return [
    `--- ${service} (${container.name}): last ${TAIL} log lines ---`,
    logs || '(no output)',
    ...(health ? [`--- ${service}: last health checks ---`, health] : []),
  ].join('\n');
}

export async function waitHealthy(rt: Runtime, services: readonly string[], timeoutMs: number): Promise<void> {
  // Polled with backoff, and woken at once by the engine's events (health_status, start, die), so a
  // healthy service is seen when it turns healthy, not at the next poll.
  const wakers = new Map(services.map((s) => [s, new Waker()]));
  const stop = await rt.docker
    .watchContainers({ 'com.docker.compose.project': rt.target.project }, () => {
      for (const waker of wakers.values()) waker.wake();
    })
    .catch(() => () => {});
  const results = await Promise.all(
    services.map(async (service) => {
      const poll = await pollUntil(
        rt.ctx.clock,
        { timeoutMs, maxDelayMs: 2000, wake: wakers.get(service)! },
        async () => {
          const container = pickServiceContainer(
            await rt.docker.listContainers(serviceLabels(rt.target.project, service)),
          );
          const readiness = serviceReadiness(container);
          return readiness.ready ? { done: true, value: container! } : { done: false, last: readiness.describe };
        },
      );
      return { service, poll };
    }),
  ).finally(stop);
  const failed = results.filter((r) => !r.poll.ok);
  if (failed.length === 0) return;
  const diagnostics = await Promise.all(failed.map((f) => serviceDiagnostics(rt, f.service)));
  const what = failed.map((f) => `${f.service} (last: ${f.poll.ok ? '' : f.poll.last})`).join(', ');
  throw new OperationError(
    'E_SERVICE_UNHEALTHY',
    `${what} did not become healthy within ${formatDuration(timeoutMs)}\n${diagnostics.join('\n')}`,
    {
      hint: 'see the logs above; raise deploy.waitTimeout (--wait-timeout) if it is only slow',
      details: { services: failed.map((f) => f.service) },
    },
  );
}

export async function compose(
  rt: Runtime,
  argv: [string, string[]],
  what: string,
  image: string,
  timeoutMs = 300_000,
): Promise<string> {
  const result = await rt.ctx.exec.run(argv[0], argv[1], {
    env: { ...rt.env, WEB_IMAGE: image },
    timeoutMs,
    cwd: path.dirname(rt.target.composeFile),
  });
  if (result.failed) {
    const output = `${result.stdout}\n${result.stderr}`.trim().split('\n').slice(-TAIL).join('\n');
    throw new OperationError(
      'E_COMPOSE_FAILED',
      `${what} failed (${[argv[0], ...argv[1]].join(' ')}: ${result.timedOut ? 'timed out' : `exit ${result.exitCode}`})\n${output}`,
      {
        hint: "see compose's output above",
      },
    );
  }
  return result.stdout;
}

export async function webHealth(
  rt: Runtime,
  step: Extract<DeployStep, { kind: 'web-health' }>,
  imageId: string,
): Promise<{ container: ContainerInfo; address: string }> {
  // An HTTP probe is cheap: poll often (gunicorn is up within a second or two).
  const poll = await pollUntil(
    rt.ctx.clock,
    { timeoutMs: step.timeoutMs, initialDelayMs: 100, maxDelayMs: 500 },
    async () => {
      const containers = await rt.docker.listContainers(serviceLabels(rt.target.project, step.service));
      const container = containers.find((c) => !isOneOff(c) && c.running && c.imageId === imageId);
      if (!container) return { done: false, last: `no running ${step.service} container of the new image` };
      const probe = await probeContainerHealth(rt.ctx, container, {
        kind: step.probe,
        port: step.port,
        path: step.path,
      });
      return probe.ok
        ? { done: true, value: { container, address: probe.address } }
        : { done: false, last: probe.last };
    },
  );
  if (poll.ok) return poll.value;
  throw new OperationError(
    'E_WEB_UNHEALTHY',
    `${step.service} did not answer ${step.path} within ${formatDuration(step.timeoutMs)} (last: ${poll.last})\n${await serviceDiagnostics(rt, step.service)}`,
    {
      hint: 'see the logs and health checks above',
    },
  );
}

/**
 * The platform as its users meet it: the health path through nginx must answer 2xx (with a TCP-only
 * health check, anything but a 5xx: the app may have no such path). A web service that
 * is healthy on its own address behind an nginx that answers 502 (an upstream that names the wrong
 * server) is a failed deploy.
 */
export async function verifyFront(
  ctx: Context,
  nginx: NginxOps,
  step: { path: string; timeoutMs: number; accept: '2xx' | 'not-5xx' },
): Promise<void> {
  const url = `${await nginx.baseUrl()}${step.path}`;
  const poll = await pollUntil(
    ctx.clock,
    { timeoutMs: step.timeoutMs, initialDelayMs: 50, maxDelayMs: 500 },
    async () => {
      try {
        const r = await ctx.http.request(url, { timeoutMs: 2000 });
        if (step.accept === '2xx' ? r.status >= 200 && r.status < 300 : r.status < 500)
          return { done: true, value: r.status };
        return {
          done: false,
          last: `HTTP ${r.status}${r.body.trim() ? `: ${r.body.trim().replace(/\s+/g, ' ').slice(0, 200)}` : ''}`,
        };
      } catch (error) {
        return { done: false, last: (error as Error).message };
      }
    },
  );
  if (!poll.ok) {
    throw new OperationError(
      'E_FRONT_FAILED',
      `the web service is healthy, but the platform does not answer through nginx: GET ${url} gave ${poll.last} for ${formatDuration(step.timeoutMs)}`,
      {
        hint: 'look at nginx: its upstream file (nginx.upstreamFile), its error log, and `opskit health`',
      },
    );
  }
}
