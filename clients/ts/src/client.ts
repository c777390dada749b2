/**
 * The connection that stays up: live queries, optimistic mutations,
 * presence, broadcast and ping over one WebSocket to one shard, speaking
 * `pylon.v1.json` (text frames, the default) or `pylon.v1.postcard`
 * (binary frames, `encoding: "postcard"`), and server functions (`call`,
 * `watch`; functions.ts). It follows the same rules as the Rust client
 * (docs/client.md): gap recovery under a new subscription id, resume with
 * `since`, resend of unacknowledged mutations and calls with the same op
 * id, jittered backoff, and the same close codes that stop it.
 */
import { applyRows, checkSeq } from "./apply.js";
import { Connection, type LifecycleState, type SocketOptions } from "./connection.js";
import type { Encoding } from "./encoding.js";
import { PylonError } from "./errors.js";
import {
  ServerFunctions,
  type CallOptions,
  type FunctionWatch,
  type Resend,
  type WatchErrorListener,
  type WatchListener,
} from "./functions.js";
import { applyOptimistic } from "./optimistic.js";
import { decodeServerPostcard, encodeClientPostcard } from "./postcard-protocol.js";
import {
  CloseCode,
  decodeServer,
  PROTOCOL,
  type Ack,
  type ClientMsg,
  type Diff,
  type Json,
  type Op,
  type Row,
  type ServerMsg,
  type Snap,
  type Welcome,
} from "./protocol.js";
import { orderKeys, type OrderKey, type Query } from "./query.js";
import { identityEnded, jwtExpiry, renewalDelay } from "./token.js";
import { pathSegment, wsOrigin, type TokenSource } from "./transport.js";

export type { TokenSource, WebSocketConstructor, WebSocketLike } from "./transport.js";
export type { Encoding } from "./encoding.js";
export { PylonError } from "./errors.js";
export type { CallOptions, FunctionWatch, WatchErrorListener, WatchListener } from "./functions.js";

export interface ConnectOptions extends SocketOptions {
  /** The Worker's origin: `ws(s)://host[:port]` (or `http(s)://`); `/v1/shards/{shard}/ws` is appended. */
  url: string;
  shard: string;
  /** Sent as the subprotocol entry `bearer.<token>` next to `pylon.v1.<encoding>`, and in `hello`. */
  token?: TokenSource;
  /**
   * The wire encoding: `"json"` (default; text frames) or `"postcard"`
   * (binary frames, smaller; docs/ts-client.md compares them). The client
   * offers only that one subprotocol, and the server must echo it.
   */
  encoding?: Encoding;
  /** With a client id, `hello {client, token}` follows every `welcome`. */
  clientId?: string;
  /** How long an attempt may take to reach `welcome`. Default 10 000. */
  connectTimeoutMs?: number;
  /**
   * Renew the connection's token this long before its `exp` (read from the
   * JWT, unverified): `hello` with a fresh token from a `token` function.
   * Default 20 000; 0 renews only when the server says the token expired.
   */
  renewBeforeMs?: number;
}

/** The connection's state (docs/protocol.md, "Connection states"). */
export type ConnectionState = LifecycleState<{ state: "live"; conn: string; seq: number }>;

export type SubStatus = "pending" | "live" | "resyncing" | "failed" | "closed";

/** What a change callback is told besides the rows. */
export interface ChangeInfo {
  /** The seq the server's part of the rows reflects (undefined before the first snap and while resyncing). */
  seq: number | undefined;
  /** The number of matching rows ignoring `limit`, when the query asked for `count`. */
  count: number | undefined;
  status: SubStatus;
  /** Whether unconfirmed local writes are shown in the rows. */
  optimistic: boolean;
  /** What caused this call. */
  cause: "snap" | "diff" | "reset" | "resync" | "optimistic" | "rollback" | "settled" | "failed" | "closed";
  error: PylonError | undefined;
}

export type ChangeListener = (rows: readonly Row[], info: ChangeInfo) => void;

