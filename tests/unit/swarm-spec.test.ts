import { describe, expect, it } from 'vitest';
import type { SwarmService, SwarmTask } from '../../src/adapters/swarm.js';
import { toNode, toService, toTask } from '../../src/adapters/swarm.js';
import { postgresInside, redisInside } from '../../src/health/inside.js';
import {
  type ComposeModel,
  migrationJobSpec,
  networkSpecs,
  serviceSpec,
} from '../../src/platform/engine/swarm-spec.js';
import {
  constraintHolds,
  convergence,
  describeTaskError,
  judgeNodes,
  judgeService,
  placementProblem,
  registryOf,
  serviceStatus,
} from '../../src/platform/engine/swarm-state.js';
import { Sensitive } from '../../src/sensitive.js';
import { swarmNode } from '../helpers/swarm.js';

/** What `docker compose config --format json` prints for the swarm example (abridged to what matters). */
const model: ComposeModel = {
  name: 'shop',
  networks: { default: { name: 'shop_default' } },
  volumes: { 'db-data': { name: 'shop_db-data' } },
  services: {
    db: {
      image: '10.231.0.1:5000/opskit-test/postgres:15',
      environment: { POSTGRES_PASSWORD: 's3cret', POSTGRES_USER: 'app' },
      healthcheck: {
        test: ['CMD-SHELL', 'pg_isready -U "$${POSTGRES_USER}"'],
        interval: '5s',
        timeout: '3s',
        retries: 10,
        start_period: '10s',
      },
      networks: { default: null },
      restart: 'unless-stopped',
      volumes: [{ type: 'volume', source: 'db-data', target: '/var/lib/postgresql/data', read_only: false }],
      deploy: { endpoint_mode: 'dnsrr', placement: { constraints: ['node.labels.opskit.data == true'] } },
    },
    web: {
      image: '10.231.0.1:5000/shop/web:1',
      command: null,
      entrypoint: null,
      environment: { DATABASE_URL: 'postgresql://app:s3cret@db:5432/app', APP_COLOR: 'blue', EMPTY: null },
      healthcheck: {
        test: ['CMD', 'python3', '-c', 'ok'],
        interval: '10s',
        timeout: '3s',
        retries: 3,
        start_period: '15s',
      },
      networks: { default: null },
      deploy: {
        replicas: 2,
        endpoint_mode: 'dnsrr',
        placement: { constraints: ['node.labels.opskit.data != true'], max_replicas_per_node: 1 },
      },
    },
    nginx: {
      image: '10.231.0.1:5000/opskit-test/nginx:1',
      ports: [{ mode: 'host', target: 80, published: '8080', protocol: 'tcp' }],
      volumes: [
        { type: 'bind', source: '/srv/shop/nginx/nginx.conf', target: '/etc/nginx/nginx.conf', read_only: true },
      ],
      stop_signal: 'SIGQUIT',
      deploy: { endpoint_mode: 'dnsrr', placement: { constraints: ['node.labels.opskit.edge == true'] } },
    },
  },
};
const labels = (service?: string) => ({
  'com.docker.stack.namespace': 'shop',
  'opskit.project': 'shop',
  ...(service ? { 'opskit.service': service } : {}),
});

