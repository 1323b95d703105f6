import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { formatDuration, parseDuration } from '../../src/runtime/duration.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['2d', 172_800_000],
    ['10', 10_000],
    ['1.5s', 1500],
  ])('%s', (text, ms) => expect(parseDuration(text)).toBe(ms));
  it.each(['', 'soon', '5x', '5m junk', 'm5'])('rejects %j as a usage error naming the flag', (text) => {
    expect(() => parseDuration(text, '--lock-wait')).toThrow(UsageError);
    expect(() => parseDuration(text, '--lock-wait')).toThrow(/--lock-wait/);
  });
  it('formats', () => {
    expect(formatDuration(12)).toBe('12ms');
    expect(formatDuration(1500)).toBe('1.50s');
    expect(formatDuration(61_000)).toBe('1m01s');
  });
});
