/**
 * What `opskit tunnel` decides, as pure functions over plain data: which driver, the agent's command line
 * and config file, what its log lines and local API say, when to reconnect and when to give up, whether a
 * check passed, where a public URL comes from, and whether the tunnel is up.
 */

export type TunnelDriverName = 'agent' | 'sdk';

/** `--driver` wins; then the config; `auto` is the agent when a binary is named (NGROK_BIN / ngrok.bin). */
export function chooseDriver(
  flag: TunnelDriverName | undefined,
  configured: 'auto' | TunnelDriverName,
  binNamed: boolean,
): TunnelDriverName {
  if (flag) return flag;
  if (configured !== 'auto') return configured;
  return binNamed ? 'agent' : 'sdk';
}

export interface AgentSpec {
  bin: string;
  port: number;
  /** Merged in order by the agent (`--config a,b`): the operator's own file first, opskit's last. */
  configFiles: readonly string[];
  /** A reserved domain or URL (`--url`). */
  url?: string;
}

/**
 * The agent's command line: `ngrok http PORT` with JSON logs on stdout, so opskit reads the public URL
 * from its "started tunnel" line. The authtoken is never an argument (it would show in `ps`): it goes
 * in the NGROK_AUTHTOKEN environment variable, which the v3 agent reads.
 */
export function agentCommand(spec: AgentSpec): [file: string, args: string[]] {
  return [
    spec.bin,
    [
      'http',
      String(spec.port),
      '--config',
      spec.configFiles.join(','),
      '--log',
      'stdout',
      '--log-format',
      'json',
      '--log-level',
      'info',
      ...(spec.url ? ['--url', spec.url] : []),
    ],
  ];
}

/** The agent's environment: ours, plus the authtoken when one is configured. */
export function agentEnv(
  base: Readonly<Record<string, string | undefined>>,
  authtoken: string | undefined,
): Record<string, string | undefined> {
  return { ...base, ...(authtoken ? { NGROK_AUTHTOKEN: authtoken } : {}) };
}

