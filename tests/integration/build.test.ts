import { execa } from 'execa';
import { appendFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSingleJson } from '../helpers/cli.js';
import { docker } from '../helpers/docker.js';
import { createPlatform, type Platform } from '../helpers/platform.js';

describe('opskit build, on the real engine', () => {
  let p: Platform;
  beforeAll(async () => {
    p = await createPlatform('opskit-build-');
    // A file the .dockerignore keeps out, and a git checkout for the revision tag.
    writeFileSync(path.join(p.dir, 'local-notes.txt'), 'not for the image\n');
    appendFileSync(path.join(p.dir, '.dockerignore'), 'local-notes.txt\n');
    await execa('git', ['init', '-q'], { cwd: p.dir });
    await execa('git', ['-c', 'user.email=t@t', '-c', 'user.name=t', 'add', '-A'], { cwd: p.dir });
    await execa('git', ['-c', 'user.email=t@t', '-c', 'user.name=t', 'commit', '-qm', 'init'], { cwd: p.dir });
  });
  afterAll(async () => {
    await p?.destroy();
  });

  it('builds the sample platform: tagged with the git sha and latest, non-root, without the builder stage\'s files', async () => {
    const sha = (await execa('git', ['rev-parse', '--short', 'HEAD'], { cwd: p.dir })).stdout.trim();
    const r = await p.run(['build', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = parseSingleJson(r.stdout);
    expect(doc.tags).toEqual([`${p.project}:${sha}`, `${p.project}:latest`]);
    expect(doc.stages).toMatchObject([{ name: 'builder' }, { name: 'runtime' }]);
    expect(doc.finalVsBuilder).toMatchObject({ finalBytes: doc.sizeBytes, builderBytes: expect.any(Number) });
    expect(doc.buildArgs).toMatchObject({ BASE_IMAGE: 'opskit-test/python:3.11', APP_VERSION: sha });
    const inspect = JSON.parse((await docker(['image', 'inspect', `${p.project}:latest`])).stdout)[0];
    expect(inspect.Id).toBe(doc.imageId);
    expect(inspect.Size).toBe(doc.sizeBytes);
    expect(inspect.Config.User).toBe('appuser');
    const run = (cmd: string[]) => docker(['run', '--rm', '--entrypoint', cmd[0]!, `${p.project}:latest`, ...cmd.slice(1)], { reject: false });
    expect((await run(['id', '-un'])).stdout.trim()).toBe('appuser');
    expect((await run(['test', '-e', '/build'])).exitCode).toBe(1); // the builder's workdir
    expect((await run(['test', '-e', '/install'])).exitCode).toBe(1); // the builder's install prefix
    expect((await run(['test', '-e', '/app/local-notes.txt'])).exitCode).toBe(1); // .dockerignore
    expect((await run(['test', '-e', '/app/.git'])).exitCode).toBe(1);
    expect((await run(['test', '-e', '/app/migrations/0001_create_items.sql'])).exitCode).toBe(0);
  });

  it('a second build with nothing changed comes entirely from the cache', async () => {
    const first = parseSingleJson((await p.run(['build', '--json'])).stdout);
    const again = parseSingleJson((await p.run(['build', '--json'])).stdout);
    expect(again.imageId).toBe(first.imageId);
    expect(again.cachedSteps).toBe(again.cacheableSteps);
    expect(again.cacheableSteps as number).toBeGreaterThan(10);
  });

  it('--target builds one stage; --tag names it; a secret build arg is redacted everywhere', async () => {
    const r = await p.run(['build', '--target', 'builder', '--tag', 'builder-only', '--build-arg', 'PIP_TOKEN=tok-s3cr3t-991', '--json', '--verbose']);
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = parseSingleJson(r.stdout);
    expect(doc.tags).toEqual([`${p.project}:builder-only`]);
    expect(doc.buildArgs).toMatchObject({ PIP_TOKEN: '***' });
    expect(r.stdout + r.stderr).not.toContain('tok-s3cr3t-991');
    const exists = await docker(['run', '--rm', '--entrypoint', 'test', `${p.project}:builder-only`, '-e', '/build/requirements.txt'], { reject: false });
    expect(exists.exitCode).toBe(0);
  });

  it('a failing RUN step exits 1, names the step and shows the end of its output', async () => {
    writeFileSync(path.join(p.dir, 'Dockerfile.broken'), 'ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}\nRUN echo about to fail\nRUN echo "the step output" && exit 3\nRUN echo never\n');
    const r = await p.run(['build', '--file', 'Dockerfile.broken', '--tag', 'broken']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/build failed at Step 4\/\d+: RUN echo "the step output" && exit 3/);
    expect(r.stderr).toContain('the step output');
    expect(r.stderr).toContain('returned a non-zero code: 3');
    const json = await p.run(['build', '--file', 'Dockerfile.broken', '--tag', 'broken', '--json']);
    expect(parseSingleJson(json.stdout)).toMatchObject({ ok: false, error: { code: 'E_BUILD_FAILED', details: { failedStep: { index: 4 } } } });
  });

  it('bad input is exit 2 and names the flag', async () => {
    const missing = await p.run(['build', '--file', 'Nope.Dockerfile']);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain('--file: Nope.Dockerfile not found');
    const badArg = await p.run(['build', '--build-arg', 'novalue']);
    expect(badArg.exitCode).toBe(2);
    expect(badArg.stderr).toContain('--build-arg novalue: expected NAME=VALUE');
  });

  it('--dry-run prints the Engine API call and builds nothing', async () => {
    const before = (await docker(['images', '-q'])).stdout;
    const r = await p.run(['build', '--dry-run', '--tag', 'dry']);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain('[dry run] would call Docker POST /build');
    expect((await docker(['image', 'inspect', `${p.project}:dry`], { reject: false })).exitCode).not.toBe(0);
    expect((await docker(['images', '-q'])).stdout).toBe(before);
  });
});
