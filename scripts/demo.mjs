#!/usr/bin/env node
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
// The main job, end to end, on the sample platform: build, deploy with migrations, health, a cutover
// to a second version under load through nginx (0 failed requests), a rollback, a backup to a local S3
// server verified by a restore test, a load test with thresholds, and a summary of every figure.
// `npm run demo` readies the machine (scripts/test-env.sh) and builds opskit first. It cleans up what it
// started (containers, networks, volumes, images, the S3 server, the project directory) unless --keep.
import { execa } from 'execa';
import { composeArgs, exampleEnv, freePort, serviceAddress } from './lib.mjs';

const repo = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(repo, 'bin', 'opskit');
const keep = process.argv.includes('--keep');
// `--remove DIR`: take down what an earlier `--keep` run left (its containers, volumes, images, DIR).
const removeIndex = process.argv.indexOf('--remove');
const removeDir = removeIndex > 0 ? process.argv[removeIndex + 1] : undefined;
const tty = process.stdout.isTTY;
const bold = (s) => (tty ? `\u001b[1m${s}\u001b[22m` : s);
const green = (s) => (tty ? `\u001b[32m${s}\u001b[39m` : s);
const red = (s) => (tty ? `\u001b[31m${s}\u001b[39m` : s);

const steps = [
  'build',
  'deploy',
  'health',
  'cutover under load',
  'rollback under load',
  'backup to S3',
  'restore test',
  'load test',
];
let stepNo = 0;
const summary = [];
const failures = [];

function header(title, argv) {
  stepNo++;
  process.stdout.write(
    `\n${bold(`── ${stepNo}/${steps.length} ${title}`)}${argv ? `\n$ opskit ${argv.join(' ')}` : ''}\n`,
  );
}

/** One opskit command, as a user runs it: progress on the terminal (stderr), the JSON result kept. */
async function opskit(args, { json = true, allowExit = [0], env = {} } = {}) {
  const argv = ['-e', 'offline', ...(json ? ['--json'] : []), ...args];
  const r = await execa(process.execPath, [bin, ...argv], {
    cwd: project.dir,
    env: { ...project.env, ...env },
    reject: false,
    stdin: 'ignore',
    stderr: 'inherit',
  });
  if (!allowExit.includes(r.exitCode)) {
    process.stdout.write(r.stdout);
    throw new Error(`opskit ${args.join(' ')} exited ${r.exitCode}`);
  }
  return { exitCode: r.exitCode, doc: json ? JSON.parse(r.stdout) : undefined, stdout: r.stdout };
}

const project = { dir: '', name: '', env: {} };
let s3;
let load;

async function startS3() {
  const child = execa(process.execPath, [path.join(repo, 'tests/fixtures/s3-server.mjs')], {
    env: { NODE_OPTIONS: '--openssl-legacy-provider', S3_BUCKETS: 'opskit-demo' },
    reject: false,
    stdin: 'ignore',
    buffer: false,
  });
  const info = await new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`s3rver did not start: ${seen}`)), 20_000);
    child.stdout.on('data', (chunk) => {
      seen += chunk;
      const line = seen.split('\n').find((l) => l.startsWith('{'));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line));
      }
    });
    child.stderr.on('data', (chunk) => (seen += chunk));
  });
  return {
    ...info,
    stop: async () => {
      child.kill('SIGTERM');
      return await child;
    },
  };
}

async function containerIp(service) {
  return serviceAddress(project.name, service);
}

async function cleanup() {
  if (load) await load.stop().catch(() => undefined);
  if (s3) await s3.stop().catch(() => undefined);
  if (keep || !project.dir) return;
  process.stdout.write(
    `\n${bold('── cleanup')}: containers, networks, volumes, images of ${project.name}; the S3 server; ${project.dir}\n`,
  );
  const composeEnv = { ...exampleEnv(project.dir), ...project.env };
  const colours = (
    await execa('docker', ['ps', '-aq', '--filter', `label=com.docker.compose.project=${project.name}`], {
      reject: false,
    })
  ).stdout
    .split('\n')
    .filter(Boolean);
  if (colours.length) await execa('docker', ['rm', '-f', ...colours], { reject: false });
  await execa(
    ...composeArgs([
      '-p',
      project.name,
      '-f',
      path.join(project.dir, 'compose/docker-compose.prod.yml'),
      'down',
      '-v',
      '--remove-orphans',
      '-t',
      '2',
    ]),
    { env: composeEnv, reject: false },
  );
  const images = (
    await execa('docker', ['images', '-q', '--filter', `label=org.opskit.project=${project.name}`], { reject: false })
  ).stdout
    .split('\n')
    .filter(Boolean);
  if (images.length) await execa('docker', ['rmi', '-f', ...new Set(images)], { reject: false });
  rmSync(project.dir, { recursive: true, force: true });
}

