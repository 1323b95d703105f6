import path from 'node:path';
import type { ChalkInstance } from 'chalk';
import { describeCli } from '../adapters/compose.js';
import type { SwarmNode } from '../adapters/swarm.js';
import { openSwarm } from '../platform/engine/open.js';
import { describeSwarm } from '../platform/engine/swarm.js';
import { colorService } from '../platform/engine/swarm-colors.js';
import { type SwarmServiceStatus, serviceStatus } from '../platform/engine/swarm-state.js';
import { readState } from '../platform/state.js';
import { type Context, projectPath } from '../runtime/context.js';
import { type Color, type CutoverState, cutoverState } from './plan.js';
import { setup } from './switch.js';

export interface StatusReport {
  project: string;
  engine: 'compose' | 'swarm';
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
  /** engine: swarm: the cluster's nodes, the project's services with their tasks, and where nginx answers. */
  nodes?: Array<
    Pick<SwarmNode, 'hostname' | 'role' | 'availability' | 'state' | 'address' | 'leader' | 'engineVersion'>
  >;
  services?: SwarmServiceStatus[];
  front?: string | null;
}

/** On Swarm: nodes, the project's services (found by their opskit.project label) and their tasks. */
async function runSwarmStatus(ctx: Context): Promise<StatusReport> {
  const { config, env } = ctx.loaded!;
  const project = config.compose.project ?? config.project.name!;
  const { swarm, info } = await openSwarm(config, env);
  const [nodes, services] = await Promise.all([swarm.nodes(), swarm.services({ 'opskit.project': project })]);
  const rows = await Promise.all(
    services
      .filter((s) => s.spec.Labels?.['opskit.job'] === undefined)
      .map(async (s) => serviceStatus(s, await swarm.tasks({ service: s.id }), nodes)),
  );
  rows.sort((a, b) => a.service.localeCompare(b.service));
  // The colours: blue is the web service itself, green its second service, once a cutover made it.
  const state = await readState(ctx.fs, projectPath(ctx, path.join(config.paths.state, 'state.json')));
  const cutover = cutoverState(state);
  const live: Color = cutover?.live ?? 'blue';
  const colors = (['blue', 'green'] as const).flatMap((color) => {
    const row = rows.find((r) => r.service === colorService(config.deploy.webService, color));
    if (!row || (!cutover && color !== 'blue')) return [];
    const slot = cutover?.colors[color];
    return [
      {
        color,
        live: color === live,
        image: slot?.image ?? row.image,
        host: row.name,
        state: `${row.running}/${row.desired} running`,
        health: row.desired === 0 ? 'stopped' : row.running >= row.desired ? 'healthy' : 'degraded',
        since: slot?.since ?? services.find((s) => s.name === row.name)?.updatedAt ?? '',
      },
    ];
  });
  return {
    project,
    engine: 'swarm',
    compose: describeSwarm(info, swarm.endpoint),
    live: colors.length ? live : null,
    colors,
    keepOldUntil: cutover?.keepOldUntil ?? null,
    lastSwitch: cutover?.history[0] ?? null,
    nodes: [...nodes]
      .sort((a, b) => a.hostname.localeCompare(b.hostname))
      .map(({ hostname, role, availability, state, address, leader, engineVersion }) => ({
        hostname,
        role,
        availability,
        state,
        address,
        leader,
        engineVersion,
      })),
    services: rows,
    front: config.nginx.url ?? null,
  };
}

export async function runStatus(ctx: Context): Promise<StatusReport> {
  if (ctx.loaded!.config.engine === 'swarm') return runSwarmStatus(ctx);
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
    engine: 'compose',
    compose: describeCli(base.target.cli),
    live: colors?.live ?? null,
    colors: rows,
    keepOldUntil: colors?.keepOldUntil ?? null,
    lastSwitch: colors?.history[0] ?? null,
  };
}

function renderSwarm(report: StatusReport, colour: ChalkInstance): string {
  const lines = [`${report.project} on ${report.compose}${report.front ? `; nginx answers at ${report.front}` : ''}`];
  lines.push('  nodes:');
  for (const n of report.nodes ?? [])
    lines.push(
      `    ${n.state === 'ready' ? colour.green('●') : colour.red('●')} ${n.hostname.padEnd(12)} ${n.address.padEnd(15)} ${n.role}${n.leader ? ' (leader)' : ''}  ${n.state}  ${n.availability}  Engine ${n.engineVersion}`,
    );
  if (report.live) {
    lines.push(`  colours: ${colour.bold(report.live)} is live`);
    for (const c of report.colors)
      lines.push(
        `    ${c.live ? colour.green('●') : '○'} ${c.color.padEnd(5)}  ${c.host}  ${c.image}  ${c.state} (${c.health})${c.live ? '' : '  (rollback target)'}`,
      );
  }
  if (!report.services?.length) lines.push('  services: none deployed yet');
  else lines.push('  services:');
  for (const s of report.services ?? []) {
    const ok = s.running >= s.desired;
    lines.push(
      `    ${ok ? colour.green('●') : colour.yellow('●')} ${s.service.padEnd(9)} ${`${s.running}/${s.desired}`.padEnd(5)} ${s.image}${s.update ? `  (update ${s.update})` : ''}`,
    );
    for (const t of s.tasks)
      lines.push(
        `        ${t.node.padEnd(12)} ${t.state.padEnd(9)} ${t.address ?? ''}${t.error ? `  ${t.error}` : ''}`,
      );
  }
  return lines.join('\n');
}

export function renderStatus(report: StatusReport, colour: ChalkInstance): string {
  if (report.engine === 'swarm') return renderSwarm(report, colour);
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
