import http from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  latencyMs: number;
  /** For https: the server certificate's expiry. */
  tls?: { validTo: string; subject: string };
}

export interface HttpRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs: number;
  /** Keep at most this much of the body (default 1 MiB). */
  maxBodyBytes?: number;
  /** false: accept a certificate that does not verify (self-signed); its expiry is still read. */
  tlsVerify?: boolean;
  /** Connect to this unix socket instead of the URL's host and port (the URL still gives the path). */
  socketPath?: string;
}

/** HTTP effects. Rejects on network errors and timeouts; any status is a response. */
export interface HttpAdapter {
  request(url: string, request: HttpRequest): Promise<HttpResponse>;
}

export class HttpTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(ms: number) {
    super(`timed out after ${ms < 1000 ? `${ms}ms` : `${(ms / 1000).toFixed(2)}s`}`);
  }
}

/** node:http(s) rather than fetch: fetch refuses some ports and hides the peer certificate. */
export const nodeHttp: HttpAdapter = {
  request(url, request) {
    return new Promise((resolve, reject) => {
      const started = performance.now();
      const target = new URL(url);
      const lib = target.protocol === 'https:' ? https : http;
      const req = lib.request(
        target,
        {
          method: request.method ?? 'GET',
          headers: { 'user-agent': 'opskit', ...request.headers },
          agent: false,
          ...(request.socketPath ? { socketPath: request.socketPath } : {}),
          ...(target.protocol === 'https:' ? { rejectUnauthorized: request.tlsVerify !== false } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          const limit = request.maxBodyBytes ?? 1024 * 1024;
          res.on('data', (chunk: Buffer) => {
            if (size < limit) chunks.push(chunk.subarray(0, limit - size));
            size += chunk.length;
          });
          res.on('end', () => {
            clearTimeout(timer);
            const socket = res.socket as TLSSocket | null;
            const cert =
              target.protocol === 'https:' && socket && typeof socket.getPeerCertificate === 'function'
                ? socket.getPeerCertificate()
                : undefined;
            resolve({
              status: res.statusCode ?? 0,
              headers: Object.fromEntries(
                Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]),
              ),
              body: Buffer.concat(chunks).toString('utf8'),
              latencyMs: performance.now() - started,
              ...(cert?.valid_to ? { tls: { validTo: cert.valid_to, subject: String(cert.subject?.CN ?? '') } } : {}),
            });
          });
          res.on('error', reject);
        },
      );
      const timer = setTimeout(() => req.destroy(new HttpTimeoutError(request.timeoutMs)), request.timeoutMs);
      req.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      if (request.body !== undefined) req.write(request.body);
      req.end();
    });
  },
};
