import type { RegistryAuth, ServiceSpec, SwarmAdapter, SwarmInfo, SwarmNode, SwarmTask } from '../../adapters/swarm.js';
import { ConfigError, OperationError } from '../../errors.js';
import type { PlannedStep } from '../../output/plan.js';
import type { Context } from '../../runtime/context.js';
import { formatDuration } from '../../runtime/duration.js';
import { pollUntil } from '../../runtime/poll.js';
import type { Engine, Instance } from './engine.js';
import { colorAlias } from './swarm-colors.js';
import {
  type ComposeModel,
  migrationJobName,
  migrationJobSpec,
  networkSpecs,
  serviceSpec,
  swarmServiceName,
} from './swarm-spec.js';
import { convergence, describeTaskError, placementProblem, registryOf } from './swarm-state.js';

/**
 * The swarm engine: the platform as Docker Swarm services on a cluster, driven through a manager's Engine
 * API. Services are created or updated from the compose file (normalized by `compose config`), images are
 * pushed to a registry and pinned to their digest (the Engine does not pin them, and a node can only pull
 * what a registry holds), and one-off jobs are `replicated-job` services whose restart condition is none.
 */
export interface SwarmRuntime {
  ctx: Context;
  swarm: SwarmAdapter;
  info: SwarmInfo;
  project: string;
  /** The compose file as `compose config` normalizes it, with the web's image set to the release. */
  model: (image: string) => Promise<ComposeModel>;
  webService: string;
  auth?: RegistryAuth | undefined;
}

const TAIL = 30;

/** The manager check every Swarm command makes first: a worker (or a lone Engine) cannot run services. */
export function assertManager(info: SwarmInfo, endpoint: string): void {
  if (info.localNodeState !== 'active')
    throw new ConfigError(`the Docker Engine at ${endpoint} is not part of a swarm (state: ${info.localNodeState})`, {
      code: 'E_SWARM_INACTIVE',
      hint: 'point DOCKER_HOST (or docker.host) at a Swarm manager, or run `docker swarm init`; engine: compose runs on one host',
    });
  if (!info.controlAvailable)
    throw new ConfigError(`the Docker Engine at ${endpoint} is a Swarm worker, not a manager`, {
      code: 'E_SWARM_NOT_MANAGER',
      hint: 'point DOCKER_HOST (or docker.host) at a manager: `docker node ls` on a manager lists them',
    });
}

/** Pure: the engine as messages and JSON name it. */
export function describeSwarm(info: SwarmInfo, endpoint: string): string {
  return `Docker Swarm ${info.engineVersion}, ${info.nodes} nodes (manager ${endpoint})`;
}

