import { exitCodeFor } from './cli/exit.js';
import { processIo } from './cli/run.js';
import { createProgram } from './program.js';

// A reader that stops early (`opskit --help | head`) closes the pipe: that is not an error of ours.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
}

// The one place that exits: every error has been turned into an exit code by exitCodeFor.
const argv = process.argv.slice(2);
const io = processIo(argv);
let code = 0;
try {
  await createProgram(io).parseAsync(argv, { from: 'user' });
} catch (error) {
  code = exitCodeFor(error, io);
}
// Let piped stdout drain before exiting (a JSON document must never be cut short).
await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
process.exit(code);
