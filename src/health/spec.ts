import { isSecretHeader } from '../config/redact.js';
import type { Config, HealthCheckConfig } from '../config/schema.js';
import { UsageError } from '../errors.js';
import { parseDuration } from '../runtime/duration.js';
import { isSensitive, Sensitive } from '../sensitive.js';

export type CheckKind = HealthCheckConfig['kind'];
export const CHECK_KINDS: readonly CheckKind[] = [
  'http',
  'tcp',
  'container',
  'postgres',
  'redis',
  'disk',
  'resources',
  'nginx',
  'front',
  'service',
  'nodes',
];

export interface Timing {
  timeoutMs: number;
  retries: number;
  retryDelayMs: number;
  startPeriodMs: number;
}

/** One check, normalised: what to probe, how to judge it, how long to give it. */
/** A datastore asked from a one-off container on the platform's network, with the client of a service's image. */
export interface Inside {
  network: string;
  service: string;
  project: string;
  engine: 'compose' | 'swarm';
}

export type CheckSpec = { name: string; target: string; timing: Timing } & (
  | { kind: 'http'; check: Extract<HealthCheckConfig, { kind: 'http' }> }
  | { kind: 'tcp'; check: Extract<HealthCheckConfig, { kind: 'tcp' }>; host: string; port: number }
  | { kind: 'container'; check: Extract<HealthCheckConfig, { kind: 'container' }>; project: string }
  | { kind: 'postgres'; check: Extract<HealthCheckConfig, { kind: 'postgres' }>; inside?: Inside }
  | { kind: 'redis'; check: Extract<HealthCheckConfig, { kind: 'redis' }>; inside?: Inside }
  | { kind: 'disk'; check: Extract<HealthCheckConfig, { kind: 'disk' }> }
  | { kind: 'resources'; check: Extract<HealthCheckConfig, { kind: 'resources' }>; project: string }
  | { kind: 'nginx'; check: Extract<HealthCheckConfig, { kind: 'nginx' }>; nginx: Config['nginx']; project: string }
  | { kind: 'service'; check: Extract<HealthCheckConfig, { kind: 'service' }>; project: string }
  | { kind: 'nodes'; check: Extract<HealthCheckConfig, { kind: 'nodes' }> }
  | {
      kind: 'front';
      check: Extract<HealthCheckConfig, { kind: 'front' }>;
      nginx: Config['nginx'];
      project: string;
      path: string;
    }
);

function displayUrl(url: string): string {
  return Sensitive.url(url).toString();
}

/** `postgres app@db:5432/app`: a name that tells two datastore checks apart, with no password. */
function datastoreName(kind: string, url: Sensitive): string {
  try {
    const u = new URL(url.reveal());
    return `${kind} ${u.username ? `${decodeURIComponent(u.username)}@` : ''}${u.host}${u.pathname && u.pathname !== '/' ? u.pathname : ''}`;
  } catch {
    return kind;
  }
}

/** Pure: a config entry (or a flag's) as a spec with its timing resolved against the defaults. */
export function toSpec(check: HealthCheckConfig, defaults: Config['health'], config: Config, index: number): CheckSpec {
  const timing: Timing = {
    timeoutMs: parseDuration(check.timeout ?? defaults.timeout, `health.checks[${index}].timeout`),
    retries: check.retries ?? defaults.retries,
    retryDelayMs: parseDuration(check.retryDelay ?? defaults.retryDelay, `health.checks[${index}].retryDelay`),
    startPeriodMs: parseDuration(check.startPeriod ?? defaults.startPeriod, `health.checks[${index}].startPeriod`),
  };
  const project = config.compose.project ?? config.project.name!;
  switch (check.kind) {
    case 'http': {
      const headers = Object.fromEntries(
        Object.entries(check.headers).map(([k, v]) => [k, !isSensitive(v) && isSecretHeader(k) ? new Sensitive(v) : v]),
      );
      return {
        kind: 'http',
        check: { ...check, headers },
        name: check.name ?? `http ${displayUrl(check.url)}`,
        target: displayUrl(check.url),
        timing,
      };
    }
    case 'tcp': {
      const at = check.target.lastIndexOf(':');
      return {
        kind: 'tcp',
        check,
        host: check.target.slice(0, at).replace(/^\[|\]$/g, ''),
        port: Number(check.target.slice(at + 1)),
        name: check.name ?? `tcp ${check.target}`,
        target: check.target,
        timing,
      };
    }
    case 'container': {
      if (!check.service === !check.container)
        throw new UsageError(
          `health.checks[${index}]: a container check names a service or a container (one of them)`,
          { code: 'E_BAD_CHECK' },
        );
      const target = check.service ? `service ${check.service} (project ${project})` : `container ${check.container}`;
      return {
        kind: 'container',
        check,
        project,
        name: check.name ?? `container ${check.service ?? check.container}`,
        target,
        timing,
      };
    }
    case 'postgres':
    case 'redis': {
      const inside: Inside | undefined = check.network
        ? {
            network: check.network,
            service: check.service ?? (check.kind === 'postgres' ? config.database.service : 'redis'),
            project,
            engine: config.engine,
          }
        : undefined;
      return {
        kind: check.kind,
        check,
        name: check.name ?? datastoreName(check.kind, check.url),
        target: `${String(check.url)}${inside ? ` from network ${inside.network}` : ''}`,
        timing,
        ...(inside ? { inside } : {}),
      } as CheckSpec;
    }
    case 'disk':
      return { kind: 'disk', check, name: check.name ?? `disk ${check.path}`, target: check.path, timing };
    case 'resources': {
      const what = check.containers?.length
        ? check.containers.join(', ')
        : check.services?.length
          ? check.services.join(', ')
          : `every service of ${project}`;
      return { kind: 'resources', check, project, name: check.name ?? 'resources', target: what, timing };
    }
    case 'nginx':
      return {
        kind: 'nginx',
        check,
        nginx: config.nginx,
        project,
        name: check.name ?? 'nginx',
        target: config.nginx.mode === 'host' ? config.nginx.config : `service ${config.nginx.service}`,
        timing,
      };
    case 'service':
      return {
        kind: 'service',
        check,
        project,
        name: check.name ?? `service ${check.service}`,
        target: `Swarm service ${project}_${check.service}`,
        timing,
      };
    case 'nodes':
      return { kind: 'nodes', check, name: check.name ?? 'swarm nodes', target: 'the swarm nodes', timing };
    case 'front': {
      const where =
        config.nginx.url ?? (config.nginx.mode === 'host' ? 'nginx.url' : `service ${config.nginx.service}`);
      const path = check.path ?? config.cutover.verifyPath;
      return {
        kind: 'front',
        check,
        nginx: config.nginx,
        project,
        path,
        name: check.name ?? `through nginx ${path}`,
        target: `${where} ${path}`,
        timing,
      };
    }
  }
}

