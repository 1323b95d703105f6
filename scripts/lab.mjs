#!/usr/bin/env node
// The project's 3-node Docker Swarm lab on one host (see docs/lab.md): a bridge, three network namespaces, a dockerd
// in each (node 1 manager, nodes 2 and 3 workers), a registry on the bridge address seeded with the test images.
//
//   npm run lab -- up | down | kill-node N | kill-engine N | start-node N | status [--json] | env
//
// Learnt from the hand-built lab in shared/reference/swarm-lab (FINDINGS.md): no IPVS on this kernel, so services
// use endpoint_mode dnsrr and host-mode ports; nsenter --net, not `ip netns exec` (that remounts /sys); each dockerd
// starts its own containerd only when /run/containerd/containerd.sock does not exist. Runs as root. Ends only the
// processes the lab started: by their pid files, or because they are inside a lab netns or a lab cgroup.
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execa } from 'execa';

const repo = fileURLToPath(new URL('..', import.meta.url));
const NODE_COUNT = 3;
const REGISTRY_PORT = 5000;
const HOST_ENGINE = 'unix:///var/run/docker.sock';
const ENGINE_26 = '/usr/local/lib/opskit-test/engine-26/dockerd';
const DEBIAN_DOCKERD = '/usr/sbin/dockerd';
/** The images scripts/test-env.sh builds on the host Engine; the lab's registry serves them under its address. */
export const SEED_IMAGES = [
  'opskit-test/python:3.11',
  'opskit-test/postgres:15',
  'opskit-test/redis:7',
  'opskit-test/nginx:1',
  'opskit-test/busybox:latest',
];
/** What the sample platform's placement constraints use: data services on node 2, nginx on node 1 (the edge). */
export const NODE_LABELS = { 1: { 'opskit.edge': 'true' }, 2: { 'opskit.data': 'true' } };
/** Everything the lab makes is named from these, apart from the reference lab's (br-sw, swn<i>, /run/sw<i>). */
export const NAMES = {
  bridge: 'okl-br',
  netns: (i) => `okl${i}`,
  veth: (i) => `okl-v${i}`,
  hostname: (i) => `opskit-lab-n${i}`,
  cgroup: (i) => `opskit-lab-n${i}`,
  runDir: '/run/opskit-lab',
  varDir: '/var/lib/opskit-lab',
  comment: 'opskit-lab',
};
const STATE_FILE = `${NAMES.runDir}/lab.json`;
const NETNS_DIR = '/var/run/netns';
const envDir = path.join(repo, '.lab');

// ---- output and errors ------------------------------------------------------------------------------------------

const log = (message) => process.stderr.write(`[lab] ${message}\n`);
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;
/** Milliseconds on the monotonic clock: durations and deadlines must not jump when this VM's wall clock is stepped. */
const now = () => performance.now();

/** A failure with its exit code (1 failed, 2 usage or missing prerequisite) and what to do about it. */
export class LabError extends Error {
  constructor(message, { exitCode = 1, hint } = {}) {
    super(message);
    this.exitCode = exitCode;
    this.hint = hint;
  }
}
const usageError = (message, hint) => new LabError(message, { exitCode: 2, hint });

const USAGE = `usage: npm run lab -- <command>
  up              make the 3-node swarm, the registry and .lab/env (idempotent; cleans a crashed lab first)
  down            remove everything the lab made; prints "clean" or what is left (exit 1)
  kill-node N     power node N off: SIGKILL its dockerd, containerd and containers, its link down [--wait]
  kill-engine N   SIGKILL node N's Docker Engine alone (dockerd and its containerd): its containers run on
  start-node N    power node N on again (or its Engine); waits until the manager sees it Ready
  status [--json] the nodes and whether each dockerd answers (exit 1 when not all do)
  env             print .lab/env
environment: OPSKIT_LAB_SUBNET (a /24, default 10.231.0.0/24), OPSKIT_LAB_POOL (overlay pool, default derived)`;

// ---- pure builders: configuration, layout, argv, files -------------------------------------------------------------

const ipToInt = (ip) => ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
/** [first, last] address of a CIDR as integers. */
export function cidrRange(cidr) {
  const [ip, bits] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  const first = Math.floor(ipToInt(ip) / size) * size;
  return [first, first + size - 1];
}
export const cidrsOverlap = (a, b) => {
  const [a0, a1] = cidrRange(a);
  const [b0, b1] = cidrRange(b);
  return a0 <= b1 && b0 <= a1;
};
/** Inside 10/8, 172.16/12 or 192.168/16. */
const isPrivate = (cidr) =>
  ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'].some((p) => {
    const [p0, p1] = cidrRange(p);
    const [c0, c1] = cidrRange(cidr);
    return p0 <= c0 && c1 <= p1;
  });

/** The /24 the lab lives in, as its first three octets; only private ranges, since its traffic must stay local. */
export function parseSubnet(subnet) {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.0\/24$/.exec(subnet);
  if (!m || m.slice(1).some((o) => Number(o) > 255))
    throw usageError(`OPSKIT_LAB_SUBNET=${subnet}: expected a /24 such as 10.231.0.0/24`);
  if (!isPrivate(subnet))
    throw usageError(`OPSKIT_LAB_SUBNET=${subnet}: not a private range (10/8, 172.16/12, 192.168/16)`);
  return m.slice(1, 4).join('.');
}

/**
 * The overlay address pool: private and clear of the lab's /24. In 10/8 the next /16 (10.231.0.0/24 -> 10.232.0.0/16),
 * elsewhere the half of the subnet's own /16 that does not hold it.
 */
export function derivePool(subnet) {
  const [a, b, c] = parseSubnet(subnet).split('.').map(Number);
  if (a === 10) return `10.${(b + 1) % 256}.0.0/16`;
  return `${a}.${b}.${c < 128 ? 128 : 0}.0/17`;
}

export function resolveConfig(env = process.env, dockerd = pickDockerd()) {
  const subnet = env.OPSKIT_LAB_SUBNET || '10.231.0.0/24';
  parseSubnet(subnet);
  const pool = env.OPSKIT_LAB_POOL || derivePool(subnet);
  if (!/^\d{1,3}(\.\d{1,3}){3}\/(8|9|1\d|2[0-4])$/.test(pool))
    throw usageError(`OPSKIT_LAB_POOL=${pool}: expected a CIDR with a prefix of at most /24, such as 10.232.0.0/16`);
  if (!isPrivate(pool)) throw usageError(`OPSKIT_LAB_POOL=${pool}: not inside a private range`);
  if (cidrsOverlap(pool, subnet)) throw usageError(`OPSKIT_LAB_POOL=${pool} overlaps the lab's subnet ${subnet}`);
  return { subnet, pool, dockerd };
}

