import { describe, expect, it } from 'vitest';
import type { ComposeTarget } from '../../src/adapters/compose.js';
import { pickServiceContainer } from '../../src/adapters/compose.js';
import type { ContainerInfo } from '../../src/adapters/docker.js';
import { planDeploy, toPlannedSteps } from '../../src/deploy/plan.js';
import { composeEngine, serviceReadiness } from '../../src/platform/engine/compose.js';
import type { Engine } from '../../src/platform/engine/engine.js';
import { parseMigrateSummary, resolveImageRef } from '../../src/platform/release.js';
import { emptyState, recordDeploy } from '../../src/platform/state.js';
import { pollUntil } from '../../src/runtime/poll.js';
import { manualClock } from '../helpers/fakes.js';

const v1: ComposeTarget = {
  cli: { flavor: 'v1', version: '1.29.2', file: 'docker-compose', prefix: [] },
  project: 'shop',
  composeFile: '/srv/shop/compose/docker-compose.prod.yml',
};
const v2: ComposeTarget = { ...v1, cli: { flavor: 'v2', version: '2.29.1', file: 'docker', prefix: ['compose'] } };
const base = {
  image: 'shop:abc1234',
  webService: 'web',
  dependencies: ['db', 'redis'],
  frontServices: ['nginx'],
  migrate: { command: ['python3', 'migrate.py'], timeoutMs: 600_000 },
  health: { kind: 'http' as const, path: '/health', port: 8000, timeoutMs: 60_000 },
  waitTimeoutMs: 120_000,
  stateFile: '/srv/shop/.opskit/state.json',
  beforeMigrate: [],
  sockets: { dir: '/srv/shop/run', relay: false } as { dir: string; relay: boolean } | null,
  front: { verifyPath: '/health', verifyTimeoutMs: 15_000 },
  upstream: true,
  publish: false,
};
/** The compose engine as a dry run uses it: only its pure argv builders run. */
const engineOf = (target: ComposeTarget): Engine =>
  composeEngine({ ctx: {} as never, docker: {} as never, target, env: {} }, { withDependencies: ['db', 'redis'] });
const f = ['-p', 'shop', '-f', '/srv/shop/compose/docker-compose.prod.yml'];

