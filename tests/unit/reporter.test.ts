import { describe, expect, it } from 'vitest';
import { Redactor } from '../../src/config/redact.js';
import { Reporter } from '../../src/output/reporter.js';
import { renderTable } from '../../src/output/table.js';
import { Sensitive } from '../../src/sensitive.js';
import { ANSI, BufferStream, manualClock } from '../helpers/fakes.js';

function reporter(
  options: Partial<{ json: boolean; quiet: boolean; verbose: boolean; color: boolean; tty: boolean }> = {},
) {
  const stdout = new BufferStream(options.tty ?? false);
  const stderr = new BufferStream(options.tty ?? false);
  const r = new Reporter({
    json: options.json ?? false,
    quiet: options.quiet ?? false,
    verbose: options.verbose ?? false,
    color: options.color ?? true,
    stdout,
    stderr,
    clock: manualClock(),
    redactor: new Redactor(['hunter2hunter2']),
  });
  return { r, stdout, stderr };
}

describe('Reporter', () => {
  it('prints one plain, timestamped line per step when stderr is not a TTY, with no colour', () => {
    const { r, stderr, stdout } = reporter();
    const step = r.step('building image');
    step.succeed('built image');
    r.warn('cache miss');
    expect(stderr.text).toBe(
      '2026-12-01T12:00:00.000Z step  building image\n2026-12-01T12:00:00.000Z ok    built image\n2026-12-01T12:00:00.000Z warn  cache miss\n',
    );
    expect(stdout.text).toBe('');
    expect(r.interactive).toBe(false);
  });

  it('--quiet keeps warnings and errors only', () => {
    const { r, stderr } = reporter({ quiet: true });
    r.step('a').succeed();
    r.info('b');
    r.warn('c');
    r.error('d');
    expect(stderr.text).toMatch(/warn {2}c\n.*fail {2}d\n$/);
    expect(stderr.text).not.toMatch(/ a\n| b\n/);
  });

  it('writes exactly one JSON document, scrubbed, and nothing human on stdout', () => {
    const { r, stdout } = reporter({ json: true, tty: true });
    r.result('human text');
    r.json({ schemaVersion: 1, password: new Sensitive('hunter2hunter2'), note: 'x hunter2hunter2' });
    expect(JSON.parse(stdout.text)).toEqual({ schemaVersion: 1, password: '***', note: 'x ***' });
    expect(stdout.text).not.toMatch(ANSI);
    expect(() => r.json({})).toThrow(/second JSON document/);
  });

  it('scrubs secrets from every line', () => {
    const { r, stderr, stdout } = reporter();
    r.info('url postgresql://u:hunter2hunter2@h/d');
    r.result('value hunter2hunter2');
    expect(stderr.text + stdout.text).not.toContain('hunter2hunter2');
  });

  it('uses colour only on a TTY and never with --no-color', () => {
    expect(reporter({ tty: true }).r.out.level).toBe(1);
    expect(reporter({ tty: true, color: false }).r.out.level).toBe(0);
    expect(reporter({ tty: false }).r.err.level).toBe(0);
  });
});

describe('renderTable', () => {
  it('aligns columns', () => {
    expect(
      renderTable(
        ['A', 'LONGER'],
        [
          ['xx', 'y'],
          ['z', 'w'],
        ],
      ),
    ).toBe('A   LONGER\n--  ------\nxx  y\nz   w');
  });
});