/** A live query. Rows are read-only snapshots: a new array on every change. */
export interface Subscription {
  readonly query: Query;
  readonly rows: readonly Row[];
  readonly seq: number | undefined;
  readonly count: number | undefined;
  readonly status: SubStatus;
  readonly error: PylonError | undefined;
  /** Whether unconfirmed local writes are shown in `rows`. */
  readonly optimistic: boolean;
  /** Resolves with the rows at the first `snap`; rejects if the subscription fails or the client closes first. */
  ready(): Promise<readonly Row[]>;
  /** Adds a change listener; returns its remover. */
  onChange(listener: ChangeListener): () => void;
  /** Stops the live query (sends `unsub`). Idempotent. */
  unsubscribe(): void;
}

export type PresenceChange =
  | { type: "state" }
  | { type: "diff"; joins: { conn: string; state: Json }[]; updates: { conn: string; state: Json }[]; leaves: string[] };

export interface ClientEvents {
  state: (state: ConnectionState) => void;
  welcome: (welcome: Welcome) => void;
  presence: (members: ReadonlyMap<string, Json>, change: PresenceChange) => void;
  bcast: (message: { topic: string; data: Json; from: string }) => void;
  /** An `err` that answers no pending mutation, call or subscription (nor a watch with its own `onError`). */
  error: (error: PylonError) => void;
  /** A subscription is being resynced (gap, refused diff, or `reset`). */
  resync: (event: { subscription: Subscription; reason: string }) => void;
  disconnected: (event: { code: number | undefined; reason: string }) => void;
}

export interface MutateOptions {
  /** The op id; default a fresh `crypto.randomUUID()`. Reuse one only to retry the same ops. */
  opId?: string;
  /** Show the ops in local results before the ack. Default true. */
  optimistic?: boolean;
}

/** Ack of a mutation: it is durable at `seq`; `dup` when the op id had been applied before. */
export type MutationResult = Omit<Ack, "type">;

interface MutEntry {
  op: string;
  ops: Op[];
  /** Where it stands among the mutations and calls made, for sending them again in that order. */
  order: number;
  optimistic: boolean;
  /** Set once acked; the entry then stays only until every subscription has settled it. */
  ackSeq: number | undefined;
  resolve: (ack: MutationResult) => void;
  reject: (err: PylonError) => void;
}

function newOpId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  throw new PylonError("BAD_REQUEST", "crypto.randomUUID is not available; pass opId");
}

const now = () => Date.now();

/** Builds the shard's WebSocket URL from a base URL. */
export function shardUrl(base: string, shard: string): string {
  return `${wsOrigin(base)}/v1/shards/${pathSegment(shard)}/ws`;
}

class LiveQuery implements Subscription {
  readonly query: Query;
  readonly keys: OrderKey[];
  readonly key: number;
  wireId: string;
  resyncs = 0;
  /** The seq the server rows reflect; undefined until a snap (again). */
  held: number | undefined;
  serverRows: Row[] = [];
  /** Whether serverRows came from a snap at least once (else there is nothing to overlay). */
  hasRows = false;
  rows: readonly Row[] = [];
  count: number | undefined;
  status: SubStatus = "pending";
  error: PylonError | undefined;
  optimistic = false;
  /** Acked op ids this subscription reflects although its seq may be lower (it was live at the ack). */
  settled = new Set<string>();
  listeners = new Set<ChangeListener>();
  waiters: { resolve: (rows: readonly Row[]) => void; reject: (e: PylonError) => void }[] = [];
  private readonly client: PylonClient;

  constructor(client: PylonClient, key: number, query: Query) {
    this.client = client;
    this.key = key;
    this.query = query;
    this.keys = orderKeys(query.order);
    this.wireId = `s${key}`;
  }

  get seq(): number | undefined {
    return this.held;
  }

  ready(): Promise<readonly Row[]> {
    if (this.status === "live") return Promise.resolve(this.rows);
    if (this.status === "failed" || this.status === "closed") {
      return Promise.reject(this.error ?? new PylonError("CLOSED", "the subscription is closed"));
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  unsubscribe(): void {
    this.client._unsubscribe(this);
  }

  settleWaiters(error?: PylonError): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      if (error) w.reject(error);
      else w.resolve(this.rows);
    }
  }

