/**
 * Makes an autocannon client honour `Connection: close` (RFC 9112 §9.6: a client that receives it must
 * not send another request on that connection).
 *
 * autocannon 9 ignores the header: as soon as a response is complete it writes the next request on the
 * same connection, which the server is closing. The server answers that request with a reset
 * (ECONNRESET, counted as an error) or the connection ends first and the request vanishes (autocannon
 * reconnects and counts nothing). nginx closes every keep-alive connection this way after
 * `keepalive_requests` answers (1000 by default), so any run of more than ~1000 requests per connection
 * reported failures that no browser or HTTP library would see: 63 ECONNRESET in 60 s of 50 connections
 * against the sample platform with no switch at all, and the "errors: 31" of issue 15's cutover test.
 *
 * The fix: when a response says close, the client opens a fresh connection before its next request,
 * as any correct HTTP client does. Installed through autocannon's `setupClient` hook, so it runs inside
 * each client (and each worker thread) before its first connection.
 */

/** The part of autocannon's (untyped) Client this hook touches. */
export interface AutocannonClient {
  on(event: 'headers', listener: (info: { shouldKeepAlive?: boolean }) => void): unknown;
  _doRequest(...args: unknown[]): unknown;
  _connect(...args: unknown[]): unknown;
  _resetConnection(): unknown;
}

export function honourConnectionClose(client: AutocannonClient): void {
  let closing = false;
  const doRequest = client._doRequest;
  const connect = client._connect;
  client.on('headers', (info) => {
    if (info.shouldKeepAlive === false) closing = true;
  });
  client._doRequest = function (this: AutocannonClient, ...args: unknown[]) {
    // The response just completed said close: reconnect, and the new connection sends the request.
    if (closing) return this._resetConnection();
    return doRequest.apply(this, args);
  };
  client._connect = function (this: AutocannonClient, ...args: unknown[]) {
    closing = false;
    return connect.apply(this, args);
  };
}
