import os from 'node:os';
import path from 'node:path';
import { pickServiceContainer, serviceLabels } from '../adapters/compose.js';
import type { DockerAdapter } from '../adapters/docker.js';
import type { Config } from '../config/schema.js';
import { ConfigError, OperationError } from '../errors.js';
import { type Context, projectPath } from '../runtime/context.js';
import { type NginxProcess, reloadSettled, servingWorkers } from './reload-wait.js';
import { type Color, DEFAULT_SOCKET_UPSTREAM_TEMPLATE, DEFAULT_UPSTREAM_TEMPLATE, renderUpstream } from './upstream.js';

/**
 * The upstream file for the live colour: `nginx.upstreamTemplate`, else opskit's own for the switch mode,
 * rendered with the server nginx must reach (the live.sock link, or a container's address).
 */
export async function renderLiveUpstream(
  ctx: Context,
  config: Config,
  vars: { server: string; color: Color; image: string },
): Promise<string> {
  const socket = config.cutover.switch === 'socket';
  const template = config.nginx.upstreamTemplate
    ? await ctx.fs.readText(projectPath(ctx, config.nginx.upstreamTemplate))
    : socket
      ? DEFAULT_SOCKET_UPSTREAM_TEMPLATE
      : DEFAULT_UPSTREAM_TEMPLATE;
  if (template === undefined)
    throw new ConfigError(`nginx.upstreamTemplate: ${config.nginx.upstreamTemplate} not found`, {
      code: 'E_NGINX_TEMPLATE',
    });
  return renderUpstream(template, vars);
}

/**
 * The nginx side of a switch, for nginx as a compose service or on the host:
 * check a candidate upstream with `nginx -t` (without touching the live files), install it with an
 * atomic rename, reload, and say where nginx answers.
 */
export interface NginxOps {
  /** The live upstream file's content (undefined when there is none yet). */
  current(): Promise<string | undefined>;
  /** Whether nginx runs (the compose service's container, or the host's master from its pid file). */
  running(): Promise<boolean>;
  check(candidate: string): Promise<{ ok: boolean; output: string }>;
  install(content: string): Promise<void>;
  /**
   * `nginx -s reload`, then wait (bounded) until every worker from before the reload has stopped accepting
   * connections and a new one serves: only then do new connections meet the new upstream.
   */
  reload(): Promise<void>;
  baseUrl(): Promise<string>;
}

/** How long a reload may take to replace nginx's workers before opskit says the new config was not applied. */
const RELOAD_SETTLE_MS = 10_000;

/**
 * Waits until the workers listed before a reload no longer serve. When they still do at the deadline,
 * the master kept its old configuration (it logs why in its error log).
 */
async function settleReload(
  ctx: Context,
  before: readonly number[],
  list: () => Promise<NginxProcess[]>,
): Promise<void> {
  if (before.length === 0) return;
  const deadline = ctx.clock.monotonicMs() + RELOAD_SETTLE_MS;
  for (;;) {
    if (reloadSettled(before, await list())) return;
    if (ctx.clock.monotonicMs() > deadline) {
      throw new OperationError(
        'E_NGINX_RELOAD',
        `nginx did not replace its workers within ${RELOAD_SETTLE_MS / 1000} s of the reload: the new configuration was not applied`,
        {
          hint: "read nginx's error log (the master logs why it kept the old configuration)",
        },
      );
    }
    await ctx.clock.sleep(10);
  }
}

