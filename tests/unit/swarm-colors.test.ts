import { describe, expect, it } from 'vitest';
import type { ServiceSpec } from '../../src/adapters/swarm.js';
import { taskProbeArgv } from '../../src/cutover/swarm-run.js';
import { withAlias } from '../../src/platform/engine/swarm.js';
import {
  colorAlias,
  colorServiceName,
  colorSocket,
  colorSpec,
  lastKnownConfig,
  lastKnownSocket,
  lastKnownTasks,
  parseCurlInclude,
  warmth,
} from '../../src/platform/engine/swarm-colors.js';

/** The web's spec as serviceSpec makes it from the swarm example (abridged). */
const web: ServiceSpec = {
  Name: 'shop_web',
  Labels: { 'opskit.project': 'shop', 'opskit.service': 'web' },
  TaskTemplate: {
    ContainerSpec: {
      Image: 'reg:5000/shop/web:1@sha256:aa',
      Env: ['APP_COLOR=blue', 'DATABASE_URL=postgresql://app:s3cret@db:5432/app'],
      Labels: { 'opskit.project': 'shop', 'opskit.service': 'web' },
    },
    Placement: { Constraints: ['node.labels.opskit.data != true'], MaxReplicas: 1 },
    Networks: [{ Target: 'shop_default', Aliases: ['web'] }],
  },
  Mode: { Replicated: { Replicas: 2 } },
  UpdateConfig: { Parallelism: 1, Order: 'start-first', FailureAction: 'rollback' },
  EndpointSpec: { Mode: 'dnsrr' },
};

