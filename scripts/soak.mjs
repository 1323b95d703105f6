#!/usr/bin/env node
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
// The cutover soak (issue 15): the sample platform deployed, then N cycles of a warm `opskit rollback`
// and an `opskit cutover` to a fresh container of the other image, all under one 50-connection load
// through nginx. Prints requests, non-2xx, errors (by code), timeouts, dropped, and the switch time
// p50/p99; exit 1 when any request failed. `npm run soak` builds opskit first.
// With `--engine swarm` (issue 19) the platform runs on the project's Swarm lab (brought up when it is
// not, and down again after only then): each cutover replaces the idle colour's service with the other
// image, and the load goes through the edge nginx's host-mode port on the manager.
//
//   npm run soak [-- --cycles 100] [--connections 50] [--engine compose|swarm] [--json]
//
// Traffic goes only to the nginx container's own address on this machine's Docker bridge, or to the
// lab's manager address (a network namespace the lab made on this machine).
import { execa } from 'execa';
import { exampleEnv, freePort, serviceAddress } from './lib.mjs';

const repo = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(repo, 'bin', 'opskit');
const { failures, startBackgroundLoad } = await import(path.join(repo, 'dist', 'adapters', 'background-load.js'));

const flag = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const cycles = Number(flag('cycles', '100'));
const connections = Number(flag('connections', '50'));
const json = process.argv.includes('--json');
const engine = flag('engine', 'compose');
if (engine !== 'compose' && engine !== 'swarm') {
  process.stderr.write(`--engine ${engine}: expected compose or swarm\n`);
  process.exit(2);
}
if (!Number.isInteger(cycles) || cycles < 1) {
  process.stderr.write(`--cycles ${flag('cycles')}: expected a whole number of cycles, at least 1\n`);
  process.exit(2);
}
if (!Number.isInteger(connections) || connections < 1 || connections > 1000) {
  process.stderr.write(`--connections ${flag('connections')}: expected a whole number from 1 to 1000\n`);
  process.exit(2);
}
const say = (line) => process.stderr.write(`[soak] ${line}\n`);

const percentile = (xs, p) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

const dir = mkdtempSync(path.join(os.tmpdir(), 'opskit-soak-'));
const project = path
  .basename(dir)
  .toLowerCase()
  .replace(/[^a-z0-9_-]+/g, '-');
let env = {};
let load;
/** engine: swarm: the lab's env (its manager, nodes, registry), and whether this run brought it up. */
let lab;
const labScript = path.join(repo, 'scripts', 'lab.mjs');

async function opskit(args) {
  const r = await execa(process.execPath, [bin, ...(lab ? [] : ['-e', 'offline']), '--json', ...args], {
    cwd: dir,
    env,
    reject: false,
    stdin: 'ignore',
  });
  if (r.exitCode !== 0)
    throw new Error(`opskit ${args.join(' ')} exited ${r.exitCode}:\n${r.stderr.split('\n').slice(-15).join('\n')}`);
  return JSON.parse(r.stdout);
}

