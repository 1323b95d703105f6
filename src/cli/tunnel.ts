import { type Command, Option } from 'commander';
import { type Io, runCommand } from './run.js';

export function registerTunnel(program: Command, io: Io): void {
  const tunnel = program
    .command('tunnel')
    .description('an ngrok tunnel to the platform: PID and URL files, health checks, auto-reconnect, URL lookup');

  tunnel
    .command('start')
    .description(
      'open the tunnel and hold it until SIGINT/SIGTERM; --monitor checks it and reconnects; --detach runs it in the background',
    )
    .option('--port <port>', 'the local port to forward (default: tunnel.port, 8000)')
    .option('--monitor', 'check the tunnel every interval and reconnect when it fails')
    .option('--detach', 'run in the background; prints the public URL once it is up')
    .addOption(
      new Option(
        '--driver <driver>',
        'agent: an ngrok v3 agent binary (NGROK_BIN, ngrok.bin, PATH); sdk: the in-process @ngrok/ngrok SDK (default: agent when a binary is named)',
      ).choices(['agent', 'sdk']),
    )
    .option('--check-interval <duration>', 'between health checks (default: tunnel.checkInterval, 30s)')
    .option('--check-path <path>', 'asked through the public URL by each check (default: tunnel.checkPath, /health)')
    .option(
      '--reconnect-attempts <n>',
      'consecutive attempts before giving up with exit 1 (default: tunnel.reconnectAttempts, 5)',
    )
    .option(
      '--reconnect-delay <duration>',
      'before the first attempt, then with backoff (default: tunnel.reconnectDelay, 10s)',
    )
    .action(async (o: import('../tunnel/start.js').StartFlags, command: Command) => {
      await runCommand(command, io, { name: 'tunnel start', mutating: true, config: 'required' }, async (ctx) => {
        const { runStart, renderStart } = await import('../tunnel/start.js');
        const result = await runStart(ctx, o);
        return { result, render: () => renderStart(result) };
      });
    });

  tunnel
    .command('url')
    .description(
      "the public URL: from the URL file, else the agent's local API, else the last one cached (stale); exit 1 when none",
    )
    .option('--fresh', 'exit 1 rather than print a stale URL')
    .action(async (o: { fresh?: boolean }, command: Command) => {
      await runCommand(command, io, { name: 'tunnel url', mutating: false, config: 'required' }, async (ctx) => {
        const { runUrl } = await import('../tunnel/url.js');
        const result = await runUrl(ctx, Boolean(o.fresh));
        return { result, render: () => `${result.url}\n` };
      });
    });

  tunnel
    .command('status')
    .description('process, agent API, public URL, uptime, reconnects; exit 3 when the tunnel is down')
    .action(async (_o: unknown, command: Command) => {
      await runCommand(command, io, { name: 'tunnel status', mutating: false, config: 'required' }, async (ctx) => {
        const { runStatus, renderStatus } = await import('../tunnel/status.js');
        const { CheckFailedError } = await import('../errors.js');
        const result = await runStatus(ctx);
        return {
          result,
          render: (reporter) => renderStatus(result, reporter.out),
          ...(result.up
            ? {}
            : {
                failure: new CheckFailedError(`the tunnel is down: ${result.problems.join('; ')}`, {
                  code: 'E_TUNNEL_DOWN',
                }),
              }),
        };
      });
    });

  tunnel
    .command('stop')
    .description(
      'stop the tunnel named by the PID file (SIGTERM, then SIGKILL after --timeout); a stale PID file is cleaned up',
    )
    .option('--timeout <duration>', 'how long to wait for it to stop', '15s')
    .action(async (o: { timeout?: string }, command: Command) => {
      await runCommand(command, io, { name: 'tunnel stop', mutating: false, config: 'required' }, async (ctx) => {
        const { runStop } = await import('../tunnel/stop.js');
        const result = await runStop(ctx, o.timeout);
        return { result, render: () => `${result.message}\n` };
      });
    });
}
