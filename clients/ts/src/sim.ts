/**
 * A socket to one simulation shard (`pylon.sim.v1`, docs/sims.md): inputs
 * numbered by the client, snapshots stamped with the last input they
 * reflect, and a reconnect that neither loses nor doubles an input. JSON
 * by default; postcard with `encoding: "postcard"` and the kind's codec
 * (sim-postcard.ts).
 *
 * ```ts
 * const sim = joinSim<PlaneInput, PlaneView>({ url: location.origin, kind: "plane", id: "plane-lobby" });
 * sim.on("welcome", () => sim.sendInput({ steer: { x: 0, y: 0 } })); // appear on the plane
 * sim.on("snapshot", (s) => draw(s.me, s.others, s.tick));
 * const seq = sim.sendInput({ steer: { x: 1, y: 0 } }); // in sim.pending() until a snapshot's acked ≥ seq
 * ```
 *
 * The socket's states (the same as a shard's, docs/ts-client.md):
 *
 * ```text
 * CONNECTING ──sim_welcome──▶ LIVE ──drop / close──▶ WAITING(delay) ──▶ CONNECTING
 *     │ failed: attempt + 1 ──▶ WAITING        4410, 4403, 4400, a final snapshot, close() ──▶ CLOSED
 * ```
 *
 * Inputs and reconnects: seqs start after the welcome's `acked` and
 * increase. A snapshot's `acked` is the last seq the state processed; the
 * inputs above it are {@link SimClient.pending} (what a predicting client
 * replays on top of the snapshot). On a new connection:
 *
 * * with a named `subscriber` (the verified user), the pending inputs the
 *   new welcome's `acked` does not cover are sent again with the same
 *   seqs: the server drops any it had logged (`sim_ack {dup: true}`), so
 *   none is lost or applied twice;
 * * anonymous (the subscriber is the connection, a new one each time),
 *   seqs restart after the new welcome's `acked`, and the pending inputs
 *   are reported with a `dropped` event, not sent again: they may have
 *   been applied to the old subscriber.
 */
import { Connection, type LifecycleState, type SocketOptions } from "./connection.js";
import type { Encoding } from "./encoding.js";
import { PylonError } from "./errors.js";
import type { Json } from "./protocol.js";
import { decodeSimServerPostcard, encodeSimInputPostcard, type SimPostcardCodec } from "./sim-postcard.js";
import {
  decodeSimServer,
  SIM_PROTOCOL,
  SimCloseCode,
  type SimAck,
  type SimErrMsg,
  type SimServerMsg,
  type SimSnapshotMsg,
  type SimWelcome,
} from "./sim-protocol.js";
import { pathSegment, wsOrigin, type TokenSource } from "./transport.js";

// The defaults are `any` so that a plain `JoinSimOptions` fits every `joinSim<I, V>`.
export interface JoinSimOptions<I = any, V = any> extends SocketOptions {
  /** The Worker's origin, `ws(s)://` or `http(s)://`; `/v1/sims/{kind}/{id}/ws` is appended. */
  url: string;
  /** The simulation kind (its class name, any case: `plane`). */
  kind: string;
  /** The shard's name. */
  id: string;
  /** Offered as the subprotocol entry `bearer.<token>`; a function is asked before every attempt (and once more after a 4401 close). */
  token?: TokenSource;
  /**
   * Act as this subscriber (`?subscriber=`): the verified user id, for a
   * kind whose players are users. Without it the socket acts as its
   * connection, a new one on each reconnect.
   */
  subscriber?: string;
  /**
   * The wire encoding: `"json"` (default) or `"postcard"`, which needs
   * `postcard`, the kind's codec (its input and snapshot are the kind's
   * own types). The kind must speak the encoding (else the upgrade is
   * refused with `UNSUPPORTED_ENCODING`).
   */
  encoding?: Encoding;
  /** How the kind's input and snapshot go in postcard; required with `encoding: "postcard"`. */
  postcard?: SimPostcardCodec<I, V>;
  /** How long an attempt may take to reach `sim_welcome`. Default 10 000. */
  connectTimeoutMs?: number;
}