  notify(cause: ChangeInfo["cause"]): void {
    const info: ChangeInfo = {
      seq: this.held,
      count: this.count,
      status: this.status,
      optimistic: this.optimistic,
      cause,
      error: this.error,
    };
    for (const l of [...this.listeners]) {
      try {
        l(this.rows, info);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }
}

function sameRows(a: readonly Row[], b: readonly Row[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i] && JSON.stringify(a[i]) !== JSON.stringify(b[i])) return false;
  }
  return true;
}

type Live = Extract<ConnectionState, { state: "live" }>;

export class PylonClient extends Connection<ClientEvents, Live, Welcome, ServerMsg> {
  readonly shard: string;
  private readonly clientId: string | undefined;
  private readonly renewBeforeMs: number;

  // Renewal (docs/auth.md, "Open sockets"): the token the connection holds
  // (offered at the upgrade, or accepted by a `hello`), the one a `hello`
  // in flight offers, whether the server said the identity ended, and what
  // it refused meanwhile (sent again once renewed).
  private heldToken: string | undefined;
  private renewing: string | undefined;
  private renewTimer: ReturnType<typeof setTimeout> | undefined;
  private ended = false;
  private renewFailures = 0;
  private readonly refusedOps = new Set<string>();
  private readonly refusedSubs = new Set<LiveQuery>();
  private readonly refusedWatches = new Set<string>();

  private readonly subs = new Map<number, LiveQuery>();
  private readonly wire = new Map<string, LiveQuery>();
  private nextKey = 1;
  private readonly muts = new Map<string, MutEntry>();
  /** Mutations and calls made so far: their order on the wire. */
  private writes = 0;
  private readonly fns = new ServerFunctions({ send: (msg) => this.send(msg), isLive: () => this.isLive() });
  private myPresence: Json = null;
  private readonly members = new Map<string, Json>();
  private readonly pings = new Map<number, { sent: number; resolve: (ms: number) => void; reject: (e: PylonError) => void }>();
  private nextPing = 1;

  constructor(options: ConnectOptions) {
    super(options, { url: shardUrl(options.url, options.shard), welcomeType: "welcome", protocol: PROTOCOL, slowsDownWhenTold: false });
    this.shard = options.shard;
    this.clientId = options.clientId;
    this.renewBeforeMs = options.renewBeforeMs ?? 20_000;
    this.start();
  }

  // ---- public API ---------------------------------------------------------

  /** Everyone's presence, by connection id (maintained from `presence_state` / `presence_diff`). */
  get presenceMembers(): ReadonlyMap<string, Json> {
    return this.members;
  }

  /**
   * Starts a live query. `onChange` (optional; more with `sub.onChange`) is
   * called with the rows and a {@link ChangeInfo} on every change: the
   * first `snap`, each `diff`, optimistic writes and their rollback.
   */
  subscribe(query: Query, onChange?: ChangeListener): Subscription {
    if (this.stopped) throw this.closedError();
    const limit = query.limit;
    if (this.encoding === "postcard" && limit !== undefined && !(Number.isInteger(limit) && limit >= 0 && limit < 2 ** 32)) {
      // JSON would carry it for the server to refuse; postcard has no way to write it.
      throw new PylonError("BAD_REQUEST", `limit must be a whole number from 0 to 2^32 - 1, not ${limit}`);
    }
    const sub = new LiveQuery(this, this.nextKey++, { ...query });
    if (onChange) sub.listeners.add(onChange);
    this.subs.set(sub.key, sub);
    if (this.isLive()) {
      this.wire.set(sub.wireId, sub);
      this.send(this.subMsg(sub, undefined));
    }
    return sub;
  }