describe('swarm specs from the compose model', () => {
  it('the web: replicas, dnsrr, placement, env sorted (unset ones dropped), healthcheck in nanoseconds, start-first', () => {
    expect(serviceSpec(model, 'shop', 'web', '10.231.0.1:5000/shop/web:1@sha256:ab')).toEqual({
      Name: 'shop_web',
      Labels: labels('web'),
      TaskTemplate: {
        ContainerSpec: {
          Image: '10.231.0.1:5000/shop/web:1@sha256:ab',
          Env: ['APP_COLOR=blue', 'DATABASE_URL=postgresql://app:s3cret@db:5432/app'],
          Labels: labels('web'),
          Healthcheck: {
            Test: ['CMD', 'python3', '-c', 'ok'],
            Interval: 10_000_000_000,
            Timeout: 3_000_000_000,
            Retries: 3,
            StartPeriod: 15_000_000_000,
          },
        },
        Placement: { Constraints: ['node.labels.opskit.data != true'], MaxReplicas: 1 },
        RestartPolicy: { Condition: 'any' },
        Networks: [{ Target: 'shop_default', Aliases: ['web'] }],
      },
      Mode: { Replicated: { Replicas: 2 } },
      UpdateConfig: { Parallelism: 1, Order: 'start-first', FailureAction: 'rollback' },
      EndpointSpec: { Mode: 'dnsrr' },
    });
  });
  it('a database with a named volume stops its old task first; `$$` reaches the Engine as `$`', () => {
    const db = serviceSpec(model, 'shop', 'db', 'pg@sha256:1');
    expect(db.UpdateConfig!.Order).toBe('stop-first');
    expect(db.TaskTemplate.ContainerSpec.Mounts).toEqual([
      { Type: 'volume', Source: 'shop_db-data', Target: '/var/lib/postgresql/data' },
    ]);
    expect(db.TaskTemplate.ContainerSpec.Healthcheck!.Test).toEqual(['CMD-SHELL', 'pg_isready -U "${POSTGRES_USER}"']);
    expect(db.TaskTemplate.Networks).toEqual([{ Target: 'shop_default', Aliases: ['db'] }]);
  });
  it('nginx: a host-mode port, a read-only bind mount, its stop signal, stop-first (one port per node)', () => {
    const nginx = serviceSpec(model, 'shop', 'nginx', 'ngx');
    expect(nginx.EndpointSpec).toEqual({
      Mode: 'dnsrr',
      Ports: [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'host' }],
    });
    expect(nginx.TaskTemplate.ContainerSpec).toMatchObject({
      StopSignal: 'SIGQUIT',
      Mounts: [{ Type: 'bind', Source: '/srv/shop/nginx/nginx.conf', Target: '/etc/nginx/nginx.conf', ReadOnly: true }],
    });
    expect(nginx.UpdateConfig!.Order).toBe('stop-first');
  });
  it('refuses what Swarm cannot do, naming the field: an ingress port with dnsrr, a port bound to one address', () => {
    const ingress: ComposeModel = {
      services: { nginx: { ...model.services.nginx!, ports: [{ mode: 'ingress', target: 80, published: 80 }] } },
    };
    expect(() => serviceSpec(ingress, 'shop', 'nginx', 'x')).toThrow(
      /services\.nginx\.ports\[0\]: .*endpoint_mode vip/,
    );
    const bound: ComposeModel = {
      services: { nginx: { ...model.services.nginx!, ports: [{ mode: 'host', target: 80, host_ip: '127.0.0.1' }] } },
    };
    expect(() => serviceSpec(bound, 'shop', 'nginx', 'x')).toThrow(/services\.nginx\.ports\[0\]\.host_ip/);
    expect(() => serviceSpec(model, 'shop', 'nope', 'x')).toThrow(/no service "nope"/);
  });
  it('the overlay networks, attachable, labelled for `docker stack`', () => {
    expect(networkSpecs(model, 'shop')).toEqual([
      { Name: 'shop_default', Driver: 'overlay', Attachable: true, Labels: labels() },
    ]);
  });
  it("the migrations: a one-off job of the web's spec, run once, never restarted, no healthcheck, no ports", () => {
    const web = serviceSpec(model, 'shop', 'web', 'reg/web:2@sha256:cd');
    expect(migrationJobSpec(web, 'shop_web-migrate', ['python3', 'migrate.py'])).toEqual({
      Name: 'shop_web-migrate',
      Labels: { ...labels('web'), 'opskit.job': 'migrate' },
      TaskTemplate: {
        ContainerSpec: {
          Image: 'reg/web:2@sha256:cd',
          Args: ['python3', 'migrate.py'],
          Env: ['APP_COLOR=blue', 'DATABASE_URL=postgresql://app:s3cret@db:5432/app'],
          Labels: { ...labels('web'), 'opskit.job': 'migrate' },
          Healthcheck: { Test: ['NONE'] },
        },
        Placement: { Constraints: ['node.labels.opskit.data != true'] },
        RestartPolicy: { Condition: 'none' },
        Networks: [{ Target: 'shop_default' }],
      },
      Mode: { ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 1 } },
    });
  });
});

const node = swarmNode;
const nodes = [
  node({}),
  node({ id: 'n2', hostname: 'okl2', role: 'worker', leader: false, labels: { 'opskit.data': 'true' } }),
  node({ id: 'n3', hostname: 'okl3', role: 'worker', leader: false, labels: {} }),
];
const task = (over: Partial<SwarmTask>): SwarmTask => ({
  id: 't',
  serviceId: 's',
  nodeId: 'n1',
  state: 'running',
  desiredState: 'running',
  message: 'started',
  image: 'web@sha256:2',
  addresses: ['10.232.1.5'],
  createdAt: '',
  updatedAt: '',
  ...over,
});
const service = (over: Partial<SwarmService> = {}): SwarmService => ({
  id: 's',
  version: 7,
  name: 'shop_web',
  spec: serviceSpec(model, 'shop', 'web', 'web@sha256:2'),
  createdAt: '',
  updatedAt: '',
  ...over,
});

