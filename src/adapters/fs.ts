import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, constants as fsConstants, promises as fsp } from 'node:fs';
import path from 'node:path';

/** Every filesystem effect opskit has, in one place, so actions can be tested against a fake. */
export interface FsAdapter {
  /** The file's text, or undefined when it does not exist. */
  readText(file: string): Promise<string | undefined>;
  exists(file: string): Promise<boolean>;
  isExecutable(file: string): Promise<boolean>;
  /** `mode` applies to the directories it creates, never to one that exists. */
  mkdirp(dir: string, options?: { mode?: number }): Promise<void>;
  /**
   * Written to a temporary file beside it, then renamed: readers see the old or the new file, never half.
   * The temporary file is created with its final mode (`mode`; else the mode of the file it replaces; else
   * 0644), so a secret written 0600 is never readable by others, not even for a moment.
   */
  writeFileAtomic(file: string, data: string, options?: { mode?: number }): Promise<void>;
  /**
   * Creates `file` with `data` only if it does not exist, atomically and complete (written aside, then
   * hard-linked into place). Returns false when it already exists.
   */
  createExclusive(file: string, data: string): Promise<boolean>;
  appendLine(file: string, line: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** Points `link` at `target` by renaming a fresh link over it: a reader sees the old or the new target. */
  symlinkAtomic(target: string, link: string): Promise<void>;
  /** A link's target, or undefined when it is not a link. */
  readLink(link: string): Promise<string | undefined>;
  chmod(file: string, mode: number): Promise<void>;
  /**
   * The permission bits (with setuid, setgid, sticky) of a file or directory, links followed; undefined when missing.
   */
  fileMode(file: string): Promise<number | undefined>;
  /** The names in a directory, sorted; empty when it does not exist. */
  listDir(dir: string): Promise<string[]>;
  remove(file: string): Promise<void>;
  removeDir(dir: string): Promise<void>;
  /** mkdir that fails when the directory exists: the atomic primitive for a short-lived mutex. */
  makeDirExclusive(dir: string): Promise<boolean>;
  mtimeMs(file: string): Promise<number | undefined>;
  /** Files (and symlinks) below `dir`, as `/`-separated relative paths, sorted; `skipDir` prunes. */
  walkFiles(dir: string, skipDir?: (relative: string) => boolean): Promise<string[]>;
  /** Free and total bytes of the filesystem holding `file`. */
  diskSpace(file: string): Promise<{ freeBytes: number; totalBytes: number }>;
  /** sha256 over the names and contents of these files (relative to dir), streamed. */
  hashFiles(dir: string, files: readonly string[]): Promise<string>;
}

/** Files that hold secrets (env files, configs that may carry a token): readable by their owner only. */
export const SECRET_FILE_MODE = 0o600;

function isCode(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: string }).code === code;
}

const tempName = (file: string) =>
  path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);

