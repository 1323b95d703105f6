import type { PlannedStep } from '../output/plan.js';
import type { Engine } from '../platform/engine/engine.js';

export interface DeployPlanInput {
  image: string;
  webService: string;
  dependencies: readonly string[];
  frontServices: readonly string[];
  /** null with --skip-migrations. */
  migrate: { command: readonly string[]; timeoutMs: number } | null;
  health: { kind: 'http' | 'tcp'; path: string; port: number; timeoutMs: number };
  waitTimeoutMs: number;
  stateFile: string;
  /** Names of the hooks that run before the migrations (e.g. a backup). */
  beforeMigrate: readonly string[];
  /**
   * Socket and relay modes: the sockets directory, whose live.sock link is pointed at the new web
   * container's socket (in relay mode, opened by a relay beside the container).
   */
  sockets: { dir: string; relay: boolean } | null;
  /**
   * nginx in front: its upstream is rendered for the switch mode (the live.sock link, or the web
   * container), and the deploy ends by asking the platform through nginx, where its users meet it.
   * null when nginx is not part of the platform.
   */
  front: { verifyPath: string; verifyTimeoutMs: number } | null;
  /**
   * nginx's upstream file is opskit's to render (one host); false where nginx finds the web by its
   * service name itself (Swarm's DNS).
   */
  upstream: boolean;
  /** The new image goes to a registry first, from which every node pulls it (Swarm). */
  publish: boolean;
  /**
   * Swarm: the sockets directory the edge nginx shares with opskit, where its live.sock link is made
   * (to blue.sock) before nginx starts, when there is none yet. Blue-green moves it later.
   */
  edge?: { dir: string } | null;
}

export type DeployStep =
  | { kind: 'publish'; image: string }
  | { kind: 'up'; services: string[] }
  | { kind: 'wait-healthy'; services: string[]; timeoutMs: number }
  | { kind: 'hook'; name: string }
  | { kind: 'migrate'; service: string; command: string[]; timeoutMs: number }
  | { kind: 'replace-web'; service: string }
  | { kind: 'web-health'; service: string; probe: 'http' | 'tcp'; path: string; port: number; timeoutMs: number }
  | { kind: 'relay'; service: string; dir: string }
  | { kind: 'point-live'; service: string; dir: string }
  | { kind: 'edge-link'; dir: string }
  | { kind: 'upstream'; service: string; mode: 'socket' | 'reload' }
  /** accept: `2xx`, or with a TCP-only health check any answer that is not a 5xx (the app may have no such path). */
  | { kind: 'verify-front'; path: string; timeoutMs: number; accept: '2xx' | 'not-5xx' }
  | { kind: 'write-state'; path: string };

/**
 * Pure: migrate-then-start, in order. The web service is started or replaced only after the
 * migrations succeeded, and they run in a one-off job of the NEW image (the web service's definition
 * with the new image), so they see exactly the environment the new API will.
 */
export function planDeploy(input: DeployPlanInput): DeployStep[] {
  const steps: DeployStep[] = [];
  if (input.publish) steps.push({ kind: 'publish', image: input.image });
  if (input.dependencies.length > 0) {
    steps.push({ kind: 'up', services: [...input.dependencies] });
    steps.push({ kind: 'wait-healthy', services: [...input.dependencies], timeoutMs: input.waitTimeoutMs });
  }
  for (const name of input.beforeMigrate) steps.push({ kind: 'hook', name });
  if (input.migrate) {
    steps.push({
      kind: 'migrate',
      service: input.webService,
      command: [...input.migrate.command],
      timeoutMs: input.migrate.timeoutMs,
    });
  }
  steps.push({ kind: 'replace-web', service: input.webService });
  steps.push({
    kind: 'web-health',
    service: input.webService,
    probe: input.health.kind,
    path: input.health.path,
    port: input.health.port,
    timeoutMs: input.health.timeoutMs,
  });
  if (input.sockets?.relay) steps.push({ kind: 'relay', service: input.webService, dir: input.sockets.dir });
  if (input.sockets) steps.push({ kind: 'point-live', service: input.webService, dir: input.sockets.dir });
  if (input.front && input.upstream)
    steps.push({ kind: 'upstream', service: input.webService, mode: input.sockets ? 'socket' : 'reload' });
  if (input.edge) steps.push({ kind: 'edge-link', dir: input.edge.dir });
  if (input.frontServices.length > 0) {
    steps.push({ kind: 'up', services: [...input.frontServices] });
    steps.push({ kind: 'wait-healthy', services: [...input.frontServices], timeoutMs: input.waitTimeoutMs });
  }
  if (input.front) {
    steps.push({
      kind: 'verify-front',
      path: input.front.verifyPath,
      timeoutMs: input.front.verifyTimeoutMs,
      accept: input.health.kind === 'tcp' ? 'not-5xx' : '2xx',
    });
  }
  steps.push({ kind: 'write-state', path: input.stateFile });
  return steps;
}

