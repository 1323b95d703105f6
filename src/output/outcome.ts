import type { OpskitError } from '../errors.js';
import type { Reporter } from './reporter.js';

/** What a command's action hands back to the CLI: its result (the JSON document), and how to show it. */
export interface CommandOutcome<R> {
  result: R;
  /** The human rendering; receives the reporter for its colours. */
  render(reporter: Reporter): string;
  /** A result that is itself a failed check or operation: rendered, then the run exits with this code. */
  failure?: OpskitError;
}
