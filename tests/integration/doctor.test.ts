import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPort, opskit, parseSingleJson, tempDir } from '../helpers/cli.js';
import { type S3Server, startS3Server } from '../helpers/s3.js';

type Check = { name: string; status: string; version: string | null; detail: string; required: boolean };
const byName = (doc: Record<string, unknown>) => Object.fromEntries((doc.checks as Check[]).map((c) => [c.name, c]));

describe('opskit doctor against the real machine', () => {
  let s3: S3Server;
  beforeAll(async () => {
    s3 = await startS3Server(['doctor-bucket']);
  });
  afterAll(async () => {
    await s3?.stop();
  });

  it('finds the running Docker engine and reports its real version', async () => {
    const engine = (await execa('docker', ['version', '--format', '{{.Server.Version}}|{{.Server.APIVersion}}'])).stdout
      .trim()
      .split('|');
    const r = await opskit(['doctor', '--json'], { cwd: tempDir() });
    expect(r.exitCode).toBe(0);
    const checks = byName(parseSingleJson(r.stdout));
    expect(checks.docker).toMatchObject({
      status: 'pass',
      version: engine[0],
      detail: expect.stringContaining(`API ${engine[1]}`),
    });
  });

  it('names the compose CLI it found, v2 or v1, as the machine has it', async () => {
    const v2 = await execa('docker', ['compose', 'version', '--short'], { reject: false });
    const v1 = await execa('docker-compose', ['version', '--short'], { reject: false });
    const r = await opskit(['doctor', '--json'], { cwd: tempDir() });
    const compose = byName(parseSingleJson(r.stdout)).compose!;
    if (v2.exitCode === 0)
      expect(compose.detail).toContain(`docker compose ${v2.stdout.trim().replace(/^v/, '')} (v2)`);
    else expect(compose.detail).toBe(`docker-compose ${v1.stdout.trim()} (v1)`);
    const forcedV2 = await opskit(['doctor', '--json', '--set', 'compose.cli=v2'], { cwd: tempDir() });
    if (v2.exitCode !== 0) {
      expect(forcedV2.exitCode).toBe(3);
      expect(byName(parseSingleJson(forcedV2.stdout)).compose!.status).toBe('fail');
    }
  });

  it('exits 3 when the engine named by DOCKER_HOST does not answer', async () => {
    const r = await opskit(['doctor', '--json'], {
      cwd: tempDir(),
      env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock' },
    });
    expect(r.exitCode).toBe(3);
    const doc = parseSingleJson(r.stdout);
    expect(doc.ok).toBe(false);
    expect(byName(doc).docker).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('unix:///nonexistent/docker.sock'),
    });
    expect(doc.error).toMatchObject({ code: 'E_DOCTOR_FAILED' });
  });

  it('checks a configured S3 endpoint for real: reachable passes, a dead one fails with exit 3', async () => {
    const env = {
      OPSKIT_S3_BUCKET: 'doctor-bucket',
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER-secret-key',
    };
    const up = await opskit(['doctor', '--json'], { cwd: tempDir(), env });
    expect(up.exitCode).toBe(0);
    expect(byName(parseSingleJson(up.stdout)).s3).toMatchObject({
      status: 'pass',
      required: true,
      detail: expect.stringContaining(`at ${s3.endpoint} (answered HTTP`),
    });

    const noCreds = await opskit(['doctor', '--json'], {
      cwd: tempDir(),
      env: { ...env, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', HOME: tempDir() },
    });
    expect(noCreds.exitCode).toBe(3);
    expect(byName(parseSingleJson(noCreds.stdout)).s3).toMatchObject({
      status: 'fail',
      detail: 'bucket doctor-bucket: no credentials found',
    });

    const dead = await opskit(['doctor', '--json'], {
      cwd: tempDir(),
      env: { ...env, AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${await closedPort()}` },
    });
    expect(dead.exitCode).toBe(3);
    expect(byName(parseSingleJson(dead.stdout)).s3).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('does not answer: ECONNREFUSED'),
    });
  });

  it('reports an invalid config and still checks the rest (exit 3)', async () => {
    const r = await opskit(['doctor', '--json', '--set', 'backup.retentionDays=0'], { cwd: tempDir() });
    expect(r.exitCode).toBe(3);
    const checks = byName(parseSingleJson(r.stdout));
    expect(checks.config).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('backup.retentionDays: expected a positive integer'),
    });
    expect(checks.docker!.status).toBe('pass');
  });
});
