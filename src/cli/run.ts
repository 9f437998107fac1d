/** Shared plumbing for every command: error reporting, exit codes, and where output goes. */
import { isUserError, messageOf } from '../errors.js';
import { printable, printableJson, printableLines } from '../printable.js';

export interface GlobalOptions {
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

/**
 * The library names an option in an error by its name in the API, with the value where that names
 * something (`batchSize`, `input=x`); the user typed a flag. Keys are those names, values the flags of
 * every command that has the option.
 */
const FLAGS: ReadonlyMap<string, string> = new Map([
  ['batchSize', '--batch-size'],
  ['compare', '--compare'],
  ['data', '--data'],
  ['ep', '--ep'],
  ['eps', '--ep'],
  ['epochs', '--epochs'],
  ['freeze', '--freeze'],
  ['input', '--input'],
  ['layout', '--layout'],
  ['maxSamples', '--limit'],
  ['mean', '--mean'],
  ['optimizer', '--optimizer'],
  ['optimizer.momentum', '--momentum'],
  ['optimizer.weightDecay', '--weight-decay'],
  ['output', '--output'],
  ['pageEp', '--page-ep'],
  ['patience', '--patience'],
  ['port', '--port'],
  ['preprocess', '--scale/--mean/--std/--layout'],
  ['resume', '--resume'],
  ['scale', '--scale'],
  ['schedule', '--schedule'],
  ['schedule.every', '--lr-step'],
  ['schedule.gamma', '--lr-gamma'],
  ['schedule.lr', '--lr'],
  ['split', '--split'],
  ['std', '--std'],
  ['train', '--data'],
  ['trainOnly', '--train-only'],
]);

/**
 * A library subject as the user knows it: an option's API name, alone or as `name=value`, becomes its
 * flag (`--input x`); anything else (a file, a model, `input x` for a model's input) is left as it is.
 * `flags` overrides the table for one command (finetune's training output is --train-output).
 */
export function asFlag(subject: string, flags: Readonly<Record<string, string>> = {}): string {
  const m = /^([A-Za-z.]+)(?:=(.*))?$/s.exec(subject);
  if (!m) return subject;
  const flag = Object.hasOwn(flags, m[1]!) ? flags[m[1]!] : FLAGS.get(m[1]!);
  if (flag === undefined) return subject;
  return m[2] === undefined ? flag : `${flag} ${m[2]}`;
}

/** A recorded `subject: cause` message (a report's error field) with its subject as asFlag says. */
export function withFlag(message: string, flags?: Readonly<Record<string, string>>): string {
  const m = /^([A-Za-z.]+(?:=[^:]*)?): /.exec(message);
  return m ? `${asFlag(m[1]!, flags)}${message.slice(m[1]!.length)}` : message;
}

/**
 * Runs a command body. User errors become one line `error: <subject>: <cause>` on stderr and exit 2,
 * the subject named as the user knows it (asFlag); anything else is a bug: one line too, with the stack
 * only under --verbose. Messages quote names from models and data, so the line is made printable whole:
 * a name's newline cannot forge a line.
 */
export function action<A extends unknown[]>(body: (...args: A) => Promise<void>, flags?: Readonly<Record<string, string>>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const verbose = process.argv.includes('--verbose');
    try {
      await body(...args);
    } catch (e) {
      if (isUserError(e)) {
        const subject = asFlag(e.subject, flags);
        process.stderr.write(`error: ${printable(subject ? `${subject}: ${e.cause_}` : e.cause_)}\n`);
        if (verbose && e.stack) process.stderr.write(printableLines(e.stack) + '\n');
        process.exitCode = e.exitCode;
      } else {
        process.stderr.write(`error: ${printable(messageOf(e))}\n`);
        if (verbose && e instanceof Error && e.stack) process.stderr.write(printableLines(e.stack) + '\n');
        process.exitCode = 1;
      }
    }
  };
}

/**
 * Human output goes to stderr so that stdout carries nothing but JSON under --json. Control
 * characters are escaped line by line (the tool's own line breaks stay); tables escape their cells.
 */
export function say(opts: GlobalOptions, line: string): void {
  if (!opts.quiet) process.stderr.write(printableLines(line) + '\n');
}

/** C1 controls and bidi overrides are valid raw in JSON strings: printableJson escapes them too. */
export function printJson(value: unknown): void {
  process.stdout.write(printableJson(JSON.stringify(value, null, 2)) + '\n');
}

export interface ProgressBar {
  /** Redraws `[####....] label`, at most a few times a second except for the last step. */
  update(done: number, total: number, before: string, after?: string): void;
  clear(): void;
}

/** A one-line bar redrawn in place on stderr; callers create it only for a terminal. */
export function progressBar(width = 24): ProgressBar {
  let last = '';
  let lastAt = 0;
  return {
    update(done, total, before, after = '') {
      const now = Date.now();
      // Redrawing costs more than a small model's run; a few frames a second is enough to show life.
      if (done !== total && now - lastAt < 100) return;
      lastAt = now;
      const fill = Math.round((total ? done / total : 1) * width);
      const line = printable(`${before} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${done}/${total}${after}`);
      if (line === last) return;
      last = line;
      process.stderr.write(`\r\x1b[2K${line}`);
    },
    clear() {
      if (last) process.stderr.write('\r\x1b[2K');
      last = '';
    },
  };
}
