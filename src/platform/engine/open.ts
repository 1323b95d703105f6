import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { type ComposeTarget, composeArgv } from '../../adapters/compose.js';
import type { DockerAdapter } from '../../adapters/docker.js';
import { createSwarmAdapter, type RegistryAuth, type SwarmAdapter } from '../../adapters/swarm.js';
import type { Config } from '../../config/schema.js';
import { ConfigError, OperationError } from '../../errors.js';
import type { Context } from '../../runtime/context.js';
import { type ComposeEngineOptions, composeEngine } from './compose.js';
import type { Engine } from './engine.js';
import { assertManager, swarmEngine } from './swarm.js';
import type { ComposeModel } from './swarm-spec.js';

/** Picks the engine opskit.yaml names (`engine:`), over the connections a command already holds. */
export interface EngineSetup {
  ctx: Context;
  config: Config;
  target: ComposeTarget;
  docker: DockerAdapter;
  env: Record<string, string>;
  compose?: ComposeEngineOptions;
}

/** The registry credentials of the config, for the X-Registry-Auth header (never printed). */
export function registryAuth(config: Config): RegistryAuth | undefined {
  const { address, username, password } = config.registry;
  if (!address || !username) return undefined;
  return { serveraddress: address, username, ...(password ? { password: password.reveal() } : {}) };
}

/**
 * The compose file as `compose config` normalizes it (env interpolated, paths absolute, short syntax
 * expanded): what the swarm engine builds its specs from. v2 answers JSON; v1 answers YAML.
 */
export async function loadComposeModel(
  ctx: Context,
  target: ComposeTarget,
  env: Record<string, string>,
): Promise<ComposeModel> {
  const args = target.cli.flavor === 'v2' ? ['config', '--format', 'json'] : ['config'];
  const [file, argv] = composeArgv(target, args);
  const result = await ctx.exec.run(file, argv, { env, timeoutMs: 60_000, cwd: path.dirname(target.composeFile) });
  if (result.failed)
    throw new ConfigError(
      `compose.file: ${target.composeFile} does not load: ${result.stderr.trim().split('\n').pop()}`,
      {
        code: 'E_COMPOSE_CONFIG',
        hint: `run ${[file, ...argv].join(' ')} to see the whole message`,
      },
    );
  const model = (target.cli.flavor === 'v2' ? JSON.parse(result.stdout) : parseYaml(result.stdout)) as ComposeModel;
  if (!model?.services)
    throw new ConfigError(`compose.file: ${target.composeFile} defines no services`, { code: 'E_COMPOSE_CONFIG' });
  return model;
}

/** A manager's Swarm connection, checked: the Engine answers, is in a swarm, and is a manager. */
export async function openSwarm(
  config: Config,
  env: Record<string, string>,
): Promise<{
  swarm: SwarmAdapter;
  info: Awaited<ReturnType<SwarmAdapter['info']>>;
}> {
  const swarm = await createSwarmAdapter(config.docker.host ?? env.DOCKER_HOST);
  const info = await swarm.info().catch((error: Error) => {
    throw new OperationError(
      'E_DOCKER_UNREACHABLE',
      `the Docker Engine at ${swarm.endpoint} does not answer: ${error.message}`,
      {
        hint: 'point DOCKER_HOST (or docker.host) at a Swarm manager; `opskit doctor` checks it',
      },
    );
  });
  assertManager(info, swarm.endpoint);
  return { swarm, info };
}

export async function openEngine(setup: EngineSetup): Promise<Engine> {
  const { ctx, config, target, docker, env } = setup;
  if (config.engine === 'compose') return composeEngine({ ctx, docker, target, env }, setup.compose);
  return (await openSwarmEngine(setup)).engine;
}

/** The swarm engine with the manager's connection it drives (blue-green on Swarm needs both). */
export async function openSwarmEngine(
  setup: EngineSetup,
): Promise<{ engine: Engine; swarm: SwarmAdapter; info: Awaited<ReturnType<SwarmAdapter['info']>> }> {
  const { ctx, config, target, env } = setup;
  const { swarm, info } = await openSwarm(config, env);
  const models = new Map<string, Promise<ComposeModel>>();
  const engine = swarmEngine({
    ctx,
    swarm,
    info,
    project: target.project,
    webService: config.deploy.webService,
    auth: registryAuth(config),
    model: (image) => {
      let model = models.get(image);
      if (!model) {
        model = loadComposeModel(ctx, target, { ...env, WEB_IMAGE: image });
        models.set(image, model);
      }
      return model;
    },
  });
  return { engine, swarm, info };
}
