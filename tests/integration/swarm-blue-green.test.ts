import { appendFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { opskit, parseSingleJson } from '../helpers/cli.js';
import { freshColors, freshGet } from '../helpers/http.js';
import { type LabPlatform, lab, labPlatform } from '../helpers/lab.js';
import { failures, type LoadResult, NO_FAILURES, startLoad } from '../helpers/load.js';
import { waitFor } from '../helpers/wait.js';

/** The status of `count` fresh GETs, one after another (0: no answer within 3 s). */
/** What `count` new connections are answered, one after another: `<status> <colour>`, or the error. */
async function edgeAnswers(url: string, count: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < count; i++)
    out.push(
      await freshGet(url, 5000).then(
        (r) =>
          `${r.status} ${r.status === 200 ? (JSON.parse(r.body) as { color: string }).color : r.body.slice(0, 80)}`,
        (e: Error) => e.message,
      ),
    );
  return out;
}

async function edgeStatuses(url: string, count: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++)
    out.push(
      await freshGet(url, 3000).then(
        (r) => r.status,
        () => 0,
      ),
    );
  return out;
}

/**
 * Blue-green on the lab's Swarm: the colours are services (blue the web service itself, green
 * `<project>_web_green`), the edge nginx on the manager proxies to each by name from a unix socket of its
 * own, and a switch renames the live.sock link between them. Every request goes to the lab's addresses.
 */
