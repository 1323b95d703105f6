import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The house's rules (issue 17), checked on the code as it stands: imports only run down, capabilities do
 * not reach into each other or into the CLI, and a file longer than ~400 lines says why at its top.
 */
const SRC = path.resolve(import.meta.dirname, '../../src');

/** The floors, from the ground up: a file imports only from floors below its own, or from its own folder. */
const FLOORS: ReadonlyArray<readonly string[]> = [
  ['errors.ts', 'sensitive.ts', 'version.ts'],
  ['adapters'],
  ['config'],
  ['output'],
  ['runtime'],
  ['platform'],
  // The capabilities: one floor, and no capability imports another.
  ['backup', 'build', 'cutover', 'deploy', 'doctor', 'health', 'init', 'loadtest', 'tunnel'],
  ['cli'],
  ['program.ts'],
  ['bin.ts'],
];

const roomOf = (file: string) => path.relative(SRC, file).split(path.sep)[0]!;
const floorOf = (room: string) => FLOORS.findIndex((rooms) => rooms.includes(room));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

/** Every relative import (static, type-only, or dynamic) of a file, as the file it names. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from|import\(|^import)\s*'(\.{1,2}\/[^']+)'/gm)].map((m) =>
    path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, '.ts')),
  );
}

describe('the house', () => {
  const files = sources(SRC);

  it('places every file of src/ on a floor', () => {
    expect(files.map(roomOf).filter((room) => floorOf(room) < 0)).toEqual([]);
  });

  it('imports only run down: no arrow to a higher floor, none to a sibling capability, none into cli/', () => {
    const wrong: string[] = [];
    for (const file of files) {
      const room = roomOf(file);
      for (const target of importsOf(file)) {
        const to = roomOf(target);
        if (to === room) continue;
        if (floorOf(to) >= floorOf(room)) wrong.push(`${path.relative(SRC, file)} -> ${path.relative(SRC, target)}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('keeps comments within 120 columns (Biome keeps the code there)', () => {
    const long: string[] = [];
    for (const file of files) {
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (line.length > 120 && /^\s*(\/\/|\/\*\*|\*)/.test(line)) long.push(`${path.relative(SRC, file)}:${i + 1}`);
        });
    }
    expect(long).toEqual([]);
  });

  it('says why at its top when a file is longer than 400 lines', () => {
    const long = files.filter((file) => {
      const lines = readFileSync(file, 'utf8').split('\n');
      return lines.length > 400 && !/Longer than 400 lines:/.test(lines.slice(0, 12).join('\n'));
    });
    expect(long.map((f) => path.relative(SRC, f))).toEqual([]);
  });
});
