import { OperationError } from '../errors.js';
import type { Context } from '../runtime/context.js';
import { queryAgentApi } from './drivers.js';
import { readState, supervisorAlive, tunnelPaths } from './files.js';
import { parsePid, type ResolvedUrl, resolveUrl } from './plan.js';

/** `opskit tunnel url`: the public URL, from the URL file or asked fresh from the agent. */

export async function runUrl(ctx: Context, fresh: boolean): Promise<ResolvedUrl> {
  const paths = tunnelPaths(ctx);
  const fileUrl = (await ctx.fs.readText(paths.urlFile))?.trim();
  const pid = parsePid(await ctx.fs.readText(paths.pidFile));
  const writerAlive = supervisorAlive(ctx, pid);
  const state = await readState(ctx, paths);
  let api: string | undefined;
  if (!(fileUrl && writerAlive)) {
    const webAddr = state?.webAddr ?? ctx.loaded!.config.ngrok.webAddr;
    const port = state?.port ?? ctx.loaded!.config.tunnel.port;
    const answer = await queryAgentApi(ctx.http, webAddr, port);
    // An agent started by hand may forward some other port: any tunnel it lists is better than none.
    api =
      answer.listed?.publicUrl ??
      (answer.answering ? (await queryAgentApi(ctx.http, webAddr, undefined)).listed?.publicUrl : undefined);
  }
  const cached = (await ctx.fs.readText(paths.staleUrlFile))?.trim() || state?.publicUrl;
  const resolved = resolveUrl({
    ...(fileUrl ? { file: { url: fileUrl, writerAlive } } : {}),
    ...(api ? { api } : {}),
    ...(cached ? { cached } : {}),
  });
  if (!resolved)
    throw new OperationError(
      'E_NO_TUNNEL_URL',
      'no public URL: no live URL file, no agent API answering, nothing cached',
      { hint: 'opskit tunnel start --detach --monitor' },
    );
  if (resolved.stale && fresh)
    throw new OperationError(
      'E_TUNNEL_URL_STALE',
      `only a stale URL is known (${resolved.url}): the tunnel is not running`,
      { hint: 'opskit tunnel start --detach --monitor' },
    );
  if (resolved.stale) ctx.reporter.warn(`the tunnel is not running: ${resolved.url} is the last URL it had (stale)`);
  return resolved;
}
