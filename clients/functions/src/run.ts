/**
 * One call, from the bridge's `run(name, bridge, argsJson)` to its
 * envelope. The promise never rejects.
 *
 * The I/O rule, part (b): a query or mutation runs inside the shard's
 * turn, so it may await only `ctx.db`, whose promises are already settled.
 * Its handler therefore settles before the next macrotask; `run` races it
 * against one (the original `setTimeout(0)`). Losing the race means the
 * handler awaited something else (I/O, a timer): the call ends with
 * `MUTATION_IO` and whatever the handler does later cannot reach the
 * bridge (`CALL_ENDED`). On the hot path the handler wins and the timer is
 * cleared. Actions are not raced.
 */
import type { Bridge } from "./bridge.ts";
import { errEnvelope } from "./bridge.ts";
import { Call } from "./call.ts";
import { contextFor, parseAuth } from "./context.ts";
import type { FunctionDefinition } from "./define.ts";
import { ErrorCode, isIssued, messageOf, raise } from "./errors.ts";
import { ioGuard } from "./io-guard.ts";
import { formatFailure } from "./validators.ts";

/** The envelope of a handler's result (undefined is null). */
export function okEnvelope(value: unknown): string {
  let body: string | undefined;
  try {
    body = JSON.stringify(value === undefined ? null : value);
  } catch (error) {
    return errEnvelope(ErrorCode.FUNCTION_FAILED, `the result is not JSON: ${messageOf(error)}`);
  }
  if (body === undefined) return errEnvelope(ErrorCode.FUNCTION_FAILED, `the result is not JSON: a ${typeof value}`);
  return `{"ok":${body}}`;
}

/** The envelope of a thrown value: the runtime's own errors keep their code. */
export function thrownEnvelope(thrown: unknown): string {
  if (isIssued(thrown)) return errEnvelope(thrown.code, thrown.message);
  return errEnvelope(ErrorCode.FUNCTION_FAILED, messageOf(thrown));
}

function parseArgs(definition: FunctionDefinition, argsJson: string): unknown {
  let args: unknown;
  try {
    args = JSON.parse(argsJson);
  } catch {
    throw raise(ErrorCode.BAD_ARGS, "args: not JSON");
  }
  // No arguments (`args` omitted from a `call`, an empty HTTP body) are
  // an empty object, so a function without args takes them.
  if (args === null) args = {};
  const failure = definition.args.check(args);
  if (failure) throw raise(ErrorCode.BAD_ARGS, formatFailure("args", failure));
  return args;
}

function withArticle(kind: string): string {
  return /^[aeiou]/.test(kind) ? `an ${kind}` : `a ${kind}`;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === "object" || typeof value === "function") && value !== null && typeof (value as { then?: unknown }).then === "function";
}

function awaitedIo(call: Call): string {
  const kind = call.kind;
  return errEnvelope(
    ErrorCode.MUTATION_IO,
    `${call.name} awaited something other than ctx.db (I/O or a timer): a ${kind} runs inside the shard's turn and may await only ctx.db; do I/O in an action`,
  );
}

/**
 * Calls still running, each with how to end it, and the one timer that
 * ends them. A well-behaved query or mutation settles within the
 * microtasks of the event that started it, and a timer fires in a later
 * event: so whatever is still running when it fires awaited I/O. One timer
 * serves every call started before it fires (a shard's flush runs many),
 * instead of one per call.
 */
const running = new Set<() => void>();
let turnTimer: ReturnType<typeof setTimeout> | undefined;

function endRunningCalls(): void {
  turnTimer = undefined;
  const ending = [...running];
  running.clear();
  for (const end of ending) end();
}

/** Settles a query's or mutation's result within the turn, or ends the call. */
function withinTurn(call: Call, result: unknown): Promise<string> {
  if (!isThenable(result)) {
    call.state = "settled";
    return Promise.resolve(okEnvelope(result));
  }
  const guard = ioGuard();
  return new Promise<string>((resolve) => {
    const end = () => {
      if (call.state !== "running") return;
      call.state = "ended";
      resolve(awaitedIo(call));
    };
    running.add(end);
    if (turnTimer === undefined) turnTimer = guard.setTimeout(endRunningCalls, 0);
    const settle = (envelope: () => string) => {
      if (call.state !== "running") return;
      call.state = "settled";
      running.delete(end);
      if (running.size === 0 && turnTimer !== undefined) {
        guard.clearTimeout(turnTimer);
        turnTimer = undefined;
      }
      resolve(envelope());
    };
    // Promise.resolve: a thenable whose `then` throws rejects here instead of escaping.
    Promise.resolve(result).then(
      (value) => settle(() => okEnvelope(value)),
      (thrown) => settle(() => thrownEnvelope(thrown)),
    );
  });
}

function afterAction(call: Call, result: unknown): Promise<string> {
  return Promise.resolve(result).then(
    (value) => {
      call.state = "settled";
      return okEnvelope(value);
    },
    (thrown) => {
      call.state = "settled";
      return thrownEnvelope(thrown);
    },
  );
}

/** Runs `name` from `registry` for the bridge; resolves to an envelope, never rejects. */
export function runFunction(
  registry: ReadonlyMap<string, FunctionDefinition>,
  name: string,
  bridge: Bridge,
  argsJson: string,
): Promise<string> {
  let call: Call | undefined;
  try {
    const definition = registry.get(name);
    if (definition === undefined) {
      return Promise.resolve(errEnvelope(ErrorCode.UNKNOWN_FUNCTION, `no function is named ${JSON.stringify(String(name))}`));
    }
    if (definition.kind !== bridge.kind) {
      return Promise.resolve(
        errEnvelope(ErrorCode.WRONG_KIND, `${name} is ${withArticle(definition.kind)}, but was called as ${withArticle(String(bridge.kind))}`),
      );
    }
    const args = parseArgs(definition, argsJson);
    const started = new Call(name, definition.kind, bridge);
    call = started;
    const ctx = contextFor(started, parseAuth(bridge.auth));
    const result = ioGuard().run(started, () => definition.handler(ctx, args));
    return started.kind === "action" ? afterAction(started, result) : withinTurn(started, result);
  } catch (thrown) {
    // Thrown before the handler returned: bad args, or its synchronous part.
    if (call !== undefined) call.state = "settled";
    return Promise.resolve(thrownEnvelope(thrown));
  }
}