describe('swarm state rules', () => {
  it('placement: labels, roles and hostnames, == and !=; a constraint no ready node meets is named with the nodes', () => {
    expect(constraintHolds('node.labels.opskit.data == true', nodes[1]!)).toBe(true);
    expect(constraintHolds('node.labels.opskit.data != true', nodes[1]!)).toBe(false);
    expect(constraintHolds('node.labels.opskit.data != true', nodes[2]!)).toBe(true);
    expect(constraintHolds('node.role==manager', nodes[0]!)).toBe(true);
    expect(constraintHolds('node.hostname == okl3', nodes[2]!)).toBe(true);
    const db = serviceSpec(model, 'shop', 'db', 'pg');
    expect(placementProblem(db, nodes)).toBeUndefined();
    expect(placementProblem(db, [nodes[0]!, { ...nodes[1]!, state: 'down' }])).toBe(
      'the placement constraints node.labels.opskit.data == true match no node that is ready and active; nodes: okl1 (manager, ready, active, opskit.edge=true); okl2 (worker, down, active, opskit.data=true)',
    );
  });
  it('convergence: as many tasks of the new image as desired, on nodes that are up, no update under way', () => {
    const two = [task({ id: 'a' }), task({ id: 'b', nodeId: 'n3' })];
    expect(convergence(service(), two, nodes)).toEqual({
      desired: 2,
      running: 2,
      ready: true,
      failed: false,
      summary: '2/2 running',
    });
    // A task on a node that is down counts for the Engine, not for opskit; an old image's task neither.
    const down = nodes.map((n) => (n.id === 'n3' ? { ...n, state: 'down' } : n));
    expect(convergence(service(), two, down)).toMatchObject({ running: 1, ready: false });
    expect(convergence(service(), [task({ image: 'web@sha256:1' })], nodes)).toMatchObject({ running: 0 });
    const pending = task({ id: 'c', state: 'pending', message: 'pending', error: 'no suitable node' });
    expect(convergence(service(), [two[0]!, pending], nodes).summary).toBe('1/2 running (pending: no suitable node)');
    expect(convergence(service({ updateStatus: { state: 'updating' } }), two, nodes)).toMatchObject({
      ready: false,
      summary: '2/2 running, updating',
    });
    expect(
      convergence(
        service({ updateStatus: { state: 'rollback_completed', message: 'rollback completed' } }),
        two,
        nodes,
      ),
    ).toMatchObject({ failed: true, summary: 'update rollback completed: rollback completed' });
  });
  it("a task's error names its node; the registry of an image reference", () => {
    expect(
      describeTaskError(task({ state: 'rejected', nodeId: 'n2', error: 'No such image: web:1', exitCode: 0 }), nodes),
    ).toBe('rejected on okl2: No such image: web:1');
    expect(describeTaskError(task({ state: 'failed', error: 'task: non-zero exit (3)', exitCode: 3 }), nodes)).toBe(
      'failed on okl1: task: non-zero exit (3) (exit 3)',
    );
    expect(registryOf('10.231.0.1:5000/shop/web:1')).toBe('10.231.0.1:5000');
    expect(registryOf('registry.example.com/shop/web')).toBe('registry.example.com');
    expect(registryOf('localhost/web')).toBe('localhost');
    expect(registryOf('shop/web:1')).toBeUndefined();
    expect(registryOf('web:1')).toBeUndefined();
  });
});

