/**
 * The contract with the Rust side, which builds one `Bridge` per call and
 * calls `globalThis.__pylon_functions.run(name, bridge, argsJson)`.
 * Everything crosses as JSON text in one envelope shape:
 * `{"ok": <value>}` or `{"err": {"code": "...", "message": "..."}}`.
 */
import type { FunctionKind } from "./ctx.ts";
import { ErrorCode, raise } from "./errors.ts";

/** The `ctx.db`, `ctx.scheduler` and `ctx.jobs` operations and their payloads (JSON). */
export type DbOp =
  | "get" //      {"entity","id"}              -> row | null
  | "query" //    {"entity","where","order","limit"} -> rows
  | "insert" //   {"entity","row"}             -> id
  | "update" //   {"entity","id","set"}        -> null
  | "delete" //   {"entity","id"}              -> null
  | "schedule" // {"delayMs","name","args"} or {"at","name","args"} -> scheduled id (mutations only)
  | "cancel" //   {"id"}                       -> null (mutations only)
  | "enqueue"; // {"name","payload","delayMs"?,"maxRetries"?,"queue"?,"priority"?,"key"?} -> job id (mutations only)

/** What the Rust side hands to one call. */
export interface Bridge {
  /** The kind the caller expects. */
  readonly kind: FunctionKind;
  /** `{"userId", "tenantId", "roles", "isAdmin"}` as JSON. */
  readonly auth: string;
  /** Synchronous: the shard runs the operation in the call's turn. Returns an envelope. */
  db(op: DbOp, payloadJson: string): string;
  /** Actions only: runs another function (`runQuery` / `runMutation`). Resolves to an envelope. */
  call?(kind: "query" | "mutation", name: string, argsJson: string): Promise<string>;
  /** Actions only: publishes to a channel (`ctx.channels.publish`). Resolves to an envelope of `{id, at}`. */
  publish?(channel: string, dataJson: string): Promise<string>;
  /**
   * Actions only: one operation of the rooms API (`ctx.rooms`) on `room`
   * ("" for `list`) with the route's body as JSON. Resolves to an envelope
   * of the route's answer.
   */
  room?(op: RoomOp, room: string, bodyJson: string): Promise<string>;
}

/** The rooms API's operations: its routes (docs/rooms.md), `get` and `list` being the GETs. */
export type RoomOp = "join" | "presence" | "leave" | "broadcast" | "get" | "list";

/** What the bundle installs as `globalThis.__pylon_functions`. */
export interface FunctionsGlobal {
  readonly version: 1;
  list(): { name: string; kind: FunctionKind; trusted: boolean }[];
  /** Never rejects; resolves to an envelope. */
  run(name: string, bridge: Bridge, argsJson: string): Promise<string>;
}

/** The value of an envelope from the bridge; an `err` is thrown as a `PylonError` with its code. */
export function openEnvelope(text: string): unknown {
  const envelope = JSON.parse(text) as { ok?: unknown; err?: { code?: unknown; message?: unknown } };
  const err = envelope.err;
  if (err !== undefined && err !== null) {
    const code = typeof err.code === "string" && err.code !== "" ? err.code : ErrorCode.FUNCTION_FAILED;
    throw raise(code, typeof err.message === "string" ? err.message : "");
  }
  return envelope.ok ?? null;
}

/** `{"err": {"code", "message"}}`. */
export function errEnvelope(code: string, message: string): string {
  return JSON.stringify({ err: { code, message } });
}
