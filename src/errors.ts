/**
 * A failure caused by the user's input (a file, a flag, a data set), as opposed to a bug.
 * The CLI prints these as one line `error: <subject>: <cause>` and exits with code 2.
 */
export class UserError extends Error {
  constructor(
    readonly subject: string,
    readonly cause_: string,
    readonly exitCode = 2,
  ) {
    super(subject ? `${subject}: ${cause_}` : cause_);
    this.name = 'UserError';
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}

/** Message of any thrown value, without a stack. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * The line of a multi-line library message that says what happened, for a one-line error: onnxruntime
 * puts it last (after a source location), Playwright first (before its call log, behind a
 * "page.evaluate: Error: " prefix).
 */
export function messageLine(s: string, from: 'first' | 'last'): string {
  const lines = s
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  if (from === 'last') return lines[lines.length - 1] ?? s;
  return (lines[0] ?? s).replace(/^[\w.]+: (Error: )?/, '');
}