describe('health and status on Swarm', () => {
  const now = new Date('2026-12-03T12:00:00Z');
  const ten = 600_000;
  it('a service: all running passes (with its nodes); fewer warns; none fails; recent failures warn', () => {
    const two = [task({ id: 'a' }), task({ id: 'b', nodeId: 'n3' })];
    expect(judgeService(service(), two, nodes, now, ten)).toEqual({
      status: 'pass',
      observed: { desired: 2, running: 2, nodes: ['okl1', 'okl3'], failedRecently: 0 },
      detail: '2/2 running on okl1, okl3',
    });
    expect(judgeService(service(), [two[0]!], nodes, now, ten)).toMatchObject({
      status: 'warn',
      detail: '1/2 running on okl1',
    });
    expect(judgeService(service(), [], nodes, now, ten)).toMatchObject({
      status: 'fail',
      detail: '0/2 running: 0/2 running',
    });
    const crashed = task({
      id: 'c',
      state: 'failed',
      desiredState: 'shutdown',
      error: 'task: non-zero exit (1)',
      exitCode: 1,
      updatedAt: '2026-12-03T11:58:00Z',
    });
    const old = { ...crashed, id: 'd', updatedAt: '2026-12-03T10:00:00Z' };
    expect(judgeService(service(), [...two, crashed, old], nodes, now, ten)).toMatchObject({
      status: 'warn',
      observed: { failedRecently: 1 },
      detail:
        '2/2 running on okl1, okl3; 1 task failed recently (last: failed on okl1: task: non-zero exit (1) (exit 1))',
    });
    expect(judgeService(service(), [...two, old], nodes, now, ten).status).toBe('pass');
  });
  it('the nodes: all ready passes; drained warns; down fails, naming them', () => {
    expect(judgeNodes(nodes)).toMatchObject({ status: 'pass', detail: '3/3 ready (1 manager)' });
    expect(judgeNodes([nodes[0]!, { ...nodes[1]!, availability: 'drain' }])).toMatchObject({
      status: 'warn',
      detail: '2/2 ready (1 manager); not active: okl2 (drain)',
    });
    expect(judgeNodes([nodes[0]!, { ...nodes[2]!, state: 'down' }])).toMatchObject({
      status: 'fail',
      detail: '1/2 ready (1 manager); down: okl3 (down)',
    });
  });
  it("status: the image without its pin, each current task's node and address", () => {
    const s = service({ spec: serviceSpec(model, 'shop', 'web', 'reg/web:1@sha256:abc123') });
    const tasks = [
      task({ id: 'a', nodeId: 'n3', image: 'reg/web:1@sha256:abc123', addresses: ['10.232.1.9'] }),
      task({ id: 'b', image: 'reg/web:1@sha256:abc123' }),
      task({ id: 'old', state: 'shutdown', desiredState: 'shutdown' }),
    ];
    expect(serviceStatus(s, tasks, nodes)).toEqual({
      service: 'web',
      name: 'shop_web',
      image: 'reg/web:1',
      mode: 'replicated',
      desired: 2,
      running: 2,
      update: null,
      tasks: [
        { node: 'okl1', state: 'running', address: '10.232.1.5', error: null },
        { node: 'okl3', state: 'running', address: '10.232.1.9', error: null },
      ],
    });
  });
});

describe('the Engine API answers, read', () => {
  it('a node, a service, a task (addresses without their prefix length, a job iteration)', () => {
    expect(
      toNode({
        ID: 'n1',
        Spec: { Role: 'manager', Availability: 'active', Labels: { 'opskit.edge': 'true' } },
        Description: { Hostname: 'okl1', Engine: { EngineVersion: '26.1.5' } },
        Status: { State: 'ready', Addr: '10.231.0.11' },
        ManagerStatus: { Leader: true },
      }),
    ).toEqual(nodes[0]);
    expect(
      toService({
        ID: 's',
        Version: { Index: 12 },
        Spec: { Name: 'shop_web' },
        UpdateStatus: { State: 'completed', Message: 'update completed' },
      }),
    ).toMatchObject({
      id: 's',
      version: 12,
      name: 'shop_web',
      updateStatus: { state: 'completed' },
    });
    expect(
      toTask({
        ID: 't',
        ServiceID: 's',
        NodeID: 'n2',
        Status: {
          State: 'failed',
          Message: 'started',
          Err: 'task: non-zero exit (4)',
          ContainerStatus: { ExitCode: 4 },
        },
        DesiredState: 'shutdown',
        Spec: { ContainerSpec: { Image: 'web@sha256:2' } },
        NetworksAttachments: [{ Addresses: ['10.232.1.7/24'] }],
        JobIteration: { Index: 1 },
      }),
    ).toMatchObject({
      state: 'failed',
      error: 'task: non-zero exit (4)',
      exitCode: 4,
      addresses: ['10.232.1.7'],
      jobIteration: 1,
    });
  });
});

describe('datastore checks from inside the platform network', () => {
  it('psql and redis-cli with the connection in the env, the password never in the command line', () => {
    const pg = postgresInside(
      Sensitive.url('postgresql://app:s%40cret@db:5432/app'),
      'pg@sha256:1',
      'shop_default',
      5000,
    );
    expect(pg).toEqual({
      image: 'pg@sha256:1',
      network: 'shop_default',
      argv: ['psql', '-Atc', 'SHOW server_version'],
      env: {
        PGHOST: 'db',
        PGPORT: '5432',
        PGUSER: 'app',
        PGPASSWORD: 's@cret',
        PGDATABASE: 'app',
        PGCONNECT_TIMEOUT: '5',
      },
    });
    expect(redisInside(Sensitive.url('redis://:pw@redis:6380/0'), 'r', 'n')).toEqual({
      image: 'r',
      network: 'n',
      argv: ['redis-cli', '-h', 'redis', '-p', '6380', 'ping'],
      env: { REDISCLI_AUTH: 'pw' },
    });
    expect(redisInside(Sensitive.url('redis://redis:6379'), 'r', 'n').env).toEqual({});
  });
});
