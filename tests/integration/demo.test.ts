import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';

// The README's main job (`npm run demo` = the environment script, the build, then this script), run
// as a new user would, end to end, and checked for what it must show and what it must leave behind.
describe('npm run demo', () => {
  it('builds, deploys, checks, cuts over and rolls back under load with 0 failed requests, backs up and restores, load tests; then cleans up', async () => {
    const run = await execa(process.execPath, [path.join(REPO, 'scripts', 'demo.mjs')], {
      cwd: REPO,
      reject: false,
      timeout: 600_000,
      all: true,
    });
    const out = run.all ?? '';
    expect(run.exitCode, out.slice(-3000)).toBe(0);
    for (const step of [
      'build',
      'deploy',
      'health',
      'cutover',
      'rollback',
      'load during both switches',
      'backup',
      'restore test',
      'load test',
    ]) {
      expect(out, step).toMatch(new RegExp(`✔ ${step}\\s`));
    }
    expect(out).toMatch(
      /load during both switches\s+\d+ requests through nginx at \d+ req\/s: 0 failed \(0 non-2xx, 0 errors, 0 timeouts, 0 dropped\)/,
    );
    expect(out).toMatch(/restore test\s+\S+: downloaded true, checksum ok, 2 tables/);
    expect(out).toMatch(/"command": "health"/); // health --json is shown
    expect(out).toMatch(/thresholds 3\/3 passed, exit 0/);
    const project = /compose project (opskit-demo-[a-z0-9_-]+)/.exec(out)![1]!;
    const left = async (args: string[]) =>
      (await execa('docker', args, { reject: false })).stdout.split('\n').filter(Boolean);
    expect(await left(['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`])).toEqual([]);
    expect(await left(['network', 'ls', '-q', '--filter', `label=com.docker.compose.project=${project}`])).toEqual([]);
    expect(await left(['volume', 'ls', '-q', '--filter', `label=com.docker.compose.project=${project}`])).toEqual([]);
    expect(await left(['images', '-q', '--filter', `label=org.opskit.project=${project}`])).toEqual([]);
    expect((await execa('pgrep', ['-f', 's3-server.mjs'], { reject: false })).stdout).toBe('');
  });
});
