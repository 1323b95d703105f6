import { type BackgroundLoadResult, failures, startBackgroundLoad } from '../../src/adapters/background-load.js';

export type LoadResult = BackgroundLoadResult;

/** autocannon against a URL on this machine until stopped (bounded by maxSeconds). */
export function startLoad(url: string, connections = 50, maxSeconds = 240) {
  return startBackgroundLoad(url, { connections, maxSeconds });
}

/** Not one failed request: no non-2xx, no error, no timeout, nothing dropped; on a failure, the codes say why. */
export const NO_FAILURES = { non2xx: 0, errors: 0, timeouts: 0, dropped: 0 };
export { failures };
