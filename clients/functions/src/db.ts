/**
 * `ctx.db` over the bridge. Each method is one synchronous `bridge.db`
 * call; the result comes back as an already settled promise, so a handler
 * that awaits only `ctx.db` finishes within the microtask checkpoint it
 * started in (and wins run.ts's race against the next macrotask). A
 * refusal is thrown at the call, never left in a rejected promise that an
 * unawaited write could drop.
 */
import type { DbOp } from "./bridge.ts";
import { openEnvelope } from "./bridge.ts";
import type { Call } from "./call.ts";
import type { DatabaseWriter, Fields, QueryOptions, QuerySpec, Row } from "./ctx.ts";
import { ErrorCode, raise } from "./errors.ts";

function send(call: Call, op: DbOp, payload: object): unknown {
  call.ensureRunning(`ctx.db.${op}`);
  return openEnvelope(call.bridge.db(op, JSON.stringify(payload)));
}

function readOnly(op: string): () => never {
  return () => {
    throw raise(ErrorCode.READ_ONLY, `ctx.db.${op} is not allowed in a query: a query only reads; write in a mutation`);
  };
}

/** `ctx.db` for `call`; `writable` is false for a query. */
export function databaseFor(call: Call, writable: boolean): DatabaseWriter {
  return {
    get: (entity: string, id: string) => Promise.resolve(send(call, "get", { entity, id }) as Row | null),
    query: (query: QuerySpec | string, options?: QueryOptions) =>
      Promise.resolve(send(call, "query", typeof query === "string" ? { ...options, entity: query } : query) as Row[]),
    insert: writable
      ? (entity: string, row: Fields) => Promise.resolve(send(call, "insert", { entity, row }) as string)
      : readOnly("insert"),
    update: writable
      ? (entity: string, id: string, set: Fields) => Promise.resolve(void send(call, "update", { entity, id, set }))
      : readOnly("update"),
    delete: writable
      ? (entity: string, id: string) => Promise.resolve(void send(call, "delete", { entity, id }))
      : readOnly("delete"),
  } as DatabaseWriter;
}
