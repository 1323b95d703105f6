import type { Command } from 'commander';
import { collect } from './options.js';
import { type Io, runCommand } from './run.js';

export function registerHealth(program: Command, io: Io): void {
  program
    .command('health')
    .description(
      'check containers, HTTP endpoints, PostgreSQL, Redis, disk, resources and nginx; exit 3 when a check fails',
    )
    .option('--url <url>', 'an HTTP(S) endpoint that must answer 2xx (repeatable)', collect)
    .option('--tcp <host:port>', 'a port that must accept connections (repeatable)', collect)
    .option(
      '--container <service|name>',
      'a compose service or container that must be running and healthy (repeatable)',
      collect,
    )
    .option(
      '--postgres <url>',
      'a PostgreSQL URL that must answer SELECT version() (repeatable; the password is never shown)',
      collect,
    )
    .option('--redis <url>', 'a Redis URL that must answer PING (repeatable)', collect)
    .option(
      '--only <kind>',
      'only checks of this kind: http, tcp, container, postgres, redis, disk, resources, nginx, front, service, nodes (repeatable)',
      collect,
    )
    .option('--timeout <duration>', 'timeout of each check (default: health.timeout, 5s)')
    .option('--retries <n>', 'retry a failing check N times (default: health.retries, 0)')
    .option('--retry-delay <duration>', 'between retries (default: health.retryDelay, 1s)')
    .option(
      '--start-period <duration>',
      'failures during this period after the start do not count (Docker HEALTHCHECK semantics)',
    )
    .option('--fail-on <level>', 'fail (default) or warn: a warning exits 3 too')
    .option('--watch <interval>', 're-run every interval until interrupted, printing what changed')
    .action(
      async (
        o: {
          url?: string[];
          tcp?: string[];
          container?: string[];
          postgres?: string[];
          redis?: string[];
          only?: string[];
          timeout?: string;
          retries?: string;
          retryDelay?: string;
          startPeriod?: string;
          failOn?: string;
          watch?: string;
        },
        command: Command,
      ) => {
        await runCommand(command, io, { name: 'health', mutating: false, config: 'required' }, async (ctx) => {
          for (const url of [...(o.postgres ?? []), ...(o.redis ?? []), ...(o.url ?? [])]) ctx.redactor.addUrl(url);
          const { runHealth, renderHealth } = await import('../health/action.js');
          return renderHealth(
            await runHealth(ctx, {
              flags: {
                url: o.url ?? [],
                tcp: o.tcp ?? [],
                container: o.container ?? [],
                postgres: o.postgres ?? [],
                redis: o.redis ?? [],
              },
              only: o.only ?? [],
              timeout: o.timeout,
              retries: o.retries,
              retryDelay: o.retryDelay,
              startPeriod: o.startPeriod,
              failOn: o.failOn,
              watch: o.watch,
            }),
          );
        });
      },
    );
}
