import path from 'node:path';
import { ConfigError, OperationError, UsageError } from '../errors.js';
import { type Context, withMutation } from '../runtime/context.js';
import {
  type Manifest,
  objectKey,
  type PruneDecision,
  parseBackupName,
  planPrune,
  type RetentionPolicy,
} from './plan.js';
import { type BackupFlags, listLocal, listRemote, s3Cause, type Target, target } from './target.js';

/** `opskit backup prune`: the retention policy applied to both places, never the newest good backup. */

export interface PruneResult {
  dryRun: boolean;
  local: PruneDecision[];
  s3: PruneDecision[];
  deleted: { local: string[]; s3: string[] };
}

export function policyFrom(
  ctx: Context,
  o: {
    keepDays?: string | undefined;
    keepDaily?: string | undefined;
    keepWeekly?: string | undefined;
    keepMonthly?: string | undefined;
  },
): RetentionPolicy {
  const b = ctx.loaded!.config.backup;
  const num = (v: string | undefined, flag: string, fallback: number | undefined) => {
    if (v === undefined) return fallback;
    if (!/^\d+$/.test(v) || Number(v) < 1)
      throw new UsageError(`${flag} ${v}: expected a whole number of at least 1`, { code: 'E_BAD_FLAG' });
    return Number(v);
  };
  return {
    keepDays: num(o.keepDays, '--keep-days', b.retentionDays),
    keepDaily: num(o.keepDaily, '--keep-daily', b.keepDaily),
    keepWeekly: num(o.keepWeekly, '--keep-weekly', b.keepWeekly),
    keepMonthly: num(o.keepMonthly, '--keep-monthly', b.keepMonthly),
  };
}

export async function prune(ctx: Context, t: Target, policy: RetentionPolicy): Promise<PruneResult> {
  if (t.s3 && t.s3.prefix === '')
    throw new ConfigError(
      's3.prefix: prune only works under a non-empty prefix (e.g. myapp/), so it never judges objects that are not ours',
      { code: 'E_EMPTY_PREFIX' },
    );
  // Both listings first: when either fails, nothing is deleted anywhere.
  let local: Awaited<ReturnType<typeof listLocal>>;
  let remote: Awaited<ReturnType<typeof listRemote>>;
  try {
    local = await listLocal(ctx, t);
    remote = await listRemote(t);
  } catch (error) {
    throw new OperationError(
      'E_PRUNE_LISTING',
      `a listing failed, so nothing was deleted: ${ctx.redactor.scrub(s3Cause(error))}`,
    );
  }
  const now = ctx.clock.now();
  const judge = (entries: Array<{ name: string; sizeBytes: number; manifest: Manifest | undefined }>) =>
    planPrune(
      entries
        .filter((e) => e.manifest && e.manifest.sizeBytes === e.sizeBytes)
        .map((e) => ({ name: e.name, takenAt: parseBackupName(e.name)!.takenAt })),
      policy,
      now,
    );
  const localPlan = judge(local);
  const s3Plan = judge(remote);
  const deleted = { local: [] as string[], s3: [] as string[] };
  if (!ctx.globals.dryRun) {
    for (const d of localPlan.filter((d) => !d.keep)) {
      await ctx.fs.remove(path.join(t.dir, d.name));
      await ctx.fs.remove(path.join(t.dir, `${d.name}.json`));
      deleted.local.push(d.name);
    }
    const keys = s3Plan.filter((d) => !d.keep).map((d) => objectKey(t.s3!.prefix, d.name));
    if (keys.length) {
      await (await t.s3!.adapter()).remove(keys);
      deleted.s3.push(...s3Plan.filter((d) => !d.keep).map((d) => d.name));
    }
  }
  for (const d of [...localPlan, ...s3Plan].filter((d) => !d.keep))
    ctx.reporter.info(`${ctx.globals.dryRun ? 'would delete' : 'deleted'} ${d.name}`);
  return { dryRun: ctx.globals.dryRun, local: localPlan, s3: s3Plan, deleted };
}

export async function runPrune(ctx: Context, flags: BackupFlags & { policy: RetentionPolicy }): Promise<PruneResult> {
  const t = target(ctx, flags);
  return withMutation(ctx, 'backup prune', () => prune(ctx, t, flags.policy));
}

export function renderPrune(r: PruneResult): string {
  const lines = [];
  for (const [where, plan] of [
    ['local', r.local],
    ['s3', r.s3],
  ] as const) {
    for (const d of plan)
      lines.push(
        `${where.padEnd(5)} ${d.keep ? 'keep  ' : r.dryRun ? 'WOULD DELETE' : 'delete'} ${d.name}${d.keep ? `  (${d.reasons.join('; ')})` : ''}`,
      );
  }
  return lines.length ? lines.join('\n') : 'no good backups to judge';
}
