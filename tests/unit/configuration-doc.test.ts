import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';

/** docs/configuration.md against the schema: the two cannot drift (issue 17). */
const DOC = path.resolve(import.meta.dirname, '../../docs/configuration.md');

type Node = {
  _zod: {
    def: { type: string; innerType?: Node; in?: Node; shape?: Record<string, Node>; entries?: Record<string, string> };
  };
};

/** Through defaults, optionals and pipes to the schema that says what a key is. */
function unwrap(schema: Node): Node {
  let node = schema;
  for (;;) {
    const def = node._zod.def;
    if (def.innerType) node = def.innerType;
    else if (def.type === 'pipe' && def.in) node = def.in;
    else return node;
  }
}

/** Every key of opskit.yaml (`section.key`), with its enum values when it has some. */
function schemaKeys(): Map<string, { values: string[] | undefined }> {
  const keys = new Map<string, { values: string[] | undefined }>();
  for (const [section, node] of Object.entries(unwrap(configSchema as unknown as Node)._zod.def.shape ?? {})) {
    for (const [key, value] of Object.entries(unwrap(node)._zod.def.shape ?? {})) {
      const entries = unwrap(value)._zod.def.entries;
      keys.set(`${section}.${key}`, { values: entries ? Object.keys(entries) : undefined });
    }
  }
  return keys;
}

/** A default as the page shows it: `8000`, `""`, `[db, redis]`, `{}`. */
function shown(value: unknown): string {
  if (Array.isArray(value)) return `\`[${value.join(', ')}]\``;
  if (typeof value === 'string') return value === '' ? '`""`' : `\`${value}\``;
  if (value && typeof value === 'object') return Object.keys(value).length ? `\`${JSON.stringify(value)}\`` : '`{}`';
  return `\`${String(value)}\``;
}

/** The page's rows: key -> its default cell and its whole row. */
function documented(): Map<string, { default: string; row: string }> {
  const rows = new Map<string, { default: string; row: string }>();
  for (const line of readFileSync(DOC, 'utf8').split('\n')) {
    const match = /^\| `([a-zA-Z0-9]+\.[a-zA-Z0-9]+)` \| ([^|]*) \|/.exec(line);
    if (match) rows.set(match[1]!, { default: match[2]!.trim(), row: line });
  }
  return rows;
}

describe('docs/configuration.md', () => {
  const keys = schemaKeys();
  const rows = documented();
  // project.name's default is the directory's name: the schema cannot hold it.
  const defaults = configSchema.parse({ project: { name: 'x' } }) as unknown as Record<string, Record<string, unknown>>;

  it('documents every key of the schema, and no other', () => {
    expect(keys.size).toBeGreaterThan(80);
    expect([...rows.keys()].sort()).toEqual([...keys.keys()].sort());
  });

  it("shows each key's default as the schema has it", () => {
    const wrong: string[] = [];
    for (const key of keys.keys()) {
      const [section, name] = key.split('.') as [string, string];
      const value = key === 'project.name' ? undefined : defaults[section]?.[name];
      if (value === undefined) continue;
      if (rows.get(key)?.default !== shown(value))
        wrong.push(`${key}: page ${rows.get(key)?.default}, schema ${shown(value)}`);
    }
    expect(wrong).toEqual([]);
  });

  it('names every value an enum key takes', () => {
    const missing: string[] = [];
    for (const [key, { values }] of keys) {
      for (const value of values ?? [])
        if (!rows.get(key)?.row.includes(`\`${value}\``)) missing.push(`${key}: ${value}`);
    }
    expect(missing).toEqual([]);
  });
});
