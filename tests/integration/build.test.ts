import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSingleJson, tempDir } from '../helpers/cli.js';
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

  it("builds the sample platform: tagged with the git sha and latest, non-root, without the builder stage's files", async () => {
    const sha = (await execa('git', ['rev-parse', '--short', 'HEAD'], { cwd: p.dir })).stdout.trim();
    const r = await p.run(['build', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = parseSingleJson(r.stdout);
    expect(doc.tags).toEqual([`${p.project}:${sha}`, `${p.project}:latest`]);
    expect(doc.builder).toBe('buildkit');
    expect(doc.stages).toMatchObject([{ name: 'builder' }, { name: 'runtime' }]);
    expect(doc.finalVsBuilder).toMatchObject({ finalBytes: doc.sizeBytes, builderBytes: expect.any(Number) });
    // The builder stage was measured under a temporary tag, which is gone again.
    expect((await docker(['images', '--format', '{{.Tag}}', p.project])).stdout).not.toContain('opskit-stage-');
    expect(doc.buildArgs).toMatchObject({ BASE_IMAGE: 'opskit-test/python:3.11', APP_VERSION: sha });
    const inspect = JSON.parse((await docker(['image', 'inspect', `${p.project}:latest`])).stdout)[0];
    expect(inspect.Id).toBe(doc.imageId);
    expect(inspect.Size).toBe(doc.sizeBytes);
    expect(inspect.Config.User).toBe('appuser');
    const run = (cmd: string[]) =>
      docker(['run', '--rm', '--entrypoint', cmd[0]!, `${p.project}:latest`, ...cmd.slice(1)], { reject: false });
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
    // BuildKit counts the steps that make a layer or a filesystem change (not ENV, USER, CMD, ...):
    // WORKDIR, COPY and RUN of both stages.
    expect(again.cacheableSteps as number).toBeGreaterThanOrEqual(8);
  });

  it('--target builds one stage; --tag names it; a secret build arg is redacted everywhere', async () => {
    const r = await p.run([
      'build',
      '--target',
      'builder',
      '--tag',
      'builder-only',
      '--build-arg',
      'PIP_TOKEN=tok-s3cr3t-991',
      '--json',
      '--verbose',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = parseSingleJson(r.stdout);
    expect(doc.tags).toEqual([`${p.project}:builder-only`]);
    expect(doc.buildArgs).toMatchObject({ PIP_TOKEN: '***' });
    expect(r.stdout + r.stderr).not.toContain('tok-s3cr3t-991');
    const exists = await docker(
      ['run', '--rm', '--entrypoint', 'test', `${p.project}:builder-only`, '-e', '/build/requirements.txt'],
      { reject: false },
    );
    expect(exists.exitCode).toBe(0);
  });

  it('a failing RUN step exits 1, names the step and shows the end of its output', async () => {
    writeFileSync(
      path.join(p.dir, 'Dockerfile.broken'),
      'ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}\nRUN echo about to fail\nRUN echo "the step output" && exit 3\nRUN echo never\n',
    );
    const r = await p.run(['build', '--file', 'Dockerfile.broken', '--tag', 'broken']);
    expect(r.exitCode).toBe(1);
    // BuildKit numbers the steps that run (FROM and the RUNs), not the global ARG: [3/4].
    expect(r.stderr).toMatch(/build failed at \[3\/4\] RUN echo "the step output" && exit 3/);
    expect(r.stderr).toContain('the step output');
    expect(r.stderr).toContain('exit code: 3');
    const json = await p.run(['build', '--file', 'Dockerfile.broken', '--tag', 'broken', '--json']);
    expect(parseSingleJson(json.stdout)).toMatchObject({
      ok: false,
      error: { code: 'E_BUILD_FAILED', details: { failedStep: { index: 3, label: '[3/4]' } } },
    });
  });

  it('bad input is exit 2 and names the flag', async () => {
    const missing = await p.run(['build', '--file', 'Nope.Dockerfile']);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain('--file: Nope.Dockerfile not found');
    const badArg = await p.run(['build', '--build-arg', 'novalue']);
    expect(badArg.exitCode).toBe(2);
    expect(badArg.stderr).toContain('--build-arg novalue: expected NAME=VALUE');
  });

  it('--dry-run prints the buildx argv and builds nothing', async () => {
    // Only this project's images: other suites may build on the same engine meanwhile.
    const list = async () =>
      (await docker(['images', '-q', '--no-trunc', '--filter', `label=org.opskit.project=${p.project}`])).stdout
        .split('\n')
        .sort();
    const before = await list();
    const r = await p.run(['build', '--dry-run', '--tag', 'dry']);
    expect(r.exitCode).toBe(0);
    // buildx's plugin binary, run standalone (where the docker CLI finds it), or `docker buildx`.
    expect(r.stderr).toMatch(
      /\[dry run\] would run: (docker buildx|\S+\/cli-plugins\/docker-buildx) build --progress=rawjson --load -f/,
    );
    expect(r.stderr).toContain(`-t ${p.project}:dry`);
    expect((await docker(['image', 'inspect', `${p.project}:dry`], { reject: false })).exitCode).not.toBe(0);
    expect(await list()).toEqual(before);
  });

  const BASE = 'opskit-test/busybox:latest';

  it('RUN --mount=type=cache: the second build (the step re-run) finds what the first left in the cache', async () => {
    // A cache mount's id is not part of the step's cache key: the nonce in the command makes the step new.
    const nonce = `opskit-it-${randomBytes(4).toString('hex')}`;
    writeFileSync(
      path.join(p.dir, 'Dockerfile.cache'),
      `FROM ${BASE}\nARG RUN_NUMBER\nRUN --mount=type=cache,target=/cache,id=${nonce} echo "${nonce} run $RUN_NUMBER" >> /cache/runs && cp /cache/runs /runs\n`,
    );
    const runs = async () =>
      (await docker(['run', '--rm', `${p.project}:cache`, 'cat', '/runs'])).stdout
        .trim()
        .split('\n')
        .map((l) => l.replace(`${nonce} `, ''));
    const first = await p.run([
      'build',
      '--file',
      'Dockerfile.cache',
      '--tag',
      'cache',
      '--build-arg',
      'RUN_NUMBER=1',
      '--json',
    ]);
    expect(first.exitCode, first.stderr).toBe(0);
    expect(parseSingleJson(first.stdout)).toMatchObject({ cacheableSteps: 1, cachedSteps: 0 });
    expect(await runs()).toEqual(['run 1']);
    // A new build argument value re-runs the step: the cache mount still holds the first run's file.
    const second = await p.run([
      'build',
      '--file',
      'Dockerfile.cache',
      '--tag',
      'cache',
      '--build-arg',
      'RUN_NUMBER=2',
      '--json',
    ]);
    expect(second.exitCode, second.stderr).toBe(0);
    expect(parseSingleJson(second.stdout)).toMatchObject({ builder: 'buildkit', cachedSteps: 0 });
    expect(await runs()).toEqual(['run 1', 'run 2']);
  });

  it('RUN --mount=type=secret: the step reads the secrets (a file and an env variable); they are in no layer, no history and no output', async () => {
    const fileSecret = `file-secret-${randomBytes(8).toString('hex')}`;
    const envSecret = `env-secret-${randomBytes(8).toString('hex')}`;
    const secretDir = tempDir('opskit-secret-');
    writeFileSync(path.join(secretDir, 'token.txt'), fileSecret, { mode: 0o600 });
    const sha = (text: string) => createHash('sha256').update(text).digest('hex');
    writeFileSync(
      path.join(p.dir, 'Dockerfile.secret'),
      [
        `FROM ${BASE}`,
        // The step proves it saw each value (their hashes go in the image), and prints one: opskit shows ***.
        // A secret's value is not part of the cache key: the nonce makes the step new to this run.
        `RUN --mount=type=secret,id=pip --mount=type=secret,id=gh sha256sum /run/secrets/pip /run/secrets/gh > /proof && cat /run/secrets/gh && echo ${randomBytes(4).toString('hex')}`,
        '',
      ].join('\n'),
    );
    const r = await p.run(
      [
        'build',
        '--file',
        'Dockerfile.secret',
        '--tag',
        'secret',
        '--secret',
        `id=pip,src=${path.join(secretDir, 'token.txt')}`,
        '--secret',
        'id=gh,env=OPSKIT_IT_GH',
        '--json',
        '--verbose',
      ],
      {
        OPSKIT_IT_GH: envSecret,
      },
    );
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = parseSingleJson(r.stdout);
    expect(doc.secrets).toEqual([`id=pip,src=${path.join(secretDir, 'token.txt')}`, 'id=gh,env=OPSKIT_IT_GH']);
    const proof = (await docker(['run', '--rm', `${p.project}:secret`, 'cat', '/proof'])).stdout;
    expect(proof).toContain(sha(fileSecret));
    expect(proof).toContain(sha(envSecret));
    expect(
      (await docker(['run', '--rm', `${p.project}:secret`, 'ls', '/run/secrets'], { reject: false })).stdout.trim(),
    ).toBe('');
    for (const secret of [fileSecret, envSecret]) {
      expect(r.stdout + r.stderr).not.toContain(secret);
      expect((await docker(['history', '--no-trunc', `${p.project}:secret`])).stdout).not.toContain(secret);
      expect((await docker(['image', 'inspect', `${p.project}:secret`])).stdout).not.toContain(secret);
    }
    const saved = {
      stdout: Buffer.from(
        (await execa('docker', ['save', `${p.project}:secret`], { encoding: 'buffer', stdin: 'ignore' })).stdout,
      ),
    };
    expect(saved.stdout.length).toBeGreaterThan(1000);
    expect(saved.stdout.includes(Buffer.from(fileSecret))).toBe(false);
    expect(saved.stdout.includes(Buffer.from(envSecret))).toBe(false);
    // The step printed the env secret: shown redacted.
    expect(r.stderr).toContain('***');
  });

  it('a secret that is not there is exit 2 and names the flag (build, deploy --build); a bad --secret too; --secret without --build', async () => {
    const missing = await p.run(['build', '--secret', 'id=pip,src=/nonexistent/token']);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain('--secret id=pip: /nonexistent/token not found or not readable');
    const bad = await p.run(['build', '--secret', 'id=x,value=hunter2']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('--secret id=x,value=...: unknown field value');
    expect(bad.stderr).not.toContain('hunter2');
    // deploy --build and cutover --build take --secret too, checked the same way, before anything changes.
    const viaDeploy = await p.run(['deploy', '--build', '--secret', 'id=pip,src=/nonexistent/token']);
    expect(viaDeploy.exitCode).toBe(2);
    expect(viaDeploy.stderr).toContain('--secret id=pip: /nonexistent/token not found or not readable');
    const withoutBuild = await p.run(['cutover', '--secret', 'id=pip,env=PIP_TOKEN']);
    expect(withoutBuild.exitCode).toBe(2);
    expect(withoutBuild.stderr).toContain('--secret: only with --build');
    const badConfig = await p.run(['build', '--set', 'image.builder=kaniko']);
    expect(badConfig.exitCode).toBe(2);
    expect(badConfig.stderr).toContain('image.builder: expected one of auto, buildkit, classic');
  });

  it('a heredoc RUN runs as a script', async () => {
    writeFileSync(
      path.join(p.dir, 'Dockerfile.heredoc'),
      `FROM ${BASE}\nRUN <<EOT\nset -e\necho one > /heredoc.txt\necho two >> /heredoc.txt\nEOT\n`,
    );
    const r = await p.run(['build', '--file', 'Dockerfile.heredoc', '--tag', 'heredoc']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await docker(['run', '--rm', `${p.project}:heredoc`, 'cat', '/heredoc.txt'])).stdout.trim()).toBe(
      'one\ntwo',
    );
  });

  it('a # syntax= line whose frontend cannot be pulled (offline) fails with exit 1, saying why and what to do', async () => {
    writeFileSync(path.join(p.dir, 'Dockerfile.syntax'), `# syntax=docker/dockerfile:1\nFROM ${BASE}\nRUN echo hi\n`);
    const r = await p.run(['build', '--file', 'Dockerfile.syntax', '--tag', 'syntax']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(
      "the Dockerfile's `# syntax=docker/dockerfile:1` line names a frontend image that BuildKit must pull, and it could not",
    );
    expect(r.stderr).toContain(
      "remove the `# syntax=docker/dockerfile:1` line to use the Engine's built-in Dockerfile frontend (it handles RUN --mount and heredocs)",
    );
    const json = parseSingleJson(
      (await p.run(['build', '--file', 'Dockerfile.syntax', '--tag', 'syntax', '--json'])).stdout,
    );
    expect(json).toMatchObject({ ok: false, error: { code: 'E_BUILD_FRONTEND' } });
  });

  it('image.builder: classic still builds through the Engine API: the sample platform, stages measured', async () => {
    const r = await p.run(['build', '--json', '--set', 'image.builder=classic', '--tag', 'classic']);
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = parseSingleJson(r.stdout);
    expect(doc).toMatchObject({
      builder: 'classic',
      tags: [`${p.project}:classic`],
      stages: [{ name: 'builder' }, { name: 'runtime' }],
    });
    expect(doc.finalVsBuilder).toMatchObject({ finalBytes: doc.sizeBytes, builderBytes: expect.any(Number) });
    expect((await docker(['image', 'inspect', '-f', '{{.Config.User}}', `${p.project}:classic`])).stdout.trim()).toBe(
      'appuser',
    );
    const dry = await p.run(['build', '--dry-run', '--set', 'image.builder=classic']);
    expect(dry.stderr).toContain('[dry run] would call Docker POST /build');
    // The classic builder has no build secrets: refused before anything is built.
    const refused = await p.run(['build', '--set', 'image.builder=classic', '--secret', 'id=HOME']);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain('need BuildKit');
  });
});
