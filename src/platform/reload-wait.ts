/**
 * After `nginx -s reload` the command returns at once, while the master is still reading the new
 * configuration: for a moment the old workers keep accepting new connections and answer with the old
 * upstream. A switch is done only when every worker that was serving before the reload has been told to
 * shut down (its title becomes "nginx: worker process is shutting down", or it is gone) and a new worker
 * serves. These are the pure rules over a process list; nginx.ts reads the list.
 */

export interface NginxProcess {
  pid: number;
  /** The process title as `ps` or /proc/<pid>/cmdline shows it, e.g. "nginx: worker process". */
  command: string;
}

/** The workers that accept connections now (not the ones shutting down, not the master or cache processes). */
export function servingWorkers(processes: readonly NginxProcess[]): number[] {
  return processes
    .filter((p) => /^nginx: worker process\s*$/.test(p.command.replace(/\0/g, ' ').trim()))
    .map((p) => p.pid);
}

/**
 * Whether a reload has taken effect: no worker from before it still serves, and at least one new worker
 * does. With no workers known before (the list could not be read), there is nothing to wait for.
 */
export function reloadSettled(before: readonly number[], now: readonly NginxProcess[]): boolean {
  if (before.length === 0) return true;
  const serving = servingWorkers(now);
  const old = new Set(before);
  return serving.length > 0 && serving.every((pid) => !old.has(pid));
}