/** Node i's addresses, names and paths; `prefix` is the first three octets of the lab's /24. */
export function nodeLayout(prefix, i) {
  const run = `${NAMES.runDir}/n${i}`;
  const data = `${NAMES.varDir}/n${i}`;
  return {
    index: i,
    netns: NAMES.netns(i),
    veth: NAMES.veth(i),
    hostname: NAMES.hostname(i),
    address: `${prefix}.1${i}`,
    run,
    data,
    exec: `${run}/exec`,
    socketPath: `${run}/docker.sock`,
    host: `unix://${run}/docker.sock`,
    pidFile: `${run}/docker.pid`,
    containerdPidFile: `${run}/exec/containerd/containerd.pid`,
    configFile: `${run}/daemon.json`,
    log: `${run}/dockerd.log`,
    cgroupParent: `/${NAMES.cgroup(i)}`,
    labels: NODE_LABELS[i] ?? {},
  };
}

/** Every address, name and path of the lab, from its configuration. */
export function layout({ subnet, pool, dockerd }) {
  const prefix = parseSubnet(subnet);
  const bridgeIp = `${prefix}.1`;
  return {
    subnet,
    pool,
    dockerd,
    bridge: NAMES.bridge,
    bridgeIp,
    registry: `${bridgeIp}:${REGISTRY_PORT}`,
    registryConfig: `${NAMES.runDir}/registry.yml`,
    registryPidFile: `${NAMES.runDir}/registry.pid`,
    registryLog: `${NAMES.runDir}/registry.log`,
    registryData: `${NAMES.varDir}/registry`,
    nodes: Array.from({ length: NODE_COUNT }, (_, k) => nodeLayout(prefix, k + 1)),
  };
}

/**
 * A node's own daemon.json: never the host's /etc/docker/daemon.json. Engine 20.10 (the fallback) keeps its engine ID
 * in a key file, /etc/docker/key.json unless told otherwise, which would give all nodes one ID; 23+ writes an
 * engine-id file in the data root (checked with 26.1: three distinct IDs without the key), so it gets no key path.
 * iptables stays on (the default): with it off, overlay, dnsrr and host-mode ports still work, but containers lose
 * the masquerade they need to reach another node's address or the registry.
 */
export function daemonJson(node, engineMajor) {
  const config = { 'storage-driver': 'overlay2' };
  if (engineMajor < 23) config['deprecated-key-path'] = `${node.data}/key.json`;
  return `${JSON.stringify(config, null, 2)}\n`;
}

/**
 * How a node's dockerd starts: in its netns (nsenter --net, so /sys and the cgroup mounts stay the host's), in a UTS
 * namespace of its own whose hostname becomes the swarm node's name. The hostname and the dockerd argv are positional
 * arguments of the fixed `sh -c` script, never interpolated into it.
 */
export function dockerdArgv(node, lab) {
  return [
    'nsenter',
    [
      `--net=${NETNS_DIR}/${node.netns}`,
      '--',
      'unshare',
      '--uts',
      '--',
      'sh',
      '-c',
      'hostname "$0" && exec "$@"',
      node.hostname,
      lab.dockerd,
      '--config-file',
      node.configFile,
      '--host',
      node.host,
      '--data-root',
      node.data,
      '--exec-root',
      node.exec,
      '--pidfile',
      node.pidFile,
      '--cgroup-parent',
      node.cgroupParent,
      '--insecure-registry',
      lab.registry,
    ],
  ];
}

export const registryYaml = (lab) => `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${lab.registryData}
  delete:
    enabled: true
http:
  addr: ${lab.registry}
`;

/** What .lab/env exports (and .lab/env.json holds) for the tests and for a shell. */
export function labEnv(lab) {
  return {
    DOCKER_HOST: lab.nodes[0].host,
    OPSKIT_LAB_NODES: lab.nodes.map((n) => n.address).join(' '),
    OPSKIT_LAB_REGISTRY: lab.registry,
    OPSKIT_LAB_SOCKETS: lab.nodes.map((n) => n.host).join(' '),
    OPSKIT_LAB_SUBNET: lab.subnet,
  };
}
export const renderEnvFile = (env) =>
  `# written by scripts/lab.mjs up; source it to talk to the lab's manager\n${Object.entries(env)
    .map(([k, v]) => `export ${k}="${v}"\n`)
    .join('')}`;

/** The seed images in groups that share a layer, so that one `docker save` stream sends a shared layer once. */
export function groupBySharedLayers(images) {
  const groups = [];
  for (const image of images) {
    const joined = groups.filter((g) => g.layers.some((l) => image.layers.includes(l)));
    const merged = { refs: [image.ref], layers: [...image.layers] };
    for (const g of joined) {
      merged.refs.unshift(...g.refs);
      merged.layers.push(...g.layers);
      groups.splice(groups.indexOf(g), 1);
    }
    groups.push(merged);
  }
  return groups.map((g) => g.refs);
}

const splitRef = (ref) => {
  const colon = ref.lastIndexOf(':');
  return { repository: ref.slice(0, colon), tag: ref.slice(colon + 1) };
};

// ---- adapters: processes, the Engine API, the registry, /proc, /sys --------------------------------------------------

/** The environment of every child: no proxy (the lab has no way out anyway) and no DOCKER_* pointing elsewhere. */
function childEnv(extra = {}) {
  const env = { ...process.env };
  for (const key of Object.keys(env))
    if (/^(https?_proxy|all_proxy|no_proxy|DOCKER_(HOST|CONTEXT|TLS_VERIFY|CERT_PATH)|NOTIFY_SOCKET)$/i.test(key))
      delete env[key];
  return { ...env, ...extra };
}

/** One process, argv only, bounded in time; failures become LabErrors naming the command and its stderr. */
async function run(file, args, { timeout = 60_000, ...options } = {}) {
  try {
    return await execa(file, args, { stdin: 'ignore', timeout, env: childEnv(), extendEnv: false, ...options });
  } catch (error) {
    const detail = (error.stderr || error.shortMessage || error.message || '').toString().trim();
    throw new LabError(`${file} ${args.join(' ')}: ${detail.split('\n').slice(-3).join(' / ')}`);
  }
}
const tryRun = (file, args, options = {}) =>
  execa(file, args, { stdin: 'ignore', timeout: 30_000, reject: false, env: childEnv(), extendEnv: false, ...options });
const ip = (...args) => run('ip', args, { timeout: 15_000 });
const tryIp = (...args) => tryRun('ip', args, { timeout: 15_000 });
const docker = (host, args, options) => run('docker', ['-H', host, ...args], options);

