import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = path.join(REPO, 'bin', 'opskit');

export interface CliRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** The built CLI, spawned as a user runs it (npm test builds dist/ first). */
export async function opskit(
  args: string[],
  options: { cwd?: string; env?: Record<string, string | undefined>; timeoutMs?: number } = {},
): Promise<CliRun> {
  const result = await execa(BIN, args, {
    cwd: options.cwd ?? REPO,
    env: { NO_COLOR: undefined, FORCE_COLOR: undefined, ...options.env },
    reject: false,
    timeout: options.timeoutMs ?? 60_000,
    stdin: 'ignore',
  });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

export function tempDir(prefix = 'opskit-test-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** stdout of a --json run must be exactly one JSON document. */
export function parseSingleJson(stdout: string): Record<string, unknown> {
  const parsed = JSON.parse(stdout) as Record<string, unknown>;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new Error('stdout is not one JSON object');
  return parsed;
}

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
