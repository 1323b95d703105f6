import { describe, expect, it } from 'vitest';
import { interpolate } from '../../src/config/interpolate.js';

describe('interpolate', () => {
  const env = { A: 'alpha', EMPTY: '' };
  it.each([
    ['${A}', 'alpha'],
    ['x-${A}-y', 'x-alpha-y'],
    ['${B:-dflt}', 'dflt'],
    ['${EMPTY:-dflt}', 'dflt'],
    ['${EMPTY-dflt}', ''],
    ['${B-dflt}', 'dflt'],
    ['$$A', '$A'],
    ['cost $5', 'cost $5'],
    ['${A:?needed}', 'alpha'],
  ])('%s -> %s', (input, expected) => {
    const result = interpolate(input, env);
    expect(result.errors).toEqual([]);
    expect(result.value).toBe(expected);
  });
  it('reports unset variables instead of substituting nothing', () => {
    expect(interpolate('${NOPE}', env).errors).toEqual(['${NOPE} is not set']);
    expect(interpolate('${EMPTY:?give it}', env).errors).toEqual(['${EMPTY} is not set: give it']);
  });
  it('reports a malformed reference', () => {
    expect(interpolate('${not valid}', env).errors).toEqual(['invalid interpolation "${not valid}"']);
  });
  it('names the variables it read', () => {
    expect(interpolate('${A}/${B:-x}', env).variables).toEqual(['A', 'B']);
  });
});