  /**
   * Applies `ops` as one all-or-nothing commit. Resolves with the ack, or
   * rejects with the server's `err` (as a {@link PylonError}) or when the
   * client closes. Until then the ops are shown in matching local results
   * (unless `optimistic: false`) and resent with the same op id after every
   * reconnect. Retryable codes (`RATE_LIMITED`, `UNAVAILABLE`, `INTERNAL`)
   * are returned, not retried, as in the Rust client.
   */
  mutate(ops: Op[], options: MutateOptions = {}): Promise<MutationResult> {
    if (this.stopped) return Promise.reject(this.closedError());
    const op = options.opId ?? newOpId();
    if (this.muts.has(op) || this.fns.hasCall(op)) return Promise.reject(new PylonError("BAD_REQUEST", `op id ${op} is already pending`));
    const copy = ops.map((o) => structuredClone(o));
    return new Promise<MutationResult>((resolve, reject) => {
      const entry: MutEntry = { op, ops: copy, order: this.writes++, optimistic: options.optimistic !== false, ackSeq: undefined, resolve, reject };
      this.muts.set(op, entry);
      if (this.isLive()) this.send({ type: "mut", op, ops: copy });
      if (entry.optimistic) this.refreshAll("optimistic", copy);
    });
  }

  /**
   * Runs server function `name` (a query or a mutation) with `args` in the
   * shard. Resolves with what it returned; rejects with the server's `err`
   * as a {@link PylonError} (`UNKNOWN_FUNCTION`, `BAD_ARGS`,
   * `FUNCTION_ERROR` with its `appCode`, …) or when the client closes. A
   * mutation's diffs arrive before its result. A call not answered when
   * the connection drops is sent again after the reconnect, unchanged and
   * with the same op id, so a mutation that had run is not run twice (the
   * server answers with its first result). Actions are called over HTTP
   * (`callHttp`).
   */
  call(name: string, args: Json = null, options: CallOptions = {}): Promise<Json> {
    if (this.stopped) return Promise.reject(this.closedError());
    const op = options.opId ?? newOpId();
    if (this.muts.has(op)) return Promise.reject(new PylonError("BAD_REQUEST", `op id ${op} is already pending`));
    return this.fns.call(op, name, structuredClone(args ?? null), this.writes++);
  }

  /**
   * Watches query function `name` with `args`: `onValue(value, seq)` hears
   * its result now and again whenever a write changes it. After a
   * reconnect the watch is sent again and the server answers with the
   * current value. `onError` hears the `err`s about it (without one, they
   * go to the `error` event); the watch stays open until `close()`.
   */
  watch(name: string, args: Json, onValue: WatchListener, onError?: WatchErrorListener): FunctionWatch {
    if (this.stopped) throw this.closedError();
    return this.fns.watch(name, structuredClone(args ?? null), onValue, onError);
  }

  /** Sets this connection's presence (null clears it). Remembered and re-sent after reconnects. */
  presence(state: Json): void {
    this.myPresence = state ?? null;
    if (this.isLive()) this.send({ type: "presence", state: this.myPresence });
  }

  /** Sends `data` to every other connection of the shard, at most once; throws NOT_CONNECTED unless live. */
  broadcast(topic: string, data: Json): void {
    if (!this.isLive()) throw new PylonError("NOT_CONNECTED", "broadcast needs a live connection");
    this.send({ type: "bcast", topic, data: data ?? null });
  }

  /** Round trip to the server in ms. Rejects unless live, or if the connection drops first. */
  ping(): Promise<number> {
    if (!this.isLive()) return Promise.reject(new PylonError("NOT_CONNECTED", "ping needs a live connection"));
    const t = this.nextPing++;
    return new Promise((resolve, reject) => {
      this.pings.set(t, { sent: now(), resolve, reject });
      this.send({ type: "ping", t });
    });
  }

  /** Replaces the token; when live, sends `hello` with it (re-authentication before expiry). */
  async setToken(token: TokenSource): Promise<void> {
    this.token = token;
    if (!this.isLive()) return;
    const ws = this.ws;
    const t = await this.resolveToken();
    if (this.ws === ws && this.isLive()) this.sendHello(t);
  }

  // ---- connection -----------------------------------------------------------

  protected override decode(payload: string | Uint8Array): ServerMsg {
    return typeof payload === "string" ? decodeServer(payload) : decodeServerPostcard(payload);
  }