/** The config file version of the operator's own file ("2" or 3), so the merged files agree. */
export function configVersionOf(text: string | undefined): '2' | '3' {
  const match = /^version:\s*["']?(\d+)["']?\s*$/m.exec(text ?? '');
  return match?.[1] === '3' ? '3' : '2';
}

/** opskit's part of the agent config: only where the local API listens. */
export function renderAgentConfig(webAddr: string, version: '2' | '3'): string {
  const header =
    "# Written by opskit tunnel start: where the agent's local API listens. Merged after your own ngrok.yml.\n";
  return version === '3'
    ? `${header}version: 3\nagent:\n  web_addr: ${webAddr}\n`
    : `${header}version: "2"\nweb_addr: ${webAddr}\n`;
}

/** The options handed to the SDK's `forward()`; `authtoken` is the only secret. */
export function sdkForwardConfig(
  port: number,
  authtoken: string | undefined,
  url: string | undefined,
): Record<string, unknown> {
  return {
    addr: port,
    proto: 'http',
    ...(authtoken ? { authtoken } : { authtoken_from_env: true }),
    ...(url ? { domain: url.replace(/^https?:\/\//, '') } : {}),
  };
}

export interface AgentLogLine {
  level: string;
  message: string;
  url?: string;
  error?: string;
}

/** One line of the agent's `--log-format json` output; anything else (a plain ERROR line) kept as text. */
export function parseAgentLogLine(line: string): AgentLogLine | undefined {
  const trimmed = line.trim();
  if (!trimmed) return undefined;
  if (trimmed.startsWith('{')) {
    try {
      const record = JSON.parse(trimmed) as Record<string, unknown>;
      const text = (key: string) => (typeof record[key] === 'string' ? (record[key] as string) : undefined);
      return {
        level: text('lvl') ?? 'info',
        message: text('msg') ?? '',
        ...(text('url') ? { url: text('url') } : {}),
        ...(text('err') ? { error: text('err') } : {}),
      };
    } catch {
      // Not JSON after all: fall through.
    }
  }
  return { level: /^(ERROR|ERR_NGROK|FATAL)/i.test(trimmed) ? 'eror' : 'info', message: trimmed };
}

/** The public URL a "started tunnel" line announces. */
export function startedTunnelUrl(line: AgentLogLine): string | undefined {
  return line.message === 'started tunnel' && line.url ? line.url : undefined;
}

export function isAgentError(line: AgentLogLine): boolean {
  return ['eror', 'crit', 'error'].includes(line.level.toLowerCase()) || line.error !== undefined;
}

/**
 * Failures that no reconnect can fix (a bad, missing or revoked authtoken, an account limit): the monitor
 * gives up at once instead of spending its attempts. ngrok's codes: ERR_NGROK_105/106/107 (authtoken),
 * 4018 (no authtoken), 108 (session limit), 120 (agent too old), 121 (agent version rejected).
 */
export function isPermanentFailure(text: string): boolean {
  return /ERR_NGROK_(105|106|107|108|120|121|4018)\b/.test(text) || /authentication failed|authtoken/i.test(text);
}

export interface ListedTunnel {
  name: string;
  publicUrl: string;
  proto: string;
  addr: string;
}

/** The tunnel to our port in the agent's `GET /api/tunnels` answer; https preferred when both exist. */
export function findTunnel(body: unknown, port: number | undefined): ListedTunnel | undefined {
  const tunnels = (body as { tunnels?: unknown })?.tunnels;
  if (!Array.isArray(tunnels)) return undefined;
  const listed: ListedTunnel[] = [];
  for (const item of tunnels as Array<Record<string, unknown>>) {
    const publicUrl = typeof item?.public_url === 'string' ? item.public_url : undefined;
    if (!publicUrl) continue;
    const addr =
      typeof (item.config as { addr?: unknown } | undefined)?.addr === 'string'
        ? (item.config as { addr: string }).addr
        : '';
    if (port !== undefined && !addrPort(addr, port)) continue;
    listed.push({
      name: typeof item.name === 'string' ? item.name : '',
      publicUrl,
      proto: typeof item.proto === 'string' ? item.proto : '',
      addr,
    });
  }
  return listed.find((t) => t.proto === 'https') ?? listed[0];
}

/** `http://localhost:8000`, `localhost:8000`, `8000`: does this upstream address name our port? */
function addrPort(addr: string, port: number): boolean {
  return new RegExp(`(^|:)${port}/?$`).test(addr.trim());
}

export interface ReconnectPolicy {
  maxAttempts: number;
  delayMs: number;
  backoff: number;
  maxDelayMs: number;
  /** After this long healthy since the last reconnect, the attempt count returns to 0. */
  resetAfterMs: number;
}

/** The wait before attempt `attempt` (1-based): the delay, times backoff for each earlier attempt, capped. */
export function reconnectDelay(attempt: number, policy: ReconnectPolicy): number {
  return Math.round(Math.min(policy.maxDelayMs, policy.delayMs * policy.backoff ** Math.max(0, attempt - 1)));
}

export interface MonitorState {
  /** Consecutive attempts since the count was last reset. */
  attempts: number;
  /** Successful reconnects since the start. */
  reconnects: number;
  /** Monotonic ms of the last (re)connect. */
  upSinceMs: number;
}

export type FailureDecision =
  | { action: 'reconnect'; attempt: number; delayMs: number }
  | { action: 'give-up'; attempts: number };

/** The tunnel failed (or an attempt did): try again after a delay, or give up when the attempts are spent. */
export function decideAfterFailure(state: MonitorState, policy: ReconnectPolicy, permanent = false): FailureDecision {
  if (permanent) return { action: 'give-up', attempts: state.attempts };
  const attempt = state.attempts + 1;
  if (attempt > policy.maxAttempts) return { action: 'give-up', attempts: state.attempts };
  return { action: 'reconnect', attempt, delayMs: reconnectDelay(attempt, policy) };
}

/** A passing check: after a long enough healthy period, the attempt count starts again. */
export function afterHealthyCheck(state: MonitorState, policy: ReconnectPolicy, nowMs: number): MonitorState {
  return state.attempts > 0 && nowMs - state.upSinceMs >= policy.resetAfterMs ? { ...state, attempts: 0 } : state;
}

export type ProbeOutcome =
  | { kind: 'response'; status: number; headers: Record<string, string> }
  | { kind: 'error'; message: string };

export interface CheckVerdict {
  ok: boolean;
  /** The tunnel works but the local service behind it does not answer: a reconnect would not help. */
  upstreamDown: boolean;
  detail: string;
}

/**
 * Is the tunnel healthy? It must be listed as up, and its public URL must answer. A 502 that ngrok
 * itself marks ERR_NGROK_8012 means the tunnel is fine and the local service is down: reported, not
 * reconnected. ngrok's "endpoint offline" (ERR_NGROK_3200) is a failed tunnel.
 */
export function assessCheck(
  listed: { ok: boolean; detail: string },
  probe: ProbeOutcome | undefined,
  path: string,
): CheckVerdict {
  if (!listed.ok) return { ok: false, upstreamDown: false, detail: listed.detail };
  if (!probe) return { ok: true, upstreamDown: false, detail: 'listed' };
  if (probe.kind === 'error')
    return { ok: false, upstreamDown: false, detail: `GET ${path} through the public URL: ${probe.message}` };
  const code = probe.headers['ngrok-error-code'];
  if (code === 'ERR_NGROK_8012')
    return {
      ok: true,
      upstreamDown: true,
      detail: `the tunnel answers, but the local service does not (HTTP ${probe.status}, ${code})`,
    };
  if (code)
    return {
      ok: false,
      upstreamDown: false,
      detail: `GET ${path} through the public URL: HTTP ${probe.status} ${code}`,
    };
  return { ok: true, upstreamDown: false, detail: `GET ${path} through the public URL: HTTP ${probe.status}` };
}

export type UrlSource = 'file' | 'api' | 'cache';

export interface UrlFacts {
  /** The URL file's content, and whether the process that wrote it still runs. */
  file?: { url: string; writerAlive: boolean };
  /** What the agent's local API lists (asked only when the file is not live). */
  api?: string;
  /** The last URL kept when the tunnel stopped (or a URL file whose writer is gone). */
  cached?: string;
}

export interface ResolvedUrl {
  url: string;
  source: UrlSource;
  stale: boolean;
}

/** PAT-014's order: the URL file (live writer), then the agent's API, then the last cached URL, marked stale. */
export function resolveUrl(facts: UrlFacts): ResolvedUrl | undefined {
  if (facts.file?.url && facts.file.writerAlive) return { url: facts.file.url, source: 'file', stale: false };
  if (facts.api) return { url: facts.api, source: 'api', stale: false };
  const cached = facts.cached ?? facts.file?.url;
  return cached ? { url: cached, source: 'cache', stale: true } : undefined;
}

/** What the supervisor keeps on disk for `status` and `url`. */
export interface TunnelState {
  pid: number;
  driver: TunnelDriverName;
  port: number;
  webAddr?: string;
  agentPid?: number;
  agentBin?: string;
  status: 'starting' | 'up' | 'reconnecting' | 'stopped' | 'failed';
  publicUrl?: string;
  startedAt: string;
  connectedAt?: string;
  reconnects: number;
  monitor: boolean;
  lastCheck?: { at: string; ok: boolean; detail: string };
  updatedAt: string;
}

export function parseState(text: string | undefined): TunnelState | undefined {
  if (!text) return undefined;
  try {
    const value = JSON.parse(text) as TunnelState;
    return typeof value.pid === 'number' && typeof value.status === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

export function parsePid(text: string | undefined): number | undefined {
  const match = /^\s*(\d+)\s*$/.exec(text ?? '');
  const pid = match ? Number(match[1]) : NaN;
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/** Is this argv (from /proc) an opskit tunnel supervisor? Guards against a recycled pid. */
export function isTunnelSupervisor(argv: readonly string[] | undefined): boolean {
  if (!argv) return true; // not Linux, or no permission: trust the pid
  const joined = argv.join(' ');
  return /opskit|bin\.js/.test(joined) && /\btunnel\b/.test(joined);
}

export interface StatusFacts {
  pid?: number;
  alive: boolean;
  state?: TunnelState;
  /** Agent driver only: the local API's answer. */
  api?: { answering: boolean; listed?: ListedTunnel; error?: string };
  nowMs: number;
}

export interface TunnelStatusReport {
  up: boolean;
  driver?: TunnelDriverName;
  process: { pid?: number; alive: boolean };
  api: { answering: boolean; url?: string; error?: string } | null;
  publicUrl?: string;
  status?: TunnelState['status'];
  uptimeMs?: number;
  reconnects: number;
  monitor: boolean;
  lastCheck?: TunnelState['lastCheck'];
  problems: string[];
}

/** Up means: the supervisor runs, its own state says the tunnel is up, and (agent) the local API lists it. */
export function tunnelStatus(facts: StatusFacts): TunnelStatusReport {
  const { state } = facts;
  // The state file may be a finished run's, or not yet written by the supervisor that now runs.
  const own = state !== undefined && state.pid === facts.pid;
  const live = facts.alive && own;
  const problems: string[] = [];
  if (facts.pid === undefined) problems.push('no tunnel is running (no PID file)');
  else if (!facts.alive) problems.push(`the PID file names pid ${facts.pid}, which is not running (stale)`);
  else if (!own) problems.push(`the supervisor (pid ${facts.pid}) has not reported its tunnel yet`);
  if (live && state.status !== 'up') problems.push(`the tunnel is ${state.status}`);
  if (facts.api && !facts.api.answering)
    problems.push(`the agent's local API does not answer (${facts.api.error ?? 'no answer'})`);
  else if (facts.api && !facts.api.listed) problems.push("the agent's local API lists no tunnel to the port");
  const connectedMs = state?.connectedAt ? Date.parse(state.connectedAt) : NaN;
  const up = problems.length === 0 && live;
  return {
    up,
    ...(state ? { driver: state.driver } : {}),
    process: { ...(facts.pid !== undefined ? { pid: facts.pid } : {}), alive: facts.alive },
    api: facts.api
      ? {
          answering: facts.api.answering,
          ...(facts.api.listed ? { url: facts.api.listed.publicUrl } : {}),
          ...(facts.api.error ? { error: facts.api.error } : {}),
        }
      : null,
    ...(state?.publicUrl ? { publicUrl: state.publicUrl } : {}),
    ...(state ? { status: live ? state.status : state.status === 'failed' ? 'failed' : 'stopped' } : {}),
    ...(up && Number.isFinite(connectedMs) ? { uptimeMs: Math.max(0, facts.nowMs - connectedMs) } : {}),
    reconnects: state?.reconnects ?? 0,
    monitor: state?.monitor ?? false,
    ...(state?.lastCheck ? { lastCheck: state.lastCheck } : {}),
    problems,
  };
}
