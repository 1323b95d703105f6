#!/usr/bin/env node
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
// opskit's benchmarks. Each one measures opskit and its baseline side by side in the same run,
// interleaved so that machine noise hits both alike, and prints the ratio. `npm run bench` builds first.
import { execa } from 'execa';
import { composeArgs, exampleEnv, freePort, serviceAddress } from './lib.mjs';

const repo = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(repo, 'bin', 'opskit');
const json = process.argv.includes('--json');
const runs = Number(process.env.BENCH_RUNS ?? 30);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const p90 = (xs) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.9))];

async function timeOnce(file, args, options = {}) {
  const t0 = performance.now();
  const r = await execa(file, args, {
    reject: false,
    stdin: 'ignore',
    ...options,
    env: { NO_COLOR: '1', ...options.env },
  });
  const ms = performance.now() - t0;
  if (r.exitCode !== 0) throw new Error(`${file} ${args.join(' ')} exited ${r.exitCode}: ${r.stderr}`);
  return ms;
}

/** Runs A and B alternately `runs` times after a warm-up; returns their medians and the ratio A/B. */
async function sideBySide(a, b) {
  return sideBySideWith(a, b, runs);
}

async function sideBySideWith(a, b, count) {
  const once = (x) => timeOnce(x.argv[0], x.argv[1], x.options);
  for (let i = 0; i < 2; i++) {
    await once(a);
    await once(b);
  }
  const ta = [];
  const tb = [];
  for (let i = 0; i < count; i++) {
    if (i % 2) {
      tb.push(await once(b));
      ta.push(await once(a));
    } else {
      ta.push(await once(a));
      tb.push(await once(b));
    }
  }
  return {
    [a.name]: { medianMs: +median(ta).toFixed(1), p90Ms: +p90(ta).toFixed(1) },
    [b.name]: { medianMs: +median(tb).toFixed(1), p90Ms: +p90(tb).toFixed(1) },
    ratio: +(median(ta) / median(tb)).toFixed(2),
  };
}

// ---- deploy: opskit against the same sequence run by hand with the compose CLI ------------------------
async function examplePlatform(track = (p) => p) {
  return track(await newExamplePlatform());
}

async function newExamplePlatform() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'opskit-bench-'));
  await execa(process.execPath, [bin, 'init', '--example', dir, '--quiet']);
  const project = path.basename(dir).toLowerCase();
  const env = { ...exampleEnv(dir), NGINX_PORT: String(await freePort()) };
  await execa(process.execPath, [bin, '-e', 'offline', 'build', '--quiet'], { cwd: dir, env });
  return { dir, project, env, file: path.join(dir, 'compose/docker-compose.prod.yml') };
}

async function down(p, project) {
  await execa(...composeArgs(['-p', project, '-f', p.file, 'down', '-v', '-t', '2']), { env: p.env, reject: false });
}

