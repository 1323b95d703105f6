import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { planInit } from '../../src/init/action.js';
import { INIT_FILES, gunicornWorkers, projectNameFrom, renderTemplate } from '../../src/init/templates.js';
import { runProgram } from '../helpers/program.js';

const vars = { project: 'shop', workers: 5, cpus: 2, upstream: 'web:8000', version: '0.1.0', dbPassword: 'pw' };

describe('templates', () => {
  it('renders placeholders and rejects unknown ones', () => {
    expect(renderTemplate('name={{project}} w={{ workers }}', vars)).toBe('name=shop w=5');
    expect(() => renderTemplate('{{nope}}', vars, 't')).toThrow('t: unknown placeholder {{nope}}');
  });
  it('computes gunicorn workers as 2 x CPUs + 1 (PAT-018)', () => {
    expect([1, 2, 4].map(gunicornWorkers)).toEqual([3, 5, 9]);
  });
  it('names a project after its directory', () => {
    expect(projectNameFrom('/srv/My Shop!')).toBe('my-shop');
    expect(projectNameFrom('/')).toBe('app');
  });
});

describe('planInit', () => {
  it('plans every write, or lists the conflicts without --force', () => {
    const files = [
      { path: 'a', content: 'x', exists: false },
      { path: 'b', content: 'yy', exists: true },
    ];
    expect(planInit(files, false)).toEqual({ steps: [], conflicts: ['b'] });
    expect(planInit(files, true).steps).toEqual([
      { kind: 'write', path: 'a', bytes: 1, overwrite: false },
      { kind: 'write', path: 'b', bytes: 2, overwrite: true },
    ]);
  });
});

const run = (cwd: string, args: string[]) => runProgram(args, { cwd });

describe('opskit init (in process, real files)', () => {
  it('writes every template with the workers rendered, then refuses to overwrite (exit 2, nothing changed)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'opskit-init-'));
    const first = await run(dir, ['init', '--workers', '7']);
    expect(first.code).toBe(0);
    for (const file of INIT_FILES) expect(existsSync(path.join(dir, file.destination))).toBe(true);
    expect(readFileSync(path.join(dir, 'Dockerfile.prod'), 'utf8')).toContain('WEB_CONCURRENCY=7');
    expect(readFileSync(path.join(dir, 'nginx/upstream/web.conf'), 'utf8')).toContain('server unix:/run/opskit/live.sock');
    const audit = readFileSync(path.join(dir, 'logs/opskit-audit.jsonl'), 'utf8').trim().split('\n');
    expect(audit).toHaveLength(1);
    expect(JSON.parse(audit[0]!)).toMatchObject({ command: 'init', outcome: 'ok', exitCode: 0, args: ['init', '--workers', '7'] });

    writeFileSync(path.join(dir, 'opskit.yaml'), 'project:\n  name: mine\n');
    const second = await run(dir, ['init']);
    expect(second.code).toBe(2);
    expect(second.stderr).toContain('init would overwrite 10 existing file(s): opskit.yaml, Dockerfile.prod');
    expect(readFileSync(path.join(dir, 'opskit.yaml'), 'utf8')).toBe('project:\n  name: mine\n');
    expect(readFileSync(path.join(dir, 'logs/opskit-audit.jsonl'), 'utf8').trim().split('\n')).toHaveLength(1);

    const forced = await run(dir, ['init', '--force', '--json']);
    expect(forced.code).toBe(0);
    const doc = JSON.parse(forced.stdout);
    expect(doc.files.every((f: { action: string }) => f.action === 'overwritten')).toBe(true);
  });

  it('--dry-run lists the files it would write and writes nothing at all', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'opskit-init-'));
    const result = await run(dir, ['init', '--dry-run']);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('[dry run] would write compose/docker-compose.prod.yml');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('rejects a bad --workers with exit 2', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'opskit-init-'));
    const result = await run(dir, ['init', '--workers', 'many']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--workers: expected a positive integer');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('the opskit.yaml it writes is a valid config', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'opskit-init-'));
    await run(dir, ['init']);
    const config = await run(dir, ['config', '--json']);
    expect(config.code).toBe(0);
    expect(JSON.parse(config.stdout).config.project.name).toBe(path.basename(dir).toLowerCase());
  });
});
