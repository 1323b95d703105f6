import path from 'node:path';
import { type ComposeTarget, detectComposeCached } from '../adapters/compose.js';
import { ConfigError, OperationError, UsageError } from '../errors.js';
import type { PlannedStep } from '../output/plan.js';
import type { Engine } from '../platform/engine/engine.js';
import { prepareEdge } from '../platform/engine/last-known.js';
import { openEngine } from '../platform/engine/open.js';
import { nginxOps, renderLiveUpstream } from '../platform/nginx.js';
import { relays } from '../platform/relay.js';
import { type ImageBuild, resolveImageRef, runMigrations } from '../platform/release.js';
import { liveServer, liveSocket, socketName } from '../platform/sockets.js';
import { readState, recordDeploy, writeState } from '../platform/state.js';
import { sameNginxConfig } from '../platform/upstream.js';
import { type Context, projectPath, withMutation } from '../runtime/context.js';
import { formatDuration, parseDuration } from '../runtime/duration.js';
import { type DeployStep, describeDeployStep, planDeploy, toPlannedSteps } from './plan.js';
import { verifyFront } from './steps.js';

/** A step another capability runs before the migrations (the backup issue's pre-migration backup). */
export interface DeployHook {
  name: string;
  run(ctx: Context, info: { image: string; project: string }): Promise<void>;
}

export interface DeployInput {
  image?: string | undefined;
  tag?: string | undefined;
  build?: ImageBuild | undefined;
  skipMigrations: boolean;
  waitTimeout?: string | undefined;
  healthTimeout?: string | undefined;
  hooks?: DeployHook[];
}

export interface DeployResult {
  changed: boolean;
  project: string;
  /** The engine that ran it: `docker compose 2.26.1 (v2)`, or `Docker Swarm 26.1.5, 3 nodes (...)`. */
  compose: string;
  engine: 'compose' | 'swarm';
  image: string;
  /** What the services run: the image, or on Swarm the image pinned to its registry digest. */
  released?: string;
  imageId: string;
  migrations: { ran: boolean; applied: string[] };
  steps: Array<{ step: string; durationMs: number }>;
  durationMs: number;
  web: { container: string; address: string } | null;
  build?: { tags: string[] };
  plan?: PlannedStep[];
}

/**
 * `opskit deploy`: migrate-then-start, each step printed, the previous version serving until the new one is healthy.
 */
