/**
 * The one error type of server functions. The runtime throws it into a
 * handler (a refused `ctx.db` call, `ctx.error`, I/O in a mutation) and
 * turns it into the call's result, `{"err": {"code", "message"}}`.
 *
 * Only errors the runtime itself raised keep their code on the way out
 * (they are remembered in `issued`); anything else a handler throws, a
 * `PylonError` it built itself included, is `FUNCTION_FAILED`. So an app
 * cannot pass off its failure as, say, `READ_ONLY`: its own codes go
 * through `ctx.error`, which reports them under `FUNCTION_ERROR`.
 */

/** The codes the runtime produces itself (the bridge adds the engine's). */
export const ErrorCode = {
  /** No function has that name. */
  UNKNOWN_FUNCTION: "UNKNOWN_FUNCTION",
  /** The function is of another kind than the caller asked for. */
  WRONG_KIND: "WRONG_KIND",
  /** The args are not a JSON object or fail the validators (message: path and reason). */
  BAD_ARGS: "BAD_ARGS",
  /** The handler called `ctx.error(code, message)` (message: `"<code>: <message>"`). */
  FUNCTION_ERROR: "FUNCTION_ERROR",
  /** The handler threw something else, or its result is not JSON. */
  FUNCTION_FAILED: "FUNCTION_FAILED",
  /** A query or mutation started I/O or awaited something other than `ctx.db`. */
  MUTATION_IO: "MUTATION_IO",
  /** A query called a write method of `ctx.db`. */
  READ_ONLY: "READ_ONLY",
  /** `ctx.scheduler` was given a bad delay, time, function name, args or id (before reaching the shard). */
  BAD_SCHEDULE: "BAD_SCHEDULE",
  /** `ctx.jobs.enqueue` was given a bad name, payload or option (the shard also answers it for a limit it checks). */
  BAD_JOB: "BAD_JOB",
  /** `ctx` was used after its call had ended. */
  CALL_ENDED: "CALL_ENDED",
} as const;

/** An error with a stable code, as it goes on the wire. */
export class PylonError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "PylonError";
    this.code = code;
  }
}

const issued = new WeakSet<PylonError>();

/** Builds an error whose code survives to the call's result. */
export function raise(code: string, message: string): PylonError {
  const error = new PylonError(code, message);
  issued.add(error);
  return error;
}

/** Whether the runtime raised this error (and its code is to be kept). */
export function isIssued(error: unknown): error is PylonError {
  return error instanceof PylonError && issued.has(error);
}

const UPPER_SNAKE = /^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$/;
const MAX_MESSAGE = 2000;

/**
 * The error `ctx.error(code, message)` throws: `FUNCTION_ERROR` with
 * `"<code>: <message>"`; a code that is not UPPER_SNAKE is reported as
 * `APP_ERROR`.
 */
export function appError(code: unknown, message: unknown): PylonError {
  const shown = typeof code === "string" && UPPER_SNAKE.test(code) ? code : "APP_ERROR";
  return raise(ErrorCode.FUNCTION_ERROR, `${shown}: ${String(message ?? "")}`);
}

/** A thrown value's message, never its stack; never throws. */
export function messageOf(thrown: unknown): string {
  let text: string;
  try {
    if (thrown instanceof Error) text = String(thrown.message);
    else if (typeof thrown === "string") text = thrown;
    else text = String(thrown);
  } catch {
    text = "a value that cannot be shown";
  }
  if (text === "") text = "the function threw without a message";
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}…` : text;
}
