import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { closedPort, opskit, parseSingleJson, REPO, tempDir } from '../helpers/cli.js';

// Each secret is a distinct value, so a leak names its path.
const SECRETS = {
  dbPassword: 'Db-Pa55-d41b7e',
  awsSecret: 'AwsSecret-9f3c1a77e0',
  ngrokToken: 'NgrokTok-2b8e55c1d3',
  flagSecret: 'FlagSecret-71aa09',
  headerToken: 'Bearer-Hdr-5e6f7a',
};

describe('secrets never reach any output', () => {
  it('human, JSON, verbose, dry-run, errors and the audit log show every secret redacted', async () => {
    const dir = tempDir('opskit-secrets-');
    const init = await opskit(['init'], { cwd: dir });
    expect(init.exitCode).toBe(0);
    writeFileSync(
      path.join(dir, '.env.prod'),
      [
        `DATABASE_URL=postgresql://app:${SECRETS.dbPassword}@db:5432/app`,
        `AWS_SECRET_ACCESS_KEY=${SECRETS.awsSecret}`,
        'AWS_ACCESS_KEY_ID=AKIAEXAMPLEID',
        `NGROK_AUTHTOKEN=${SECRETS.ngrokToken}`,
        `API_TOKEN=${SECRETS.headerToken}`,
        'OPSKIT_S3_BUCKET=secret-test',
        'AWS_ENDPOINT_URL_S3=http://127.0.0.1:1',
      ].join('\n'),
    );
    // The config also pulls the token through interpolation.
    writeFileSync(
      path.join(dir, 'opskit.yaml'),
      readFileSync(path.join(dir, 'opskit.yaml'), 'utf8').replace(
        '# authtoken: ${NGROK_AUTHTOKEN}',
        'authtoken: ${NGROK_AUTHTOKEN}',
      ),
    );

    const runs = [
      await opskit(['-e', 'prod', 'config'], { cwd: dir }),
      await opskit(['-e', 'prod', 'config', '--verbose'], { cwd: dir }),
      await opskit(['-e', 'prod', 'config', '--json'], { cwd: dir }),
      await opskit(['-e', 'prod', 'config', '--json', '--set', `s3.secretAccessKey=${SECRETS.flagSecret}`], {
        cwd: dir,
      }),
      await opskit(['-e', 'prod', 'doctor'], { cwd: dir }),
      await opskit(['-e', 'prod', 'doctor', '--json', '--verbose'], { cwd: dir }),
      // A config error whose input holds a secret: the message must still hide it.
      await opskit(['-e', 'prod', 'config', '--verbose', '--set', `database.url=not-a-url-${SECRETS.flagSecret}`], {
        cwd: dir,
        env: { OPSKIT_EXTRA_SECRET: SECRETS.flagSecret },
      }),
      await opskit(['init', '--force', '--dry-run', '--verbose'], {
        cwd: dir,
        env: { DATABASE_URL: `postgresql://app:${SECRETS.dbPassword}@db/app` },
      }),
      // A mutating command: its argv lands in the audit log.
      await opskit(['init', '--force', '--set', `s3.secretAccessKey=${SECRETS.flagSecret}`], { cwd: dir }),
      await opskit(['init', '--force', '--verbose'], { cwd: dir, env: { AWS_SECRET_ACCESS_KEY: SECRETS.awsSecret } }),
      await opskit(['--json', 'nope', `--token=${SECRETS.flagSecret}`], { cwd: dir }),
      await opskit(['--json', 'config', `--password=${SECRETS.flagSecret}`], { cwd: dir }),
    ];
    const audit = existsSync(path.join(dir, 'logs/opskit-audit.jsonl'))
      ? readFileSync(path.join(dir, 'logs/opskit-audit.jsonl'), 'utf8')
      : '';
    expect(audit.trim().split('\n').length).toBeGreaterThanOrEqual(2);

    // The outputs did carry the redacted forms, so they were exercised.
    const all = runs.map((r) => r.stdout + r.stderr).join('\n') + audit;
    expect(all).toContain('postgresql://app:***@db:5432/app');
    expect(all).toMatch(/"secretAccessKey": "\*\*\*"/);
    expect(all).toMatch(/"authtoken": "\*\*\*"/);
    for (const [name, value] of Object.entries(SECRETS)) {
      runs.forEach((r, i) => {
        expect(r.stdout, `${name} in stdout of run ${i}`).not.toContain(value);
        expect(r.stderr, `${name} in stderr of run ${i}`).not.toContain(value);
      });
      expect(audit, `${name} in the audit log`).not.toContain(value);
    }
  });
});