  private helloMsg(token: string | undefined): ClientMsg {
    return {
      type: "hello",
      ...(this.clientId === undefined ? {} : { client: this.clientId }),
      ...(token === undefined ? {} : { token }),
    };
  }

  /** Sends `hello`; with a token, the `welcome` answering it makes that token the connection's. */
  private sendHello(token: string | undefined): void {
    if (token !== undefined && token !== "") this.renewing = token;
    this.send(this.helloMsg(token));
  }

  /** Arms the renewal timer for the held token's `exp`, when there is one and a function to ask. */
  private scheduleRenewal(): void {
    if (this.renewTimer !== undefined) clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
    const exp = jwtExpiry(this.heldToken);
    if (!(this.renewBeforeMs > 0) || exp === undefined || typeof this.token !== "function") return;
    this.renewTimer = setTimeout(() => {
      this.renewTimer = undefined;
      void this.renew();
    }, renewalDelay(exp, now(), this.renewBeforeMs));
  }

  /**
   * Sends `hello` with a token newly asked from the token source: before the
   * held one expires, or because the server said the identity ended. A
   * source that gives nothing new cannot renew: ignored ahead of time,
   * treated as a refusal once the identity ended.
   */
  private async renew(): Promise<void> {
    if (!this.isLive() || this.renewing !== undefined) return;
    const ws = this.ws;
    let t: string | undefined;
    try {
      t = await this.resolveToken();
    } catch (e) {
      t = undefined;
      if (!this.ended) this.emit("error", new PylonError("UNAUTHORIZED", `token: ${String(e)}`));
    }
    if (this.ws !== ws || !this.isLive() || this.renewing !== undefined) return;
    if (t === undefined || t === "" || t === this.heldToken) {
      if (this.ended) this.renewRefused(new PylonError("UNAUTHORIZED", "no new token to renew the connection with"));
      return;
    }
    this.sendHello(t);
  }

  /** A renewal failed. Ahead of time that is only reported; once the identity ended, one more try, then a reconnect as after close 4401. */
  private renewRefused(error: PylonError): void {
    this.renewing = undefined;
    if (!this.ended) {
      this.emit("error", error);
      return;
    }
    this.renewFailures++;
    if (this.renewFailures < 2) {
      void this.renew();
      return;
    }
    this.drop(CloseCode.UNAUTHORIZED, `renewal refused: ${error.message}`.slice(0, 100));
  }

  /** An `err` saying the identity ended (TOKEN_EXPIRED / SESSION_REVOKED): keep what it refused for after the renewal, and renew. */
  private onIdentityEnded(error: PylonError): void {
    this.ended = true;
    const op = error.op;
    const m = op === undefined ? undefined : this.muts.get(op);
    if (m && m.ackSeq === undefined) this.refusedOps.add(m.op);
    if (op !== undefined && this.fns.hasCall(op)) this.refusedOps.add(op);
    const sub = error.sub === undefined ? undefined : this.wire.get(error.sub);
    if (sub) this.refusedSubs.add(sub);
    if (error.sub !== undefined && this.fns.hasWatch(error.sub)) this.refusedWatches.add(error.sub);
    void this.renew();
  }

  /** The connection took a renewed token: paused queries catch up from the server; refused requests go again. */
  private onRenewed(): void {
    this.heldToken = this.renewing;
    this.renewing = undefined;
    this.renewFailures = 0;
    const wasEnded = this.ended;
    this.ended = false;
    this.scheduleRenewal();
    if (!wasEnded) return;
    for (const w of this.pendingWrites((op) => this.refusedOps.has(op))) this.send(w.msg);
    this.refusedOps.clear();
    for (const sub of this.refusedSubs) {
      if (this.wire.get(sub.wireId) === sub) this.send(this.subMsg(sub, sub.held));
    }
    this.refusedSubs.clear();
    for (const msg of this.fns.watchMsgs((id) => this.refusedWatches.has(id))) this.send(msg);
    this.refusedWatches.clear();
  }