/** A GET on an Engine API over its unix socket: { status, body } with the body parsed as JSON. */
function engineRequest(socketPath, urlPath, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: urlPath, headers: { Host: 'docker' }, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        text += chunk;
      });
      res.on('end', () => {
        let body = text;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {}
        resolve({ status: res.statusCode, body });
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${urlPath}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}
/** The body of a 200 answer, else undefined (no answer, an error status). */
const engineGet = (socketPath, urlPath, timeoutMs) =>
  engineRequest(socketPath, urlPath, timeoutMs).then(
    (r) => (r.status === 200 ? r.body : undefined),
    () => undefined,
  );
const answers = (socketPath, timeoutMs = 1500) =>
  engineRequest(socketPath, '/_ping', timeoutMs).then(
    (r) => r.status === 200,
    () => false,
  );

/** GET on the lab's registry (on the bridge address: never a proxy, Node's fetch reads no proxy variables). */
async function registryGet(lab, urlPath, timeoutMs = 3000) {
  try {
    const res = await fetch(`http://${lab.registry}${urlPath}`, { signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, body: res.ok ? await res.json() : undefined };
  } catch {
    return { status: 0 };
  }
}

const asyncFilter = async (items, predicate) => {
  const keep = await Promise.all(items.map(predicate));
  return items.filter((_, k) => keep[k]);
};
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns something truthy: bounded in time and in attempts, backing off up to 1 s. */
async function waitFor(what, probe, { timeoutMs = 30_000, intervalMs = 100 } = {}) {
  const deadline = now() + timeoutMs;
  const maxAttempts = Math.ceil(timeoutMs / intervalMs) + 1;
  let delay = intervalMs;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const value = await probe();
    if (value) return value;
    const left = deadline - now();
    if (left <= 0) break;
    await sleep(Math.min(delay, left));
    delay = Math.min(delay * 1.5, 1000);
  }
  throw new LabError(`timed out after ${seconds(timeoutMs)} waiting for ${what}`);
}

/** A process that exists and is not a zombie; with `comm`, only if it is that program. */
function isAlive(pid, comm) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false;
    return !comm || readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === comm;
  } catch {
    return false;
  }
}
/** The pid in a pid file when that process is alive and is `comm` (a stale file's pid may be anyone's by now). */
function livePid(file, comm) {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return pid > 1 && isAlive(pid, comm) ? pid : undefined;
  } catch {
    return undefined;
  }
}
const procComm = (pid) => {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
};
function signal(pid, sig) {
  try {
    process.kill(pid, sig);
  } catch {}
}

/** TERM every pid at once, wait for all (bounded), KILL what is left and wait again. */
async function stopPids(pids, { graceMs = 30_000, what = 'processes' } = {}) {
  const alive = () => pids.filter((p) => isAlive(p));
  if (alive().length === 0) return;
  for (const p of alive()) signal(p, 'SIGTERM');
  try {
    await waitFor(what, () => alive().length === 0, { timeoutMs: graceMs, intervalMs: 100 });
    return;
  } catch {}
  for (const p of alive()) {
    log(`${what}: pid ${p} (${procComm(p)}) still alive after ${seconds(graceMs)}, KILL`);
    signal(p, 'SIGKILL');
  }
  await waitFor(`${what} after KILL`, () => alive().length === 0, { timeoutMs: 10_000 }).catch(() => {});
}

async function killPids(pids, what) {
  for (const p of pids) signal(p, 'SIGKILL');
  await waitFor(what, () => pids.every((p) => !isAlive(p)), { timeoutMs: 10_000, intervalMs: 50 });
}

/** Processes in a lab netns (dockerd, containerd, shims, docker-proxy): they are the lab's by construction. */
async function netnsPids(netns) {
  if (!existsSync(`${NETNS_DIR}/${netns}`)) return [];
  const r = await tryIp('netns', 'pids', netns);
  return r.exitCode === 0 ? r.stdout.split('\n').filter(Boolean).map(Number) : [];
}

/** The cgroup trees where /opskit-lab-n<i> may live: each v1 hierarchy, or the v2 root. */
function cgroupRoots() {
  const base = '/sys/fs/cgroup';
  if (existsSync(`${base}/cgroup.controllers`)) return [base];
  try {
    return readdirSync(base, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => `${base}/${d.name}`);
  } catch {
    return [];
  }
}
/** A directory and all below it, deepest first (the order rmdir needs). */
function dirsDeepestFirst(dir) {
  let below = [];
  try {
    for (const d of readdirSync(dir, { withFileTypes: true }))
      if (d.isDirectory()) below = below.concat(dirsDeepestFirst(`${dir}/${d.name}`));
  } catch {
    return [];
  }
  return [...below, dir];
}
const labCgroups = (i) => cgroupRoots().flatMap((root) => dirsDeepestFirst(`${root}/${NAMES.cgroup(i)}`));
/** Processes in node i's cgroups: its containers (--cgroup-parent /opskit-lab-n<i>). */
function cgroupPids(i) {
  const pids = new Set();
  for (const dir of labCgroups(i)) {
    try {
      for (const line of readFileSync(`${dir}/cgroup.procs`, 'utf8').split('\n')) if (line) pids.add(Number(line));
    } catch {}
  }
  return [...pids].filter((p) => isAlive(p));
}
/** Everything that makes up node i while it runs: dockerd, its containerd, the shims, docker-proxy, the containers. */
async function nodePids(node) {
  const pids = new Set([...(await netnsPids(node.netns)), ...cgroupPids(node.index)]);
  for (const [file, comm] of [
    [node.pidFile, 'dockerd'],
    [node.containerdPidFile, 'containerd'],
  ]) {
    const pid = livePid(file, comm);
    if (pid) pids.add(pid);
  }
  pids.delete(process.pid);
  return [...pids].filter((p) => isAlive(p));
}

const labDirs = () => [NAMES.runDir, NAMES.varDir];
const underLabDirs = (p) => labDirs().some((d) => p === d || p.startsWith(`${d}/`));
/** Mount points under the lab's directories (container rootfs, shm, the netns files of dockerd's sandboxes). */
function labMounts() {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1])
    .filter(Boolean)
    .map((m) => m.replace(/\\(\d{3})/g, (_, oct) => String.fromCharCode(Number.parseInt(oct, 8))))
    .filter(underLabDirs);
}
/** Lab programs still running anywhere (a process that left a netns we deleted is only found this way). */
function labProcessesByCommandLine() {
  const programs = new Set(['dockerd', 'containerd', 'containerd-shim', 'docker-proxy', 'docker-registry', 'runc']);
  const found = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || !programs.has(procComm(entry))) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv.some((a) => labDirs().some((d) => a.includes(`${d}/`))) && isAlive(Number(entry)))
        found.push(Number(entry));
    } catch {}
  }
  return found;
}

function readState() {
  try {
    return JSON.parse(readFileSync(STATE_FILE, 'utf8'));
  } catch {
    return undefined;
  }
}

function pickDockerd() {
  if (existsSync(ENGINE_26)) return ENGINE_26;
  if (existsSync(DEBIAN_DOCKERD)) return DEBIAN_DOCKERD;
  return undefined;
}

/** The lab as it was made (its state file), else as the environment would make it: down must find the old one. */
function currentLab() {
  const state = readState();
  return layout(state ? state.config : resolveConfig());
}

function requireRoot() {
  if (process.getuid?.() !== 0) throw usageError('the lab needs root (network namespaces, bridges, dockerd)');
}

const onPath = (bin) =>
  (process.env.PATH ?? '')
    .split(':')
    .filter(Boolean)
    .some((dir) => {
      try {
        return statSync(path.join(dir, bin)).mode & 0o111;
      } catch {
        return false;
      }
    });

