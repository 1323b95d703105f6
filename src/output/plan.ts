import type { Redactor } from '../config/redact.js';

/**
 * One step a mutating command would take. Builders produce these; the executor carries them out, or
 * with --dry-run prints them and changes nothing.
 */
export type PlannedStep =
  | { kind: 'exec'; argv: string[]; description?: string }
  | { kind: 'docker'; call: string; options: unknown; description?: string }
  | { kind: 'write'; path: string; bytes: number; overwrite: boolean; description?: string }
  | { kind: 'delete'; path: string; description?: string }
  | { kind: 'wait'; what: string; timeoutMs: number; description?: string }
  | { kind: 'http'; method: string; url: string; description?: string };

export function describePlannedStep(step: PlannedStep, redactor: Redactor): string {
  const why = step.description ? `  # ${step.description}` : '';
  switch (step.kind) {
    case 'exec':
      return `would run: ${redactor.scrubArgv(step.argv).map(quoteForDisplay).join(' ')}${why}`;
    case 'docker':
      return `would call Docker ${step.call} ${JSON.stringify(redactor.scrubValue(step.options))}${why}`;
    case 'write':
      return `would ${step.overwrite ? 'overwrite' : 'write'} ${step.path} (${step.bytes} bytes)${why}`;
    case 'delete':
      return `would delete ${step.path}${why}`;
    case 'wait':
      return `would wait up to ${Math.round(step.timeoutMs / 1000)}s for ${step.what}${why}`;
    case 'http':
      return `would request ${step.method} ${step.url}${why}`;
  }
}

/** For display only (argv is never joined to be run): quote what a reader would misread. */
export function quoteForDisplay(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