/** The socket's state. */
export type SimConnectionState = LifecycleState<{ state: "live"; conn: string; subscriber: string }>;

/** A snapshot as the `snapshot` event gives it: the kind's fields beside the engine's stamps. */
export type SimSnapshot<V = Record<string, Json>> = V & {
  /** The tick it follows. */
  tick: number;
  /** The last seq of this subscriber the state processed. */
  acked: number;
  /** The last one: the simulation finished. */
  final: boolean;
};

/** An input sent and not yet reflected in a snapshot. */
export interface PendingInput<I = Json> {
  seq: number;
  input: I;
}

/**
 * A `sim_err` from the server: `code` is the protocol's (`BAD_INPUT`,
 * `FORBIDDEN`, `QUEUE_FULL`, `INPUT_REJECTED`, …, including codes this
 * client does not know), `seq` the input it answers, `reason` a hook's or
 * the state's answer.
 */
export class SimError extends PylonError {
  readonly seq: number | undefined;
  readonly reason: string | undefined;
  constructor(msg: Pick<SimErrMsg, "code" | "message" | "seq" | "reason">) {
    super(msg.code, msg.message);
    this.name = "SimError";
    this.seq = msg.seq;
    this.reason = msg.reason;
  }
}

export interface SimClientEvents<I = Json, V = Record<string, Json>> {
  state: (state: SimConnectionState) => void;
  welcome: (welcome: SimWelcome) => void;
  snapshot: (snapshot: SimSnapshot<V>) => void;
  /** An input is durable (logged): applied before tick `tick`. */
  ack: (ack: Omit<SimAck, "type">) => void;
  /** A `sim_err`: a refused input (its `seq`) or frame. The socket stays open. */
  error: (error: SimError) => void;
  /** Anonymous only: pending inputs not sent again on a new connection (they may or may not have been applied). */
  dropped: (event: { inputs: PendingInput<I>[]; reason: string }) => void;
  disconnected: (event: { code: number | undefined; reason: string }) => void;
}

/** The simulation shard's WebSocket URL. */
export function simUrl(base: string, kind: string, id: string, subscriber?: string): string {
  const q = subscriber === undefined ? "" : `?subscriber=${encodeURIComponent(subscriber)}`;
  return `${wsOrigin(base)}/v1/sims/${pathSegment(kind)}/${pathSegment(id)}/ws${q}`;
}

type SimLive = Extract<SimConnectionState, { state: "live" }>;

export class SimClient<I = Json, V = Record<string, Json>> extends Connection<SimClientEvents<I, V>, SimLive, SimWelcome, SimServerMsg<V>> {
  readonly kind: string;
  readonly id: string;
  /** The subscriber asked for; undefined when the socket acts as its connection. */
  readonly named: string | undefined;
  private readonly codec: SimPostcardCodec<I, V> | undefined;
  /** A final snapshot came: the close that follows ends the client. */
  private finished = false;

  private nextSeq = 1;
  private ackedSeq = 0;
  private lastTick = 0;
  private unreflected: PendingInput<I>[] = [];

  constructor(options: JoinSimOptions<I, V>) {
    super(options, {
      url: simUrl(options.url, options.kind, options.id, options.subscriber),
      welcomeType: "sim_welcome",
      protocol: SIM_PROTOCOL,
      slowsDownWhenTold: true,
    });
    this.codec = options.postcard;
    if (this.encoding === "postcard" && this.codec === undefined) {
      throw new PylonError("BAD_REQUEST", "encoding \"postcard\" needs options.postcard, the kind's codec");
    }
    this.kind = options.kind;
    this.id = options.id;
    this.named = options.subscriber;
    this.start();
  }

  // ---- public API ---------------------------------------------------------

  /** Who the socket acts as (from the last welcome). */
  get subscriber(): string | undefined {
    return this.lastWelcome?.subscriber;
  }

  /** The last seq reflected in a snapshot (or the welcome): what prediction reconciles against. */
  get acked(): number {
    return this.ackedSeq;
  }

  /** The tick of the last snapshot (or the welcome). */
  get tick(): number {
    return this.lastTick;
  }

  /** Inputs sent but not yet reflected in a snapshot, oldest first. */
  pending(): readonly PendingInput<I>[] {
    return this.unreflected.slice();
  }