// ---- up ------------------------------------------------------------------------------------------------------------

/** Runs one phase of a command, logging and keeping how long it took. */
async function phase(timings, name, action) {
  const started = now();
  const result = await action();
  timings.push([name, now() - started]);
  log(`${name}: ${seconds(now() - started)}`);
  return result;
}

/** Programs the lab runs, by the Debian package that brings them. dockerd itself comes from scripts/test-env.sh. */
const PACKAGES = { 'docker-registry': 'docker-registry', iptables: 'iptables', containerd: 'containerd', runc: 'runc' };

async function ensurePackages() {
  const missing = [...new Set(Object.entries(PACKAGES).flatMap(([bin, pkg]) => (onPath(bin) ? [] : [pkg])))];
  if (missing.length === 0) return;
  log(`installing ${missing.join(' ')} (apt-get)`);
  // Their postinst would start the system services (a system containerd would even stop the lab from working):
  // block that with a policy-rc.d, unless the machine already has one.
  const policy = '/usr/sbin/policy-rc.d';
  const madePolicy = !existsSync(policy);
  if (madePolicy) writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    const install = () =>
      tryRun('apt-get', ['install', '-y', '-q', ...missing], {
        env: childEnv({ DEBIAN_FRONTEND: 'noninteractive' }),
        timeout: 600_000,
        stdout: 2,
        stderr: 2,
      });
    if ((await install()).exitCode !== 0) {
      await tryRun('apt-get', ['update', '-q'], { timeout: 300_000, stdout: 2, stderr: 2 });
      if ((await install()).exitCode !== 0) throw usageError(`apt-get install ${missing.join(' ')} failed`);
    }
  } finally {
    if (madePolicy) rmSync(policy, { force: true });
  }
}

/** Everything up needs before it touches anything; a missing piece is exit 2 with what to do. */
async function preflight(lab, running) {
  if (!lab.dockerd)
    throw usageError(`no dockerd: neither ${ENGINE_26} nor ${DEBIAN_DOCKERD}`, 'run `bash scripts/test-env.sh`');
  if (!onPath('docker')) throw usageError('no docker CLI on PATH', 'run `bash scripts/test-env.sh`');
  await ensurePackages();
  // dockerd starts its own containerd (state under --exec-root) only when this socket is absent; with a system
  // containerd, all three nodes would share its "moby" namespace and trip over each other.
  if (existsSync('/run/containerd/containerd.sock'))
    throw usageError('a system containerd is running (/run/containerd/containerd.sock): the nodes would share it');
  // A lab being made needs the host's images, so check them before making anything; a running one only if it
  // lacks one (seedImages), so that `up` on a running lab does not depend on the host Engine.
  return running ? undefined : await hostImages();
}

/** The seed images on the host Engine, with their layers (to group them for saving). */
async function hostImages() {
  const socketPath = HOST_ENGINE.slice('unix://'.length);
  if (!(await answers(socketPath, 5000)))
    throw usageError(`the host Engine (${HOST_ENGINE}) does not answer`, 'run `bash scripts/test-env.sh`');
  const images = [];
  for (const ref of SEED_IMAGES) {
    const inspected = await engineGet(socketPath, `/images/${ref}/json`, 10_000);
    if (!inspected)
      throw usageError(
        `the host Engine has no image ${ref}`,
        'run `bash scripts/test-env.sh` (it builds the test images)',
      );
    images.push({ ref, id: inspected.Id, layers: inspected.RootFS?.Layers ?? [] });
  }
  return images;
}

/** Refuses a subnet that some other interface or route of the host already uses (the reference lab's, say). */
async function checkSubnetFree(lab) {
  const ours = (dev) => dev === lab.bridge || /^okl-v\d+$/.test(dev);
  const addrs = JSON.parse((await ip('-j', '-4', 'addr', 'show')).stdout || '[]');
  for (const link of addrs)
    for (const a of link.addr_info ?? [])
      if (!ours(link.ifname) && cidrsOverlap(`${a.local}/${a.prefixlen}`, lab.subnet))
        throw usageError(
          `${lab.subnet} is in use on ${link.ifname} (${a.local}/${a.prefixlen})`,
          'set OPSKIT_LAB_SUBNET',
        );
  const routes = JSON.parse((await ip('-j', '-4', 'route', 'show')).stdout || '[]');
  for (const r of routes) {
    if (r.dst === 'default' || ours(r.dev)) continue;
    const dst = r.dst.includes('/') ? r.dst : `${r.dst}/32`;
    if (cidrsOverlap(dst, lab.subnet))
      throw usageError(`${lab.subnet} overlaps the route ${r.dst} on ${r.dev}`, 'set OPSKIT_LAB_SUBNET');
  }
}

/** Any trace of a lab on this host: state, directories, namespaces, links, cgroups. */
function leftoversExist() {
  return (
    [NAMES.runDir, NAMES.varDir, envDir].some((d) => existsSync(d)) ||
    existsSync(`/sys/class/net/${NAMES.bridge}`) ||
    labNetnsNames().length > 0 ||
    [1, 2, 3].some((i) => labCgroups(i).length > 0)
  );
}
function labNetnsNames() {
  try {
    return readdirSync(NETNS_DIR).filter((n) => /^okl\d+$/.test(n));
  } catch {
    return [];
  }
}

/**
 * The FORWARD rule up adds when the host's policy drops forwarded packets: frames between the nodes cross the host's
 * iptables (bridge-nf-call-iptables=1 here). Tagged with a comment so that down deletes exactly it.
 */
const forwardRuleArgs = (lab) => [
  'FORWARD',
  '-i',
  lab.bridge,
  '-o',
  lab.bridge,
  '-j',
  'ACCEPT',
  '-m',
  'comment',
  '--comment',
  NAMES.comment,
];

async function ensureNetwork(lab) {
  if (!existsSync(`/sys/class/net/${lab.bridge}`)) await ip('link', 'add', lab.bridge, 'type', 'bridge');
  const bridgeAddrs = JSON.parse((await ip('-j', '-4', 'addr', 'show', 'dev', lab.bridge)).stdout || '[]');
  if (!bridgeAddrs.some((l) => (l.addr_info ?? []).some((a) => a.local === lab.bridgeIp)))
    await ip('addr', 'add', `${lab.bridgeIp}/24`, 'dev', lab.bridge);
  await ip('link', 'set', lab.bridge, 'up');
  const forward = await tryRun('iptables', ['-S', 'FORWARD']);
  if (
    /^-P FORWARD DROP/m.test(forward.stdout ?? '') &&
    (await tryRun('iptables', ['-C', ...forwardRuleArgs(lab)])).exitCode !== 0
  )
    await run('iptables', ['-I', ...forwardRuleArgs(lab)]);
  for (const node of lab.nodes) await ensureNodeNetwork(lab, node);
}

