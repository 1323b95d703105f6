import path from 'node:path';
import { pickServiceContainer, serviceLabels } from '../adapters/compose.js';
import type { ContainerInfo, DockerAdapter } from '../adapters/docker.js';
import { createSwarmAdapter, type SwarmAdapter } from '../adapters/swarm.js';
import { judgeNodes, judgeService } from '../platform/engine/swarm-state.js';
import type { Context } from '../runtime/context.js';
import { projectPath } from '../runtime/context.js';
import { parseDuration } from '../runtime/duration.js';
import { isSensitive } from '../sensitive.js';
import { evaluateContainer, evaluateDisk, evaluateHttp, evaluateResources, type Verdict } from './evaluate.js';
import { postgresInside, redisInside, runInside } from './inside.js';
import type { CheckSpec, Inside } from './spec.js';

export interface ProbeOutcome extends Verdict {
  latencyMs: number | null;
}

export interface ProbeContext {
  ctx: Context;
  /** One engine connection for the whole run, made on first use. */
  docker(): Promise<DockerAdapter>;
  /** engine: swarm: the manager's Swarm API, made on first use. */
  swarm?: () => Promise<SwarmAdapter>;
}

/** A Swarm connection for a probe run: the manager DOCKER_HOST (or docker.host) names. */
export function swarmOf(ctx: Context): () => Promise<SwarmAdapter> {
  let swarm: Promise<SwarmAdapter> | undefined;
  return () => (swarm ??= createSwarmAdapter(ctx.loaded!.config.docker.host ?? ctx.loaded!.env.DOCKER_HOST));
}

const elapsed = (t0: number) => Math.round(performance.now() - t0);

async function findContainer(
  pc: ProbeContext,
  spec: Extract<CheckSpec, { kind: 'container' }>,
): Promise<ContainerInfo | undefined> {
  const docker = await pc.docker();
  if (spec.check.service)
    return pickServiceContainer(await docker.listContainers(serviceLabels(spec.project, spec.check.service)));
  return docker.inspectContainer(spec.check.container!);
}

/** The image whose client an inside check runs: the service's own (its Swarm spec, or its compose container). */
async function clientImage(pc: ProbeContext, inside: Inside): Promise<string | undefined> {
  if (inside.engine === 'swarm') {
    const swarm = await (pc.swarm ?? swarmOf(pc.ctx))();
    return (await swarm.service(`${inside.project}_${inside.service}`))?.spec.TaskTemplate.ContainerSpec.Image;
  }
  const docker = await pc.docker();
  return pickServiceContainer(await docker.listContainers(serviceLabels(inside.project, inside.service)))?.image;
}

/** postgres or redis asked from a one-off container on the platform's network. */
async function insideProbe(
  pc: ProbeContext,
  spec: Extract<CheckSpec, { kind: 'postgres' | 'redis' }>,
  timeoutMs: number,
  t0: number,
): Promise<ProbeOutcome> {
  const inside = spec.inside!;
  const expected = spec.kind === 'postgres' ? { query: 'SHOW server_version' } : { reply: 'PONG' };
  const image = await clientImage(pc, inside);
  if (!image)
    return {
      status: 'fail',
      observed: { service: 'missing' },
      expected,
      detail: `no ${inside.service} service to take the ${spec.kind} client from`,
      latencyMs: elapsed(t0),
    };
  const check =
    spec.kind === 'postgres'
      ? postgresInside(spec.check.url, image, inside.network, timeoutMs)
      : redisInside(spec.check.url, image, inside.network);
  const r = await runInside(await pc.docker(), pc.ctx.clock, check, { 'opskit.project': inside.project }, timeoutMs);
  const answer = r.output.split('\n').pop() ?? '';
  const ok = r.exitCode === 0 && (spec.kind === 'postgres' ? /^\d/.test(answer) : answer === 'PONG');
  const what = spec.kind === 'postgres' ? `PostgreSQL ${answer}` : `PING answered ${answer}`;
  return {
    status: ok ? 'pass' : 'fail',
    observed: spec.kind === 'postgres' ? { serverVersion: ok ? answer : null } : { reply: answer || null },
    expected,
    detail: ok
      ? `${what} in ${Math.round(r.latencyMs)}ms, from a container on ${inside.network}`
      : `from a container on ${inside.network}: exit ${r.exitCode}: ${r.output.split('\n').slice(-2).join(' | ')}`,
    latencyMs: Math.round(r.latencyMs),
  };
}