/** The PAT-015 sequence by hand, with its fixed sleep replaced by the tightest polling a script would do. */
async function deployByHand(p, project) {
  const compose = (...args) =>
    execa(...composeArgs(['-p', project, '-f', p.file, ...args]), {
      env: { ...p.env, WEB_IMAGE: `${p.project}:latest` },
    });
  const healthy = async (service) => {
    for (;;) {
      const id = (
        await execa('docker', [
          'ps',
          '-q',
          '--filter',
          `label=com.docker.compose.project=${project}`,
          '--filter',
          `label=com.docker.compose.service=${service}`,
        ])
      ).stdout.trim();
      if (id && (await execa('docker', ['inspect', '-f', '{{.State.Health.Status}}', id])).stdout.trim() === 'healthy')
        return id;
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  await compose('up', '-d', 'db', 'redis');
  await Promise.all([healthy('db'), healthy('redis')]);
  await compose('run', '--rm', '--no-deps', '-T', 'web', 'python3', 'migrate.py');
  await compose('up', '-d', '--no-deps', 'web');
  const ip = await serviceAddress(project, 'web');
  for (;;) {
    const ok = await fetch(`http://${ip}:8000/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  await compose('up', '-d', '--no-deps', 'nginx');
  await healthy('nginx');
}

async function deployBench(track) {
  const p = await examplePlatform(track);
  const opskit = [];
  const byHand = [];
  const rounds = Number(process.env.BENCH_DEPLOY_RUNS ?? 3);
  try {
    for (let i = 0; i < rounds; i++) {
      const pair = [
        async () => {
          await rmState(p.dir);
          const t0 = performance.now();
          await execa(process.execPath, [bin, '-e', 'offline', 'deploy', '--quiet'], {
            cwd: p.dir,
            env: { ...p.env, COMPOSE_PROJECT_NAME: `${p.project}o` },
          });
          opskit.push(performance.now() - t0);
          await down(p, `${p.project}o`);
        },
        async () => {
          const t0 = performance.now();
          await deployByHand(p, `${p.project}h`);
          byHand.push(performance.now() - t0);
          await down(p, `${p.project}h`);
        },
      ];
      for (const run of i % 2 ? pair.reverse() : pair) await run();
    }
  } finally {
    await down(p, `${p.project}o`);
    await down(p, `${p.project}h`);
  }
  return {
    p,
    result: {
      'opskit deploy': { medianMs: +median(opskit).toFixed(0), p90Ms: +p90(opskit).toFixed(0) },
      'compose by hand': { medianMs: +median(byHand).toFixed(0), p90Ms: +p90(byHand).toFixed(0) },
      ratio: +(median(opskit) / median(byHand)).toFixed(3),
    },
  };
}

async function rmState(dir) {
  rmSync(path.join(dir, '.opskit', 'state.json'), { force: true });
}

let platformForRebuild;

/** Cutover and rollback switch times, and what a 100-connection load on /ping sees during switches. */
async function cutoverBench(track) {
  const p = await examplePlatform(track);
  const run = (...args) =>
    execa(process.execPath, [bin, '-e', 'offline', ...args], { cwd: p.dir, env: p.env, reject: false });
  try {
    const deployed = await run('deploy', '--json', '--quiet');
    if (deployed.exitCode !== 0) throw new Error(`cutover bench: deploy failed: ${deployed.stderr}`);
    const { appendFileSync } = await import('node:fs');
    appendFileSync(path.join(p.dir, 'app.py'), '\n# bench v2\n');
    const v2 = JSON.parse((await run('build', '--json', '--quiet')).stdout).tags[0];
    const ip = await serviceAddress(p.project, 'nginx');
    const cut = JSON.parse((await run('cutover', '--image', v2, '--json', '--quiet')).stdout);
    const switches = [cut.switchMs];
    const { startBackgroundLoad } = await import('../dist/adapters/background-load.js');
    const runs = Number(process.env.BENCH_CUTOVER_RUNS ?? 6);
    // The same switches under the same load, by link (the default) and by nginx reload, one after the other.
    const underLoad = async (mode) => {
      const rollbacks = [];
      const rollbackWall = [];
      const load = await startBackgroundLoad(`http://${ip}:80/ping`, { connections: 100, maxSeconds: 120 });
      await new Promise((r) => setTimeout(r, 1500));
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        const r = await run('rollback', '--json', '--quiet', '--set', `cutover.switch=${mode}`);
        if (r.exitCode !== 0) throw new Error(`cutover bench: rollback (${mode}) failed: ${r.stderr}`);
        rollbackWall.push(performance.now() - t0);
        rollbacks.push(JSON.parse(r.stdout).switchMs);
      }
      await new Promise((r) => setTimeout(r, 1000));
      const result = await load.stop();
      return {
        rollbacks,
        rollbackWall,
        load: {
          rps: result.rps,
          requests: result.requests,
          non2xx: result.non2xx,
          errors: result.errors,
          errorsByCode: result.errorsByCode,
          timeouts: result.timeouts,
          dropped: result.dropped,
          switches: runs,
        },
      };
    };
    const socket = await underLoad('socket');
    const reload = await underLoad('reload');
    return {
      'cutover switch (link swap, verified through nginx)': { medianMs: median(switches), p90Ms: p90(switches) },
      'warm rollback switch under load': { medianMs: median(socket.rollbacks), p90Ms: p90(socket.rollbacks) },
      ratio: +(median(socket.rollbackWall) / 1000).toFixed(3),
      rollbackWallMs: +median(socket.rollbackWall).toFixed(0),
      load: { url: '/ping through nginx, 100 connections', ...socket.load },
      reloadMode: { url: 'the same with cutover.switch: reload', ...reload.load },
    };
  } finally {
    const colours = (
      await execa(
        'docker',
        [
          'ps',
          '-aq',
          '--filter',
          `label=com.docker.compose.project=${p.project}`,
          '--filter',
          'label=org.opskit.role=web',
        ],
        { reject: false },
      )
    ).stdout
      .split('\n')
      .filter(Boolean);
    if (colours.length) await execa('docker', ['rm', '-f', ...colours], { reject: false });
    await down(p, p.project);
  }
}

/** Ten HTTP checks against a local server, one of them answering after 1 s. */
async function healthBench() {
  const http = await import('node:http');
  const server = http.createServer((req, res) => {
    const reply = () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"ok"}');
    };
    if (req.url === '/slow') setTimeout(reply, 1000);
    else reply();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${server.address().port}`;
  const args = [
    'health',
    '--json',
    '--quiet',
    ...Array.from({ length: 9 }, (_, i) => ['--url', `${base}/fast?${i}`]).flat(),
    '--url',
    `${base}/slow`,
  ];
  const totals = [];
  const sums = [];
  try {
    for (let i = 0; i < Number(process.env.BENCH_HEALTH_RUNS ?? 5); i++) {
      const r = await execa(process.execPath, [bin, ...args], { reject: false, cwd: os.tmpdir() });
      const doc = JSON.parse(r.stdout);
      if (doc.checks.length !== 10 || doc.status !== 'pass')
        throw new Error(`health bench: unexpected result ${r.stdout.slice(0, 300)}`);
      totals.push(doc.durationMs);
      sums.push(doc.checks.reduce((a, c) => a + c.latencyMs, 0));
    }
  } finally {
    server.close();
  }
  return {
    'health run (total)': { medianMs: median(totals), p90Ms: p90(totals) },
    "sum of the checks' own times": { medianMs: median(sums), p90Ms: p90(sums) },
    ratio: +(median(totals) / median(sums)).toFixed(3),
    totalMs: median(totals),
  };
}

// ---- backup: opskit backup create against pg_dump | gzip > file, and opskit's peak RSS ------------------
const PG = {
  user: process.env.OPSKIT_TEST_PG_USER ?? 'opskit_test',
  password: process.env.OPSKIT_TEST_PG_PASSWORD ?? 'opskit-test-pw',
};
const pgUrl = (db) => `postgres://${PG.user}:${PG.password}@127.0.0.1:5432/${db}`;
const pgEnvFor = (db) => ({
  PGHOST: '127.0.0.1',
  PGPORT: '5432',
  PGUSER: PG.user,
  PGPASSWORD: PG.password,
  PGDATABASE: db,
});

async function psqlBench(db, sql) {
  await execa('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', sql], { env: pgEnvFor(db) });
}

/** Runs opskit and samples its peak resident set (VmHWM) until it exits. */
async function peakRss(argv, options) {
  const child = execa(argv[0], argv[1], { reject: false, stdin: 'ignore', ...options });
  let peak = 0;
  const timer = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]) * 1024);
    } catch {}
  }, 20);
  const r = await child;
  clearInterval(timer);
  if (r.exitCode !== 0) throw new Error(`${argv[1].join(' ')}: ${r.stderr}`);
  return peak;
}

