// The CLI as one bundle (issue 16's no-change rebuild, issue 21's start-up): module resolution of a few
// hundred small files (execa, zod, yaml, commander...) cost about 100 ms at every start. esbuild bundles
// src/bin.ts into dist/bundle/ (ESM, split so that each command's action still loads only when it runs),
// with source maps back to src/ (bin/opskit turns them on with --verbose, the one time a stack is shown).
// The heavy SDKs stay outside, loaded from node_modules only by the commands that use them.

import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const outdir = path.join(root, 'dist/bundle');
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: [path.join(root, 'src/bin.ts')],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
  // Loaded on demand by the commands that need them, from node_modules as Node loads them: a CommonJS
  // package imported dynamically from a split bundle would keep only its default export (esbuild), and
  // native parts (ssh2's) stay where npm put them. A package imported dynamically must be listed here
  // (tests/unit/bundle.test.ts checks it).
  external: ['dockerode', '@aws-sdk/*', 'autocannon', '@ngrok/ngrok', 'ssh2', 'cpu-features', 'pg', 'ioredis'],
  define: { __OPSKIT_VERSION__: JSON.stringify(version) },
  // CommonJS dependencies inside an ES module bundle still call require() for Node's own modules.
  banner: {
    js: "import { createRequire as __opskitRequire } from 'node:module'; const require = __opskitRequire(import.meta.url);",
  },
});
