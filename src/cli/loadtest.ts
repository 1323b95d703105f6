import type { Command } from 'commander';
import { collect } from './options.js';
import { type Io, runCommand } from './run.js';

export function registerLoadtest(program: Command, io: Io): void {
  program
    .command('loadtest')
    .description(
      'autocannon against the platform (or --url): latency percentiles, req/s, errors; k6-style thresholds and a baseline that fail a CI step with exit 3',
    )
    .option('--url <url>', 'the target (default: loadtest.url, else nginx and loadtest.path)')
    .option('--connections <n>', 'concurrent connections (default: loadtest.connections, 10)')
    .option('-d, --duration <duration>', 'how long, e.g. 10s, 2m (default: loadtest.duration, 10s)')
    .option('-a, --amount <n>', 'this many requests instead of a duration')
    .option('-R, --rate <n>', 'requests per second over all connections; latencies corrected for coordinated omission')
    .option('-p, --pipelining <n>', 'pipelined requests per connection (default: 1)')
    .option('-t, --timeout <duration>', 'a request without an answer in this long is a timeout (default: 10s)')
    .option('-m, --method <method>', 'GET, POST, ... (default: GET)')
    .option('-H, --header <name: value>', 'a request header (repeatable); credential headers are never shown', collect)
    .option('-b, --body <text|@file>', 'the request body, or @file to read it')
    .option('-s, --scenario <file.yaml>', 'weighted requests (methods, paths, headers, bodies), reported one by one')
    .option(
      '--threshold <expr>',
      'e.g. "p(99)<500", "errors<1%", "rps>1000" (repeatable; with loadtest.thresholds); a breach exits 3',
      collect,
    )
    .option('--baseline <file.json>', 'compare with an earlier run (--out or --json), with significance')
    .option('--max-regression <percent>', 'with --baseline: worse by more than this (e.g. 10%) exits 3')
    .option('-o, --out <file.json>', 'also write the JSON result here (a baseline for the next run)')
    .option(
      '--csv <prefix>',
      'write <prefix>_stats.csv (per request) and <prefix>_stats_history.csv (per second), as Locust does',
    )
    .action(async (o: import('../loadtest/resolve.js').LoadtestFlags, command: Command) => {
      await runCommand<import('../loadtest/action.js').LoadtestResult | import('../loadtest/action.js').LoadtestPlan>(
        command,
        io,
        { name: 'loadtest', mutating: false, config: 'required' },
        async (ctx) => {
          const [{ runLoadtest, loadtestFailure }, { renderLoadtest, renderPlan }] = await Promise.all([
            import('../loadtest/action.js'),
            import('../loadtest/render.js'),
          ]);
          const result = await runLoadtest(ctx, o);
          if ('planned' in result) return { result, render: () => renderPlan(result) };
          const failure = loadtestFailure(result);
          return {
            result,
            render: (reporter) => renderLoadtest(result, reporter.out),
            ...(failure ? { failure } : {}),
          };
        },
      );
    });
}
