import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { opskit, parseSingleJson, tempDir } from '../helpers/cli.js';

const holders: Array<{ kill(): boolean }> = [];
afterEach(() => {
  for (const h of holders.splice(0)) h.kill();
});

function holdLock(dir: string, pid: number, command = 'opskit deploy') {
  mkdirSync(path.join(dir, '.opskit'), { recursive: true });
  writeFileSync(
    path.join(dir, '.opskit', 'lock'),
    JSON.stringify({ pid, host: os.hostname(), user: 'ops', command, startedAt: '2026-12-01T02:00:00.000Z' }),
  );
}

function audit(dir: string) {
  const file = path.join(dir, 'logs/opskit-audit.jsonl');
  return existsSync(file)
    ? readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
    : [];
}

describe('the project lock, across real processes', () => {
  it('a second run exits 4 and names the holder; nothing is written but its audit line', async () => {
    const dir = tempDir('opskit-lock-');
    const holder = execa('sleep', ['60'], { reject: false });
    holders.push(holder);
    holdLock(dir, holder.pid!);
    const r = await opskit(['init'], { cwd: dir });
    expect(r.exitCode).toBe(4);
    expect(r.stderr).toContain(
      `pid ${holder.pid} on ${os.hostname()} (user ops), running "opskit deploy" since 2026-12-01T02:00:00.000Z`,
    );
    expect(readdirSync(dir).sort()).toEqual(['.opskit', 'logs']);
    expect(audit(dir)).toMatchObject([
      { command: 'init', outcome: 'locked', exitCode: 4, error: { code: 'E_LOCKED' } },
    ]);
    const json = await opskit(['init', '--json'], { cwd: dir });
    expect(json.exitCode).toBe(4);
    expect(parseSingleJson(json.stdout)).toMatchObject({
      ok: false,
      error: { code: 'E_LOCKED', details: { holder: { pid: holder.pid } } },
    });
  });

  it('a lock whose pid is dead is taken over with a warning', async () => {
    const dir = tempDir('opskit-lock-');
    const child = execa('true');
    const dead = { pid: child.pid };
    await child;
    holdLock(dir, dead.pid!);
    const r = await opskit(['init'], { cwd: dir });
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`warn +taking over a stale lock: pid ${dead.pid} .* is no longer running`));
    expect(existsSync(path.join(dir, '.opskit', 'lock'))).toBe(false);
    expect(existsSync(path.join(dir, 'opskit.yaml'))).toBe(true);
  });

  it('--lock-wait waits for the holder, and gives up at its deadline', async () => {
    const dir = tempDir('opskit-lock-');
    const holder = execa('sleep', ['60'], { reject: false });
    holders.push(holder);
    holdLock(dir, holder.pid!);
    const started = Date.now();
    const gaveUp = await opskit(['init', '--lock-wait', '1500ms'], { cwd: dir });
    const waited = Date.now() - started;
    expect(gaveUp.exitCode).toBe(4);
    expect(waited).toBeGreaterThanOrEqual(1500);
    expect(waited).toBeLessThan(30_000); // gave up at its deadline, not at the holder's 60 s
    expect(gaveUp.stderr).toContain('waiting for the lock');

    // The holder finishes 1 s into the wait: the waiting run goes ahead.
    const waiting = opskit(['init', '--lock-wait', '20s'], { cwd: dir });
    setTimeout(() => {
      holder.kill();
    }, 1000);
    const r = await waiting;
    expect(r.exitCode).toBe(0);
    expect(existsSync(path.join(dir, 'opskit.yaml'))).toBe(true);
  });

  it('two runs started together: exactly one wins, the other exits 4', async () => {
    const dir = tempDir('opskit-lock-');
    const [a, b] = await Promise.all([opskit(['init'], { cwd: dir }), opskit(['init'], { cwd: dir })]);
    const codes = [a.exitCode, b.exitCode].sort();
    // The loser sees either the lock (4) or, if it started after the winner finished, the files (2).
    expect(codes[0]).toBe(0);
    expect([2, 4]).toContain(codes[1]);
  });

  it('--dry-run takes no lock and writes no audit line', async () => {
    const dir = tempDir('opskit-lock-');
    const holder = execa('sleep', ['60'], { reject: false });
    holders.push(holder);
    holdLock(dir, holder.pid!);
    const r = await opskit(['init', '--dry-run'], { cwd: dir });
    expect(r.exitCode).toBe(0);
    expect(audit(dir)).toEqual([]);
  });
});
