import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import formatsModule from 'ajv-formats';
import { REPO } from './cli.js';

// CommonJS with an ES default in its typings: take the plugin either way.
const addFormats = ((formatsModule as unknown as { default?: unknown }).default ?? formatsModule) as (ajv: Ajv) => Ajv;

/** A strict validator for one of the published schemas (schemas/<name>.schema.json). */
export function schemaValidator(name: string) {
  const schema = JSON.parse(readFileSync(path.join(REPO, 'schemas', `${name}.schema.json`), 'utf8'));
  return addFormats(new Ajv({ allErrors: true, strict: true })).compile(schema);
}
