import type { Clock } from '../adapters/clock.js';
import type { ExecAdapter, SupervisedProcess } from '../adapters/exec.js';
import type { HttpAdapter } from '../adapters/http.js';
import type { NgrokSdk, NgrokSdkListener } from '../adapters/ngrok.js';
import { pollUntil, Waker } from '../runtime/poll.js';
import {
  type AgentSpec,
  agentCommand,
  findTunnel,
  isAgentError,
  isPermanentFailure,
  parseAgentLogLine,
  sdkForwardConfig,
  startedTunnelUrl,
  type TunnelDriverName,
} from './plan.js';

/** One open tunnel, whichever driver opened it. */
export interface TunnelSession {
  driver: TunnelDriverName;
  publicUrl: string;
  /** The agent's process id (agent driver). */
  agentPid?: number;
  /** Resolves with a reason when the tunnel ends by itself: the agent exited, the SDK listener closed. */
  ended: Promise<string>;
  /** Is it listed as up (the agent's local API, the SDK's listeners)? A changed URL comes back too. */
  listed(): Promise<{ ok: boolean; detail: string; publicUrl?: string }>;
  /** Closes the tunnel (stops the agent); resolves when it is gone. */
  close(): Promise<void>;
}

export interface TunnelDriver {
  name: TunnelDriverName;
  /** Opens a tunnel; a stop (the signal) during the start ends it at once with a TunnelStartError. */
  open(stop?: AbortSignal): Promise<TunnelSession>;
}

/** A start that failed; `permanent` when no retry can fix it (a bad authtoken). */
export class TunnelStartError extends Error {
  readonly permanent: boolean;
  constructor(message: string, permanent: boolean) {
    super(message);
    this.permanent = permanent;
  }
}

const AGENT_STOP_GRACE_MS = 5000;

const exitText = (r: { exitCode: number | undefined; signal: string | undefined }) =>
  r.signal ? `signal ${r.signal}` : `code ${r.exitCode}`;

export interface AgentDriverDeps {
  exec: ExecAdapter;
  http: HttpAdapter;
  clock: Clock;
}

export interface AgentDriverOptions {
  spec: AgentSpec;
  env: Record<string, string | undefined>;
  /** host:port of the agent's local API. */
  webAddr: string;
  startTimeoutMs: number;
  /** Each line the agent prints (for its log file; the caller scrubs it). */
  onAgentLine(line: string): void;
}

/** The agent's `GET /api/tunnels`, and our tunnel in it. */
export async function queryAgentApi(
  http: HttpAdapter,
  webAddr: string,
  port: number | undefined,
  timeoutMs = 2000,
): Promise<{ answering: boolean; listed?: ReturnType<typeof findTunnel>; error?: string }> {
  try {
    const response = await http.request(`http://${webAddr}/api/tunnels`, {
      timeoutMs,
      headers: { accept: 'application/json' },
    });
    if (response.status !== 200) return { answering: false, error: `HTTP ${response.status}` };
    let body: unknown;
    try {
      body = JSON.parse(response.body);
    } catch {
      return { answering: false, error: 'not a JSON answer' };
    }
    const listed = findTunnel(body, port);
    return { answering: true, ...(listed ? { listed } : {}) };
  } catch (error) {
    return { answering: false, error: (error as Error).message };
  }
}

/** An external ngrok v3 agent: `ngrok http PORT`, its URL from its log or its local API. */
export function agentDriver(deps: AgentDriverDeps, options: AgentDriverOptions): TunnelDriver {
  return {
    name: 'agent',
    async open(stop) {
      const [file, args] = agentCommand(options.spec);
      const errors: string[] = [];
      let announced: string | undefined;
      const waker = new Waker();
      const proc = await deps.exec.start(file, args, {
        env: options.env,
        onLine: (line) => {
          options.onAgentLine(line);
          const parsed = parseAgentLogLine(line);
          if (!parsed) return;
          const url = startedTunnelUrl(parsed);
          if (url) {
            announced = url;
            waker.wake();
          }
          if (isAgentError(parsed)) {
            errors.push(parsed.error ? `${parsed.message}: ${parsed.error}` : parsed.message);
            if (errors.length > 5) errors.shift();
          }
        },
      });
      let exit: Awaited<SupervisedProcess['exited']> | undefined;
      void proc.exited.then((r) => {
        exit = r;
        waker.wake();
      });
      const onStop = () => waker.wake();
      stop?.addEventListener('abort', onStop, { once: true });
      const why = () => (errors.length > 0 ? errors.slice(-3).join('; ') : undefined);
      const started = await pollUntil(
        deps.clock,
        { timeoutMs: options.startTimeoutMs, initialDelayMs: 100, maxDelayMs: 1000, wake: waker },
        async () => {
          if (announced) return { done: true, value: announced };
          if (exit || stop?.aborted) return { done: true, value: undefined };
          const api = await queryAgentApi(deps.http, options.webAddr, options.spec.port, 1000);
          if (api.listed) return { done: true, value: api.listed.publicUrl };
          return {
            done: false,
            last: api.error ? `its local API on ${options.webAddr}: ${api.error}` : 'no tunnel listed yet',
          };
        },
      );
      stop?.removeEventListener('abort', onStop);
      if (stop?.aborted && !announced) {
        await stopProcess(deps.clock, proc);
        throw new TunnelStartError('stopped while the agent was starting', false);
      }
      if (exit || !started.ok || !started.value) {
        await stopProcess(deps.clock, proc);
        const finished = exit ?? (await proc.exited);
        if (finished.notFound) throw new TunnelStartError(`the ngrok agent ${file} was not found`, true);
        const reason = exit
          ? `the ngrok agent exited (${exitText(finished)})${why() ? `: ${why()}` : ''}`
          : `the ngrok agent reported no public URL within ${Math.round(options.startTimeoutMs / 1000)}s (${started.ok ? 'none' : started.last})${why() ? `: ${why()}` : ''}`;
        throw new TunnelStartError(reason, isPermanentFailure(reason));
      }
      let publicUrl = started.value;
      return {
        driver: 'agent',
        publicUrl,
        ...(proc.pid !== undefined ? { agentPid: proc.pid } : {}),
        ended: proc.exited.then((r) => `the ngrok agent exited (${exitText(r)})${why() ? `: ${why()}` : ''}`),
        async listed() {
          const api = await queryAgentApi(deps.http, options.webAddr, options.spec.port, 5000);
          if (!api.answering)
            return { ok: false, detail: `the agent's local API on ${options.webAddr} does not answer (${api.error})` };
          if (!api.listed)
            return { ok: false, detail: `the agent's local API lists no tunnel to port ${options.spec.port}` };
          publicUrl = api.listed.publicUrl;
          return { ok: true, detail: 'listed by the agent', publicUrl };
        },
        close: () => stopProcess(deps.clock, proc),
      };
    },
  };
}