/** The side of each check that touches the world; the judging is in evaluate.ts. */
export async function probe(pc: ProbeContext, spec: CheckSpec, timeoutMs: number): Promise<ProbeOutcome> {
  const { ctx } = pc;
  const t0 = performance.now();
  switch (spec.kind) {
    case 'http': {
      const c = spec.check;
      const headers = Object.fromEntries(
        Object.entries(c.headers).map(([k, v]) => [k, isSensitive(v) ? v.reveal() : v]),
      );
      const response = await ctx.http.request(c.url, { method: c.method, headers, timeoutMs, tlsVerify: c.tlsVerify });
      const verdict = evaluateHttp(
        {
          expectStatus: c.expectStatus,
          bodyContains: c.bodyContains,
          json: c.json,
          warnLatencyMs: c.warnLatency ? parseDuration(c.warnLatency) : undefined,
          failLatencyMs: c.failLatency ? parseDuration(c.failLatency) : undefined,
          certWarnDays: c.certWarnDays,
          certFailDays: c.certFailDays,
        },
        response,
        ctx.clock.now(),
      );
      return { ...verdict, latencyMs: Math.round(response.latencyMs) };
    }
    case 'tcp': {
      const { latencyMs } = await ctx.net.connect(spec.host, spec.port, timeoutMs);
      return {
        status: 'pass',
        observed: { connected: true },
        expected: { connected: true },
        detail: `${spec.check.target} accepts connections (${Math.round(latencyMs)}ms)`,
        latencyMs: Math.round(latencyMs),
      };
    }
    case 'container': {
      const container = await findContainer(pc, spec);
      if (!container)
        return {
          status: 'fail',
          observed: { state: 'missing' },
          expected: { state: 'running' },
          detail: `no ${spec.target} found`,
          latencyMs: elapsed(t0),
        };
      const lastHealth = container.healthLog[container.healthLog.length - 1];
      return {
        ...evaluateContainer({ ...container, lastHealthOutput: lastHealth?.output }, ctx.clock.now()),
        latencyMs: elapsed(t0),
      };
    }
    case 'postgres': {
      if (spec.inside) return insideProbe(pc, spec, timeoutMs, t0);
      const r = await ctx.datastores.postgres(spec.check.url, timeoutMs);
      return {
        status: 'pass',
        observed: { serverVersion: r.serverVersion },
        expected: { query: 'SELECT version()' },
        detail: `${r.version.split(' on ')[0]} answered in ${Math.round(r.latencyMs)}ms`,
        latencyMs: Math.round(r.latencyMs),
      };
    }
    case 'redis': {
      if (spec.inside) return insideProbe(pc, spec, timeoutMs, t0);
      const r = await ctx.datastores.redis(spec.check.url, timeoutMs);
      const ok = r.reply === 'PONG';
      return {
        status: ok ? 'pass' : 'fail',
        observed: { reply: r.reply },
        expected: { reply: 'PONG' },
        detail: `PING answered ${r.reply} in ${Math.round(r.latencyMs)}ms`,
        latencyMs: Math.round(r.latencyMs),
      };
    }
    case 'disk': {
      const space = await ctx.fs.diskSpace(projectPath(ctx, spec.check.path));
      return { ...evaluateDisk(space, spec.check.warnFree, spec.check.failFree), latencyMs: elapsed(t0) };
    }
    case 'resources': {
      const docker = await pc.docker();
      const c = spec.check;
      let containers: ContainerInfo[];
      if (c.containers?.length)
        containers = (await Promise.all(c.containers.map((n) => docker.inspectContainer(n)))).filter(
          (x): x is ContainerInfo => x !== undefined,
        );
      else if (c.services?.length)
        containers = (
          await Promise.all(
            c.services.map(async (s) =>
              pickServiceContainer(await docker.listContainers(serviceLabels(spec.project, s))),
            ),
          )
        ).filter((x): x is ContainerInfo => x !== undefined);
      else
        containers = (await docker.listContainers({ 'com.docker.compose.project': spec.project })).filter(
          (x) => x.labels['com.docker.compose.oneoff'] !== 'True',
        );
      const running = containers.filter((x) => x.running);
      const samples = await Promise.all(
        running.map(async (x) => ({ name: x.name, ...(await docker.containerStats(x.id)) })),
      );
      return { ...evaluateResources(samples, c), latencyMs: elapsed(t0) };
    }
    case 'nginx':
      return nginxProbe(pc, spec, timeoutMs, t0);
    case 'service': {
      const swarm = await (pc.swarm ?? swarmOf(ctx))();
      const name = `${spec.project}_${spec.check.service}`;
      const [service, tasks, nodes] = await Promise.all([
        swarm.service(name),
        swarm.tasks({ service: name }),
        swarm.nodes(),
      ]);
      if (!service)
        return {
          status: 'fail',
          observed: { service: 'missing' },
          expected: { service: name },
          detail: `no Swarm service ${name}`,
          latencyMs: elapsed(t0),
        };
      const verdict = judgeService(service, tasks, nodes, ctx.clock.now(), parseDuration(spec.check.recent, 'recent'));
      return { ...verdict, expected: { running: verdict.observed.desired, failedRecently: 0 }, latencyMs: elapsed(t0) };
    }
    case 'nodes': {
      const swarm = await (pc.swarm ?? swarmOf(ctx))();
      const verdict = judgeNodes(await swarm.nodes());
      return { ...verdict, expected: { state: 'ready', availability: 'active' }, latencyMs: elapsed(t0) };
    }
    case 'front': {
      const base = await frontBase(pc, spec);
      if (!base)
        return {
          status: 'fail',
          observed: { status: null },
          expected: { status: spec.check.expectStatus },
          detail: `the ${spec.nginx.service} service is not running: nothing answers in front of the platform`,
          latencyMs: elapsed(t0),
        };
      const url = `${base}${spec.path}`;
      const response = await ctx.http.request(url, { timeoutMs });
      const verdict = evaluateHttp(
        {
          expectStatus: spec.check.expectStatus,
          bodyContains: undefined,
          json: undefined,
          warnLatencyMs: undefined,
          failLatencyMs: undefined,
          certWarnDays: 14,
          certFailDays: 3,
        },
        response,
        ctx.clock.now(),
      );
      const said = response.body.trim().replace(/\s+/g, ' ').slice(0, 120);
      return {
        ...verdict,
        detail: `GET ${url}: ${verdict.detail}${verdict.status === 'fail' && said ? ` (${said})` : ''}`,
        latencyMs: Math.round(response.latencyMs),
      };
    }
  }
}

