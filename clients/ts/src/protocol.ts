/**
 * The `pylon.v1` messages in their JSON encoding (`pylon.v1.json`), as
 * docs/protocol.md specifies them. Only the types: encoding is
 * `JSON.stringify`, decoding is `JSON.parse` plus {@link decodeServer}.
 * The same objects go in postcard through postcard-protocol.ts.
 */

/** A plain JSON value (rows, `where`, presence state, broadcast data). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A row: a JSON object whose `id` is a string. */
export interface Row {
  id: string;
  [field: string]: Json;
}

/** One write inside a `mut` (all ops of a `mut` commit together). */
export type Op =
  | { type: "insert"; entity: string; row: Row | { [field: string]: Json } }
  | { type: "update"; entity: string; id: string; set: { [field: string]: Json } }
  | { type: "upsert"; entity: string; row: Row }
  | { type: "delete"; entity: string; id: string };

export type ClientMsg =
  | { type: "hello"; client?: string; token?: string }
  | {
      type: "sub";
      id: string;
      entity: string;
      where?: Json;
      order?: Json;
      limit?: number;
      since?: number;
      count?: boolean;
    }
  | { type: "unsub"; id: string }
  | { type: "mut"; op: string; ops: Op[] }
  | { type: "presence"; state: Json }
  | { type: "bcast"; topic: string; data: Json }
  | { type: "ping"; t?: number }
  | { type: "call"; op: string; name: string; args?: Json }
  | { type: "watch"; id: string; name: string; args?: Json };

export interface Positioned {
  pos: number;
  row: Row;
}

export interface Welcome {
  type: "welcome";
  protocol: string;
  shard: string;
  seq: number;
  conn: string;
  encoding: string;
  /**
   * The server's send window in bytes: the client receipts each quarter
   * of it. JSON only (postcard's `welcome` cannot take a new field), and
   * absent from older servers: the client then uses `RECEIPT_STEP`.
   */
  window?: number;
}
export interface Snap {
  type: "snap";
  id: string;
  seq: number;
  rows: Row[];
  count?: number;
}
export interface Diff {
  type: "diff";
  id: string;
  from: number;
  seq: number;
  added: Positioned[];
  changed: Positioned[];
  removed: string[];
  count?: number;
}
export interface Reset {
  type: "reset";
  id: string;
  reason: string;
}
export interface Ack {
  type: "ack";
  op: string;
  seq: number;
  dup: boolean;
}
export interface Err {
  type: "err";
  code: string;
  message: string;
  op?: string;
  sub?: string;
}
export interface Member {
  conn: string;
  state: Json;
}
export interface PresenceState {
  type: "presence_state";
  members: Member[];
}
export interface PresenceDiff {
  type: "presence_diff";
  joins: Member[];
  updates: Member[];
  leaves: string[];
}
export interface Bcast {
  type: "bcast";
  topic: string;
  data: Json;
  from: string;
}
export interface Pong {
  type: "pong";
  t?: number;
}

/** `result`: what `call` `op` returned (`dup`: a retried mutation's first answer). */
export interface FnResult {
  type: "result";
  op: string;
  seq: number;
  value: Json;
  dup: boolean;
}
/** `value`: the result of watch `id` as of `seq`. */
export interface FnValue {
  type: "value";
  id: string;
  seq: number;
  value: Json;
}

export type ServerMsg =
  | Welcome
  | Snap
  | Diff
  | Reset
  | Ack
  | Err
  | PresenceState
  | PresenceDiff
  | Bcast
  | Pong
  | FnResult
  | FnValue;

/** The subprotocol of the default encoding, JSON (postcard's is `pylon.v1.postcard`, see encoding.ts). */
export const SUBPROTOCOL = "pylon.v1.json";
/** The `protocol` a `welcome` must name. */
export const PROTOCOL = "pylon.v1";
/**
 * The keepalive text frame and its answer. The platform answers it without
 * running the shard (no wake); it is not a message (docs/protocol.md).
 */
export const KEEPALIVE = "pylon.keepalive";
export const KEEPALIVE_ACK = "pylon.keepalive.ack";

/** Close codes (docs/protocol.md, "Close codes"). */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  POLICY: 1008,
  TOO_LARGE: 1009,
  INTERNAL: 1011,
  PROTOCOL: 4400,
  UNAUTHORIZED: 4401,
  FORBIDDEN: 4403,
  /** Too far behind: more than the server's send window unread; reconnect and resume. */
  BEHIND: 4408,
  RATE_LIMITED: 4429,
  OVERLOADED: 4503,
} as const;

/** `err.code` of a `presence` refused for its size (per connection or the shard's total); the previous presence stays. */
export const PRESENCE_TOO_LARGE = "PRESENCE_TOO_LARGE";

/** Error codes the server sends (`err.code`); others may appear (newer servers). */
export const RETRYABLE_CODES: ReadonlySet<string> = new Set(["RATE_LIMITED", "UNAVAILABLE", "INTERNAL"]);

