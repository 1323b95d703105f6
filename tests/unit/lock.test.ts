import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeFs } from '../../src/adapters/fs.js';
import type { SystemAdapter } from '../../src/adapters/system.js';
import { LockHeldError } from '../../src/errors.js';
import { acquireLock, isStale, parseHolder } from '../../src/runtime/lock.js';
import { manualClock } from '../helpers/fakes.js';

function system(
  pid: number,
  alive: (pid: number) => boolean,
): Pick<SystemAdapter, 'pid' | 'hostname' | 'user' | 'isPidAlive'> {
  return { pid, hostname: () => 'host-a', user: () => 'ops', isPidAlive: alive };
}

const lockIn = () => path.join(mkdtempSync(path.join(os.tmpdir(), 'opskit-lock-')), '.opskit', 'lock');

describe('acquireLock', () => {
  it('creates the lock with its holder details and removes it on release', async () => {
    const file = lockIn();
    const lock = await acquireLock(
      { fs: nodeFs, clock: manualClock(), system: system(111, () => true) },
      file,
      'opskit deploy',
      { waitMs: 0 },
    );
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({
      pid: 111,
      host: 'host-a',
      user: 'ops',
      command: 'opskit deploy',
      startedAt: '2026-12-01T12:00:00.000Z',
    });
    await lock.release();
    expect(existsSync(file)).toBe(false);
  });

  it('refuses while a live holder has it, naming the holder (exit 4)', async () => {
    const file = lockIn();
    await acquireLock({ fs: nodeFs, clock: manualClock(), system: system(111, () => true) }, file, 'opskit deploy', {
      waitMs: 0,
    });
    const second = acquireLock(
      { fs: nodeFs, clock: manualClock(), system: system(222, () => true) },
      file,
      'opskit backup create',
      { waitMs: 0 },
    );
    await expect(second).rejects.toBeInstanceOf(LockHeldError);
    await expect(second).rejects.toMatchObject({
      exitCode: 4,
      message: expect.stringContaining('pid 111 on host-a (user ops), running "opskit deploy"'),
    });
  });

  it('takes over a lock whose pid is dead on this host, with a warning', async () => {
    const file = lockIn();
    await acquireLock({ fs: nodeFs, clock: manualClock(), system: system(111, () => true) }, file, 'opskit deploy', {
      waitMs: 0,
    });
    const warnings: string[] = [];
    const lock = await acquireLock(
      { fs: nodeFs, clock: manualClock(), system: system(222, (pid) => pid !== 111) },
      file,
      'opskit init',
      {
        waitMs: 0,
        onTakeover: (stale) => warnings.push(`stale ${stale?.pid}`),
      },
    );
    expect(warnings).toEqual(['stale 111']);
    expect(lock.holder.pid).toBe(222);
    expect(JSON.parse(readFileSync(file, 'utf8')).pid).toBe(222);
  });

  it('never takes over a lock held on another host', async () => {
    const file = lockIn();
    await nodeFs.createExclusive(
      file,
      JSON.stringify({ pid: 5, host: 'host-b', user: 'x', command: 'opskit deploy', startedAt: 't' }),
    );
    await expect(
      acquireLock({ fs: nodeFs, clock: manualClock(), system: system(222, () => false) }, file, 'opskit init', {
        waitMs: 0,
      }),
    ).rejects.toMatchObject({ exitCode: 4 });
  });

  it('waits with backoff until the deadline, then names the holder', async () => {
    const file = lockIn();
    await acquireLock({ fs: nodeFs, clock: manualClock(), system: system(111, () => true) }, file, 'opskit deploy', {
      waitMs: 0,
    });
    const clock = manualClock();
    const waited: number[] = [];
    await expect(
      acquireLock({ fs: nodeFs, clock, system: system(222, () => true) }, file, 'opskit init', {
        waitMs: 1000,
        onWait: (h) => waited.push(h.pid),
      }),
    ).rejects.toMatchObject({ exitCode: 4, hint: expect.stringContaining('--lock-wait') });
    expect(waited).toEqual([111]);
    expect(clock.slept).toEqual([100, 200, 400, 300]);
  });

  it('gets the lock once the holder releases it while waiting', async () => {
    const file = lockIn();
    const first = await acquireLock(
      { fs: nodeFs, clock: manualClock(), system: system(111, () => true) },
      file,
      'opskit deploy',
      { waitMs: 0 },
    );
    const clock = manualClock();
    const realSleep = clock.sleep;
    clock.sleep = async (ms) => {
      await realSleep(ms);
      await first.release();
    };
    const lock = await acquireLock({ fs: nodeFs, clock, system: system(222, () => true) }, file, 'opskit init', {
      waitMs: 10_000,
    });
    expect(lock.holder.pid).toBe(222);
  });

  it('release leaves alone a lock that is no longer ours', async () => {
    const file = lockIn();
    const lock = await acquireLock(
      { fs: nodeFs, clock: manualClock(), system: system(111, () => true) },
      file,
      'opskit deploy',
      { waitMs: 0 },
    );
    writeFileSync(file, JSON.stringify({ pid: 999, host: 'host-a' }));
    await lock.release();
    expect(existsSync(file)).toBe(true);
  });
});

describe('lock holders', () => {
  it('parses and judges staleness', () => {
    expect(parseHolder('not json')).toBeUndefined();
    const holder = parseHolder('{"pid":7,"host":"h","user":"u","command":"c","startedAt":"s"}')!;
    expect(isStale(holder, 'h', () => false)).toBe(true);
    expect(isStale(holder, 'h', () => true)).toBe(false);
    expect(isStale(holder, 'other', () => false)).toBe(false);
    expect(isStale(undefined, 'h', () => true)).toBe(true);
  });
});
