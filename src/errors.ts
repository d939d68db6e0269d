/**
 * The two kinds of failure. A UserError is something the user can fix (bad input,
 * missing tool, a job that failed): the CLI prints its message and hint and exits
 * with its code, without a stack. Anything else is a bug and keeps its stack.
 */

/** Exit code for a usage mistake (bad flag, bad value, bad file). */
export const EXIT_USAGE = 2;
/** Exit code for everything else that went wrong on the user's side (failed job, missing model). */
export const EXIT_FAILURE = 1;
/** Exit code after Ctrl-C stopped a job, as shells report a SIGINT death. */
export const EXIT_INTERRUPTED = 130;

/** A failure the user can act on: `message` says what is wrong, `hint` what to do. */
export class UserError extends Error {
  override readonly name = "UserError";
  constructor(
    message: string,
    readonly hint?: string,
    readonly exitCode: number = EXIT_USAGE,
    /** Lines shown after the message, such as the last lines of a failed job's log. */
    readonly details: readonly string[] = [],
  ) {
    super(message);
  }
}

/** A UserError with exit code 1: the input was fine but the work failed. */
export function failure(message: string, hint?: string, details: readonly string[] = []): UserError {
  return new UserError(message, hint, EXIT_FAILURE, details);
}

/** Narrow an unknown catch value to a Node system error with a code. */
export function isErrnoError(err: unknown, code?: string): err is NodeJS.ErrnoException {
  return (
    err instanceof Error && typeof (err as NodeJS.ErrnoException).code === "string" && (code === undefined || (err as NodeJS.ErrnoException).code === code)
  );
}
