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
