import { randomBytes } from 'node:crypto';
import { execa } from 'execa';

/** Everything a test creates on the engine carries this label, and is removed in teardown. */
export const TEST_LABEL = 'org.opskit.test';

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

export async function docker(args: string[], options: { reject?: boolean; timeoutMs?: number } = {}) {
  const r = await execa('docker', args, {
    reject: options.reject ?? true,
    timeout: options.timeoutMs ?? 120_000,
    stdin: 'ignore',
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Removes every container, network and volume that carries the test label `run` value. */
export async function removeLabelled(run: string): Promise<void> {
  const filter = `label=${TEST_LABEL}=${run}`;
  const containers = (await docker(['ps', '-aq', '--filter', filter], { reject: false })).stdout
    .split('\n')
    .filter(Boolean);
  if (containers.length) await docker(['rm', '-f', '-v', ...containers], { reject: false });
  const networks = (await docker(['network', 'ls', '-q', '--filter', filter], { reject: false })).stdout
    .split('\n')
    .filter(Boolean);
  if (networks.length) await docker(['network', 'rm', ...networks], { reject: false });
  const volumes = (await docker(['volume', 'ls', '-q', '--filter', filter], { reject: false })).stdout
    .split('\n')
    .filter(Boolean);
  if (volumes.length) await docker(['volume', 'rm', ...volumes], { reject: false });
}
