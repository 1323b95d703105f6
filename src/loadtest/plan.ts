import { z } from 'zod';
import type { AutocannonPlan } from '../adapters/load.js';
import { Sensitive } from '../sensitive.js';

export interface ScenarioRequest {
  name: string;
  method: string;
  path: string;
  headers: Record<string, string | Sensitive>;
  body?: string;
  weight: number;
}

export interface LoadSpec {
  /** The target's origin and, for a single request, its path: `http://127.0.0.1:8080/health`. */
  url: string;
  connections: number;
  /** Exactly one of the two bounds. */
  durationS?: number;
  amount?: number;
  /** Requests per second over all connections; latencies are corrected for coordinated omission. */
  rate?: number;
  pipelining: number;
  timeoutS: number;
  requests: ScenarioRequest[];
}

export const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

export const scenarioSchema = z.strictObject({
  /** The target (origin, or origin and base path); --url wins. */
  url: z
    .string()
    .regex(/^https?:\/\/\S+$/i, { error: 'expected an http(s) URL' })
    .optional(),
  /** Headers sent with every request; a request's own win. */
  headers: z.record(z.string(), z.string(), { error: 'expected a mapping of header: value' }).default({}),
  thresholds: z.array(z.string(), { error: 'expected a list of expressions, e.g. ["p(99)<500"]' }).default([]),
  requests: z
    .array(
      z.strictObject({
        name: z.string().min(1).optional(),
        method: z
          .string()
          .transform((m) => m.toUpperCase())
          .pipe(z.enum(METHODS, { error: `expected one of ${METHODS.join(', ')}` }))
          .default('GET'),
        path: z.string().regex(/^\//, { error: 'expected a path starting with /' }),
        headers: z.record(z.string(), z.string(), { error: 'expected a mapping of header: value' }).default({}),
        /** A string, or structured data sent as JSON (with content-type: application/json). */
        body: z.union([z.string(), z.record(z.string(), z.unknown()), z.array(z.unknown())]).optional(),
        weight: z
          .number({ error: 'expected a positive number' })
          .positive({ error: 'expected a positive number' })
          .default(1),
      }),
      { error: 'expected a list of requests' },
    )
    .min(1, { error: 'expected at least one request' }),
});

export type ScenarioFile = z.output<typeof scenarioSchema>;

/** A scenario file's requests, names made unique, JSON bodies encoded, secret headers kept as secrets. */
export function scenarioRequests(file: ScenarioFile, isSecretHeader: (name: string) => boolean): ScenarioRequest[] {
  const seen = new Map<string, number>();
  return file.requests.map((r) => {
    const base = r.name ?? `${r.method} ${r.path}`;
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    const json = r.body !== undefined && typeof r.body !== 'string';
    const headers: Record<string, string | Sensitive> = {};
    for (const [k, v] of Object.entries({
      ...(json ? { 'content-type': 'application/json' } : {}),
      ...file.headers,
      ...r.headers,
    }))
      headers[k.toLowerCase()] = isSecretHeader(k) ? new Sensitive(v) : v;
    return {
      name: n > 1 ? `${base} #${n}` : base,
      method: r.method,
      path: r.path,
      headers,
      ...(r.body !== undefined ? { body: json ? JSON.stringify(r.body) : (r.body as string) } : {}),
      weight: r.weight,
    };
  });
}

export const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** Integer weights in the same ratio, the total kept small (at most about 1000). */
export function integerWeights(weights: readonly number[]): number[] {
  const scaled = weights.every(Number.isInteger) ? [...weights] : weights.map((w) => Math.max(1, Math.round(w * 100)));
  const divisor = scaled.reduce((a, b) => gcd(a, b));
  let ints = scaled.map((w) => w / divisor);
  const total = ints.reduce((a, b) => a + b, 0);
  if (total > 1000) ints = ints.map((w) => Math.max(1, Math.round((w * 1000) / total)));
  return ints;
}

/**
 * The order autocannon cycles through, each request as often as its weight, spread out (nginx's smooth
 * weighted round-robin), so that every stretch of a run has about the right mix.
 */
export function weightedSequence(weights: readonly number[]): number[] {
  const ints = integerWeights(weights);
  const total = ints.reduce((a, b) => a + b, 0);
  const current = ints.map(() => 0);
  const order: number[] = [];
  for (let step = 0; step < total; step++) {
    let best = 0;
    for (let i = 0; i < ints.length; i++) {
      current[i]! += ints[i]!;
      if (current[i]! > current[best]!) best = i;
    }
    current[best]! -= total;
    order.push(best);
  }
  return order;
}

export const reveal = (headers: Record<string, string | Sensitive>) =>
  Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, typeof v === 'string' ? v : v.reveal()]));

/**
 * Pure: how many requests a run at `rate` req/s for `durationS` sends in all: exactly rate x duration.
 * autocannon paces a rate in one-second windows from each connection's start, and the window that opens
 * as the duration ends still goes out before it stops: `--rate 200 --duration 2s` sent 600 requests, not
 * 400 (issue 15). Capping the total (autocannon's maxOverallRequests, shared across the connections)
 * closes that last window. At least one request per connection, since a connection's share of 0 would
 * mean no cap at all.
 */
export function rateCap(rate: number, durationS: number, connections: number): number {
  return Math.max(Math.round(rate * durationS), Math.min(connections, rate));
}

/** The exact options handed to autocannon (secrets revealed: only the load adapter sees this). */
export function buildAutocannonOptions(spec: LoadSpec): AutocannonPlan {
  const order = spec.requests.length === 1 ? [0] : weightedSequence(spec.requests.map((r) => r.weight));
  return {
    options: {
      url: spec.url,
      connections: spec.connections,
      pipelining: spec.pipelining,
      timeout: spec.timeoutS,
      ...(spec.amount !== undefined ? { amount: spec.amount } : { duration: spec.durationS ?? 10 }),
      ...(spec.rate !== undefined ? { overallRate: spec.rate } : {}),
      ...(spec.rate !== undefined && spec.amount === undefined
        ? { maxOverallRequests: rateCap(spec.rate, spec.durationS ?? 10, spec.connections) }
        : {}),
      requests: order.map((i) => {
        const r = spec.requests[i]!;
        return {
          method: r.method,
          path: r.path,
          headers: reveal(r.headers),
          ...(r.body !== undefined ? { body: r.body } : {}),
        };
      }),
    },
    requestIndex: order,
  };
}
