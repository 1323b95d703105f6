import path from 'node:path';
import { OperationError } from '../errors.js';
import type { Context } from '../runtime/context.js';
import { formatDuration, parseDuration } from '../runtime/duration.js';
import { pollUntil } from '../runtime/poll.js';
import type { Color } from './plan.js';

/**
 * How a switch proves itself, on either engine: which colour an answer came from, the new colour's socket
 * asked before the link moves, and the answers through nginx's front after it.
 */

/** The colour an answer came from: the X-App-Color header, or the JSON body's `color`. */
export function answeredColor(response: { headers: Record<string, string>; body: string }): string | undefined {
  const header = response.headers['x-app-color'];
  if (header) return header;
  try {
    const color = (JSON.parse(response.body) as { color?: unknown }).color;
    return typeof color === 'string' ? color : undefined;
  } catch {
    return undefined;
  }
}

/** Pure: an answer that shows the colour serves: it names the colour, or (TCP-checked apps) is any non-5xx. */
export function servesColor(
  response: { status: number; headers: Record<string, string>; body: string },
  color: Color,
  tcpOnly: boolean,
): 'named' | 'unnamed' | undefined {
  const said = answeredColor(response);
  if (response.status === 200 && said === color) return 'named';
  if (tcpOnly && said === undefined && response.status < 500) return 'unnamed';
  return undefined;
}

/**
 * Before the link moves: an answer through the socket file itself, the exact path nginx's next connection
 * takes (the socket, the relay and its name lookup when there is one, the app's workers). A switch never
 * points nginx at a socket that has not answered yet: the health gate proved the app, this proves the path.
 */
export async function answersThroughSocket(ctx: Context, socketPath: string, color: Color): Promise<void> {
  const config = ctx.loaded!.config;
  const tcpOnly = config.deploy.healthCheck === 'tcp';
  const timeoutMs = parseDuration(config.cutover.verifyTimeout, 'cutover.verifyTimeout');
  const poll = await pollUntil(ctx.clock, { timeoutMs, initialDelayMs: 20, maxDelayMs: 200 }, async () => {
    try {
      const r = await ctx.http.request(`http://localhost${config.cutover.verifyPath}`, {
        socketPath,
        timeoutMs: 2000,
      });
      return servesColor(r, color, tcpOnly)
        ? { done: true, value: true }
        : { done: false, last: `HTTP ${r.status} from ${answeredColor(r) ?? 'an unnamed colour'}` };
    } catch (error) {
      return { done: false, last: (error as Error).message };
    }
  });
  if (!poll.ok)
    throw new OperationError(
      'E_SOCKET_SILENT',
      `${color} did not answer ${config.cutover.verifyPath} through ${path.basename(socketPath)} within ${formatDuration(timeoutMs)} (last: ${poll.last}); the live colour was not touched`,
      { hint: "see the colour's logs (and its relay's, with cutover.switch: relay)" },
    );
}

/**
 * After the switch: answers through nginx's front must come from `color` within cutover.verifyTimeout;
 * otherwise `undo` switches back and the switch fails (E_VERIFY_FAILED).
 */
export async function verifyThroughFront(
  ctx: Context,
  base: string,
  color: Color,
  undo: () => Promise<void>,
): Promise<void> {
  const config = ctx.loaded!.config;
  const verifyMs = parseDuration(config.cutover.verifyTimeout, 'cutover.verifyTimeout');
  const tcpOnly = config.deploy.healthCheck === 'tcp';
  const verified = await pollUntil(
    ctx.clock,
    { timeoutMs: verifyMs, initialDelayMs: 20, maxDelayMs: 200 },
    async () => {
      try {
        const r = await ctx.http.request(`${base}${config.cutover.verifyPath}`, { timeoutMs: 2000 });
        // An app checked by a TCP connect may have no path that names its colour: any answer but a 5xx.
        const serves = servesColor(r, color, tcpOnly);
        return serves
          ? { done: true, value: serves }
          : { done: false, last: `HTTP ${r.status} from ${answeredColor(r) ?? 'an unnamed colour'}` };
      } catch (error) {
        return { done: false, last: (error as Error).message };
      }
    },
  );
  if (!verified.ok) {
    await undo();
    throw new OperationError(
      'E_VERIFY_FAILED',
      `after the switch, answers through nginx did not come from ${color} within ${formatDuration(verifyMs)} (last: ${verified.last}); switched back`,
      {
        hint: `does ${config.cutover.verifyPath} report its colour (JSON "color" or X-App-Color)? is nginx.url right?`,
      },
    );
  }
  if (verified.value === 'unnamed') {
    ctx.reporter.info(
      `${config.cutover.verifyPath} through nginx names no colour: verified that nginx answers (HTTP < 500), not which colour does (deploy.healthCheck: tcp)`,
    );
  }
}
