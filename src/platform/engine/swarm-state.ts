import type { ServiceSpec, SwarmNode, SwarmService, SwarmTask } from '../../adapters/swarm.js';

/** Pure rules about a swarm's state: is a service converged, can it be placed, what went wrong with a task. */

/** Pure: the registry host an image reference names (`10.0.0.1:5000/app/web:1` → `10.0.0.1:5000`), if any. */
export function registryOf(image: string): string | undefined {
  const slash = image.indexOf('/');
  if (slash < 0) return undefined;
  const first = image.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first : undefined;
}

/** Pure: does one placement constraint (`node.labels.x == y`, `node.role != manager`, ...) hold on a node? */
export function constraintHolds(constraint: string, node: SwarmNode): boolean {
  const match = /^\s*([\w.-]+)\s*(==|!=)\s*(.*?)\s*$/.exec(constraint);
  if (!match) return true;
  const [, key, op, want] = match as unknown as [string, string, string, string];
  let have: string | undefined;
  if (key === 'node.role') have = node.role;
  else if (key === 'node.hostname') have = node.hostname;
  else if (key === 'node.id') have = node.id;
  else if (key.startsWith('node.labels.')) have = node.labels[key.slice('node.labels.'.length)];
  else return true; // engine labels, platform: the Engine decides; opskit does not guess
  const equal = have !== undefined && have.toLowerCase() === want.toLowerCase();
  return op === '==' ? equal : !equal;
}

/** Pure: the nodes a service can run on now (ready, active, every constraint holding). */
export function eligibleNodes(spec: ServiceSpec, nodes: readonly SwarmNode[]): SwarmNode[] {
  const constraints = spec.TaskTemplate.Placement?.Constraints ?? [];
  return nodes.filter(
    (n) => n.state === 'ready' && n.availability === 'active' && constraints.every((c) => constraintHolds(c, n)),
  );
}

/** Pure: why a service cannot be placed at all, or undefined when some node can take it. */
export function placementProblem(spec: ServiceSpec, nodes: readonly SwarmNode[]): string | undefined {
  if (eligibleNodes(spec, nodes).length > 0) return undefined;
  const constraints = spec.TaskTemplate.Placement?.Constraints ?? [];
  const described = nodes
    .map((n) => {
      const labels = Object.entries(n.labels).map(([k, v]) => `${k}=${v}`);
      return `${n.hostname} (${n.role}, ${n.state}, ${n.availability}${labels.length ? `, ${labels.join(' ')}` : ''})`;
    })
    .join('; ');
  return constraints.length
    ? `the placement constraints ${constraints.join(', ')} match no node that is ready and active; nodes: ${described}`
    : `no node is ready and active; nodes: ${described}`;
}

/** Pure: one task's failure as a line (its node, state, error and exit code). */
export function describeTaskError(task: SwarmTask, nodes: readonly SwarmNode[]): string {
  const node =
    nodes.find((n) => n.id === task.nodeId)?.hostname ?? (task.nodeId ? task.nodeId.slice(0, 12) : 'no node');
  const exit = task.exitCode !== undefined && task.exitCode !== 0 ? ` (exit ${task.exitCode})` : '';
  return `${task.state} on ${node}: ${task.error || task.message}${exit}`;
}

export interface Convergence {
  desired: number;
  running: number;
  ready: boolean;
  /** The update was rolled back or paused: the service will not reach the new spec by waiting. */
  failed: boolean;
  summary: string;
}

/**
 * Pure: how far a service is from its spec. Ready when as many tasks as desired run the spec's image on
 * nodes that are up (the Engine counts tasks on a node that is down as running; opskit does not), and no
 * update is under way. A task with a healthcheck is `running` only once it is healthy.
 */
export function convergence(
  service: SwarmService,
  tasks: readonly SwarmTask[],
  nodes: readonly SwarmNode[],
): Convergence {
  const mode = service.spec.Mode;
  const desired =
    'Replicated' in mode ? mode.Replicated.Replicas : 'Global' in mode ? eligibleNodes(service.spec, nodes).length : 1;
  const image = service.spec.TaskTemplate.ContainerSpec.Image;
  const up = new Set(nodes.filter((n) => n.state === 'ready').map((n) => n.id));
  const current = tasks.filter((t) => t.desiredState === 'running');
  const running = current.filter((t) => t.state === 'running' && up.has(t.nodeId) && t.image === image).length;
  const update = service.updateStatus?.state;
  const failed = update !== undefined && (update.startsWith('rollback') || update === 'paused');
  const updating = update === 'updating';
  const waiting = current.find((t) => t.state !== 'running' && (t.error || t.message));
  const ready = !failed && !updating && running >= desired;
  const summary = failed
    ? `update ${update?.replace('_', ' ')}: ${service.updateStatus?.message ?? ''}`.trim()
    : `${running}/${desired} running${updating ? ', updating' : ''}${!ready && waiting ? ` (${waiting.state}: ${waiting.error || waiting.message})` : ''}`;
  return { desired, running, ready, failed, summary };
}

