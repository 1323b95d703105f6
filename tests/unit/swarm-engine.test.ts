import { describe, expect, it } from 'vitest';
import type { ServiceSpec, SwarmAdapter, SwarmService, SwarmTask } from '../../src/adapters/swarm.js';
import { swarmEngine } from '../../src/platform/engine/swarm.js';
import type { ComposeModel } from '../../src/platform/engine/swarm-spec.js';
import type { Context } from '../../src/runtime/context.js';
import { manualClock, strictFake } from '../helpers/fakes.js';
import { swarmNode } from '../helpers/swarm.js';

/** The swarm engine against a strict fake of the manager's API: every call it makes is stated here. */
const model: ComposeModel = {
  services: {
    web: {
      image: 'reg:5000/shop/web:1',
      environment: { APP_ENV: 'production' },
      deploy: { replicas: 1, endpoint_mode: 'dnsrr' },
    },
  },
};
const node = swarmNode({ labels: {} });
const jobTask = (state: string, over: Partial<SwarmTask> = {}): SwarmTask => ({
  id: 't1',
  serviceId: 'job1',
  nodeId: 'n1',
  state,
  desiredState: state === 'running' ? 'running' : 'shutdown',
  message: state,
  image: 'reg:5000/shop/web:2@sha256:b',
  addresses: [],
  createdAt: '',
  updatedAt: '',
  ...over,
});

function setup(overrides: Partial<SwarmAdapter>) {
  const calls: string[] = [];
  const clock = manualClock();
  const reporter = { info: () => {}, warn: (m: string) => calls.push(`warn ${m}`) };
  const ctx = { clock, reporter } as unknown as Context;
  const swarm = strictFake<SwarmAdapter>('swarm', {
    endpoint: 'unix:///run/opskit-lab/n1/docker.sock',
    network: async (name) => {
      calls.push(`network ${name}`);
      return { id: 'net', driver: 'overlay', attachable: true };
    },
    nodes: async () => [node],
    ...overrides,
  });
  const engine = swarmEngine({
    ctx,
    swarm,
    info: {
      localNodeState: 'active',
      controlAvailable: true,
      nodeId: 'n1',
      engineVersion: '26.1.5',
      nodes: 1,
      managers: 1,
    },
    project: 'shop',
    webService: 'web',
    model: async () => model,
  });
  return { engine, calls };
}

describe('the swarm engine', () => {
  it('a failing migration job: its log lines and the task error come back with its exit code, and the job is removed', async () => {
    let polls = 0;
    const { engine, calls } = setup({
      service: async (name) => {
        calls.push(`inspect ${name}`);
        return undefined;
      },
      createService: async (spec: ServiceSpec) => {
        calls.push(
          `create ${spec.Name} ${JSON.stringify(spec.Mode)} restart=${spec.TaskTemplate.RestartPolicy?.Condition}`,
        );
        return 'job1';
      },
      tasks: async ({ service }) => {
        calls.push(`tasks ${service}`);
        return ++polls < 3
          ? [jobTask('running')]
          : [jobTask('failed', { error: 'task: non-zero exit (3)', exitCode: 3 })];
      },
      serviceLogs: async (id) => {
        calls.push(`logs ${id}`);
        return 'migrate: applying 0003_broken\nERROR: relation "no_such_table" does not exist\n';
      },
      removeService: async (id) => {
        calls.push(`remove ${id}`);
      },
    });
    const lines: string[] = [];
    const result = await engine.runJob('web', ['python3', 'migrate.py'], 'reg:5000/shop/web:2@sha256:b', {
      timeoutMs: 60_000,
      onLine: (l) => lines.push(l),
    });
    expect(result).toEqual({
      exitCode: 3,
      timedOut: false,
      output: [
        'migrate: applying 0003_broken',
        'ERROR: relation "no_such_table" does not exist',
        '(task failed on okl1: task: non-zero exit (3) (exit 3))',
      ],
    });
    expect(lines).toEqual(result.output);
    expect(calls).toEqual([
      'network shop_default',
      'inspect shop_web-migrate',
      'create shop_web-migrate {"ReplicatedJob":{"MaxConcurrent":1,"TotalCompletions":1}} restart=none',
      'tasks job1',
      'tasks job1',
      'tasks job1',
      'logs job1',
      'remove job1',
    ]);
  });

  it('a job that never ends: timed out at its deadline, and removed all the same', async () => {
    const { engine, calls } = setup({
      service: async () => undefined,
      createService: async () => 'job1',
      tasks: async () => [jobTask('running')],
      serviceLogs: async () => 'still migrating\n',
      removeService: async (id) => {
        calls.push(`remove ${id}`);
      },
    });
    const result = await engine.runJob('web', ['sleep', 'forever'], 'img', { timeoutMs: 5_000, onLine: () => {} });
    expect(result).toMatchObject({ exitCode: 1, timedOut: true });
    expect(result.output.at(-1)).toMatch(/did not finish within 5.00s; last: running: running/);
    expect(calls.at(-1)).toBe('remove job1');
  });

  it('an update with a version read before another update: read again once and sent with the new version', async () => {
    const existing = (version: number): SwarmService => ({
      id: 'svc',
      version,
      name: 'shop_web',
      spec: {} as ServiceSpec,
      createdAt: '',
      updatedAt: '',
    });
    let reads = 0;
    const { engine, calls } = setup({
      service: async () => existing(++reads === 1 ? 10 : 11),
      updateService: async (id, version) => {
        calls.push(`update ${id} v${version}`);
        if (version === 10) throw new Error('(HTTP code 500) rpc error: code = Unknown desc = update out of sequence');
      },
    });
    await engine.start(['web'], 'reg:5000/shop/web:2@sha256:b');
    expect(calls.filter((c) => c.startsWith('update'))).toEqual(['update svc v10', 'update svc v11']);
  });
});
