/**
 * The `pylon.v1` messages in postcard (`pylon.v1.postcard`): each message
 * is its variant index, then its fields in declaration order, exactly as
 * serde's derive writes the Rust types of src/protocol/types.rs (the tag
 * tables of docs/protocol.md, "Postcard"). The in-memory shapes are those
 * of protocol.ts, so a client holds the same objects whichever encoding
 * it speaks.
 *
 * ```ts
 * encodeClientPostcard({ type: "ping", t: 300 }); // Uint8Array [0x06, 0x01, 0xac, 0x02]
 * decodeServerPostcard(new Uint8Array([0x09, 0x00])); // { type: "pong" }
 * ```
 *
 * The server's direction is here too (encodeServerPostcard,
 * decodeClientPostcard), for fake servers in tests and for the golden
 * vectors both ways; a client needs only the first two.
 */
import { PostcardReader, PostcardWriter, present, readMessage } from "./postcard.js";
import { readRow, readValue, writeRow, writeValue } from "./postcard-value.js";
import {
  DecodeError,
  type ClientMsg,
  type Json,
  type Member,
  type Op,
  type Positioned,
  type Row,
  type ServerMsg,
} from "./protocol.js";

/** `ClientMsg` variant indexes, in wire order. */
const CLIENT_TYPES = ["hello", "sub", "unsub", "mut", "presence", "bcast", "ping", "call", "watch"] as const;
/** `ServerMsg` variant indexes, in wire order. */
const SERVER_TYPES = [
  "welcome",
  "snap",
  "diff",
  "reset",
  "ack",
  "err",
  "presence_state",
  "presence_diff",
  "bcast",
  "pong",
  "result",
  "value",
] as const;
/** `Op` variant indexes, in wire order. */
const OP_TYPES = ["insert", "update", "upsert", "delete"] as const;
/** `Encoding` variant indexes (`welcome.encoding`), in wire order. */
const ENCODINGS = ["json", "postcard"] as const;

const tagOf = (names: readonly string[], name: string, what: string): number => {
  const i = names.indexOf(name);
  if (i < 0) throw new TypeError(`${what} ${JSON.stringify(name)} is not a pylon.v1 ${what}`);
  return i;
};

// ---- client → server --------------------------------------------------------

/** Encodes a client message as one binary frame. Throws a `TypeError` / `RangeError` for what the wire cannot hold (a `limit` that is not a u32, say). */
export function encodeClientPostcard(msg: ClientMsg): Uint8Array {
  const w = new PostcardWriter();
  w.u32(tagOf(CLIENT_TYPES, msg.type, "message type"));
  switch (msg.type) {
    case "hello":
      w.option(msg.client, (s) => w.string(s));
      w.option(msg.token, (s) => w.string(s));
      break;
    case "sub":
      w.string(msg.id);
      w.string(msg.entity);
      writeValue(w, msg.where);
      writeValue(w, msg.order);
      w.option(msg.limit, (n) => w.u32(n));
      w.option(msg.since, (n) => w.u64(n));
      w.bool(msg.count === true);
      break;
    case "unsub":
      w.string(msg.id);
      break;
    case "mut":
      w.string(msg.op);
      w.seq(msg.ops, (op) => writeOp(w, op));
      break;
    case "presence":
      writeValue(w, msg.state);
      break;
    case "bcast":
      w.string(msg.topic);
      writeValue(w, msg.data);
      break;
    case "ping":
      w.option(msg.t, (n) => w.u64(n));
      break;
    case "call":
      w.string(msg.op);
      w.string(msg.name);
      writeValue(w, msg.args);
      break;
    case "watch":
      w.string(msg.id);
      w.string(msg.name);
      writeValue(w, msg.args);
      break;
  }
  return w.finish();
}

function writeOp(w: PostcardWriter, op: Op): void {
  w.u32(tagOf(OP_TYPES, op.type, "op type"));
  w.string(op.entity);
  switch (op.type) {
    case "insert":
    case "upsert":
      writeRow(w, op.row);
      return;
    case "update":
      w.string(op.id);
      writeRow(w, op.set);
      return;
    case "delete":
      w.string(op.id);
      return;
  }
}

