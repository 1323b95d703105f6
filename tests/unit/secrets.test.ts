import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { isSecretName, Redactor } from '../../src/config/redact.js';
import { redactUrlPassword, Sensitive } from '../../src/sensitive.js';

describe('Sensitive', () => {
  const secret = new Sensitive('tok_abcdef123456');
  it('never shows its value through any conversion', () => {
    expect(String(secret)).toBe('***');
    expect(`${secret}`).toBe('***');
    expect(JSON.stringify({ secret })).toBe('{"secret":"***"}');
    expect(inspect({ secret })).not.toContain('tok_abcdef123456');
    expect(secret.reveal()).toBe('tok_abcdef123456');
  });
  it('shows a URL with only the password hidden', () => {
    const url = Sensitive.url('postgresql://app:p%40ss@db:5432/app');
    expect(url.toString()).toBe('postgresql://app:***@db:5432/app');
    expect(url.secretParts()).toEqual(['postgresql://app:p%40ss@db:5432/app', 'p@ss', 'p%40ss']);
  });
});

describe('redactUrlPassword', () => {
  it('hides passwords of every URL in a text', () => {
    expect(redactUrlPassword('a postgresql://u:x1@h/d and redis://:pw2@r:6379/0')).toBe(
      'a postgresql://u:***@h/d and redis://:***@r:6379/0',
    );
    expect(redactUrlPassword('http://host/path@x')).toBe('http://host/path@x');
  });
});

describe('Redactor', () => {
  it('scrubs registered values, longest first, and URL passwords', () => {
    const r = new Redactor(['supersecret', 'supersecret-longer']);
    expect(r.scrub('x supersecret-longer y supersecret z')).toBe('x *** y *** z');
    expect(r.scrub('psql postgresql://a:b1234@h/d')).toBe('psql postgresql://a:***@h/d');
  });
  it('finds secrets in an environment by name and by URL', () => {
    const r = new Redactor();
    r.addFromEnv({
      AWS_SECRET_ACCESS_KEY: 'AKSECRETVALUE',
      NGROK_AUTHTOKEN: 'ngroktoken1',
      AWS_ACCESS_KEY_ID: 'AKIAPUBLICID',
      DATABASE_URL: 'postgresql://u:dbpass99@h/d',
    });
    expect(r.scrub('AKSECRETVALUE ngroktoken1 AKIAPUBLICID dbpass99')).toBe('*** *** AKIAPUBLICID ***');
  });
  it('scrubs values bound for JSON deeply', () => {
    const r = new Redactor(['hunter22']);
    expect(r.scrubValue({ a: [{ b: 'x hunter22' }], s: new Sensitive('zzz'), n: 3, u: undefined })).toEqual({
      a: [{ b: 'x ***' }],
      s: '***',
      n: 3,
    });
  });
  it('scrubs argv: secret-named flags and their values', () => {
    const r = new Redactor();
    expect(
      r.scrubArgv(['--token', 'abc', '--password=xyz', '--database-url', 'postgresql://u:pw12@h/d', '--name', 'ok']),
    ).toEqual(['--token', '***', '--password=***', '--database-url', 'postgresql://u:***@h/d', '--name', 'ok']);
  });
  it('does not scrub very short values that would hit ordinary words', () => {
    const r = new Redactor(['ab']);
    expect(r.scrub('abc')).toBe('abc');
  });
  it('knows secret names', () => {
    expect(isSecretName('POSTGRES_PASSWORD')).toBe(true);
    expect(isSecretName('AWS_ACCESS_KEY_ID')).toBe(false);
    expect(isSecretName('AWS_SECRET_ACCESS_KEY')).toBe(true);
    expect(isSecretName('POSTGRES_USER')).toBe(false);
  });
});