const record = (step, figure, ok = true) => {
  summary.push({ step, figure, ok });
  if (!ok) failures.push(`${step}: ${figure}`);
  process.stdout.write(`${ok ? green('✔') : red('✖')} ${figure}\n`);
};

async function main() {
  const started = performance.now();
  project.dir = mkdtempSync(path.join(os.tmpdir(), 'opskit-demo-'));
  project.name = path
    .basename(project.dir)
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-');
  const port = await freePort(8080);
  project.env = { NGINX_PORT: String(port), COMPOSE_PROJECT_NAME: project.name };
  process.stdout.write(
    `${bold('opskit demo')}: the sample platform in ${project.dir} (compose project ${project.name}), nginx on 127.0.0.1:${port}\n`,
  );
  await execa(process.execPath, [bin, 'init', '--example', project.dir, '--quiet']);

  header('build: the multi-stage image, through the Docker Engine API', ['build']);
  const built = (await opskit(['build'])).doc;
  record(
    'build',
    `${built.tags.join(', ')}: ${(built.sizeBytes / 1e6).toFixed(1)} MB, ${built.steps} steps (${built.cachedSteps} cached), ${(built.durationMs / 1000).toFixed(1)} s`,
  );

  header(
    'deploy: database up and healthy, migrations in a one-off container of the new image, then the API and nginx',
    ['deploy'],
  );
  const deployed = (await opskit(['deploy'])).doc;
  record(
    'deploy',
    `${deployed.image}: migrations ${deployed.migrations.applied.length ? deployed.migrations.applied.join(', ') : 'none pending'}; ${(deployed.durationMs / 1000).toFixed(1)} s`,
  );

  header('health --json: containers, HTTP, PostgreSQL, Redis, disk, resources, nginx', ['health', '--json']);
  const health = await opskit(['health'], { allowExit: [0, 3] });
  process.stdout.write(`${JSON.stringify(health.doc, null, 2)}\n`);
  const counts =
    health.doc.summary ??
    health.doc.checks.reduce((a, c) => {
      a[c.status] = (a[c.status] ?? 0) + 1;
      return a;
    }, {});
  record(
    'health',
    `${health.doc.status}: ${health.doc.checks.length} checks (${Object.entries(counts)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ')}), exit ${health.exitCode}`,
    health.exitCode === 0,
  );

  header('cutover to a second version under load through nginx (autocannon, 50 connections on /ping)', [
    'cutover',
    '--image',
    '<v2>',
  ]);
  appendFileSync(path.join(project.dir, 'app.py'), '\n# demo: version 2\n');
  const v2 = (await opskit(['build', '--quiet'])).doc.tags[0];
  const { startBackgroundLoad } = await import('../dist/adapters/background-load.js');
  const url = `http://127.0.0.1:${port}/ping`;
  load = await startBackgroundLoad(url, { connections: 50, maxSeconds: 600 });
  await new Promise((r) => setTimeout(r, 1500));
  const cut = (await opskit(['cutover', '--image', v2])).doc;
  record(
    'cutover',
    `${cut.from} -> ${cut.to} (${cut.image}): switch ${cut.switchMs} ms, whole cutover ${(cut.durationMs / 1000).toFixed(1)} s; ${cut.from} kept warm`,
  );

  header('rollback: back to the warm colour, under the same load', ['rollback']);
  const back = (await opskit(['rollback'])).doc;
  record('rollback', `${back.from} -> ${back.to}: switch ${back.switchMs} ms`);
  await new Promise((r) => setTimeout(r, 1000));
  const result = await load.stop();
  load = undefined;
  const failed = result.non2xx + result.errors + result.dropped;
  const codes = Object.entries(result.errorsByCode)
    .map(([code, n]) => `${code} ${n}`)
    .join(', ');
  record(
    'load during both switches',
    `${result.requests} requests through nginx at ${result.rps} req/s: ${failed} failed (${result.non2xx} non-2xx, ${result.errors} errors${codes ? `: ${codes}` : ''}, ${result.timeouts} timeouts, ${result.dropped} dropped)`,
    failed === 0,
  );

  header(
    'backup to S3: pg_dump in the db container, gzip, sha256, a local file and a multipart upload (s3rver on a free port)',
    ['backup', 'create', '--via', 'compose'],
  );
  s3 = await startS3();
  const s3env = {
    OPSKIT_S3_BUCKET: 'opskit-demo',
    OPSKIT_S3_PREFIX: 'demo/',
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_REGION: 'us-east-1',
  };
  const backup = (await opskit(['backup', 'create', '--via', 'compose'], { env: s3env })).doc;
  record(
    'backup',
    `${path.basename(backup.backup.file)}: ${backup.backup.sizeBytes ?? backup.backup.bytes} bytes, sha256 ${backup.backup.sha256.slice(0, 12)}…; uploaded to s3://${backup.s3.bucket}/${backup.s3.key}`,
    backup.s3.uploaded,
  );

  header('restore test: from S3 alone (an empty local directory), into a scratch database, counted, dropped', [
    'backup',
    'verify',
    '--dir',
    '<empty>',
  ]);
  const password = exampleEnv(project.dir).POSTGRES_PASSWORD;
  const dbUrl = `postgresql://app:${encodeURIComponent(password)}@${await containerIp('db')}:5432/app`;
  const empty = mkdtempSync(path.join(os.tmpdir(), 'opskit-demo-restore-'));
  try {
    const verified = (await opskit(['backup', 'verify', '--dir', empty, '--database-url', dbUrl], { env: s3env })).doc;
    record(
      'restore test',
      `${verified.id}: downloaded ${verified.downloaded}, checksum ${verified.checksum}, ${Object.keys(verified.tables).length} tables, ${verified.rows} rows restored in ${verified.restoreMs} ms`,
      verified.checksum === 'ok',
    );
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }

  header('load test with thresholds: the platform mix (loadtest.yaml) through nginx, under its /api/ rate limit', [
    'loadtest',
    '--scenario',
    'loadtest.yaml',
    '--rate',
    '150',
    '--duration',
    '10s',
    '--connections',
    '20',
  ]);
  const lt = await opskit(
    [
      'loadtest',
      '--url',
      `http://127.0.0.1:${port}`,
      '--scenario',
      'loadtest.yaml',
      '--rate',
      '150',
      '--duration',
      '10s',
      '--connections',
      '20',
    ],
    { allowExit: [0, 3] },
  );
  const d = lt.doc;
  for (const r of d.perRequest)
    process.stdout.write(
      `  ${r.name.padEnd(12)} ${String(r.requests).padStart(5)} answered, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, non-2xx ${r.non2xx}\n`,
    );
  for (const t of d.thresholds)
    process.stdout.write(`  ${t.passed ? green('✔') : red('✖')} ${t.expression} (${t.shown})\n`);
  record(
    'load test',
    `${d.requests.total} requests, ${d.requests.rps.avg} req/s, p50 ${d.latency.p50} ms, p99 ${d.latency.p99} ms; thresholds ${d.thresholds.filter((t) => t.passed).length}/${d.thresholds.length} passed, exit ${lt.exitCode}`,
    lt.exitCode === 0,
  );

  process.stdout.write(`\n${bold('── summary')} (${((performance.now() - started) / 1000).toFixed(0)} s)\n`);
  const width = Math.max(...summary.map((s) => s.step.length));
  for (const s of summary)
    process.stdout.write(`${s.ok ? green('✔') : red('✖')} ${s.step.padEnd(width)}  ${s.figure}\n`);
  if (keep) {
    process.stdout.write(
      `\nkept (--keep): ${project.dir}, compose project ${project.name}, http://127.0.0.1:${port}/health\n`,
    );
    process.stdout.write(
      `  cd ${project.dir} && NGINX_PORT=${port} COMPOSE_PROJECT_NAME=${project.name} opskit -e offline status\n`,
    );
    process.stdout.write(`  remove it all: node scripts/demo.mjs --remove ${project.dir}\n`);
  }
}

if (removeDir) {
  project.dir = path.resolve(removeDir);
  project.name = path
    .basename(project.dir)
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-');
  if (!project.name.startsWith('opskit-demo-')) {
    process.stderr.write(`--remove: ${removeDir} is not a directory the demo made (opskit-demo-*)\n`);
    process.exit(2);
  }
  project.env = { NGINX_PORT: '8080', COMPOSE_PROJECT_NAME: project.name };
  await cleanup();
  process.exit(0);
}

let exitCode = 0;
try {
  await main();
  if (failures.length) {
    process.stdout.write(`\n${red(`${failures.length} step(s) did not meet their goal`)}: ${failures.join('; ')}\n`);
    exitCode = 1;
  }
} catch (error) {
  process.stdout.write(`\n${red('demo failed')}: ${error.message}\n`);
  exitCode = 1;
} finally {
  await cleanup();
}
process.exit(exitCode);
