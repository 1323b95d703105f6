import net from 'node:net';

/** TCP effects: does a port answer, and how fast. */
export interface NetAdapter {
  connect(host: string, port: number, timeoutMs: number): Promise<{ latencyMs: number }>;
}

export const nodeNet: NetAdapter = {
  connect(host, port, timeoutMs) {
    return new Promise((resolve, reject) => {
      const started = performance.now();
      const socket = net.connect({ host, port });
      const timer = setTimeout(
        () =>
          socket.destroy(
            Object.assign(
              new Error(`timed out after ${timeoutMs < 1000 ? `${timeoutMs}ms` : `${(timeoutMs / 1000).toFixed(2)}s`}`),
              { code: 'ETIMEDOUT' },
            ),
          ),
        timeoutMs,
      );
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.destroy();
        resolve({ latencyMs: performance.now() - started });
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  },
};
