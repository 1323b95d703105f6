import type { Clock } from '../../src/adapters/clock.js';
import type { Stream } from '../../src/output/reporter.js';

/**
 * A fake adapter that throws on any call it was not told to expect, so a test states every side
 * effect the action may have.
 */
export function strictFake<T extends object>(name: string, implemented: Partial<T>): T {
  return new Proxy(implemented as T, {
    get(target, property, receiver) {
      if (property in target) return Reflect.get(target, property, receiver);
      if (property === 'then') return undefined; // not a thenable
      throw new Error(`unexpected call: ${name}.${String(property)}`);
    },
  });
}

export class BufferStream implements Stream {
  chunks: string[] = [];
  isTTY: boolean;
  constructor(isTTY = false) {
    this.isTTY = isTTY;
  }
  write(chunk: string): boolean {
    this.chunks.push(chunk);
    return true;
  }
  get text(): string {
    return this.chunks.join('');
  }
}

/** A clock whose time moves only when the code under test sleeps. */
export function manualClock(
  start = new Date('2026-12-01T12:00:00.000Z'),
): Clock & { advance(ms: number): void; slept: number[] } {
  let now = start.getTime();
  let mono = 0;
  const slept: number[] = [];
  return {
    slept,
    now: () => new Date(now),
    monotonicMs: () => mono,
    sleep: async (ms: number) => {
      slept.push(ms);
      now += ms;
      mono += ms;
    },
    advance(ms: number) {
      now += ms;
      mono += ms;
    },
  };
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escape sequences start with ESC
export const ANSI = /\u001b\[[0-9;]*m/;
