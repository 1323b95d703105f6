import http from 'node:http';
import https from 'node:https';

export interface TestServer {
  url: string;
  port: number;
  hits: Map<string, number>;
  close(): Promise<void>;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** A local HTTP(S) server on 127.0.0.1 and a free port, answering by path. */
export async function startServer(
  routes: Record<string, Handler>,
  tls?: { key: string; cert: string },
): Promise<TestServer> {
  const hits = new Map<string, number>();
  const sockets = new Set<import('node:net').Socket>();
  const handler: Handler = (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const route = routes[path];
    if (route) route(req, res);
    else {
      res.writeHead(404);
      res.end('not found');
    }
  };
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    hits,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export const json =
  (status: number, body: unknown): Handler =>
  (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };

export const delayed =
  (ms: number, then: Handler): Handler =>
  (req, res) => {
    setTimeout(() => then(req, res), ms);
  };
