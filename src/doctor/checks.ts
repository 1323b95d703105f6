/**
 * Longer than 400 lines: the one table of checks `opskit doctor` runs, each entry short and independent;
 * split by area, the list the command prints would be scattered over files.
 */
import path from 'node:path';
import { parse as parseEnv } from 'dotenv';
import { buildxSupported, parseBuildxVersion } from '../adapters/buildx.js';
import { describeCli, detectCompose } from '../adapters/compose.js';
import type { FsAdapter } from '../adapters/fs.js';
import { isSecretName } from '../config/redact.js';
import type { Config } from '../config/schema.js';
import { isDedicatedParent } from '../platform/sockets.js';
import { type Context, projectRoot } from '../runtime/context.js';
import { Sensitive } from '../sensitive.js';

export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

export interface CheckOutcome {
  status: 'pass' | 'fail' | 'skip';
  detail: string;
  version?: string;
  hint?: string;
  data?: Record<string, unknown>;
}

export interface DoctorCheckResult {
  name: string;
  required: boolean;
  /** A failed check that is not required is a warning. */
  status: CheckStatus;
  version: string | null;
  detail: string;
  hint: string | null;
  durationMs: number;
  data?: Record<string, unknown>;
}

export interface DoctorCheck {
  name: string;
  required: boolean;
  run(ctx: Context, config: Config): Promise<CheckOutcome>;
}

/** The first version-looking token of a tool's `--version` output. */
export function parseVersion(text: string): string | undefined {
  return /(?<![\w.])v?(\d+\.\d+(?:\.\d+)?(?:[-+~][\w.]+)?)/.exec(text)?.[1];
}

async function toolVersion(
  ctx: Context,
  label: string,
  file: string,
  args: string[],
  timeoutMs: number,
): Promise<CheckOutcome> {
  const result = await ctx.exec.run(file, args, { timeoutMs });
  if (result.notFound) return { status: 'fail', detail: `${file} not found on PATH`, hint: `install ${label}` };
  const text = `${result.stdout}\n${result.stderr}`.trim();
  if (result.failed)
    return {
      status: 'fail',
      detail: `${[file, ...args].join(' ')} failed: ${text.split('\n')[0] ?? `exit ${result.exitCode}`}`,
    };
  const version = parseVersion(text);
  return { status: 'pass', detail: text.split('\n')[0]!, ...(version ? { version } : {}) };
}

function s3CredentialSource(config: Config, env: Readonly<Record<string, string | undefined>>): string | undefined {
  if (config.s3.accessKeyId && config.s3.secretAccessKey) return 'config/env (access key id and secret key)';
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) return 'AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY';
  if (env.AWS_WEB_IDENTITY_TOKEN_FILE) return 'web identity token';
  if (env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI || env.AWS_CONTAINER_CREDENTIALS_FULL_URI)
    return 'container credentials';
  return undefined;
}

/** A path as the operator typed it: relative below the working directory, else absolute. */
function shownPath(cwd: string, file: string): string {
  const relative = path.relative(cwd, file);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : file;
}

