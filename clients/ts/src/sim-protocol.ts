/**
 * The `pylon.sim.v1` messages of a simulation shard's socket, and the
 * `mm_ticket` of a matchmaking queue's, in their JSON encoding
 * (docs/protocol.md, "Simulation shards"; the Rust types are
 * `src/sim/wire.rs` and `src/sim/matchmaking/wire.rs`). Encoding is
 * `JSON.stringify`; decoding is {@link decodeSimServer} /
 * {@link decodeTicketMsg}.
 *
 * ```ts
 * decodeSimServer('{"type":"sim_snapshot","tick":4,"acked":3,"total":12}');
 * // { type: "sim_snapshot", tick: 4, acked: 3, final: false, view: { total: 12 } }
 * ```
 */
import { DecodeError, type Json } from "./protocol.js";

/** The `protocol` a `sim_welcome` names. */
export const SIM_PROTOCOL = "pylon.sim.v1";

/** Close codes of simulation sockets besides those of `pylon.v1` ({@link CloseCode}). */
export const SimCloseCode = {
  /** The simulation finished; the final snapshot came just before. Do not reconnect. */
  FINISHED: 4410,
} as const;

/** Client → server: one input, numbered by the sender. */
export interface SimInputMsg<I = Json> {
  type: "sim_input";
  seq: number;
  input: I;
}

/** The first message on a socket. */
export interface SimWelcome {
  type: "sim_welcome";
  protocol: string;
  /** The shard's name. */
  sim: string;
  /** The kind's name. */
  kind: string;
  conn: string;
  /** Who this socket acts as: its `conn`, or the subscriber its upgrade named. */
  subscriber: string;
  /** The last tick run. */
  tick: number;
  /** The subscriber's last seq the state processed. */
  acked: number;
  /** Ticks per second (0: event-driven). */
  tick_hz: number;
  encoding: string;
}

/** What the subscriber sees after tick `tick`; `view` holds the kind's snapshot: its fields (a snapshot that is not an object: `{snapshot}`). */
export interface SimSnapshotMsg<V = Record<string, Json>> {
  type: "sim_snapshot";
  tick: number;
  acked: number;
  final: boolean;
  view: V;
}

/** Input `seq` is durable; it is applied before tick `tick` (at the latest, for a duplicate). */
export interface SimAck {
  type: "sim_ack";
  seq: number;
  tick: number;
  dup: boolean;
}

/** A refusal; `seq` names the input it answers, `reason` is a hook's or the state's answer. */
export interface SimErrMsg {
  type: "sim_err";
  code: string;
  message: string;
  seq?: number;
  reason?: string;
}

export type SimServerMsg<V = Record<string, Json>> = SimWelcome | SimSnapshotMsg<V> | SimAck | SimErrMsg;

/** Where a matchmaking ticket stands. */
export type TicketStatus = "waiting" | "assigned" | "expired" | "left";

/** A ticket, as `mm_ticket` and the queue's HTTP answers show it. */
export interface TicketMsg {
  ticket: string;
  /** The user id of a signed-in player; an anonymous player is its ticket id. */
  player: string;
  status: TicketStatus;
  /** The simulation kind the group plays. */
  kind: string;
  /** Once assigned: the simulation shard to join. */
  sim?: string;
  /** Once assigned: the group's players. */
  players: string[];
  /** In HTTP answers: when it was enqueued and when it expires or is forgotten (ms since the epoch). */
  since_ms?: number;
  until_ms?: number;
  /** In an enqueue answer: the player already had this waiting ticket. */
  dup?: boolean;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function parse(frame: string): Record<string, unknown> {
  let m: unknown;
  try {
    m = JSON.parse(frame);
  } catch {
    throw new DecodeError("not JSON");
  }
  if (!isObj(m)) throw new DecodeError("not a message object");
  return m;
}
function str(m: Record<string, unknown>, k: string): string {
  const v = m[k];
  if (typeof v !== "string") throw new DecodeError(`${String(m.type)}.${k}: expected a string`);
  return v;
}
function uint(m: Record<string, unknown>, k: string): number {
  const v = m[k];
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) throw new DecodeError(`${String(m.type)}.${k}: expected an unsigned integer`);
  return v;
}
function optUint(m: Record<string, unknown>, k: string): number | undefined {
  return m[k] === undefined || m[k] === null ? undefined : uint(m, k);
}
function optStr(m: Record<string, unknown>, k: string): string | undefined {
  return m[k] === undefined || m[k] === null ? undefined : str(m, k);
}