export interface SwarmVerdict {
  status: 'pass' | 'warn' | 'fail';
  observed: Record<string, unknown>;
  detail: string;
}

/**
 * Pure: a service's health as a monitoring probe wants it. Nothing running (of a service that wants
 * tasks) fails; fewer than desired, an update rolled back, or tasks that failed within `recentMs`
 * (a crash loop Swarm keeps healing) warn.
 */
export function judgeService(
  service: SwarmService,
  tasks: readonly SwarmTask[],
  nodes: readonly SwarmNode[],
  now: Date,
  recentMs: number,
): SwarmVerdict {
  const state = convergence(service, tasks, nodes);
  const failedRecently = tasks.filter(
    (t) =>
      (t.state === 'failed' || t.state === 'rejected') &&
      now.getTime() - Date.parse(t.updatedAt || t.createdAt) <= recentMs,
  );
  const up = new Set(nodes.filter((n) => n.state === 'ready').map((n) => n.id));
  const where = [
    ...new Set(
      tasks
        .filter((t) => t.desiredState === 'running' && t.state === 'running' && up.has(t.nodeId))
        .map((t) => nodes.find((n) => n.id === t.nodeId)?.hostname ?? t.nodeId),
    ),
  ].sort();
  const observed = {
    desired: state.desired,
    running: state.running,
    nodes: where,
    failedRecently: failedRecently.length,
    ...(service.updateStatus ? { update: service.updateStatus.state } : {}),
  };
  const last = failedRecently.sort((a, b) => Date.parse(b.updatedAt) - Date.parse(a.updatedAt))[0];
  const failures = last
    ? `; ${failedRecently.length} task${failedRecently.length === 1 ? '' : 's'} failed recently (last: ${describeTaskError(last, nodes)})`
    : '';
  const on = where.length ? ` on ${where.join(', ')}` : '';
  if (state.desired > 0 && state.running === 0)
    return { status: 'fail', observed, detail: `0/${state.desired} running: ${state.summary}${failures}` };
  if (state.failed) return { status: 'warn', observed, detail: `${state.summary}${failures}` };
  if (state.running < state.desired)
    return { status: 'warn', observed, detail: `${state.running}/${state.desired} running${on}${failures}` };
  return {
    status: last ? 'warn' : 'pass',
    observed,
    detail: `${state.running}/${state.desired} running${on}${failures}`,
  };
}

/** Pure: the cluster's nodes. A node that is down fails (its tasks are gone); one drained or paused warns. */
export function judgeNodes(nodes: readonly SwarmNode[]): SwarmVerdict {
  const down = nodes.filter((n) => n.state !== 'ready');
  const parked = nodes.filter((n) => n.state === 'ready' && n.availability !== 'active');
  const observed = {
    nodes: nodes.length,
    ready: nodes.length - down.length,
    down: down.map((n) => n.hostname),
    notActive: parked.map((n) => `${n.hostname} (${n.availability})`),
  };
  const managers = nodes.filter((n) => n.role === 'manager').length;
  const summary = `${nodes.length - down.length}/${nodes.length} ready (${managers} manager${managers === 1 ? '' : 's'})`;
  if (down.length)
    return {
      status: 'fail',
      observed,
      detail: `${summary}; down: ${down.map((n) => `${n.hostname} (${n.state})`).join(', ')}`,
    };
  if (parked.length)
    return { status: 'warn', observed, detail: `${summary}; not active: ${observed.notActive.join(', ')}` };
  return { status: 'pass', observed, detail: summary };
}

export interface SwarmServiceStatus {
  service: string;
  name: string;
  image: string;
  mode: 'replicated' | 'global' | 'job';
  desired: number;
  running: number;
  update: string | null;
  tasks: Array<{ node: string; state: string; address: string | null; error: string | null }>;
}

/**
 * Pure: a project's services as `status` shows them: the image without its digest pin, desired and
 * running (on nodes that are up), and each current task with its node and overlay address.
 */
export function serviceStatus(
  service: SwarmService,
  tasks: readonly SwarmTask[],
  nodes: readonly SwarmNode[],
): SwarmServiceStatus {
  const state = convergence(service, tasks, nodes);
  const mode = service.spec.Mode;
  return {
    service: service.spec.Labels?.['opskit.service'] ?? service.name,
    name: service.name,
    image: service.spec.TaskTemplate.ContainerSpec.Image.replace(/@sha256:[0-9a-f]+$/, ''),
    mode: 'Replicated' in mode ? 'replicated' : 'Global' in mode ? 'global' : 'job',
    desired: state.desired,
    running: state.running,
    update: service.updateStatus?.state ?? null,
    tasks: tasks
      .filter((t) => t.desiredState === 'running')
      .map((t) => ({
        node: nodes.find((n) => n.id === t.nodeId)?.hostname ?? t.nodeId,
        state: t.state,
        address: t.addresses[0] ?? null,
        error: t.error ?? null,
      }))
      .sort((a, b) => a.node.localeCompare(b.node)),
  };
}