/** Thrown when a frame is not a server message this client understands. */
export class DecodeError extends Error {
  /** The message type was well-formed but unknown: ignore it (protocol "Evolution"). */
  readonly unknownType: boolean;
  constructor(message: string, unknownType = false) {
    super(message);
    this.name = "DecodeError";
    this.unknownType = unknownType;
  }
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function str(m: Record<string, unknown>, k: string): string {
  const v = m[k];
  if (typeof v !== "string") throw new DecodeError(`${m.type}.${k}: expected a string`);
  return v;
}
function optStr(m: Record<string, unknown>, k: string): string | undefined {
  const v = m[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new DecodeError(`${m.type}.${k}: expected a string`);
  return v;
}
function seq(m: Record<string, unknown>, k: string): number {
  const v = m[k];
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
    throw new DecodeError(`${m.type}.${k}: expected an unsigned integer`);
  }
  return v;
}
function optSeq(m: Record<string, unknown>, k: string): number | undefined {
  return m[k] === undefined || m[k] === null ? undefined : seq(m, k);
}
function list<T>(m: Record<string, unknown>, k: string, item: (v: unknown) => T): T[] {
  const v = m[k];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new DecodeError(`${m.type}.${k}: expected a list`);
  return v.map(item);
}
function row(v: unknown): Row {
  if (!isObj(v) || typeof v.id !== "string") throw new DecodeError("a row must be an object with a string id");
  return v as unknown as Row;
}
function positioned(v: unknown): Positioned {
  if (!isObj(v)) throw new DecodeError("expected {pos, row}");
  const pos = v.pos;
  if (typeof pos !== "number" || !Number.isInteger(pos) || pos < 0) throw new DecodeError("pos: expected an unsigned integer");
  return { pos, row: row(v.row) };
}
function member(v: unknown): Member {
  if (!isObj(v) || typeof v.conn !== "string") throw new DecodeError("expected {conn, state}");
  return { conn: v.conn, state: (v.state ?? null) as Json };
}
function text(v: unknown): string {
  if (typeof v !== "string") throw new DecodeError("expected a string");
  return v;
}

/**
 * Decodes one text frame into a server message, applying the JSON rules of
 * the protocol (absent = null = none / false / empty). Throws
 * {@link DecodeError}; `unknownType` is set for a message type this client
 * does not know, which callers ignore.
 */
export function decodeServer(frame: string): ServerMsg {
  let m: unknown;
  try {
    m = JSON.parse(frame);
  } catch {
    throw new DecodeError("not JSON");
  }
  if (!isObj(m) || typeof m.type !== "string") throw new DecodeError("not a message object");
  switch (m.type) {
    case "welcome": {
      const window = optSeq(m, "window");
      return {
        type: "welcome",
        protocol: str(m, "protocol"),
        shard: str(m, "shard"),
        seq: seq(m, "seq"),
        conn: str(m, "conn"),
        encoding: str(m, "encoding"),
        ...(window === undefined ? {} : { window }),
      };
    }
    case "snap": {
      const count = optSeq(m, "count");
      return { type: "snap", id: str(m, "id"), seq: seq(m, "seq"), rows: list(m, "rows", row), ...(count === undefined ? {} : { count }) };
    }
    case "diff": {
      const count = optSeq(m, "count");
      return {
        type: "diff",
        id: str(m, "id"),
        from: seq(m, "from"),
        seq: seq(m, "seq"),
        added: list(m, "added", positioned),
        changed: list(m, "changed", positioned),
        removed: list(m, "removed", text),
        ...(count === undefined ? {} : { count }),
      };
    }
    case "reset":
      return { type: "reset", id: str(m, "id"), reason: str(m, "reason") };
    case "ack":
      return { type: "ack", op: str(m, "op"), seq: seq(m, "seq"), dup: m.dup === true };
    case "err": {
      const op = optStr(m, "op");
      const sub = optStr(m, "sub");
      return {
        type: "err",
        code: str(m, "code"),
        message: optStr(m, "message") ?? "",
        ...(op === undefined ? {} : { op }),
        ...(sub === undefined ? {} : { sub }),
      };
    }
    case "presence_state":
      return { type: "presence_state", members: list(m, "members", member) };
    case "presence_diff":
      return {
        type: "presence_diff",
        joins: list(m, "joins", member),
        updates: list(m, "updates", member),
        leaves: list(m, "leaves", text),
      };
    case "bcast":
      return { type: "bcast", topic: str(m, "topic"), data: (m.data ?? null) as Json, from: str(m, "from") };
    case "pong": {
      const t = optSeq(m, "t");
      return t === undefined ? { type: "pong" } : { type: "pong", t };
    }
    case "result":
      return { type: "result", op: str(m, "op"), seq: seq(m, "seq"), value: (m.value ?? null) as Json, dup: m.dup === true };
    case "value":
      return { type: "value", id: str(m, "id"), seq: seq(m, "seq"), value: (m.value ?? null) as Json };
    default:
      throw new DecodeError(`unknown message type ${JSON.stringify(m.type)}`, true);
  }
}