export function swarmEngine(rt: SwarmRuntime): Engine {
  const { swarm, project, ctx } = rt;
  /** Images other than the web's, pinned once per run. */
  const pinned = new Map<string, string>();
  const pin = async (image: string): Promise<string> => {
    if (image.includes('@sha256:')) return image;
    const known = pinned.get(image);
    if (known) return known;
    try {
      const ref = `${image}@${await swarm.distributionDigest(image, rt.auth)}`;
      pinned.set(image, ref);
      return ref;
    } catch (error) {
      // Unpinned, every node resolves the tag itself; one that cannot pull it says so in its task's error.
      ctx.reporter.warn(`${image}: no digest from a registry (${(error as Error).message}); the nodes pull it by tag`);
      pinned.set(image, image);
      return image;
    }
  };
  const specs = async (services: readonly string[], image: string, pinImages: boolean) => {
    const model = await rt.model(image);
    return Promise.all(
      services.map(async (service) => {
        const own = model.services[service]?.image;
        const ref = service === rt.webService ? image : own && pinImages ? await pin(own) : (own ?? '');
        const spec = serviceSpec(model, project, service, ref);
        // The web is blue until a cutover: the edge's blue server reaches it by the colour's name.
        return service === rt.webService ? withAlias(spec, colorAlias(service, 'blue')) : spec;
      }),
    );
  };
  const ensureNetworks = async (model: ComposeModel) => {
    for (const spec of networkSpecs(model, project)) {
      const found = await swarm.network(spec.Name);
      if (!found) await swarm.createNetwork(spec);
      else if (found.driver !== 'overlay')
        throw new ConfigError(`network ${spec.Name} exists with driver ${found.driver}, not overlay`, {
          code: 'E_SWARM_NETWORK',
          hint: `remove it (docker network rm ${spec.Name}) or name another network in the compose file`,
        });
    }
  };
  const checkPlacement = (spec: ServiceSpec, nodes: readonly SwarmNode[]) => {
    const problem = placementProblem(spec, nodes);
    if (problem)
      throw new ConfigError(`${spec.Name}: ${problem}`, {
        code: 'E_SWARM_PLACEMENT',
        hint: 'label a node (docker node update --label-add KEY=VALUE NODE) or change deploy.placement in the compose file',
      });
  };
  /** What every start is waited on: the spec version written, per service. */
  const started = new Map<string, ServiceSpec>();

  const engine: Engine = {
    kind: 'swarm',
    description: describeSwarm(rt.info, swarm.endpoint),
    async planPublish(image, description) {
      return [
        {
          kind: 'docker',
          call: 'POST /images/{name}/push',
          options: { name: image, registry: registryOf(image) },
          description,
        },
        {
          kind: 'docker',
          call: 'GET /distribution/{name}/json',
          options: { name: image },
          description: 'the digest every node pulls (services run <image>@<digest>)',
        },
      ];
    },
    async publish(image, onProgress) {
      const registry = registryOf(image);
      if (!registry)
        throw new ConfigError(`image ${image} names no registry: the nodes of a swarm pull service images from one`, {
          code: 'E_NO_REGISTRY',
          hint: 'set registry.address in opskit.yaml (the image is then <registry>/<name>), or image.name to a registry path',
        });
      try {
        await swarm.pushImage(image, rt.auth, onProgress);
      } catch (error) {
        throw new OperationError(
          'E_PUSH_FAILED',
          `the registry ${registry} refused ${image}: ${(error as Error).message}`,
          {
            hint: `check that ${registry} answers, that the Engine trusts it (insecure-registries for plain HTTP), and the credentials (registry.username / OPSKIT_REGISTRY_PASSWORD)`,
          },
        );
      }
      const ref = `${image}@${await swarm.distributionDigest(image, rt.auth)}`;
      return ref;
    },
    async planStart(services, image, description) {
      const model = await rt.model(image);
      const steps: PlannedStep[] = [];
      for (const network of networkSpecs(model, project))
        if (!(await swarm.network(network.Name)))
          steps.push({
            kind: 'docker',
            call: 'POST /networks/create',
            options: network,
            description: 'the overlay network',
          });
      for (const spec of await specs(services, image, false)) {
        const existing = await swarm.service(spec.Name);
        steps.push({
          kind: 'docker',
          call: existing ? `POST /services/${existing.id}/update?version=${existing.version}` : 'POST /services/create',
          options: spec,
          description: `${description}: ${spec.Name}`,
        });
      }
      return steps;
    },
    async planJob(service, command, image, description) {
      const [web] = await specs([service], image, false);
      return [
        {
          kind: 'docker',
          call: 'POST /services/create',
          options: migrationJobSpec(web!, migrationJobName(project, service), command),
          description: `${description}; its task's exit code decides, then the job is removed`,
        },
      ];
    },
    async start(services, image) {
      const model = await rt.model(image);
      await ensureNetworks(model);
      const nodes = await swarm.nodes();
      for (const spec of await specs(services, image, true)) {
        checkPlacement(spec, nodes);
        const existing = await swarm.service(spec.Name);
        if (!existing) {
          await swarm.createService(spec, rt.auth);
        } else {
          // A version read before someone else's update is refused ("update out of sequence"): read again once.
          await swarm.updateService(existing.id, existing.version, spec, rt.auth).catch(async (error: Error) => {
            if (!/out of sequence/.test(error.message)) throw error;
            const again = await swarm.service(spec.Name);
            await swarm.updateService(again!.id, again!.version, spec, rt.auth);
          });
        }
        started.set(spec.Name, spec);
      }
    },
    async waitReady(services, timeoutMs) {
      const last = new Map<string, string>();
      const results = await Promise.all(
        services.map(async (service) => {
          const name = swarmServiceName(project, service);
          const poll = await pollUntil(ctx.clock, { timeoutMs, initialDelayMs: 250, maxDelayMs: 1000 }, async () => {
            const [found, tasks, nodes] = await Promise.all([
              swarm.service(name),
              swarm.tasks({ service: name }),
              swarm.nodes(),
            ]);
            if (!found) return { done: false, last: 'no such service' };
            const state = convergence(found, tasks, nodes);
            if (last.get(service) !== state.summary) {
              last.set(service, state.summary);
              ctx.reporter.info(`${service}: ${state.summary}`);
            }
            if (state.failed) return { done: true, value: state };
            return state.ready ? { done: true, value: state } : { done: false, last: state.summary };
          });
          return { service, name, poll };
        }),
      );
      const failed = results.filter((r) => !r.poll.ok || r.poll.value.failed);
      if (failed.length === 0) return;
      const details = await Promise.all(
        failed.map(async (f) => {
          const tasks = await swarm.tasks({ service: f.name }).catch(() => [] as SwarmTask[]);
          const nodes = await swarm.nodes().catch(() => [] as SwarmNode[]);
          const errors = tasks
            .filter((t) => t.error || t.state === 'rejected' || t.state === 'failed')
            .slice(0, 5)
            .map((t) => `  ${describeTaskError(t, nodes)}`);
          const found = await swarm.service(f.name).catch(() => undefined);
          const logs = found ? await swarm.serviceLogs(found.id, TAIL).catch(() => '') : '';
          return [
            `--- ${f.service} (${f.name}): ${f.poll.ok ? f.poll.value.summary : f.poll.last} ---`,
            ...(errors.length ? ['tasks:', ...errors] : []),
            ...(logs.trim() ? [`last ${TAIL} log lines:`, logs.trimEnd()] : []),
          ].join('\n');
        }),
      );
      throw new OperationError(
        'E_SERVICE_UNHEALTHY',
        `${failed.map((f) => f.service).join(', ')} did not become healthy within ${formatDuration(timeoutMs)}\n${details.join('\n')}`,
        {
          hint: 'see the task errors and logs above; raise deploy.waitTimeout (--wait-timeout) if it is only slow',
          details: { services: failed.map((f) => f.service) },
        },
      );
    },
    async runJob(service, command, image, { timeoutMs, onLine }) {
      const model = await rt.model(image);
      await ensureNetworks(model);
      const [web] = await specs([service], image, true);
      const name = migrationJobName(project, service);
      const stale = await swarm.service(name);
      if (stale) await swarm.removeService(stale.id);
      const spec = migrationJobSpec(web!, name, command);
      checkPlacement(spec, await swarm.nodes());
      const id = await swarm.createService(spec, rt.auth);
      try {
        const poll = await pollUntil(ctx.clock, { timeoutMs, initialDelayMs: 250, maxDelayMs: 1000 }, async () => {
          const tasks = await swarm.tasks({ service: id });
          const done = tasks.find((t) => ['complete', 'failed', 'rejected', 'orphaned'].includes(t.state));
          if (done) return { done: true, value: done };
          const current = tasks[0];
          return { done: false, last: current ? `${current.state}: ${current.message}` : 'no task yet' };
        });
        const logs = await swarm.serviceLogs(id, 500).catch(() => '');
        const output = logs.split('\n').filter((l) => l.trim() !== '');
        for (const line of output) onLine(line);
        if (!poll.ok) {
          const line = `(the job did not finish within ${formatDuration(timeoutMs)}; last: ${poll.last})`;
          onLine(line);
          return { exitCode: 1, timedOut: true, output: [...output, line] };
        }
        const task = poll.value;
        if (task.state === 'complete') return { exitCode: 0, timedOut: false, output };
        const nodes = await swarm.nodes().catch(() => [] as SwarmNode[]);
        const line = `(task ${describeTaskError(task, nodes)})`;
        onLine(line);
        return { exitCode: task.exitCode || 1, timedOut: false, output: [...output, line] };
      } finally {
        await swarm.removeService(id).catch(() => {});
      }
    },
    async webReady(step) {
      await engine.waitReady([step.service], step.timeoutMs);
      const ready = (await engine.instances(step.service)).filter((i) => i.ready);
      return {
        name: `${swarmServiceName(project, step.service)} (${ready.length} task${ready.length === 1 ? '' : 's'})`,
        address: ready.map((i) => `${i.address}:${step.port}`).join(' '),
      };
    },
    async restore(service) {
      // A failed update rolls back by itself (update_config.failure_action: rollback); this covers the rest.
      const found = await swarm.service(swarmServiceName(project, service));
      if (!found?.updateStatus || found.updateStatus.state.startsWith('rollback')) return false;
      await swarm.rollbackService(found.id, found.version);
      return true;
    },
    async instances(service) {
      const name = swarmServiceName(project, service);
      const [tasks, nodes] = await Promise.all([
        swarm.tasks({ service: name, desiredState: 'running' }),
        swarm.nodes(),
      ]);
      return tasks.map((t) => toInstance(service, t, nodes));
    },
    async logs(service, tail) {
      const found = await swarm.service(swarmServiceName(project, service));
      return found ? swarm.serviceLogs(found.id, tail) : '';
    },
  };
  return engine;
}

