/**
 * Server functions over the shard's socket (docs/protocol.md, `call` and
 * `watch`): the calls waiting for their `result`, and the watched query
 * functions with their latest `value`. The client (client.ts) owns the
 * socket and hands over what arrives; this keeps what a reconnect sends
 * again and what the client's close settles.
 *
 * ```ts
 * const moved = await client.call("moveCard", { cardId: "k1", column: "done" });
 * const summary = client.watch("boardSummary", { board: "b1" }, (value, seq) => show(value, seq));
 * summary.close(); // unsub
 * ```
 */
import { PylonError } from "./errors.js";
import type { ClientMsg, FnResult, FnValue, Json } from "./protocol.js";

export interface CallOptions {
  /** The op id; default a fresh `crypto.randomUUID()`. Reuse one only to retry the same call. */
  opId?: string;
}

/** Hears each `value` of a watch: the function's result as of `seq`. */
export type WatchListener = (value: Json, seq: number) => void;
/** Hears the `err`s about a watch (and `CLOSED` when the client stops). */
export type WatchErrorListener = (error: PylonError) => void;

/** A watched query function, kept current until closed. */
export interface FunctionWatch {
  /** Its id on the wire (in the space of subscription ids). */
  readonly id: string;
  readonly name: string;
  readonly args: Json;
  /** The latest value; undefined before the first. */
  readonly value: Json | undefined;
  /** The seq of the latest value. */
  readonly seq: number | undefined;
  /** The last error about it; a later value clears it. */
  readonly error: PylonError | undefined;
  /** Stops it (`unsub` when live). Idempotent. */
  close(): void;
}

/** What the functions need of the client's socket. */
export interface FunctionSocket {
  send(msg: ClientMsg): void;
  isLive(): boolean;
}

/** A call awaiting its answer; `order` places it among the client's other writes when they are sent again. */
interface PendingCall {
  op: string;
  name: string;
  args: Json;
  order: number;
  resolve: (value: Json) => void;
  reject: (error: PylonError) => void;
}

/** Sent again, in `order`, after a reconnect. */
export interface Resend {
  op: string;
  order: number;
  msg: ClientMsg;
}

/** A listener that throws does not stop the client; its error is rethrown later. */
function safely(f: () => void): void {
  try {
    f();
  } catch (e) {
    queueMicrotask(() => {
      throw e;
    });
  }
}

class Watch implements FunctionWatch {
  readonly id: string;
  readonly name: string;
  readonly args: Json;
  value: Json | undefined;
  seq: number | undefined;
  error: PylonError | undefined;
  readonly onValue: WatchListener;
  readonly onError: WatchErrorListener | undefined;
  private readonly owner: ServerFunctions;

  constructor(owner: ServerFunctions, id: string, name: string, args: Json, onValue: WatchListener, onError: WatchErrorListener | undefined) {
    this.owner = owner;
    this.id = id;
    this.name = name;
    this.args = args;
    this.onValue = onValue;
    this.onError = onError;
  }

  close(): void {
    this.owner.closeWatch(this);
  }

  msg(): ClientMsg {
    return { type: "watch", id: this.id, name: this.name, ...(this.args === null ? {} : { args: this.args }) };
  }
}

const callMsg = (c: PendingCall): ClientMsg => ({ type: "call", op: c.op, name: c.name, ...(c.args === null ? {} : { args: c.args }) });

/** The pending calls and open watches of one client. */
export class ServerFunctions {
  private readonly socket: FunctionSocket;
  private readonly calls = new Map<string, PendingCall>();
  private readonly watches = new Map<string, Watch>();
  private nextWatch = 1;

  constructor(socket: FunctionSocket) {
    this.socket = socket;
  }

  /** Sends `call` now if live (else at the next welcome); settled by {@link onResult} or {@link onErr}. */
  call(op: string, name: string, args: Json, order: number): Promise<Json> {
    if (this.calls.has(op)) return Promise.reject(new PylonError("BAD_REQUEST", `op id ${op} is already pending`));
    return new Promise<Json>((resolve, reject) => {
      const c: PendingCall = { op, name, args, order, resolve, reject };
      this.calls.set(op, c);
      if (this.socket.isLive()) this.socket.send(callMsg(c));
    });
  }

  /** Whether call `op` awaits its answer. */
  hasCall(op: string): boolean {
    return this.calls.has(op);
  }

  /** The unanswered calls (all, or those `only` admits), to send again unchanged. */
  pendingCalls(only: (op: string) => boolean = () => true): Resend[] {
    return [...this.calls.values()].filter((c) => only(c.op)).map((c) => ({ op: c.op, order: c.order, msg: callMsg(c) }));
  }

  /** Opens a watch: `watch` now if live, and again after every reconnect until closed. */
  watch(name: string, args: Json, onValue: WatchListener, onError: WatchErrorListener | undefined): FunctionWatch {
    const w = new Watch(this, `w${this.nextWatch++}`, name, args, onValue, onError);
    this.watches.set(w.id, w);
    if (this.socket.isLive()) this.socket.send(w.msg());
    return w;
  }

  /** Whether watch `id` is open. */
  hasWatch(id: string): boolean {
    return this.watches.has(id);
  }

  /** `watch` for every open watch (or those `only` admits), for a new connection. */
  watchMsgs(only: (id: string) => boolean = () => true): ClientMsg[] {
    return [...this.watches.values()].filter((w) => only(w.id)).map((w) => w.msg());
  }

  /** @internal */
  closeWatch(w: Watch): void {
    if (this.watches.get(w.id) !== w) return;
    this.watches.delete(w.id);
    if (this.socket.isLive()) this.socket.send({ type: "unsub", id: w.id });
  }

  onResult(msg: FnResult): void {
    const c = this.calls.get(msg.op);
    if (!c) return; // answered already, or not ours
    this.calls.delete(msg.op);
    c.resolve(msg.value);
  }

  onValue(msg: FnValue): void {
    const w = this.watches.get(msg.id);
    if (!w) return; // closed while the value was in flight
    w.value = msg.value;
    w.seq = msg.seq;
    w.error = undefined;
    safely(() => w.onValue(msg.value, msg.seq));
  }

  /**
   * An `err` naming a pending call's op (which it rejects) or an open
   * watch (whose `onError` hears it; the watch stays open). False when it
   * is about neither, or about a watch without `onError`: the client then
   * reports it as its `error` event.
   */
  onErr(error: PylonError): boolean {
    const c = error.op === undefined ? undefined : this.calls.get(error.op);
    if (c) {
      this.calls.delete(c.op);
      c.reject(error);
      return true;
    }
    const w = error.sub === undefined ? undefined : this.watches.get(error.sub);
    if (!w) return false;
    w.error = error;
    const onError = w.onError;
    if (!onError) return false;
    safely(() => onError(error));
    return true;
  }

  /** The client stopped: calls reject with `err`, watches hear it and close. */
  closeAll(err: PylonError): void {
    const calls = [...this.calls.values()];
    const watches = [...this.watches.values()];
    this.calls.clear();
    this.watches.clear();
    for (const c of calls) c.reject(err);
    for (const w of watches) {
      w.error = err;
      const onError = w.onError;
      if (onError) safely(() => onError(err));
    }
  }
}