  /** Leaves the current socket's renewal state. */
  protected override onDetach(): void {
    // A new connection starts with a new identity; `resume` resends all.
    if (this.renewTimer !== undefined) clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
    this.renewing = undefined;
    this.ended = false;
    this.renewFailures = 0;
    this.refusedOps.clear();
    this.refusedSubs.clear();
    this.refusedWatches.clear();
  }

  /** Subscriptions go on the wire again after the welcome; pings fail. */
  protected override onDrop(code: number | undefined, reason: string): void {
    this.wire.clear();
    for (const [t, p] of this.pings) {
      this.pings.delete(t);
      p.reject(new PylonError("DISCONNECTED", reason, code === undefined ? {} : { closeCode: code }));
    }
  }

  private send(msg: ClientMsg): void {
    this.sendRaw(this.encoding === "postcard" ? encodeClientPostcard(msg) : JSON.stringify(msg));
  }

  private subMsg(sub: LiveQuery, since: number | undefined): ClientMsg {
    const q = sub.query;
    return {
      type: "sub",
      id: sub.wireId,
      entity: q.entity,
      ...(q.where === undefined ? {} : { where: q.where }),
      ...(q.order === undefined ? {} : { order: q.order }),
      ...(q.limit === undefined ? {} : { limit: q.limit }),
      ...(since === undefined ? {} : { since }),
      ...(q.count ? { count: true } : {}),
    };
  }

  /** Unacknowledged mutations and unanswered calls (those `only` admits), in the order they were made. */
  private pendingWrites(only: (op: string) => boolean = () => true): Resend[] {
    const writes = this.fns.pendingCalls(only);
    for (const m of this.muts.values()) {
      if (m.ackSeq === undefined && only(m.op)) writes.push({ op: m.op, order: m.order, msg: { type: "mut", op: m.op, ops: m.ops } });
    }
    return writes.sort((a, b) => a.order - b.order);
  }

  /** On entering LIVE: resubscribe (with `since` where a seq is held) and rewatch, resend unacknowledged mutations and unanswered calls in order, resend presence. */
  private resume(): void {
    this.wire.clear();
    for (const sub of this.subs.values()) {
      if (sub.status === "failed") continue;
      this.wire.set(sub.wireId, sub);
      this.send(this.subMsg(sub, sub.held));
    }
    for (const msg of this.fns.watchMsgs()) this.send(msg);
    for (const w of this.pendingWrites()) this.send(w.msg);
    if (this.myPresence !== null) this.send({ type: "presence", state: this.myPresence });
  }

  // ---- messages -------------------------------------------------------------

  protected override onMessage(msg: ServerMsg): void {
    switch (msg.type) {
      case "welcome":
        return this.onWelcome(msg);
      case "snap":
        return this.onSnap(msg);
      case "diff":
        return this.onDiff(msg);
      case "reset": {
        const sub = this.wire.get(msg.id);
        if (sub) this.markResyncing(sub, `reset: ${msg.reason}`, "reset");
        return;
      }
      case "ack":
        return this.onAck(msg);
      case "err": {
        const error = new PylonError(msg.code, msg.message, {
          ...(msg.op === undefined ? {} : { op: msg.op }),
          ...(msg.sub === undefined ? {} : { sub: msg.sub }),
        });
        if (msg.op === undefined && msg.sub === undefined && this.renewing !== undefined) {
          // The answer to the renewing hello (or a notice crossing it: the
          // retry in renewRefused covers that).
          this.renewRefused(error);
          return;
        }
        if (identityEnded(msg)) {
          this.onIdentityEnded(error);
          return;
        }
        const m = msg.op === undefined ? undefined : this.muts.get(msg.op);
        if (m && m.ackSeq === undefined) {
          this.muts.delete(m.op);
          m.reject(error);
          if (m.optimistic) this.refreshAll("rollback", m.ops);
          return;
        }
        const sub = msg.sub === undefined ? undefined : this.wire.get(msg.sub);
        if (sub) {
          this.wire.delete(msg.sub!);
          sub.status = "failed";
          sub.held = undefined;
          sub.error = error;
          sub.settleWaiters(error);
          sub.notify("failed");
          return;
        }
        if (this.fns.onErr(error)) return;
        this.emit("error", error);
        return;
      }
      case "presence_state":
        this.members.clear();
        for (const m of msg.members) this.members.set(m.conn, m.state);
        this.emit("presence", this.members, { type: "state" });
        return;
      case "presence_diff":
        for (const m of [...msg.joins, ...msg.updates]) this.members.set(m.conn, m.state);
        for (const c of msg.leaves) this.members.delete(c);
        this.emit("presence", this.members, { type: "diff", joins: msg.joins, updates: msg.updates, leaves: msg.leaves });
        return;
      case "bcast":
        this.emit("bcast", { topic: msg.topic, data: msg.data, from: msg.from });
        return;
      case "pong": {
        const p = msg.t === undefined ? undefined : this.pings.get(msg.t);
        if (p) {
          this.pings.delete(msg.t!);
          p.resolve(now() - p.sent);
        }
        return;
      }
      case "result":
        return this.fns.onResult(msg);
      case "value":
        return this.fns.onValue(msg);
    }
  }

