import path from 'node:path';
import {
  type ComposeTarget,
  composeArgv,
  describeCli,
  isOneOff,
  pickServiceContainer,
  serviceLabels,
} from '../../adapters/compose.js';
import type { ContainerInfo, DockerAdapter } from '../../adapters/docker.js';
import { OperationError } from '../../errors.js';
import type { Context } from '../../runtime/context.js';
import { formatDuration } from '../../runtime/duration.js';
import { pollUntil, Waker } from '../../runtime/poll.js';
import { probeContainerHealth } from '../probe.js';
import type { ColorName, Engine, Instance, WebProbe } from './engine.js';

/**
 * The compose engine: the platform on one host, as `docker compose` (v2) or `docker-compose` (v1) runs it.
 * Services are found by their compose labels, never by name; the web's image is WEB_IMAGE in the env.
 */

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
  step: WebProbe,
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

/** Pure: the compose argv of the engine's operations (what a dry run prints, what the engine runs). */
export const composeStartArgv = (target: ComposeTarget, services: readonly string[], deps: boolean) =>
  composeArgv(target, ['up', '-d', ...(deps ? [] : ['--no-deps']), ...services]);
export const composeJobArgv = (target: ComposeTarget, service: string, command: readonly string[]) =>
  composeArgv(target, ['run', '--rm', '--no-deps', '-T', service, ...command]);

/** Pure: the compose arguments that start a colour from the web service's definition (`compose run -d`). */
export function colorRunArgs(name: string, color: ColorName, webService: string): string[] {
  return [
    'run',
    '-d',
    '--no-deps',
    '--name',
    name,
    '-e',
    `APP_COLOR=${color}`,
    '-l',
    `org.opskit.color=${color}`,
    '-l',
    'org.opskit.role=web',
    webService,
  ];
}

export interface ComposeEngineOptions {
  /** Services started with their dependencies (compose's depends_on), e.g. the deploy's first `up`. */
  withDependencies?: readonly string[];
}

/** The compose engine over one Runtime (its Docker connection, compose target and env). */
export function composeEngine(rt: Runtime, options: ComposeEngineOptions = {}): Engine {
  const deps = (services: readonly string[]) => services.some((s) => options.withDependencies?.includes(s));
  const cwd = path.dirname(rt.target.composeFile);
  return {
    kind: 'compose',
    description: describeCli(rt.target.cli),
    async planStart(services, image, description) {
      const [file, args] = composeStartArgv(rt.target, services, deps(services));
      return [{ kind: 'exec', argv: [file, ...args], description: `${description} (WEB_IMAGE=${image})` }];
    },
    async planJob(service, command, image, description) {
      const [file, args] = composeJobArgv(rt.target, service, command);
      return [{ kind: 'exec', argv: [file, ...args], description: `${description} (WEB_IMAGE=${image})` }];
    },
    async planPublish() {
      return [];
    },
    async publish(image) {
      return image;
    },
    async start(services, image) {
      await compose(
        rt,
        composeStartArgv(rt.target, services, deps(services)),
        `starting ${services.join(', ')}`,
        image,
      );
    },
    waitReady: (services, timeoutMs) => waitHealthy(rt, services, timeoutMs),
    async runJob(service, command, image, { timeoutMs, onLine }) {
      const [file, args] = composeJobArgv(rt.target, service, command);
      const result = await rt.ctx.exec.run(file, args, {
        env: { ...rt.env, WEB_IMAGE: image },
        timeoutMs,
        cwd,
        onLine,
      });
      const output = `${result.stdout}\n${result.stderr}`.split('\n').filter((l) => l.trim() !== '');
      return { exitCode: result.failed ? (result.exitCode ?? 1) || 1 : 0, timedOut: result.timedOut, output };
    },
    async webReady(step, imageId) {
      const healthy = await webHealth(rt, step, imageId);
      return { name: healthy.container.name, address: healthy.address, id: healthy.container.id };
    },
    async restore(service, image) {
      const restored = await rt.ctx.exec.run(...composeStartArgv(rt.target, [service], false), {
        env: { ...rt.env, WEB_IMAGE: image },
        timeoutMs: 300_000,
        cwd,
      });
      return !restored.failed;
    },
    async instances(service) {
      const containers = await rt.docker.listContainers(serviceLabels(rt.target.project, service));
      return containers.filter((c) => !isOneOff(c)).map((c) => toInstance(service, c));
    },
    async logs(service, tail) {
      const container = pickServiceContainer(await rt.docker.listContainers(serviceLabels(rt.target.project, service)));
      return container ? rt.docker.containerLogs(container.id, tail) : '';
    },
    colors: {
      plan(name, color, service, image, description) {
        return [
          {
            kind: 'exec',
            argv: composeArgv(rt.target, colorRunArgs(name, color, service)).flat(),
            description: `${description} with ${image} (WEB_IMAGE)`,
          },
        ];
      },
      async start(name, color, service, image) {
        const argv = composeArgv(rt.target, colorRunArgs(name, color, service));
        const result = await rt.ctx.exec.run(argv[0], argv[1], {
          env: { ...rt.env, WEB_IMAGE: image },
          timeoutMs: 120_000,
          cwd,
        });
        if (result.failed)
          throw new OperationError(
            'E_COMPOSE_FAILED',
            `could not start ${color} (${[argv[0], ...argv[1]].join(' ')}): ${`${result.stderr}\n${result.stdout}`.trim().split('\n').slice(-10).join('\n')}`,
          );
        const info = await rt.docker.inspectContainer(name);
        if (!info) throw new OperationError('E_COMPOSE_FAILED', `compose did not create ${name}`);
        // compose gives one-off containers no restart policy; a colour must survive a crash or a reboot.
        await rt.docker.setRestartPolicy(info.id, 'unless-stopped');
        return info.id;
      },
    },
  };
}

/** Pure: a compose container as an engine instance. */
export function toInstance(service: string, c: ContainerInfo): Instance {
  const readiness = serviceReadiness(c);
  return {
    service,
    id: c.id,
    name: c.name,
    state: c.state,
    health: c.health,
    image: c.image,
    ready: readiness.ready,
    ...(readiness.ready ? {} : { detail: readiness.describe }),
  };
}
