import type { PlannedStep } from '../../output/plan.js';

/**
 * The seam between what a command decides and where the platform runs: Docker Compose on one host, or
 * Docker Swarm across several. A plan names services, images and commands; the engine turns them into
 * compose runs or Swarm services and jobs. Plans never ask which engine runs them.
 */
export type EngineKind = 'compose' | 'swarm';

/** One running instance of a service: a compose container, or a Swarm task. */
export interface Instance {
  service: string;
  id: string;
  name: string;
  /** The node it runs on (Swarm), or undefined on one host. */
  node?: string | undefined;
  /** running, exited, starting, failed, ... as the engine says it. */
  state: string;
  /** healthy, unhealthy, starting, none (no healthcheck). */
  health: string;
  image: string;
  /** Its address on the platform's network, when it has one. */
  address?: string | undefined;
  ready: boolean;
  /** Why it is not ready, or what went wrong (a task's error text). */
  detail?: string | undefined;
}

/** What a one-off job printed and how it ended. */
export interface JobResult {
  exitCode: number;
  timedOut: boolean;
  output: string[];
}

/** How the web service's new version proved it serves. */
export interface WebReady {
  /** A container or task name, and the address it answered on (or the tasks that are healthy). */
  name: string;
  address: string;
  /** The container's id on one host (its socket and relay are named after it). */
  id?: string | undefined;
}

export interface WebProbe {
  service: string;
  probe: 'http' | 'tcp';
  path: string;
  port: number;
  timeoutMs: number;
}

export type ColorName = 'blue' | 'green';

/**
 * Blue-green's colours: the web service's definition started again as a second, named instance beside the
 * live one. An engine without them (Swarm, until its colour services land) leaves `colors` unset.
 */
export interface ColorOps {
  /** Dry run: what starting `service`'s colour `color` as `name`, running `image`, would send. */
  plan(name: string, color: ColorName, service: string, image: string, description: string): PlannedStep[];
  /** Starts it (restartable, on the platform's network, APP_COLOR set); returns its id. */
  start(name: string, color: ColorName, service: string, image: string): Promise<string>;
}

export interface Engine {
  readonly kind: EngineKind;
  /** For messages and JSON: `docker compose 2.26.1 (v2)`, `Docker Swarm 26.1.5, 3 nodes (manager ...)`. */
  readonly description: string;
  /** Dry run: what starting (or updating) these services with `image` as the web's image would send. */
  planStart(services: readonly string[], image: string, description: string): Promise<PlannedStep[]>;
  /** Dry run: the one-off job of `service`'s definition running `command`. */
  planJob(service: string, command: readonly string[], image: string, description: string): Promise<PlannedStep[]>;
  /** Dry run: what publishing the image would do. */
  planPublish(image: string, description: string): Promise<PlannedStep[]>;
  /**
   * Makes `image` reachable where the services run, and returns the reference they run: the image itself
   * on one host; pushed to the registry and pinned to its digest on Swarm (every node pulls that).
   */
  publish(image: string, onProgress: (line: string) => void): Promise<string>;
  /** Starts the services, or updates them to their current definition (the web's image: `image`). */
  start(services: readonly string[], image: string): Promise<void>;
  /** Until every instance of each service is running and healthy; else a typed error with their logs. */
  waitReady(services: readonly string[], timeoutMs: number): Promise<void>;
  /** A one-off job from `service`'s definition with `image`, running `command`, its lines streamed. */
  runJob(
    service: string,
    command: readonly string[],
    image: string,
    options: { timeoutMs: number; onLine: (line: string) => void },
  ): Promise<JobResult>;
  /** The web service's new version (image id `imageId`), gated on its probe (HTTP or TCP, or its healthcheck). */
  webReady(step: WebProbe, imageId: string): Promise<WebReady>;
  /** Back to `image` after a failed start (compose); Swarm rolls back by itself. */
  restore(service: string, image: string): Promise<boolean>;
  /** The service's instances, running or not. */
  instances(service: string): Promise<Instance[]>;
  /** The service's last log lines. */
  logs(service: string, tail: number): Promise<string>;
  /** Blue-green colours, where the engine has them. */
  readonly colors?: ColorOps;
}
