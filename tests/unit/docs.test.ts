import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { createProgram } from '../../src/program.js';
import { BufferStream } from '../helpers/fakes.js';

/** The docs against the CLI (issue 17): a short README, one page per command, every flag on it, no dead link. */
const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (relative: string) => readFileSync(path.join(ROOT, relative), 'utf8');

/** Every command the README's table links, each with its page docs/<command>.md. */
const COMMANDS = [
  'build',
  'deploy',
  'cutover',
  'rollback',
  'status',
  'health',
  'backup',
  'tunnel',
  'loadtest',
  'init',
  'doctor',
  'config',
];

/** Pages written by others: a link to them may come before the page does. */
const MAY_NOT_EXIST_YET = new Set(['docs/configuration.md', 'CONTRIBUTING.md']);

/** The sections of a command's page, in this order. */
const SECTIONS = ['## Usage', '## Flags', '## What it does', '## JSON output', '## Exit codes', '## Example'];

function program(): Command {
  const out = new BufferStream();
  return createProgram({ stdout: out, stderr: out, env: {}, cwd: ROOT, argv: [] });
}

/** The long flags a command's help lists: its own options, the hidden ones left out. */
function longFlags(command: Command): string[] {
  return command.options.filter((option) => !option.hidden && option.long).map((option) => option.long!);
}

/** `--build` is mentioned only as itself, not inside `--build-arg`. */
function mentions(text: string, flag: string): boolean {
  const escaped = flag.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(?<![\\w-])${escaped}(?![\\w-])`).test(text);
}

/** Lines as `wc -l` counts them. */
function lineCount(text: string): number {
  return text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
}

/** The targets of a Markdown file's links, outside fenced code blocks. */
function linkTargets(text: string): string[] {
  const prose = text.replace(/^```[^\n]*\n[\s\S]*?^```/gm, '');
  return [...prose.matchAll(/\]\(([^)\s]+)\)/g)].map((match) => match[1]!);
}

/** README.md and every page under docs/, as paths from the repo root. */
function markdownFiles(): string[] {
  const pages = readdirSync(path.join(ROOT, 'docs')).filter((name) => name.endsWith('.md'));
  return ['README.md', ...pages.sort().map((name) => `docs/${name}`)];
}

describe('README.md', () => {
  const readme = read('README.md');

  it('is at most 250 lines', () => {
    expect(lineCount(readme)).toBeLessThanOrEqual(250);
  });

  it("links every command's page, and each page exists", () => {
    const targets = new Set(linkTargets(readme).map((target) => target.split('#')[0]));
    for (const command of COMMANDS) {
      expect(targets, `README.md links docs/${command}.md`).toContain(`docs/${command}.md`);
      expect(existsSync(path.join(ROOT, 'docs', `${command}.md`)), `docs/${command}.md exists`).toBe(true);
    }
  });

  it('names every command the program has (a new command needs a page)', () => {
    expect(
      program()
        .commands.map((command) => command.name())
        .sort(),
    ).toEqual([...COMMANDS].sort());
  });
});

describe('the command pages', () => {
  const commands = program().commands;

  it.each(COMMANDS)('docs/%s.md has its sections in order', (name) => {
    const text = read(`docs/${name}.md`);
    const positions = SECTIONS.map((heading) => text.search(new RegExp(`^${heading}$`, 'm')));
    for (const [i, heading] of SECTIONS.entries())
      expect(positions[i], `${heading} in docs/${name}.md`).toBeGreaterThan(-1);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
  });

  it.each(COMMANDS)('docs/%s.md mentions every flag its --help lists', (name) => {
    const command = commands.find((c) => c.name() === name)!;
    const text = read(`docs/${name}.md`);
    const listed = [
      ...longFlags(command).map((flag) => ({ where: `opskit ${name}`, flag })),
      ...command.commands.flatMap((sub) =>
        longFlags(sub).map((flag) => ({ where: `opskit ${name} ${sub.name()}`, flag })),
      ),
    ];
    const missing = listed.filter(({ flag }) => !mentions(text, flag)).map(({ where, flag }) => `${where} ${flag}`);
    expect(missing, `flags missing from docs/${name}.md`).toEqual([]);
  });

  it('docs/conventions.md mentions every global option', () => {
    const text = read('docs/conventions.md');
    const missing = longFlags(program()).filter((flag) => !mentions(text, flag));
    expect(missing).toEqual([]);
  });

  it('every JSON schema is linked from a page', () => {
    const pages = markdownFiles()
      .filter((file) => file.startsWith('docs/'))
      .map((file) => read(file));
    for (const schema of readdirSync(path.join(ROOT, 'schemas')).filter((name) => name.endsWith('.json')))
      expect(
        pages.some((text) => text.includes(`](../schemas/${schema})`)),
        `schemas/${schema} is linked`,
      ).toBe(true);
  });
});

describe('links', () => {
  it.each(markdownFiles())('every relative link in %s resolves to a file', (file) => {
    const dead: string[] = [];
    for (const target of linkTargets(read(file))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')) continue;
      const relative = path.relative(ROOT, path.resolve(path.dirname(path.join(ROOT, file)), target.split('#')[0]!));
      if (existsSync(path.join(ROOT, relative))) continue;
      if (MAY_NOT_EXIST_YET.has(relative)) continue;
      dead.push(target);
    }
    expect(dead, `dead links in ${file}`).toEqual([]);
  });
});
