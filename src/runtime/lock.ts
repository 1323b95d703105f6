import type { Clock } from '../adapters/clock.js';
import type { FsAdapter } from '../adapters/fs.js';
import type { SystemAdapter } from '../adapters/system.js';
import { LockHeldError } from '../errors.js';

export interface LockHolder {
  pid: number;
  host: string;
  user: string;
  command: string;
  startedAt: string;
}

export interface LockDeps {
  fs: FsAdapter;
  clock: Clock;
  system: Pick<SystemAdapter, 'pid' | 'hostname' | 'user' | 'isPidAlive'>;
}

export interface AcquireOptions {
  /** How long to wait for a holder to finish; 0 fails at once. */
  waitMs: number;
  onWait?: (holder: LockHolder) => void;
  onTakeover?: (stale: LockHolder | undefined) => void;
}

export interface LockHandle {
  holder: LockHolder;
  release(): Promise<void>;
}

const TAKEOVER_GUARD_STALE_MS = 30_000;

export function parseHolder(text: string | undefined): LockHolder | undefined {
  if (!text) return undefined;
  try {
    const value = JSON.parse(text) as Partial<LockHolder>;
    if (typeof value.pid === 'number' && typeof value.host === 'string') {
      return {
        pid: value.pid,
        host: value.host,
        user: String(value.user ?? '?'),
        command: String(value.command ?? '?'),
        startedAt: String(value.startedAt ?? '?'),
      };
    }
  } catch {
    // A lock file we cannot read is treated as stale below.
  }
  return undefined;
}

export function describeHolder(holder: LockHolder): string {
  return `pid ${holder.pid} on ${holder.host} (user ${holder.user}), running "${holder.command}" since ${holder.startedAt}`;
}

/** Pure: is this holder provably gone? Only a holder on this host can be checked. */
export function isStale(holder: LockHolder | undefined, host: string, isPidAlive: (pid: number) => boolean): boolean {
  if (!holder) return true;
  return holder.host === host && !isPidAlive(holder.pid);
}

/**
 * The per-project lock of every mutating command. Created atomically and complete (written aside,
 * then hard-linked into place), so a reader never sees a half-written holder. A holder whose pid is dead
 * on this host is taken over, under a short mutex so two runs cannot both take over the same stale lock.
 */
export async function acquireLock(
  deps: LockDeps,
  lockFile: string,
  command: string,
  options: AcquireOptions,
): Promise<LockHandle> {
  const { fs, clock, system } = deps;
  const me: LockHolder = {
    pid: system.pid,
    host: system.hostname(),
    user: system.user(),
    command,
    startedAt: clock.now().toISOString(),
  };
  const myText = `${JSON.stringify(me)}\n`;
  const deadline = clock.monotonicMs() + options.waitMs;
  let backoff = 100;
  let waitingNoted = false;
  const guard = `${lockFile}.takeover`;

  for (;;) {
    if (await fs.createExclusive(lockFile, myText)) {
      return {
        holder: me,
        release: async () => {
          if ((await fs.readText(lockFile)) === myText) await fs.remove(lockFile);
        },
      };
    }
    const text = await fs.readText(lockFile);
    if (text === undefined) continue; // released between our two calls: try again at once
    const holder = parseHolder(text);

    if (isStale(holder, me.host, system.isPidAlive)) {
      if (await fs.makeDirExclusive(guard)) {
        try {
          // Still the same stale lock? Then it is ours to remove; anything else, start over.
          if ((await fs.readText(lockFile)) === text) {
            options.onTakeover?.(holder);
            await fs.remove(lockFile);
          }
        } finally {
          await fs.removeDir(guard);
        }
        continue;
      }
      const guardAge = clock.now().getTime() - ((await fs.mtimeMs(guard)) ?? clock.now().getTime());
      if (guardAge > TAKEOVER_GUARD_STALE_MS) await fs.removeDir(guard);
    } else if (holder) {
      const left = deadline - clock.monotonicMs();
      if (left <= 0) {
        throw new LockHeldError(`another run holds the lock ${lockFile}: ${describeHolder(holder)}`, {
          hint:
            options.waitMs > 0
              ? 'it did not finish within --lock-wait; try again later'
              : 'wait for it to finish, or pass --lock-wait <duration> to wait',
          details: { holder },
        });
      }
      if (!waitingNoted) {
        options.onWait?.(holder);
        waitingNoted = true;
      }
      await clock.sleep(Math.min(backoff, left));
      backoff = Math.min(backoff * 2, 2000);
      continue;
    }
    await clock.sleep(Math.min(backoff, 50));
  }
}
