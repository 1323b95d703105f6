import {
  appendFileSync,
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/adapters/clock.js';
import { nodeFs } from '../../src/adapters/fs.js';
import { liveSocket } from '../../src/platform/sockets.js';
import { parseSingleJson, tempDir } from '../helpers/cli.js';
import { docker } from '../helpers/docker.js';
import { createPlatform, type Platform } from '../helpers/platform.js';

// Issue 15, "secrets at rest": the app's unix socket. Other local users of the host must neither connect
// to it nor create files beside it; nginx (another user inside its container) must still connect.

const modeOf = (file: string) => statSync(file).mode & 0o7777;

/** Connects to a unix socket as `user` (or as this process): `connected`, or the errno's name. */
async function connectAs(user: string | undefined, socket: string): Promise<string> {
  const probe = [
    'import errno, socket, sys',
    's = socket.socket(socket.AF_UNIX)',
    'try:',
    '    s.connect(sys.argv[1]); print("connected")',
    'except OSError as e:',
    '    print(errno.errorcode.get(e.errno, str(e.errno)))',
  ].join('\n');
  const argv = ['/usr/bin/python3', '-c', probe, socket];
  const [file, args] = user ? ['runuser', ['-u', user, '--', ...argv]] : [argv[0]!, argv.slice(1)];
  const r = await execa(file, args, { reject: false });
  expect(r.stderr).toBe('');
  return String(r.stdout).trim();
}

/** `touch FILE` as `user`: did the file appear? */
async function createsAs(user: string, file: string): Promise<boolean> {
  await execa('runuser', ['-u', user, '--', 'touch', file], { reject: false });
  return existsSync(file);
}

describe('the sockets directory, for other local users', () => {
  let p: Platform;
  let run = '';
  let sockets = '';
  let v1 = '';
  let v2 = '';
  const health = async () => {
    const r = await fetch(p.url('/health'));
    const body = (await r.json()) as { color: string; version: string };
    return { httpStatus: r.status, color: body.color, version: body.version };
  };

  beforeAll(async () => {
    p = await createPlatform('opskit-sockperm-');
    // mkdtemp makes the project 0700, which alone would keep `nobody` out and prove nothing: a project
    // lives in a directory others may read (/srv/app), so only run/ may be the guard.
    chmodSync(p.dir, 0o755);
    const deployed = await p.run(['deploy', '--build', '--json']);
    expect(deployed.exitCode, deployed.stderr).toBe(0);
    v1 = parseSingleJson(deployed.stdout).image as string;
    appendFileSync(path.join(p.dir, 'app.py'), '\n# version 2\n');
    const built = await p.run(['build', '--json']);
    expect(built.exitCode, built.stderr).toBe(0);
    v2 = (parseSingleJson(built.stdout).tags as string[])[0]!;
    run = path.join(p.dir, 'run');
    sockets = path.join(run, 'sockets');
  });

  afterAll(async () => {
    await p?.destroy();
    const filter = `label=com.docker.compose.project=${p?.project}`;
    const leftovers = (await docker(['ps', '-aq', '--filter', filter], { reject: false })).stdout
      .split('\n')
      .filter(Boolean);
    if (leftovers.length) await docker(['rm', '-f', ...leftovers], { reject: false });
  });

  it('after a deploy: nobody can read the project, but can neither connect to the app nor create a file in run/; nginx answers 200', async () => {
    expect(modeOf(run)).toBe(0o700);
    expect(modeOf(sockets)).toBe(0o1777);
    const target = readlinkSync(path.join(sockets, 'live.sock'));
    expect(target).toMatch(/^web-[0-9a-f]{12}\.sock$/);
    // Controls: the path down to the project is open to nobody, and the socket is live.
    expect(
      (await execa('runuser', ['-u', 'nobody', '--', 'cat', path.join(p.dir, 'opskit.yaml')], { reject: false }))
        .exitCode,
    ).toBe(0);
    expect(await connectAs(undefined, path.join(sockets, 'live.sock'))).toBe('connected');

    expect(await connectAs('nobody', path.join(sockets, 'live.sock'))).toBe('EACCES');
    expect(await connectAs('nobody', path.join(sockets, target))).toBe('EACCES');
    expect(await createsAs('nobody', path.join(run, 'planted'))).toBe(false);
    expect(await createsAs('nobody', path.join(sockets, 'live.sock.planted'))).toBe(false);
    expect(readdirSync(run)).toEqual(['sockets']);

    // nginx's workers (nobody inside their container) still reach the app through the socket.
    expect(await health()).toMatchObject({ httpStatus: 200, color: 'blue' });
    const doctor = parseSingleJson((await p.run(['doctor', '--json'])).stdout);
    expect((doctor.checks as Array<{ name: string }>).find((c) => c.name === 'sockets')).toMatchObject({
      status: 'pass',
      detail: 'other users cannot pass run (0700) to reach run/sockets',
    });
  });

  it('a cutover and a rollback still switch through the socket, and the new colour is as unreachable', async () => {
    const cut = await p.run(['cutover', '--image', v2, '--json']);
    expect(cut.exitCode, cut.stderr).toBe(0);
    expect(await health()).toMatchObject({ httpStatus: 200, color: 'green' });
    const green = readlinkSync(path.join(sockets, 'live.sock'));
    expect(await connectAs(undefined, path.join(sockets, green))).toBe('connected');
    expect(await connectAs('nobody', path.join(sockets, green))).toBe('EACCES');
    expect(modeOf(run)).toBe(0o700);

    const back = await p.run(['rollback', '--json']);
    expect(back.exitCode, back.stderr).toBe(0);
    expect(await health()).toMatchObject({ httpStatus: 200, color: 'blue' });
    expect(await connectAs('nobody', path.join(sockets, 'live.sock'))).toBe('EACCES');
  });

  it('run/ is the guard: opened up, nobody connects and doctor warns; the next cutover makes it private again', async () => {
    chmodSync(run, 0o755);
    try {
      expect(await connectAs('nobody', path.join(sockets, 'live.sock'))).toBe('connected');
      const doctor = await p.run(['doctor', '--json']);
      expect(doctor.exitCode, doctor.stderr).toBe(0);
      const check = (parseSingleJson(doctor.stdout).checks as Array<{ name: string }>).find(
        (c) => c.name === 'sockets',
      );
      expect(check).toMatchObject({ status: 'warn', required: false, hint: 'chmod o-rwx run' });

      // A cutover to the image that is not live: it starts a new colour, and prepares its directory first.
      const before = await health();
      const cut = await p.run(['cutover', '--image', before.version === v1.split(':')[1] ? v2 : v1, '--json']);
      expect(cut.exitCode, cut.stderr).toBe(0);
      expect(modeOf(run)).toBe(0o750);
      expect(await connectAs('nobody', path.join(sockets, 'live.sock'))).toBe('EACCES');
      expect(await health()).toMatchObject({ httpStatus: 200, color: before.color === 'blue' ? 'green' : 'blue' });
    } finally {
      chmodSync(run, 0o700);
    }
  });
});

describe('LiveSocket.prepare on the host filesystem', () => {
  it("creates run/ 0700 around run/sockets (1777), removes others' bits from a run/ of its own, and leaves a shared parent alone", async () => {
    const base = tempDir('opskit-sockdir-');
    chmodSync(base, 0o755);
    const fresh = path.join(base, 'fresh', 'run', 'sockets');
    await liveSocket(nodeFs, systemClock, fresh).prepare();
    expect(modeOf(path.dirname(fresh))).toBe(0o700);
    expect(modeOf(fresh)).toBe(0o1777);

    // A run/ that compose (root, 0755) or an operator made first: its group bits are the operator's
    // (nginx on the host may need them), its other bits go.
    const early = path.join(base, 'early');
    mkdirSync(path.join(early, 'run', 'sockets'), { recursive: true, mode: 0o755 });
    chmodSync(path.join(early, 'run'), 0o755);
    await liveSocket(nodeFs, systemClock, path.join(early, 'run', 'sockets')).prepare();
    expect(modeOf(path.join(early, 'run'))).toBe(0o750);

    // The layout from before run/sockets (paths.sockets: run): the parent is the project itself.
    const legacy = path.join(base, 'legacy');
    mkdirSync(legacy, { mode: 0o755 });
    chmodSync(legacy, 0o755);
    writeFileSync(path.join(legacy, 'opskit.yaml'), 'paths:\n  sockets: run\n');
    await liveSocket(nodeFs, systemClock, path.join(legacy, 'run')).prepare();
    expect(modeOf(legacy)).toBe(0o755);
    expect(modeOf(path.join(legacy, 'run'))).toBe(0o1777);
  });
});