async function backupBench() {
  const db = `opskit_bench_${Date.now().toString(36)}`;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'opskit-bench-backup-'));
  const count = Number(process.env.BENCH_BACKUP_RUNS ?? 3);
  await psqlBench('postgres', `CREATE DATABASE ${db}`);
  try {
    // Rows of about 230 bytes: a md5, a random number and repeated text, ~1.05 M rows for the 200 MB size.
    const fill = (table, rows) =>
      psqlBench(
        db,
        `CREATE TABLE ${table} AS SELECT g AS id, md5(g::text) AS h, random() AS r, repeat(md5((g % 1000)::text), 5) AS body FROM generate_series(1, ${rows}) g`,
      );
    await fill('small', 100_000);
    const sizeOf = async () =>
      Number((await execa('psql', ['-X', '-Atc', `SELECT pg_database_size('${db}')`], { env: pgEnvFor(db) })).stdout);
    const smallBytes = await sizeOf();
    const opskitArgv = [
      process.execPath,
      [bin, 'backup', 'create', '--database-url', pgUrl(db), '--dir', dir, '--quiet'],
    ];
    const rssSmall = await peakRss(opskitArgv, { cwd: dir });
    await fill('big', 1_050_000);
    const bigBytes = await sizeOf();
    const rssBig = await peakRss(opskitArgv, { cwd: dir });
    const byHand = async () => {
      const file = path.join(dir, `byhand-${Date.now()}.sql.gz`);
      // A kernel pipe, as the shell makes it: pg_dump's stdout is gzip's stdin (argv arrays, no shell).
      const { spawn } = await import('node:child_process');
      const { openSync, closeSync } = await import('node:fs');
      const out = openSync(file, 'w');
      const dump = spawn('pg_dump', ['--no-password', '--no-owner', '--no-acl'], {
        env: { ...process.env, ...pgEnvFor(db) },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const gzip = spawn('gzip', ['-6'], { stdio: [dump.stdout, out, 'inherit'] });
      const exited = (child) =>
        new Promise((resolve, reject) =>
          child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${child.spawnfile} exited ${code}`)))),
        );
      await Promise.all([exited(dump), exited(gzip)]);
      closeSync(out);
    };
    const viaOpskit = () => execa(...opskitArgv, { cwd: dir, stdin: 'ignore' });
    const ta = [];
    const tb = [];
    for (let i = 0; i < count; i++) {
      for (const [fn, into] of i % 2
        ? [
            [byHand, tb],
            [viaOpskit, ta],
          ]
        : [
            [viaOpskit, ta],
            [byHand, tb],
          ]) {
        const t0 = performance.now();
        if (process.env.BENCH_DEBUG) console.error('backup bench: run', fn.name);
        await fn();
        into.push(performance.now() - t0);
        if (process.env.BENCH_DEBUG) console.error('backup bench: done', fn.name, performance.now() - t0);
        for (const f of (await import('node:fs')).readdirSync(dir))
          rmSync(path.join(dir, f), { recursive: true, force: true });
      }
    }
    return {
      'opskit backup create': { medianMs: +median(ta).toFixed(0), p90Ms: +p90(ta).toFixed(0) },
      'pg_dump | gzip -6 > file': { medianMs: +median(tb).toFixed(0), p90Ms: +p90(tb).toFixed(0) },
      ratio: +(median(ta) / median(tb)).toFixed(3),
      database: { smallMiB: +(smallBytes / 2 ** 20).toFixed(0), bigMiB: +(bigBytes / 2 ** 20).toFixed(0) },
      peakRss: { smallMiB: +(rssSmall / 2 ** 20).toFixed(0), bigMiB: +(rssBig / 2 ** 20).toFixed(0) },
    };
  } finally {
    await psqlBench('postgres', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- loadtest: opskit loadtest against the bare autocannon CLI, wrk as this machine's ceiling --------------
async function loadtestBench() {
  const { writeFileSync, mkdirSync, rmSync } = await import('node:fs');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'opskit-bench-load-'));
  const port = await freePort();
  mkdirSync(path.join(dir, 'logs'));
  // nginx answering from memory: faster than any one-core loader, so the loaders are what is measured.
  writeFileSync(
    path.join(dir, 'nginx.conf'),
    `worker_processes 1;\npid ${dir}/nginx.pid;\nerror_log ${dir}/logs/error.log;\nevents { worker_connections 1024; }\nhttp {\n  access_log off;\n  server {\n    listen 127.0.0.1:${port};\n    location / { return 200 '{"status":"ok"}'; }\n  }\n}\n`,
  );
  await execa('nginx', ['-c', path.join(dir, 'nginx.conf'), '-p', dir]);
  const url = `http://127.0.0.1:${port}/health`;
  const seconds = Number(process.env.BENCH_LOAD_SECONDS ?? 5);
  const connections = 50;
  const autocannonCli = path.join(repo, 'node_modules', 'autocannon', 'autocannon.js');
  const opskitRun = async () => {
    const r = await execa(
      process.execPath,
      [bin, '--json', 'loadtest', '--url', url, '--connections', String(connections), '--duration', `${seconds}s`],
      { reject: false, cwd: dir },
    );
    const doc = JSON.parse(r.stdout);
    if (!doc.ok) throw new Error(`loadtest bench: opskit failed: ${r.stdout.slice(0, 300)}`);
    return doc.requests.total / (doc.durationMs / 1000);
  };
  const autocannonRun = async () => {
    const r = await execa(
      process.execPath,
      [autocannonCli, '--json', '-c', String(connections), '-d', String(seconds), url],
      { reject: false, cwd: dir },
    );
    const doc = JSON.parse(r.stdout);
    const answered = Object.values(doc.statusCodeStats ?? {}).reduce((a, s) => a + Number(s.count), 0);
    return answered / doc.duration;
  };
  const wrkRun = async () => {
    const r = await execa('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, url], { reject: false });
    const m = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
    return m ? Number(m[1]) : undefined;
  };
  const rounds = Number(process.env.BENCH_LOAD_ROUNDS ?? 5);
  const a = [];
  const b = [];
  try {
    await opskitRun();
    await autocannonRun();
    for (let i = 0; i < rounds; i++) {
      if (i % 2) {
        b.push(await autocannonRun());
        a.push(await opskitRun());
      } else {
        a.push(await opskitRun());
        b.push(await autocannonRun());
      }
    }
    const hasWrk = !(await execa('which', ['wrk'], { reject: false })).failed;
    const wrk = hasWrk ? await wrkRun() : undefined;
    return {
      'opskit loadtest': { medianRps: Math.round(median(a)), runs: a.map(Math.round) },
      'autocannon CLI': { medianRps: Math.round(median(b)), runs: b.map(Math.round) },
      wrk:
        wrk !== undefined
          ? { rps: Math.round(wrk), note: 'wrk -t1 (one loader thread, C): the ceiling of this machine' }
          : { note: 'wrk is not installed (apt-get install wrk)' },
      setup: `${connections} connections, ${seconds} s runs, ${rounds} interleaved rounds, nginx (1 worker) answering from memory`,
      ratio: +(median(a) / median(b)).toFixed(3),
    };
  } finally {
    await execa('nginx', ['-c', path.join(dir, 'nginx.conf'), '-p', dir, '-s', 'stop'], { reject: false });
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The sample platform deployed on the lab's 3 nodes (the lab brought up when it is not, and down after
 * only then), handed to `measure`; its services removed after.
 */
async function onSwarmLab(measure) {
  const labEnvFile = path.join(repo, '.lab', 'env.json');
  const wasUp = (await execa('node', [path.join(repo, 'scripts/lab.mjs'), 'status'], { reject: false })).exitCode === 0;
  const t0 = performance.now();
  await execa('node', [path.join(repo, 'scripts/lab.mjs'), 'up'], { stdio: 'ignore' });
  const labUpMs = performance.now() - t0;
  const labEnv = JSON.parse(readFileSync(labEnvFile, 'utf8'));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'opskit-bench-swarm-'));
  const project = path
    .basename(dir)
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-');
  const env = { ...labEnv };
  try {
    await execa(process.execPath, [bin, 'init', '--example', dir, '--engine', 'swarm'], { env });
    const t1 = performance.now();
    await execa(process.execPath, [bin, 'deploy', '--build', '--quiet'], { cwd: dir, env });
    const deployMs = performance.now() - t1;
    const setup = `lab up in ${(labUpMs / 1000).toFixed(1)} s${wasUp ? ' (it was up)' : ''}; deploy --build of the sample platform on 3 nodes in ${(deployMs / 1000).toFixed(1)} s`;
    return await measure({ dir, env, labEnv, project, setup });
  } finally {
    const ids = (
      await execa(
        'docker',
        ['-H', labEnv.DOCKER_HOST, 'service', 'ls', '-q', '--filter', `label=opskit.project=${project}`],
        { reject: false },
      )
    ).stdout
      .split('\n')
      .filter(Boolean);
    if (ids.length) await execa('docker', ['-H', labEnv.DOCKER_HOST, 'service', 'rm', ...ids], { reject: false });
    rmSync(dir, { recursive: true, force: true });
    if (!wasUp) await execa('node', [path.join(repo, 'scripts/lab.mjs'), 'down'], { reject: false });
  }
}

/**
 * engine: swarm on the lab: `opskit status --json` (nodes, services, tasks per node) beside `opskit config
 * --json` (the same process start and config load, no Engine call), and `docker service ps` for reference.
 */
function swarmBench() {
  return onSwarmLab(async ({ dir, env, labEnv, project, setup }) => {
    const services = ['db', 'redis', 'web', 'nginx'].map((s) => `${project}_${s}`);
    const count = Number(process.env.BENCH_SWARM_RUNS ?? 15);
    const result = await sideBySideWith(
      { name: 'opskit status --json', argv: [process.execPath, [bin, 'status', '--json']], options: { cwd: dir, env } },
      { name: 'opskit config --json', argv: [process.execPath, [bin, 'config', '--json']], options: { cwd: dir, env } },
      count,
    );
    const cli = [];
    for (let i = 0; i < count; i++)
      cli.push(await timeOnce('docker', ['-H', labEnv.DOCKER_HOST, 'service', 'ps', ...services]));
    return {
      ...result,
      setup: `${setup}; for reference, \`docker service ps\` of the 4 services (a Go binary, tasks only): median ${median(cli).toFixed(1)} ms`,
    };
  });
}

/**
 * A warm rollback on the lab, the whole `opskit rollback` process (start, config, lock, the colour's warm
 * check, its socket asked, the link renamed, the edge verified, state and audit written), beside `opskit
 * config --json`. Each rollback switches back the other way, so every run is a real switch.
 */
function swarmRollbackBench() {
  return onSwarmLab(async ({ dir, env, setup }) => {
    appendFileSync(path.join(dir, 'app.py'), '\n# bench: version 2\n');
    const built = JSON.parse((await execa(process.execPath, [bin, 'build', '--json'], { cwd: dir, env })).stdout);
    const t0 = performance.now();
    await execa(process.execPath, [bin, 'cutover', '--image', built.tags[0], '--quiet'], { cwd: dir, env });
    const cutoverMs = performance.now() - t0;
    const result = await sideBySideWith(
      { name: 'opskit rollback', argv: [process.execPath, [bin, 'rollback', '--quiet']], options: { cwd: dir, env } },
      { name: 'opskit config --json', argv: [process.execPath, [bin, 'config', '--json']], options: { cwd: dir, env } },
      Number(process.env.BENCH_SWARM_RUNS ?? 15),
    );
    return {
      ...result,
      setup: `${setup}; the first cutover (the green service created, 2 tasks gated) in ${(cutoverMs / 1000).toFixed(1)} s`,
    };
  });
}

const benchmarks = [
  {
    name: 'cold start: opskit --help vs node -e 0',
    goal: 'ratio < 2.0',
    pass: (r) => r.ratio < 2,
    run: () =>
      sideBySide(
        { name: 'opskit --help', argv: [process.execPath, [bin, '--help']] },
        { name: 'node -e 0', argv: [process.execPath, ['-e', '0']] },
      ),
  },
  {
    name: "health: ten checks, one taking 1 s: the run's total vs the sum of the checks' times",
    goal: 'total < 1100 ms (the checks run in parallel)',
    pass: (r) => r.totalMs < 1100,
    run: healthBench,
  },
  {
    name: 'cutover and rollback: switch times, and requests failed by switches under the highest load here',
    goal: '0 failed requests (non-2xx, errors, timeouts) during the switches; a warm rollback switch under 1 s',
    pass: (r) =>
      r.load.non2xx + r.load.errors + r.load.timeouts === 0 && r['warm rollback switch under load'].p90Ms < 1000,
    run: (track) => cutoverBench(track),
  },
  {
    name: "backup: opskit backup create vs pg_dump | gzip > file, a database of 200+ MB; opskit's peak RSS at two sizes",
    goal: 'ratio <= 1.15; peak RSS < 150 MB at both sizes, not growing with the database',
    pass: (r) =>
      r.ratio <= 1.15 &&
      r.database.bigMiB >= 200 &&
      r.peakRss.bigMiB < 150 &&
      r.peakRss.smallMiB < 150 &&
      r.peakRss.bigMiB <= r.peakRss.smallMiB * 1.2,
    run: backupBench,
  },
  {
    name: 'deploy of the sample platform: opskit deploy vs the same compose sequence by hand',
    goal: "opskit's overhead < 10% (ratio < 1.10)",
    pass: (r) => r.ratio < 1.1,
    run: async (track) => {
      const { p, result } = await deployBench(track);
      platformForRebuild = p;
      return result;
    },
  },
  {
    name: 'loadtest: opskit loadtest vs the bare autocannon CLI, same target and load; wrk beside them',
    goal: 'ratio >= 0.95 (throughput)',
    pass: (r) => r.ratio >= 0.95,
    run: loadtestBench,
  },
  {
    name: 'no-change rebuild: opskit build (BuildKit) vs docker buildx build, same context, both fully cached',
    goal: 'opskit <= 0.5 s (issue 16); ratio reported',
    pass: (r) => r['opskit build'].medianMs <= 500,
    run: async (track) => {
      const p = platformForRebuild ?? (await examplePlatform(track));
      return sideBySideWith(
        {
          name: 'opskit build',
          argv: [process.execPath, [bin, '-e', 'offline', 'build', '--quiet']],
          options: { cwd: p.dir, env: p.env },
        },
        {
          name: 'docker buildx build',
          argv: [
            'docker',
            [
              'buildx',
              'build',
              '-q',
              '--load',
              '-f',
              'Dockerfile.prod',
              '--build-arg',
              `BASE_IMAGE=${p.env.BASE_IMAGE}`,
              '-t',
              `${p.project}:byhand`,
              '.',
            ],
          ],
          options: { cwd: p.dir },
        },
        Number(process.env.BENCH_REBUILD_RUNS ?? 6),
      );
    },
  },
  {
    name: 'swarm status: opskit status --json (nodes, services, tasks per node) vs opskit config --json (no Engine call)',
    goal: 'ratio < 1.5 (the Swarm reads add less than half of what loading the config costs)',
    pass: (r) => r.ratio < 1.5,
    run: swarmBench,
  },
  {
    name: 'swarm rollback: the whole opskit rollback process on the lab (a warm colour) vs opskit config --json',
    goal: 'the whole rollback under 1 s (median and p90)',
    pass: (r) => r['opskit rollback'].medianMs < 1000 && r['opskit rollback'].p90Ms < 1000,
    run: swarmRollbackBench,
  },
];
const only = process.env.BENCH_ONLY;
if (only) benchmarks.splice(0, benchmarks.length, ...benchmarks.filter((b) => b.name.includes(only)));

const machine = {
  cpus: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'unknown'}`,
  memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
  node: process.version,
  platform: `${os.type()} ${os.release()} ${os.arch()}`,
  runs,
  docker:
    (await execa('docker', ['version', '--format', '{{.Server.Version}}'], { reject: false })).stdout.trim() ||
    'not running',
};
const results = [];
const platforms = [];
const track = (p) => {
  platforms.push(p);
  return p;
};
try {
  for (const b of benchmarks) {
    const r = await b.run(track);
    results.push({ name: b.name, goal: b.goal, met: b.pass(r), ...r });
  }
} finally {
  // Leave no bench images behind: every image the bench built carries its project's label or tag.
  for (const p of platforms) {
    const images = (
      await execa('docker', ['images', '-q', '--filter', `label=org.opskit.project=${p.project}`], { reject: false })
    ).stdout
      .split('\n')
      .filter(Boolean);
    await execa('docker', ['rmi', '-f', `${p.project}:byhand`, ...new Set(images)], { reject: false });
  }
}
if (json) {
  process.stdout.write(`${JSON.stringify({ machine, date: new Date().toISOString(), results }, null, 2)}\n`);
} else {
  const lines = [
    `opskit benchmarks (${machine.cpus}, ${machine.memoryGiB} GiB, node ${machine.node}, ${runs} interleaved runs each)`,
    '',
  ];
  for (const r of results) {
    const [a, b] = Object.keys(r).filter(
      (k) => r[k] && typeof r[k] === 'object' && ('medianMs' in r[k] || 'medianRps' in r[k]),
    );
    lines.push(`${r.name}`);
    for (const k of [a, b])
      lines.push(
        'medianRps' in r[k]
          ? `  ${k}: median ${r[k].medianRps} req/s (runs: ${r[k].runs.join(', ')})`
          : `  ${k}: median ${r[k].medianMs} ms (p90 ${r[k].p90Ms} ms)`,
      );
    if (r.wrk) lines.push(`  wrk: ${r.wrk.rps !== undefined ? `${r.wrk.rps} req/s, ` : ''}${r.wrk.note}`);
    if (r.setup) lines.push(`  ${r.setup}`);
    for (const l of [r.load, r.reloadMode].filter(Boolean))
      lines.push(
        `  load: ${l.url}: ${l.rps} req/s, ${l.requests} requests, ${l.non2xx} non-2xx, ${l.errors} errors, ${l.timeouts} timeouts over ${l.switches} switches`,
      );
    if (r.peakRss)
      lines.push(
        `  databases ${r.database.smallMiB} MiB and ${r.database.bigMiB} MiB: opskit's peak RSS ${r.peakRss.smallMiB} MiB and ${r.peakRss.bigMiB} MiB`,
      );
    if (r.rollbackWallMs !== undefined)
      lines.push(`  a whole warm \`opskit rollback\` (process start to exit): ${r.rollbackWallMs} ms`);
    lines.push(
      `  ratio ${r.ratio}x   goal ${r.goal}${r.goal.startsWith('none') ? '' : `: ${r.met ? 'met' : 'NOT met'}`}`,
    );
    lines.push('');
  }
  process.stdout.write(lines.join('\n'));
}
