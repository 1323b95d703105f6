import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const REPO = path.resolve(import.meta.dirname, '../..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

/** The bundle's external packages, as scripts/bundle.mjs lists them. */
function externals(): string[] {
  const text = readFileSync(path.join(REPO, 'scripts/bundle.mjs'), 'utf8');
  const list = /external: \[([^\]]*)\]/.exec(text)?.[1] ?? '';
  return [...list.matchAll(/'([^']+)'/g)].map((m) => m[1]!);
}

const isExternal = (pkg: string, list: readonly string[]) =>
  list.some((e) => (e.endsWith('/*') ? pkg.startsWith(e.slice(0, -1)) : pkg === e));

describe('the bundle (bin/opskit)', () => {
  it('leaves outside every CommonJS package src/ imports dynamically (inside a split bundle it would keep only its default export)', () => {
    const list = externals();
    expect(list).toContain('dockerode');
    const dynamic = new Set<string>();
    for (const file of sources(path.join(REPO, 'src'))) {
      for (const m of readFileSync(file, 'utf8').matchAll(/await import\('([^'.][^']*)'\)/g))
        if (!m[1]!.startsWith('node:')) dynamic.add(m[1]!);
    }
    expect(dynamic.size).toBeGreaterThan(3);
    const offenders = [...dynamic].filter((pkg) => {
      if (isExternal(pkg, list)) return false;
      const manifest = JSON.parse(readFileSync(path.join(REPO, 'node_modules', pkg, 'package.json'), 'utf8')) as {
        type?: string;
      };
      return manifest.type !== 'module';
    });
    expect(offenders).toEqual([]);
  });
});