describe('blue-green on Swarm: the colours as services', () => {
  it('names: blue is the web service itself, green a second one; each answers by its colour alias; each has its edge socket', () => {
    expect(colorServiceName('shop', 'web', 'blue')).toBe('shop_web');
    expect(colorServiceName('shop', 'web', 'green')).toBe('shop_web_green');
    expect(colorAlias('web', 'green')).toBe('web-green');
    expect(colorSocket('blue')).toBe('blue.sock');
  });

  it("green: the web's definition with its own name, APP_COLOR, only its colour's alias, every task replaced at once", () => {
    const green = colorSpec(web, { project: 'shop', webService: 'web', color: 'green' });
    expect(green.Name).toBe('shop_web_green');
    expect(green.TaskTemplate.ContainerSpec.Env).toEqual([
      'APP_COLOR=green',
      'DATABASE_URL=postgresql://app:s3cret@db:5432/app',
    ]);
    // Not `web`: other services keep reaching the web service by its own name.
    expect(green.TaskTemplate.Networks).toEqual([{ Target: 'shop_default', Aliases: ['web-green'] }]);
    expect(green.Labels).toMatchObject({ 'opskit.service': 'web_green', 'opskit.color': 'green' });
    expect(green.UpdateConfig).toEqual({ Parallelism: 0, Order: 'stop-first', FailureAction: 'pause' });
    expect(green.Mode).toEqual({ Replicated: { Replicas: 2 } });
    expect(green.TaskTemplate.Placement).toEqual(web.TaskTemplate.Placement);
    expect(green.EndpointSpec).toEqual({ Mode: 'dnsrr' });
    // Parked: the same spec with no task.
    expect(colorSpec(web, { project: 'shop', webService: 'web', color: 'green', replicas: 0 }).Mode).toEqual({
      Replicated: { Replicas: 0 },
    });
  });

  it('blue keeps the web service, its name and its alias, and adds web-blue (also on every deploy)', () => {
    const blue = colorSpec(web, { project: 'shop', webService: 'web', color: 'blue' });
    expect(blue.Name).toBe('shop_web');
    expect(blue.TaskTemplate.Networks).toEqual([{ Target: 'shop_default', Aliases: ['web', 'web-blue'] }]);
    expect(blue.Labels).toMatchObject({ 'opskit.service': 'web', 'opskit.color': 'blue' });
    expect(withAlias(web, 'web-blue').TaskTemplate.Networks).toEqual([
      { Target: 'shop_default', Aliases: ['web', 'web-blue'] },
    ]);
    expect(withAlias(withAlias(web, 'web-blue'), 'web-blue').TaskTemplate.Networks![0]!.Aliases).toEqual([
      'web',
      'web-blue',
    ]);
  });

  it('warm: the service asks for tasks, runs the recorded image, and every task it asks for runs on a node that is up', () => {
    const ref = 'reg:5000/shop/web:1@sha256:aa';
    const service = { spec: web };
    const task = (over: Partial<{ state: string; desiredState: string; image: string; nodeId: string }> = {}) => ({
      state: 'running',
      desiredState: 'running',
      image: ref,
      nodeId: 'n1',
      ...over,
    });
    const up = new Set(['n1', 'n3']);
    expect(warmth(service, [task(), task({ nodeId: 'n3' })], up, ref)).toEqual({
      warm: true,
      why: '2/2 tasks running',
    });
    expect(warmth(service, [task(), task({ nodeId: 'n2' })], up, ref)).toEqual({
      warm: false,
      why: '1/2 tasks running',
    });
    expect(warmth(service, [task(), task({ state: 'starting' })], up, ref).warm).toBe(false);
    expect(warmth(service, [task(), task()], up, 'reg:5000/shop/web:2@sha256:bb').why).toMatch(/^it runs /);
    expect(warmth({ spec: { ...web, Mode: { Replicated: { Replicas: 0 } } } }, [], up, ref).why).toBe(
      'it was stopped (0 replicas)',
    );
    expect(warmth(undefined, [], up, ref)).toEqual({ warm: false, why: 'its service is gone' });
  });

  it("the gate asks each task from inside the edge: curl's argv (no shell), its -i answer read", () => {
    expect(taskProbeArgv('10.0.1.7', 8000, '/health')).toEqual([
      'curl',
      '-sS',
      '-i',
      '--max-time',
      '2',
      'http://10.0.1.7:8000/health',
    ]);
    const r = parseCurlInclude(
      'HTTP/1.1 200 OK\r\nServer: gunicorn\r\nX-App-Color: green\r\nContent-Type: application/json\r\n\r\n{"color":"green"}',
    );
    expect(r).toEqual({
      status: 200,
      headers: { server: 'gunicorn', 'x-app-color': 'green', 'content-type': 'application/json' },
      body: '{"color":"green"}',
    });
    expect(parseCurlInclude('curl: (7) Failed to connect to 10.0.1.7 port 8000').status).toBe(0);
  });
  it("the edge's last-known fallback: one upstream and socket per colour with tasks, each address once", () => {
    const text = lastKnownConfig({
      dir: '/run/opskit',
      port: 8000,
      tasks: { blue: ['10.0.1.7', '10.0.1.5', '10.0.1.7'], green: [] },
      written: '2026-12-03T00:00:00.000Z',
    });
    expect(text).toContain(
      'upstream last_known_blue {\n    server 10.0.1.5:8000 max_fails=0;\n    server 10.0.1.7:8000',
    );
    expect(text.match(/server 10\.0\.1\.7:8000/g)).toHaveLength(1);
    expect(text).toContain(`listen unix:/run/opskit/${lastKnownSocket('blue')};`);
    // A colour with no known task has no server: its fallback answers 502 as the edge would without one.
    expect(text).not.toContain('last_known_green');
    expect(text).not.toContain(lastKnownSocket('green'));
    // Its own pid file: a reload of this nginx never signals the edge's own.
    expect(text).toContain('pid /tmp/opskit-last-known.pid;');
    expect(text.split('{').length).toBe(text.split('}').length);
    // Read back: what a rollback compares with the colour's tasks before it rewrites the file.
    expect(lastKnownTasks(text)).toEqual({ blue: ['10.0.1.5', '10.0.1.7'], green: [] });
    expect(lastKnownTasks(undefined)).toEqual({ blue: [], green: [] });
  });
});
