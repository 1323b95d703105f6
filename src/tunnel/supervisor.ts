import type { Clock } from '../adapters/clock.js';
import type { HttpAdapter } from '../adapters/http.js';
import { type TunnelDriver, type TunnelSession, TunnelStartError } from './drivers.js';
import {
  afterHealthyCheck,
  assessCheck,
  type CheckVerdict,
  decideAfterFailure,
  type MonitorState,
  type ProbeOutcome,
  type ReconnectPolicy,
} from './plan.js';

export interface SupervisorOptions {
  monitor: boolean;
  checkIntervalMs: number;
  checkPath: string;
  checkTimeoutMs: number;
  policy: ReconnectPolicy;
}

export type SupervisorEvent =
  | { type: 'connected'; url: string; agentPid?: number; reconnect: boolean; previousUrl?: string }
  | { type: 'check'; verdict: CheckVerdict }
  | { type: 'down'; reason: string }
  | { type: 'reconnecting'; attempt: number; maxAttempts: number; delayMs: number }
  | { type: 'attempt-failed'; attempt: number; error: string; permanent: boolean }
  | { type: 'url-changed'; from: string; to: string };

export interface SupervisorResult {
  /**
   * stopped: a signal asked (exit 0); gave-up: the attempts are spent or the failure is permanent; ended: the tunnel
   * ended without --monitor.
   */
  outcome: 'stopped' | 'gave-up' | 'ended';
  publicUrl?: string;
  reconnects: number;
  attempts: number;
  lastError?: string;
}

export interface SupervisorDeps {
  clock: Clock;
  http: HttpAdapter;
}

type Wake = 'stop' | 'ended' | 'timeout';

/** Sleeps until the time is up (never, for `undefined`), a stop is asked, or the session ends by itself. */
async function pause(
  clock: Clock,
  ms: number | undefined,
  stop: AbortSignal,
  ended?: () => boolean,
  endedPromise?: Promise<unknown>,
): Promise<Wake> {
  if (stop.aborted) return 'stop';
  if (ended?.()) return 'ended';
  const controller = new AbortController();
  const onStop = () => controller.abort();
  stop.addEventListener('abort', onStop, { once: true });
  void endedPromise?.then(() => controller.abort());
  try {
    if (ms === undefined)
      await new Promise<void>((resolve) =>
        controller.signal.addEventListener('abort', () => resolve(), { once: true }),
      );
    else await clock.sleep(ms, controller.signal);
  } catch (error) {
    if ((error as { name?: string }).name !== 'AbortError') throw error;
  } finally {
    stop.removeEventListener('abort', onStop);
    controller.abort();
  }
  if (stop.aborted) return 'stop';
  return ended?.() || (endedPromise && ms === undefined) ? 'ended' : 'timeout';
}

/**
 * One supervisor for either driver: open the tunnel, then (with --monitor) check it every interval and
 * on an ended or failing tunnel reconnect, with a capped backoff, until the attempts are spent. The
 * attempt count resets after a healthy period. A stop (SIGINT/SIGTERM) closes the tunnel at any point.
 */
