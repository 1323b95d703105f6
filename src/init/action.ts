import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { ChalkInstance } from 'chalk';
import { UsageError } from '../errors.js';
import type { PlannedStep } from '../output/plan.js';
import { type Context, projectRoot, withMutation } from '../runtime/context.js';
import { VERSION } from '../version.js';
import {
  engineVars,
  filesFor,
  gunicornWorkers,
  projectNameFrom,
  renderTemplate,
  type SwarmSite,
  type TemplateVars,
  templateMode,
  templatePath,
} from './templates.js';

export interface InitInput {
  force: boolean;
  workers?: number | undefined;
  /** Also write the sample platform (app, migrations, .env, .env.offline). */
  example: boolean;
  /** Where to write; default: the working directory. */
  directory?: string | undefined;
  /** compose (default) or swarm: the compose file, nginx.conf and opskit.yaml for that engine. */
  engine?: 'compose' | 'swarm';
  /** swarm: the registry and the edge node's address (from `.lab/env` or the environment). */
  site?: SwarmSite;
}

export interface InitResult {
  directory: string;
  project: string;
  example: boolean;
  engine: 'compose' | 'swarm';
  workers: number;
  files: Array<{ path: string; action: 'created' | 'overwritten'; bytes: number; mode: string }>;
  plan?: PlannedStep[];
}

export interface RenderedFile {
  path: string;
  content: string;
  exists: boolean;
  /** The file's mode; 0600 for one that holds secrets. Default 0644. */
  mode?: number;
}

const octal = (mode: number) => `0${(mode & 0o777).toString(8)}`;

/** Pure: which files to write, or the list of conflicts that stops the run. */
export function planInit(
  files: readonly RenderedFile[],
  force: boolean,
): { steps: PlannedStep[]; conflicts: string[] } {
  const conflicts = files.filter((f) => f.exists).map((f) => f.path);
  if (conflicts.length > 0 && !force) return { steps: [], conflicts };
  return {
    steps: files.map((f) => ({
      kind: 'write',
      path: f.path,
      bytes: Buffer.byteLength(f.content),
      overwrite: f.exists,
      ...(f.mode !== undefined && f.mode !== 0o644
        ? { description: `mode ${octal(f.mode)}, owner only: secrets go here` }
        : {}),
    })),
    conflicts: [],
  };
}

export async function runInit(baseCtx: Context, input: InitInput): Promise<InitResult> {
  // The project is the target directory: its lock, its audit log.
  const ctx: Context = input.directory ? { ...baseCtx, cwd: path.resolve(baseCtx.cwd, input.directory) } : baseCtx;
  const root = projectRoot(ctx);
  const cpus = ctx.system.cpuCount();
  const vars: TemplateVars = {
    project: projectNameFrom(root),
    workers: input.workers ?? gunicornWorkers(cpus),
    cpus,
    upstream: 'unix:/run/opskit/live.sock',
    version: VERSION,
    dbPassword: randomBytes(18).toString('base64url'),
    ...engineVars(
      input.engine ?? 'compose',
      projectNameFrom(root),
      input.site ?? { registry: undefined, edge: undefined },
    ),
  };
  ctx.redactor.add(vars.dbPassword);
  const rendered: RenderedFile[] = [];
  for (const file of filesFor(input.engine ?? 'compose', input.example)) {
    const text = await ctx.fs.readText(templatePath(file));
    if (text === undefined) throw new Error(`the template ${file.source} is missing from the opskit installation`);
    rendered.push({
      path: file.destination,
      content: renderTemplate(text, vars, file.source),
      exists: await ctx.fs.exists(path.join(root, file.destination)),
      mode: templateMode(file),
    });
  }
  const { steps, conflicts } = planInit(rendered, input.force);
  if (conflicts.length > 0) {
    throw new UsageError(`init would overwrite ${conflicts.length} existing file(s): ${conflicts.join(', ')}`, {
      code: 'E_INIT_EXISTS',
      hint: 'nothing was written; pass --force to overwrite them',
      details: { existing: conflicts },
    });
  }
  const result: InitResult = {
    directory: root,
    project: vars.project,
    example: input.example,
    engine: vars.engine,
    workers: vars.workers,
    files: rendered.map((f) => ({
      path: f.path,
      action: f.exists ? 'overwritten' : 'created',
      bytes: Buffer.byteLength(f.content),
      mode: octal(f.mode ?? 0o644),
    })),
  };
  if (ctx.globals.dryRun) {
    for (const step of steps) ctx.reporter.dryRun(step);
    return { ...result, plan: steps };
  }
  return withMutation(ctx, 'init', async () => {
    // Decided again under the lock: another init may have written these since the check above.
    if (!input.force) {
      const late: string[] = [];
      for (const file of rendered)
        if (!file.exists && (await ctx.fs.exists(path.join(root, file.path)))) late.push(file.path);
      if (late.length > 0) {
        throw new UsageError(`init would overwrite ${late.length} file(s) written meanwhile: ${late.join(', ')}`, {
          code: 'E_INIT_EXISTS',
          hint: 'nothing was written; pass --force to overwrite them',
        });
      }
    }
    for (const file of rendered) {
      await ctx.fs.writeFileAtomic(path.join(root, file.path), file.content, { mode: file.mode ?? 0o644 });
      ctx.reporter.debug(`wrote ${file.path}`);
    }
    return result;
  });
}

export function renderInitResult(result: InitResult, colour: ChalkInstance): string {
  const verb = result.plan ? 'would write' : 'wrote';
  const lines = result.files.map(
    (f) => `  ${f.action === 'overwritten' ? colour.yellow('overwrote') : colour.green('created  ')} ${f.path}`,
  );
  return [
    `${verb} ${result.files.length} files for project "${result.project}" in ${result.directory} (gunicorn workers: ${result.workers})`,
    ...(result.plan ? result.files.map((f) => `  ${f.path}`) : lines),
    '',
    result.example && result.engine === 'swarm'
      ? `next: cd ${result.directory} && opskit deploy --build   (on the swarm DOCKER_HOST names; docs/swarm.md)`
      : result.example
        ? `next: cd ${result.directory} && opskit deploy -e offline --build   (offline test images; without -e offline: the registry images)`
        : 'next: copy .env.example to .env and fill it in, then `opskit doctor` and `opskit config`',
  ].join('\n');
}
