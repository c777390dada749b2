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
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.js";
import { PylonError } from "./client.js";
import { checkEncoding, framePayload, subprotocolOf, type Encoding } from "./encoding.js";
import { CloseCode, DecodeError, type Json } from "./protocol.js";
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
import {
  closeCodeOf,
  closeStops,
  offeredProtocols,
  pickWebSocket,
  resolveToken,
  startKeepalive,
  wsOrigin,
  type TokenSource,
  type WebSocketConstructor,
  type WebSocketLike,
} from "./transport.js";

// The defaults are `any` so that a plain `JoinSimOptions` fits every `joinSim<I, V>`.
export interface JoinSimOptions<I = any, V = any> {
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
  /** A WebSocket implementation; default the global `WebSocket`. */
  WebSocket?: WebSocketConstructor;
  /** Reconnect delays; defaults 250 ms, ×2, at most 10 s. */
  backoff?: Partial<BackoffOptions>;
  /** Send the keepalive frame after this much silence, drop the socket after twice as much. Default 30 000; 0 disables. */
  keepaliveMs?: number;
  /** How long an attempt may take to reach `sim_welcome`. Default 10 000. */
  connectTimeoutMs?: number;
  /** Source of randomness in [0, 1) for the backoff jitter. Default `Math.random`. */
  random?: () => number;
}

/** The socket's state. */
export type SimConnectionState =
  | { state: "connecting"; attempt: number }
  | { state: "live"; conn: string; subscriber: string }
  | { state: "waiting"; attempt: number; delayMs: number }
  | { state: "closed"; code: number | undefined; reason: string };

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
  return `${wsOrigin(base)}/v1/sims/${encodeURIComponent(kind)}/${encodeURIComponent(id)}/ws${q}`;
}

const now = () => Date.now();

export class SimClient<I = Json, V = Record<string, Json>> {
  readonly url: string;
  readonly kind: string;
  readonly id: string;
  /** The subscriber asked for; undefined when the socket acts as its connection. */
  readonly named: string | undefined;
  /** The wire encoding this socket speaks. */
  readonly encoding: Encoding;
  private readonly subprotocol: string;
  private readonly codec: SimPostcardCodec<I, V> | undefined;
  private readonly WS: WebSocketConstructor;
  private readonly token: TokenSource;
  private readonly backoff: BackoffOptions;
  private readonly keepaliveMs: number;
  private readonly connectTimeoutMs: number;
  private readonly random: () => number;

  private current: SimConnectionState = { state: "connecting", attempt: 0 };
  private ws: WebSocketLike | undefined;
  private welcomed = false;
  private attempt = 0;
  /** Closes with 4429 / 4503 in a row: each waits longer than the last. */
  private throttled = 0;
  private lastCloseWas4401 = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopKeepalive: () => void = () => {};
  private lastRecv = 0;
  private stopped = false;
  /** A final snapshot came: the close that follows ends the client. */
  private finished = false;

  private lastWelcome: SimWelcome | undefined;
  private nextSeq = 1;
  private ackedSeq = 0;
  private lastTick = 0;
  private unreflected: PendingInput<I>[] = [];
  private readonly listeners = new Map<keyof SimClientEvents<I, V>, Set<(...args: any[]) => void>>();
  private liveWaiters: { resolve: () => void; reject: (e: PylonError) => void }[] = [];

  constructor(options: JoinSimOptions<I, V>) {
    const WS = pickWebSocket(options.WebSocket);
    if (!WS) throw new PylonError("BAD_REQUEST", "no WebSocket implementation: pass options.WebSocket");
    this.WS = WS;
    try {
      this.encoding = checkEncoding(options.encoding);
    } catch (e) {
      throw new PylonError("BAD_REQUEST", (e as Error).message);
    }
    this.codec = options.postcard;
    if (this.encoding === "postcard" && this.codec === undefined) {
      throw new PylonError("BAD_REQUEST", "encoding \"postcard\" needs options.postcard, the kind's codec");
    }
    this.subprotocol = subprotocolOf(this.encoding);
    this.kind = options.kind;
    this.id = options.id;
    this.named = options.subscriber;
    this.url = simUrl(options.url, options.kind, options.id, options.subscriber);
    this.token = options.token;
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.keepaliveMs = options.keepaliveMs ?? 30_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.random = options.random ?? Math.random;
    void this.open();
  }

  // ---- public API ---------------------------------------------------------

  get state(): SimConnectionState {
    return this.current;
  }