describe('engine: swarm on the lab: cutover and rollback with every request answered; a node lost', () => {
  let p: LabPlatform;
  const images: string[] = [];
  const health = () => `${p.edge}/health`;
  const status = async () =>
    parseSingleJson((await p.run(['status', '--json'])).stdout) as {
      live: string;
      colors: Array<{ color: string; live: boolean; image: string; state: string; health: string }>;
    };
  const link = () => readlinkSync(path.join(p.dir, 'run/sockets/live.sock'));

  beforeAll(async () => {
    p = await labPlatform('opskit-swarm-bg-');
    const init = await opskit(['init', '--example', p.dir, '--engine', 'swarm'], {
      env: p.env as unknown as Record<string, string>,
    });
    if (init.exitCode !== 0) throw new Error(init.stderr);
    const deployed = await p.run(['deploy', '--build', '--json']);
    if (deployed.exitCode !== 0) throw new Error(deployed.stderr);
    images.push(parseSingleJson(deployed.stdout).image as string);
    // Two more versions of the app: each cutover below replaces the idle colour with another image.
    for (const version of ['v2', 'v3']) {
      appendFileSync(path.join(p.dir, 'app.py'), `\n# ${version}\n`);
      const built = await p.run(['build', '--json']);
      if (built.exitCode !== 0) throw new Error(built.stderr);
      images.push((parseSingleJson(built.stdout).tags as string[])[0]!);
    }
  }, 600_000);

  afterAll(async () => {
    await p?.destroy();
  }, 180_000);

  it('after the deploy: blue is the web service, live.sock links to the edge socket blue.sock; --dry-run changes nothing', async () => {
    expect(link()).toBe('blue.sock');
    expect(await freshColors(health(), 3)).toEqual(['blue', 'blue', 'blue']);
    const dry = await p.run(['cutover', '--image', images[1]!, '--dry-run']);
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(dry.stderr).toContain(`would call Docker POST /services/create {"name":"${p.project}_web_green"`);
    expect(dry.stderr).toContain('"alias":"web-green"');
    expect((await p.manager(['service', 'ls', '--format', '{{.Name}}'])).stdout).not.toContain('web_green');
    expect(link()).toBe('blue.sock');
  });

  it('10 switches (5 × a cutover that replaces the idle colour with another image, a rollback) under a 50-connection load through the edge: 0 failed requests', {
    timeout: 900_000,
  }, async () => {
    const load = await startLoad(health(), 50, 600);
    let result: LoadResult | undefined;
    const rollbacks: number[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        const image = images[1 + (i % 2)]!;
        const cut = await p.run(['cutover', '--image', image, '--json']);
        expect(cut.exitCode, cut.stderr).toBe(0);
        expect(parseSingleJson(cut.stdout)).toMatchObject({ action: 'cutover', from: 'blue', to: 'green', image });
        expect(link()).toBe('green.sock');
        expect(await freshColors(health(), 3), `cycle ${i}: after the cutover`).toEqual(['green', 'green', 'green']);
        const back = await p.run(['rollback', '--json']);
        expect(back.exitCode, back.stderr).toBe(0);
        const doc = parseSingleJson(back.stdout);
        expect(doc).toMatchObject({ action: 'rollback', to: 'blue', restarted: false, image: images[0] });
        rollbacks.push(doc.durationMs as number);
        expect(link()).toBe('blue.sock');
        expect(await freshColors(health(), 3), `cycle ${i}: after the rollback`).toEqual(['blue', 'blue', 'blue']);
      }
    } finally {
      result = await load.stop();
    }
    expect(failures(result)).toEqual(NO_FAILURES);
    expect(result.requests).toBeGreaterThan(1000);
    // The old colour stays warm: both services with every task running.
    const s = await status();
    expect(s.live).toBe('blue');
    expect(s.colors.map((c) => `${c.color} ${c.health}`)).toEqual(['blue healthy', 'green healthy']);
    console.log(`rollback durations (ms, inside opskit): ${rollbacks.join(' ')}`);
  });

  it('--finalize parks the old colour (its service kept, 0 tasks); a rollback starts it again from its image', {
    timeout: 300_000,
  }, async () => {
    const cut = await p.run(['cutover', '--image', images[1]!, '--json']);
    expect(cut.exitCode, cut.stderr).toBe(0);
    const fin = await p.run(['cutover', '--finalize', '--json']);
    expect(fin.exitCode, fin.stderr).toBe(0);
    expect(parseSingleJson(fin.stdout)).toMatchObject({ action: 'finalize', changed: true });
    expect((await status()).colors.find((c) => c.color === 'blue')).toMatchObject({ health: 'stopped' });
    // health checks both colour services: the live green one, and blue parked (0 tasks asked, none missing).
    const h = await p.run(['health', '--json', '--only', 'service']);
    expect(h.exitCode, h.stdout).toBe(0);
    const checks = (parseSingleJson(h.stdout) as { checks: Array<{ name: string; status: string }> }).checks;
    expect(checks.map((c) => `${c.name} ${c.status}`)).toEqual(
      expect.arrayContaining(['service web pass', 'service web_green pass']),
    );
    expect(await freshColors(health(), 3)).toEqual(['green', 'green', 'green']);
    const back = await p.run(['rollback', '--json']);
    expect(back.exitCode, back.stderr).toBe(0);
    expect(parseSingleJson(back.stdout)).toMatchObject({ action: 'rollback', to: 'blue', restarted: true });
    expect(await freshColors(health(), 3)).toEqual(['blue', 'blue', 'blue']);
  });

  it('a worker that holds a task of the live colour lost under load: every request answered; health exits 3; a cutover meanwhile refuses and switches nothing', {
    timeout: 600_000,
  }, async () => {
    const load = await startLoad(health(), 50, 300);
    let result: LoadResult | undefined;
    try {
      const killed = await lab(['kill-node', '3', '--wait']);
      expect(killed.exitCode, killed.all).toBe(0);
      const h = await p.run(['health', '--json']);
      expect(h.exitCode).toBe(3);
      // The new colour cannot place its second task (one per node, the data node excluded): refused, untouched.
      const cut = await p.run(['cutover', '--image', images[2]!, '--health-timeout', '20s', '--json']);
      expect(cut.exitCode).toBe(1);
      expect(parseSingleJson(cut.stdout)).toMatchObject({ error: { code: 'E_SERVICE_UNHEALTHY' } });
      expect(link()).toBe('blue.sock');
      expect(await freshColors(health(), 3)).toEqual(['blue', 'blue', 'blue']);
    } finally {
      result = await load.stop();
      const started = await lab(['start-node', '3']);
      expect(started.exitCode, started.all).toBe(0);
    }
    expect(failures(result)).toEqual(NO_FAILURES);
    console.log(
      `node lost under load: ${result.requests} requests, latency p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms, max ${result.latencyMs.max} ms`,
    );
  });
  it("the manager's Engine killed during a cutover: exit 1 (E_ENGINE_LOST) naming the link, nothing switched; after start-node the same cutover completes", {
    timeout: 600_000,
  }, async () => {
    const before = link();
    const live = before.replace('.sock', '');
    const idle = live === 'blue' ? 'green' : 'blue';
    const idleService = idle === 'blue' ? `${p.project}_web` : `${p.project}_web_green`;
    const image = images[2]!;
    const cut = p.run(['cutover', '--image', image, '--json']);
    // Once the idle colour's service runs the new image, the cutover is waiting on its tasks: the Engine goes.
    await waitFor(`${idleService} to run ${image}`, async () =>
      (
        await p.manager(['service', 'inspect', '-f', '{{.Spec.TaskTemplate.ContainerSpec.Image}}', idleService])
      ).stdout.startsWith(`${image}@`),
    );
    const killed = await lab(['kill-engine', '1']);
    expect(killed.exitCode, killed.all).toBe(0);
    let answers: string[] = [];
    let answeredInMs = 0;
    try {
      const r = await cut;
      expect(r.exitCode, r.stdout).toBe(1);
      const error = (parseSingleJson(r.stdout) as { error: { code: string; message: string } }).error;
      expect(error.code).toBe('E_ENGINE_LOST');
      expect(error.message).toContain(`live.sock still links to ${before}`);
      expect(link()).toBe(before);
      // The edge keeps serving the colour it served: its container runs on, and while Docker's DNS (which lives
      // in the Engine) is gone, each colour's requests go to its last known tasks.
      const asked = Date.now();
      answers = await edgeAnswers(health(), 10);
      answeredInMs = (Date.now() - asked) / 10;
      expect(answers).toEqual(Array.from({ length: 10 }, () => `200 ${live}`));
    } finally {
      const started = await lab(['start-node', '1']);
      expect(started.exitCode, started.all).toBe(0);
    }
    console.log(
      `the edge while the manager's Engine was down: ${answers.join(', ')} (${Math.round(answeredInMs)} ms each on average)`,
    );
    await waitFor('the edge to answer again', async () => (await edgeStatuses(health(), 1))[0] === 200, 120_000, 500);
    const again = await p.run(['cutover', '--image', image, '--json']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(parseSingleJson(again.stdout)).toMatchObject({ action: 'cutover', to: idle });
    expect(await freshColors(health(), 3)).toEqual([idle, idle, idle]);
  });
});
