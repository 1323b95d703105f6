import os from 'node:os';

/** Facts about this process and host, and whether another process is alive. */
export interface SystemAdapter {
  pid: number;
  hostname(): string;
  user(): string;
  cpuCount(): number;
  isPidAlive(pid: number): boolean;
  /** Runs `handler` on SIGINT or SIGTERM (instead of dying); returns the function that stops listening. */
  onInterrupt(handler: (signal: string) => void): () => void;
}

export const nodeSystem: SystemAdapter = {
  pid: process.pid,
  hostname: () => os.hostname(),
  user: () => {
    try {
      return os.userInfo().username;
    } catch {
      return process.env.USER ?? String(process.getuid?.() ?? 'unknown');
    }
  },
  cpuCount: () => os.availableParallelism(),
  onInterrupt: (handler) => {
    const listener = (signal: string) => handler(signal);
    process.on('SIGINT', listener);
    process.on('SIGTERM', listener);
    return () => {
      process.off('SIGINT', listener);
      process.off('SIGTERM', listener);
    };
  },
  isPidAlive: (pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch (error) {
      // EPERM: it exists, it is just not ours to signal.
      return (error as { code?: string }).code === 'EPERM';
    }
  },
};
