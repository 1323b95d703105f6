import type { ChalkInstance } from 'chalk';
import { formatDuration } from '../runtime/duration.js';
import type { DeployResult } from './action.js';

/** `opskit deploy`'s human answer: what was deployed, the migrations, where the web answers, each step's time. */
export function renderDeploy(result: DeployResult, colour: ChalkInstance): string {
  if (result.plan)
    return `would deploy ${result.image} to project ${result.project} with ${result.compose} (${result.plan.length} steps, listed above)`;
  if (!result.changed)
    return `${colour.green('up to date')}: ${result.image} is already deployed to ${result.project}; nothing changed`;
  return [
    `${colour.green('deployed')} ${result.image} (${result.imageId.slice(7, 19)}) to ${result.project} in ${formatDuration(result.durationMs)}`,
    `  migrations  ${result.migrations.ran ? (result.migrations.applied.length ? `applied ${result.migrations.applied.join(', ')}` : 'none pending') : 'skipped'}`,
    ...(result.web ? [`  web         ${result.web.container} at ${result.web.address}`] : []),
    ...result.steps.map((s) => `  ${formatDuration(s.durationMs).padStart(8)}  ${s.step}`),
  ].join('\n');
}
