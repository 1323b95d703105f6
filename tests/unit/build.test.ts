import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildxPluginCandidates, buildxSupported, parseBuildxVersion } from '../../src/adapters/buildx.js';
import type { DockerAdapter, ImageInfo } from '../../src/adapters/docker.js';
import type { ExecAdapter, ExecResult } from '../../src/adapters/exec.js';
import { nodeFs } from '../../src/adapters/fs.js';
import { type BuildInput, buildImage, revisionFrom } from '../../src/build/action.js';
import {
  buildxArgv,
  frontendUnavailable,
  imageIdFromMetadata,
  planStageSizes,
  stageProbeTag,
} from '../../src/build/buildx.js';
import {
  contextFilter,
  declaredArgs,
  dockerfileStages,
  selectContextFiles,
  syntaxDirective,
} from '../../src/build/context.js';
import { buildParameters, displayParameters, resolveBuildArgs, resolveTags } from '../../src/build/plan.js';
import {
  addedLines,
  type BuildProgress,
  buildkitFailure,
  describeStep,
  emptyProgress,
  reduceBuildEvent,
  reduceSolveStatus,
  stageImages,
} from '../../src/build/progress.js';
import { emptySplitter, flushRawJson, type RawJsonItem, splitRawJson } from '../../src/build/rawjson.js';
import { createContext } from '../../src/cli/run.js';
import { mergeSecrets, parseSecretSpec, showSecretText } from '../../src/config/build-secrets.js';
import { loadConfig } from '../../src/config/load.js';
import { Redactor } from '../../src/config/redact.js';
import { configSchema } from '../../src/config/schema.js';
import type { OpskitError } from '../../src/errors.js';
import { Sensitive } from '../../src/sensitive.js';
import { BufferStream, manualClock, strictFake } from '../helpers/fakes.js';

const exec = (stdout: string, failed = false) => ({
  argv: [],
  exitCode: failed ? 128 : 0,
  stdout,
  stderr: '',
  failed,
  timedOut: false,
  notFound: false,
});

describe('build context', () => {
  it('follows .dockerignore, with negations, and always sends the Dockerfile', () => {
    const filter = contextFilter('.git\n*.pyc\nlogs/\nDockerfile.prod\n!logs/keep.txt\n');
    const files = ['.git/HEAD', 'app.py', 'app.pyc', 'logs/a.log', 'logs/keep.txt', 'Dockerfile.prod', 'sub/x.pyc'];
    // As in Docker, `*.pyc` is anchored at the root: sub/x.pyc stays (it would take `**/*.pyc`).
    expect(selectContextFiles(files, filter, 'Dockerfile.prod')).toEqual([
      'Dockerfile.prod',
      'app.py',
      'logs/keep.txt',
      'sub/x.pyc',
    ]);
    expect(selectContextFiles(['a/b.pyc', 'c.py'], contextFilter('**/*.pyc'), 'Dockerfile')).toEqual(['c.py']);
    expect(filter.canPrune('.git')).toBe(false); // a negation exists: never prune
    expect(contextFilter('node_modules\n').canPrune('node_modules')).toBe(true);
    expect(selectContextFiles(['a', 'b'], contextFilter(undefined), 'Dockerfile')).toEqual(['a', 'b']);
  });
  it('finds the ARGs a Dockerfile declares', () => {
    expect(
      declaredArgs(
        'ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}\narg APP_VERSION\nARG A=1 B\nRUN echo \\\n  ARG NOT_THIS\n',
      ),
    ).toEqual(['BASE_IMAGE', 'APP_VERSION', 'A', 'B']);
  });
});