/** Pure: the spec with one more alias on each of its networks. */
export function withAlias(spec: ServiceSpec, alias: string): ServiceSpec {
  const networks = spec.TaskTemplate.Networks;
  if (!networks) return spec;
  return {
    ...spec,
    TaskTemplate: {
      ...spec.TaskTemplate,
      Networks: networks.map((n) => ({ ...n, Aliases: [...new Set([...(n.Aliases ?? []), alias])] })),
    },
  };
}

/** Pure: a Swarm task as an engine instance (its node by hostname; running on a node that is down is not ready). */
export function toInstance(service: string, task: SwarmTask, nodes: readonly SwarmNode[]): Instance {
  const node = nodes.find((n) => n.id === task.nodeId);
  const nodeUp = node?.state === 'ready';
  const ready = task.state === 'running' && nodeUp;
  return {
    service,
    id: task.id,
    name: `${service}.${task.slot ?? task.nodeId.slice(0, 12)}`,
    node: node?.hostname ?? task.nodeId,
    state: task.state,
    // A task with a healthcheck turns running only once healthy: running is the Engine's healthy.
    health: task.state === 'running' ? 'healthy' : task.state === 'starting' ? 'starting' : 'none',
    image: task.image,
    address: task.addresses[0],
    ready,
    ...(ready
      ? {}
      : { detail: !nodeUp && node ? `node ${node.hostname} is ${node.state}` : task.error || task.message }),
  };
}