export interface HealthFlags {
  url: string[];
  tcp: string[];
  container: string[];
  postgres: string[];
  redis: string[];
}

/** Pure: the checks the flags ask for (incident response, no config needed). */
export function checksFromFlags(flags: HealthFlags, composeServices: readonly string[]): HealthCheckConfig[] {
  const out: HealthCheckConfig[] = [];
  for (const url of flags.url)
    out.push({
      kind: 'http',
      url,
      method: 'GET',
      headers: {},
      expectStatus: '2xx',
      tlsVerify: true,
      certWarnDays: 14,
      certFailDays: 3,
    });
  for (const target of flags.tcp) out.push({ kind: 'tcp', target });
  for (const name of flags.container)
    out.push(
      composeServices.includes(name) ? { kind: 'container', service: name } : { kind: 'container', container: name },
    );
  for (const url of flags.postgres) out.push({ kind: 'postgres', url: Sensitive.url(url) });
  for (const url of flags.redis) out.push({ kind: 'redis', url: Sensitive.url(url) });
  return out;
}

/**
 * Pure: with no checks configured or flagged, the platform's own: each compose service, the platform
 * through nginx (where its users meet it: a healthy web service behind an nginx answering 502 fails),
 * the disk.
 */
export function defaultChecks(config: Config, colorServices: readonly string[] = []): HealthCheckConfig[] {
  const services = [
    ...new Set([
      ...config.deploy.dependencies,
      config.deploy.webService,
      ...colorServices,
      ...config.deploy.frontServices,
    ]),
  ];
  const front =
    config.nginx.mode === 'host'
      ? config.nginx.url !== undefined
      : config.deploy.frontServices.includes(config.nginx.service);
  const swarm = config.engine === 'swarm';
  const project = config.compose.project ?? config.project.name!;
  // On Swarm the datastores answer only on the overlay network: asked from a one-off container there.
  const network = `${project}_default`;
  const inside: HealthCheckConfig[] = swarm
    ? [
        ...(config.database.url ? [{ kind: 'postgres', url: config.database.url, network } as HealthCheckConfig] : []),
        ...(config.deploy.dependencies.includes('redis')
          ? [{ kind: 'redis', url: Sensitive.url('redis://redis:6379'), network } as HealthCheckConfig]
          : []),
      ]
    : [];
  return [
    ...(swarm ? [{ kind: 'nodes' } as HealthCheckConfig] : []),
    ...services.map(
      (service): HealthCheckConfig =>
        swarm ? ({ kind: 'service', service, recent: '10m' } as HealthCheckConfig) : { kind: 'container', service },
    ),
    // An app checked by a TCP connect (deploy.healthCheck: tcp) may have no such path: anything but a 5xx.
    ...(front
      ? [
          {
            kind: 'front',
            expectStatus: config.deploy.healthCheck === 'tcp' ? '1xx,2xx,3xx,4xx' : '2xx',
          } as HealthCheckConfig,
        ]
      : []),
    ...inside,
    { kind: 'disk', path: '.', warnFree: '15%', failFree: '5%' },
  ];
}

/** Pure: what a check expects, shown even when its probe failed before judging anything. */
export function expectedOf(spec: CheckSpec): unknown {
  switch (spec.kind) {
    case 'http':
      return {
        status: spec.check.expectStatus,
        ...(spec.check.bodyContains !== undefined ? { bodyContains: spec.check.bodyContains } : {}),
        ...(spec.check.json ? { json: spec.check.json } : {}),
      };
    case 'tcp':
      return { connected: true };
    case 'container':
      return { state: 'running', health: 'healthy (or no healthcheck)' };
    case 'postgres':
      return { query: 'SELECT version()' };
    case 'redis':
      return { reply: 'PONG' };
    case 'disk':
      return { warnBelow: spec.check.warnFree, failBelow: spec.check.failFree };
    case 'resources':
      return {
        warnCpu: spec.check.warnCpu,
        failCpu: spec.check.failCpu,
        warnMemory: spec.check.warnMemory,
        failMemory: spec.check.failMemory,
      };
    case 'nginx':
      return { configTest: 'ok', master: 'running' };
    case 'front':
      return { status: spec.check.expectStatus };
    case 'service':
      return { running: 'as many tasks as desired, on nodes that are up', failedRecently: 0 };
    case 'nodes':
      return { state: 'ready', availability: 'active' };
  }
}
