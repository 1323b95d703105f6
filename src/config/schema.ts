import { z } from 'zod';
import { Sensitive } from '../sensitive.js';
import { type BuildSecretSpec, isSecretProblem, SECRET_SPEC_FORM, secretSpecFrom } from './build-secrets.js';

/**
 * Longer than 400 lines: the whole of opskit.yaml in one place, in the order an operator reads it, so that
 * each key's type, default and comment stand together.
 */

/**
 * The opskit.yaml schema. Each capability's section arrives with its issue; the loader, interpolation,
 * env-file layering, precedence and redaction do not change when one does.
 */

const text = (what = 'a non-empty string') =>
  z.string({ error: `expected ${what}` }).min(1, { error: `expected ${what}` });

/** Strings from env files, env vars and flags arrive as text: accept "30" where a number is wanted. */
const fromText = (value: unknown) =>
  typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : value;
const boolFromText = (value: unknown) => {
  if (typeof value !== 'string') return value;
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  return value;
};

export const positiveInt = z.preprocess(
  fromText,
  z
    .number({ error: 'expected a positive integer' })
    .int({ error: 'expected a positive integer' })
    .positive({ error: 'expected a positive integer' }),
);
/** `30s`, `5m`, `1h30m`: validated here, kept as text, turned into milliseconds where it is used. */
export const duration = text('a duration').refine((v) => /^(\d+(\.\d+)?(ms|s|m|h|d))+$|^\d+(\.\d+)?$/.test(v.trim()), {
  error: 'expected a duration, e.g. 30s, 5m, 1h',
});

export const flag = z.preprocess(boolFromText, z.boolean({ error: 'expected true or false' }));

/** A secret: kept as a Sensitive from here on, so no output path can show it. */
export const secret = z.union([z.instanceof(Sensitive), text().transform((v) => new Sensitive(v))]);
/** A URL whose password is a secret (database URLs): shown with the password as ***. */
export const secretUrl = z.union([
  z.instanceof(Sensitive),
  text('a URL')
    .refine((v) => /^[a-z][a-z0-9+.-]*:\/\//i.test(v), { error: 'expected a URL (scheme://...)' })
    .transform((v) => Sensitive.url(v)),
]);
const url = text('a URL').refine((v) => /^https?:\/\/[^\s]+$/i.test(v), { error: 'expected an http(s) URL' });

// A missing section is an empty one, so each key's default applies.
const nonNegativeInt = z.preprocess(
  fromText,
  z
    .number({ error: 'expected a whole number, 0 or more' })
    .int({ error: 'expected a whole number, 0 or more' })
    .min(0, { error: 'expected a whole number, 0 or more' }),
);
const percent = z.preprocess(
  fromText,
  z
    .number({ error: 'expected a percentage (0-100)' })
    .min(0, { error: 'expected a percentage (0-100)' })
    .max(100, { error: 'expected a percentage (0-100)' }),
);
/** `200`, `"200-299"`, `"2xx"`. */
const statusExpectation = z.union(
  [
    z.number().int().min(100).max(599),
    text().regex(/^([1-5]xx|\d{3}(-\d{3})?)(,([1-5]xx|\d{3}(-\d{3})?))*$/, {
      error: 'expected a status, a range or a class: 200, "200-299", "2xx"',
    }),
  ],
  {
    error: 'expected a status, a range or a class: 200, "200-299", "2xx"',
  },
);
/** `15%` of the filesystem, or an amount: `10GiB`, `500MB`. */
const spaceThreshold = text().regex(/^(\d+(\.\d+)?%|\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB))$/i, {
  error: 'expected a percentage (15%) or a size (10GiB)',
});

const checkCommon = {
  name: text().optional(),
  timeout: duration.optional(),
  retries: nonNegativeInt.optional(),
  retryDelay: duration.optional(),
  startPeriod: duration.optional(),
};

