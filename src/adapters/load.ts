import { errorCode } from './background-load.js';
import { honourConnectionClose } from './connection-close.js';

/** What autocannon is handed (loadtest's plan builds it; secrets revealed only here). */
export interface AutocannonRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

export interface AutocannonPlan {
  options: {
    url: string;
    connections: number;
    pipelining: number;
    timeout: number;
    duration?: number;
    amount?: number;
    overallRate?: number;
    maxOverallRequests?: number;
    requests: AutocannonRequest[];
  };
  /** For each entry of options.requests, the scenario request it is. */
  requestIndex: number[];
}

/** The parts of autocannon's result opskit reads. */
export interface AutocannonResult {
  requests: { average: number; stddev: number; min: number; max: number; total: number; sent: number };
  throughput: { average: number; stddev: number; min: number; max: number; total: number };
  duration: number;
  errors: number;
  timeouts: number;
  mismatches: number;
  non2xx: number;
  statusCodeStats: Record<string, { count: number | string }>;
  start: Date | string;
  finish: Date | string;
}

export interface LoadHooks {
  /** Each answer: which scenario request it was, its status, latency (ms) and size. */
  onResponse(requestIndex: number, status: number, latencyMs: number, bytes: number): void;
  /** A request with no answer (a connection error or a timeout), with its error's code (ECONNRESET, ETIMEDOUT...). */
  onError(timeout: boolean, code: string): void;
  /** Once a second: the answers in that second. */
  onTick(answered: number): void;
}

/** The load generator: autocannon, loaded only by `opskit loadtest`. */
export interface LoadAdapter {
  run(plan: AutocannonPlan, hooks: LoadHooks, signal: AbortSignal): Promise<AutocannonResult>;
}

export const autocannonLoad: LoadAdapter = {
  async run(plan, hooks, signal) {
    const { default: autocannon } = await import('autocannon');
    const many = plan.options.requests.length > 1;
    let current = 0;
    // autocannon calls a request's onResponse just before it emits 'response' for that answer (pipelined
    // too): that is how an answer is matched to its scenario request.
    const requests = many
      ? plan.options.requests.map((r, i) => ({
          ...r,
          onResponse: () => {
            current = i;
          },
        }))
      : plan.options.requests;
    return new Promise<AutocannonResult>((resolve, reject) => {
      const instance = autocannon(
        { ...plan.options, requests, setupClient: honourConnectionClose } as unknown as Parameters<
          typeof autocannon
        >[0],
        (error: Error | null, result: unknown) => {
          signal.removeEventListener('abort', stop);
          if (error) reject(error);
          else resolve(result as AutocannonResult);
        },
      );
      const stop = () => instance.stop();
      signal.addEventListener('abort', stop, { once: true });
      instance.on('response', (_client: unknown, status: number, bytes: number, latency: number) =>
        hooks.onResponse(plan.requestIndex[many ? current : 0]!, status, latency, bytes),
      );
      let last: unknown;
      // autocannon emits one reqError per pipelined request for the same error: count it once, as it does.
      instance.on('reqError', (error: Error) => {
        if (error === last) return;
        last = error;
        const code = errorCode(error);
        hooks.onError(code === 'ETIMEDOUT', code);
      });
      (instance as unknown as { on(event: 'tick', listener: (tick: { counter: number }) => void): void }).on(
        'tick',
        (tick) => hooks.onTick(tick.counter),
      );
    });
  },
};
