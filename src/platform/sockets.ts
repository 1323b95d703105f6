import path from 'node:path';
import type { Clock } from '../adapters/clock.js';
import type { FsAdapter } from '../adapters/fs.js';
import type { Config } from '../config/schema.js';
import { OperationError } from '../errors.js';
import { pollUntil } from '../runtime/poll.js';

/**
 * The socket switch. Each web container's gunicorn also listens on `web-<hostname>.sock` in a directory
 * shared with nginx (the template's gunicorn.conf.py; Docker's default hostname is the container id's
 * first 12 characters), and nginx's upstream is `unix:<dir>/live.sock`, a relative link. A switch
 * renames a new link over it: nginx's next upstream connection reaches the new colour, while the
 * connections it already holds finish on the old one. No reload, so no worker closes a client's
 * keep-alive connection under it (what makes clients without retries see resets during a reload).
 *
 * Who may reach the sockets (issue 15): the containers' own users differ by image (appuser 999 in the web
 * image; nginx's workers run as nobody, www-data or nginx, and drop any `group_add` group when they
 * switch user), so the sockets stay world-connectable *inside* the shared directory, and the guard is
 * the directory above it on the host: private to the operator (`run/` 0700 around `run/sockets`).
 * The containers never walk that path: compose mounts the sockets directory itself at /run/opskit.
 */
export const LIVE_LINK = 'live.sock';

/** Pure: the socket file of a container, relative to the sockets directory. */
export function socketName(containerId: string): string {
  return `web-${containerId.slice(0, 12)}.sock`;
}

/** Pure: the upstream server nginx connects to in socket mode. */
export function liveServer(config: Config, hostDir: string): string {
  return `unix:${config.nginx.mode === 'host' ? hostDir : config.nginx.socketDir.replace(/\/$/, '')}/${LIVE_LINK}`;
}

/** The sockets directory's parent when opskit creates it: only the operator (and root) can pass it. */
export const PRIVATE_DIR_MODE = 0o700;

/** Pure: does the parent hold nothing but the sockets directory (so its mode is opskit's to set)? */
export function isDedicatedParent(entries: readonly string[], socketsDir: string): boolean {
  return entries.every((name) => name === path.basename(socketsDir));
}

export interface LiveSocket {
  dir: string;
  /**
   * Creates the directory, writable by the containers' unprivileged users (sticky, like /tmp), inside a
   * parent that other host users cannot pass (created 0700; a parent of its own has its `other` bits
   * removed). A parent shared with other files (the project directory, in a layout from before
   * `run/sockets`) is left as it is: `opskit doctor` warns about it.
   */
  prepare(): Promise<void>;
  /** Waits until the container's socket exists (gunicorn binds it at start-up). */
  waitFor(containerId: string, timeoutMs: number): Promise<void>;
  /** The current target (a socket file name), if any. */
  current(): Promise<string | undefined>;
  point(target: string): Promise<void>;
  /** Removes a retired container's socket file when gunicorn left it behind. */
  forget(containerId: string): Promise<void>;
}

export function liveSocket(fs: FsAdapter, clock: Clock, dir: string): LiveSocket {
  const link = path.join(dir, LIVE_LINK);
  return {
    dir,
    async prepare() {
      const parent = path.dirname(dir);
      await fs.mkdirp(parent, { mode: PRIVATE_DIR_MODE });
      const mode = await fs.fileMode(parent);
      const othersMayPass = mode !== undefined && (mode & 0o007) !== 0;
      if (othersMayPass && isDedicatedParent(await fs.listDir(parent), dir)) await fs.chmod(parent, mode & ~0o007);
      await fs.mkdirp(dir);
      await fs.chmod(dir, 0o1777);
    },
    async waitFor(containerId, timeoutMs) {
      const file = path.join(dir, socketName(containerId));
      const poll = await pollUntil(clock, { timeoutMs, initialDelayMs: 20, maxDelayMs: 200 }, async () =>
        (await fs.exists(file)) ? { done: true, value: true } : { done: false, last: `${file} does not exist` },
      );
      if (!poll.ok) {
        throw new OperationError(
          'E_NO_SOCKET',
          `the web container ${containerId.slice(0, 12)} did not create its socket ${file}`,
          {
            hint: `its gunicorn must also bind unix:<dir>/web-$HOSTNAME.sock (the template's gunicorn.conf.py), with paths.sockets mounted in the web and nginx services; or set cutover.switch: reload`,
          },
        );
      }
    },
    current: () => fs.readLink(link),
    point: (target) => fs.symlinkAtomic(target, link),
    async forget(containerId) {
      await fs.remove(path.join(dir, socketName(containerId))).catch(() => {});
    },
  };
}