  private onWelcome(w: Welcome): void {
    if (!this.acceptWelcome(w)) return;
    const first = !this.welcomed;
    if (first) this.welcomeArrived();
    this.setState({ state: "live", conn: w.conn, seq: w.seq });
    this.emit("welcome", w);
    if (!first) {
      // The answer to a hello: with a token, the connection now holds it.
      if (this.renewing !== undefined) this.onRenewed();
      return;
    }
    this.heldToken = this.attemptToken;
    this.scheduleRenewal();
    this.settleReady();
    if (this.clientId !== undefined) {
      const ws = this.ws;
      void this.resolveToken().then(
        (t) => {
          if (this.ws === ws && this.isLive()) this.sendHello(t);
        },
        () => {},
      );
    }
    this.resume();
    this.startKeepalive();
  }

  private onSnap(snap: Snap): void {
    const sub = this.wire.get(snap.id);
    if (!sub) return;
    sub.serverRows = snap.rows;
    sub.hasRows = true;
    sub.held = snap.seq;
    sub.count = snap.count;
    sub.status = "live";
    sub.error = undefined;
    this.recompute(sub);
    this.collect();
    sub.settleWaiters();
    sub.notify("snap");
  }

  private onDiff(diff: Diff): void {
    const sub = this.wire.get(diff.id);
    if (!sub) return;
    let rows: Row[];
    try {
      checkSeq(sub.held, diff);
      rows = applyRows(sub.serverRows, diff);
    } catch (e) {
      this.resubscribe(sub, (e as Error).message);
      return;
    }
    sub.serverRows = rows;
    sub.held = diff.seq;
    if (diff.count !== undefined) sub.count = diff.count;
    this.recompute(sub);
    this.collect();
    sub.notify("diff");
  }

  private onAck(ack: Ack): void {
    const m = this.muts.get(ack.op);
    if (!m || m.ackSeq !== undefined) return;
    m.ackSeq = ack.seq;
    // The server sends every diff up to ack.seq before the ack: each live
    // subscription already reflects the write, whatever its seq.
    for (const sub of this.subs.values()) if (sub.status === "live") sub.settled.add(m.op);
    m.resolve({ op: ack.op, seq: ack.seq, dup: ack.dup });
    if (m.optimistic) this.refreshAll("settled", m.ops);
    this.collect();
  }

  /** After `reset` (the server's snap follows on the same id) or a refused diff. */
  private markResyncing(sub: LiveQuery, reason: string, cause: "reset" | "resync"): void {
    sub.held = undefined;
    sub.status = "resyncing";
    sub.notify(cause);
    this.emit("resync", { subscription: sub, reason });
  }

  /** After a diff that cannot be applied: `unsub` the old id, `sub` anew under a new id without `since`. */
  private resubscribe(sub: LiveQuery, reason: string): void {
    this.markResyncing(sub, reason, "resync");
    if (this.subs.get(sub.key) !== sub) return;
    const old = sub.wireId;
    this.wire.delete(old);
    sub.resyncs++;
    sub.wireId = `s${sub.key}.${sub.resyncs}`;
    if (!this.isLive()) return;
    this.wire.set(sub.wireId, sub);
    this.send({ type: "unsub", id: old });
    this.send(this.subMsg(sub, undefined));
  }