const modeOf = (file: string) => statSync(file).mode & 0o777;

/** Every file below `dir`, relative. */
function filesBelow(dir: string, prefix = ''): string[] {
  return readdirSync(path.join(dir, prefix), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesBelow(dir, path.join(prefix, e.name)) : [path.join(prefix, e.name)],
  );
}

describe('secrets at rest (issue 15)', () => {
  it('init --example writes the env files 0600; doctor warns (exit 0) about an env file with a secret that others may read', async () => {
    const dir = tempDir('opskit-at-rest-');
    expect((await opskit(['init', '--example'], { cwd: dir })).exitCode).toBe(0);
    expect(modeOf(path.join(dir, '.env'))).toBe(0o600);
    expect(modeOf(path.join(dir, '.env.offline'))).toBe(0o600);
    expect(modeOf(path.join(dir, '.env.example'))).toBe(0o644);
    const password = /^POSTGRES_PASSWORD=(.+)$/m.exec(readFileSync(path.join(dir, '.env'), 'utf8'))![1]!;

    const envCheck = async () => {
      const r = await opskit(['doctor', '--json'], { cwd: dir });
      expect(r.stdout + r.stderr).not.toContain(password);
      expect(r.stdout + r.stderr).not.toContain(SECRETS.awsSecret);
      const doc = parseSingleJson(r.stdout);
      return {
        exitCode: r.exitCode,
        check: (doc.checks as Array<{ name: string }>).find((c) => c.name === 'env-files'),
      };
    };
    expect((await envCheck()).check).toMatchObject({ status: 'pass', detail: 'owner only: .env (0600)' });

    chmodSync(path.join(dir, '.env'), 0o644);
    writeFileSync(
      path.join(dir, '.env.prod'),
      `AWS_SECRET_ACCESS_KEY=${SECRETS.awsSecret}\nAWS_ACCESS_KEY_ID=AKIAEXAMPLEID\n`,
      { mode: 0o640 },
    );
    chmodSync(path.join(dir, '.env.prod'), 0o640);
    const warned = await envCheck();
    expect(warned.exitCode).toBe(0);
    expect(warned.check).toMatchObject({
      status: 'warn',
      required: false,
      detail:
        '.env is 0644, open to group or others, and holds POSTGRES_PASSWORD, DATABASE_URL; .env.prod is 0640, open to group or others, and holds AWS_SECRET_ACCESS_KEY',
      hint: 'chmod 600 .env .env.prod',
    });
    const human = await opskit(['doctor'], { cwd: dir });
    expect(human.exitCode).toBe(0);
    expect(human.stdout).toContain('env-files: chmod 600 .env .env.prod');

    chmodSync(path.join(dir, '.env'), 0o600);
    chmodSync(path.join(dir, '.env.prod'), 0o600);
    expect((await envCheck()).check).toMatchObject({
      status: 'pass',
      detail: 'owner only: .env (0600), .env.prod (0600)',
    });
  });

  it('the ngrok agent config opskit writes under .opskit/ is 0600, and no file it writes holds the authtoken', async () => {
    const dir = tempDir('opskit-at-rest-');
    mkdirSync(path.join(dir, 'home'));
    writeFileSync(
      path.join(dir, 'opskit.yaml'),
      `ngrok:\n  webAddr: 127.0.0.1:${await closedPort()}\ntunnel:\n  port: ${await closedPort()}\n  startTimeout: 10s\n`,
    );
    const env = {
      NGROK_BIN: path.join(REPO, 'tests', 'fixtures', 'fake-ngrok.mjs'),
      NGROK_AUTHTOKEN: SECRETS.ngrokToken,
      FAKE_NGROK_STATE: path.join(tempDir('opskit-at-rest-agent-'), 'state'),
      HOME: path.join(dir, 'home'),
    };
    const started = await opskit(['tunnel', 'start', '--detach', '--json'], { cwd: dir, env });
    try {
      expect(started.exitCode, started.stderr).toBe(0);
      expect(modeOf(path.join(dir, '.opskit', 'ngrok-agent.yml'))).toBe(0o600);
    } finally {
      expect((await opskit(['tunnel', 'stop'], { cwd: dir, env })).exitCode).toBe(0);
    }
    const files = filesBelow(dir);
    expect(files).toContain(path.join('.opskit', 'ngrok-agent.yml'));
    for (const file of files)
      expect(readFileSync(path.join(dir, file), 'utf8'), file).not.toContain(SECRETS.ngrokToken);
  });
});
