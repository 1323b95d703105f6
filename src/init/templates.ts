import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SECRET_FILE_MODE } from '../adapters/fs.js';

/** The repo's own folders, which hold the template sources (also shipped in the npm package). */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface TemplateFile {
  /** Relative to the package root: templates/, nginx/ or compose/. */
  source: string;
  /** Relative to the project directory being initialised. */
  destination: string;
  /**
   * Holds secrets, or is where the operator puts them (an env file): written 0600, owner only. Its mode
   * then stays 0600 through every rewrite (`init --force` creates the replacement 0600 from the start).
   */
  secret?: true;
}

/** Pure: the mode a template's file is created with. */
export function templateMode(file: TemplateFile): number {
  return file.secret ? SECRET_FILE_MODE : 0o644;
}

/** What `opskit init` writes, and from where. */
export const INIT_FILES: readonly TemplateFile[] = [
  { source: 'templates/opskit.yaml', destination: 'opskit.yaml' },
  { source: 'templates/Dockerfile.prod', destination: 'Dockerfile.prod' },
  { source: 'templates/dockerignore', destination: '.dockerignore' },
  { source: 'templates/gunicorn.conf.py', destination: 'gunicorn.conf.py' },
  { source: 'compose/docker-compose.prod.yml', destination: 'compose/docker-compose.prod.yml' },
  { source: 'nginx/nginx.conf', destination: 'nginx/nginx.conf' },
  { source: 'nginx/upstream/web.conf', destination: 'nginx/upstream/web.conf' },
  { source: 'templates/env.example', destination: '.env.example' },
  { source: 'templates/crontab', destination: 'crontab' },
  { source: 'templates/loadtest.yaml', destination: 'loadtest.yaml' },
];

/** What `opskit init --example` adds: the sample platform (a Flask API with migrations) and its env files. */
export const EXAMPLE_FILES: readonly TemplateFile[] = [
  { source: 'templates/example/app.py', destination: 'app.py' },
  { source: 'templates/example/migrate.py', destination: 'migrate.py' },
  { source: 'templates/example/migrations/0001_create_items.sql', destination: 'migrations/0001_create_items.sql' },
  {
    source: 'templates/example/migrations/0002_index_items_created_at.sql',
    destination: 'migrations/0002_index_items_created_at.sql',
  },
  { source: 'templates/example/requirements.txt', destination: 'requirements.txt' },
  { source: 'templates/example/tests/test_app.py', destination: 'tests/test_app.py' },
  // The generated database password; and env files are where secrets go, so both start owner-only.
  { source: 'templates/example/env', destination: '.env', secret: true },
  { source: 'templates/example/env.offline', destination: '.env.offline', secret: true },
  { source: 'templates/example/gitignore', destination: '.gitignore' },
];

export function templatePath(file: TemplateFile): string {
  return path.join(PACKAGE_ROOT, file.source);
}

/** PAT-018: gunicorn workers = 2 x CPUs + 1. */
export function gunicornWorkers(cpus: number): number {
  return 2 * Math.max(1, Math.floor(cpus)) + 1;
}

export interface TemplateVars {
  project: string;
  workers: number;
  cpus: number;
  upstream: string;
  version: string;
  /** The example's generated database password (written only to its .env). */
  dbPassword: string;
  /** compose or swarm, and what differs with it in opskit.yaml and the example's .env. */
  engine: 'compose' | 'swarm';
  composeFile: string;
  imageNameLine: string;
  registryBlock: string;
  nginxUrlLine: string;
  /** backup.via: the compose example reaches the database from the host; a swarm one from the overlay. */
  backupViaLine: string;
  labImages: string;
}

/** Where a swarm example finds its registry and edge: the lab's env (`npm run lab -- up`), or the environment. */
export interface SwarmSite {
  registry: string | undefined;
  edge: string | undefined;
}

/** Pure: the template values that depend on the engine. */
export function engineVars(
  engine: 'compose' | 'swarm',
  project: string,
  site: SwarmSite,
): Pick<
  TemplateVars,
  'engine' | 'composeFile' | 'imageNameLine' | 'registryBlock' | 'nginxUrlLine' | 'backupViaLine' | 'labImages'
> {
  if (engine === 'compose')
    return {
      engine,
      composeFile: 'compose/docker-compose.prod.yml',
      imageNameLine: `# name: registry.example.com/${project}`,
      registryBlock: [
        '# The registry a swarm pulls released images from (engine: swarm).',
        '# registry:',
        '#   address: registry.example.com',
      ].join('\n'),
      nginxUrlLine: '# url: http://127.0.0.1:8080',
      backupViaLine: '# via: host',
      labImages: '',
    };
  const registry = site.registry ?? 'registry.example.com';
  return {
    engine,
    composeFile: 'compose/docker-compose.swarm.yml',
    imageNameLine: `name: ${registry}/${project}/web`,
    registryBlock: [
      '# The registry every node pulls the released images from; opskit pushes there and pins the digest.',
      '# Credentials: registry.username here, the password in .env as OPSKIT_REGISTRY_PASSWORD.',
      'registry:',
      `  address: ${registry}`,
    ].join('\n'),
    nginxUrlLine: `# Where the edge nginx answers (a host-mode port on the edge node).\n  url: http://${site.edge ?? '127.0.0.1'}:8080`,
    backupViaLine: 'via: compose',
    labImages: site.registry
      ? [
          '# The lab registry holds the test images (no Docker Hub here).',
          `BASE_IMAGE=${site.registry}/opskit-test/python:3.11`,
          `POSTGRES_IMAGE=${site.registry}/opskit-test/postgres:15`,
          `REDIS_IMAGE=${site.registry}/opskit-test/redis:7`,
          `NGINX_IMAGE=${site.registry}/opskit-test/nginx:1`,
        ].join('\n')
      : '',
  };
}

/** What `opskit init --engine swarm` writes instead of the one-host compose file, nginx.conf and upstream. */
export function filesFor(engine: 'compose' | 'swarm', example: boolean): TemplateFile[] {
  const init =
    engine === 'compose'
      ? [...INIT_FILES]
      : INIT_FILES.filter((f) => f.destination !== 'nginx/upstream/web.conf').map((f) =>
          f.source === 'compose/docker-compose.prod.yml'
            ? { source: 'compose/docker-compose.swarm.yml', destination: 'compose/docker-compose.swarm.yml' }
            : f.source === 'nginx/nginx.conf'
              ? { ...f, source: 'nginx/nginx.swarm.conf' }
              : f,
        );
  if (!example) return init;
  return [
    ...init,
    ...EXAMPLE_FILES.filter((f) => engine === 'compose' || f.destination !== '.env.offline').map((f) =>
      engine === 'swarm' && f.destination === '.env' ? { ...f, source: 'templates/example/env.swarm' } : f,
    ),
  ];
}

/** Pure: `{{ name }}` placeholders replaced; an unknown placeholder is a bug in the template, not a blank. */
export function renderTemplate(text: string, vars: TemplateVars, name = 'template'): string {
  return text.replace(/\{\{\s*([a-zA-Z]+)\s*\}\}/g, (match, key: string) => {
    if (!(key in vars)) throw new Error(`${name}: unknown placeholder ${match}`);
    return String(vars[key as keyof TemplateVars]);
  });
}

/** A project name as compose and Docker accept it, from a directory name. */
export function projectNameFrom(dir: string): string {
  const name = path
    .basename(path.resolve(dir))
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^[-_]+|[-_]+$/g, '');
  return name || 'app';
}
