import {
  chmodSync,
  existsSync,
  promises as fsp,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { nodeFs } from '../../src/adapters/fs.js';
import { planInit } from '../../src/init/action.js';
import {
  EXAMPLE_FILES,
  engineVars,
  filesFor,
  gunicornWorkers,
  INIT_FILES,
  projectNameFrom,
  renderTemplate,
  templateMode,
} from '../../src/init/templates.js';
import { runProgram } from '../helpers/program.js';

const vars = {
  project: 'shop',
  workers: 5,
  cpus: 2,
  upstream: 'web:8000',
  version: '0.1.0',
  dbPassword: 'pw',
  ...engineVars('compose', 'shop', { registry: undefined, edge: undefined }),
};

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

describe('init --engine swarm', () => {
  it('writes the Swarm compose file and nginx.conf instead of the one-host ones, no upstream file, no .env.offline', () => {
    const swarm = filesFor('swarm', true).map((f) => `${f.source} -> ${f.destination}`);
    expect(swarm).toContain('compose/docker-compose.swarm.yml -> compose/docker-compose.swarm.yml');
    expect(swarm).toContain('nginx/nginx.swarm.conf -> nginx/nginx.conf');
    expect(swarm).toContain('templates/example/env.swarm -> .env');
    expect(swarm.join('\n')).not.toMatch(/upstream\/web\.conf|\.env\.offline|docker-compose\.prod/);
    expect(filesFor('swarm', true).find((f) => f.destination === '.env')!.secret).toBe(true);
    expect(filesFor('compose', true)).toEqual([...INIT_FILES, ...EXAMPLE_FILES]);
  });
  it("names the lab's registry for the images and its first node as the edge", () => {
    const v = engineVars('swarm', 'shop', { registry: '10.231.0.1:5000', edge: '10.231.0.11' });
    expect(v).toMatchObject({
      engine: 'swarm',
      composeFile: 'compose/docker-compose.swarm.yml',
      imageNameLine: 'name: 10.231.0.1:5000/shop/web',
    });
    expect(v.registryBlock).toContain('registry:\n  address: 10.231.0.1:5000');
    expect(v.nginxUrlLine).toContain('url: http://10.231.0.11:8080');
    expect(v.labImages.split('\n')).toContain('POSTGRES_IMAGE=10.231.0.1:5000/opskit-test/postgres:15');
    // Outside the lab: a placeholder registry to edit, and no test images.
    expect(engineVars('swarm', 'shop', { registry: undefined, edge: undefined }).labImages).toBe('');
  });
});

describe('which files hold secrets (issue 15: secrets at rest)', () => {
  it('declares the env files secret (0600) in the templates list, and nothing else', () => {
    const secret = [...INIT_FILES, ...EXAMPLE_FILES].filter((f) => templateMode(f) === 0o600).map((f) => f.destination);
    expect(secret).toEqual(['.env', '.env.offline']);
    // .env.example holds names only, meant to be shared.
    expect(templateMode(INIT_FILES.find((f) => f.destination === '.env.example')!)).toBe(0o644);
  });
});

const modeOf = (file: string) => statSync(file).mode & 0o777;

describe("nodeFs.writeFileAtomic: the mode is the temporary file's from its creation", () => {
  it('creates the temporary file with the final mode (exclusively), never chmods it, and keeps a 0600 file 0600 when rewritten', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'opskit-fs-'));
    const file = path.join(dir, 'secret.env');
    const writes = vi.spyOn(fsp, 'writeFile');
    const chmods = vi.spyOn(fsp, 'chmod');
    try {
      await nodeFs.writeFileAtomic(file, 'A_TOKEN=1\n', { mode: 0o600 });
      expect(modeOf(file)).toBe(0o600);
      expect(writes.mock.calls[0]![2]).toEqual({ mode: 0o600, flag: 'wx' });
      // Rewritten without a mode: the file it replaces decides, so a secret stays owner-only.
      await nodeFs.writeFileAtomic(file, 'A_TOKEN=2\n');
      expect(writes.mock.calls[1]![2]).toEqual({ mode: 0o600, flag: 'wx' });
      expect(modeOf(file)).toBe(0o600);
      expect(readFileSync(file, 'utf8')).toBe('A_TOKEN=2\n');
      expect(chmods).not.toHaveBeenCalled();
    } finally {
      writes.mockRestore();
      chmods.mockRestore();
    }
    // A new file without a mode: 0644; an existing 0644 one given 0600 becomes 0600; no temporary file is left.
    await nodeFs.writeFileAtomic(path.join(dir, 'plain.json'), '{}\n');
    expect(modeOf(path.join(dir, 'plain.json'))).toBe(0o644 & ~process.umask());
    await nodeFs.writeFileAtomic(path.join(dir, 'plain.json'), '{}\n', { mode: 0o600 });
    expect(modeOf(path.join(dir, 'plain.json'))).toBe(0o600);
    expect(readdirSync(dir).sort()).toEqual(['plain.json', 'secret.env']);
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
    expect(readFileSync(path.join(dir, 'nginx/upstream/web.conf'), 'utf8')).toContain(
      'server unix:/run/opskit/live.sock',
    );
    const audit = readFileSync(path.join(dir, 'logs/opskit-audit.jsonl'), 'utf8').trim().split('\n');
    expect(audit).toHaveLength(1);
    expect(JSON.parse(audit[0]!)).toMatchObject({
      command: 'init',
      outcome: 'ok',
      exitCode: 0,
      args: ['init', '--workers', '7'],
    });

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

  it('--example writes .env (the generated password) and .env.offline 0600, the rest 0644; --force keeps them 0600', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'opskit-init-'));
    const first = await run(dir, ['init', '--example', '--json']);
    expect(first.code).toBe(0);
    expect(readFileSync(path.join(dir, '.env'), 'utf8')).toMatch(/^POSTGRES_PASSWORD=\S{20,}$/m);
    expect(modeOf(path.join(dir, '.env'))).toBe(0o600);
    expect(modeOf(path.join(dir, '.env.offline'))).toBe(0o600);
    for (const name of ['opskit.yaml', '.env.example', 'app.py', 'compose/docker-compose.prod.yml'])
      expect(modeOf(path.join(dir, name)), name).toBe(0o644 & ~process.umask());
    const files = JSON.parse(first.stdout).files as Array<{ path: string; mode: string }>;
    expect(files.find((f) => f.path === '.env')).toMatchObject({ mode: '0600' });
    expect(files.find((f) => f.path === 'opskit.yaml')).toMatchObject({ mode: '0644' });

    // An operator loosened it (or it predates this version): --force writes it 0600 again.
    chmodSync(path.join(dir, '.env'), 0o644);
    const dry = await run(dir, ['init', '--example', '--force', '--dry-run']);
    expect(dry.stderr).toContain('would overwrite .env (');
    expect(dry.stderr).toMatch(/would overwrite \.env \(\d+ bytes\) {2}# mode 0600, owner only: secrets go here/);
    expect((await run(dir, ['init', '--example', '--force'])).code).toBe(0);
    expect(modeOf(path.join(dir, '.env'))).toBe(0o600);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
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