describe('planDeploy', () => {
  it('migrates with the new image before the web service is started, in this exact order', () => {
    expect(planDeploy(base)).toEqual([
      { kind: 'up', services: ['db', 'redis'] },
      { kind: 'wait-healthy', services: ['db', 'redis'], timeoutMs: 120_000 },
      { kind: 'migrate', service: 'web', command: ['python3', 'migrate.py'], timeoutMs: 600_000 },
      { kind: 'replace-web', service: 'web' },
      { kind: 'web-health', service: 'web', probe: 'http', path: '/health', port: 8000, timeoutMs: 60_000 },
      { kind: 'point-live', service: 'web', dir: '/srv/shop/run' },
      { kind: 'upstream', service: 'web', mode: 'socket' },
      { kind: 'up', services: ['nginx'] },
      { kind: 'wait-healthy', services: ['nginx'], timeoutMs: 120_000 },
      { kind: 'verify-front', path: '/health', timeoutMs: 15_000, accept: '2xx' },
      { kind: 'write-state', path: '/srv/shop/.opskit/state.json' },
    ]);
  });
  it('the compose engine says the exact argv of each engine step, v1 and v2; the dependencies start with theirs', async () => {
    const planned = await toPlannedSteps(planDeploy(base), 'shop:abc1234', engineOf(v1));
    expect(planned.filter((p) => p.kind === 'exec').map((p) => (p as { argv: string[] }).argv)).toEqual([
      ['docker-compose', ...f, 'up', '-d', 'db', 'redis'],
      ['docker-compose', ...f, 'run', '--rm', '--no-deps', '-T', 'web', 'python3', 'migrate.py'],
      ['docker-compose', ...f, 'up', '-d', '--no-deps', 'web'],
      ['docker-compose', ...f, 'up', '-d', '--no-deps', 'nginx'],
    ]);
    const v2planned = await toPlannedSteps(planDeploy(base), 'shop:abc1234', engineOf(v2));
    expect(v2planned[0]).toEqual({
      kind: 'exec',
      argv: ['docker', 'compose', ...f, 'up', '-d', 'db', 'redis'],
      description: 'start db, redis (WEB_IMAGE=shop:abc1234)',
    });
  });
  it("the compose engine's colours: compose run -d of the web's definition, named, labelled, APP_COLOR set", () => {
    expect(engineOf(v2).colors!.plan('shop_web_green_k1', 'green', 'web', 'shop:2', 'start green')).toEqual([
      {
        kind: 'exec',
        argv: [
          'docker',
          'compose',
          ...f,
          'run',
          '-d',
          '--no-deps',
          '--name',
          'shop_web_green_k1',
          '-e',
          'APP_COLOR=green',
          '-l',
          'org.opskit.color=green',
          '-l',
          'org.opskit.role=web',
          'web',
        ],
        description: 'start green with shop:2 (WEB_IMAGE)',
      },
    ]);
  });
  it('on an engine that publishes (Swarm): the push comes first, and no upstream file is rendered', () => {
    const steps = planDeploy({ ...base, sockets: null, upstream: false, publish: true });
    expect(steps[0]).toEqual({ kind: 'publish', image: 'shop:abc1234' });
    expect(steps.map((s) => s.kind)).not.toContain('upstream');
    expect(steps.map((s) => s.kind)).toContain('verify-front');
  });
  it('speaks compose v2 too, skips migrations on request, and runs hooks before migrating', () => {
    const steps = planDeploy({ ...base, migrate: null, beforeMigrate: ['backup'], sockets: null });
    expect(steps[0]).toEqual({ kind: 'up', services: ['db', 'redis'] });
    expect(steps.map((s) => s.kind)).toEqual([
      'up',
      'wait-healthy',
      'hook',
      'replace-web',
      'web-health',
      'upstream',
      'up',
      'wait-healthy',
      'verify-front',
      'write-state',
    ]);
    expect(steps.find((s) => s.kind === 'upstream')).toEqual({ kind: 'upstream', service: 'web', mode: 'reload' });
  });
  it('relay mode opens the relay before the link is pointed; a TCP-only check accepts any answer but a 5xx through nginx', async () => {
    const steps = planDeploy({
      ...base,
      sockets: { dir: '/srv/shop/run', relay: true },
      health: { ...base.health, kind: 'tcp' },
    });
    expect(steps.map((s) => s.kind)).toEqual([
      'up',
      'wait-healthy',
      'migrate',
      'replace-web',
      'web-health',
      'relay',
      'point-live',
      'upstream',
      'up',
      'wait-healthy',
      'verify-front',
      'write-state',
    ]);
    expect(steps.find((s) => s.kind === 'web-health')).toMatchObject({ probe: 'tcp' });
    expect(steps.find((s) => s.kind === 'upstream')).toEqual({ kind: 'upstream', service: 'web', mode: 'socket' });
    expect(steps.find((s) => s.kind === 'verify-front')).toMatchObject({ accept: 'not-5xx' });
    const planned = await toPlannedSteps(steps, 'shop:abc1234', engineOf(v2));
    expect(planned[4]).toMatchObject({ kind: 'wait', what: "a TCP connect to <each web instance's address>:8000" });
    expect(planned[5]).toMatchObject({ kind: 'docker', call: 'POST /containers/create' });
    expect(planned[10]).toMatchObject({
      kind: 'http',
      description: expect.stringContaining('an answer that is not a 5xx'),
    });
  });
  it('without nginx in the platform: no upstream, no check through it', () => {
    expect(planDeploy({ ...base, front: null, frontServices: [] }).map((s) => s.kind)).toEqual([
      'up',
      'wait-healthy',
      'migrate',
      'replace-web',
      'web-health',
      'point-live',
      'write-state',
    ]);
  });
  it("turns into the dry run's steps", async () => {
    const planned = await toPlannedSteps(planDeploy(base), 'shop:abc1234', engineOf(v1));
    expect(planned[2]).toEqual({
      kind: 'exec',
      argv: ['docker-compose', ...f, 'run', '--rm', '--no-deps', '-T', 'web', 'python3', 'migrate.py'],
      description: 'run the migrations in a one-off job of the new image (WEB_IMAGE=shop:abc1234)',
    });
    expect(planned.map((p) => p.kind)).toEqual([
      'exec',
      'wait',
      'exec',
      'exec',
      'http',
      'write',
      'write',
      'exec',
      'wait',
      'http',
      'write',
    ]);
  });
});

