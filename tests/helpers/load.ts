import autocannon from 'autocannon';

export interface LoadResult {
  requests: number;
  ok2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
}

/** autocannon against a URL on this machine until stopped (bounded by maxSeconds). */
export function startLoad(url: string, connections = 50, maxSeconds = 240): { stop(): Promise<LoadResult> } {
  let finish: (r: LoadResult) => void;
  const done = new Promise<LoadResult>((resolve) => (finish = resolve));
  const instance = autocannon({ url, connections, duration: maxSeconds, timeout: 10 }, (error, result) => {
    if (error) throw error;
    finish({
      requests: result.requests.total,
      ok2xx: result['2xx'],
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
      statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, s]) => [code, (s as { count: number }).count])),
    });
  });
  return {
    async stop() {
      instance.stop();
      return done;
    },
  };
}
