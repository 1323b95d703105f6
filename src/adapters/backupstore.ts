import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';

/** Local backup files and the streaming pipelines around them (gzip, sha256), as one adapter. */
export interface BackupStore {
  list(dir: string): Promise<Array<{ name: string; sizeBytes: number }>>;
  /** source -> gzip -> sha256 -> file. Resolves with the bytes read and written and the file's sha256. */
  gzipTo(
    source: Readable,
    file: string,
    level: number,
  ): Promise<{ rawBytes: number; sizeBytes: number; sha256: string }>;
  /** A stream into a file, hashing what passes: for downloads. */
  saveTo(source: Readable, file: string): Promise<{ sizeBytes: number; sha256: string }>;
  sha256(file: string): Promise<{ sizeBytes: number; sha256: string }>;
  /** The file, gunzipped, as a stream. */
  gunzipStream(file: string): Readable;
  /** `length` bytes from `start`: one part of an upload. */
  readRange(file: string, start: number, length: number): Promise<Buffer>;
  /** fsync then rename: the final name appears only with the whole file behind it. */
  commit(partial: string, final: string): Promise<void>;
}

const counter = () => {
  const hash = createHash('sha256');
  let bytes = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  return { stream, result: () => ({ bytes, sha256: hash.digest('hex') }) };
};

export const nodeBackupStore: BackupStore = {
  async list(dir) {
    let names: string[];
    try {
      names = await fsp.readdir(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const out: Array<{ name: string; sizeBytes: number }> = [];
    for (const name of names) {
      const st = await fsp.stat(path.join(dir, name)).catch(() => undefined);
      if (st?.isFile()) out.push({ name, sizeBytes: st.size });
    }
    return out;
  },
  async gzipTo(source, file, level) {
    const raw = counter();
    const out = counter();
    await pipeline(
      source,
      raw.stream,
      createGzip({ level }),
      out.stream,
      createWriteStream(file, { flags: 'wx', mode: 0o600 }),
    );
    const r = out.result();
    return { rawBytes: raw.result().bytes, sizeBytes: r.bytes, sha256: r.sha256 };
  },
  async saveTo(source, file) {
    const out = counter();
    await pipeline(source, out.stream, createWriteStream(file, { mode: 0o600 }));
    const r = out.result();
    return { sizeBytes: r.bytes, sha256: r.sha256 };
  },
  async sha256(file) {
    const out = counter();
    await pipeline(createReadStream(file), out.stream, async (chunks: AsyncIterable<unknown>) => {
      for await (const _ of chunks) {
        // drain
      }
    });
    const r = out.result();
    return { sizeBytes: r.bytes, sha256: r.sha256 };
  },
  gunzipStream(file) {
    const gunzip = createGunzip();
    const input = createReadStream(file);
    input.on('error', (e) => gunzip.destroy(e));
    return input.pipe(gunzip);
  },
  async readRange(file, start, length) {
    const handle = await fsp.open(file, 'r');
    try {
      const buffer = Buffer.alloc(length);
      let read = 0;
      while (read < length) {
        const { bytesRead } = await handle.read(buffer, read, length - read, start + read);
        if (bytesRead === 0) throw new Error(`${file}: ended at ${start + read} bytes, expected ${start + length}`);
        read += bytesRead;
      }
      return buffer;
    } finally {
      await handle.close();
    }
  },
  async commit(partial, final) {
    const handle = await fsp.open(partial, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsp.rename(partial, final);
  },
};
