import { describe, expect, it } from 'vitest';
import { jumpSpec } from '../../src/backup/overlay.js';
import { psqlRestoreArgv, readCsv } from '../../src/backup/reach.js';

describe('backups on Swarm: the database reached from inside the overlay', () => {
  it('reads psql --csv: a header, then rows, RFC 4180 quoting (a table name with a comma, a quote, a newline)', () => {
    expect(readCsv('t\npublic.items\n"public.""odd, name"""\n')).toEqual([
      { t: 'public.items' },
      { t: 'public."odd, name"' },
    ]);
    expect(readCsv('n,m\r\n3,\r\n')).toEqual([{ n: '3', m: '' }]);
    expect(readCsv('server_version\n"15.18 (Debian 15.18-0+deb12u1)"\n')).toEqual([
      { server_version: '15.18 (Debian 15.18-0+deb12u1)' },
    ]);
    expect(readCsv('x\n"a\nb"\n')).toEqual([{ x: 'a\nb' }]);
    expect(readCsv('')).toEqual([]);
  });

  it('the restore is one transaction that stops at the first error; the password is never in the argv', () => {
    const argv = psqlRestoreArgv('psql');
    expect(argv).toEqual([
      'psql',
      '--no-password',
      '-X',
      '-q',
      '-v',
      'ON_ERROR_STOP=1',
      '--single-transaction',
      '-o',
      '/dev/null',
    ]);
    expect(argv.join(' ')).not.toMatch(/PASSWORD|postgres(ql)?:\/\//);
  });

  it("the jump container: the database's own image on the project's overlay, labelled, bounded by its sleep, removed when it ends", () => {
    const spec = jumpSpec({ image: 'reg:5000/postgres:15@sha256:aa', network: 'shop_default', project: 'shop' });
    expect(spec).toEqual({
      Image: 'reg:5000/postgres:15@sha256:aa',
      Entrypoint: ['sleep'],
      Cmd: ['21600'],
      Labels: { 'opskit.project': 'shop', 'opskit.probe': 'backup-jump' },
      HostConfig: { NetworkMode: 'shop_default', AutoRemove: true },
    });
    expect(JSON.stringify(spec)).not.toMatch(/PG|PASSWORD/);
  });
});
