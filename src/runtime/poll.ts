import type { Clock } from '../adapters/clock.js';

export type Probe<T> = { done: true; value: T } | { done: false; last: string };

export interface PollOptions {
  timeoutMs: number;
  initialDelayMs?: number;
  maxDelayMs?: number;
  factor?: number;
  /** Ends a sleep early (an event said the state may have changed): the next probe runs at once. */
  wake?: Waker;
}

/** Something that can cut a poll's sleep short. */
export class Waker {
  #controller = new AbortController();
  wake(): void {
    this.#controller.abort();
  }
  /** The signal for the next sleep; a fresh one once the last has fired. */
  signal(): AbortSignal {
    if (this.#controller.signal.aborted) this.#controller = new AbortController();
    return this.#controller.signal;
  }
}

export type PollResult<T> =
  | { ok: true; value: T; attempts: number; elapsedMs: number }
  | { ok: false; last: string; attempts: number; elapsedMs: number };

/**
 * Every wait in opskit: probe, then sleep with backoff, never past the deadline (no fixed sleeps).
 * The probe runs at least once, and once more at the deadline.
 */
export async function pollUntil<T>(
  clock: Clock,
  options: PollOptions,
  probe: (attempt: number) => Promise<Probe<T>>,
): Promise<PollResult<T>> {
  const started = clock.monotonicMs();
  const deadline = started + options.timeoutMs;
  let delay = options.initialDelayMs ?? 250;
  let attempts = 0;
  let last = 'not probed';
  for (;;) {
    attempts++;
    const result = await probe(attempts);
    if (result.done) return { ok: true, value: result.value, attempts, elapsedMs: clock.monotonicMs() - started };
    last = result.last;
    const left = deadline - clock.monotonicMs();
    if (left <= 0) return { ok: false, last, attempts, elapsedMs: clock.monotonicMs() - started };
    try {
      await clock.sleep(Math.min(delay, left), options.wake?.signal());
    } catch (error) {
      if ((error as { name?: string }).name !== 'AbortError') throw error;
    }
    delay = Math.min(delay * (options.factor ?? 1.5), options.maxDelayMs ?? 2000);
  }
}
