import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { BIN, opskit, parseSingleJson, REPO, tempDir } from '../helpers/cli.js';
import { ANSI } from '../helpers/fakes.js';

describe('the built opskit binary', () => {
  it('--help and --version exit 0', async () => {
    const help = await opskit(['--help']);
    expect(help.exitCode).toBe(0);
    for (const command of ['init', 'config', 'doctor']) expect(help.stdout).toContain(command);
    const version = await opskit(['--version']);
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')).version);
  });

  it('unknown command or flag: usage on stderr, nothing on stdout, exit 2', async () => {
    for (const args of [['frobnicate'], ['doctor', '--frobnicate'], []]) {
      const r = await opskit(args);
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(r.stderr).toContain('Usage: opskit');
      expect(r.stdout).toBe('');
    }
  });

  it('--json: stdout is exactly one JSON document without ANSI codes, on success and on failure', async () => {
    const dir = tempDir();
    const cases: Array<{ args: string[]; code: number; env?: Record<string, string> }> = [
      { args: ['config', '--json'], code: 0 },
      { args: ['doctor', '--json'], code: 0 },
      { args: ['init', '--dry-run', '--json'], code: 0 },
      { args: ['config', '--json'], code: 2, env: { OPSKIT_COMPOSE_CLI: 'v9' } },
      { args: ['doctor', '--json'], code: 3, env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock' } },
      { args: ['nope', '--json'], code: 2 },
      { args: ['-c', 'missing.yaml', 'config', '--json'], code: 2 },
    ];
    for (const c of cases) {
      // FORCE_COLOR would make chalk colour anything it may: --json must not care.
      const r = await opskit(c.args, { cwd: dir, env: { FORCE_COLOR: '3', ...c.env } });
      expect(r.exitCode, c.args.join(' ')).toBe(c.code);
      expect(r.stdout, c.args.join(' ')).not.toMatch(ANSI);
      const doc = parseSingleJson(r.stdout);
      expect(doc.schemaVersion).toBe(1);
      expect(doc.ok).toBe(c.code === 0);
      if (c.code !== 0) expect(doc.error).toMatchObject({ code: expect.any(String), message: expect.any(String) });
    }
  });

  it('without a TTY: plain timestamped progress lines on stderr, no colour', async () => {
    const r = await opskit(['doctor'], { cwd: tempDir() });
    expect(r.stderr).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z step {2}running \d+ checks$/m);
    expect(r.stderr + r.stdout).not.toMatch(ANSI);
  });

  it('on a TTY: colours and a spinner, unless --no-color / NO_COLOR', async () => {
    const dir = tempDir();
    const pty = path.join(REPO, 'tests/fixtures/pty-run.py');
    const tty = await execa('python3', [pty, BIN, 'doctor'], {
      cwd: dir,
      reject: false,
      env: { TERM: 'xterm' },
      timeout: 30_000,
    });
    expect(tty.exitCode).toBe(0);
    expect(tty.stdout).toMatch(ANSI);
    expect(tty.stdout).toContain('\u001b[?25l'); // ora hides the cursor while it spins
    expect(tty.stdout).not.toMatch(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z step/);
    const plain = await execa('python3', [pty, BIN, 'doctor', '--no-color'], {
      cwd: dir,
      reject: false,
      env: { TERM: 'xterm' },
      timeout: 30_000,
    });
    expect(plain.stdout).not.toMatch(ANSI);
    const noColorEnv = await execa('python3', [pty, BIN, 'doctor'], {
      cwd: dir,
      reject: false,
      env: { TERM: 'xterm', NO_COLOR: '1' },
      timeout: 30_000,
    });
    expect(noColorEnv.stdout).not.toMatch(ANSI);
    // --json on a TTY: no spinner, stdout still one document
    const json = await execa('python3', [pty, BIN, 'doctor', '--json', '--quiet'], {
      cwd: dir,
      reject: false,
      env: { TERM: 'xterm' },
      timeout: 30_000,
    });
    expect(json.stdout).not.toContain('\u001b[?25l');
  });

  it('a stack trace only with --verbose', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'opskit.yaml'), 'backup:\n  retentionDays: zero\n');
    const quiet = await opskit(['config'], { cwd: dir });
    expect(quiet.exitCode).toBe(2);
    expect(quiet.stderr).toContain('backup.retentionDays: expected a positive integer');
    expect(quiet.stderr).not.toMatch(/\n\s+at /);
    const verbose = await opskit(['config', '--verbose'], { cwd: dir });
    expect(verbose.stderr).toMatch(/\n\s+at /);
  });

  it('npx opskit works from the repo', async () => {
    const r = await execa('npx', ['--no-install', 'opskit', '--version'], { cwd: REPO, reject: false });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('installed as a linked package (what npm link does), the bin runs through its symlink', async () => {
    const prefix = tempDir('opskit-link-');
    const install = await execa('npm', ['install', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', REPO], {
      reject: false,
    });
    expect(install.exitCode, install.stderr).toBe(0);
    const r = await execa(path.join(prefix, 'node_modules/.bin/opskit'), ['--version'], { reject: false });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('--help loads no heavy module (dockerode, execa, yaml, zod, ora)', async () => {
    const trace = path.join(tempDir(), 'trace.txt');
    writeFileSync(trace, '');
    await execa(
      process.execPath,
      ['--import', path.join(REPO, 'tests/fixtures/trace-imports.mjs'), path.join(REPO, 'dist/bin.js'), '--help'],
      {
        env: { OPSKIT_TRACE_FILE: trace },
      },
    );
    const loaded = readFileSync(trace, 'utf8');
    expect(loaded).toContain('node_modules/commander/');
    for (const heavy of ['dockerode', 'execa', 'yaml', 'zod', 'ora', '@aws-sdk', 'autocannon'])
      expect(loaded, heavy).not.toContain(`node_modules/${heavy}/`);
  });
});