/**
 * Decodes one text frame of a simulation socket. Throws {@link DecodeError};
 * `unknownType` is set for a message type this client does not know, which
 * callers ignore (the protocol's evolution rules).
 */
export function decodeSimServer<V = Record<string, Json>>(frame: string): SimServerMsg<V> {
  const m = parse(frame);
  if (typeof m.type !== "string") throw new DecodeError("not a message object");
  switch (m.type) {
    case "sim_welcome":
      return {
        type: "sim_welcome",
        protocol: str(m, "protocol"),
        sim: str(m, "sim"),
        kind: str(m, "kind"),
        conn: str(m, "conn"),
        subscriber: str(m, "subscriber"),
        tick: uint(m, "tick"),
        acked: uint(m, "acked"),
        tick_hz: uint(m, "tick_hz"),
        encoding: str(m, "encoding"),
      };
    case "sim_snapshot": {
      const { type: _t, tick: _k, acked: _a, final: _f, ...view } = m;
      return { type: "sim_snapshot", tick: uint(m, "tick"), acked: uint(m, "acked"), final: m.final === true, view: view as V };
    }
    case "sim_ack":
      return { type: "sim_ack", seq: uint(m, "seq"), tick: uint(m, "tick"), dup: m.dup === true };
    case "sim_err": {
      const seq = optUint(m, "seq");
      const reason = optStr(m, "reason");
      return {
        type: "sim_err",
        code: str(m, "code"),
        message: optStr(m, "message") ?? "",
        ...(seq === undefined ? {} : { seq }),
        ...(reason === undefined ? {} : { reason }),
      };
    }
    default:
      throw new DecodeError(`unknown message type ${JSON.stringify(m.type)}`, true);
  }
}

const STATUSES: readonly TicketStatus[] = ["waiting", "assigned", "expired", "left"];

/**
 * Reads a ticket from an `mm_ticket` frame (`type` required) or an HTTP
 * answer's JSON (no `type`). Throws {@link DecodeError}.
 */
export function decodeTicketMsg(json: string | unknown): TicketMsg {
  const m = typeof json === "string" ? parse(json) : json;
  if (!isObj(m)) throw new DecodeError("a ticket must be an object");
  if (m.type !== undefined && m.type !== "mm_ticket") throw new DecodeError(`unknown message type ${JSON.stringify(m.type)}`, true);
  const status = str(m, "status");
  if (!(STATUSES as readonly string[]).includes(status)) throw new DecodeError(`ticket status ${JSON.stringify(status)} is unknown`);
  const players = m.players ?? [];
  if (!Array.isArray(players) || !players.every((p) => typeof p === "string")) throw new DecodeError("ticket players: expected a list of strings");
  const sim = optStr(m, "sim");
  const since = optUint(m, "since_ms");
  const until = optUint(m, "until_ms");
  return {
    ticket: str(m, "ticket"),
    player: str(m, "player"),
    status: status as TicketStatus,
    kind: str(m, "kind"),
    ...(sim === undefined ? {} : { sim }),
    players: players as string[],
    ...(since === undefined ? {} : { since_ms: since }),
    ...(until === undefined ? {} : { until_ms: until }),
    ...(m.dup === true ? { dup: true } : {}),
  };
}
