import { inspect } from 'node:util';

export const REDACTED = '***';

/**
 * The one type for every secret: database URLs with passwords, AWS secret keys, the ngrok authtoken,
 * header tokens. Every way of turning it into text (String(), JSON, util.inspect, template literals)
 * yields the redacted form; only reveal() gives the value, and only adapters call it.
 */
export class Sensitive {
  readonly #value: string;
  readonly #shown: string;

  constructor(value: string, shown: string = REDACTED) {
    this.#value = value;
    this.#shown = shown;
  }

  /** A URL keeps its scheme, user, host and path; only the password is hidden. */
  static url(value: string): Sensitive {
    return new Sensitive(value, redactUrlPassword(value));
  }

  reveal(): string {
    return this.#value;
  }

  /** The value's secret parts, for the redactor to scrub from any text (child output, errors). */
  secretParts(): string[] {
    const parts = [this.#value];
    const password = urlPassword(this.#value);
    if (password) parts.push(password, encodeURIComponent(password));
    return parts;
  }

  toString(): string {
    return this.#shown;
  }

  toJSON(): string {
    return this.#shown;
  }

  [inspect.custom](): string {
    return this.#shown;
  }
}

export function isSensitive(value: unknown): value is Sensitive {
  return value instanceof Sensitive;
}

function urlPassword(value: string): string | undefined {
  const match = /^[a-z][a-z0-9+.-]*:\/\/[^/@:\s]*:([^@/\s]*)@/i.exec(value);
  if (!match?.[1]) return undefined;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return match[1];
  }
}

/** `postgresql://app:s3cret@db:5432/app` -> `postgresql://app:***@db:5432/app`. */
export function redactUrlPassword(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^/@:\s'"]*:)([^@/\s'"]+)@/gi, `$1${REDACTED}@`);
}
