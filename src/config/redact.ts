import { isSensitive, REDACTED, redactUrlPassword, Sensitive } from '../sensitive.js';

/** Environment variable names whose values are secrets wherever they appear. */
const SECRET_NAME = /(PASSWORD|PASSWD|SECRET|TOKEN|AUTHTOKEN|API_KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL)/i;

/** Headers that carry credentials are secrets wherever they are shown. */
export function isSecretHeader(name: string): boolean {
  return (
    /^(authorization|proxy-authorization|cookie|x-api-key|x-auth-token)$/i.test(name) ||
    isSecretName(name.replace(/-/g, '_'))
  );
}

export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name) && !/ACCESS_KEY_ID$/i.test(name);
}

/**
 * Scrubs every known secret value, and any password inside a URL, from text and from values bound
 * for JSON. Every output path (reporter, JSON document, audit log, error messages, dry-run argv) goes
 * through one of these.
 */
export class Redactor {
  #secrets: string[] = [];

  constructor(secrets: Iterable<string> = []) {
    for (const secret of secrets) this.add(secret);
  }

  add(secret: string | Sensitive | undefined): void {
    if (secret === undefined) return;
    const parts = isSensitive(secret) ? secret.secretParts() : [secret];
    for (const part of parts) {
      // Very short values would scrub ordinary words; they are still hidden wherever a Sensitive is shown.
      if (part.length >= 4 && !this.#secrets.includes(part)) this.#secrets.push(part);
    }
    this.#secrets.sort((a, b) => b.length - a.length);
  }

  /** A URL given on the command line: its password (if any) is a secret, the rest is not. */
  addUrl(url: string): void {
    const sensitive = Sensitive.url(url);
    for (const part of sensitive.secretParts().slice(1)) this.add(part);
  }

  /** Secrets found in an environment: by name (`*_PASSWORD`, `*_TOKEN`, ...) and URL passwords. */
  addFromEnv(env: Record<string, string | undefined>): void {
    for (const [name, value] of Object.entries(env)) {
      if (!value) continue;
      if (isSecretName(name)) this.add(value);
      else if (/:\/\/[^/@\s]*:[^@/\s]+@/.test(value)) this.add(Sensitive.url(value));
    }
  }

  scrub(text: string): string {
    let out = text;
    for (const secret of this.#secrets) {
      if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    }
    // `--password=x` echoed in free text (commander's "unknown option '--password=x'", say).
    out = out.replace(/(--?[\w-]+)=([^\s'"]+)/g, (match, flag: string) =>
      isSecretName(flag.replace(/^-+/, '').replace(/-/g, '_')) ? `${flag}=${REDACTED}` : match,
    );
    return redactUrlPassword(out);
  }

  /** A deep copy safe to serialise: Sensitive values shown redacted, strings scrubbed. */
  scrubValue(value: unknown): unknown {
    if (isSensitive(value)) return value.toJSON();
    if (typeof value === 'string') return this.scrub(value);
    if (Array.isArray(value)) return value.map((item) => this.scrubValue(item));
    if (value instanceof Date) return value.toISOString();
    if (value instanceof Error) return { name: value.name, message: this.scrub(value.message) };
    if (value && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) {
        if (item === undefined) continue;
        out[key] = this.scrubValue(item);
      }
      return out;
    }
    return value;
  }

  /** Argv for a dry run or the audit log: `--password=x`, `--token x` and URL passwords hidden. */
  scrubArgv(argv: readonly string[]): string[] {
    const out: string[] = [];
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i]!;
      const eq = /^(--?[\w-]+)=(.*)$/.exec(arg);
      if (eq && isSecretName(eq[1]!.replace(/^-+/, '').replace(/-/g, '_'))) {
        out.push(`${eq[1]}=${REDACTED}`);
        continue;
      }
      out.push(this.scrub(arg));
      if (/^--?[\w-]+$/.test(arg) && isSecretName(arg.replace(/^-+/, '').replace(/-/g, '_')) && i + 1 < argv.length) {
        out.push(REDACTED);
        i++;
      }
    }
    return out;
  }
}
