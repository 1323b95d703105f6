import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exitCodeFor } from '../../src/cli/exit.js';
import type { Io } from '../../src/cli/run.js';
import { createProgram } from '../../src/program.js';
import { BufferStream } from './fakes.js';

/** The program in process, as bin.ts runs it: parse, then the exit code the entry point would use. */
export async function runProgram(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) {
  const stdout = new BufferStream();
  const stderr = new BufferStream();
  const cwd = options.cwd ?? mkdtempSync(path.join(os.tmpdir(), 'opskit-prog-'));
  const io: Io = { stdout, stderr, env: { PATH: process.env.PATH, ...options.env }, cwd, argv: args };
  let code = 0;
  try {
    await createProgram(io).parseAsync(args, { from: 'user' });
  } catch (error) {
    code = exitCodeFor(error, io);
  }
  return { code, stdout: stdout.text, stderr: stderr.text };
}
