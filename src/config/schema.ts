import { z } from 'zod';
import { Sensitive } from './sensitive.js';

/**
 * The opskit.yaml schema. Each capability's section arrives with its issue; the loader, interpolation,
 * env-file layering, precedence and redaction do not change when one does.
 */

const text = (what = 'a non-empty string') => z.string({ error: `expected ${what}` }).min(1, { error: `expected ${what}` });

/** Strings from env files, env vars and flags arrive as text: accept "30" where a number is wanted. */
const fromText = (value: unknown) => (typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : value);
const boolFromText = (value: unknown) => {
  if (typeof value !== 'string') return value;
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  return value;
};

export const positiveInt = z.preprocess(
  fromText,
  z.number({ error: 'expected a positive integer' }).int({ error: 'expected a positive integer' }).positive({ error: 'expected a positive integer' }),
);
/** `30s`, `5m`, `1h30m`: validated here, kept as text, turned into milliseconds where it is used. */
export const duration = text('a duration').refine((v) => /^(\d+(\.\d+)?(ms|s|m|h|d))+$|^\d+(\.\d+)?$/.test(v.trim()), { error: 'expected a duration, e.g. 30s, 5m, 1h' });

export const flag = z.preprocess(boolFromText, z.boolean({ error: 'expected true or false' }));

/** A secret: kept as a Sensitive from here on, so no output path can show it. */
export const secret = z.union([z.instanceof(Sensitive), text().transform((v) => new Sensitive(v))]);
/** A URL whose password is a secret (database URLs): shown with the password as ***. */
export const secretUrl = z.union([
  z.instanceof(Sensitive),
  text('a URL').refine((v) => /^[a-z][a-z0-9+.-]*:\/\//i.test(v), { error: 'expected a URL (scheme://...)' }).transform((v) => Sensitive.url(v)),
]);
const url = text('a URL').refine((v) => /^https?:\/\/[^\s]+$/i.test(v), { error: 'expected an http(s) URL' });

// A missing section is an empty one, so each key's default applies.
const section = <T extends z.ZodRawShape>(shape: T) => z.strictObject(shape).prefault({} as never);

export const configSchema = z.strictObject({
  project: section({
    /** Defaults to the project directory's name. */
    name: text().regex(/^[a-z0-9][a-z0-9_.-]*$/i, { error: 'expected letters, digits, _ . -' }).optional(),
  }),
  paths: section({
    logs: text().default('logs'),
    state: text().default('.opskit'),
    auditLog: text().default('logs/opskit-audit.jsonl'),
  }),
  docker: section({
    /** unix:///var/run/docker.sock, tcp://host:2375; unset: DOCKER_HOST or the default socket. */
    host: text().optional(),
  }),
  compose: section({
    cli: z.enum(['auto', 'v2', 'v1'], { error: 'expected one of auto, v2, v1' }).default('auto'),
    file: text().default('compose/docker-compose.prod.yml'),
    project: text().optional(),
  }),
  database: section({
    url: secretUrl.optional(),
    service: text().default('db'),
  }),
  nginx: section({
    mode: z.enum(['compose', 'host'], { error: 'expected one of compose, host' }).default('compose'),
    bin: text().default('nginx'),
    config: text().default('nginx/nginx.conf'),
    upstreamFile: text().default('nginx/upstream/web.conf'),
    service: text().default('nginx'),
  }),
  s3: section({
    bucket: text().optional(),
    prefix: z.string().default(''),
    endpoint: url.optional(),
    region: text().default('us-east-1'),
    forcePathStyle: flag.default(false),
    accessKeyId: text().optional(),
    secretAccessKey: secret.optional(),
  }),
  ngrok: section({
    bin: text().optional(),
    authtoken: secret.optional(),
  }),
  image: section({
    /** The image repository built and deployed; default: the project name. */
    name: text().regex(/^[a-z0-9][a-z0-9._/-]*(:\d+\/[a-z0-9._/-]+)?$/, { error: 'expected an image repository name (lowercase, no tag)' }).optional(),
    context: text().default('.'),
    dockerfile: text().default('Dockerfile.prod'),
    target: text().optional(),
    buildArgs: z.record(z.string(), z.union([z.string(), z.number()]).transform(String), { error: 'expected a mapping of NAME: value' }).default({}),
  }),
  deploy: section({
    /** The compose service that runs the API. */
    webService: text().default('web'),
    /** Started and waited on before the migrations. */
    dependencies: z.array(text(), { error: 'expected a list of compose services' }).default(['db', 'redis']),
    /** Started after the API is healthy (nginx); empty for none. */
    frontServices: z.array(text(), { error: 'expected a list of compose services' }).default(['nginx']),
    /** Runs in a one-off container of the new image, with the web service's environment. */
    migrateCommand: z.array(text(), { error: 'expected an argv list, e.g. [python3, migrate.py]' }).min(1).default(['python3', 'migrate.py']),
    migrateTimeout: duration.default('10m'),
    /** The API's health endpoint, polled on the container's own address. */
    healthPath: text().regex(/^\//, { error: 'expected a path starting with /' }).default('/health'),
    healthPort: positiveInt.default(8000),
    /** How long dependencies may take to become healthy (Docker health status). */
    waitTimeout: duration.default('120s'),
    /** How long the new API may take to answer its health path. */
    healthTimeout: duration.default('60s'),
  }),
  backup: section({
    dir: text().default('backups'),
    retentionDays: positiveInt.default(30),
  }),
});

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

/**
 * Environment variables that set config values (process env, or `.env` / `.env.<name>`), in the
 * precedence order of the README. When two name the same key, the earlier one in this list wins.
 */
export const ENV_BINDINGS: ReadonlyArray<readonly [variable: string, path: string]> = [
  ['OPSKIT_PROJECT', 'project.name'],
  ['OPSKIT_AUDIT_LOG', 'paths.auditLog'],
  ['DOCKER_HOST', 'docker.host'],
  ['OPSKIT_COMPOSE_CLI', 'compose.cli'],
  ['OPSKIT_COMPOSE_FILE', 'compose.file'],
  ['COMPOSE_PROJECT_NAME', 'compose.project'],
  ['DATABASE_URL', 'database.url'],
  ['OPSKIT_S3_BUCKET', 's3.bucket'],
  ['OPSKIT_S3_PREFIX', 's3.prefix'],
  ['AWS_ENDPOINT_URL_S3', 's3.endpoint'],
  ['AWS_ENDPOINT_URL', 's3.endpoint'],
  ['AWS_REGION', 's3.region'],
  ['AWS_DEFAULT_REGION', 's3.region'],
  ['AWS_ACCESS_KEY_ID', 's3.accessKeyId'],
  ['AWS_SECRET_ACCESS_KEY', 's3.secretAccessKey'],
  ['NGROK_BIN', 'ngrok.bin'],
  ['NGROK_AUTHTOKEN', 'ngrok.authtoken'],
];
