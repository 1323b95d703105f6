import { describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../src/cli/exit.js';
import type { Io } from '../../src/cli/run.js';
import { ExitCode, LockHeldError, OperationError, UsageError } from '../../src/errors.js';
import { createProgram } from '../../src/program.js';
import { BufferStream } from '../helpers/fakes.js';
import { runProgram } from '../helpers/program.js';

const run = (args: string[], env: Record<string, string> = {}) => runProgram(args, { env });

describe('createProgram', () => {
  it('has no side effects until parsed', () => {
    const stdout = new BufferStream();
    createProgram({ stdout, stderr: stdout, env: {}, cwd: '/', argv: [] });
    expect(stdout.text).toBe('');
  });

  it('--help and --version exit 0', async () => {
    expect((await run(['--help'])).code).toBe(0);
    const version = await run(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('an unknown command or flag is exit 2 with usage on stderr', async () => {
    const unknown = await run(['deploi']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'deploi'");
    expect(unknown.stderr).toContain('Usage: opskit');
    const flag = await run(['config', '--frobnicate']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain("unknown option '--frobnicate'");
    expect(flag.stdout).toBe('');
    const none = await run([]);
    expect(none.code).toBe(2);
  });

  it('with --json, a usage error is still one JSON document on stdout', async () => {
    const result = await run(['doctor', '--timeout', '5s', '--nope', '--json']);
    expect(result.code).toBe(2);
    expect(JSON.parse(result.stdout)).toMatchObject({
      schemaVersion: 1,
      command: 'doctor',
      ok: false,
      error: { code: 'E_USAGE' },
    });
  });

  it('takes global options after the subcommand too', async () => {
    const result = await run(['config', '--json', '--set', 'backup.retentionDays=3']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      command: 'config',
      ok: true,
      config: { backup: { retentionDays: 3 } },
      sources: { 'backup.retentionDays': 'flag --set backup.retentionDays' },
    });
  });

  it('a malformed --set, a bad duration and a bad config value are exit 2', async () => {
    expect((await run(['config', '--set', 'novalue'])).code).toBe(2);
    expect((await run(['doctor', '--timeout', 'soon'])).code).toBe(2);
    const bad = await run(['config', '--json'], { OPSKIT_COMPOSE_CLI: 'v7' });
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stdout).error.details.problems).toEqual([
      'compose.cli: expected one of auto, v2, v1 (from the environment variable OPSKIT_COMPOSE_CLI)',
    ]);
  });

  it('--verbose shows where each value came from', async () => {
    const result = await run(['config', '--verbose'], { DATABASE_URL: 'postgresql://u:pw-777@h/d' });
    expect(result.stdout).toMatch(/database\.url\s+postgresql:\/\/u:\*\*\*@h\/d\s+env DATABASE_URL/);
    expect(result.stdout).toMatch(/backup\.retentionDays\s+30\s+default/);
    expect(result.stdout + result.stderr).not.toContain('pw-777');
  });
});

describe('exitCodeFor', () => {
  const io = (): Io => ({ stdout: new BufferStream(), stderr: new BufferStream(), env: {}, cwd: '/', argv: [] });
  it('maps typed errors to the exit code contract', () => {
    expect(exitCodeFor(new OperationError('E_X', 'x'), io())).toBe(ExitCode.failed);
    expect(exitCodeFor(new UsageError('x'), io())).toBe(ExitCode.usage);
    expect(exitCodeFor(new LockHeldError('x'), io())).toBe(ExitCode.locked);
    expect(exitCodeFor(new Error('boom'), io())).toBe(ExitCode.failed);
  });
});
