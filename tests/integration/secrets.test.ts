import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { opskit, tempDir } from '../helpers/cli.js';

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
    writeFileSync(path.join(dir, 'opskit.yaml'), readFileSync(path.join(dir, 'opskit.yaml'), 'utf8').replace('# authtoken: ${NGROK_AUTHTOKEN}', 'authtoken: ${NGROK_AUTHTOKEN}'));

    const runs = [
      await opskit(['-e', 'prod', 'config'], { cwd: dir }),
      await opskit(['-e', 'prod', 'config', '--verbose'], { cwd: dir }),
      await opskit(['-e', 'prod', 'config', '--json'], { cwd: dir }),
      await opskit(['-e', 'prod', 'config', '--json', '--set', `s3.secretAccessKey=${SECRETS.flagSecret}`], { cwd: dir }),
      await opskit(['-e', 'prod', 'doctor'], { cwd: dir }),
      await opskit(['-e', 'prod', 'doctor', '--json', '--verbose'], { cwd: dir }),
      // A config error whose input holds a secret: the message must still hide it.
      await opskit(['-e', 'prod', 'config', '--verbose', '--set', `database.url=not-a-url-${SECRETS.flagSecret}`], { cwd: dir, env: { OPSKIT_EXTRA_SECRET: SECRETS.flagSecret } }),
      await opskit(['init', '--force', '--dry-run', '--verbose'], { cwd: dir, env: { DATABASE_URL: `postgresql://app:${SECRETS.dbPassword}@db/app` } }),
      // A mutating command: its argv lands in the audit log.
      await opskit(['init', '--force', '--set', `s3.secretAccessKey=${SECRETS.flagSecret}`], { cwd: dir }),
      await opskit(['init', '--force', '--verbose'], { cwd: dir, env: { AWS_SECRET_ACCESS_KEY: SECRETS.awsSecret } }),
      await opskit(['--json', 'nope', `--token=${SECRETS.flagSecret}`], { cwd: dir }),
      await opskit(['--json', 'config', `--password=${SECRETS.flagSecret}`], { cwd: dir }),
    ];
    const audit = existsSync(path.join(dir, 'logs/opskit-audit.jsonl')) ? readFileSync(path.join(dir, 'logs/opskit-audit.jsonl'), 'utf8') : '';
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
