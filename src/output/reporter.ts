import { Chalk, type ChalkInstance } from 'chalk';
import type { Clock } from '../adapters/clock.js';
import type { Redactor } from '../config/redact.js';
import { describePlannedStep, type PlannedStep } from './plan.js';

export interface Stream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ReporterOptions {
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  color: boolean;
  stdout: Stream;
  stderr: Stream;
  clock: Clock;
  redactor: Redactor;
}

export interface StepHandle {
  update(text: string): void;
  succeed(text?: string): void;
  warn(text?: string): void;
  fail(text?: string): void;
}

interface Spinner {
  text: string;
  start(): Spinner;
  stopAndPersist(options: { symbol: string; text: string }): Spinner;
}

type SpinnerFactory = (options: {
  text: string;
  stream: unknown;
  isEnabled: boolean;
  color: 'cyan' | false;
  discardStdin: boolean;
}) => Spinner;

/**
 * Everything a command shows goes through here, scrubbed of secrets on the way out.
 * - stdout carries the result: a human rendering, or with --json exactly one JSON document.
 * - stderr carries progress: ora spinners when it is a TTY (and not --json or --quiet), otherwise one
 *   plain, timestamped line per step, which is what cron mail and CI logs want.
 */
export class Reporter {
  readonly options: ReporterOptions;
  /** Colours for stdout (the result) and stderr (progress); none without a TTY, with --no-color or NO_COLOR. */
  readonly out: ChalkInstance;
  readonly err: ChalkInstance;
  readonly interactive: boolean;
  #ora: SpinnerFactory | undefined;
  #jsonWritten = false;

  constructor(options: ReporterOptions, ora?: SpinnerFactory) {
    this.options = options;
    this.out = new Chalk({ level: options.color && !options.json && options.stdout.isTTY ? 1 : 0 });
    this.err = new Chalk({ level: options.color && options.stderr.isTTY ? 1 : 0 });
    // A terminal that reports 0 columns (some CI pseudo-terminals) would make a spinner redraw forever.
    const width = options.stderr.columns ?? 80;
    this.interactive =
      Boolean(options.stderr.isTTY) && width > 0 && !options.json && !options.quiet && ora !== undefined;
    this.#ora = ora;
  }

  #mark(kind: 'step' | 'ok' | 'warn' | 'fail' | 'info' | 'debug'): string {
    return {
      step: this.err.cyan('›'),
      ok: this.err.green('✔'),
      warn: this.err.yellow('⚠'),
      fail: this.err.red('✖'),
      info: this.err.blue('ℹ'),
      debug: this.err.gray('·'),
    }[kind];
  }

  #line(kind: 'step' | 'ok' | 'warn' | 'fail' | 'info' | 'debug', text: string): void {
    const clean = this.options.redactor.scrub(text);
    if (this.interactive) {
      this.options.stderr.write(`${this.#mark(kind)} ${kind === 'debug' ? this.err.gray(clean) : clean}\n`);
      return;
    }
    const label = { step: 'step', ok: 'ok', warn: 'warn', fail: 'fail', info: 'info', debug: 'debug' }[kind];
    const colour = {
      step: this.err.cyan,
      ok: this.err.green,
      warn: this.err.yellow,
      fail: this.err.red,
      info: this.err.blue,
      debug: this.err.gray,
    }[kind];
    this.options.stderr.write(`${this.options.clock.now().toISOString()} ${colour(label.padEnd(5))} ${clean}\n`);
  }

  /** A step that takes time: a spinner on a TTY, else a line when it starts and one when it ends. */
  step(text: string): StepHandle {
    if (this.options.quiet) {
      return { update() {}, succeed() {}, warn: (t) => this.warn(t ?? text), fail: (t) => this.error(t ?? text) };
    }
    if (this.interactive && this.#ora) {
      const spinner = this.#ora({
        text: this.options.redactor.scrub(text),
        stream: this.options.stderr,
        isEnabled: true,
        color: this.err.level > 0 ? 'cyan' : false,
        discardStdin: false,
      }).start();
      // Our own marks, in our own colours: --no-color reaches them too.
      const stop = (kind: 'ok' | 'warn' | 'fail', t: string | undefined) =>
        void spinner.stopAndPersist({ symbol: this.#mark(kind), text: this.options.redactor.scrub(t ?? text) });
      return {
        update: (t) => {
          spinner.text = this.options.redactor.scrub(t);
        },
        succeed: (t) => stop('ok', t),
        warn: (t) => stop('warn', t),
        fail: (t) => stop('fail', t),
      };
    }
    this.#line('step', text);
    let last = text;
    return {
      // Without a TTY each new state of the step is a line of its own (cron and CI logs).
      update: (t) => {
        if (t !== last) this.#line('step', t);
        last = t;
      },
      succeed: (t) => this.#line('ok', t ?? text),
      warn: (t) => this.#line('warn', t ?? text),
      fail: (t) => this.#line('fail', t ?? text),
    };
  }

  info(text: string): void {
    if (!this.options.quiet) this.#line('info', text);
  }

  /** Warnings show even with --quiet: cron mails them. */
  warn(text: string): void {
    this.#line('warn', text);
  }

  error(text: string): void {
    this.#line('fail', text);
  }

  debug(text: string): void {
    if (this.options.verbose) this.#line('debug', text);
  }

  /** `[dry run] would run: ...`, from the same step the command would have carried out. */
  dryRun(step: PlannedStep): void {
    if (this.options.json) return;
    this.options.stderr.write(
      `${this.err.magenta('[dry run]')} ${this.options.redactor.scrub(describePlannedStep(step, this.options.redactor))}\n`,
    );
  }

  /** The human rendering of a result, on stdout. Not used with --json. */
  result(text: string): void {
    if (this.options.json) return;
    if (text) this.options.stdout.write(`${this.options.redactor.scrub(text)}${text.endsWith('\n') ? '' : '\n'}`);
  }

  /** The one JSON document of a --json run: secrets scrubbed, written once. */
  json(document: Record<string, unknown>): void {
    if (this.#jsonWritten) throw new Error('a second JSON document would break --json stdout');
    this.#jsonWritten = true;
    this.options.stdout.write(`${JSON.stringify(this.options.redactor.scrubValue(document), null, 2)}\n`);
  }
}