export async function nginxOps(
  ctx: Context,
  config: Config,
  project: string,
  docker: DockerAdapter,
): Promise<NginxOps> {
  const n = config.nginx;
  const mainConf = projectPath(ctx, n.config);
  const upstreamFile = projectPath(ctx, n.upstreamFile);
  const includePath = path.relative(path.dirname(mainConf), upstreamFile);
  const mainText = await ctx.fs.readText(mainConf);
  if (mainText === undefined) throw new ConfigError(`nginx.config: ${n.config} not found`, { code: 'E_NGINX_CONFIG' });
  const install = (content: string) => ctx.fs.writeFileAtomic(upstreamFile, content);
  const current = () => ctx.fs.readText(upstreamFile);

  /** A copy of the main config beside the candidate: relative includes resolve from the copy's directory. */
  const writeCheckDir = async (dir: string, candidate: string) => {
    await ctx.fs.writeFileAtomic(path.join(dir, 'nginx.conf'), mainText);
    await ctx.fs.writeFileAtomic(path.join(dir, includePath), candidate);
  };

  if (n.mode === 'compose') {
    const container = async () => {
      const c = pickServiceContainer(await docker.listContainers(serviceLabels(project, n.service)));
      if (!c?.running)
        throw new OperationError('E_NGINX_DOWN', `the ${n.service} service is not running`, {
          hint: 'start it: opskit deploy',
        });
      return c;
    };
    return {
      current,
      install,
      async running() {
        return pickServiceContainer(await docker.listContainers(serviceLabels(project, n.service)))?.running === true;
      },
      async check(candidate) {
        const c = await container();
        // The upstream directory is bind-mounted into the container: the check copy goes there too.
        const mount = c.mounts.find((m) => path.resolve(m.source) === path.dirname(upstreamFile));
        if (!mount)
          throw new ConfigError(`the ${n.service} container does not mount ${path.dirname(upstreamFile)}`, {
            code: 'E_NGINX_MOUNT',
            hint: 'bind-mount the upstream directory (not the file) into the nginx service, as the template does',
          });
        const name = `.opskit-check-${ctx.system.pid}`;
        const hostDir = path.join(path.dirname(upstreamFile), name);
        try {
          await writeCheckDir(hostDir, candidate);
          const result = await docker.exec(c.id, ['nginx', '-t', '-c', `${mount.destination}/${name}/nginx.conf`]);
          return { ok: result.exitCode === 0, output: result.output.trim() };
        } finally {
          await ctx.fs.removeDir(hostDir);
        }
      },
      async reload() {
        const c = await container();
        // The Engine's `top` needs `ps` on the host; without it, the reload is not waited for.
        const list = () => docker.containerProcesses(c.id).catch(() => []);
        const before = servingWorkers(await list());
        const result = await docker.exec(c.id, ['nginx', '-s', 'reload']);
        if (result.exitCode !== 0)
          throw new OperationError('E_NGINX_RELOAD', `nginx -s reload failed: ${result.output.trim()}`);
        await settleReload(ctx, before, list);
      },
      async baseUrl() {
        if (n.url) return n.url.replace(/\/$/, '');
        const c = await container();
        const address = Object.values(c.addresses)[0];
        if (!address) throw new OperationError('E_NGINX_DOWN', `${c.name} has no network address`);
        return `http://${address}:80`;
      },
    };
  }

  const prefix = n.prefix ? ['-p', projectPath(ctx, n.prefix)] : [];
  const masterPid = async () => {
    if (!n.pidFile) return undefined;
    const pid = Number((await ctx.fs.readText(projectPath(ctx, n.pidFile)))?.trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  };
  return {
    current,
    install,
    async running() {
      // The master's pid file (nginx.pidFile); without one, assume it runs and let the reload say otherwise.
      if (!n.pidFile) return true;
      const pid = await masterPid();
      return pid !== undefined && ctx.system.isPidAlive(pid);
    },
    async check(candidate) {
      const dir = path.join(os.tmpdir(), `opskit-nginx-check-${ctx.system.pid}-${Date.now()}`);
      try {
        await writeCheckDir(dir, candidate);
        const result = await ctx.exec.run(n.bin, ['-t', '-c', path.join(dir, 'nginx.conf'), ...prefix], {
          timeoutMs: 15_000,
        });
        return { ok: !result.failed, output: `${result.stderr}\n${result.stdout}`.trim() };
      } finally {
        await ctx.fs.removeDir(dir);
      }
    },
    async reload() {
      // The workers are the master's children; without nginx.pidFile they cannot be found, and the reload is not waited
      // for.
      const master = await masterPid();
      const list = async () => (master === undefined ? [] : ctx.system.childProcesses(master));
      const before = servingWorkers(await list());
      const result = await ctx.exec.run(n.bin, ['-s', 'reload', '-c', mainConf, ...prefix], { timeoutMs: 15_000 });
      if (result.failed) throw new OperationError('E_NGINX_RELOAD', `nginx -s reload failed: ${result.stderr.trim()}`);
      await settleReload(ctx, before, list);
    },
    async baseUrl() {
      if (!n.url)
        throw new ConfigError('nginx.url: with nginx.mode host, say where nginx answers (e.g. http://127.0.0.1:80)', {
          code: 'E_NGINX_URL',
        });
      return n.url.replace(/\/$/, '');
    },
  };
}