async function cleanup() {
  await load?.stop().catch(() => undefined);
  if (lab) {
    const docker = (args) => execa('docker', ['-H', lab.env.DOCKER_HOST, ...args], { reject: false });
    const ids = (await docker(['service', 'ls', '-q', '--filter', `label=opskit.project=${project}`])).stdout
      .split('\n')
      .filter(Boolean);
    if (ids.length) await docker(['service', 'rm', ...ids]);
    if (lab.startedHere) await execa(process.execPath, [labScript, 'down'], { reject: false });
    rmSync(dir, { recursive: true, force: true });
    return;
  }
  const ours = (
    await execa('docker', ['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`], { reject: false })
  ).stdout
    .split('\n')
    .filter(Boolean);
  if (ours.length) await execa('docker', ['rm', '-f', ...ours], { reject: false });
  for (const kind of ['network', 'volume']) {
    const ids = (
      await execa('docker', [kind, 'ls', '-q', '--filter', `label=com.docker.compose.project=${project}`], {
        reject: false,
      })
    ).stdout
      .split('\n')
      .filter(Boolean);
    if (ids.length) await execa('docker', [kind, 'rm', ...ids], { reject: false });
  }
  const images = (
    await execa('docker', ['images', '-q', '--filter', `label=org.opskit.project=${project}`], { reject: false })
  ).stdout
    .split('\n')
    .filter(Boolean);
  if (images.length) await execa('docker', ['rmi', '-f', ...new Set(images)], { reject: false });
  rmSync(dir, { recursive: true, force: true });
}

/** The platform's directory and env, and the address its front answers on. */
async function platform() {
  if (engine === 'compose') {
    await execa(process.execPath, [bin, 'init', '--example', dir, '--quiet']);
    env = { ...exampleEnv(dir), NGINX_PORT: String(await freePort()), COMPOSE_PROJECT_NAME: project };
    return async () => `http://${await serviceAddress(project, 'nginx')}:80/health`;
  }
  const labEnvFile = path.join(repo, '.lab', 'env.json');
  const startedHere = !existsSync(labEnvFile);
  say(startedHere ? 'bringing the Swarm lab up (npm run lab -- up)' : 'on the Swarm lab that is up');
  const up = await execa(process.execPath, [labScript, 'up'], { reject: false, all: true });
  if (up.exitCode !== 0) throw new Error(`npm run lab -- up failed:\n${up.all}`);
  lab = { startedHere, env: JSON.parse(readFileSync(labEnvFile, 'utf8')) };
  env = { ...process.env, ...lab.env };
  await execa(process.execPath, [bin, 'init', '--example', dir, '--engine', 'swarm', '--quiet'], { env });
  return async () => `http://${lab.env.OPSKIT_LAB_NODES.split(' ')[0]}:8080/health`;
}

async function main() {
  const frontUrl = await platform();
  say(`the sample platform in ${dir} (engine: ${engine}): build and deploy`);
  const v1 = (await opskit(['deploy', '--build', '--quiet'])).image;
  appendFileSync(path.join(dir, 'app.py'), '\n# soak: version 2\n');
  const v2 = (await opskit(['build', '--quiet'])).tags[0];
  // On Swarm a cutover replaces the idle colour's service in place: a third version makes every cutover
  // replace its tasks (the same image again would change nothing there).
  let v3;
  if (engine === 'swarm') {
    appendFileSync(path.join(dir, 'app.py'), '\n# soak: version 3\n');
    v3 = (await opskit(['build', '--quiet'])).tags[0];
  }
  const front = await frontUrl();
  const cut = await opskit(['cutover', '--image', v2, '--quiet']);
  say(
    `blue-green from ${cut.from} to ${cut.to}; ${cycles} cycles of rollback + cutover under ${connections} connections on ${front}`,
  );

  const rollbackMs = [];
  const cutoverMs = [];
  // Bounded like every request loop here: at most 40 s a cycle, however long the cycles take.
  load = await startBackgroundLoad(front, { connections, maxSeconds: 60 + cycles * 40 });
  const started = performance.now();
  for (let i = 1; i <= cycles; i++) {
    const back = await opskit(['rollback', '--quiet']);
    if (back.restarted) throw new Error(`cycle ${i}: the rollback restarted ${back.to}: it was not warm`);
    rollbackMs.push(back.switchMs);
    const live = (await (await fetch(front)).json()).version;
    const next = v3 ? (i % 2 ? v3 : v2) : live === v1.slice(v1.lastIndexOf(':') + 1) ? v2 : v1;
    const forward = await opskit(['cutover', '--image', next, '--quiet']);
    cutoverMs.push(forward.switchMs);
    if (i % 10 === 0 || i === cycles)
      say(`cycle ${i}/${cycles}: rollback switch ${back.switchMs} ms, cutover switch ${forward.switchMs} ms`);
  }
  const result = await load.stop();
  load = undefined;
  const all = [...rollbackMs, ...cutoverMs];
  const report = {
    engine,
    cycles,
    switches: all.length,
    connections,
    durationS: Math.round((performance.now() - started) / 100) / 10,
    requests: result.requests,
    rps: result.rps,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    dropped: result.dropped,
    errorsByCode: result.errorsByCode,
    statusCodes: result.statusCodes,
    latencyMs: result.latencyMs,
    switchMs: { p50: percentile(all, 50), p99: percentile(all, 99), max: Math.max(...all) },
    rollbackSwitchMs: { p50: percentile(rollbackMs, 50), p99: percentile(rollbackMs, 99) },
    cutoverSwitchMs: { p50: percentile(cutoverMs, 50), p99: percentile(cutoverMs, 99) },
  };
  const failed = Object.values(failures(result)).some((v) => typeof v === 'number' && v > 0);
  if (json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else {
    process.stdout.write(
      [
        `soak (engine: ${engine}): ${cycles} cycles (${all.length} switches) under ${connections} connections through nginx, ${report.durationS} s`,
        `  requests  ${report.requests} answered (${report.rps} req/s); latency p50 ${report.latencyMs.p50} ms, p99 ${report.latencyMs.p99} ms, max ${report.latencyMs.max} ms`,
        `  failed    ${report.non2xx} non-2xx, ${report.errors} errors, ${report.timeouts} timeouts, ${report.dropped} dropped${
          report.errors
            ? ` (${Object.entries(report.errorsByCode)
                .map(([c, n]) => `${c} ${n}`)
                .join(', ')})`
            : ''
        }`,
        `  switch    p50 ${report.switchMs.p50} ms, p99 ${report.switchMs.p99} ms, max ${report.switchMs.max} ms (rollback p50 ${report.rollbackSwitchMs.p50} ms, cutover p50 ${report.cutoverSwitchMs.p50} ms)`,
        failed ? 'FAILED: requests failed during the switches' : 'ok: 0 failed requests of any kind',
        '',
      ].join('\n'),
    );
  }
  return failed ? 1 : 0;
}

// Ctrl-C: stop the load and take the platform down before leaving.
process.once('SIGINT', () => {
  say('interrupted: cleaning up');
  void cleanup().finally(() => process.exit(130));
});

let code = 1;
try {
  code = await main();
} catch (error) {
  process.stderr.write(`[soak] ${error.message}\n`);
} finally {
  await cleanup();
}
process.exit(code);