/**
 * Decodes a client message (the server's side: fake servers, tests), in
 * the shape `JSON.parse` gives of the JSON encoder's text: fields that JSON
 * omits when none / null / false are left out.
 */
export function decodeClientPostcard(bytes: Uint8Array): ClientMsg {
  const r = new PostcardReader(bytes);
  return readMessage(r, CLIENT_TYPES, (type): ClientMsg => {
    switch (type) {
      case "hello": {
        const client = r.option(() => r.string());
        const token = r.option(() => r.string());
        return { type, ...present("client", client), ...present("token", token) };
      }
      case "sub": {
        const id = r.string();
        const entity = r.string();
        const where = readValue(r);
        const order = readValue(r);
        const limit = r.option(() => r.u32());
        const since = r.option(() => r.u64());
        const count = r.bool();
        return {
          type,
          id,
          entity,
          ...(where === null ? {} : { where }),
          ...(order === null ? {} : { order }),
          ...present("limit", limit),
          ...present("since", since),
          ...(count ? { count } : {}),
        };
      }
      case "unsub":
        return { type, id: r.string() };
      case "mut":
        return { type, op: r.string(), ops: r.seq(() => readOp(r)) };
      case "presence":
        return { type, state: readValue(r) };
      case "bcast":
        return { type, topic: r.string(), data: readValue(r) };
      case "ping":
        return { type, ...present("t", r.option(() => r.u64())) };
      case "call": {
        const op = r.string();
        const name = r.string();
        const args = readValue(r);
        return { type, op, name, ...(args === null ? {} : { args }) };
      }
      case "watch": {
        const id = r.string();
        const name = r.string();
        const args = readValue(r);
        return { type, id, name, ...(args === null ? {} : { args }) };
      }
    }
  });
}

function readOp(r: PostcardReader): Op {
  const tag = r.u32();
  const type = OP_TYPES[tag];
  switch (type) {
    case "insert":
    case "upsert":
      return { type, entity: r.string(), row: readRow(r) as Row };
    case "update":
      return { type, entity: r.string(), id: r.string(), set: readRow(r) };
    case "delete":
      return { type, entity: r.string(), id: r.string() };
    default:
      throw new DecodeError(`unknown op type ${tag}`);
  }
}

// ---- server → client --------------------------------------------------------

/**
 * Decodes one binary frame into a server message, in the same shapes as
 * {@link decodeServer} gives for JSON. Throws {@link DecodeError};
 * `unknownType` is set for a variant index this client does not know (a
 * newer server's message), which callers ignore.
 */
export function decodeServerPostcard(bytes: Uint8Array): ServerMsg {
  if (bytes.length === 0) throw new DecodeError("empty frame");
  const r = new PostcardReader(bytes);
  return readMessage(r, SERVER_TYPES, (type): ServerMsg => {
    switch (type) {
      case "welcome": {
        const protocol = r.string();
        const shard = r.string();
        const seq = r.u64();
        const conn = r.string();
        const e = r.u32();
        const encoding = ENCODINGS[e];
        if (encoding === undefined) throw new DecodeError(`welcome.encoding: unknown encoding ${e}`);
        return { type, protocol, shard, seq, conn, encoding };
      }
      case "snap": {
        const id = r.string();
        const seq = r.u64();
        const rows = r.seq(() => row(r));
        return { type, id, seq, rows, ...present("count", r.option(() => r.u64())) };
      }
      case "diff": {
        const id = r.string();
        const from = r.u64();
        const seq = r.u64();
        const added = r.seq(() => positioned(r));
        const changed = r.seq(() => positioned(r));
        const removed = r.seq(() => r.string());
        return { type, id, from, seq, added, changed, removed, ...present("count", r.option(() => r.u64())) };
      }
      case "reset":
        return { type, id: r.string(), reason: r.string() };
      case "ack":
        return { type, op: r.string(), seq: r.u64(), dup: r.bool() };
      case "err": {
        const code = r.string();
        const message = r.string();
        const op = r.option(() => r.string());
        const sub = r.option(() => r.string());
        return { type, code, message, ...present("op", op), ...present("sub", sub) };
      }
      case "presence_state":
        return { type, members: r.seq(() => member(r)) };
      case "presence_diff":
        return { type, joins: r.seq(() => member(r)), updates: r.seq(() => member(r)), leaves: r.seq(() => r.string()) };
      case "bcast":
        return { type, topic: r.string(), data: readValue(r), from: r.string() };
      case "pong":
        return { type, ...present("t", r.option(() => r.u64())) };
      case "result":
        return { type, op: r.string(), seq: r.u64(), value: readValue(r), dup: r.bool() };
      case "value":
        return { type, id: r.string(), seq: r.u64(), value: readValue(r) };
    }
  });
}