  /**
   * Sends one input and returns its seq. It stays in {@link pending} until
   * a snapshot's `acked` reaches it (or a `sim_err` answers it). Throws
   * `NOT_CONNECTED` unless live (seqs are numbered from the welcome's
   * `acked`), `CLOSED` once stopped.
   */
  sendInput(input: I): number {
    if (this.stopped) throw this.closedError();
    if (!this.isLive()) throw new PylonError("NOT_CONNECTED", "an input needs a live socket");
    const seq = this.nextSeq++;
    this.unreflected.push({ seq, input });
    this.send(seq, input);
    return seq;
  }

  // ---- connection -----------------------------------------------------------

  protected override decode(payload: string | Uint8Array): SimServerMsg<V> {
    return typeof payload === "string" ? decodeSimServer<V>(payload) : decodeSimServerPostcard(payload, this.codec!);
  }

  /** Besides 4410, 4403, 4400 and a 4401 that a fresh token cannot fix: a final snapshot ends the client. */
  protected override endsOn(code: number | undefined): boolean {
    return this.finished || code === SimCloseCode.FINISHED;
  }

  private send(seq: number, input: I): void {
    this.sendRaw(this.encoding === "postcard" ? encodeSimInputPostcard(seq, input, this.codec!) : JSON.stringify({ type: "sim_input", seq, input }));
  }

  // ---- messages -------------------------------------------------------------

  protected override onMessage(msg: SimServerMsg<V>): void {
    switch (msg.type) {
      case "sim_welcome":
        if (!this.welcomed) this.onWelcome(msg);
        return; // one per socket; a second says nothing new
      case "sim_snapshot":
        return this.onSnapshot(msg);
      case "sim_ack":
        this.emit("ack", { seq: msg.seq, tick: msg.tick, dup: msg.dup });
        return;
      case "sim_err": {
        // Refused before logging (never reflected) or processed with no
        // effect (INPUT_REJECTED): either way it is no longer pending.
        if (msg.seq !== undefined) this.unreflected = this.unreflected.filter((p) => p.seq !== msg.seq);
        this.emit("error", new SimError(msg));
        return;
      }
    }
  }

  private onWelcome(w: SimWelcome): void {
    if (!this.acceptWelcome(w)) return;
    this.welcomeArrived();
    this.lastTick = w.tick;
    this.ackedSeq = w.acked;
    let dropped: PendingInput<I>[] = [];
    if (this.named !== undefined) {
      // The same subscriber: what the state has not processed goes again
      // under its seq (a logged one comes back as a duplicate ack).
      this.unreflected = this.unreflected.filter((p) => p.seq > w.acked);
      this.nextSeq = Math.max(this.nextSeq, w.acked + 1);
      for (const p of this.unreflected) this.send(p.seq, p.input);
    } else {
      // A new connection is a new subscriber: the old one's inputs cannot
      // be told apart from applied ones, so they are reported, not resent.
      dropped = this.unreflected;
      this.unreflected = [];
      this.nextSeq = w.acked + 1;
    }
    this.setState({ state: "live", conn: w.conn, subscriber: w.subscriber });
    this.settleReady();
    if (dropped.length > 0) this.emit("dropped", { inputs: dropped, reason: "reconnected as a new subscriber" });
    this.emit("welcome", w);
    this.startKeepalive();
  }

  private onSnapshot(s: SimSnapshotMsg<V>): void {
    this.lastTick = s.tick;
    this.ackedSeq = s.acked;
    this.unreflected = this.unreflected.filter((p) => p.seq > s.acked);
    if (s.final) this.finished = true;
    this.emit("snapshot", { ...s.view, tick: s.tick, acked: s.acked, final: s.final } as SimSnapshot<V>);
  }

  protected override onClosed(err: PylonError): void {
    this.settleReady(err);
  }
}

/** Opens a socket to one simulation shard; it connects (and reconnects) in the background. */
export function joinSim<I = Json, V = Record<string, Json>>(options: JoinSimOptions<I, V>): SimClient<I, V> {
  return new SimClient<I, V>(options);
}
