import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { type CliRun, opskit, REPO, tempDir } from './cli.js';

/**
 * The project's Swarm lab (`npm run lab -- up`) for a test file: three Docker Engines in network
 * namespaces, one manager and two workers, a registry. A file brings it up when it is not, and takes it
 * down at the end only then. Every request goes to the lab's own addresses.
 */
export const LAB_ENV = path.join(REPO, '.lab', 'env.json');

export const lab = (args: string[]) =>
  execa('node', [path.join(REPO, 'scripts/lab.mjs'), ...args], { reject: false, all: true });

export interface LabEnv {
  DOCKER_HOST: string;
  OPSKIT_LAB_NODES: string;
  OPSKIT_LAB_REGISTRY: string;
  OPSKIT_LAB_SOCKETS: string;
}

export interface LabPlatform {
  env: LabEnv;
  dir: string;
  /** opskit in the platform's directory, against the lab's manager. */
  run(args: string[], extra?: Record<string, string>): Promise<CliRun>;
  /** The docker CLI against the manager. */
  manager(args: string[]): Promise<{ stdout: string; stderr: string; exitCode: number | undefined }>;
  project: string;
  /** The edge nginx's host-mode port on the manager (node 1). */
  edge: string;
  /** Removes the project's services, network and directory; takes the lab down if this file brought it up. */
  destroy(): Promise<void>;
}

/** The lab up (if needed) and a fresh directory for `opskit init --example --engine swarm`. */
export async function labPlatform(prefix: string): Promise<LabPlatform> {
  const startedHere = !existsSync(LAB_ENV);
  const up = await lab(['up']);
  if (up.exitCode !== 0) throw new Error(`npm run lab -- up failed:\n${up.all}`);
  const env = JSON.parse(readFileSync(LAB_ENV, 'utf8')) as LabEnv;
  const dir = tempDir(prefix);
  const project = path
    .basename(dir)
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-');
  const manager = async (args: string[]) => {
    const r = await execa('docker', ['-H', env.DOCKER_HOST, ...args], { reject: false });
    return { stdout: String(r.stdout), stderr: String(r.stderr), exitCode: r.exitCode };
  };
  return {
    env,
    dir,
    project,
    manager,
    edge: `http://${env.OPSKIT_LAB_NODES.split(' ')[0]}:8080`,
    run: (args, extra = {}) =>
      opskit(args, { cwd: dir, env: { ...(env as unknown as Record<string, string>), ...extra }, timeoutMs: 600_000 }),
    async destroy() {
      // The project's services by their label, then its network: nothing of this run stays on the lab.
      const ids = (await manager(['service', 'ls', '-q', '--filter', `label=opskit.project=${project}`])).stdout
        .split('\n')
        .filter(Boolean);
      if (ids.length) await manager(['service', 'rm', ...ids]);
      rmSync(dir, { recursive: true, force: true });
      if (startedHere) await lab(['down']);
    },
  };
}