/** A row, which (as in JSON) must carry a string `id`. */
function row(r: PostcardReader): Row {
  const v = readRow(r);
  if (typeof v.id !== "string") throw new DecodeError("a row must be an object with a string id");
  return v as Row;
}

function positioned(r: PostcardReader): Positioned {
  return { pos: r.u32(), row: row(r) };
}

function member(r: PostcardReader): Member {
  return { conn: r.string(), state: readValue(r) };
}

/** Encodes a server message (fake servers, tests, the golden vectors). */
export function encodeServerPostcard(msg: ServerMsg): Uint8Array {
  const w = new PostcardWriter();
  w.u32(tagOf(SERVER_TYPES, msg.type, "message type"));
  switch (msg.type) {
    case "welcome":
      w.string(msg.protocol);
      w.string(msg.shard);
      w.u64(msg.seq);
      w.string(msg.conn);
      w.u32(tagOf(ENCODINGS, msg.encoding, "encoding"));
      break;
    case "snap":
      w.string(msg.id);
      w.u64(msg.seq);
      w.seq(msg.rows, (row) => writeRow(w, row));
      w.option(msg.count, (n) => w.u64(n));
      break;
    case "diff": {
      const pos = (p: Positioned) => {
        w.u32(p.pos);
        writeRow(w, p.row);
      };
      w.string(msg.id);
      w.u64(msg.from);
      w.u64(msg.seq);
      w.seq(msg.added, pos);
      w.seq(msg.changed, pos);
      w.seq(msg.removed, (id) => w.string(id));
      w.option(msg.count, (n) => w.u64(n));
      break;
    }
    case "reset":
      w.string(msg.id);
      w.string(msg.reason);
      break;
    case "ack":
      w.string(msg.op);
      w.u64(msg.seq);
      w.bool(msg.dup);
      break;
    case "err":
      w.string(msg.code);
      w.string(msg.message);
      w.option(msg.op, (s) => w.string(s));
      w.option(msg.sub, (s) => w.string(s));
      break;
    case "presence_state":
      w.seq(msg.members, (m) => writeMember(w, m));
      break;
    case "presence_diff":
      w.seq(msg.joins, (m) => writeMember(w, m));
      w.seq(msg.updates, (m) => writeMember(w, m));
      w.seq(msg.leaves, (c) => w.string(c));
      break;
    case "bcast":
      w.string(msg.topic);
      writeValue(w, msg.data);
      w.string(msg.from);
      break;
    case "pong":
      w.option(msg.t, (n) => w.u64(n));
      break;
    case "result":
      w.string(msg.op);
      w.u64(msg.seq);
      writeValue(w, msg.value);
      w.bool(msg.dup);
      break;
    case "value":
      w.string(msg.id);
      w.u64(msg.seq);
      writeValue(w, msg.value);
      break;
  }
  return w.finish();
}

function writeMember(w: PostcardWriter, m: { conn: string; state: Json }): void {
  w.string(m.conn);
  writeValue(w, m.state);
}
