import type { FsAdapter } from '../adapters/fs.js';
import type { Redactor } from '../config/redact.js';

export interface AuditEntry {
  time: string;
  user: string;
  host: string;
  pid: number;
  command: string;
  args: string[];
  outcome: 'ok' | 'failed' | 'check-failed' | 'usage' | 'locked';
  durationMs: number;
  exitCode: number;
  error?: { code: string; message: string };
}

export function outcomeFor(exitCode: number): AuditEntry['outcome'] {
  return exitCode === 0
    ? 'ok'
    : exitCode === 2
      ? 'usage'
      : exitCode === 3
        ? 'check-failed'
        : exitCode === 4
          ? 'locked'
          : 'failed';
}

/** Pure: the audit line, with arguments and messages scrubbed of secrets. */
export function buildAuditEntry(
  fields: Omit<AuditEntry, 'outcome' | 'args' | 'error'> & {
    args: readonly string[];
    error?: { code: string; message: string };
  },
  redactor: Redactor,
): AuditEntry {
  const entry: AuditEntry = {
    time: fields.time,
    user: fields.user,
    host: fields.host,
    pid: fields.pid,
    command: fields.command,
    args: redactor.scrubArgv(fields.args),
    outcome: outcomeFor(fields.exitCode),
    durationMs: Math.round(fields.durationMs),
    exitCode: fields.exitCode,
  };
  if (fields.error) entry.error = { code: fields.error.code, message: redactor.scrub(fields.error.message) };
  return entry;
}

export async function appendAudit(fs: FsAdapter, file: string, entry: AuditEntry): Promise<void> {
  await fs.appendLine(file, JSON.stringify(entry));
}
