import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSingleJson } from '../helpers/cli.js';
import { docker, removeLabelled, TEST_LABEL, uniqueName } from '../helpers/docker.js';
import { freshColors } from '../helpers/http.js';
import { createPlatform, type Platform, projectResources } from '../helpers/platform.js';

async function webImageId(p: Platform): Promise<string> {
  const id = (
    await docker([
      'ps',
      '-q',
      '--filter',
      `label=com.docker.compose.project=${p.project}`,
      '--filter',
      'label=com.docker.compose.service=web',
    ])
  ).stdout.trim();
  return id ? (await docker(['inspect', '-f', '{{.Image}}', id])).stdout.trim() : '';
}

const listTree = (dir: string): string[] => readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();

describe('opskit deploy: migrate-then-start on the real engine', () => {
  let p: Platform;
  beforeAll(async () => {
    p = await createPlatform('opskit-deploy-');
  });
  afterAll(async () => {
    await p?.destroy();
  });

  it('--dry-run prints every step and creates no container, network, volume or file', async () => {
    const before = listTree(p.dir);
    const r = await p.run(['deploy', '--build', '--dry-run']);
    expect(r.exitCode, r.stderr).toBe(0);
    // buildx runs as its plugin binary (standalone) where the docker CLI finds it, else as `docker buildx`.
    expect(r.stderr).toMatch(
      /would run: (docker buildx|\S+\/cli-plugins\/docker-buildx) build --progress=rawjson --load/,
    );
    for (const expected of [
      'up -d db redis',
      'run --rm --no-deps -T web python3 migrate.py',
      'up -d --no-deps web',
      "would request GET http://<each web instance's address>:8000/health",
      'state.json',
    ]) {
      expect(r.stderr).toContain(expected);
    }
    expect(await projectResources(p.project)).toEqual({ containers: [], networks: [], volumes: [] });
    expect(listTree(p.dir)).toEqual(before);
  });

  it('deploys from nothing: the database first, the migrations once, then the API behind nginx', async () => {
    const r = await p.run(['deploy', '--build', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = parseSingleJson(r.stdout);
    expect(doc).toMatchObject({ ok: true, changed: true, migrations: { ran: true, applied: ['0001', '0002'] } });
    // The order the steps ran in, as printed.
    const order = [
      'start db, redis',
      'wait until db, redis are healthy',
      'run the migrations',
      'start or replace web',
      'wait until web answers /health',
      'start nginx',
    ].map((s) => r.stderr.indexOf(s));
    expect(order.every((at, i) => at >= 0 && (i === 0 || at > order[i - 1]!))).toBe(true);

    const health = await (await fetch(p.url('/health'))).json();
    expect(health).toMatchObject({
      status: 'ok',
      database: 'ok',
      schema: '0002',
      version: (doc.build as { revision: string }).revision,
    });
    const created = await fetch(p.url('/api/items'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'widget' }),
    });
    expect(created.status).toBe(201);
    const items = (await (await fetch(p.url('/api/items'))).json()) as Array<{ name: string }>;
    expect(items.map((i) => i.name)).toEqual(['widget']);
    expect(await p.sql("SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations")).toBe('0001,0002');
    expect(await webImageId(p)).toBe(doc.imageId);
  });

  it('opskit health checks the deployed platform: its services by default, nginx in compose, the API through nginx', async () => {
    const defaults = await p.run(['health', '--json']);
    expect(defaults.exitCode, defaults.stdout).toBe(0);
    const doc = parseSingleJson(defaults.stdout);
    // Right after a deploy the web container's own Docker healthcheck may not have run yet: "starting" is a warning.
    expect(doc).toMatchObject({ source: 'defaults', ok: true });
    expect(['pass', 'warn']).toContain(doc.status);
    expect((doc.checks as Array<{ name: string }>).map((c) => c.name)).toEqual([
      'container db',
      'container redis',
      'container web',
      'container nginx',
      'through nginx /health',
      'disk .',
    ]);
    expect((doc.checks as Array<{ name: string; status: string; detail: string }>)[4]).toMatchObject({
      status: 'pass',
      detail: expect.stringMatching(/^GET http:\/\/[\d.]+:80\/health: /),
    });
    const { readFileSync } = await import('node:fs');
    const yaml = readFileSync(path.join(p.dir, 'opskit.yaml'), 'utf8');
    writeFileSync(
      path.join(p.dir, 'opskit.yaml'),
      yaml.replace(
        '  checks: []\n',
        `  checks:\n    - kind: nginx\n    - kind: http\n      name: api\n      url: ${p.url('/health')}\n      json: { path: status, equals: ok }\n    - kind: resources\n`,
      ),
    );
    const configured = await p.run(['health', '--json']);
    expect(configured.exitCode, configured.stdout).toBe(0);
    const checks = Object.fromEntries(
      (parseSingleJson(configured.stdout).checks as Array<{ name: string; status: string; detail: string }>).map(
        (c) => [c.name, c],
      ),
    );
    expect(checks.nginx).toMatchObject({
      status: 'pass',
      detail: expect.stringContaining('configuration ok, master running'),
    });
    expect(checks.api!.status).toBe('pass');
    expect(checks.resources).toMatchObject({ status: 'pass', detail: expect.stringContaining('CPU') });
  });

  it('a second deploy of the same image changes nothing and does not re-run a migration', async () => {
    const appliedAt = await p.sql("SELECT string_agg(applied_at::text, ',') FROM schema_migrations");
    const web = await webImageId(p);
    const r = await p.run(['deploy', '--build', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(parseSingleJson(r.stdout), r.stderr.slice(-3000)).toMatchObject({ changed: false });
    expect(r.stderr).toContain('nothing to change');
    expect(await p.sql("SELECT string_agg(applied_at::text, ',') FROM schema_migrations")).toBe(appliedAt);
    expect(await webImageId(p)).toBe(web);
  });

  it('a broken migration exits 1: the web service stays on its previous version and the database is intact', async () => {
    const web = await webImageId(p);
    const before = (await (await fetch(p.url('/health'))).json()) as { version: string };
    writeFileSync(
      path.join(p.dir, 'migrations/0003_broken.sql'),
      'ALTER TABLE items ADD COLUMN price numeric;\nALTER TABLE no_such_table ADD COLUMN x int;\n',
    );
    try {
      const r = await p.run(['deploy', '--build']);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain('the migrations failed');
      expect(r.stderr).toContain('no_such_table');
      expect(r.stderr).toContain('the previous version keeps serving');
      expect(await webImageId(p)).toBe(web);
      const after = (await (await fetch(p.url('/health'))).json()) as { version: string; status: string };
      expect(after).toMatchObject({ status: 'ok', version: before.version });
      // The failed migration's transaction left nothing: no row, no half-applied column.
      expect(await p.sql("SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations")).toBe('0001,0002');
      expect(
        await p.sql(
          "SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'price'",
        ),
      ).toBe('0');
      expect(await p.sql("SELECT string_agg(name, ',') FROM items")).toBe('widget');
    } finally {
      rmSync(path.join(p.dir, 'migrations/0003_broken.sql'));
    }
  });

  it('a new version with a new migration: migrated, then replaced, and it reports the new schema', async () => {
    writeFileSync(
      path.join(p.dir, 'migrations/0003_add_price.sql'),
      'ALTER TABLE items ADD COLUMN price numeric NOT NULL DEFAULT 0;\n',
    );
    const r = await p.run(['deploy', '--build', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = parseSingleJson(r.stdout);
    expect(doc).toMatchObject({ changed: true, migrations: { applied: ['0003'] } });
    expect(await webImageId(p)).toBe(doc.imageId);
    expect(await (await fetch(p.url('/health'))).json()).toMatchObject({
      status: 'ok',
      schema: '0003',
      expectedSchema: '0003',
    });
  });
});

describe('opskit deploy: failures on a first deploy', () => {
  const run = uniqueName('deploy-fail');
  const platforms: Platform[] = [];
  afterAll(async () => {
    for (const p of platforms) await p.destroy();
    await removeLabelled(run);
    await docker(['rmi', '-f', `opskit-test/never-healthy:${run}`], { reject: false });
  });

  it('a broken migration on the first deploy: exit 1, and the web service is never started', async () => {
    const p = await createPlatform('opskit-deploy-first-');
    platforms.push(p);
    writeFileSync(path.join(p.dir, 'migrations/0003_broken.sql'), 'SELECT * FROM no_such_table;\n');
    const r = await p.run(['deploy', '--build', '--json']);
    expect(r.exitCode).toBe(1);
    expect(parseSingleJson(r.stdout)).toMatchObject({ ok: false, error: { code: 'E_MIGRATION_FAILED' } });
    expect(await webImageId(p)).toBe('');
    expect(await p.sql("SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations")).toBe('0001,0002');
  });

  it('a database that never becomes healthy: exit 1 within the deadline, with its logs', async () => {
    const p = await createPlatform('opskit-deploy-nodb-');
    platforms.push(p);
    // Runs, prints, but has no pg_isready: its healthcheck never passes.
    const context = path.join(p.dir, 'never-healthy');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(context);
    writeFileSync(
      path.join(context, 'Dockerfile'),
      'FROM opskit-test/busybox:latest\nCMD ["sh", "-c", "echo database warming up forever; sleep 3600"]\n',
    );
    await docker(['build', '-q', '--label', `${TEST_LABEL}=${run}`, '-t', `opskit-test/never-healthy:${run}`, context]);
    const started = Date.now();
    const r = await p.run(['deploy', '--build', '--wait-timeout', '6s'], {
      POSTGRES_IMAGE: `opskit-test/never-healthy:${run}`,
    });
    const elapsed = Date.now() - started;
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/db \(last: starting\) did not become healthy within 6\.00s/);
    expect(r.stderr).toContain('database warming up forever');
    expect(elapsed).toBeLessThan(60_000);
    expect(await webImageId(p)).toBe('');
  });
});

describe('opskit deploy: the platform as its users meet it, through nginx', () => {
  const platforms: Platform[] = [];
  afterAll(async () => {
    for (const p of platforms) await p.destroy();
  });

  it('an app that listens only on TCP (cutover.switch: reload): nginx names its container, answers 200, and a cutover and rollback switch it', async () => {
    const p = await createPlatform('opskit-deploy-tcp-');
    platforms.push(p);
    // The example without its unix-socket bind: gunicorn on 0.0.0.0:8000 alone.
    const { readFileSync } = await import('node:fs');
    const conf = path.join(p.dir, 'gunicorn.conf.py');
    writeFileSync(conf, readFileSync(conf, 'utf8').replace(/\nif os\.path\.isdir\(socket_dir\)[^\n]*\n[^\n]*\n/, '\n'));
    expect(readFileSync(conf, 'utf8')).not.toContain('bind.append');
    const r = await p.run(['deploy', '--build', '--json', '--set', 'cutover.switch=reload']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('ask the platform through nginx (/health)');
    expect(readFileSync(path.join(p.dir, 'nginx/upstream/web.conf'), 'utf8')).toMatch(/server [\w-]+:8000/);
    expect((await fetch(p.url('/health'))).status).toBe(200);
    const health = await p.run(['health', '--json', '--set', 'cutover.switch=reload']);
    expect(parseSingleJson(health.stdout).checks).toContainEqual(
      expect.objectContaining({ name: 'through nginx /health', status: 'pass' }),
    );
    // A second version, cut over and rolled back: each switch verified through nginx.
    const { appendFileSync } = await import('node:fs');
    appendFileSync(path.join(p.dir, 'app.py'), '\n# tcp-only v2\n');
    const v2 = (parseSingleJson((await p.run(['build', '--json'])).stdout).tags as string[])[0]!;
    const cut = await p.run(['cutover', '--image', v2, '--json', '--set', 'cutover.switch=reload']);
    expect(cut.exitCode, cut.stderr).toBe(0);
    // Reload mode: opskit returns only once nginx's old workers stopped accepting, so every new connection meets green.
    expect(await freshColors(p.url('/health'))).toEqual(Array(10).fill('green'));
    const back = await p.run(['rollback', '--json', '--set', 'cutover.switch=reload']);
    expect(back.exitCode, back.stderr).toBe(0);
    expect(await freshColors(p.url('/health'))).toEqual(Array(10).fill('blue'));
  });

  it('a healthy web service behind an nginx that answers 502: the deploy exits 1 with what nginx answered', async () => {
    const p = await createPlatform('opskit-deploy-502-');
    platforms.push(p);
    // An upstream that passes nginx -t but reaches nothing.
    writeFileSync(path.join(p.dir, 'dead-upstream.tmpl'), 'upstream web {\n  server 127.0.0.1:9 max_fails=0;\n}\n');
    const r = await p.run([
      'deploy',
      '--build',
      '--set',
      'nginx.upstreamTemplate=dead-upstream.tmpl',
      '--set',
      'cutover.verifyTimeout=3s',
    ]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('the web service is healthy, but the platform does not answer through nginx');
    expect(r.stderr).toMatch(/gave HTTP 502/);
    // Fixed: the next deploy renders opskit's own upstream and passes.
    const fixed = await p.run(['deploy']);
    expect(fixed.exitCode, fixed.stderr).toBe(0);
    expect((await fetch(p.url('/health'))).status).toBe(200);
  });
});
