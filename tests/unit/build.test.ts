import { describe, expect, it } from 'vitest';
import { revisionFrom } from '../../src/build/action.js';
import { contextFilter, declaredArgs, selectContextFiles } from '../../src/build/context.js';
import { buildParameters, displayParameters, resolveBuildArgs, resolveTags } from '../../src/build/plan.js';
import { emptyProgress, reduceBuildEvent, stageImages } from '../../src/build/progress.js';
import { Sensitive } from '../../src/config/sensitive.js';

const exec = (stdout: string, failed = false) => ({ argv: [], exitCode: failed ? 128 : 0, stdout, stderr: '', failed, timedOut: false, notFound: false });

describe('build context', () => {
  it('follows .dockerignore, with negations, and always sends the Dockerfile', () => {
    const filter = contextFilter('.git\n*.pyc\nlogs/\nDockerfile.prod\n!logs/keep.txt\n');
    const files = ['.git/HEAD', 'app.py', 'app.pyc', 'logs/a.log', 'logs/keep.txt', 'Dockerfile.prod', 'sub/x.pyc'];
    // As in Docker, `*.pyc` is anchored at the root: sub/x.pyc stays (it would take `**/*.pyc`).
    expect(selectContextFiles(files, filter, 'Dockerfile.prod')).toEqual(['Dockerfile.prod', 'app.py', 'logs/keep.txt', 'sub/x.pyc']);
    expect(selectContextFiles(['a/b.pyc', 'c.py'], contextFilter('**/*.pyc'), 'Dockerfile')).toEqual(['c.py']);
    expect(filter.canPrune('.git')).toBe(false); // a negation exists: never prune
    expect(contextFilter('node_modules\n').canPrune('node_modules')).toBe(true);
    expect(selectContextFiles(['a', 'b'], contextFilter(undefined), 'Dockerfile')).toEqual(['a', 'b']);
  });
  it('finds the ARGs a Dockerfile declares', () => {
    expect(declaredArgs('ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}\narg APP_VERSION\nARG A=1 B\nRUN echo \\\n  ARG NOT_THIS\n')).toEqual(['BASE_IMAGE', 'APP_VERSION', 'A', 'B']);
  });
});

describe('build plan', () => {
  it('tags <name>:<revision> and latest by default; a bare --tag gets the image name', () => {
    expect(resolveTags('shop', [], 'abc1234')).toEqual(['shop:abc1234', 'shop:latest']);
    expect(resolveTags('shop', ['v2', 'reg.example.com/shop:v2', 'reg:5000/shop'], 'x')).toEqual(['shop:v2', 'reg.example.com/shop:v2', 'reg:5000/shop:latest']);
  });
  it('takes declared ARGs from the env, then config, then flags; APP_VERSION defaults to the revision; secrets stay Sensitive', () => {
    const args = resolveBuildArgs({
      declaredArgs: ['BASE_IMAGE', 'APP_VERSION', 'PIP_TOKEN', 'UNSET'],
      env: { BASE_IMAGE: 'opskit-test/python:3.11', PIP_TOKEN: 'tok-123456', OTHER: 'x' },
      configArgs: { EXTRA: '1' },
      flagArgs: { BASE_IMAGE: 'my/python:3.11' },
      revision: 'abc1234',
    });
    expect(Object.keys(args)).toEqual(['BASE_IMAGE', 'PIP_TOKEN', 'APP_VERSION', 'EXTRA']);
    expect(args.BASE_IMAGE).toBe('my/python:3.11');
    expect(args.APP_VERSION).toBe('abc1234');
    expect(args.PIP_TOKEN).toBeInstanceOf(Sensitive);
  });
  it('builds the exact Engine API parameters, revealing secrets only there', () => {
    const { parameters, tags, buildArgs } = buildParameters({
      imageName: 'shop',
      tags: [],
      revision: 'abc1234',
      dockerfile: 'Dockerfile.prod',
      target: 'runtime',
      noCache: true,
      project: 'shop',
      declaredArgs: ['APP_VERSION'],
      env: {},
      configArgs: {},
      flagArgs: { NPM_TOKEN: new Sensitive('s3cr3t-npm') },
    });
    expect(tags).toEqual(['shop:abc1234', 'shop:latest']);
    expect(parameters).toEqual({
      t: ['shop:abc1234', 'shop:latest'],
      dockerfile: 'Dockerfile.prod',
      target: 'runtime',
      buildargs: { APP_VERSION: 'abc1234', NPM_TOKEN: 's3cr3t-npm' },
      nocache: true,
      labels: { 'org.opskit.project': 'shop', 'org.opencontainers.image.revision': 'abc1234' },
      rm: true,
      forcerm: true,
    });
    expect(JSON.stringify(displayParameters(parameters, buildArgs))).not.toContain('s3cr3t-npm');
  });
  it('names the revision: git sha, -dirty, or the context hash outside git', () => {
    expect(revisionFrom(exec('abc1234\n'), exec(''), 'f'.repeat(64))).toBe('abc1234');
    expect(revisionFrom(exec('abc1234'), exec(' M app.py'), '')).toBe('abc1234-dirty');
    expect(revisionFrom(exec('', true), exec('', true), '0123456789abcdef')).toBe('ctx-0123456789ab');
  });
});

describe('build progress', () => {
  const events = [
    { stream: 'Step 1/6 : ARG BASE_IMAGE=python:3.11-slim\n' },
    { stream: 'Step 2/6 : FROM ${BASE_IMAGE} AS builder\n' },
    { stream: ' ---> 111111111111\n' },
    { stream: 'Step 3/6 : RUN pip install -r requirements.txt\n' },
    { stream: ' ---> Using cache\n ---> 222222222222\n' },
    { stream: 'Step 4/6 : FROM ${BASE_IMAGE}\n' },
    { stream: ' ---> 111111111111\n' },
    { stream: 'Step 5/6 : COPY --from=builder /install /usr/local\n' },
    { stream: ' ---> Running in 999\n' },
    { stream: ' ---> 333333333333\n' },
    { stream: 'Step 6/6 : CMD ["gunicorn"]\n ---> 444444444444\n' },
    { aux: { ID: 'sha256:444444444444aaaa' } },
    { stream: 'Successfully built 444444444444\n' },
  ];
  it('counts steps, cache hits and stages, and finds each stage\'s last image', () => {
    const progress = events.reduce(reduceBuildEvent, emptyProgress());
    expect(progress.steps.map((s) => [s.index, s.stage, s.cached])).toEqual([
      [1, -1, false],
      [2, 0, false],
      [3, 0, true],
      [4, 1, false],
      [5, 1, false],
      [6, 1, false],
    ]);
    expect(progress.imageId).toBe('sha256:444444444444aaaa');
    expect(stageImages(progress).map((s) => [s.stage.name ?? null, s.imageId])).toEqual([
      ['builder', '222222222222'],
      [null, '444444444444'],
    ]);
  });
  it('keeps the error and the log for the failure report', () => {
    const failed = [...events.slice(0, 4), { stream: 'ERROR: No matching distribution\n' }, { error: "The command '/bin/sh -c pip install' returned a non-zero code: 1", errorDetail: { code: 1, message: "The command '/bin/sh -c pip install' returned a non-zero code: 1" } }].reduce(
      reduceBuildEvent,
      emptyProgress(),
    );
    expect(failed.error).toContain('returned a non-zero code: 1');
    expect(failed.steps[failed.steps.length - 1]!.instruction).toBe('RUN pip install -r requirements.txt');
    expect(failed.log).toContain('ERROR: No matching distribution');
  });
});
