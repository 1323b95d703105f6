import { OperationError } from '../errors.js';
import type { NginxOps } from '../platform/nginx.js';
import type { Context } from '../runtime/context.js';
import { formatDuration } from '../runtime/duration.js';
import { pollUntil } from '../runtime/poll.js';

/**
 * The platform as its users meet it: the health path through nginx must answer 2xx (with a TCP-only
 * health check, anything but a 5xx: the app may have no such path). A web service that
 * is healthy on its own address behind an nginx that answers 502 (an upstream that names the wrong
 * server) is a failed deploy.
 */
export async function verifyFront(
  ctx: Context,
  nginx: NginxOps,
  step: { path: string; timeoutMs: number; accept: '2xx' | 'not-5xx' },
): Promise<void> {
  const url = `${await nginx.baseUrl()}${step.path}`;
  const poll = await pollUntil(
    ctx.clock,
    { timeoutMs: step.timeoutMs, initialDelayMs: 50, maxDelayMs: 500 },
    async () => {
      try {
        const r = await ctx.http.request(url, { timeoutMs: 2000 });
        if (step.accept === '2xx' ? r.status >= 200 && r.status < 300 : r.status < 500)
          return { done: true, value: r.status };
        return {
          done: false,
          last: `HTTP ${r.status}${r.body.trim() ? `: ${r.body.trim().replace(/\s+/g, ' ').slice(0, 200)}` : ''}`,
        };
      } catch (error) {
        return { done: false, last: (error as Error).message };
      }
    },
  );
  if (!poll.ok) {
    throw new OperationError(
      'E_FRONT_FAILED',
      `the web service is healthy, but the platform does not answer through nginx: GET ${url} gave ${poll.last} for ${formatDuration(step.timeoutMs)}`,
      {
        hint: 'look at nginx: its upstream file (nginx.upstreamFile), its error log, and `opskit health`',
      },
    );
  }
}