/** `0644`, as chmod and ls think of it. */
export const octalMode = (mode: number): string => `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;

/** Pure: the keys of an env file that hold a secret: by name (`*_PASSWORD`, `*_TOKEN`, ...) or a URL's password. */
export function secretEnvKeys(text: string): string[] {
  return Object.entries(parseEnv(text))
    .filter(([name, value]) => value !== '' && (isSecretName(name) || Sensitive.url(value).secretParts().length > 1))
    .map(([name]) => name);
}

export interface EnvFileFacts {
  /** As shown to the operator, e.g. `.env.prod`. */
  file: string;
  mode: number;
  text: string;
}

export interface ExposedEnvFile {
  file: string;
  mode: string;
  keys: string[];
}

/** Pure: the env files that hold a secret and that group or others may open (any of the 077 bits). */
export function exposedEnvFiles(files: readonly EnvFileFacts[]): ExposedEnvFile[] {
  return files.flatMap((f) => {
    const keys = secretEnvKeys(f.text);
    return keys.length > 0 && (f.mode & 0o077) !== 0 ? [{ file: f.file, mode: octalMode(f.mode), keys }] : [];
  });
}

/** The project's `.env` and every `.env.<name>` (what `-e <name>` reads), with their modes and text. */
async function readEnvFiles(fs: FsAdapter, root: string, show: (file: string) => string): Promise<EnvFileFacts[]> {
  const out: EnvFileFacts[] = [];
  for (const name of await fs.listDir(root)) {
    if (!/^\.env(\..+)?$/.test(name)) continue;
    const file = path.join(root, name);
    try {
      const mode = await fs.fileMode(file);
      const text = await fs.readText(file);
      if (mode !== undefined && text !== undefined) out.push({ file: show(file), mode, text });
    } catch {
      // a directory, or a file this user cannot read: not an env file opskit reads either
    }
  }
  return out;
}

/**
 * Pure: the first directory, from `/` down to the sockets directory, that other users cannot pass; undefined when they
 * pass all.
 */
export function socketsGuard(
  chain: ReadonlyArray<{ dir: string; mode: number }>,
): { dir: string; mode: string } | undefined {
  const guard = chain.find((d) => (d.mode & 0o001) === 0);
  return guard ? { dir: guard.dir, mode: octalMode(guard.mode) } : undefined;
}

/** Pure: which checks a doctor run makes for this config, and which of them must pass. */
export function planDoctorChecks(
  config: Config,
  env: Readonly<Record<string, string | undefined>>,
  timeoutMs: number,
): DoctorCheck[] {
  const ngrokNamed = config.ngrok.bin ?? env.NGROK_BIN;
  return [
    {
      name: 'config',
      required: true,
      async run(ctx) {
        if (ctx.configError) {
          const problems = (ctx.configError.details as { problems?: string[] } | undefined)?.problems ?? [
            ctx.configError.message,
          ];
          return {
            status: 'fail',
            detail: problems.join('; '),
            hint: ctx.configError.hint ?? 'fix the configuration',
            data: { problems },
          };
        }
        const file = ctx.loaded?.file;
        return {
          status: 'pass',
          detail: file ? `${path.relative(ctx.cwd, file) || file} is valid` : 'no config file: defaults, env and flags',
          data: { file: file ?? null, envFiles: ctx.loaded?.envFiles ?? [] },
        };
      },
    },
    {
      name: 'docker',
      required: true,
      async run(ctx, cfg) {
        const host = cfg.docker.host ?? env.DOCKER_HOST;
        const docker = await ctx.docker(host);
        try {
          await docker.ping();
          const info = await docker.version();
          return {
            status: 'pass',
            version: info.version,
            detail: `engine ${info.version}, API ${info.apiVersion}, ${info.os}/${info.arch}, at ${docker.endpoint}`,
            data: { endpoint: docker.endpoint, engineVersion: info.version, apiVersion: info.apiVersion },
          };
        } catch (error) {
          return {
            status: 'fail',
            detail: `no Docker engine answers at ${docker.endpoint}: ${(error as Error).message}`,
            hint: 'start dockerd, or point DOCKER_HOST (or docker.host) at a running engine',
            data: { endpoint: docker.endpoint },
          };
        }
      },
    },
    {
      name: 'compose',
      required: true,
      async run(ctx, cfg) {
        const found = await detectCompose(ctx.exec, cfg.compose.cli, timeoutMs);
        if (!found) {
          const wanted =
            cfg.compose.cli === 'v2'
              ? '`docker compose` (v2)'
              : cfg.compose.cli === 'v1'
                ? '`docker-compose` (v1)'
                : 'neither `docker compose` (v2) nor `docker-compose` (v1)';
          return {
            status: 'fail',
            detail: `${wanted} found`,
            hint: 'install the docker compose plugin (v2) or docker-compose (v1)',
          };
        }
        return {
          status: 'pass',
          version: found.version,
          detail: describeCli(found),
          data: { flavor: found.flavor, version: found.version, command: [found.file, ...found.prefix].join(' ') },
        };
      },
    },
    {
      // BuildKit (RUN --mount, heredocs, build secrets) needs docker buildx; without it `opskit build` falls back.
      name: 'buildx',
      required: config.image.builder === 'buildkit',
      async run(ctx, cfg) {
        if (cfg.image.builder === 'classic')
          return {
            status: 'skip',
            detail: 'image.builder: classic (opskit build uses the Engine API builder, not buildx)',
          };
        const result = await ctx.exec.run('docker', ['buildx', 'version'], { timeoutMs });
        const text = `${result.stdout}\n${result.stderr}`.trim();
        const version = result.failed ? undefined : parseBuildxVersion(text);
        const fallback =
          "opskit build falls back to the Engine's classic builder (no RUN --mount, heredocs or build secrets)";
        const hint = 'install the docker buildx plugin, 0.12 or later (docker-buildx-plugin; Debian: docker-buildx)';
        if (result.notFound) return { status: 'fail', detail: `the docker CLI is not on PATH: ${fallback}`, hint };
        if (result.failed || !version)
          return {
            status: 'fail',
            detail: `docker buildx does not answer (${text.split('\n')[0] || `exit ${result.exitCode}`}): ${fallback}`,
            hint,
          };
        if (!buildxSupported(version))
          return {
            status: 'fail',
            version,
            detail: `docker buildx ${version} is older than 0.12 (no --progress=rawjson): ${fallback}`,
            hint,
          };
        return {
          status: 'pass',
          version,
          detail: `docker buildx ${version}: opskit build uses BuildKit`,
          data: { version },
        };
      },
    },
    {
      name: 'nginx',
      required: config.nginx.mode === 'host',
      run: (ctx, cfg) => toolVersion(ctx, 'nginx', cfg.nginx.bin, ['-v'], timeoutMs),
    },
    {
      name: 'pg_dump',
      required: false,
      run: (ctx) => toolVersion(ctx, 'the PostgreSQL client (pg_dump)', 'pg_dump', ['--version'], timeoutMs),
    },
    {
      name: 'psql',
      required: false,
      run: (ctx) => toolVersion(ctx, 'the PostgreSQL client (psql)', 'psql', ['--version'], timeoutMs),
    },
    {
      name: 'ngrok',
      required: ngrokNamed !== undefined,
      async run(ctx) {
        const bin = ngrokNamed ?? (await ctx.exec.which('ngrok', ctx.loaded?.env ?? ctx.processEnv));
        if (!bin) {
          // No agent: tunnels use the SDK, whose native binary is an optional dependency; is it here?
          try {
            await ctx.ngrok();
            return {
              status: 'pass',
              detail:
                'no ngrok agent binary (NGROK_BIN, ngrok.bin or PATH): tunnels use the in-process @ngrok/ngrok SDK, which loads',
            };
          } catch (error) {
            return {
              status: 'fail',
              detail: `no ngrok agent binary, and the @ngrok/ngrok SDK does not load here: ${(error as Error).message.split('\n')[0]}`,
              hint: 'set NGROK_BIN to an ngrok v3 agent, or reinstall with optional dependencies',
            };
          }
        }
        return toolVersion(ctx, 'the ngrok v3 agent', bin, ['version'], timeoutMs);
      },
    },
    {
      // Secrets at rest (issue 15): an env file with a secret, open to group or others, is a warning.
      name: 'env-files',
      required: false,
      async run(ctx) {
        const files = await readEnvFiles(ctx.fs, projectRoot(ctx), (file) => shownPath(ctx.cwd, file));
        const exposed = exposedEnvFiles(files);
        const withSecrets = files.filter((f) => secretEnvKeys(f.text).length > 0);
        const data = {
          files: files.map((f) => ({ file: f.file, mode: octalMode(f.mode), secrets: secretEnvKeys(f.text) })),
        };
        if (exposed.length > 0) {
          return {
            status: 'fail',
            detail: exposed
              .map((e) => `${e.file} is ${e.mode}, open to group or others, and holds ${e.keys.join(', ')}`)
              .join('; '),
            hint: `chmod 600 ${exposed.map((e) => e.file).join(' ')}`,
            data: { ...data, exposed },
          };
        }
        if (withSecrets.length === 0) {
          return {
            status: 'pass',
            detail: files.length ? `no secret in ${files.map((f) => f.file).join(', ')}` : 'no env files',
            data,
          };
        }
        return {
          status: 'pass',
          detail: `owner only: ${withSecrets.map((f) => `${f.file} (${octalMode(f.mode)})`).join(', ')}`,
          data,
        };
      },
    },
    {
      // The app's unix socket (socket and relay switches): other host users must not reach it, nor write beside it.
      name: 'sockets',
      required: false,
      async run(ctx, cfg) {
        if (cfg.cutover.switch === 'reload')
          return { status: 'skip', detail: 'cutover.switch: reload (no unix sockets)' };
        const dir = path.resolve(projectRoot(ctx), cfg.paths.sockets);
        const show = (file: string) => shownPath(ctx.cwd, file);
        if ((await ctx.fs.fileMode(dir)) === undefined) {
          return {
            status: 'skip',
            detail: `${show(dir)} does not exist yet (deploy creates it, inside a private parent)`,
          };
        }
        const chain: Array<{ dir: string; mode: number }> = [];
        for (let d = dir; ; d = path.dirname(d)) {
          chain.unshift({ dir: d, mode: (await ctx.fs.fileMode(d)) ?? 0 });
          if (path.dirname(d) === d) break;
        }
        const guard = socketsGuard(chain);
        if (guard) {
          return {
            status: 'pass',
            detail: `other users cannot pass ${show(guard.dir)} (${guard.mode}) to reach ${show(dir)}`,
            data: { dir, guard },
          };
        }
        const parent = path.dirname(dir);
        const ownParent = isDedicatedParent(await ctx.fs.listDir(parent), dir);
        return {
          status: 'fail',
          detail:
            `other local users can connect to the app's socket in ${show(dir)} and create files there: ` +
            'every directory down to it lets them pass',
          hint: ownParent
            ? `chmod o-rwx ${show(parent)}`
            : 'keep the sockets in a private directory of their own: paths.sockets: run/sockets, mounted as ' +
              '../run/sockets:/run/opskit in the compose file (what opskit init writes); the next deploy makes run/ private',
          data: { dir },
        };
      },
    },
    {
      name: 's3',
      required: config.s3.bucket !== undefined,
      async run(ctx, cfg) {
        if (!cfg.s3.bucket)
          return { status: 'skip', detail: 'no bucket configured (s3.bucket, OPSKIT_S3_BUCKET): backups stay local' };
        const allEnv = ctx.loaded?.env ?? ctx.processEnv;
        let credentials = s3CredentialSource(cfg, allEnv);
        if (!credentials) {
          const home = allEnv.HOME ?? '/root';
          const file = allEnv.AWS_SHARED_CREDENTIALS_FILE ?? path.join(home, '.aws', 'credentials');
          if (await ctx.fs.exists(file)) credentials = `profile ${allEnv.AWS_PROFILE ?? 'default'} in ${file}`;
        }
        if (!credentials) {
          return {
            status: 'fail',
            detail: `bucket ${cfg.s3.bucket}: no credentials found`,
            hint: 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or an AWS profile',
          };
        }
        if (!cfg.s3.endpoint)
          return {
            status: 'pass',
            detail: `bucket ${cfg.s3.bucket} on AWS (${cfg.s3.region}), credentials from ${credentials}`,
          };
        try {
          const response = await ctx.http.request(cfg.s3.endpoint, { method: 'GET', timeoutMs });
          return {
            status: 'pass',
            detail: `bucket ${cfg.s3.bucket} at ${cfg.s3.endpoint} (answered HTTP ${response.status}), credentials from ${credentials}`,
            data: { endpoint: cfg.s3.endpoint, httpStatus: response.status },
          };
        } catch (error) {
          const e = error as { code?: string; message?: string; cause?: { code?: string; message?: string } };
          return {
            status: 'fail',
            detail: `endpoint ${cfg.s3.endpoint} does not answer: ${e.code ?? e.cause?.code ?? e.cause?.message ?? e.message}`,
            hint: 'check s3.endpoint / AWS_ENDPOINT_URL_S3',
          };
        }
      },
    },
  ];
}

export interface DoctorSummary {
  pass: number;
  warn: number;
  fail: number;
  skip: number;
}

/** Pure: a failed check that is not required counts as a warning; the run fails only on a required one. */
export function finishCheck(
  check: Pick<DoctorCheck, 'name' | 'required'>,
  outcome: CheckOutcome,
  durationMs: number,
): DoctorCheckResult {
  const status: CheckStatus = outcome.status === 'fail' && !check.required ? 'warn' : outcome.status;
  return {
    name: check.name,
    required: check.required,
    status,
    version: outcome.version ?? null,
    detail: outcome.detail,
    hint: outcome.hint ?? null,
    durationMs: Math.round(durationMs),
    ...(outcome.data ? { data: outcome.data } : {}),
  };
}

export function summarize(checks: readonly DoctorCheckResult[]): DoctorSummary {
  const summary: DoctorSummary = { pass: 0, warn: 0, fail: 0, skip: 0 };
  for (const check of checks) summary[check.status]++;
  return summary;
}
