import type { ChalkInstance } from 'chalk';
import { describeCli } from '../adapters/compose.js';
import type { Context } from '../runtime/context.js';
import type { Color, CutoverState } from './plan.js';
import { setup } from './switch.js';

export interface StatusReport {
  project: string;
  compose: string;
  live: Color | null;
  colors: Array<{
    color: Color;
    live: boolean;
    image: string;
    host: string;
    state: string;
    health: string;
    since: string;
  }>;
  keepOldUntil: string | null;
  lastSwitch: CutoverState['history'][number] | null;
}

export async function runStatus(ctx: Context): Promise<StatusReport> {
  const base = await setup(ctx, { requireColors: false });
  const colors = base.colors;
  const rows: StatusReport['colors'] = [];
  for (const color of ['blue', 'green'] as const) {
    const slot = colors?.colors[color];
    if (!slot) continue;
    const info = slot.container ? await base.docker.inspectContainer(slot.container) : undefined;
    rows.push({
      color,
      live: colors!.live === color,
      image: slot.image,
      host: slot.host,
      state: info ? info.state : 'stopped',
      health: info ? info.health : 'none',
      since: slot.since,
    });
  }
  return {
    project: base.target.project,
    compose: describeCli(base.target.cli),
    live: colors?.live ?? null,
    colors: rows,
    keepOldUntil: colors?.keepOldUntil ?? null,
    lastSwitch: colors?.history[0] ?? null,
  };
}

export function renderStatus(report: StatusReport, colour: ChalkInstance): string {
  if (!report.live) return `${report.project}: nothing deployed yet`;
  const lines = [`${report.project}: ${colour.bold(report.live)} is live`];
  for (const c of report.colors)
    lines.push(
      `  ${c.live ? colour.green('●') : '○'} ${c.color.padEnd(5)}  ${c.image}  ${c.state}${c.health !== 'none' ? ` (${c.health})` : ''}  since ${c.since}${c.live ? '' : '  (rollback target)'}`,
    );
  if (report.keepOldUntil) lines.push(`  the old colour stops at ${report.keepOldUntil}`);
  if (report.lastSwitch)
    lines.push(
      `  last: ${report.lastSwitch.action} ${report.lastSwitch.from} -> ${report.lastSwitch.to} at ${report.lastSwitch.at}${report.lastSwitch.switchMs !== null ? ` (switch ${report.lastSwitch.switchMs}ms)` : ''}`,
    );
  return lines.join('\n');
}