export async function superviseTunnel(
  driver: TunnelDriver,
  deps: SupervisorDeps,
  options: SupervisorOptions,
  stop: AbortSignal,
  onEvent: (event: SupervisorEvent) => void,
): Promise<SupervisorResult> {
  const { clock } = deps;
  const { policy } = options;
  const state: MonitorState = { attempts: 0, reconnects: 0, upSinceMs: clock.monotonicMs() };
  let lastUrl: string | undefined;
  let session: TunnelSession | undefined;
  let endedReason: string | undefined;

  const adopt = (opened: TunnelSession, reconnect: boolean) => {
    session = opened;
    endedReason = undefined;
    void opened.ended.then((reason) => {
      if (session === opened) endedReason = reason;
    });
    onEvent({
      type: 'connected',
      url: opened.publicUrl,
      ...(opened.agentPid !== undefined ? { agentPid: opened.agentPid } : {}),
      reconnect,
      ...(lastUrl && lastUrl !== opened.publicUrl ? { previousUrl: lastUrl } : {}),
    });
    lastUrl = opened.publicUrl;
  };
  const result = (outcome: SupervisorResult['outcome'], lastError?: string): SupervisorResult => ({
    outcome,
    ...(lastUrl ? { publicUrl: lastUrl } : {}),
    reconnects: state.reconnects,
    attempts: state.attempts,
    ...(lastError ? { lastError } : {}),
  });
  const closeSession = async () => {
    const current = session;
    session = undefined;
    await current?.close();
  };

  /** A tunnel, or undefined when a stop came while it opened (then it is closed again). */
  const open = async (): Promise<TunnelSession | undefined> => {
    const opened = await driver.open(stop);
    if (!stop.aborted) return opened;
    await opened.close();
    return undefined;
  };

  /** Attempts until one opens, the attempts are spent, or a stop is asked. */
  const reconnect = async (reason: string, permanent: boolean): Promise<SupervisorResult | undefined> => {
    let lastError = reason;
    let isPermanent = permanent;
    for (;;) {
      const decision = decideAfterFailure(state, policy, isPermanent);
      if (decision.action === 'give-up') return result('gave-up', lastError);
      state.attempts = decision.attempt;
      onEvent({
        type: 'reconnecting',
        attempt: decision.attempt,
        maxAttempts: policy.maxAttempts,
        delayMs: decision.delayMs,
      });
      if ((await pause(clock, decision.delayMs, stop)) === 'stop') return result('stopped');
      try {
        const opened = await open();
        if (!opened) return result('stopped');
        state.reconnects++;
        state.upSinceMs = clock.monotonicMs();
        adopt(opened, true);
        return undefined;
      } catch (error) {
        if (stop.aborted) return result('stopped');
        lastError = (error as Error).message;
        isPermanent = error instanceof TunnelStartError && error.permanent;
        onEvent({ type: 'attempt-failed', attempt: decision.attempt, error: lastError, permanent: isPermanent });
      }
    }
  };

  try {
    const opened = await open();
    if (!opened) return result('stopped');
    adopt(opened, false);
  } catch (error) {
    if (stop.aborted) return result('stopped');
    if (!options.monitor || (error instanceof TunnelStartError && error.permanent)) throw error;
    onEvent({ type: 'down', reason: (error as Error).message });
    const outcome = await reconnect((error as Error).message, false);
    if (outcome) return outcome;
  }

  try {
    for (;;) {
      const current = session!;
      // Without --monitor there is nothing to check: wait for a stop, or for the tunnel to end.
      const woke = await pause(
        clock,
        options.monitor ? options.checkIntervalMs : undefined,
        stop,
        () => endedReason !== undefined,
        current.ended,
      );
      if (woke === 'stop') return result('stopped');
      let failure: string | undefined;
      if (woke === 'ended') failure = endedReason ?? (await current.ended);
      else if (options.monitor) {
        const verdict = await check(current);
        if (stop.aborted) return result('stopped');
        onEvent({ type: 'check', verdict });
        if (!verdict.ok) failure = verdict.detail;
        else Object.assign(state, afterHealthyCheck(state, policy, clock.monotonicMs()));
      }
      if (failure === undefined) continue;
      onEvent({ type: 'down', reason: failure });
      await closeSession();
      if (!options.monitor) return result('ended', failure);
      const outcome = await reconnect(failure, false);
      if (outcome) return outcome;
    }
  } finally {
    await closeSession();
  }

  async function check(current: TunnelSession): Promise<CheckVerdict> {
    const listed = await current
      .listed()
      .catch((error: unknown) => ({ ok: false, detail: (error as Error).message, publicUrl: undefined }));
    if (listed.ok && listed.publicUrl && listed.publicUrl !== lastUrl) {
      onEvent({ type: 'url-changed', from: lastUrl ?? '', to: listed.publicUrl });
      lastUrl = listed.publicUrl;
    }
    let probe: ProbeOutcome | undefined;
    if (listed.ok) {
      try {
        const response = await deps.http.request(
          `${(lastUrl ?? current.publicUrl).replace(/\/$/, '')}${options.checkPath}`,
          {
            timeoutMs: options.checkTimeoutMs,
            // Without it, a browser-like client gets ngrok's interstitial page instead of the service.
            headers: { 'ngrok-skip-browser-warning': '1' },
            maxBodyBytes: 4096,
          },
        );
        probe = { kind: 'response', status: response.status, headers: response.headers };
      } catch (error) {
        probe = { kind: 'error', message: (error as Error).message };
      }
    }
    return assessCheck(listed, probe, options.checkPath);
  }
}
