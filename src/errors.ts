/** Exit codes are a contract with cron, CI and monitoring probes (README: "Exit codes"). */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  checkFailed: 3,
  locked: 4,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export interface ErrorOptions {
  hint?: string;
  cause?: unknown;
  details?: unknown;
}

/** Every failure opskit reports is one of these: a stable code, a message, and a hint for the operator. */
export class OpskitError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  readonly exitCode: ExitCodeValue;
  readonly details: unknown;
  /** Set once a command has rendered this error, so the entry point does not print it twice. */
  reported = false;

  constructor(code: string, message: string, exitCode: ExitCodeValue, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options.hint;
    this.exitCode = exitCode;
    this.details = options.details;
  }
}

/** Bad flags, arguments or input: exit 2, and nothing was changed. */
export class UsageError extends OpskitError {
  constructor(message: string, options: ErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'E_USAGE', message, ExitCode.usage, options);
  }
}

/** The configuration (file, env files, environment, flags) is invalid: exit 2. */
export class ConfigError extends OpskitError {
  constructor(message: string, options: ErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'E_CONFIG', message, ExitCode.usage, options);
  }
}

/** The operation was attempted and failed: exit 1. */
export class OperationError extends OpskitError {
  constructor(code: string, message: string, options: ErrorOptions = {}) {
    super(code, message, ExitCode.failed, options);
  }
}

/** A check ran and did not pass (health, doctor, a threshold): exit 3. */
export class CheckFailedError extends OpskitError {
  constructor(message: string, options: ErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'E_CHECK_FAILED', message, ExitCode.checkFailed, options);
  }
}

/** Another run holds the project lock: exit 4. */
export class LockHeldError extends OpskitError {
  constructor(message: string, options: ErrorOptions = {}) {
    super('E_LOCKED', message, ExitCode.locked, options);
  }
}

/** Anything thrown that is not ours becomes an operation failure with its message kept. */
export function toOpskitError(error: unknown): OpskitError {
  if (error instanceof OpskitError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new OperationError('E_INTERNAL', message, { cause: error });
}