export const nodeFs: FsAdapter = {
  async readText(file) {
    try {
      return await fsp.readFile(file, 'utf8');
    } catch (error) {
      if (isCode(error, 'ENOENT') || isCode(error, 'ENOTDIR')) return undefined;
      throw error;
    }
  },
  async exists(file) {
    try {
      await fsp.access(file);
      return true;
    } catch {
      return false;
    }
  },
  async isExecutable(file) {
    try {
      const stat = await fsp.stat(file);
      if (!stat.isFile()) return false;
      await fsp.access(file, fsConstants.X_OK);
      return true;
    } catch {
      return false;
    }
  },
  async mkdirp(dir, options = {}) {
    await fsp.mkdir(dir, { recursive: true, ...(options.mode !== undefined ? { mode: options.mode } : {}) });
  },
  async writeFileAtomic(file, data, options = {}) {
    await fsp.mkdir(path.dirname(file), { recursive: true });
    const existing = await nodeFs.fileMode(file);
    const mode = options.mode ?? (existing === undefined ? 0o644 : existing & 0o777);
    const temp = tempName(file);
    try {
      // `wx`: a fresh file of our own (never one planted at that name), created with its final mode.
      await fsp.writeFile(temp, data, { mode, flag: 'wx' });
      await fsp.rename(temp, file);
    } catch (error) {
      await fsp.rm(temp, { force: true });
      throw error;
    }
  },
  async createExclusive(file, data) {
    await fsp.mkdir(path.dirname(file), { recursive: true });
    const temp = tempName(file);
    await fsp.writeFile(temp, data, { mode: 0o644 });
    try {
      await fsp.link(temp, file);
      return true;
    } catch (error) {
      if (isCode(error, 'EEXIST')) return false;
      throw error;
    } finally {
      await fsp.rm(temp, { force: true });
    }
  },
  async appendLine(file, line) {
    await fsp.mkdir(path.dirname(file), { recursive: true });
    // One write() of a line under PIPE_BUF with O_APPEND: concurrent runs never interleave a line.
    await fsp.appendFile(file, line.endsWith('\n') ? line : `${line}\n`);
  },
  async rename(from, to) {
    await fsp.rename(from, to);
  },
  async symlinkAtomic(target, link) {
    const temp = `${link}.${process.pid}.${Date.now()}.tmp`;
    await fsp.symlink(target, temp);
    try {
      await fsp.rename(temp, link);
    } catch (error) {
      await fsp.rm(temp, { force: true });
      throw error;
    }
  },
  async readLink(link) {
    try {
      return await fsp.readlink(link);
    } catch {
      return undefined;
    }
  },
  async chmod(file, mode) {
    await fsp.chmod(file, mode);
  },
  async fileMode(file) {
    try {
      return (await fsp.stat(file)).mode & 0o7777;
    } catch (error) {
      if (isCode(error, 'ENOENT') || isCode(error, 'ENOTDIR')) return undefined;
      throw error;
    }
  },
  async listDir(dir) {
    try {
      return (await fsp.readdir(dir)).sort();
    } catch (error) {
      if (isCode(error, 'ENOENT') || isCode(error, 'ENOTDIR')) return [];
      throw error;
    }
  },
  async remove(file) {
    await fsp.rm(file, { force: true });
  },
  async removeDir(dir) {
    await fsp.rm(dir, { recursive: true, force: true });
  },
  async makeDirExclusive(dir) {
    try {
      await fsp.mkdir(dir);
      return true;
    } catch (error) {
      if (isCode(error, 'EEXIST')) return false;
      throw error;
    }
  },
  async mtimeMs(file) {
    try {
      return (await fsp.stat(file)).mtimeMs;
    } catch {
      return undefined;
    }
  },
  async diskSpace(file) {
    const stats = await fsp.statfs(file);
    return { freeBytes: stats.bavail * stats.bsize, totalBytes: stats.blocks * stats.bsize };
  },
  async hashFiles(dir, files) {
    const hash = createHash('sha256');
    for (const file of files) {
      hash.update(`${file}\0`);
      const stat = await fsp.lstat(path.join(dir, file));
      if (stat.isSymbolicLink()) hash.update(await fsp.readlink(path.join(dir, file)));
      else for await (const chunk of createReadStream(path.join(dir, file))) hash.update(chunk as Buffer);
      hash.update('\0');
    }
    return hash.digest('hex');
  },
  async walkFiles(dir, skipDir = () => false) {
    const out: string[] = [];
    const walk = async (relative: string) => {
      const entries = await fsp.readdir(path.join(dir, relative), { withFileTypes: true });
      for (const entry of entries) {
        const child = relative ? `${relative}/${entry.name}` : entry.name;
        if (entry.isDirectory()) {
          if (!skipDir(child)) await walk(child);
        } else if (entry.isFile() || entry.isSymbolicLink()) out.push(child);
      }
    };
    await walk('');
    return out.sort();
  },
};