export function describeDeployStep(step: DeployStep): string {
  switch (step.kind) {
    case 'publish':
      return `push ${step.image} to the registry and pin its digest`;
    case 'up':
      return `start ${step.services.join(', ')}`;
    case 'wait-healthy':
      return `wait until ${step.services.join(', ')} ${step.services.length > 1 ? 'are' : 'is'} healthy`;
    case 'hook':
      return `run the ${step.name} hook`;
    case 'migrate':
      return 'run the migrations in a one-off job of the new image';
    case 'replace-web':
      return `start or replace ${step.service} with the new image`;
    case 'web-health':
      return step.probe === 'tcp'
        ? `wait until ${step.service} accepts a TCP connection on port ${step.port} (its answers are not checked)`
        : `wait until ${step.service} answers ${step.path}`;
    case 'relay':
      return `start the relay from ${step.service}'s TCP port to its unix socket`;
    case 'point-live':
      return `point nginx's live.sock at ${step.service}`;
    case 'edge-link':
      return "the edge's live.sock link to blue.sock, unless there is one";
    case 'upstream':
      return step.mode === 'socket'
        ? "nginx's upstream: the live.sock link"
        : `nginx's upstream: ${step.service}'s container`;
    case 'verify-front':
      return `ask the platform through nginx (${step.path})`;
    case 'write-state':
      return 'record the deployment';
  }
}

/**
 * What a dry run prints, from the same steps the deploy would carry out: the engine says what it would
 * send for the steps it runs (compose argv, or the Swarm specs), the rest is the plan's own.
 */
export async function toPlannedSteps(
  steps: readonly DeployStep[],
  image: string,
  engine: Engine,
): Promise<PlannedStep[]> {
  const planned: PlannedStep[][] = [];
  for (const step of steps) {
    const description = describeDeployStep(step);
    if (step.kind === 'up') planned.push(await engine.planStart(step.services, image, description));
    else if (step.kind === 'replace-web') planned.push(await engine.planStart([step.service], image, description));
    else if (step.kind === 'migrate')
      planned.push(await engine.planJob(step.service, step.command, image, description));
    else if (step.kind === 'publish') planned.push(await engine.planPublish(step.image, description));
    else planned.push([plannedStep(step)]);
  }
  return planned.flat();
}

type OwnStep = Exclude<DeployStep, { kind: 'up' | 'replace-web' | 'migrate' | 'publish' }>;

/** Pure: one deploy step the engine does not carry, as the dry run shows it (tsc checks every kind). */
function plannedStep(step: OwnStep): PlannedStep {
  const description = describeDeployStep(step);
  switch (step.kind) {
    case 'wait-healthy':
      return {
        kind: 'wait',
        what: `the Docker health status of every instance of ${step.services.join(', ')}`,
        timeoutMs: step.timeoutMs,
        description,
      };
    case 'web-health':
      return step.probe === 'tcp'
        ? {
            kind: 'wait',
            what: `a TCP connect to <each ${step.service} instance's address>:${step.port}`,
            timeoutMs: step.timeoutMs,
            description,
          }
        : {
            kind: 'http',
            method: 'GET',
            url: `http://<each ${step.service} instance's address>:${step.port}${step.path}`,
            description: `${description}, up to ${Math.round(step.timeoutMs / 1000)}s`,
          };
    case 'relay':
      return {
        kind: 'docker',
        call: 'POST /containers/create',
        options: { name: `<${step.service} container>-relay`, socket: `${step.dir}/web-<id>.sock` },
        description: `${description} (nginx stream, on the project network)`,
      };
    case 'hook':
      return { kind: 'wait', what: `the ${step.name} hook`, timeoutMs: 0, description };
    case 'point-live':
      return {
        kind: 'write',
        path: `${step.dir}/live.sock`,
        bytes: 0,
        overwrite: true,
        description: `${description} (a link to its unix socket, renamed into place)`,
      };
    case 'edge-link':
      return {
        kind: 'write',
        path: `${step.dir}/live.sock`,
        bytes: 0,
        overwrite: false,
        description: `${description} (the directory made private first: the edge nginx mounts it)`,
      };
    case 'upstream':
      return {
        kind: 'write',
        path: '<nginx.upstreamFile>',
        bytes: 0,
        overwrite: true,
        description: `${description}, when it differs: checked with nginx -t, then nginx reloaded if it runs`,
      };
    case 'verify-front':
      return {
        kind: 'http',
        method: 'GET',
        url: `<nginx>${step.path}`,
        description: `${description}: ${step.accept === '2xx' ? 'a 2xx' : 'an answer that is not a 5xx'} within ${Math.round(step.timeoutMs / 1000)}s, else exit 1 with nginx's answer`,
      };
    case 'write-state':
      return { kind: 'write', path: step.path, bytes: 0, overwrite: true, description };
  }
}
