import { createRequire } from 'node:module';

export const VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

/** The version of every JSON document opskit writes (stdout with --json, loadtest --out). */
export const SCHEMA_VERSION = 1;
