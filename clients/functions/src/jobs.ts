/**
 * `ctx.jobs` over the bridge, for mutations only: `enqueue` is the bridge's
 * `enqueue` operation, synchronous like `ctx.db` (a settled promise, a
 * refusal thrown at the call, `CALL_ENDED` once the call has its result).
 * The job is kept only if the mutation commits; the shard then hands it to
 * the jobs ledger (docs/functions.md, "Jobs from a mutation"). Inputs are
 * checked here first, so a bad one never reaches the shard; the shard
 * checks them again, with the app's queues and functions.
 */
import { openEnvelope } from "./bridge.ts";
import type { Call } from "./call.ts";
import type { Fields, JobOptions, Jobs } from "./ctx.ts";
import { describe } from "./describe.ts";
import { ErrorCode, raise, type PylonError } from "./errors.ts";
import { FUNCTION_NAME } from "./function-name.ts";

/** The limits of a job (src/jobs/spec.rs has the same). */
export const JOB_LIMITS = {
  /** A queue delivers at most 12 hours later. */
  maxDelayMs: 12 * 60 * 60 * 1000,
  maxRetries: 100,
  maxPriority: 9,
  /** UTF-8 bytes. */
  maxKeyBytes: 200,
} as const;

const OPTIONS = new Set(["delayMs", "maxRetries", "queue", "priority", "key"]);

function badJob(reason: string): PylonError {
  return raise(ErrorCode.BAD_JOB, `ctx.jobs.enqueue: ${reason}`);
}

function checkInt(name: string, value: unknown, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > max) {
    throw badJob(`${name} must be an integer from 0 to ${max}, got ${describe(value)}`);
  }
  return value;
}

function checkPayload(payload: unknown): Fields {
  if (payload === undefined) return {};
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
    throw badJob(`payload must be an object (the handler's args), got ${describe(payload)}`);
  }
  try {
    JSON.stringify(payload);
  } catch (error) {
    throw badJob(`payload is not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  return payload as Fields;
}

/** The options as the bridge's payload fields; left-out ones are the shard's defaults. */
function checkOptions(options: unknown): JobOptions {
  if (options === undefined) return {};
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw badJob(`options must be an object, got ${describe(options)}`);
  }
  const given = options as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!OPTIONS.has(key)) throw badJob(`unknown option ${JSON.stringify(key)} (delayMs, maxRetries, queue, priority, key)`);
  }
  const checked: JobOptions = {};
  if (given.delayMs !== undefined) checked.delayMs = checkInt("delayMs", given.delayMs, JOB_LIMITS.maxDelayMs);
  if (given.maxRetries !== undefined) checked.maxRetries = checkInt("maxRetries", given.maxRetries, JOB_LIMITS.maxRetries);
  if (given.priority !== undefined) checked.priority = checkInt("priority", given.priority, JOB_LIMITS.maxPriority);
  if (given.queue !== undefined) {
    if (typeof given.queue !== "string" || !FUNCTION_NAME.test(given.queue)) {
      throw badJob(`queue must be a queue name (a letter, then letters, digits or _, 64 at most), got ${describe(given.queue)}`);
    }
    checked.queue = given.queue;
  }
  if (given.key !== undefined) {
    const bytes = typeof given.key === "string" ? new TextEncoder().encode(given.key).length : 0;
    if (typeof given.key !== "string" || bytes === 0 || bytes > JOB_LIMITS.maxKeyBytes) {
      throw badJob(`key must be a string of 1 to ${JOB_LIMITS.maxKeyBytes} bytes, got ${describe(given.key)}`);
    }
    checked.key = given.key;
  }
  return checked;
}

/** `ctx.jobs` for a mutation's `call`. */
export function jobsFor(call: Call): Jobs {
  return {
    enqueue: (name, payload, options) => {
      call.ensureRunning("ctx.jobs.enqueue");
      if (typeof name !== "string" || !FUNCTION_NAME.test(name)) {
        throw badJob(`${describe(name)} is not a function name (a letter, then letters, digits or _, 64 at most)`);
      }
      const spec = { name, payload: checkPayload(payload), ...checkOptions(options) };
      return Promise.resolve(openEnvelope(call.bridge.db("enqueue", JSON.stringify(spec))) as string);
    },
  };
}
