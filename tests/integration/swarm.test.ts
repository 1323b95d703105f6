import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { opskit, parseSingleJson } from '../helpers/cli.js';
import { type LabPlatform, lab, labPlatform } from '../helpers/lab.js';
import { startS3Server } from '../helpers/s3.js';

/**
 * engine: swarm on the project's lab (`npm run lab -- up`): three Docker Engines in network namespaces, a
 * Swarm of one manager and two workers, a registry. The sample platform is deployed, checked and broken
 * for real; every request goes to the lab's addresses. The lab is brought up here when it is not, and
 * taken down again at the end only then.
 */
describe('engine: swarm on a 3-node lab: deploy, health, status', () => {
  let p: LabPlatform;
  /** The image the web service's spec runs, with its digest pin. */
  const webSpecImage = async () =>
    (
      await p.manager(['service', 'inspect', '-f', '{{.Spec.TaskTemplate.ContainerSpec.Image}}', `${p.project}_web`])
    ).stdout.trim();
  let deployed = '';

  beforeAll(async () => {
    p = await labPlatform('opskit-swarm-');
  }, 300_000);

  afterAll(async () => {
    await p?.destroy();
  }, 180_000);

  it('init --example --engine swarm writes the platform for the lab: its registry, its edge, engine: swarm', async () => {
    const r = await opskit(['init', '--example', p.dir, '--engine', 'swarm'], {
      env: p.env as unknown as Record<string, string>,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const yaml = readFileSync(path.join(p.dir, 'opskit.yaml'), 'utf8');
    expect(yaml).toContain('engine: swarm');
    expect(yaml).toContain(`name: ${p.env.OPSKIT_LAB_REGISTRY}/${p.project}/web`);
    expect(yaml).toContain(`url: ${p.edge}`);
    expect(readFileSync(path.join(p.dir, '.env'), 'utf8')).toContain(
      `POSTGRES_IMAGE=${p.env.OPSKIT_LAB_REGISTRY}/opskit-test/postgres:15`,
    );
  });

  it('--dry-run prints the specs it would send (the job, the services), secrets redacted, and changes nothing', async () => {
    const r = await p.run(['deploy', '--dry-run']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('would call Docker POST /images/{name}/push');
    expect(r.stderr).toContain('"Mode":{"ReplicatedJob":{"MaxConcurrent":1,"TotalCompletions":1}}');
    expect(r.stderr).toContain('"RestartPolicy":{"Condition":"none"}');
    expect(r.stderr).toContain(`would call Docker POST /services/create {"Name":"${p.project}_web"`);
    expect(r.stderr).toContain('"EndpointSpec":{"Mode":"dnsrr","Ports":[{"Protocol":"tcp","TargetPort":80');
    const password = /POSTGRES_PASSWORD=(\S+)/.exec(readFileSync(path.join(p.dir, '.env'), 'utf8'))![1]!;
    expect(r.stderr + r.stdout).not.toContain(password);
    expect((await p.manager(['service', 'ls', '-q', '--filter', `label=opskit.project=${p.project}`])).stdout).toBe('');
  });

  it('deploy --build: built, pushed and pinned, migrated by a job, every service up and healthy, nginx answers', async () => {
    const r = await p.run(['deploy', '--build', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = parseSingleJson(r.stdout);
    expect(doc).toMatchObject({
      ok: true,
      engine: 'swarm',
      changed: true,
      migrations: { ran: true, applied: ['0001', '0002'] },
    });
    expect(doc.released).toMatch(
      new RegExp(`^${p.env.OPSKIT_LAB_REGISTRY}/${p.project}/web:[^@]+@sha256:[0-9a-f]{64}$`),
    );
    expect(await webSpecImage()).toBe(doc.released);
    deployed = doc.image as string;
    // Progress per service, and the job gone once it answered.
    expect(r.stderr).toMatch(/web: 2\/2 running/);
    expect((await p.manager(['service', 'ls', '--format', '{{.Name}}'])).stdout).not.toContain('-migrate');
    const answer = await fetch(`${p.edge}/health`);
    expect(answer.status).toBe(200);
  });

  it('health --json: nodes, each service, the platform through nginx, all ok (exit 0)', async () => {
    const r = await p.run(['health', '--json']);
    expect(r.exitCode, r.stdout).toBe(0);
    const doc = parseSingleJson(r.stdout) as {
      ok: boolean;
      checks: Array<{ name: string; kind: string; status: string }>;
    };
    expect(doc.ok).toBe(true);
    expect(doc.checks.map((c) => `${c.kind} ${c.status}`)).toEqual([
      'nodes pass',
      'service pass',
      'service pass',
      'service pass',
      'service pass',
      'front pass',
      'postgres pass',
      'redis pass',
      'disk pass',
    ]);
    // The datastores answer only on the overlay: asked from a one-off container there, removed after.
    expect(doc.checks.find((c) => c.kind === 'postgres')!.name).toBe('postgres app@db:5432/app');
    expect((await p.manager(['ps', '-aq', '--filter', 'label=opskit.probe'])).stdout).toBe('');
  });

  it('status --json: three ready nodes, the services with their tasks per node, where nginx answers', async () => {
    const r = await p.run(['status', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = parseSingleJson(r.stdout) as {
      engine: string;
      front: string;
      live: string;
      nodes: Array<{ hostname: string; state: string; role: string }>;
      services: Array<{
        service: string;
        desired: number;
        running: number;
        image: string;
        tasks: Array<{ node: string }>;
      }>;
    };
    expect(doc).toMatchObject({ engine: 'swarm', front: p.edge, live: 'blue' });
    expect(doc.nodes.map((n) => n.state)).toEqual(['ready', 'ready', 'ready']);
    expect(doc.nodes.filter((n) => n.role === 'manager')).toHaveLength(1);
    expect(new Set(doc.nodes.map((n) => n.hostname)).size).toBe(3);
    const byName = Object.fromEntries(doc.services.map((s) => [s.service, s]));
    expect(Object.keys(byName).sort()).toEqual(['db', 'nginx', 'redis', 'web']);
    expect(byName.web).toMatchObject({ desired: 2, running: 2 });
    // The web on two different nodes, neither of them the data node (placement by labels).
    const webNodes = byName.web!.tasks.map((t) => t.node);
    expect(new Set(webNodes).size).toBe(2);
    expect(webNodes).not.toContain(byName.db!.tasks[0]!.node);
  });

  it('backups through the overlay (no database port published): create to a file and S3, verify (a restore test), restore', async () => {
    const s3 = await startS3Server(['swarm-backups']);
    const env = {
      OPSKIT_S3_BUCKET: 'swarm-backups',
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER-secret-key',
    };
    try {
      // The database publishes nothing: the only way in is the overlay network.
      const ports = await p.manager(['service', 'inspect', '-f', '{{json .Endpoint.Ports}}', `${p.project}_db`]);
      expect(ports.stdout.trim()).toMatch(/^(null|\[\])$/);
      const created = await p.run(['backup', 'create', '--json'], env);
      expect(created.exitCode, created.stderr).toBe(0);
      const doc = parseSingleJson(created.stdout) as {
        backup: { name: string; sha256: string; sizeBytes: number; file: string };
        s3: { uploaded: boolean; key: string };
      };
      expect(created.stderr).toContain(`from a container on ${p.project}_default (${p.project}_db)`);
      expect(doc.s3).toMatchObject({ uploaded: true });
      expect(doc.backup.sizeBytes).toBeGreaterThan(0);
      // The same manifest as on one host: beside the file, and on the object.
      const manifest = JSON.parse(readFileSync(`${doc.backup.file}.json`, 'utf8')) as {
        sha256: string;
        database: string;
      };
      expect(manifest).toMatchObject({ sha256: doc.backup.sha256, database: 'app' });
      const verified = await p.run(['backup', 'verify', 'latest', '--json'], env);
      expect(verified.exitCode, verified.stderr).toBe(0);
      expect(parseSingleJson(verified.stdout)).toMatchObject({
        id: doc.backup.name,
        checksum: 'ok',
        tables: { 'public.items': expect.any(Number), 'public.schema_migrations': 2 },
      });
      // A restore into a database of the same server, by its name on the overlay.
      const password = /POSTGRES_PASSWORD=(\S+)/.exec(readFileSync(path.join(p.dir, '.env'), 'utf8'))![1]!;
      const dataNode = p.env.OPSKIT_LAB_SOCKETS.split(' ')[1]!;
      const dbTask = (
        await execa('docker', [
          '-H',
          dataNode,
          'ps',
          '-q',
          '--filter',
          `label=com.docker.swarm.service.name=${p.project}_db`,
        ])
      ).stdout.trim();
      await execa('docker', [
        '-H',
        dataNode,
        'exec',
        dbTask,
        'psql',
        '-U',
        'app',
        '-d',
        'app',
        '-c',
        'CREATE DATABASE restored',
      ]);
      const into = await p.run(
        ['backup', 'restore', 'latest', '--target', `postgresql://app:${password}@db:5432/restored`, '--json'],
        env,
      );
      expect(into.exitCode, into.stderr).toBe(0);
      expect(parseSingleJson(into.stdout)).toMatchObject({ id: doc.backup.name, tables: 2 });
      const restored = await p.run(
        ['backup', 'restore', 'latest', '--yes', '--target', `postgresql://app:${password}@db:5432/app`, '--json'],
        env,
      );
      // Into the live database (its tables exist): psql stops at the first error and rolls the whole restore back.
      expect(restored.exitCode).toBe(1);
      expect(parseSingleJson(restored.stdout)).toMatchObject({ error: { code: 'E_RESTORE_FAILED' } });
      expect(restored.stdout + restored.stderr).not.toContain(password);
      // Nothing left behind on the manager.
      expect((await p.manager(['ps', '-aq', '--filter', 'label=opskit.probe=backup-jump'])).stdout).toBe('');
    } finally {
      await s3.stop();
    }
  });

  it('a failing migration: exit 1 with its log, the job removed, the running version untouched and serving', async () => {
    const webBefore = await webSpecImage();
    expect(webBefore).toMatch(/@sha256:/);
    const bad = path.join(p.dir, 'migrations', '0003_broken.sql');
    writeFileSync(bad, 'ALTER TABLE no_such_table ADD COLUMN x int;\n');
    try {
      const r = await p.run(['deploy', '--build', '--json']);
      expect(r.exitCode).toBe(1);
      const doc = parseSingleJson(r.stdout) as { error: { code: string; message: string } };
      expect(doc.error.code).toBe('E_MIGRATION_FAILED');
      expect(doc.error.message).toMatch(/no_such_table/);
      expect((await p.manager(['service', 'ls', '--format', '{{.Name}}'])).stdout).not.toContain('-migrate');
      expect(await webSpecImage()).toBe(webBefore);
      const after = parseSingleJson((await p.run(['status', '--json'])).stdout) as {
        services: Array<{ service: string; running: number }>;
      };
      expect(after.services.find((s) => s.service === 'web')).toMatchObject({ running: 2 });
      expect((await fetch(`${p.edge}/health`)).status).toBe(200);
    } finally {
      rmSync(bad);
    }
  });

  it('a node lost: health exits 3 (nodes fail, the web degraded), status shows it down; back, all pass again', async () => {
    const killed = await lab(['kill-node', '3', '--wait']);
    expect(killed.exitCode, killed.all).toBe(0);
    try {
      const r = await p.run(['health', '--json']);
      expect(r.exitCode).toBe(3);
      const doc = parseSingleJson(r.stdout) as {
        checks: Array<{ kind: string; name: string; status: string; detail: string }>;
      };
      expect(doc.checks.find((c) => c.kind === 'nodes')).toMatchObject({ status: 'fail' });
      expect(doc.checks.find((c) => c.kind === 'nodes')!.detail).toMatch(/down: opskit-lab-n3/);
      expect(doc.checks.find((c) => c.name === 'service web')).toMatchObject({ status: 'warn' });
      // The platform still answers through the edge: nginx follows the web's DNS to the task left.
      expect(doc.checks.find((c) => c.kind === 'front')).toMatchObject({ status: 'pass' });
      const status = parseSingleJson((await p.run(['status', '--json'])).stdout) as {
        nodes: Array<{ hostname: string; state: string }>;
      };
      expect(status.nodes.find((n) => n.hostname === 'opskit-lab-n3')!.state).toBe('down');
    } finally {
      const started = await lab(['start-node', '3']);
      expect(started.exitCode, started.all).toBe(0);
    }
    // Swarm does not move the web back by itself; the nodes check passes again.
    const back = parseSingleJson((await p.run(['health', '--json', '--only', 'nodes'])).stdout);
    expect(back).toMatchObject({ ok: true });
  });

  it('errors an operator meets: a worker instead of a manager (exit 2), a constraint no node meets (exit 2, the nodes named)', async () => {
    const worker = p.env.OPSKIT_LAB_SOCKETS.split(' ')[1]!;
    const r = await p.run(['status', '--json'], { DOCKER_HOST: worker });
    expect(r.exitCode).toBe(2);
    expect(parseSingleJson(r.stdout)).toMatchObject({ error: { code: 'E_SWARM_NOT_MANAGER' } });

    // A registry that does not answer: the push fails with its registry named (exit 1).
    const refused = await p.run(['deploy', '--build', '--json', '--set', 'image.name=10.231.0.1:5999/nowhere/web']);
    expect(refused.exitCode, refused.stdout).toBe(1);
    expect(parseSingleJson(refused.stdout)).toMatchObject({
      error: { code: 'E_PUSH_FAILED', message: expect.stringContaining('10.231.0.1:5999') },
    });

    const file = path.join(p.dir, 'compose/docker-compose.swarm.yml');
    const original = readFileSync(file, 'utf8');
    writeFileSync(file, original.replace('node.labels.opskit.data == true]', 'node.labels.opskit.nowhere == true]'));
    // A service gone makes this a real deploy again (the same image with everything healthy changes nothing).
    await p.manager(['service', 'rm', `${p.project}_redis`]);
    try {
      const placed = await p.run(['deploy', '--skip-migrations', '--image', deployed, '--json']);
      expect(placed.exitCode, placed.stdout).toBe(2);
      const doc = parseSingleJson(placed.stdout) as { error: { code: string; message: string } };
      expect(doc.error.code).toBe('E_SWARM_PLACEMENT');
      expect(doc.error.message).toContain('node.labels.opskit.nowhere == true');
      expect(doc.error.message).toMatch(/opskit\.data=true/);
    } finally {
      writeFileSync(file, original);
    }
  });
});
