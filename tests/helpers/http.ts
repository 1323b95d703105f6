import http from 'node:http';

/**
 * GET on a connection of its own, closed after the answer: what a new client sees. After an nginx
 * reload, a request on a connection opened before it can still be answered by an old worker with the
 * old upstream until that worker closes it; a switch is judged by new connections.
 */
export function freshGet(url: string, timeoutMs = 10_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false, headers: { connection: 'close' } }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.setTimeout(timeoutMs, () => request.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
  });
}

/** The colour and version a fresh connection is answered by (the sample app's /health). */
export async function freshJson<T>(url: string): Promise<T> {
  const r = await freshGet(url);
  return JSON.parse(r.body) as T;
}

/** The colours that `count` new connections, one after another, are answered by. */
export async function freshColors(url: string, count = 10): Promise<string[]> {
  const colors: string[] = [];
  for (let i = 0; i < count; i++) colors.push((await freshJson<{ color: string }>(url)).color);
  return colors;
}