export const healthCheckSchema = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({
      kind: z.literal('http'),
      ...checkCommon,
      url: text('a URL').refine((v) => /^https?:\/\/\S+$/i.test(v), { error: 'expected an http(s) URL' }),
      method: z.enum(['GET', 'HEAD', 'POST']).default('GET'),
      headers: z.record(z.string(), z.union([z.instanceof(Sensitive), z.string()])).default({}),
      expectStatus: statusExpectation.default('2xx'),
      bodyContains: z.string().optional(),
      json: z
        .strictObject({ path: text(), equals: z.union([z.string(), z.number(), z.boolean(), z.null()]) })
        .optional(),
      warnLatency: duration.optional(),
      failLatency: duration.optional(),
      /** false accepts a self-signed certificate (its expiry is still checked). */
      tlsVerify: flag.default(true),
      certWarnDays: nonNegativeInt.default(14),
      certFailDays: nonNegativeInt.default(3),
    }),
    z.strictObject({
      kind: z.literal('tcp'),
      ...checkCommon,
      target: text('host:port').regex(/^\[?[\w.:-]+\]?:\d+$/, { error: 'expected host:port' }),
    }),
    z.strictObject({
      kind: z.literal('container'),
      ...checkCommon,
      service: text().optional(),
      container: text().optional(),
    }),
    // network: ask from a one-off container on this Docker network (a Swarm overlay the host is not on), with
    // the client of `service`'s image (default: database.service, or redis).
    z.strictObject({
      kind: z.literal('postgres'),
      ...checkCommon,
      url: secretUrl,
      network: text().optional(),
      service: text().optional(),
    }),
    z.strictObject({
      kind: z.literal('redis'),
      ...checkCommon,
      url: secretUrl,
      network: text().optional(),
      service: text().optional(),
    }),
    z.strictObject({
      kind: z.literal('disk'),
      ...checkCommon,
      path: text().default('.'),
      warnFree: spaceThreshold.default('15%'),
      failFree: spaceThreshold.default('5%'),
    }),
    z.strictObject({
      kind: z.literal('resources'),
      ...checkCommon,
      services: z.array(text()).optional(),
      containers: z.array(text()).optional(),
      warnCpu: percent.default(80),
      failCpu: percent.default(95),
      warnMemory: percent.default(80),
      failMemory: percent.default(95),
    }),
    z.strictObject({ kind: z.literal('nginx'), ...checkCommon }),
    // engine: swarm. A service's tasks against its spec, and the cluster's nodes.
    z.strictObject({
      kind: z.literal('service'),
      ...checkCommon,
      service: text(),
      /** Tasks that failed within this window make the check warn (a crash loop that Swarm keeps healing). */
      recent: duration.default('10m'),
    }),
    z.strictObject({ kind: z.literal('nodes'), ...checkCommon }),
    // The platform as its users meet it: a path asked through nginx (nginx.url, or the nginx service's address).
    z.strictObject({
      kind: z.literal('front'),
      ...checkCommon,
      path: text().regex(/^\//, { error: 'expected a path starting with /' }).optional(),
      expectStatus: text().default('2xx'),
    }),
  ],
  {
    error: 'expected kind: one of http, tcp, container, postgres, redis, disk, resources, nginx, front, service, nodes',
  },
);
export type HealthCheckConfig = z.output<typeof healthCheckSchema>;

/** One build secret (image.secrets): where its value comes from, never the value. */
const buildSecret = z.unknown().transform((value, ctx): BuildSecretSpec => {
  const spec = secretSpecFrom(value);
  if (isSecretProblem(spec)) {
    ctx.addIssue({ code: 'custom', message: spec.problem });
    return z.NEVER;
  }
  return spec;
});

const section = <T extends z.ZodRawShape>(shape: T) => z.strictObject(shape).prefault({} as never);