  /** @internal */
  _unsubscribe(sub: LiveQuery): void {
    if (this.subs.get(sub.key) !== sub) return;
    this.subs.delete(sub.key);
    if (this.wire.get(sub.wireId) === sub) {
      this.wire.delete(sub.wireId);
      if (this.isLive()) this.send({ type: "unsub", id: sub.wireId });
    }
    sub.status = "closed";
    sub.settleWaiters(new PylonError("CLOSED", "unsubscribed"));
    sub.listeners.clear();
    this.collect();
  }

  // ---- optimistic layer -----------------------------------------------------

  /** The ops shown on top of `sub`'s server rows, in the order they were made. */
  private overlay(sub: LiveQuery): Op[] {
    const ops: Op[] = [];
    for (const m of this.muts.values()) {
      if (!m.optimistic) continue;
      if (m.ackSeq !== undefined && (sub.settled.has(m.op) || (sub.held !== undefined && sub.held >= m.ackSeq))) continue;
      ops.push(...m.ops);
    }
    return ops;
  }

  private lookup = (entity: string, id: string): Row | undefined => {
    for (const s of this.subs.values()) {
      if (s.query.entity !== entity) continue;
      const r = s.serverRows.find((x) => x.id === id);
      if (r) return r;
    }
    return undefined;
  };

  /** Recomputes the rows shown for `sub`; true if they changed. */
  private recompute(sub: LiveQuery): boolean {
    const ops = sub.hasRows ? this.overlay(sub) : [];
    const rows = ops.length === 0 ? sub.serverRows : applyOptimistic(sub.query, sub.keys, sub.serverRows, ops, this.lookup);
    const optimistic = ops.length > 0;
    const changed = optimistic !== sub.optimistic || !sameRows(rows, sub.rows);
    sub.optimistic = optimistic;
    if (rows !== sub.rows) sub.rows = changed ? rows : sub.rows;
    return changed;
  }

  /** Recomputes every subscription on an entity the ops touch, notifying those whose rows changed. */
  private refreshAll(cause: ChangeInfo["cause"], ops: Op[]): void {
    const entities = new Set(ops.map((o) => o.entity));
    for (const sub of this.subs.values()) {
      if (!entities.has(sub.query.entity) || !sub.hasRows || sub.status === "closed") continue;
      if (this.recompute(sub)) sub.notify(cause);
    }
  }

  /** Drops acked mutations that every subscription has settled. */
  private collect(): void {
    for (const m of this.muts.values()) {
      if (m.ackSeq === undefined) continue;
      const seq = m.ackSeq;
      let done = true;
      for (const s of this.subs.values()) {
        if (s.status === "failed" || s.status === "closed") continue;
        if (!(s.settled.has(m.op) || (s.held !== undefined && s.held >= seq))) {
          done = false;
          break;
        }
      }
      if (done) {
        this.muts.delete(m.op);
        for (const s of this.subs.values()) s.settled.delete(m.op);
      }
    }
  }

  protected override onClosed(err: PylonError): void {
    const hadOptimistic = [...this.muts.values()].some((m) => m.optimistic && m.ackSeq === undefined);
    for (const m of this.muts.values()) if (m.ackSeq === undefined) m.reject(err);
    this.muts.clear();
    for (const p of this.pings.values()) p.reject(err);
    this.pings.clear();
    this.fns.closeAll(err);
    this.settleReady(err);
    for (const sub of this.subs.values()) {
      if (hadOptimistic) this.recompute(sub);
      if (sub.status !== "failed") {
        sub.status = "closed";
        sub.error ??= err;
        sub.settleWaiters(err);
        sub.notify("closed");
      }
    }
  }
}

/** Opens a client for one shard; it connects (and reconnects) in the background. */
export function connect(options: ConnectOptions): PylonClient {
  return new PylonClient(options);
}
