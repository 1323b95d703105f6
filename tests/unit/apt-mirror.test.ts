import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script, tested through its exports
import { codenameOf, mirrorFromSources } from '../../scripts/apt-mirror.mjs';

// Hosts under .invalid: the project names no real mirror.
const deb822 = `Types: deb
# a comment
URIs: http://mirror-a.example.invalid/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror-a.example.invalid/debian-security
Suites: bookworm-security
Components: main
`;

describe('the Debian mirror from the apt sources', () => {
  it('takes the first deb URI of the release own suite from a deb822 file, without a trailing slash', () => {
    expect(mirrorFromSources([{ name: '/etc/apt/sources.list.d/debian.sources', text: deb822 }], 'bookworm')).toBe(
      'http://mirror-a.example.invalid/debian',
    );
  });

  it('reads one-line lists, options in brackets included, and skips deb-src, other suites and disabled stanzas', () => {
    const list = [
      '# deb http://old.example.invalid/debian bookworm main',
      'deb-src http://src.example.invalid/debian bookworm main',
      'deb [arch=amd64 signed-by=/k.gpg] http://mirror-b.example.invalid/debian/ bookworm main contrib',
    ].join('\n');
    const disabled = 'Types: deb\nURIs: http://off.example.invalid/debian\nSuites: bookworm\nEnabled: no\n';
    expect(
      mirrorFromSources(
        [
          { name: '/etc/apt/sources.list.d/off.sources', text: disabled },
          { name: '/etc/apt/sources.list', text: list },
        ],
        'bookworm',
      ),
    ).toBe('http://mirror-b.example.invalid/debian');
    expect(mirrorFromSources([{ name: 'x.sources', text: deb822 }], 'trixie')).toBeUndefined();
  });

  it('reads the codename from os-release', () => {
    expect(codenameOf('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n')).toBe(
      'bookworm',
    );
    expect(codenameOf('ID=debian\n')).toBeUndefined();
  });
});
