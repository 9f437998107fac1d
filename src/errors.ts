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