export async function runDeploy(ctx: Context, input: DeployInput): Promise<DeployResult> {
  const loaded = ctx.loaded!;
  const config = loaded.config;
  const project = config.compose.project ?? config.project.name!;
  const composeFile = projectPath(ctx, config.compose.file);
  if (!(await ctx.fs.exists(composeFile))) {
    throw new ConfigError(`compose.file: ${path.relative(ctx.cwd, composeFile) || composeFile} not found`, {
      code: 'E_COMPOSE_FILE_NOT_FOUND',
      hint: 'run `opskit init`, or set compose.file',
    });
  }
  const waitTimeoutMs = parseDuration(
    input.waitTimeout ?? config.deploy.waitTimeout,
    input.waitTimeout ? '--wait-timeout' : 'deploy.waitTimeout',
  );
  const healthTimeoutMs = parseDuration(
    input.healthTimeout ?? config.deploy.healthTimeout,
    input.healthTimeout ? '--health-timeout' : 'deploy.healthTimeout',
  );
  const migrateTimeoutMs = parseDuration(config.deploy.migrateTimeout, 'deploy.migrateTimeout');
  const cli = await detectComposeCached(
    ctx.exec,
    ctx.fs,
    projectPath(ctx, path.join(config.paths.state, 'compose-cli.json')),
    config.compose.cli,
    {
      timeoutMs: 15_000,
      env: loaded.env,
      write: !ctx.globals.dryRun,
    },
  );
  if (!cli) {
    throw new ConfigError(`no compose CLI found (compose.cli: ${config.compose.cli})`, {
      code: 'E_NO_COMPOSE',
      hint: 'install the docker compose plugin (v2) or docker-compose (v1); `opskit doctor` checks it',
    });
  }
  const target: ComposeTarget = { cli, project, composeFile };
  const imageName = config.image.name ?? config.project.name!;
  const hooks = input.hooks ?? [];
  const stateFile = projectPath(ctx, path.join(config.paths.state, 'state.json'));
  const socketsDir = projectPath(ctx, config.paths.sockets);
  // nginx is part of the platform when the deploy starts it, or when it runs on the host.
  const hasFront = config.nginx.mode === 'host' || config.deploy.frontServices.includes(config.nginx.service);
  const swarm = config.engine === 'swarm';
  const docker = await ctx.docker(config.docker.host ?? loaded.env.DOCKER_HOST);
  const env = { ...loaded.env };
  const engine: Engine = await openEngine({
    ctx,
    config,
    target,
    docker,
    env,
    compose: { withDependencies: config.deploy.dependencies },
  });

  const plan = (image: string) =>
    planDeploy({
      image,
      webService: config.deploy.webService,
      dependencies: config.deploy.dependencies,
      frontServices: config.deploy.frontServices,
      migrate: input.skipMigrations ? null : { command: config.deploy.migrateCommand, timeoutMs: migrateTimeoutMs },
      health: {
        kind: config.deploy.healthCheck,
        path: config.deploy.healthPath,
        port: config.deploy.healthPort,
        timeoutMs: healthTimeoutMs,
      },
      waitTimeoutMs,
      stateFile,
      beforeMigrate: hooks.map((h) => h.name),
      // On Swarm, nginx reaches the web tasks over the overlay network by the service's name.
      sockets:
        swarm || config.cutover.switch === 'reload'
          ? null
          : { dir: socketsDir, relay: config.cutover.switch === 'relay' },
      upstream: !swarm,
      publish: swarm,
      edge: swarm && hasFront ? { dir: socketsDir } : null,
      front: hasFront
        ? {
            verifyPath: config.cutover.verifyPath,
            verifyTimeoutMs: parseDuration(config.cutover.verifyTimeout, 'cutover.verifyTimeout'),
          }
        : null,
    });

  if (ctx.globals.dryRun) {
    const build = input.build ? await input.build() : undefined;
    const image = build ? build.tags[0]! : resolveImageRef(imageName, input);
    const planned = await toPlannedSteps(plan(image), image, engine);
    ctx.reporter.dryRun({
      kind: 'docker',
      call: 'GET /images/{name}/json',
      options: { name: image },
      description: 'the image must exist',
    });
    for (const step of planned) ctx.reporter.dryRun(step);
    return {
      changed: false,
      project,
      compose: engine.description,
      engine: engine.kind,
      image,
      imageId: '',
      migrations: { ran: false, applied: [] },
      steps: [],
      durationMs: 0,
      web: null,
      ...(build ? { build } : {}),
      plan: planned,
    };
  }

  return withMutation(ctx, 'deploy', async () => {
    const started = ctx.clock.monotonicMs();
    const build = input.build ? await input.build(docker) : undefined;
    const image = build ? build.tags[0]! : resolveImageRef(imageName, input);
    const info = await docker.inspectImage(image);
    if (!info) {
      throw new UsageError(`image ${image} not found on the Docker engine`, {
        code: 'E_IMAGE_NOT_FOUND',
        hint: 'build it first (`opskit build`), pass --build, or name another with --image/--tag',
      });
    }
    const state = await readState(ctx.fs, stateFile);
    if (state.cutover) {
      throw new UsageError(
        "this platform runs blue-green (opskit cutover): a deploy would replace the web service behind nginx's back",
        {
          code: 'E_BLUE_GREEN',
          hint: 'ship the new version with `opskit cutover --migrate --build`',
        },
      );
    }

    // The same image already deployed, and everything up: nothing to do. The web service is judged as
    // the deploy judges it (its health path answers), since its Docker health may still be "starting".
    if (state.deploy?.current.imageId === info.id) {
      const others = [...config.deploy.dependencies, ...config.deploy.frontServices];
      const readiness = await Promise.all(
        others.map(async (s) => ({ ready: (await engine.instances(s)).some((i) => i.ready) })),
      );
      const webStep = plan(image).find(
        (s): s is Extract<DeployStep, { kind: 'web-health' }> => s.kind === 'web-health',
      )!;
      // Where images are published (Swarm), the same content under another name is another release.
      const sameName =
        !swarm || (await engine.instances(config.deploy.webService)).every((i) => i.image.split('@')[0] === image);
      const web =
        sameName && readiness.every((r) => r.ready)
          ? await engine.webReady({ ...webStep, timeoutMs: 0 }, info.id).catch(() => undefined)
          : undefined;
      // And through nginx, where users meet it: a front that fails makes this a full deploy again.
      const front = plan(image).find(
        (s): s is Extract<DeployStep, { kind: 'verify-front' }> => s.kind === 'verify-front',
      );
      const frontOk =
        !web ||
        !front ||
        (await verifyFront(ctx, await nginxOps(ctx, config, project, docker), { ...front, timeoutMs: 0 }).then(
          () => true,
          () => false,
        ));
      if (web && frontOk) {
        ctx.reporter.info(
          `${image} (${info.id.slice(7, 19)}) is already deployed and every service is healthy: nothing to change`,
        );
        return {
          changed: false,
          project,
          compose: engine.description,
          engine: engine.kind,
          image,
          imageId: info.id,
          migrations: { ran: false, applied: [] },
          steps: [],
          durationMs: Math.round(ctx.clock.monotonicMs() - started),
          web: { container: web.name, address: web.address },
          ...(build ? { build } : {}),
        };
      }
    }

    const steps = plan(image);
    const timings: DeployResult['steps'] = [];
    let applied: string[] = [];
    let migrated = false;
    let web: DeployResult['web'] = null;
    const previous = state.deploy?.current;
    let webId: string | undefined;
    const sockets = config.cutover.switch === 'reload' ? undefined : liveSocket(ctx.fs, ctx.clock, socketsDir);
    const relay =
      config.cutover.switch === 'relay'
        ? relays(ctx, config, project, docker, { target, env: { ...env, WEB_IMAGE: image } })
        : undefined;
    let released = image; // what the services run: on Swarm, the image pinned to its registry digest
    // Before compose creates it as root (a bind mount's missing source): the app user must write there.
    await sockets?.prepare();
    for (const step of steps) {
      const t0 = ctx.clock.monotonicMs();
      const label = describeDeployStep(step);
      const handle = ctx.reporter.step(label);
      try {
        switch (step.kind) {
          case 'publish':
            released = await engine.publish(step.image, (line) => ctx.reporter.info(`[push] ${line}`));
            break;
          case 'up':
            await engine.start(step.services, released);
            break;
          case 'wait-healthy':
            await engine.waitReady(step.services, step.timeoutMs);
            break;
          case 'hook':
            await hooks.find((h) => h.name === step.name)!.run(ctx, { image, project });
            break;
          case 'migrate':
            applied = await runMigrations(ctx, engine, {
              service: step.service,
              command: step.command,
              image: released,
              timeoutMs: step.timeoutMs,
              keepsServing: previous ? 'replaced: the previous version keeps serving' : 'started',
              webService: config.deploy.webService,
            });
            migrated = true;
            break;
          case 'replace-web':
            await engine.start([step.service], released);
            break;
          case 'web-health':
            try {
              const healthy = await engine.webReady(step, info.id);
              web = { container: healthy.name, address: healthy.address };
              webId = healthy.id;
            } catch (error) {
              if (previous && previous.imageId !== info.id) {
                ctx.reporter.warn(`restoring the previous version ${previous.image}`);
                const restored = await engine.restore(config.deploy.webService, previous.image).catch(() => false);
                ctx.reporter[restored ? 'warn' : 'error'](
                  restored
                    ? `${config.deploy.webService} is back on ${previous.image}`
                    : `could not restore ${previous.image}: see the output above`,
                );
              }
              throw error;
            }
            break;
          case 'relay': {
            const container = webId ? await docker.inspectContainer(webId) : undefined;
            if (!container)
              throw new OperationError('E_WEB_GONE', `the new ${step.service} container is gone`, {
                hint: 'see `opskit health` and its logs',
              });
            await relay!.start(container);
            break;
          }
          case 'point-live':
            await sockets!.waitFor(webId!, 10_000);
            await sockets!.point(socketName(webId!));
            // The relays of web containers this deploy (or an earlier one) replaced.
            await relay?.reap();
            break;
          case 'edge-link':
            await prepareEdge({ ctx, engine, docker, project, config, dir: step.dir });
            break;
          case 'upstream': {
            const nginx = await nginxOps(ctx, config, project, docker);
            const server =
              step.mode === 'socket' ? liveServer(config, socketsDir) : `${web!.container}:${config.deploy.healthPort}`;
            const candidate = await renderLiveUpstream(ctx, config, { server, color: 'blue', image });
            const current = await nginx.current();
            if (current !== undefined && sameNginxConfig(candidate, current)) break;
            // A running nginx gets the new upstream only after nginx -t accepts it, then a reload; one
            // that is not up yet reads it when it starts.
            if (await nginx.running()) {
              const check = await nginx.check(candidate);
              if (!check.ok)
                throw new OperationError(
                  'E_NGINX_CHECK',
                  `nginx -t rejected the upstream for ${step.service}; the live config is untouched:\n${check.output}`,
                  { hint: 'fix nginx.upstreamTemplate (or nginx.conf)' },
                );
              await nginx.install(candidate);
              await nginx.reload();
            } else {
              await nginx.install(candidate);
            }
            break;
          }
          case 'verify-front':
            await verifyFront(ctx, await nginxOps(ctx, config, project, docker), step);
            break;
          case 'write-state': {
            const record = {
              image,
              imageId: info.id,
              deployedAt: ctx.clock.now().toISOString(),
              migrationsApplied: applied,
              durationMs: Math.round(ctx.clock.monotonicMs() - started),
            };
            await writeState(ctx.fs, step.path, recordDeploy(state, record));
            break;
          }
        }
        const durationMs = Math.round(ctx.clock.monotonicMs() - t0);
        timings.push({ step: label, durationMs });
        handle.succeed(
          step.kind === 'migrate'
            ? `migrations: ${applied.length ? `applied ${applied.join(', ')}` : 'none pending'} (${formatDuration(durationMs)})`
            : `${label} (${formatDuration(durationMs)})`,
        );
      } catch (error) {
        handle.fail(`${label}: failed`);
        throw error;
      }
    }
    return {
      changed: true,
      project,
      compose: engine.description,
      engine: engine.kind,
      image,
      ...(released !== image ? { released } : {}),
      imageId: info.id,
      migrations: { ran: migrated, applied },
      steps: timings,
      durationMs: Math.round(ctx.clock.monotonicMs() - started),
      web,
      ...(build ? { build } : {}),
    };
  });
}