/** Node i's netns with eth0 = <prefix>.1i/24 on the bridge, lo up, and no default route: nothing leaves the /24. */
async function ensureNodeNetwork(lab, node) {
  if (!existsSync(`${NETNS_DIR}/${node.netns}`)) await ip('netns', 'add', node.netns);
  if ((await tryIp('-n', node.netns, 'link', 'show', 'eth0')).exitCode !== 0) {
    await tryIp('link', 'del', node.veth);
    await ip('link', 'add', node.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', node.netns);
    await ip('-n', node.netns, 'addr', 'add', `${node.address}/24`, 'dev', 'eth0');
  }
  await ip('link', 'set', node.veth, 'master', lab.bridge, 'up');
  await ip('-n', node.netns, 'link', 'set', 'lo', 'up');
  await ip('-n', node.netns, 'link', 'set', 'eth0', 'up');
}

let engineMajorCache;
/** The major version of a dockerd binary ("Docker version 26.1.5+dfsg1, build ..." -> 26). */
async function engineMajor(dockerd) {
  engineMajorCache ??= run(dockerd, ['--version']).then((r) => Number(/version (\d+)\./.exec(r.stdout)?.[1] ?? 0));
  return engineMajorCache;
}

/** dockerd's environment: its own directory first on PATH, so Engine 26 finds the docker-proxy shipped beside it. */
const dockerdEnv = (lab) => childEnv({ PATH: `${path.dirname(lab.dockerd)}:${process.env.PATH}` });

/**
 * Starts a process that outlives this script (own session, not killed when we exit), its output appended to
 * `logFile`. Returns its pid and `exited()`: its execa result once it has exited, else undefined.
 */
function startDetached(file, args, logFile, env) {
  const out = openSync(logFile, 'a');
  let exit;
  try {
    const child = execa(file, args, {
      detached: true,
      cleanup: false,
      reject: false,
      stdin: 'ignore',
      stdout: out,
      stderr: out,
      env,
      extendEnv: false,
    });
    child.unref();
    child.then((r) => {
      exit = r;
    });
    return { pid: child.pid, exited: () => exit };
  } finally {
    closeSync(out);
  }
}
const tail = (file, lines = 8) => {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
};

/** Node i's dockerd answering on its socket: started unless it already runs. */
async function ensureDockerd(lab, node) {
  if (await answers(node.socketPath)) return;
  if (livePid(node.pidFile, 'dockerd')) {
    await waitFor(`dockerd of node ${node.index} (${node.log})`, () => answers(node.socketPath), { timeoutMs: 60_000 });
    return;
  }
  mkdirSync(node.run, { recursive: true });
  mkdirSync(node.data, { recursive: true });
  rmSync(node.pidFile, { force: true });
  writeFileSync(node.configFile, daemonJson(node, await engineMajor(lab.dockerd)));
  const [file, args] = dockerdArgv(node, lab);
  const child = startDetached(file, args, node.log, dockerdEnv(lab));
  await waitFor(
    `dockerd of node ${node.index} to answer (log: ${node.log})`,
    async () => {
      const exit = child.exited();
      if (exit)
        throw new LabError(
          `dockerd of node ${node.index} exited (${exit.exitCode ?? exit.signal}):\n${tail(node.log)}`,
        );
      return answers(node.socketPath, 1000);
    },
    { timeoutMs: 60_000 },
  );
}

/** Debian's docker-registry on <bridge>:5000, storage under the lab's var dir, delete enabled. */
async function ensureRegistry(lab) {
  const up = async () => (await registryGet(lab, '/v2/', 1000)).status === 200;
  if (await up()) return;
  if (!livePid(lab.registryPidFile, 'docker-registry')) {
    mkdirSync(lab.registryData, { recursive: true });
    writeFileSync(lab.registryConfig, registryYaml(lab));
    const child = startDetached('docker-registry', ['serve', lab.registryConfig], lab.registryLog, childEnv());
    writeFileSync(lab.registryPidFile, `${child.pid}\n`);
  }
  await waitFor(`the registry on ${lab.registry} (log: ${lab.registryLog})`, up, { timeoutMs: 20_000 });
}

const swarmInfo = async (node) => (await engineGet(node.socketPath, '/info', 5000))?.Swarm ?? {};

/** Node 1 inits the swarm, 2 and 3 join as workers, all Ready; then the placement labels. */
async function ensureSwarm(lab) {
  const [manager, ...workers] = lab.nodes;
  if ((await swarmInfo(manager)).LocalNodeState !== 'active')
    await docker(manager.host, [
      'swarm',
      'init',
      '--advertise-addr',
      manager.address,
      '--listen-addr',
      `${manager.address}:2377`,
      '--default-addr-pool',
      lab.pool,
      '--default-addr-pool-mask-length',
      '24',
    ]);
  const token = (await engineGet(manager.socketPath, '/swarm', 5000))?.JoinTokens?.Worker;
  if (!token) throw new LabError('the manager gave no worker join token');
  await Promise.all(
    workers.map(async (node) => {
      if ((await swarmInfo(node)).LocalNodeState === 'active') return;
      await docker(node.host, [
        'swarm',
        'join',
        '--token',
        token,
        '--advertise-addr',
        node.address,
        '--listen-addr',
        `${node.address}:2377`,
        `${manager.address}:2377`,
      ]);
    }),
  );
  await waitUntilReady(lab, lab.nodes, 60_000);
  await ensureLabels(lab);
}

/** The manager's view of the swarm's nodes, or undefined when it does not answer. */
const swarmNodes = (lab) => engineGet(lab.nodes[0].socketPath, '/nodes', 5000);

async function waitUntilReady(lab, nodes, timeoutMs) {
  const ids = await Promise.all(nodes.map(async (n) => (await swarmInfo(n)).NodeID));
  await waitFor(
    `node(s) ${nodes.map((n) => n.index).join(' ')} Ready on the manager`,
    async () => {
      const listed = await swarmNodes(lab);
      return ids.every((id) => id && listed?.some((s) => s.ID === id && s.Status?.State === 'ready'));
    },
    { timeoutMs, intervalMs: 200 },
  );
}

async function ensureLabels(lab) {
  const manager = lab.nodes[0];
  const listed = (await swarmNodes(lab)) ?? [];
  for (const node of lab.nodes) {
    const id = (await swarmInfo(node)).NodeID;
    const have = listed.find((s) => s.ID === id)?.Spec?.Labels ?? {};
    const add = Object.entries(node.labels).filter(([k, v]) => have[k] !== v);
    if (add.length === 0) continue;
    await docker(manager.host, ['node', 'update', ...add.flatMap(([k, v]) => ['--label-add', `${k}=${v}`]), id]);
  }
}

/**
 * The test images into the registry as <registry>/opskit-test/<name>:<tag>, without touching the host daemon's
 * configuration: `docker save` on the host Engine streams into `docker load` on node 1 (one stream per group of
 * images sharing layers, the groups in parallel), node 1 (which trusts the registry) tags and pushes. Images the
 * registry already has are skipped; all stay loaded on node 1, where builds on the manager find the python base.
 */
async function seedImages(lab, hostImagesKnown) {
  const n1 = lab.nodes[0];
  const regRef = (ref) => `${lab.registry}/${ref}`;
  const inRegistry = async (ref) => {
    const { repository, tag } = splitRef(ref);
    const r = await registryGet(lab, `/v2/${repository}/tags/list`);
    return (r.body?.tags ?? []).includes(tag);
  };
  const onNode1 = async (ref) => (await engineGet(n1.socketPath, `/images/${ref}/json`, 10_000))?.Id;
  let images = hostImagesKnown;
  if (!images) {
    const present = await Promise.all(SEED_IMAGES.map(async (ref) => (await inRegistry(ref)) && (await onNode1(ref))));
    if (present.every(Boolean)) {
      log('images: all in the registry and on node 1');
      return;
    }
    images = await hostImages();
  }
  const state = await Promise.all(
    images.map(async (img) => ({ ...img, pushed: await inRegistry(img.ref), loadedId: await onNode1(img.ref) })),
  );
  const toLoad = state.filter((img) => img.loadedId !== img.id);
  // A tag in the registry is taken as done, unless node 1 holds another image under that name (the host's was
  // rebuilt since): then the new one is loaded and pushed over it.
  const stale = (img) => img.loadedId !== undefined && img.loadedId !== img.id;
  const toPush = new Set(state.filter((img) => !img.pushed || stale(img)).map((img) => img.ref));
  if (toLoad.length === 0 && toPush.size === 0) {
    log('images: all in the registry and on node 1');
    return;
  }
  const pushImage = async (ref) => {
    await docker(n1.host, ['tag', ref, regRef(ref)]);
    if (!toPush.has(ref)) return;
    const started = now();
    await docker(n1.host, ['push', '-q', regRef(ref)], { timeout: 300_000 });
    log(`pushed ${regRef(ref)} (${seconds(now() - started)})`);
  };
  const loadGroup = async (refs) => {
    const started = now();
    await execa('docker', ['-H', HOST_ENGINE, 'save', ...refs], {
      stdin: 'ignore',
      buffer: { stdout: false },
      timeout: 300_000,
      env: childEnv(),
      extendEnv: false,
    }).pipe('docker', ['-H', n1.host, 'load', '-q'], { timeout: 300_000, env: childEnv(), extendEnv: false });
    log(`loaded ${refs.join(' ')} on node 1 (${seconds(now() - started)})`);
    // One after another within a group: dockerd dedupes concurrent uploads per repository only, so two pushes at
    // once would both gzip the shared layer; the second push mounts the blob the first one uploaded.
    for (const ref of refs) await pushImage(ref);
  };
  const loaded = new Set(toLoad.map((img) => img.ref));
  await Promise.all([
    ...groupBySharedLayers(toLoad).map(loadGroup),
    ...state.filter((img) => !loaded.has(img.ref)).map((img) => pushImage(img.ref)),
  ]);
  const missing = [];
  for (const img of images) if (!(await inRegistry(img.ref))) missing.push(img.ref);
  if (missing.length) throw new LabError(`the registry still lacks ${missing.join(' ')}`);
}

/** .lab/env (shell) and .lab/env.json (tests), rewritten only when they change. */
function writeEnv(lab) {
  const env = labEnv(lab);
  mkdirSync(envDir, { recursive: true });
  const files = [
    [path.join(envDir, 'env'), renderEnvFile(env)],
    [path.join(envDir, 'env.json'), `${JSON.stringify(env, null, 2)}\n`],
  ];
  for (const [file, text] of files) {
    if (existsSync(file) && readFileSync(file, 'utf8') === text) continue;
    writeFileSync(file, text, { mode: 0o644 });
  }
}

async function up() {
  const started = now();
  const timings = [];
  requireRoot();
  const wanted = resolveConfig();
  const lab = layout(wanted);
  const state = readState();
  const previous = state ? layout(state.config) : lab;
  // A lab with any dockerd alive is repaired in place (a node killed with kill-node is started again); one with
  // none alive but with leftovers crashed (or its host rebooted without /run wiped) and is removed first.
  const running = previous.nodes.some((n) => livePid(n.pidFile, 'dockerd'));
  if (running && state && JSON.stringify(state.config) !== JSON.stringify(wanted))
    throw usageError(
      `the lab is up with ${JSON.stringify(state.config)}, not ${JSON.stringify(wanted)}`,
      'run `npm run lab -- down` first',
    );
  const images = await phase(timings, 'preflight', () => preflight(lab, running));
  if (!running && leftoversExist()) {
    log('leftovers of a lab whose dockerds are all gone (a crash?): removing them first');
    const left = await phase(timings, 'cleanup', () => teardown(previous, [], state));
    if (left.length) throw new LabError(`could not clean the leftovers:\n  ${left.join('\n  ')}`);
  }
  await checkSubnetFree(lab);
  await phase(timings, 'network', async () => {
    // /var/run/netns is ip's own mount, made on its first `netns add`; down removes it only if the lab made it.
    const netnsDirExisted = state?.netnsDirExisted ?? existsSync(NETNS_DIR);
    await ensureNetwork(lab);
    mkdirSync(NAMES.runDir, { recursive: true });
    const stateText = `${JSON.stringify({ config: wanted, netnsDirExisted }, null, 2)}\n`;
    if (!existsSync(STATE_FILE) || readFileSync(STATE_FILE, 'utf8') !== stateText) writeFileSync(STATE_FILE, stateText);
  });
  await phase(timings, 'daemons', () =>
    Promise.all([ensureRegistry(lab), ...lab.nodes.map((node) => ensureDockerd(lab, node))]),
  );
  // The swarm forms while node 1 loads and pushes the images: both only need the daemons.
  await Promise.all([
    phase(timings, 'swarm', () => ensureSwarm(lab)),
    phase(timings, 'images', () => seedImages(lab, images)),
  ]);
  writeEnv(lab);
  const summary = timings.map(([name, ms]) => `${name} ${seconds(ms)}`).join(', ');
  log(`up in ${seconds(now() - started)} (${summary}); source .lab/env, then: docker node ls`);
  return 0;
}

// ---- down ----------------------------------------------------------------------------------------------------------

/** Node indices with any trace on the host (the lab's three, and any other a crashed variant may have left). */
function nodeIndices(lab) {
  const found = new Set(lab.nodes.map((n) => n.index));
  for (const name of labNetnsNames()) found.add(Number(name.slice(3)));
  for (const dir of labDirs())
    try {
      for (const entry of readdirSync(dir)) if (/^n\d+$/.test(entry)) found.add(Number(entry.slice(1)));
    } catch {}
  return [...found].sort((a, b) => a - b);
}
/** Node i's layout, also for an index beyond the configured three (left by a lab made with more). */
const nodeOf = (lab, i) => lab.nodes.find((n) => n.index === i) ?? nodeLayout(parseSubnet(lab.subnet), i);

/** Workers leave first, the manager last (--force): the daemons then stop their tasks as a node leaving does. */
async function leaveSwarm(nodes) {
  const leave = async (node) => {
    if (!(await answers(node.socketPath))) return;
    if ((await swarmInfo(node)).LocalNodeState !== 'active') return;
    const r = await tryRun('docker', ['-H', node.host, 'swarm', 'leave', '--force']);
    if (r.exitCode !== 0) log(`node ${node.index}: swarm leave failed: ${(r.stderr || r.shortMessage).trim()}`);
  };
  await Promise.all(nodes.filter((n) => n.index !== 1).map(leave));
  await Promise.all(nodes.filter((n) => n.index === 1).map(leave));
}

/** The shim sockets containerd put in the host's /run/containerd/s for this node's containers. */
function shimSockets(node) {
  const bundles = `${node.exec}/containerd/daemon/io.containerd.runtime.v2.task`;
  const sockets = [];
  try {
    for (const ns of readdirSync(bundles))
      for (const id of readdirSync(`${bundles}/${ns}`)) {
        try {
          const address = readFileSync(`${bundles}/${ns}/${id}/address`, 'utf8').trim();
          if (address.startsWith('unix:///run/containerd/s/')) sockets.push(address.slice('unix://'.length));
        } catch {}
      }
  } catch {}
  return sockets;
}

/**
 * Takes the lab down, whatever state it is in, and returns what is left (empty = clean). Each step tolerates the
 * previous ones having failed, so that a half-made or crashed lab goes too.
 */
async function teardown(lab, timings, state) {
  const nodes = nodeIndices(lab).map((i) => nodeOf(lab, i));
  await phase(timings, 'down: swarm leave', () => leaveSwarm(nodes));
  const shims = nodes.flatMap(shimSockets);
  await phase(timings, 'down: dockerd stop', async () => {
    // TERM to all at once: each stops its containers and its containerd, in parallel (one after another is 3x).
    const pids = nodes.map((n) => livePid(n.pidFile, 'dockerd')).filter(Boolean);
    await stopPids(pids, { graceMs: 40_000, what: 'dockerd' });
    const registry = livePid(lab.registryPidFile, 'docker-registry');
    if (registry) await stopPids([registry], { graceMs: 10_000, what: 'registry' });
  });
  await phase(timings, 'down: stragglers', async () => {
    // After a crash: the shims and containers outlive their dockerd. They are in a lab netns or cgroup.
    const pids = [...new Set((await Promise.all(nodes.map(nodePids))).flat())];
    for (const p of pids) log(`straggler pid ${p} (${procComm(p)})`);
    await stopPids(pids, { graceMs: 3_000, what: 'stragglers' });
  });
  await phase(timings, 'down: files', async () => {
    const mounts = labMounts().sort((a, b) => b.length - a.length);
    if (mounts.length) await tryRun('umount', ['-l', ...mounts]);
    for (const socket of shims) rmSync(socket, { force: true });
    // In parallel: the data roots hold every image three times over, the removal is most of down's time.
    await Promise.all([...labDirs(), envDir].map((dir) => rm(dir, { recursive: true, force: true })));
  });
  await phase(timings, 'down: network', async () => {
    for (const n of nodes) if (existsSync(`${NETNS_DIR}/${n.netns}`)) await tryIp('netns', 'del', n.netns);
    for (const n of nodes) if (existsSync(`/sys/class/net/${n.veth}`)) await tryIp('link', 'del', n.veth);
    if (existsSync(`/sys/class/net/${lab.bridge}`)) await tryIp('link', 'del', lab.bridge);
    for (let k = 0; k < 10; k++) if ((await tryRun('iptables', ['-D', ...forwardRuleArgs(lab)])).exitCode !== 0) break;
    // ip's own /var/run/netns mount: only when the lab made it and no namespace is left in it.
    if (state?.netnsDirExisted === false && existsSync(NETNS_DIR) && readdirSync(NETNS_DIR).length === 0) {
      await tryRun('umount', [NETNS_DIR]);
      rmdirSync(NETNS_DIR);
    }
  });
  for (const i of nodes.map((n) => n.index))
    for (const dir of labCgroups(i))
      try {
        rmdirSync(dir);
      } catch {}
  return leftovers(lab, nodes);
}
/** What a clean host must not have; each entry says what is left. */
async function leftovers(lab, nodes) {
  const left = [];
  const pids = [...new Set([...(await Promise.all(nodes.map(nodePids))).flat(), ...labProcessesByCommandLine()])];
  const registry = livePid(lab.registryPidFile, 'docker-registry');
  if (registry) pids.push(registry);
  for (const p of pids) left.push(`process ${p} (${procComm(p)})`);
  for (const name of labNetnsNames()) left.push(`netns ${name}`);
  for (const link of [lab.bridge, ...nodes.map((n) => n.veth)])
    if (existsSync(`/sys/class/net/${link}`)) left.push(`link ${link}`);
  for (const m of labMounts()) left.push(`mount ${m}`);
  for (const n of nodes) for (const dir of labCgroups(n.index)) left.push(`cgroup ${dir}`);
  for (const dir of [...labDirs(), envDir]) if (existsSync(dir)) left.push(`directory ${dir}`);
  if ((await tryRun('iptables', ['-C', ...forwardRuleArgs(lab)])).exitCode === 0) left.push('iptables FORWARD rule');
  return left;
}

async function down() {
  const started = now();
  requireRoot();
  const state = readState();
  const lab = state ? layout(state.config) : layout(resolveConfig());
  const left = await teardown(lab, [], state);
  if (left.length) {
    log(`not clean after ${seconds(now() - started)}; left:\n  ${left.join('\n  ')}`);
    return 1;
  }
  log(`clean (down in ${seconds(now() - started)})`);
  return 0;
}

// ---- kill-node, start-node -----------------------------------------------------------------------------------------

/** N of kill-node/start-node: 1..3, checked before anything else (a bad N is a usage error, exit 2). */
function nodeArg(value) {
  const i = Number(value);
  if (!/^\d+$/.test(value ?? '') || i < 1 || i > NODE_COUNT)
    throw usageError(`expected a node number from 1 to ${NODE_COUNT}, got ${value ?? 'nothing'}`);
  return i;
}
function requireLab() {
  const state = readState();
  if (!state) throw new LabError('the lab is not up (no /run/opskit-lab/lab.json)', { hint: 'npm run lab -- up' });
  return layout(state.config);
}

/**
 * What a power cut takes with a node besides its processes: every mount, and its runtime state (/run is a tmpfs on a
 * real host). Else the restarted dockerd finds its old containerd's pid file and waits ~10 s for a process that is
 * gone (or a zombie), and the killed shims' sockets stay in the host's /run/containerd/s. The data root stays.
 */
async function forgetRuntimeState(node, shims) {
  const mine = (m) => [node.run, node.data].some((d) => m === d || m.startsWith(`${d}/`));
  const mounts = labMounts()
    .filter(mine)
    .sort((a, b) => b.length - a.length);
  if (mounts.length) await tryRun('umount', ['-l', ...mounts]);
  for (const file of [...shims, node.pidFile, node.socketPath]) rmSync(file, { force: true });
  rmSync(node.exec, { recursive: true, force: true });
}

/**
 * Powers node N off: SIGKILL to everything that makes the node (dockerd, the containerd it started, the shims and
 * docker-proxy in its netns, its containers in its cgroup), then its link down so its address stops answering. A
 * SIGKILLed dockerd alone takes its containerd along (started with a parent-death signal) but leaves the shims and
 * the containers running and answering, which is not a lost node.
 */
async function killNode(args) {
  requireRoot();
  const index = nodeArg(args[0]);
  const lab = requireLab();
  const node = lab.nodes[index - 1];
  const started = now();
  const id = (await swarmInfo(node)).NodeID;
  const pids = await nodePids(node);
  const shims = shimSockets(node);
  await killPids(pids, `node ${node.index}'s processes to die`);
  await forgetRuntimeState(node, shims);
  await ip('link', 'set', node.veth, 'down');
  log(`node ${node.index} killed (${pids.length} processes, link ${node.veth} down) in ${seconds(now() - started)}`);
  if (args.includes('--wait') && node.index !== 1) {
    await waitFor(
      `the manager to see node ${node.index} Down`,
      async () => (await swarmNodes(lab))?.some((s) => s.ID === id && s.Status?.State === 'down'),
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    log(`the manager sees node ${node.index} Down ${seconds(now() - started)} after the kill`);
  }
  return 0;
}

/**
 * Kills node N's Docker Engine alone, as a crashed dockerd: SIGKILL to dockerd (its containerd follows, started
 * with a parent-death signal). The shims, the containers and docker-proxy keep running and answering; the node
 * stays on the network. `start-node N` starts the Engine again.
 */
async function killEngine(args) {
  requireRoot();
  const index = nodeArg(args[0]);
  const lab = requireLab();
  const node = lab.nodes[index - 1];
  const pids = [livePid(node.pidFile, 'dockerd'), livePid(node.containerdPidFile, 'containerd')].filter(Boolean);
  if (pids.length === 0)
    throw new LabError(`node ${node.index}'s Engine is not running`, {
      hint: `npm run lab -- start-node ${node.index}`,
    });
  await killPids(pids, `node ${node.index}'s dockerd and containerd to die`);
  log(`node ${node.index}'s Engine killed (dockerd, containerd); its containers still run`);
  return 0;
}

async function startNode(args) {
  requireRoot();
  const index = nodeArg(args[0]);
  const lab = requireLab();
  const node = lab.nodes[index - 1];
  const started = now();
  await ensureNodeNetwork(lab, node);
  await ensureDockerd(lab, node);
  log(`node ${node.index}: dockerd answers (${seconds(now() - started)})`);
  // A restarted manager has to hear from the workers again before it shows them Ready: wait for those too.
  const others = node.index === 1 ? await asyncFilter(lab.nodes.slice(1), (n) => answers(n.socketPath)) : [];
  await waitUntilReady(lab, [node, ...others], 60_000);
  const which = others.length ? `nodes ${[node, ...others].map((n) => n.index).join(' ')}` : `node ${node.index}`;
  log(`${which} Ready on the manager ${seconds(now() - started)} after start`);
  return 0;
}

// ---- status, env ---------------------------------------------------------------------------------------------------

async function collectStatus() {
  const state = readState();
  const lab = currentLab();
  const listed = state ? await swarmNodes(lab) : undefined;
  const nodes = await Promise.all(
    lab.nodes.map(async (node) => {
      const pid = livePid(node.pidFile, 'dockerd') ?? null;
      const answering = pid ? await answers(node.socketPath) : false;
      const id = answering ? (await swarmInfo(node)).NodeID : undefined;
      const entry =
        listed?.find((s) => s.ID === id) ?? listed?.find((s) => s.Description?.Hostname === node.hostname) ?? null;
      return {
        index: node.index,
        hostname: node.hostname,
        address: node.address,
        socket: node.host,
        pid,
        answers: answering,
        swarm: entry
          ? {
              id: entry.ID,
              state: entry.Status?.State,
              role: entry.Spec?.Role,
              leader: Boolean(entry.ManagerStatus?.Leader),
              labels: entry.Spec?.Labels ?? {},
            }
          : null,
      };
    }),
  );
  const registryPid = livePid(lab.registryPidFile, 'docker-registry') ?? null;
  const registryAnswers = registryPid ? (await registryGet(lab, '/v2/', 1500)).status === 200 : false;
  const up = Boolean(state) && registryAnswers && nodes.every((n) => n.answers && n.swarm?.state === 'ready');
  return {
    schemaVersion: 1,
    up,
    subnet: lab.subnet,
    pool: lab.pool,
    registry: { address: lab.registry, pid: registryPid, answers: registryAnswers },
    nodes,
  };
}

function renderStatus(s) {
  const lines = [
    `lab ${s.up ? 'up' : 'not (fully) up'}: subnet ${s.subnet}, registry ${s.registry.address} ${
      s.registry.answers ? 'answers' : 'does not answer'
    }`,
  ];
  for (const n of s.nodes) {
    const swarm = n.swarm
      ? `${n.swarm.state} ${n.swarm.role}${n.swarm.leader ? ' (leader)' : ''}`
      : 'not in the swarm (or no manager)';
    const labels = Object.entries(n.swarm?.labels ?? {}).map(([k, v]) => `${k}=${v}`);
    lines.push(
      `node ${n.index} ${n.hostname} ${n.address} dockerd ${n.answers ? 'answers' : 'does not answer'}` +
        `${n.pid ? ` (pid ${n.pid})` : ''}, swarm ${swarm}${labels.length ? `, labels ${labels.join(' ')}` : ''}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

async function status(args) {
  const s = await collectStatus();
  process.stdout.write(args.includes('--json') ? `${JSON.stringify(s, null, 2)}\n` : renderStatus(s));
  return s.up ? 0 : 1;
}

function printEnv() {
  const file = path.join(envDir, 'env');
  if (!existsSync(file)) throw new LabError('no .lab/env: the lab is not up', { hint: 'npm run lab -- up' });
  process.stdout.write(readFileSync(file, 'utf8'));
  return 0;
}

// ---- main ----------------------------------------------------------------------------------------------------------

export async function main(argv) {
  const [command, ...args] = argv;
  switch (command) {
    case 'up':
      return up();
    case 'down':
      return down();
    case 'kill-node':
      return killNode(args);
    case 'kill-engine':
      return killEngine(args);
    case 'start-node':
      return startNode(args);
    case 'status':
      return status(args);
    case 'env':
      return printEnv();
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return 0;
    default:
      throw usageError(command ? `unknown command ${command}` : 'no command', USAGE);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error) => {
      log(`error: ${error.message}`);
      if (error.hint) log(error.hint);
      if (process.env.OPSKIT_LAB_VERBOSE && error.stack) process.stderr.write(`${error.stack}\n`);
      process.exitCode = error instanceof LabError ? error.exitCode : 1;
    },
  );
}