const container = (over: Partial<ContainerInfo>): ContainerInfo => ({
  id: 'c1',
  name: 'shop_db_1',
  image: 'x',
  imageId: 'sha256:1',
  labels: {},
  state: 'running',
  running: true,
  exitCode: 0,
  restartCount: 0,
  health: 'healthy',
  healthLog: [],
  addresses: {},
  startedAt: '',
  mounts: [],
  ...over,
});

describe('deploy decisions', () => {
  it('judges readiness by Docker health, else by running', () => {
    expect(serviceReadiness(undefined)).toEqual({ ready: false, describe: 'no container yet' });
    expect(serviceReadiness(container({ health: 'starting' }))).toEqual({ ready: false, describe: 'starting' });
    expect(serviceReadiness(container({ health: 'none' })).ready).toBe(true);
    expect(
      serviceReadiness(container({ running: false, state: 'exited', exitCode: 1, restartCount: 2 })).describe,
    ).toBe('exited (exit code 1, 2 restarts)');
  });
  it('ignores one-off containers and prefers the running one', () => {
    const oneOff = container({ id: 'run', labels: { 'com.docker.compose.oneoff': 'True' } });
    const stopped = container({ id: 'old', running: false });
    const live = container({ id: 'live' });
    expect(pickServiceContainer([oneOff, stopped, live])!.id).toBe('live');
    expect(pickServiceContainer([oneOff])).toBeUndefined();
  });
  it('resolves the image reference', () => {
    expect(resolveImageRef('shop', {})).toBe('shop:latest');
    expect(resolveImageRef('shop', { tag: 'abc' })).toBe('shop:abc');
    expect(resolveImageRef('shop', { image: 'reg/shop:1' })).toBe('reg/shop:1');
    expect(() => resolveImageRef('shop', { image: 'a', tag: 'b' })).toThrow(/--image and --tag/);
  });
  it('reads the migrate summary line', () => {
    expect(
      parseMigrateSummary('migrate: applying 0001_x\n{"ok": true, "applied": ["0001"], "alreadyApplied": []}\n'),
    ).toEqual({ applied: ['0001'] });
    expect(parseMigrateSummary('no json')).toBeUndefined();
  });
  it('records deploys with the previous one kept', () => {
    const r1 = { image: 'shop:1', imageId: 'sha256:1', deployedAt: 't1', migrationsApplied: ['0001'], durationMs: 1 };
    const r2 = { ...r1, image: 'shop:2', imageId: 'sha256:2', deployedAt: 't2' };
    const s = recordDeploy(recordDeploy(emptyState(), r1), r2);
    expect(s.deploy!.current.image).toBe('shop:2');
    expect(s.deploy!.previous!.image).toBe('shop:1');
    expect(s.deploy!.history.map((h) => h.image)).toEqual(['shop:2', 'shop:1']);
    expect(recordDeploy(s, { ...r2, deployedAt: 't3' }).deploy!.previous!.image).toBe('shop:1');
  });
});

describe('pollUntil', () => {
  it('backs off up to a cap and never sleeps past the deadline', async () => {
    const clock = manualClock();
    const result = await pollUntil(
      clock,
      { timeoutMs: 5000, initialDelayMs: 250, maxDelayMs: 2000, factor: 2 },
      async () => ({ done: false, last: 'starting' }),
    );
    expect(result).toMatchObject({ ok: false, last: 'starting' });
    expect(clock.slept).toEqual([250, 500, 1000, 2000, 1250]);
  });
  it('returns as soon as the probe is done', async () => {
    const clock = manualClock();
    let n = 0;
    const result = await pollUntil(clock, { timeoutMs: 5000 }, async () =>
      ++n === 3 ? { done: true, value: 'up' } : { done: false, last: 'no' },
    );
    expect(result).toMatchObject({ ok: true, value: 'up', attempts: 3 });
  });
});
