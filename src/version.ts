import { createRequire } from 'node:module';

/** Set by scripts/bundle.mjs in the bundle (which does not sit beside package.json); tsc's output reads the file. */
declare const __OPSKIT_VERSION__: string | undefined;

export const VERSION: string =
  typeof __OPSKIT_VERSION__ === 'string'
    ? __OPSKIT_VERSION__
    : (createRequire(import.meta.url)('../package.json') as { version: string }).version;

/** The version of every JSON document opskit writes (stdout with --json, loadtest --out). */
export const SCHEMA_VERSION = 1;
