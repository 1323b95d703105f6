import { describe, expect, it } from 'vitest';
import { Redactor } from '../../src/config/redact.js';
import { buildAuditEntry, outcomeFor } from '../../src/runtime/audit.js';

describe('buildAuditEntry', () => {
  it('records the run with its arguments and error scrubbed', () => {
    const redactor = new Redactor(['s3cr3t-value']);
    const entry = buildAuditEntry(
      {
        time: '2026-12-01T00:00:00.000Z',
        user: 'ops',
        host: 'h',
        pid: 1,
        command: 'backup create',
        args: ['backup', 'create', '--database-url', 'postgresql://u:pw99@h/d', '--token=abc'],
        durationMs: 12.6,
        exitCode: 1,
        error: { code: 'E_X', message: 'failed with s3cr3t-value' },
      },
      redactor,
    );
    expect(entry).toEqual({
      time: '2026-12-01T00:00:00.000Z',
      user: 'ops',
      host: 'h',
      pid: 1,
      command: 'backup create',
      args: ['backup', 'create', '--database-url', 'postgresql://u:***@h/d', '--token=***'],
      outcome: 'failed',
      durationMs: 13,
      exitCode: 1,
      error: { code: 'E_X', message: 'failed with ***' },
    });
  });
  it('maps exit codes to outcomes', () => {
    expect([0, 1, 2, 3, 4].map(outcomeFor)).toEqual(['ok', 'failed', 'usage', 'check-failed', 'locked']);
  });
});