export const configSchema = z.strictObject({
  project: section({
    /** Defaults to the project directory's name. */
    name: text()
      .regex(/^[a-z0-9][a-z0-9_.-]*$/i, { error: 'expected letters, digits, _ . -' })
      .optional(),
  }),
  paths: section({
    logs: text().default('logs'),
    state: text().default('.opskit'),
    auditLog: text().default('logs/opskit-audit.jsonl'),
    /**
     * The directory of the web containers' unix sockets and the `live.sock` link nginx connects to. Its
     * parent (run/) is the guard: private to the operator, so other local users cannot reach the sockets.
     */
    sockets: text().default('run/sockets'),
  }),
  /**
   * Where the platform runs: compose (one host, `docker compose`) or swarm (Docker Swarm services on a
   * cluster, through a manager's Engine API; the compose file, normalized by `compose config`, describes them).
   */
  engine: z.enum(['compose', 'swarm'], { error: 'expected one of compose, swarm' }).default('compose'),
  /** The registry a swarm's nodes pull the released images from (image.name names it: <address>/<path>). */
  registry: section({
    address: text().optional(),
    username: text().optional(),
    password: secret.optional(),
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
    /** The upstream file's template ({{server}}, {{color}}, {{image}}); default: opskit's own. */
    upstreamTemplate: text().optional(),
    /** Where nginx answers, to verify a switch; default: the nginx container's own address (compose mode). */
    url: url.optional(),
    /** host mode: nginx's -p prefix, and its pid file (default: the one `nginx -V` names). */
    prefix: text().optional(),
    pidFile: text().optional(),
    /** compose mode: where the nginx container mounts paths.sockets (host mode: paths.sockets itself). */
    socketDir: text().regex(/^\//, { error: 'expected an absolute path' }).default('/run/opskit'),
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
    /** An external ngrok v3 agent; when set (or NGROK_BIN), tunnels use it instead of the in-process SDK. */
    bin: text().optional(),
    authtoken: secret.optional(),
    /** The agent's local API (web_addr), where `tunnel url` and the monitor look for the tunnel. */
    webAddr: text()
      .regex(/^[^\s:/]+:\d{1,5}$/, { error: 'expected host:port, e.g. 127.0.0.1:4040' })
      .default('127.0.0.1:4040'),
    /** The agent's own config file, merged before opskit's (default: ~/.config/ngrok/ngrok.yml when it exists). */
    configFile: text().optional(),
    /** A reserved domain or URL for the endpoint, e.g. https://myapp.ngrok.app (agent --url, SDK domain). */
    url: text().optional(),
  }),
  tunnel: section({
    /** The local port the tunnel forwards to (nginx, or the API itself). */
    port: z
      .preprocess(
        fromText,
        z
          .number({ error: 'expected a port from 1 to 65535' })
          .int({ error: 'expected a port from 1 to 65535' })
          .min(1, { error: 'expected a port from 1 to 65535' })
          .max(65535, { error: 'expected a port from 1 to 65535' }),
      )
      .default(8000),
    /** auto: the agent when ngrok.bin / NGROK_BIN names one, else the SDK. */
    driver: z.enum(['auto', 'agent', 'sdk'], { error: 'expected one of auto, agent, sdk' }).default('auto'),
    checkInterval: duration.default('30s'),
    /** Asked through the public URL by each check. */
    checkPath: text().regex(/^\//, { error: 'expected a path starting with /' }).default('/health'),
    checkTimeout: duration.default('10s'),
    /** Consecutive reconnect attempts before giving up (exit 1). */
    reconnectAttempts: positiveInt.default(5),
    /** The delay before the first attempt; each next one is multiplied by backoff, up to maxReconnectDelay. */
    reconnectDelay: duration.default('10s'),
    backoff: z
      .preprocess(
        fromText,
        z.number({ error: 'expected a factor of 1 or more' }).min(1, { error: 'expected a factor of 1 or more' }),
      )
      .default(2),
    maxReconnectDelay: duration.default('60s'),
    /** Healthy this long after a reconnect, the attempt count starts again from 0. */
    resetAfter: duration.default('5m'),
    /** How long a start may take to report its public URL. */
    startTimeout: duration.default('30s'),
    pidFile: text().default('logs/ngrok.pid'),
    urlFile: text().default('logs/ngrok-url.txt'),
    /** The agent's own log lines (JSON), secrets scrubbed. */
    logFile: text().default('logs/ngrok.log'),
  }),
  image: section({
    /** The image repository built and deployed; default: the project name. */
    name: text()
      .regex(/^[a-z0-9][a-z0-9._/-]*(:\d+\/[a-z0-9._/-]+)?$/, {
        error: 'expected an image repository name (lowercase, no tag)',
      })
      .optional(),
    context: text().default('.'),
    dockerfile: text().default('Dockerfile.prod'),
    target: text().optional(),
    buildArgs: z
      .record(z.string(), z.union([z.string(), z.number()]).transform(String), {
        error: 'expected a mapping of NAME: value',
      })
      .default({}),
    /** auto: BuildKit (docker buildx) when it answers, else the Engine API's classic builder, with a warning. */
    builder: z
      .enum(['auto', 'buildkit', 'classic'], { error: 'expected one of auto, buildkit, classic' })
      .default('auto'),
    /**
     * Build secrets for `RUN --mount=type=secret,id=NAME`: `id=NAME,src=FILE`, `id=NAME,env=VAR`, or { id, src | env }.
     */
    secrets: z.array(buildSecret, { error: `expected a list of build secrets: ${SECRET_SPEC_FORM}` }).default([]),
  }),
  deploy: section({
    /** The compose service that runs the API. */
    webService: text().default('web'),
    /** Started and waited on before the migrations. */
    dependencies: z.array(text(), { error: 'expected a list of compose services' }).default(['db', 'redis']),
    /** Started after the API is healthy (nginx); empty for none. */
    frontServices: z.array(text(), { error: 'expected a list of compose services' }).default(['nginx']),
    /** Runs in a one-off container of the new image, with the web service's environment. */
    migrateCommand: z
      .array(text(), { error: 'expected an argv list, e.g. [python3, migrate.py]' })
      .min(1)
      .default(['python3', 'migrate.py']),
    migrateTimeout: duration.default('10m'),
    /** The API's health endpoint, polled on the container's own address. */
    healthPath: text().regex(/^\//, { error: 'expected a path starting with /' }).default('/health'),
    healthPort: positiveInt.default(8000),
    /**
     * http: the health path must answer 200 (and name its colour when it names one); tcp: a TCP connect to
     * healthPort is enough, for apps with no health endpoint (said in the output: the app's answers are not checked).
     */
    healthCheck: z.enum(['http', 'tcp'], { error: 'expected http or tcp' }).default('http'),
    /** How long dependencies may take to become healthy (Docker health status). */
    waitTimeout: duration.default('120s'),
    /** How long the new API may take to answer its health path. */
    healthTimeout: duration.default('60s'),
  }),
  cutover: section({
    /**
     * socket: nginx connects to `live.sock`, a link that the switch re-points atomically, with no reload
     * (no client connection is closed); relay: the same link, for apps that listen only on TCP (a relay
     * beside each web container opens its socket); reload: the upstream file names the colour, and nginx reloads.
     */
    switch: z.enum(['socket', 'reload', 'relay'], { error: 'expected one of socket, reload, relay' }).default('socket'),
    /**
     * relay (apps that listen only on TCP): the image of the small nginx (with its stream module) that opskit
     * runs beside each web container to turn its TCP port into the socket the link switches between;
     * unset: the image of the platform's nginx service.
     */
    relayImage: text().optional(),
    /** Run inside the new colour's container before the switch; non-zero aborts, e.g. [pytest, tests/]. */
    smoke: z.array(text(), { error: 'expected an argv list, e.g. [pytest, tests/]' }).optional(),
    /** The new colour's health gate, on its own address. */
    healthTimeout: duration.default('60s'),
    /** After the reload, how long answers through nginx may take to come from the new colour. */
    verifyTimeout: duration.default('15s'),
    /** The path asked through nginx to verify the switch (its JSON `color`, or X-App-Color). */
    verifyPath: text().regex(/^\//, { error: 'expected a path starting with /' }).default('/health'),
    /** Stop the old colour this long after a cutover (at the next opskit run); unset: keep it warm. */
    keepOld: duration.optional(),
  }),
  health: section({
    /** Defaults of every check; each check may set its own. */
    timeout: duration.default('5s'),
    retries: nonNegativeInt.default(0),
    retryDelay: duration.default('1s'),
    startPeriod: duration.default('0s'),
    /** `warn`: a warning fails the run too (exit 3). */
    failOn: z.enum(['fail', 'warn'], { error: 'expected fail or warn' }).default('fail'),
    checks: z.array(healthCheckSchema, { error: 'expected a list of checks' }).default([]),
  }),
  loadtest: section({
    /** The target; default: nginx (nginx.url, or the nginx service's address) and loadtest.path. */
    url: url.optional(),
    path: text().regex(/^\//, { error: 'expected a path starting with /' }).default('/health'),
    connections: positiveInt.default(10),
    duration: duration.default('10s'),
    timeout: duration.default('10s'),
    pipelining: positiveInt.default(1),
    /** k6-style expressions, applied to every run with the --threshold flags: ["p(99)<500", "errors<1%"]. */
    thresholds: z
      .array(text('an expression, e.g. p(99)<500'), { error: 'expected a list of expressions, e.g. ["p(99)<500"]' })
      .default([]),
    /** With --baseline: a worse result by more than this fails (exit 3). */
    maxRegression: text()
      .regex(/^\d+(\.\d+)?%$/, { error: 'expected a percentage, e.g. 10%' })
      .optional(),
  }),
  backup: section({
    dir: text().default('backups'),
    retentionDays: positiveInt.default(30),
    /** Grandfather-father-son retention (restic's semantics), on top of retentionDays. */
    keepDaily: positiveInt.optional(),
    keepWeekly: positiveInt.optional(),
    keepMonthly: positiveInt.optional(),
    /** zlib level, 1 (fast) to 9 (small). */
    gzipLevel: z
      .preprocess(fromText, z.number({ error: 'expected a number from 1 to 9' }).int().min(1).max(9))
      .default(6),
    /** A dump smaller than this (uncompressed bytes) is a failure, not a backup. */
    minDumpBytes: positiveInt.default(512),
    /** Multipart upload: part size in MiB (5 to 5120; 10000 parts of 64 MiB is 625 GiB) and parts in flight. */
    partSizeMiB: z
      .preprocess(fromText, z.number({ error: 'expected MiB from 5 to 5120' }).int().min(5).max(5120))
      .default(64),
    queueSize: positiveInt.default(4),
    /**
     * host: the host's pg_dump and psql reach database.url; compose: pg_dump runs in the db service's container (docker
     * exec).
     */
    via: z.enum(['host', 'compose'], { error: 'expected one of host, compose' }).default('host'),
    pgDump: text().default('pg_dump'),
    psql: text().default('psql'),
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
  ['OPSKIT_ENGINE', 'engine'],
  ['OPSKIT_REGISTRY', 'registry.address'],
  ['OPSKIT_REGISTRY_USERNAME', 'registry.username'],
  ['OPSKIT_REGISTRY_PASSWORD', 'registry.password'],
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