describe('build plan', () => {
  it('tags <name>:<revision> and latest by default; a bare --tag gets the image name', () => {
    expect(resolveTags('shop', [], 'abc1234')).toEqual(['shop:abc1234', 'shop:latest']);
    expect(resolveTags('shop', ['v2', 'reg.example.com/shop:v2', 'reg:5000/shop'], 'x')).toEqual([
      'shop:v2',
      'reg.example.com/shop:v2',
      'reg:5000/shop:latest',
    ]);
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
  it("counts steps, cache hits and stages, and finds each stage's last image", () => {
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
    const failed = [
      ...events.slice(0, 4),
      { stream: 'ERROR: No matching distribution\n' },
      {
        error: "The command '/bin/sh -c pip install' returned a non-zero code: 1",
        errorDetail: { code: 1, message: "The command '/bin/sh -c pip install' returned a non-zero code: 1" },
      },
    ].reduce(reduceBuildEvent, emptyProgress());
    expect(failed.error).toContain('returned a non-zero code: 1');
    expect(failed.steps[failed.steps.length - 1]!.instruction).toBe('RUN pip install -r requirements.txt');
    expect(failed.log).toContain('ERROR: No matching distribution');
  });
});

describe('Dockerfile facts', () => {
  it('lists the stages, lowercased as BuildKit names them; FROM inside a heredoc or a comment is not one', () => {
    const text = [
      '# syntax=docker/dockerfile:1',
      'ARG BASE_IMAGE=python:3.11-slim',
      'FROM --platform=$BUILDPLATFORM ${BASE_IMAGE} AS Builder',
      'RUN <<EOT',
      'FROM not-a-stage',
      'EOT',
      '# FROM commented-out AS nope',
      'FROM \\',
      '  ${BASE_IMAGE}',
      'COPY <<-EOF /x',
      '\tFROM still-not',
      '\tEOF',
      'RUN cat <<<"x" && echo done',
      'FROM scratch as final',
    ].join('\n');
    expect(dockerfileStages(text)).toEqual([
      { index: 0, name: 'builder', from: '${BASE_IMAGE}' },
      { index: 1, name: undefined, from: '${BASE_IMAGE}' },
      { index: 2, name: 'final', from: 'scratch' },
    ]);
  });
  it('finds a # syntax= directive only among the leading directives', () => {
    expect(syntaxDirective('# syntax=docker/dockerfile:1\nFROM x\n')).toBe('docker/dockerfile:1');
    expect(syntaxDirective('#escape=`\n# syntax = docker/dockerfile:1.7\nFROM x\n')).toBe('docker/dockerfile:1.7');
    expect(syntaxDirective('FROM x\n# syntax=docker/dockerfile:1\n')).toBeUndefined();
    expect(syntaxDirective('# a comment\n# syntax=docker/dockerfile:1\nFROM x\n')).toBeUndefined();
    expect(syntaxDirective('\n# syntax=docker/dockerfile:1\nFROM x\n')).toBeUndefined();
  });
});

describe('build secrets', () => {
  it('parses id=NAME[,src=FILE|,env=VAR]; without src or env, the variable named like the id', () => {
    expect(parseSecretSpec('id=pip,src=~/.pip-token')).toEqual({ id: 'pip', src: '~/.pip-token' });
    expect(parseSecretSpec('id=npm,env=NPM_TOKEN')).toEqual({ id: 'npm', env: 'NPM_TOKEN' });
    expect(parseSecretSpec('id=GH_TOKEN')).toEqual({ id: 'GH_TOKEN', env: 'GH_TOKEN' });
    expect(parseSecretSpec('type=env,id=x,source=X_VAR')).toEqual({ id: 'x', env: 'X_VAR' });
    expect(parseSecretSpec('id=x,source=/run/x')).toEqual({ id: 'x', src: '/run/x' });
    expect(parseSecretSpec('src=/run/x')).toEqual({
      problem: 'expected id=NAME[,src=FILE|,env=VAR]: id is letters, digits, _ . -',
    });
    expect(parseSecretSpec('id=x,src=/a,env=B')).toEqual({ problem: 'expected src or env, not both' });
    expect(parseSecretSpec('id=x,value=hunter2')).toEqual({
      problem: 'unknown field value: expected id=NAME[,src=FILE|,env=VAR]',
    });
    expect(parseSecretSpec('id=my.secret')).toMatchObject({
      problem: expect.stringContaining('without src or env, the id names it'),
    });
    expect(parseSecretSpec('justtext')).toEqual({ problem: 'expected id=NAME[,src=FILE|,env=VAR]' });
  });
  it('an error shows the known fields, never the value of an unknown one', () => {
    expect(showSecretText('id=x,value=hunter2,src=/a')).toBe('id=x,value=...,src=/a');
  });
  it('image.secrets takes the text or the object form; bad entries name the key', () => {
    const ok = configSchema.parse({ image: { secrets: ['id=a,src=a.txt', { id: 'b', env: 'B_TOKEN' }, { id: 'C' }] } });
    expect(ok.image.secrets).toEqual([
      { id: 'a', src: 'a.txt' },
      { id: 'b', env: 'B_TOKEN' },
      { id: 'C', env: 'C' },
    ]);
    expect(ok.image.builder).toBe('auto');
    const bad = configSchema.safeParse({
      image: { secrets: [{ id: 'a', src: 'x', env: 'Y' }, { id: 'b', value: 'v' }, 7], builder: 'kaniko' },
    });
    expect(bad.success).toBe(false);
    const problems = bad.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(problems).toEqual(
      expect.arrayContaining([
        'image.secrets.0: expected src or env, not both',
        'image.secrets.1: unknown key value: expected id and src or env',
        'image.secrets.2: expected id=NAME[,src=FILE|,env=VAR], or { id, src } or { id, env }',
        'image.builder: expected one of auto, buildkit, classic',
      ]),
    );
  });
  it('a flag overrides the config secret of the same id', () => {
    expect(
      mergeSecrets(
        [
          { id: 'a', src: '/c' },
          { id: 'b', env: 'B' },
        ],
        [{ id: 'a', env: 'A' }],
      ),
    ).toEqual([
      { id: 'b', env: 'B' },
      { id: 'a', env: 'A' },
    ]);
  });
});

describe('docker buildx argv', () => {
  const input = {
    contextDir: '/srv/shop',
    dockerfile: '/srv/shop/Dockerfile.prod',
    tags: ['shop:abc1234', 'shop:latest'],
    target: 'runtime',
    noCache: true,
    buildArgs: {
      BASE_IMAGE: 'opskit-test/python:3.11',
      NPM_TOKEN: new Sensitive('s3cr3t-npm'),
      APP_VERSION: 'abc1234',
    },
    labels: { 'org.opskit.project': 'shop', 'org.opencontainers.image.revision': 'abc1234' },
    secrets: [
      { id: 'pip', src: '/home/op/.pip-token' },
      { id: 'gh', env: 'GH_TOKEN' },
    ],
    secretValues: { gh: new Sensitive('ghp_value_123') },
    metadataFile: '/srv/shop/.opskit/build/metadata-42.json',
    dockerHost: 'tcp://10.0.0.5:2375',
  };
  it('builds the exact argv; secret values only in the child environment, as Sensitive', () => {
    const command = buildxArgv(input);
    expect(command.file).toBe('docker');
    expect(command.args).toEqual([
      'buildx',
      'build',
      '--progress=rawjson',
      '--load',
      '-f',
      '/srv/shop/Dockerfile.prod',
      '-t',
      'shop:abc1234',
      '-t',
      'shop:latest',
      '--target',
      'runtime',
      '--no-cache',
      '--build-arg',
      'BASE_IMAGE=opskit-test/python:3.11',
      '--build-arg',
      'NPM_TOKEN',
      '--build-arg',
      'APP_VERSION=abc1234',
      '--label',
      'org.opskit.project=shop',
      '--label',
      'org.opencontainers.image.revision=abc1234',
      '--secret',
      'id=pip,src=/home/op/.pip-token',
      '--secret',
      'id=gh,env=GH_TOKEN',
      '--metadata-file',
      '/srv/shop/.opskit/build/metadata-42.json',
      '/srv/shop',
    ]);
    expect(Object.keys(command.env)).toEqual(['NPM_TOKEN', 'GH_TOKEN', 'DOCKER_HOST']);
    expect(command.env.NPM_TOKEN).toBeInstanceOf(Sensitive);
    expect((command.env.GH_TOKEN as Sensitive).reveal()).toBe('ghp_value_123');
    expect(command.env.DOCKER_HOST).toBe('tcp://10.0.0.5:2375');
    expect(JSON.stringify(command)).not.toMatch(/s3cr3t-npm|ghp_value_123/);
  });
  it('leaves out what is not asked for', () => {
    const command = buildxArgv({
      ...input,
      target: undefined,
      noCache: false,
      buildArgs: {},
      labels: {},
      secrets: [],
      secretValues: {},
      metadataFile: undefined,
      dockerHost: undefined,
      tags: ['x:1'],
    });
    expect(command).toEqual({
      file: 'docker',
      args: [
        'buildx',
        'build',
        '--progress=rawjson',
        '--load',
        '-f',
        '/srv/shop/Dockerfile.prod',
        '-t',
        'x:1',
        '/srv/shop',
      ],
      env: {},
    });
  });
  it('reads versions, metadata and names the probe tag', () => {
    expect(parseBuildxVersion('github.com/docker/buildx 0.13.1+ds1 0.13.1+ds1-3')).toBe('0.13.1');
    expect(parseBuildxVersion('github.com/docker/buildx v0.17.1 257815a6fb95ab6c2e1bbb8bb6ddc3ab6f0ee4e8')).toBe(
      '0.17.1',
    );
    expect(buildxSupported('0.13.1')).toBe(true);
    expect(buildxSupported('0.11.2')).toBe(false);
    expect(buildxSupported('1.0')).toBe(true);
    expect(imageIdFromMetadata('{"containerimage.config.digest":"sha256:abc","image.name":"x"}')).toBe('sha256:abc');
    expect(imageIdFromMetadata('not json')).toBeUndefined();
    expect(imageIdFromMetadata(undefined)).toBeUndefined();
    expect(stageProbeTag('reg:5000/shop', 'builder', 42)).toBe('reg:5000/shop:opskit-stage-builder-42');
  });
  it('measures the first stage apart only when there are several and it has a name', () => {
    const stages = dockerfileStages('FROM a AS deps\nFROM b AS builder\nFROM c\n');
    expect(planStageSizes(stages, undefined)).toEqual({ builtStages: stages, measured: stages[0] });
    expect(planStageSizes(stages, 'builder')).toEqual({ builtStages: stages.slice(0, 2), measured: stages[0] });
    expect(planStageSizes(stages, 'deps')).toEqual({ builtStages: stages.slice(0, 1), measured: undefined });
    expect(planStageSizes(stages, 'stage-2')).toEqual({ builtStages: stages, measured: stages[0] });
    expect(planStageSizes(dockerfileStages('FROM a\nFROM b AS runtime\n'), undefined).measured).toBeUndefined();
  });
});

/** A recorded shape of `--progress=rawjson`: pretty-printed SolveStatus objects, then text on failure. */
const b64 = (text: string) => Buffer.from(text).toString('base64');
const pretty = (value: unknown) => JSON.stringify(value, null, 2);
const V = { from: 'sha256:aaa', run: 'sha256:bbb', copy: 'sha256:ccc', fail: 'sha256:ddd', other: 'sha256:eee' };
const stream = [
  pretty({
    vertexes: [
      { digest: 'sha256:000', name: '[internal] load build definition from Dockerfile', started: 't', completed: 't' },
    ],
  }),
  pretty({
    vertexes: [
      { digest: V.fail, name: '[runtime 3/3] RUN echo "the step output" && exit 3' },
      { digest: V.run, name: '[builder 2/3] RUN echo "${#PIP_TOKEN} {not a brace}"' },
      { digest: V.from, name: '[builder 1/3] FROM docker.io/opskit-test/python:3.11' },
    ],
  }),
  pretty({
    vertexes: [
      {
        digest: V.from,
        name: '[builder 1/3] FROM docker.io/opskit-test/python:3.11',
        started: 't',
        completed: 't',
        cached: true,
      },
    ],
  }),
  pretty({ vertexes: [{ digest: V.run, name: '[builder 2/3] RUN echo "${#PIP_TOKEN} {not a brace}"', started: 't' }] }),
  pretty({ logs: [{ vertex: V.run, stream: 1, data: b64('first line\nsecond ') }] }),
  pretty({ logs: [{ vertex: V.run, stream: 1, data: b64('half\nprogress 10%\rprogress 100%\n') }] }),
  pretty({
    vertexes: [
      { digest: V.run, name: '[builder 2/3] RUN echo "${#PIP_TOKEN} {not a brace}"', started: 't', completed: 't' },
    ],
  }),
  pretty({
    vertexes: [
      {
        digest: V.copy,
        name: '[runtime 2/3] COPY --from=builder /install /usr/local',
        started: 't',
        completed: 't',
        cached: true,
      },
    ],
  }),
  pretty({ vertexes: [{ digest: V.fail, name: '[runtime 3/3] RUN echo "the step output" && exit 3', started: 't' }] }),
  pretty({ logs: [{ vertex: V.fail, stream: 1, data: b64('the step output\n') }] }),
  pretty({
    vertexes: [
      { digest: V.other, name: '[builder 3/3] RUN sleep 100', started: 't', completed: 't', error: 'context canceled' },
    ],
  }),
  pretty({
    vertexes: [
      {
        digest: V.fail,
        name: '[runtime 3/3] RUN echo "the step output" && exit 3',
        started: 't',
        completed: 't',
        error: 'process "/bin/sh -c echo \\"the step output\\" && exit 3" did not complete successfully: exit code: 3',
      },
    ],
  }),
  'Dockerfile:9',
  '--------------------',
  '   9 | >>> RUN echo "the step output" && exit 3 {',
  '--------------------',
  'ERROR: failed to solve: process "/bin/sh -c echo \\"the step output\\" && exit 3" did not complete successfully: exit code: 3',
  '',
].join('\n');

function splitInChunks(text: string, sizes: number[]): RawJsonItem[] {
  let state = emptySplitter();
  const items: RawJsonItem[] = [];
  let offset = 0;
  for (let i = 0; offset < text.length; i++) {
    const size = sizes[i % sizes.length]!;
    const out = splitRawJson(state, text.slice(offset, offset + size));
    state = out.state;
    items.push(...out.items);
    offset += size;
  }
  return [...items, ...flushRawJson(state)];
}

describe('BuildKit raw JSON progress', () => {
  const whole = splitInChunks(stream, [stream.length]);
  it('splits concatenated objects and the text after them, braces inside strings left alone', () => {
    expect(whole.filter((i) => i.kind === 'object')).toHaveLength(12);
    expect(whole.filter((i) => i.kind === 'text').map((i) => (i as { line: string }).line)).toEqual([
      'Dockerfile:9',
      '--------------------',
      '   9 | >>> RUN echo "the step output" && exit 3 {',
      '--------------------',
      'ERROR: failed to solve: process "/bin/sh -c echo \\"the step output\\" && exit 3" did not complete successfully: exit code: 3',
    ]);
    expect((whole[1] as { value: { vertexes: Array<{ name: string }> } }).value.vertexes[1]!.name).toBe(
      '[builder 2/3] RUN echo "${#PIP_TOKEN} {not a brace}"',
    );
  });
  it('gives the same items whatever the chunk boundaries', () => {
    for (const sizes of [[1], [2, 3], [7], [64, 1, 5], [4096]]) expect(splitInChunks(stream, sizes)).toEqual(whole);
  });
  it('hands back what does not parse, and a cut-off stream, as text', () => {
    expect(splitInChunks('{ "a": 1, oops }\nnext\n', [5])).toEqual([
      { kind: 'text', line: '{ "a": 1, oops }' },
      { kind: 'text', line: 'next' },
    ]);
    expect(splitInChunks('{"a":\n"b', [3])).toEqual([
      { kind: 'text', line: '{"a":' },
      { kind: 'text', line: '"b' },
    ]);
  });

  const stages = dockerfileStages('FROM x AS builder\nRUN a\nRUN b\nFROM x AS runtime\nCOPY a b\nRUN c\n');
  const fold = (items: RawJsonItem[]) => items.reduce(reduceSolveStatus, emptyProgress(stages));
  it('counts steps once they start, with their stage, label and cache hits; internal vertexes are not steps', () => {
    const progress = fold(whole);
    expect(progress.steps.map((s) => [s.label, s.index, s.total, s.stage, s.cached])).toEqual([
      ['[builder 1/3]', 1, 3, 0, true],
      ['[builder 2/3]', 2, 3, 0, false],
      ['[runtime 2/3]', 2, 3, 1, true],
      ['[runtime 3/3]', 3, 3, 1, false],
      ['[builder 3/3]', 3, 3, 0, false],
    ]);
    expect(describeStep(progress.steps[1]!)).toBe('[builder 2/3] RUN echo "${#PIP_TOKEN} {not a brace}"');
    expect(describeStep({ index: 4, total: 6, instruction: 'RUN x', stage: 0, cached: false })).toBe('Step 4/6: RUN x');
  });
  it("decodes the steps' output, line by line, labelled; a progress bar shows its last state", () => {
    const progress = fold(whole);
    expect(progress.log).toEqual(
      expect.arrayContaining([
        '[builder 2/3] first line',
        '[builder 2/3] second half',
        '[builder 2/3] progress 100%',
        '[runtime 3/3] the step output',
        '[builder 1/3] CACHED',
      ]),
    );
    expect(progress.log).not.toContain('[builder 2/3] progress 10%');
  });
  it('names the step that failed (not one cancelled because of it), its error and its own output', () => {
    const progress = fold(whole);
    const failure = buildkitFailure(progress, 1);
    expect(failure.step).toMatchObject({ label: '[runtime 3/3]', instruction: 'RUN echo "the step output" && exit 3' });
    expect(failure.error).toBe(
      'process "/bin/sh -c echo \\"the step output\\" && exit 3" did not complete successfully: exit code: 3',
    );
    expect(failure.tail).toEqual(['the step output']);
    expect(buildkitFailure(emptyProgress(), 2)).toEqual({
      step: undefined,
      error: 'docker buildx build exited with code 2',
      tail: [],
    });
  });
  it('reports the lines each fold added, and keeps only the last lines of a long build', () => {
    let progress = emptyProgress();
    const seen: string[] = [];
    for (let i = 0; i < 1500; i++) {
      const before: BuildProgress = progress;
      progress = reduceSolveStatus(progress, { kind: 'text', line: `line ${i}` });
      seen.push(...addedLines(before, progress));
    }
    expect(seen).toHaveLength(1500);
    expect(seen[1499]).toBe('line 1499');
    expect(progress.log).toHaveLength(1000);
    expect(progress.log[0]).toBe('line 500');
  });
  it('tells a # syntax= frontend that could not be fetched from any other failure', () => {
    const offline = [
      pretty({
        vertexes: [
          {
            digest: 'sha256:f',
            name: 'resolve image config for docker-image://docker.io/docker/dockerfile:1',
            started: 't',
            completed: 't',
            error:
              'failed to do request: Head "https://registry-1.docker.io/v2/docker/dockerfile/manifests/1": dial tcp: lookup registry-1.docker.io: no such host',
          },
        ],
      }),
      'ERROR: failed to solve: failed to resolve source metadata for docker.io/docker/dockerfile:1: failed to do request: ...',
    ].join('\n');
    const progress = fold(splitInChunks(offline, [100]));
    expect(frontendUnavailable('docker/dockerfile:1', progress)).toBe(true);
    expect(frontendUnavailable(undefined, progress)).toBe(false);
    expect(frontendUnavailable('docker/dockerfile:1', fold(whole))).toBe(false);
  });
});

describe('buildImage with BuildKit, against strict fakes', () => {
  const ok = (stdout = ''): ExecResult => ({
    argv: [],
    exitCode: 0,
    stdout,
    stderr: '',
    failed: false,
    timedOut: false,
    notFound: false,
  });
  const notGit = (): ExecResult => ({
    argv: [],
    exitCode: 128,
    stdout: '',
    stderr: 'not a git repository',
    failed: true,
    timedOut: false,
    notFound: false,
  });

  async function setup(options: {
    dockerfile: string;
    buildx: (args: readonly string[], env: Record<string, string | undefined>) => { lines: string[]; exitCode: number };
    yaml?: string;
    dryRun?: boolean;
    buildxVersion?: ExecResult;
  }) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'opskit-build-'));
    writeFileSync(path.join(dir, 'opskit.yaml'), options.yaml ?? 'project:\n  name: shop\n');
    writeFileSync(path.join(dir, 'Dockerfile.prod'), options.dockerfile);
    writeFileSync(path.join(dir, 'app.py'), 'print(1)\n');
    writeFileSync(path.join(dir, 'pip-token.txt'), 'file-secret-4711\n');
    mkdirSync(path.join(dir, '.opskit'));
    const calls: string[] = [];
    const envs: Array<Record<string, string | undefined>> = [];
    const images = new Map<string, ImageInfo>();
    // buildx as the docker CLI's plugin or its binary found in a plugin directory (whichever this machine has): the
    // same calls.
    const asDocker = (file: string, args: readonly string[]) =>
      [file, ...args].join(' ').replace(/^\S*\/docker-buildx /, 'docker buildx ');
    const exec = strictFake<ExecAdapter>('exec', {
      run: async (file, args) => {
        const key = asDocker(file, args);
        calls.push(key);
        if (key === 'docker buildx version')
          return options.buildxVersion ?? ok('github.com/docker/buildx 0.13.1+ds1 0.13.1+ds1-3');
        if (key.startsWith('git ')) return notGit();
        if (key.startsWith('docker image rm ')) return ok(`Untagged: ${args[2]}`);
        throw new Error(`unexpected exec: ${key}`);
      },
      start: async (file, args, startOptions) => {
        calls.push(asDocker(file, args));
        envs.push(startOptions.env ?? {});
        const { lines, exitCode } = options.buildx(args, startOptions.env ?? {});
        for (const line of lines) startOptions.onLine(line, 'stderr');
        const metadata = args[args.indexOf('--metadata-file') + 1];
        if (exitCode === 0) {
          const tag = args[args.indexOf('-t') + 1]!;
          const id = `sha256:${args.includes('--target') ? 'b' : 'f'}${'0'.repeat(63)}`;
          images.set(tag, {
            id,
            tags: [tag],
            sizeBytes: args.includes('--target') ? 400 : 100,
            user: 'appuser',
            created: '',
            labels: {},
          });
          images.set(id, images.get(tag)!);
          if (args.includes('--metadata-file'))
            writeFileSync(metadata!, JSON.stringify({ 'containerimage.config.digest': id }));
        }
        return {
          pid: 1,
          exited: Promise.resolve({ exitCode, signal: undefined, notFound: false }),
          kill: () => undefined,
        };
      },
    });
    const docker = strictFake<DockerAdapter>('docker', {
      endpoint: 'unix:///var/run/docker.sock',
      inspectImage: async (ref) => images.get(ref),
    });
    const stderr = new BufferStream();
    const stdout = new BufferStream();
    const ctx = createContext(
      {
        stdout,
        stderr,
        env: { PATH: '/usr/bin', HOME: dir, GH_TOKEN: 'env-secret-0815' },
        cwd: dir,
        argv: ['build'],
        adapters: { exec, docker: async () => docker, clock: manualClock() },
      },
      { json: false, dryRun: options.dryRun ?? false, quiet: false, verbose: true, color: false, set: [] },
      new Redactor(),
    );
    ctx.loaded = await loadConfig(nodeFs, { cwd: dir, processEnv: { GH_TOKEN: 'env-secret-0815' } });
    return { ctx, dir, calls, envs, stderr, images };
  }
  const input = (more: Partial<BuildInput> = {}): BuildInput => ({ tags: [], buildArgs: {}, noCache: false, ...more });
  const success = [
    pretty({
      vertexes: [
        {
          digest: 'sha256:1',
          name: '[builder 2/2] RUN --mount=type=secret,id=gh cat /run/secrets/gh',
          started: 't',
          completed: 't',
        },
      ],
    }),
    pretty({ logs: [{ vertex: 'sha256:1', stream: 1, data: b64('env-secret-0815\n') }] }),
  ]
    .join('\n')
    .split('\n');
  const multiStage =
    'FROM python AS builder\nRUN --mount=type=secret,id=gh cat /run/secrets/gh\nFROM python AS runtime\nCOPY --from=builder /a /a\n';

  it('passes secrets by path and environment, never in argv or output; measures the first stage and drops its tag', async () => {
    const { ctx, dir, calls, envs, stderr } = await setup({
      dockerfile: multiStage,
      yaml: 'project:\n  name: shop\nimage:\n  secrets:\n    - id=pip,src=pip-token.txt\n',
      buildx: () => ({ lines: success, exitCode: 0 }),
    });
    const result = await buildImage(
      ctx,
      input({ secrets: [{ id: 'gh', env: 'GH_TOKEN' }], buildArgs: { NPM_TOKEN: new Sensitive('arg-secret-1234') } }),
    );
    const builds = calls.filter((c) => c.startsWith('docker buildx build'));
    expect(builds).toHaveLength(2);
    expect(builds[0]).toContain(`--secret id=pip,src=${dir}/pip-token.txt --secret id=gh,env=GH_TOKEN`);
    expect(builds[0]).toContain('--build-arg NPM_TOKEN ');
    expect(builds[1]).toContain('-t shop:opskit-stage-builder-');
    expect(builds[1]).toContain('--target builder');
    expect(builds[1]).not.toContain('--metadata-file');
    expect(calls.filter((c) => c.startsWith('docker image rm'))).toEqual([
      `docker image rm ${builds[1]!.split(' -t ')[1]!.split(' ')[0]}`,
    ]);
    expect(envs[0]).toMatchObject({ GH_TOKEN: 'env-secret-0815', NPM_TOKEN: 'arg-secret-1234', PATH: '/usr/bin' });
    expect(calls.join('\n')).not.toMatch(/env-secret-0815|arg-secret-1234|file-secret-4711/);
    expect(result).toMatchObject({
      builder: 'buildkit',
      imageId: `sha256:f${'0'.repeat(63)}`,
      sizeBytes: 100,
      secrets: [`id=pip,src=${dir}/pip-token.txt`, 'id=gh,env=GH_TOKEN'],
      stages: [
        { name: 'builder', from: 'python', sizeBytes: 400 },
        { name: 'runtime', from: 'python', sizeBytes: 100 },
      ],
      finalVsBuilder: { finalBytes: 100, builderBytes: 400, ratio: 0.25 },
    });
    expect(JSON.stringify(result)).not.toMatch(/env-secret-0815|arg-secret-1234|file-secret-4711/);
    expect(stderr.text).toContain('[builder 2/2] ***'); // the step printed the secret: scrubbed
    expect(stderr.text).not.toMatch(/env-secret-0815|arg-secret-1234|file-secret-4711/);
    expect(stderr.text).toContain(
      'NPM_TOKEN: a RUN step that uses a build argument records its value in the image history',
    );
  });

  it('a failed step exits 1 naming it, with its output; nothing is measured', async () => {
    const failed = [
      pretty({ vertexes: [{ digest: 'sha256:9', name: '[2/3] RUN make', started: 't' }] }),
      pretty({ logs: [{ vertex: 'sha256:9', stream: 2, data: b64('make: *** no rule\n') }] }),
      pretty({
        vertexes: [
          {
            digest: 'sha256:9',
            name: '[2/3] RUN make',
            started: 't',
            completed: 't',
            error: 'process "/bin/sh -c make" did not complete successfully: exit code: 2',
          },
        ],
      }),
      'ERROR: failed to solve: process "/bin/sh -c make" did not complete successfully: exit code: 2',
    ]
      .join('\n')
      .split('\n');
    const { ctx, calls } = await setup({
      dockerfile: 'FROM python\nCOPY . .\nRUN make\n',
      buildx: () => ({ lines: failed, exitCode: 1 }),
    });
    const error = (await buildImage(ctx, input()).catch((e: unknown) => e)) as OpskitError;
    expect(error.exitCode).toBe(1);
    expect(error.code).toBe('E_BUILD_FAILED');
    expect(error.message).toMatch(
      /^build failed at \[2\/3\] RUN make: process "\/bin\/sh -c make" did not complete successfully: exit code: 2\n--- last 1 lines of build output ---\nmake: \*\*\* no rule$/,
    );
    expect(calls.filter((c) => c.startsWith('docker buildx build'))).toHaveLength(1);
  });

  it('a # syntax= frontend that cannot be pulled says so, and how to do without it', async () => {
    const offline = [
      pretty({
        vertexes: [
          {
            digest: 'sha256:f',
            name: 'resolve image config for docker-image://docker.io/docker/dockerfile:1',
            started: 't',
            completed: 't',
            error: 'failed to do request: dial tcp: lookup registry-1.docker.io: no such host',
          },
        ],
      }),
      'ERROR: failed to solve: failed to resolve source metadata for docker.io/docker/dockerfile:1: failed to do request: dial tcp: lookup registry-1.docker.io: no such host',
    ]
      .join('\n')
      .split('\n');
    const { ctx } = await setup({
      dockerfile: '# syntax=docker/dockerfile:1\nFROM python\n',
      buildx: () => ({ lines: offline, exitCode: 1 }),
    });
    const error = (await buildImage(ctx, input()).catch((e: unknown) => e)) as OpskitError;
    expect(error).toMatchObject({ code: 'E_BUILD_FRONTEND', exitCode: 1 });
    expect(error.message).toContain(
      "the Dockerfile's `# syntax=docker/dockerfile:1` line names a frontend image that BuildKit must pull, and it could not",
    );
    expect(error.hint).toContain(
      "remove the `# syntax=docker/dockerfile:1` line to use the Engine's built-in Dockerfile frontend",
    );
  });

  it('bad secrets are exit 2 and name the flag or the key', async () => {
    const { ctx } = await setup({
      dockerfile: 'FROM python\n',
      yaml: 'project:\n  name: shop\nimage:\n  secrets:\n    - id=pip,src=missing.txt\n',
      buildx: () => ({ lines: [], exitCode: 0 }),
    });
    await expect(buildImage(ctx, input())).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringMatching(/^image\.secrets id=pip: .*missing\.txt not found or not readable$/),
    });
    const unset = await setup({ dockerfile: 'FROM python\n', buildx: () => ({ lines: [], exitCode: 0 }) });
    await expect(
      buildImage(unset.ctx, input({ secrets: [{ id: 'x', env: 'NOT_SET_ANYWHERE' }] })),
    ).rejects.toMatchObject({
      exitCode: 2,
      message: '--secret id=x: the environment variable NOT_SET_ANYWHERE is not set (environment or env files)',
    });
  });

  it('auto falls back to the classic builder, with a warning, when buildx does not answer; secrets then refuse', async () => {
    const missing: ExecResult = {
      argv: [],
      exitCode: 1,
      stdout: '',
      stderr: "docker: 'buildx' is not a docker command.",
      failed: true,
      timedOut: false,
      notFound: false,
    };
    const { ctx, stderr } = await setup({
      dockerfile: 'FROM python\n',
      buildxVersion: missing,
      dryRun: true,
      buildx: () => ({ lines: [], exitCode: 0 }),
    });
    const result = await buildImage(ctx, input());
    expect(result).toMatchObject({ builder: 'classic', dryRun: { call: 'POST /build' } });
    expect(stderr.text).toContain(
      "BuildKit is not available (`docker buildx version` failed: docker: 'buildx' is not a docker command): building with the Engine's classic builder",
    );
    await expect(buildImage(ctx, input({ secrets: [{ id: 'GH_TOKEN', env: 'GH_TOKEN' }] }))).rejects.toMatchObject({
      exitCode: 2,
      code: 'E_SECRETS_NEED_BUILDKIT',
    });
    const strict = await setup({
      dockerfile: 'FROM python\n',
      yaml: 'project:\n  name: shop\nimage:\n  builder: buildkit\n',
      buildxVersion: missing,
      buildx: () => ({ lines: [], exitCode: 0 }),
    });
    await expect(buildImage(strict.ctx, input())).rejects.toMatchObject({ exitCode: 1, code: 'E_BUILDX_MISSING' });
  });

  it('--dry-run prints the buildx argv and the probe, secrets as ***, and runs no build', async () => {
    const { ctx, calls, stderr } = await setup({
      dockerfile: multiStage,
      dryRun: true,
      buildx: () => ({ lines: [], exitCode: 0 }),
    });
    const result = await buildImage(
      ctx,
      input({ buildArgs: { NPM_TOKEN: new Sensitive('arg-secret-1234') }, secrets: [{ id: 'gh', env: 'GH_TOKEN' }] }),
    );
    expect(calls.filter((c) => c.startsWith('docker buildx build') || c.startsWith('docker image rm'))).toEqual([]);
    expect(result.dryRun).toMatchObject({ call: 'docker buildx build', env: { NPM_TOKEN: '***', GH_TOKEN: '***' } });
    // The argv that would run: `docker buildx` or the plugin binary, whichever this machine has.
    const argv = result.dryRun!.argv!;
    expect(argv[0] === 'docker' ? argv.slice(0, 4) : ['docker', 'buildx', ...argv.slice(1, 3)]).toEqual([
      'docker',
      'buildx',
      'build',
      '--progress=rawjson',
    ]);
    const shown = stderr.text.replace(/\S*\/docker-buildx build/g, 'docker buildx build');
    expect(shown).toMatch(
      /\[dry run\] would run: docker buildx build --progress=rawjson --load -f .*--build-arg NPM_TOKEN .*--secret '\*\*\*' .*# BuildKit, .*; secrets id=gh,env=GH_TOKEN; environment NPM_TOKEN=\*\*\* GH_TOKEN=\*\*\*/,
    );
    expect(result.dryRun!.argv).toContain('id=gh,env=GH_TOKEN');
    expect(shown).toMatch(/\[dry run\] would run: docker buildx build .*--target builder/);
    expect(stderr.text).toMatch(/\[dry run\] would run: docker image rm shop:opskit-stage-builder-\d+/);
    expect(stderr.text + JSON.stringify(result)).not.toMatch(/env-secret-0815|arg-secret-1234/);
  });
});

