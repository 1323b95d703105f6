import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { REPO } from './cli.js';

export interface S3Server {
  endpoint: string;
  port: number;
  directory: string;
  stop(): Promise<void>;
}

/** Starts s3rver in its own process (as the demo does) and resolves once it listens. */
export async function startS3Server(buckets = ['opskit-test']): Promise<S3Server> {
  const child: ResultPromise = execa(process.execPath, [path.join(REPO, 'tests/fixtures/s3-server.mjs')], {
    env: { NODE_OPTIONS: '--openssl-legacy-provider', S3_BUCKETS: buckets.join(',') },
    reject: false,
    stdin: 'ignore',
    buffer: false,
  });
  const info = await new Promise<{ endpoint: string; port: number; directory: string }>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`s3rver did not start: ${seen}`)), 15_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      const line = seen.split('\n').find((l) => l.startsWith('{'));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line));
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (seen += chunk.toString()));
    void child.then((r) => reject(new Error(`s3rver exited ${r.exitCode}: ${seen}`)));
  });
  return {
    ...info,
    async stop() {
      child.kill('SIGTERM');
      await child;
    },
  };
}