/** Where nginx answers: nginx.url, or the nginx service container's own address (compose mode). */
async function frontBase(pc: ProbeContext, spec: Extract<CheckSpec, { kind: 'front' }>): Promise<string | undefined> {
  if (spec.nginx.url) return spec.nginx.url.replace(/\/$/, '');
  const docker = await pc.docker();
  const container = pickServiceContainer(await docker.listContainers(serviceLabels(spec.project, spec.nginx.service)));
  const address = container?.running ? Object.values(container.addresses)[0] : undefined;
  return address ? `http://${address}:80` : undefined;
}

async function nginxProbe(
  pc: ProbeContext,
  spec: Extract<CheckSpec, { kind: 'nginx' }>,
  timeoutMs: number,
  t0: number,
): Promise<ProbeOutcome> {
  const { ctx } = pc;
  const n = spec.nginx;
  const expected = { configTest: 'ok', master: 'running' };
  if (n.mode === 'compose') {
    const docker = await pc.docker();
    const container = pickServiceContainer(await docker.listContainers(serviceLabels(spec.project, n.service)));
    if (!container?.running)
      return {
        status: 'fail',
        observed: { configTest: 'not run', master: container?.state ?? 'missing' },
        expected,
        detail: `the ${n.service} service is ${container?.state ?? 'not there'}`,
        latencyMs: elapsed(t0),
      };
    const test = await docker.exec(container.id, ['nginx', '-t']);
    const ok = test.exitCode === 0;
    // In the container nginx's master is process 1: a running container is a live master.
    return {
      status: ok ? 'pass' : 'fail',
      observed: { configTest: ok ? 'ok' : 'failed', master: 'running' },
      expected,
      detail: ok
        ? `${container.name}: configuration ok, master running`
        : `${container.name}: nginx -t failed: ${lastLines(test.output)}`,
      latencyMs: elapsed(t0),
    };
  }
  const args = ['-t', '-c', projectPath(ctx, n.config), ...(n.prefix ? ['-p', projectPath(ctx, n.prefix)] : [])];
  const test = await ctx.exec.run(n.bin, args, { timeoutMs });
  const configOk = !test.failed;
  const pidFile = n.pidFile ? projectPath(ctx, n.pidFile) : await defaultPidFile(ctx, n.bin, timeoutMs);
  const pidText = pidFile ? await ctx.fs.readText(pidFile) : undefined;
  const pid = pidText ? Number(pidText.trim()) : NaN;
  const cmdline = Number.isInteger(pid) ? await ctx.fs.readText(`/proc/${pid}/cmdline`) : undefined;
  const masterAlive =
    Number.isInteger(pid) && ctx.system.isPidAlive(pid) && (cmdline === undefined || cmdline.includes('nginx'));
  const observed = {
    configTest: configOk ? 'ok' : 'failed',
    master: masterAlive
      ? `running (pid ${pid})`
      : pidText === undefined
        ? `no pid file ${pidFile ?? ''}`.trim()
        : `pid ${pidText.trim()} is not running`,
  };
  const problems = [
    ...(configOk ? [] : [`nginx -t failed: ${lastLines(`${test.stderr}\n${test.stdout}`)}`]),
    ...(masterAlive ? [] : [`master: ${observed.master}`]),
  ];
  return {
    status: problems.length ? 'fail' : 'pass',
    observed,
    expected,
    detail: problems.length ? problems.join('; ') : `configuration ok, master running (pid ${pid})`,
    latencyMs: elapsed(t0),
  };
}

async function defaultPidFile(ctx: Context, bin: string, timeoutMs: number): Promise<string | undefined> {
  const v = await ctx.exec.run(bin, ['-V'], { timeoutMs });
  const match = /--pid-path=(\S+)/.exec(`${v.stderr} ${v.stdout}`);
  return match ? match[1] : path.join('/run', 'nginx.pid');
}

function lastLines(text: string): string {
  return text
    .trim()
    .split('\n')
    .filter((l) => !/test failed$/.test(l))
    .slice(-2)
    .join(' | ');
}