  /** The last `sim_welcome` (undefined before the first). */
  get welcome(): SimWelcome | undefined {
    return this.lastWelcome;
  }

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

  /** Resolves when live (now, or at the next welcome); rejects if the client stops first. */
  ready(): Promise<void> {
    if (this.current.state === "live") return Promise.resolve();
    if (this.current.state === "closed") return Promise.reject(this.closedError());
    return new Promise((resolve, reject) => this.liveWaiters.push({ resolve, reject }));
  }

  /** Listens to an event; returns the remover. */
  on<K extends keyof SimClientEvents<I, V>>(event: K, listener: SimClientEvents<I, V>[K]): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    const s = set;
    s.add(listener);
    return () => {
      s.delete(listener);
    };
  }

  /** Stops for good: closes the socket (1000). */
  close(): void {
    if (this.stopped) return;
    const ws = this.ws;
    this.detach();
    try {
      ws?.close(CloseCode.NORMAL, "client closed");
    } catch {
      /* already closed */
    }
    this.shutdown(CloseCode.NORMAL, "client closed");
  }

  // ---- connection -----------------------------------------------------------

  private isLive(): boolean {
    return this.ws !== undefined && this.welcomed && !this.stopped;
  }

  private closedError(): PylonError {
    const s = this.current;
    const code = s.state === "closed" ? s.code : undefined;
    return new PylonError("CLOSED", `the client is closed${s.state === "closed" ? `: ${s.reason}` : ""}`, code === undefined ? {} : { closeCode: code });
  }

  private async open(): Promise<void> {
    if (this.stopped) return;
    this.setState({ state: "connecting", attempt: this.attempt });
    let token: string | undefined;
    try {
      token = await resolveToken(this.token);
    } catch {
      this.failedAttempt();
      return;
    }
    if (this.stopped) return;
    let ws: WebSocketLike;
    try {
      ws = new this.WS(this.url, offeredProtocols(token, this.subprotocol));
    } catch {
      this.failedAttempt();
      return;
    }
    if (this.encoding === "postcard") ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.welcomed = false;
    this.lastRecv = now();
    this.timer = setTimeout(() => this.drop(undefined, "timed out waiting for sim_welcome"), this.connectTimeoutMs);
    ws.onopen = () => {
      if (this.ws !== ws) return;
      if (ws.protocol !== this.subprotocol) {
        this.drop(undefined, `the server did not echo ${this.subprotocol} (got ${JSON.stringify(ws.protocol)})`, CloseCode.PROTOCOL);
      }
    };
    ws.onmessage = (ev: { data: unknown }) => {
      if (this.ws !== ws) return;
      this.lastRecv = now();
      let msg: SimServerMsg<V>;
      try {
        const payload = framePayload(this.encoding, ev.data);
        if (payload === null) return; // the keepalive's answer only proves the connection lives
        msg = typeof payload === "string" ? decodeSimServer<V>(payload) : decodeSimServerPostcard(payload, this.codec!);
      } catch (e) {
        if (e instanceof DecodeError && e.unknownType) return; // a newer server's message
        this.drop(undefined, `undecodable frame: ${(e as Error).message}`);
        return;
      }
      this.onMessage(msg);
    };
    ws.onclose = (ev: { code?: number; reason?: string }) => {
      if (this.ws !== ws) return;
      const code = closeCodeOf(ev);
      this.drop(code, ev.reason || (code === undefined ? "connection lost" : `closed with ${code}`));
    };
    // A failed connection (a refused upgrade, a network error); some
    // implementations fire no close event after it, so it ends the socket.
    ws.onerror = (ev: { message?: string }) => {
      if (this.ws !== ws) return;
      this.drop(undefined, ev?.message ? `connection failed: ${ev.message}` : "connection failed");
    };
  }

  private detach(): void {
    const ws = this.ws;
    if (ws) ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    this.ws = undefined;
    this.welcomed = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.stopKeepalive();
    this.stopKeepalive = () => {};
  }

  /** The socket is gone: stop (4410, 4403, 4400, a final snapshot, 4401 that a fresh token cannot fix) or retry. */
  private drop(code: number | undefined, reason: string, closeWith?: number): void {
    const ws = this.ws;
    const wasLive = this.welcomed;
    this.detach();
    try {
      ws?.close(closeWith ?? CloseCode.NORMAL, reason.slice(0, 100));
    } catch {
      /* already closing */
    }
    this.emit("disconnected", { code, reason });
    const unauthorized = code === CloseCode.UNAUTHORIZED;
    if (
      this.finished ||
      code === SimCloseCode.FINISHED ||
      closeStops(code) ||
      (unauthorized && (typeof this.token !== "function" || this.lastCloseWas4401))
    ) {
      this.shutdown(code, reason);
      return;
    }
    this.lastCloseWas4401 = unauthorized;
    if (code === CloseCode.RATE_LIMITED || code === CloseCode.OVERLOADED) {
      // Told to slow down: each such close in a row waits longer, even
      // though every one of those connections had reached its welcome.
      this.throttled = Math.min(this.throttled + 1, 64);
      this.attempt = Math.max(this.attempt, this.throttled);
      this.wait();
      return;
    }
    if (wasLive) this.throttled = 0;
    if (wasLive && !unauthorized) this.wait();
    else this.failedAttempt();
  }

  private failedAttempt(): void {
    this.attempt = Math.min(this.attempt + 1, 1_000_000);
    this.wait();
  }

  private wait(): void {
    if (this.stopped) return;
    const delayMs = backoffDelay(this.backoff, this.attempt, this.random);
    this.setState({ state: "waiting", attempt: this.attempt, delayMs });
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.open();
    }, delayMs);
  }

  private send(seq: number, input: I): void {
    this.sendRaw(this.encoding === "postcard" ? encodeSimInputPostcard(seq, input, this.codec!) : JSON.stringify({ type: "sim_input", seq, input }));
  }

  private sendRaw(data: string | Uint8Array): void {
    const ws = this.ws;
    if (!ws) return;
    try {
      ws.send(data);
    } catch (e) {
      this.drop(undefined, `send failed: ${String(e)}`);
    }
  }

  // ---- messages -------------------------------------------------------------

  private onMessage(msg: SimServerMsg<V>): void {
    if (!this.welcomed) {
      if (msg.type === "sim_welcome") this.onWelcome(msg);
      else this.drop(undefined, `expected sim_welcome, got ${msg.type}`);
      return;
    }
    switch (msg.type) {
      case "sim_welcome":
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
    if (w.protocol !== SIM_PROTOCOL || w.encoding !== this.encoding) {
      this.drop(undefined, `unexpected sim_welcome: protocol ${w.protocol}, encoding ${w.encoding}`, CloseCode.PROTOCOL);
      return;
    }
    this.lastWelcome = w;
    this.welcomed = true;
    this.attempt = 0;
    this.lastCloseWas4401 = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
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
    const waiters = this.liveWaiters;
    this.liveWaiters = [];
    for (const x of waiters) x.resolve();
    if (dropped.length > 0) this.emit("dropped", { inputs: dropped, reason: "reconnected as a new subscriber" });
    this.emit("welcome", w);
    this.stopKeepalive = startKeepalive(this.keepaliveMs, {
      silentMs: () => now() - this.lastRecv,
      sendRaw: (text) => {
        if (this.isLive()) this.sendRaw(text);
      },
      dead: (silent) => {
        if (this.isLive()) this.drop(undefined, `no frame from the server for ${silent} ms`);
      },
    });
  }

  private onSnapshot(s: SimSnapshotMsg<V>): void {
    this.lastTick = s.tick;
    this.ackedSeq = s.acked;
    this.unreflected = this.unreflected.filter((p) => p.seq > s.acked);
    if (s.final) this.finished = true;
    this.emit("snapshot", { ...s.view, tick: s.tick, acked: s.acked, final: s.final } as SimSnapshot<V>);
  }

  // ---- state and events -----------------------------------------------------

  private setState(state: SimConnectionState): void {
    this.current = state;
    this.emit("state", state);
  }

  private emit<K extends keyof SimClientEvents<I, V>>(event: K, ...args: Parameters<SimClientEvents<I, V>[K]>): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const l of [...set]) {
      try {
        l(...args);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }

  private shutdown(code: number | undefined, reason: string): void {
    if (this.stopped) return;
    this.stopped = true;
    this.detach();
    this.setState({ state: "closed", code, reason });
    const err = this.closedError();
    for (const w of this.liveWaiters) w.reject(err);
    this.liveWaiters = [];
  }
}

/** Opens a socket to one simulation shard; it connects (and reconnects) in the background. */
export function joinSim<I = Json, V = Record<string, Json>>(options: JoinSimOptions<I, V>): SimClient<I, V> {
  return new SimClient<I, V>(options);
}
