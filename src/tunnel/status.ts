import type { ChalkInstance } from 'chalk';
import type { Context } from '../runtime/context.js';
import { formatDuration } from '../runtime/duration.js';
import { queryAgentApi } from './drivers.js';
import { readState, supervisorAlive, tunnelPaths } from './files.js';
import { parsePid, type TunnelStatusReport, tunnelStatus } from './plan.js';

/** `opskit tunnel status`: the supervisor, the agent and the URL, as the files and processes say. */

export async function runStatus(ctx: Context): Promise<TunnelStatusReport> {
  const paths = tunnelPaths(ctx);
  const pid = parsePid(await ctx.fs.readText(paths.pidFile));
  const alive = supervisorAlive(ctx, pid);
  const state = await readState(ctx, paths);
  const api =
    alive && state && state.pid === pid && state.driver === 'agent'
      ? await queryAgentApi(ctx.http, state.webAddr ?? ctx.loaded!.config.ngrok.webAddr, state.port)
      : undefined;
  return tunnelStatus({
    ...(pid !== undefined ? { pid } : {}),
    alive,
    ...(state ? { state } : {}),
    ...(api ? { api } : {}),
    nowMs: ctx.clock.now().getTime(),
  });
}

export function renderStatus(report: TunnelStatusReport, c: ChalkInstance): string {
  const rows: Array<[string, string]> = [
    ['tunnel', report.up ? c.green('up') : c.red('down')],
    ['driver', report.driver ?? '-'],
    [
      'process',
      report.process.pid !== undefined
        ? `pid ${report.process.pid} ${report.process.alive ? 'running' : 'not running'}`
        : 'none',
    ],
    [
      'agent API',
      report.api === null
        ? report.driver === 'sdk'
          ? 'n/a (in-process SDK)'
          : '-'
        : report.api.answering
          ? 'answering'
          : `not answering${report.api.error ? ` (${report.api.error})` : ''}`,
    ],
    ['public URL', report.publicUrl ?? '-'],
    ['uptime', report.uptimeMs !== undefined ? formatDuration(report.uptimeMs) : '-'],
    ['reconnects', String(report.reconnects)],
    ['monitor', report.monitor ? 'on' : 'off'],
  ];
  if (report.lastCheck)
    rows.push([
      'last check',
      `${report.lastCheck.ok ? 'ok' : 'failed'} at ${report.lastCheck.at}: ${report.lastCheck.detail}`,
    ]);
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
  for (const problem of report.problems) lines.push(c.yellow(`! ${problem}`));
  return `${lines.join('\n')}\n`;
}
