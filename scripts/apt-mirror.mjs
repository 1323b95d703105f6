#!/usr/bin/env node
// Prints the Debian mirror this machine's apt already uses, so that the project never names a mirror's
// host: the first URI of a `deb` source whose suites include the release's own (bookworm), read from
// the deb822 files (/etc/apt/sources.list.d/*.sources) and the one-line lists (/etc/apt/sources.list,
// /etc/apt/sources.list.d/*.list). Exit 1 when none is found. Used by scripts/test-env.sh.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Pure: the sources of one deb822 file, as { types, uris, suites } (each a list of words). */
export function parseDeb822(text) {
  const stanzas = [];
  for (const block of text.split(/\n[ \t]*\n/)) {
    const fields = {};
    let last;
    for (const raw of block.split('\n')) {
      if (/^\s*#/.test(raw)) continue;
      if (/^[ \t]/.test(raw) && last) {
        fields[last] += ` ${raw.trim()}`;
        continue;
      }
      const m = raw.match(/^([A-Za-z-]+):\s*(.*)$/);
      if (m) {
        last = m[1].toLowerCase();
        fields[last] = m[2].trim();
      }
    }
    if (fields.uris && fields.suites && (fields.enabled ?? 'yes').toLowerCase() !== 'no') {
      const words = (s) => (s ?? '').split(/\s+/).filter(Boolean);
      stanzas.push({ types: words(fields.types ?? 'deb'), uris: words(fields.uris), suites: words(fields.suites) });
    }
  }
  return stanzas;
}

/** Pure: the sources of a one-line list (`deb [options] URI suite component...`). */
export function parseOneLine(text) {
  const out = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    const m = line.match(/^(deb|deb-src)\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/);
    if (m) out.push({ types: [m[1]], uris: [m[2]], suites: [m[3]] });
  }
  return out;
}

/** Pure: the mirror URI (no trailing slash) for `codename`'s own suite, from the files' texts. */
export function mirrorFromSources(files, codename) {
  const sources = files.flatMap((f) => (f.name.endsWith('.sources') ? parseDeb822(f.text) : parseOneLine(f.text)));
  const match = sources.find(
    (s) => s.types.includes('deb') && s.suites.includes(codename) && /^https?:\/\//.test(s.uris[0] ?? ''),
  );
  return match ? match.uris[0].replace(/\/+$/, '') : undefined;
}

/** Pure: VERSION_CODENAME from /etc/os-release's text. */
export function codenameOf(osRelease) {
  return osRelease.match(/^VERSION_CODENAME=["']?([a-z]+)/m)?.[1];
}

function readSources(root = '/etc/apt') {
  const files = [];
  const read = (file) => {
    try {
      files.push({ name: file, text: readFileSync(file, 'utf8') });
    } catch {
      // absent or unreadable: not a source
    }
  };
  read(path.join(root, 'sources.list'));
  let names = [];
  try {
    names = readdirSync(path.join(root, 'sources.list.d')).sort();
  } catch {
    names = [];
  }
  for (const name of names)
    if (name.endsWith('.sources') || name.endsWith('.list')) read(path.join(root, 'sources.list.d', name));
  return files;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  let codename = 'bookworm';
  try {
    codename = codenameOf(readFileSync('/etc/os-release', 'utf8')) ?? codename;
  } catch {
    // keep bookworm
  }
  const mirror = mirrorFromSources(readSources(), codename);
  if (!mirror) {
    process.stderr.write(
      `no deb source for ${codename} in /etc/apt/sources.list or /etc/apt/sources.list.d/: set OPSKIT_TEST_MIRROR\n`,
    );
    process.exit(1);
  }
  process.stdout.write(`${mirror}\n`);
}
