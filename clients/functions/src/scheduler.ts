/**
 * `ctx.scheduler` over the bridge, for mutations only: `schedule` and
 * `cancel` are `bridge.db` operations, synchronous like the rest of
 * `ctx.db`, so the same rules hold (settled promises, a refusal thrown at
 * the call, `CALL_ENDED` once the call has its result). Inputs are checked
 * here first, so a bad one never reaches the shard.
 */
import type { DbOp } from "./bridge.ts";
import { openEnvelope } from "./bridge.ts";
import type { Call } from "./call.ts";
import type { Fields, Scheduler } from "./ctx.ts";
import { describe } from "./describe.ts";
import { ErrorCode, raise, type PylonError } from "./errors.ts";
import { FUNCTION_NAME } from "./function-name.ts";

function badSchedule(method: string, reason: string): PylonError {
  return raise(ErrorCode.BAD_SCHEDULE, `ctx.scheduler.${method}: ${reason}`);
}

function checkName(method: string, name: unknown): string {
  if (typeof name !== "string" || !FUNCTION_NAME.test(name)) {
    throw badSchedule(method, `${describe(name)} is not a function name (a letter, then letters, digits or _, 64 at most)`);
  }
  return name;
}

/** The args as JSON text's value: an object (`{}` when left out) that JSON can carry. */
function checkArgs(method: string, args: unknown): Fields {
  if (args === undefined) return {};
  if (typeof args !== "object" || args === null || Array.isArray(args)) {
    throw badSchedule(method, `args must be an object, got ${describe(args)}`);
  }
  try {
    JSON.stringify(args);
  } catch (error) {
    throw badSchedule(method, `args are not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  return args as Fields;
}

/** The scheduled time in ms since the epoch. */
function checkWhen(when: unknown): number {
  const ms = when instanceof Date ? when.getTime() : when;
  if (typeof ms !== "number" || !Number.isFinite(ms)) {
    throw badSchedule("runAt", `when must be a finite number of ms since the epoch or a valid Date, got ${describe(when)}`);
  }
  return ms;
}

function checkDelay(delayMs: unknown): number {
  if (typeof delayMs !== "number" || !Number.isFinite(delayMs) || delayMs < 0) {
    throw badSchedule("runAfter", `delayMs must be a finite number >= 0, got ${describe(delayMs)}`);
  }
  return delayMs;
}

/** `ctx.scheduler` for a mutation's `call`. */
export function schedulerFor(call: Call): Scheduler {
  const send = (op: DbOp, method: string, payload: () => object): unknown => {
    call.ensureRunning(`ctx.scheduler.${method}`);
    return openEnvelope(call.bridge.db(op, JSON.stringify(payload())));
  };
  return {
    runAfter: (delayMs, name, args) =>
      Promise.resolve(
        send("schedule", "runAfter", () => ({
          delayMs: checkDelay(delayMs),
          name: checkName("runAfter", name),
          args: checkArgs("runAfter", args),
        })) as string,
      ),
    runAt: (when, name, args) =>
      Promise.resolve(
        send("schedule", "runAt", () => ({ at: checkWhen(when), name: checkName("runAt", name), args: checkArgs("runAt", args) })) as string,
      ),
    cancel: (id) =>
      Promise.resolve(
        void send("cancel", "cancel", () => {
          if (typeof id !== "string" || id === "") throw badSchedule("cancel", `id must be a scheduled id (a non-empty string), got ${describe(id)}`);
          return { id };
        }),
      ),
  };
}
