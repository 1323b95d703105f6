import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

/** Facts about this process and host, and whether another process is alive. */
export interface SystemAdapter {
  pid: number;
  hostname(): string;
  user(): string;
  cpuCount(): number;
  /** This process's user and group ids (what files it creates are owned by). */
  ids(): { uid: number; gid: number };
  isPidAlive(pid: number): boolean;
  /** A live process's argv (Linux /proc), to tell our process from a recycled pid; undefined when unknown. */
  processArgv(pid: number): string[] | undefined;
  /** The direct children of a process (Linux /proc): pid and command line, NULs as spaces; [] when unknown. */
  childProcesses(ppid: number): { pid: number; command: string }[];
  /** Sends a signal; false when the process does not exist. */
  kill(pid: number, signal: NodeJS.Signals): boolean;
  /** How to run this same CLI again (for `tunnel start --detach`): node and the entry script. */
  selfCommand(): [file: string, args: string[]];
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
  ids: () => ({ uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }),
  onInterrupt: (handler) => {
    const listener = (signal: string) => handler(signal);
    process.on('SIGINT', listener);
    process.on('SIGTERM', listener);
    return () => {
      process.off('SIGINT', listener);
      process.off('SIGTERM', listener);
    };
  },
  processArgv: (pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    } catch {
      return undefined;
    }
  },
  childProcesses: (ppid) => {
    const children: { pid: number; command: string }[] = [];
    let entries: string[];
    try {
      entries = readdirSync('/proc');
    } catch {
      return [];
    }
    for (const entry of entries) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        // The parent pid is the 4th field of /proc/<pid>/stat, after the command in parentheses.
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (parent !== ppid) continue;
        const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0+$/, '').replace(/\0/g, ' ');
        children.push({ pid: Number(entry), command });
      } catch {
        // The process ended while we looked.
      }
    }
    return children;
  },
  kill: (pid, signal) => {
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  },
  selfCommand: () => [process.execPath, [process.argv[1]!]],
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