describe('where buildx is run from', () => {
  it("looks where the docker CLI looks, in its order: the user's plugins, then the system's", () => {
    expect(buildxPluginCandidates({ HOME: '/home/ops' })).toEqual([
      '/home/ops/.docker/cli-plugins/docker-buildx',
      '/usr/local/lib/docker/cli-plugins/docker-buildx',
      '/usr/local/libexec/docker/cli-plugins/docker-buildx',
      '/usr/lib/docker/cli-plugins/docker-buildx',
      '/usr/libexec/docker/cli-plugins/docker-buildx',
    ]);
    expect(buildxPluginCandidates({ DOCKER_CONFIG: '/etc/ops-docker', HOME: '/home/ops' })[0]).toBe(
      '/etc/ops-docker/cli-plugins/docker-buildx',
    );
  });

  it('runs the plugin binary standalone with the same arguments after the subcommand', () => {
    const input = {
      contextDir: '/srv/shop',
      dockerfile: '/srv/shop/Dockerfile.prod',
      tags: ['x:1'],
      target: undefined,
      noCache: false,
      buildArgs: {},
      labels: {},
      secrets: [],
      secretValues: {},
      metadataFile: undefined,
      dockerHost: undefined,
    };
    const viaDocker = buildxArgv(input);
    const direct = buildxArgv({
      ...input,
      binary: { file: '/usr/libexec/docker/cli-plugins/docker-buildx', prefix: [] },
    });
    expect(direct.file).toBe('/usr/libexec/docker/cli-plugins/docker-buildx');
    expect(direct.args).toEqual(viaDocker.args.slice(1));
  });
});
