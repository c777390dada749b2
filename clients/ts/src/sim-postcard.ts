/**
 * The `pylon.sim.v1` messages in postcard (docs/protocol.md, "Simulation
 * shards", "The postcard mapping"; the Rust types are src/sim/wire.rs).
 * The envelope is fixed; the kind's input and snapshot sit in it as the
 * kind's own serde derive writes them, which only the kind knows, so a
 * postcard simulation socket needs a {@link SimPostcardCodec} for its kind.
 *
 * ```ts
 * // The counter kind: `Add { add: i64 }` in, `Total { total: i64 }` out.
 * const counter: SimPostcardCodec<{ add: number }, { total: number }> = {
 *   writeInput: (w, input) => w.i64(input.add),
 *   readSnapshot: (r) => ({ total: r.i64() }),
 * };
 * encodeSimInputPostcard(3, { add: 5 }, counter); // 00 03 0a
 * decodeSimServerPostcard(new Uint8Array([1, 4, 3, 0, 0x18]), counter);
 * // { type: "sim_snapshot", tick: 4, acked: 3, final: false, view: { total: 12 } }
 * ```
 */
import { PostcardReader, PostcardWriter, present, readMessage } from "./postcard.js";
import { DecodeError } from "./protocol.js";
import type { SimServerMsg } from "./sim-protocol.js";

/**
 * How one simulation kind's input and snapshot go in postcard: each writes
 * or reads exactly what serde's derive of the Rust type does (struct fields
 * in order, no names; see {@link PostcardWriter} for the rules). The
 * snapshot is read into the same shape as the JSON view: the snapshot's
 * fields (for a snapshot that is not a struct, `{ snapshot }`).
 */
export interface SimPostcardCodec<I, V> {
  writeInput(w: PostcardWriter, input: I): void;
  readSnapshot(r: PostcardReader): V;
}

/** `SimServerMsg` variant indexes, in wire order. */
const SIM_SERVER_TYPES = ["sim_welcome", "sim_snapshot", "sim_ack", "sim_err"] as const;
/** `Encoding` variant indexes, in wire order. */
const ENCODINGS = ["json", "postcard"] as const;

/** `sim_input` (tag 0): seq, then the kind's input. */
export function encodeSimInputPostcard<I>(seq: number, input: I, codec: Pick<SimPostcardCodec<I, unknown>, "writeInput">): Uint8Array {
  const w = new PostcardWriter();
  w.u32(0);
  w.u64(seq);
  codec.writeInput(w, input);
  return w.finish();
}

/**
 * Decodes one binary frame of a simulation socket. Throws
 * {@link DecodeError}; `unknownType` is set for a variant index this client
 * does not know, which callers ignore.
 */
export function decodeSimServerPostcard<V>(bytes: Uint8Array, codec: Pick<SimPostcardCodec<unknown, V>, "readSnapshot">): SimServerMsg<V> {
  if (bytes.length === 0) throw new DecodeError("empty frame");
  const r = new PostcardReader(bytes);
  return readMessage(r, SIM_SERVER_TYPES, (type): SimServerMsg<V> => {
    switch (type) {
      case "sim_welcome": {
        const [protocol, sim, kind, conn, subscriber] = [r.string(), r.string(), r.string(), r.string(), r.string()];
        const tick = r.u64();
        const acked = r.u64();
        const tick_hz = r.u32();
        const e = r.u32();
        const encoding = ENCODINGS[e];
        if (encoding === undefined) throw new DecodeError(`sim_welcome.encoding: unknown encoding ${e}`);
        return { type, protocol, sim, kind, conn, subscriber, tick, acked, tick_hz, encoding };
      }
      case "sim_snapshot": {
        const tick = r.u64();
        const acked = r.u64();
        const final = r.bool();
        return { type, tick, acked, final, view: codec.readSnapshot(r) };
      }
      case "sim_ack":
        return { type, seq: r.u64(), tick: r.u64(), dup: r.bool() };
      case "sim_err": {
        const code = r.string();
        const message = r.string();
        const seq = r.option(() => r.u64());
        const reason = r.option(() => r.string());
        return { type, code, message, ...present("seq", seq), ...present("reason", reason) };
      }
    }
  });
}

/** Encodes a server message (fake servers, tests); `writeSnapshot` writes the kind's snapshot. */
export function encodeSimServerPostcard<V>(msg: SimServerMsg<V>, writeSnapshot: (w: PostcardWriter, view: V) => void): Uint8Array {
  const w = new PostcardWriter();
  w.u32(SIM_SERVER_TYPES.indexOf(msg.type));
  switch (msg.type) {
    case "sim_welcome":
      for (const s of [msg.protocol, msg.sim, msg.kind, msg.conn, msg.subscriber]) w.string(s);
      w.u64(msg.tick);
      w.u64(msg.acked);
      w.u32(msg.tick_hz);
      w.u32(ENCODINGS.indexOf(msg.encoding as (typeof ENCODINGS)[number]));
      break;
    case "sim_snapshot":
      w.u64(msg.tick);
      w.u64(msg.acked);
      w.bool(msg.final);
      writeSnapshot(w, msg.view);
      break;
    case "sim_ack":
      w.u64(msg.seq);
      w.u64(msg.tick);
      w.bool(msg.dup);
      break;
    case "sim_err":
      w.string(msg.code);
      w.string(msg.message);
      w.option(msg.seq, (n) => w.u64(n));
      w.option(msg.reason, (s) => w.string(s));
      break;
  }
  return w.finish();
}
