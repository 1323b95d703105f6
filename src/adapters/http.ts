export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  latencyMs: number;
}

export interface HttpRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs: number;
}

/** HTTP effects. Rejects on network errors and timeouts; any status is a response. */
export interface HttpAdapter {
  request(url: string, request: HttpRequest): Promise<HttpResponse>;
}

export const fetchHttp: HttpAdapter = {
  async request(url, request) {
    const started = performance.now();
    const response = await fetch(url, {
      method: request.method ?? 'GET',
      headers: request.headers,
      body: request.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(request.timeoutMs),
    });
    const body = await response.text();
    return {
      status: response.status,
      headers: Object.fromEntries(response.headers.entries()),
      body,
      latencyMs: performance.now() - started,
    };
  },
};
