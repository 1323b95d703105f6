import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { FsAdapter } from './fs.js';

export interface ExecOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
  input?: string;
  /** Called with each line of stdout and stderr as it arrives (the result still holds all of it). */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
}

export interface ExecResult {
  argv: string[];
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  /** Non-zero exit, a signal, a timeout or a missing binary. */
  failed: boolean;
  timedOut: boolean;
  /** The executable was not found (ENOENT). */
  notFound: boolean;
}

/** A running process whose stdout (or stdin) is a stream: pg_dump into gzip, gunzip into psql. */
export interface StreamingProcess {
  stdout: Readable;
  stdin: Writable;
  /** Resolves when it exits; stderr is kept (its last 64 KiB). */
  done: Promise<{
    exitCode: number | undefined;
    signal: string | undefined;
    stderr: string;
    failed: boolean;
    notFound: boolean;
  }>;
  kill(): void;
}

/** A long-running child the caller supervises: the ngrok agent. */
export interface SupervisedProcess {
  pid: number | undefined;
  /** Resolves (never rejects) when it has exited, for whatever reason, or could not start. */
  exited: Promise<{ exitCode: number | undefined; signal: string | undefined; notFound: boolean }>;
  kill(signal?: NodeJS.Signals): void;
}

/** Processes: always an argv array through execa, never a shell string. Never throws on a non-zero exit. */
export interface ExecAdapter {
  /** Starts a process that runs until told to stop; each line of its stdout and stderr goes to onLine. */
  start(
    file: string,
    args: readonly string[],
    options: {
      cwd?: string;
      env?: Record<string, string | undefined>;
      onLine(line: string, stream: 'stdout' | 'stderr'): void;
    },
  ): Promise<SupervisedProcess>;
  /**
   * Starts a process in its own session that outlives this one, stdout and stderr appended to logFile; returns its pid.
   */
  spawnDetached(
    file: string,
    args: readonly string[],
    options: { cwd?: string; env?: Record<string, string | undefined>; logFile: string },
  ): Promise<number>;
  stream(
    file: string,
    args: readonly string[],
    options: { env?: Record<string, string | undefined>; stdin: 'pipe' | 'ignore' },
  ): Promise<StreamingProcess>;
  run(file: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** The absolute path of an executable on PATH (or the path itself when it has a slash), or undefined. */
  which(name: string, env?: Record<string, string | undefined>): Promise<string | undefined>;
}

export function createExecAdapter(fs: FsAdapter): ExecAdapter {
  return {
    async start(file, args, options) {
      const { execa } = await import('execa');
      const child = execa(file, [...args], {
        cwd: options.cwd,
        env: options.env,
        extendEnv: options.env === undefined,
        stdin: 'ignore',
        stdout: 'pipe',
        stderr: 'pipe',
        buffer: false,
        reject: false,
        windowsHide: true,
      });
      for (const stream of ['stdout', 'stderr'] as const)
        splitLines(child[stream], (line) => options.onLine(line, stream));
      const exited = child.then(
        (r) => ({ exitCode: r.exitCode, signal: r.signal, notFound: isNotFound(r) }),
        () => ({ exitCode: undefined, signal: undefined, notFound: false }),
      );
      return { pid: child.pid, exited, kill: (signal = 'SIGTERM') => void child.kill(signal) };
    },
    async spawnDetached(file, args, options) {
      const { execa } = await import('execa');
      const { mkdirSync, openSync, closeSync } = await import('node:fs');
      mkdirSync(path.dirname(options.logFile), { recursive: true });
      // A file descriptor, not execa's `{ file }`: that one is piped through this process, which exits.
      // (execa passes any fd number to spawn; its types list only 3 to 9.)
      const fd = openSync(options.logFile, 'a');
      try {
        const child = execa(file, [...args], {
          cwd: options.cwd,
          env: options.env,
          extendEnv: options.env === undefined,
          detached: true,
          stdio: ['ignore', fd, fd] as unknown as ['ignore', 'inherit', 'inherit'],
          reject: false,
          windowsHide: true,
          cleanup: false,
        });
        child.catch(() => undefined);
        child.unref();
        if (child.pid === undefined) throw new Error(`could not start ${file}`);
        return child.pid;
      } finally {
        closeSync(fd);
      }
    },
    async stream(file, args, options) {
      const { execa } = await import('execa');
      const child = execa(file, [...args], {
        env: options.env,
        extendEnv: options.env === undefined,
        stdin: options.stdin,
        stdout: 'pipe',
        stderr: 'pipe',
        buffer: { stdout: false, stderr: true },
        reject: false,
        windowsHide: true,
        maxBuffer: { stderr: 65_536 },
      });
      const done = child.then((r) => ({
        exitCode: r.exitCode,
        signal: r.signal,
        stderr: typeof r.stderr === 'string' ? r.stderr : '',
        failed: r.failed,
        notFound: isNotFound(r),
      }));
      return {
        stdout: child.stdout!,
        stdin: child.stdin ?? (undefined as never),
        done,
        kill: () => child.kill('SIGTERM'),
      };
    },
    async run(file, args, options = {}) {
      // Loaded on first use: `opskit --help` never pays for it.
      const { execa } = await import('execa');
      const subprocess = execa(file, [...args], {
        cwd: options.cwd,
        env: options.env,
        extendEnv: options.env === undefined,
        timeout: options.timeoutMs,
        input: options.input,
        stdin: options.input === undefined ? 'ignore' : 'pipe',
        reject: false,
        stripFinalNewline: true,
        windowsHide: true,
      });
      if (options.onLine) {
        for (const stream of ['stdout', 'stderr'] as const)
          splitLines(subprocess[stream], (line) => options.onLine!(line, stream));
      }
      const result = await subprocess;
      const notFound = isNotFound(result);
      return {
        argv: [file, ...args],
        exitCode: result.exitCode,
        stdout: typeof result.stdout === 'string' ? result.stdout : '',
        stderr: typeof result.stderr === 'string' ? result.stderr : '',
        failed: result.failed,
        timedOut: result.timedOut,
        notFound,
      };
    },
    async which(name, env = process.env) {
      if (name.includes('/')) return (await fs.isExecutable(name)) ? path.resolve(name) : undefined;
      for (const dir of (env.PATH ?? '').split(path.delimiter)) {
        if (!dir) continue;
        const candidate = path.join(dir, name);
        if (await fs.isExecutable(candidate)) return candidate;
      }
      return undefined;
    },
  };
}

/** The executable was not there (spawn's ENOENT), as execa reports it. */
function isNotFound(result: { cause?: unknown }): boolean {
  return (result as { code?: string }).code === 'ENOENT' || /ENOENT/.test(String(result.cause ?? ''));
}

function splitLines(stream: Readable | null | undefined, onLine: (line: string) => void): void {
  let pending = '';
  stream?.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) onLine(line.replace(/\r$/, ''));
  });
  stream?.on('end', () => {
    if (pending) onLine(pending);
  });
}