/** SIGTERM, a grace period, then SIGKILL: the agent never outlives its supervisor's stop. */
async function stopProcess(clock: Clock, proc: SupervisedProcess): Promise<void> {
  let done = false;
  void proc.exited.then(() => (done = true));
  proc.kill('SIGTERM');
  const controller = new AbortController();
  const grace = clock.sleep(AGENT_STOP_GRACE_MS, controller.signal).catch(() => undefined);
  await Promise.race([proc.exited, grace]);
  controller.abort();
  if (!done) {
    proc.kill('SIGKILL');
    await proc.exited;
  }
}

/** The part of `@ngrok/ngrok` opskit uses: its real shape, so a test can stand in at this boundary. */
export interface SdkDriverOptions {
  port: number;
  authtoken: string | undefined;
  url: string | undefined;
  startTimeoutMs: number;
  clock: Clock;
  /** Loads the SDK (its native binary is an optional dependency from the registry). */
  load(): Promise<NgrokSdk>;
  onLog(line: string): void;
}

export const loadNgrokSdk = async (): Promise<NgrokSdk> => {
  const module = (await import('@ngrok/ngrok')) as unknown as { default?: NgrokSdk } & NgrokSdk;
  return module.default ?? module;
};

/** The in-process tunnel of the official `@ngrok/ngrok` SDK. */
export function sdkDriver(options: SdkDriverOptions): TunnelDriver {
  return {
    name: 'sdk',
    async open(stop) {
      let sdk: NgrokSdk;
      try {
        sdk = await options.load();
      } catch (error) {
        throw new TunnelStartError(
          `the @ngrok/ngrok SDK could not be loaded (${(error as Error).message}); set NGROK_BIN to use an ngrok agent instead`,
          true,
        );
      }
      let status = 'connected';
      const config = {
        ...sdkForwardConfig(options.port, options.authtoken, options.url),
        onStatusChange: (next: string) => {
          status = next;
          options.onLog(`session ${next}`);
        },
        onLogEvent: (line: string) => options.onLog(line),
      };
      const controller = new AbortController();
      const timeout = options.clock.sleep(options.startTimeoutMs, controller.signal).then(
        () => {
          throw new TunnelStartError(
            `the ngrok SDK reported no public URL within ${Math.round(options.startTimeoutMs / 1000)}s`,
            false,
          );
        },
        () => undefined as never,
      );
      let listener: NgrokSdkListener;
      const forwarding = sdk.forward(config);
      const stopped = new Promise<never>((_, reject) => {
        const abort = () => {
          // The listener may still arrive: close it then.
          void forwarding.then((l) => l.close()).catch(() => undefined);
          reject(new TunnelStartError('stopped while the SDK was connecting', false));
        };
        if (stop?.aborted) abort();
        else stop?.addEventListener('abort', abort, { once: true });
      });
      try {
        listener = await Promise.race([forwarding, timeout, stopped]);
      } catch (error) {
        if (error instanceof TunnelStartError) throw error;
        const code = (error as { errorCode?: string; code?: string }).errorCode ?? (error as { code?: string }).code;
        const message = `the ngrok SDK could not open the tunnel: ${(error as Error).message}${code && /ERR_NGROK/.test(code) ? ` (${code})` : ''}`;
        throw new TunnelStartError(message, isPermanentFailure(message));
      } finally {
        controller.abort();
      }
      const publicUrl = listener.url();
      if (!publicUrl) {
        await listener.close().catch(() => undefined);
        throw new TunnelStartError('the ngrok SDK opened a listener without a URL', false);
      }
      const id = listener.id();
      return {
        driver: 'sdk',
        publicUrl,
        ended: listener.join().then(
          () => 'the SDK listener closed',
          (error: unknown) => `the SDK listener failed: ${(error as Error).message}`,
        ),
        async listed() {
          if (status === 'closed') return { ok: false, detail: 'the SDK session is disconnected' };
          const open = await sdk.listeners();
          const mine = open.find((l) => l.id() === id);
          if (!mine) return { ok: false, detail: 'the SDK lists no such listener' };
          return { ok: true, detail: 'listed by the SDK', publicUrl: mine.url() ?? publicUrl };
        },
        async close() {
          await listener.close().catch(() => undefined);
        },
      };
    },
  };
}
