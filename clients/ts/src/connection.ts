/**
 * The lifecycle one reconnecting socket goes through, shared by the shard
 * client (client.ts) and the simulation client (sim.ts): listeners, the
 * token asked before every attempt, the subprotocol offered and echoed,
 * the first frame a socket must bring (its welcome), the connect timeout,
 * the keepalive, the close codes that stop, and the jittered backoff
 * between attempts.
 *
 * ```text
 * CONNECTING ──welcome──▶ LIVE ──drop / close──▶ WAITING(delay) ──▶ CONNECTING
 *     │ failed: attempt + 1 ──▶ WAITING        4403, 4400, endsOn(code), close() ──▶ CLOSED
 * ```
 *
 * A client extends {@link Connection} and keeps only what its protocol
 * adds: how frames decode, what the messages after the welcome mean, and
 * what it holds that a drop or the close must settle.
 */
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.js";
import { checkEncoding, framePayload, subprotocolOf, type Encoding } from "./encoding.js";
import { PylonError } from "./errors.js";
import { ReceiptCounter } from "./receipts.js";
import { CloseCode, DecodeError } from "./protocol.js";
import {
  closeCodeOf,
  closeStops,
  offeredProtocols,
  pickWebSocket,
  resolveToken,
  startKeepalive,
  type TokenSource,
  type WebSocketConstructor,
  type WebSocketLike,
} from "./transport.js";

/** The options every reconnecting socket takes alike. */
export interface SocketOptions {
  /** A WebSocket implementation; default the global `WebSocket`. */
  WebSocket?: WebSocketConstructor;
  /** Reconnect delays; defaults 250 ms, ×2, at most 10 s. */
  backoff?: Partial<BackoffOptions>;
  /** Send the keepalive frame after this much silence, drop the socket after twice as much. Default 30 000; 0 disables. */
  keepaliveMs?: number;
  /** Source of randomness in [0, 1) for the backoff jitter. Default `Math.random`. */
  random?: () => number;
}

/** Those and the ones each client documents in its own words. */
type LifecycleOptions = SocketOptions & { token?: TokenSource; encoding?: Encoding; connectTimeoutMs?: number };

/** What tells one client's sockets apart from another's. */
export interface SocketSetup {
  /** The WebSocket URL. */
  url: string;
  /** The type of the first frame a socket must bring: `welcome`, `sim_welcome`. */
  welcomeType: string;
  /** The protocol that welcome must name. */
  protocol: string;
  /** Whether closes with 4429 / 4503 in a row each wait longer (else they retry as any drop). */
  slowsDownWhenTold: boolean;
}

/** A socket's state; `Live` is the client's own live state. */
export type LifecycleState<Live> =
  | { state: "connecting"; attempt: number }
  | Live
  | { state: "waiting"; attempt: number; delayMs: number }
  | { state: "closed"; code: number | undefined; reason: string };

type Listener = (...args: any[]) => void;

/** The events the lifecycle itself emits. */
export interface LifecycleEvents<Live> {
  state: (state: LifecycleState<Live>) => void;
  disconnected: (event: { code: number | undefined; reason: string }) => void;
}

const now = () => Date.now();

/** One reconnecting socket: `Events` are the client's (the lifecycle's among them), `Live` its live state, `W` its welcome, `Msg` what its server sends. */
export abstract class Connection<
  Events extends LifecycleEvents<Live> & { [K in keyof Events]: Listener },
  Live extends { state: "live" },
  W extends { protocol: string; encoding: string; window?: number },
  Msg extends { type: string },
> {
  readonly url: string;
  /** The wire encoding this socket speaks. */
  readonly encoding: Encoding;
  protected token: TokenSource;
  private readonly setup: SocketSetup;
  private readonly subprotocol: string;
  private readonly WS: WebSocketConstructor;
  private readonly backoff: BackoffOptions;
  private readonly keepaliveMs: number;
  private readonly connectTimeoutMs: number;
  private readonly random: () => number;

  private current: LifecycleState<Live> = { state: "connecting", attempt: 0 };
  protected ws: WebSocketLike | undefined;
  /** Whether the current socket got its first welcome. */
  protected welcomed = false;
  protected lastWelcome: W | undefined;
  /** The token the current attempt offered at the upgrade. */
  protected attemptToken: string | undefined;
  private attempt = 0;
  /** Closes with 4429 / 4503 in a row: each waits longer than the last. */
  private throttled = 0;
  private lastCloseWas4401 = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopKeepalive: () => void = () => {};
  private lastRecv = 0;
  /** What this socket received and has not receipted (`recv`). */
  private readonly receipts = new ReceiptCounter();
  protected stopped = false;
  private readonly listeners = new Map<keyof Events, Set<Listener>>();
  private liveWaiters: { resolve: () => void; reject: (e: PylonError) => void }[] = [];

  /** Checks the options; the subclass calls {@link start} once it is built. */
  constructor(options: LifecycleOptions, setup: SocketSetup) {
    const WS = pickWebSocket(options.WebSocket);
    if (!WS) throw new PylonError("BAD_REQUEST", "no WebSocket implementation: pass options.WebSocket");
    this.WS = WS;
    try {
      this.encoding = checkEncoding(options.encoding);
    } catch (e) {
      throw new PylonError("BAD_REQUEST", (e as Error).message);
    }
    this.subprotocol = subprotocolOf(this.encoding);
    this.setup = setup;
    this.url = setup.url;
    this.token = options.token;
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.keepaliveMs = options.keepaliveMs ?? 30_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.random = options.random ?? Math.random;
  }

  // ---- what a client adds -----------------------------------------------------

  /** One frame's payload (text or bytes) as a message; throws `DecodeError`. */
  protected abstract decode(payload: string | Uint8Array): Msg;
  /** A message of a socket; before its welcome only the welcome comes here. */
  protected abstract onMessage(msg: Msg): void;
  /** The client has stopped for good: settle what it holds (with {@link settleReady} in its place). */
  protected abstract onClosed(err: PylonError): void;
  /** The current socket is left: forget what belonged to it. */
  protected onDetach(): void {}
  /** The socket dropped, before `disconnected` is emitted: fail what needed it. */
  protected onDrop(_code: number | undefined, _reason: string): void {}
  /** Whether this drop ends the client besides the close codes every socket stops on. */
  protected endsOn(_code: number | undefined): boolean {
    return false;
  }

  // ---- public API ---------------------------------------------------------

  /** The connection state now. */
  get state(): LifecycleState<Live> {
    return this.current;
  }

  /** The last welcome (undefined before the first). */
  get welcome(): W | undefined {
    return this.lastWelcome;
  }

  /** Resolves when live (now, or at the next welcome); rejects if the client stops first. */
  ready(): Promise<void> {
    if (this.current.state === "live") return Promise.resolve();
    if (this.current.state === "closed") return Promise.reject(this.closedError());
    return new Promise((resolve, reject) => this.liveWaiters.push({ resolve, reject }));
  }

  /** Listens to an event; returns the remover. */
  on<K extends keyof Events>(event: K, listener: Events[K]): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    const s = set;
    s.add(listener);
    return () => {
      s.delete(listener);
    };
  }

  /** Stops for good: closes the socket (1000); whatever waits on it is rejected with `CLOSED`. */
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

  // ---- for the client -------------------------------------------------------

  /** Starts the first attempt (from the subclass's constructor, once its fields exist). */
  protected start(): void {
    void this.open();
  }

  protected isLive(): boolean {
    return this.ws !== undefined && this.welcomed && !this.stopped;
  }

  protected closedError(): PylonError {
    const s = this.current;
    const code = s.state === "closed" ? s.code : undefined;
    return new PylonError("CLOSED", `the client is closed${s.state === "closed" ? `: ${s.reason}` : ""}`, code === undefined ? {} : { closeCode: code });
  }

  protected resolveToken(): Promise<string | undefined> {
    return resolveToken(this.token);
  }

  /** Whether a welcome names the protocol and encoding spoken (else the socket is dropped); an accepted one is kept. */
  protected acceptWelcome(w: W): boolean {
    if (w.protocol !== this.setup.protocol || w.encoding !== this.encoding) {
      this.drop(undefined, `unexpected ${this.setup.welcomeType}: protocol ${w.protocol}, encoding ${w.encoding}`, CloseCode.PROTOCOL);
      return false;
    }
    this.lastWelcome = w;
    // Receipts are sized from the window it announced (JSON `welcome`s).
    this.receipts.setWindow(w.window);
    return true;
  }

  /** The socket's first welcome: the attempts start over and the connect timeout ends. */
  protected welcomeArrived(): void {
    this.welcomed = true;
    this.attempt = 0;
    this.lastCloseWas4401 = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Settles the {@link ready} promises: resolved, or rejected with `err`. */
  protected settleReady(err?: PylonError): void {
    const waiters = this.liveWaiters;
    this.liveWaiters = [];
    for (const w of waiters) {
      if (err) w.reject(err);
      else w.resolve();
    }
  }

  /** Starts the live socket's keepalive. */
  protected startKeepalive(): void {
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

  protected sendRaw(data: string | Uint8Array): void {
    const ws = this.ws;
    if (!ws) return;
    try {
      ws.send(data);
    } catch (e) {
      this.drop(undefined, `send failed: ${String(e)}`);
    }
  }

  /**
   * The socket is gone (closed by the server, failed, timed out, or given up
   * by the client with `closeWith`): decide between stopping and retrying.
   */
  protected drop(code: number | undefined, reason: string, closeWith?: number): void {
    const ws = this.ws;
    const wasLive = this.welcomed;
    this.detach();
    try {
      ws?.close(closeWith ?? CloseCode.NORMAL, reason.slice(0, 100));
    } catch {
      /* already closing */
    }
    this.onDrop(code, reason);
    this.dispatch("disconnected", [{ code, reason }]);
    const unauthorized = code === CloseCode.UNAUTHORIZED;
    if (
      this.endsOn(code) ||
      closeStops(code) ||
      (unauthorized && (typeof this.token !== "function" || this.lastCloseWas4401))
    ) {
      this.shutdown(code, reason);
      return;
    }
    this.lastCloseWas4401 = unauthorized;
    if (this.setup.slowsDownWhenTold && (code === CloseCode.RATE_LIMITED || code === CloseCode.OVERLOADED)) {
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

  protected setState(state: LifecycleState<Live>): void {
    this.current = state;
    this.dispatch("state", [state]);
  }

  protected emit<K extends keyof Events>(event: K, ...args: Parameters<Events[K]>): void {
    this.dispatch(event, args);
  }

  /** Calls an event's listeners; one that throws does not stop the others (its error is rethrown later). */
  private dispatch(event: keyof Events, args: unknown[]): void {
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

  // ---- the lifecycle ---------------------------------------------------------

  private async open(): Promise<void> {
    if (this.stopped) return;
    this.setState({ state: "connecting", attempt: this.attempt });
    let token: string | undefined;
    try {
      token = await this.resolveToken();
    } catch {
      this.failedAttempt();
      return;
    }
    if (this.stopped) return;
    this.attemptToken = token;
    let ws: WebSocketLike;
    try {
      ws = new this.WS(this.url, offeredProtocols(token, this.subprotocol));
    } catch {
      this.failedAttempt();
      return;
    }
    // Binary frames as bytes, not `Blob`s (which only read asynchronously).
    if (this.encoding === "postcard") ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.welcomed = false;
    this.lastRecv = now();
    this.receipts.reset();
    this.timer = setTimeout(() => this.drop(undefined, `timed out waiting for ${this.setup.welcomeType}`), this.connectTimeoutMs);
    ws.onopen = () => {
      if (this.ws !== ws) return;
      if (ws.protocol !== this.subprotocol) {
        this.drop(undefined, `the server did not echo ${this.subprotocol} (got ${JSON.stringify(ws.protocol)})`, CloseCode.PROTOCOL);
      }
    };
    ws.onmessage = (ev: { data: unknown }) => {
      if (this.ws !== ws) return;
      this.lastRecv = now();
      let msg: Msg;
      try {
        const payload = framePayload(this.encoding, ev.data);
        if (payload === null) return; // the keepalive's answer only proves the connection lives
        const receipt = this.receipts.received(this.encoding, payload);
        if (receipt !== undefined) this.sendRaw(receipt);
        msg = this.decode(payload);
      } catch (e) {
        if (e instanceof DecodeError && e.unknownType) return; // a newer server's message
        this.drop(undefined, `undecodable frame: ${(e as Error).message}`);
        return;
      }
      if (!this.welcomed && msg.type !== this.setup.welcomeType) {
        this.drop(undefined, `expected ${this.setup.welcomeType}, got ${msg.type}`);
        return;
      }
      this.onMessage(msg);
    };
    ws.onclose = (ev: { code?: number; reason?: string }) => {
      if (this.ws !== ws) return;
      const code = closeCodeOf(ev);
      this.drop(code, ev.reason || (code === undefined ? "connection lost" : `closed with ${code}`));
    };
    // An error means the connection failed (a refused upgrade, a network
    // error, a bad frame); a clean close never comes with one. Some
    // implementations fire no close event after it, so it ends the socket.
    ws.onerror = (ev: { message?: string }) => {
      if (this.ws !== ws) return;
      this.drop(undefined, ev?.message ? `connection failed: ${ev.message}` : "connection failed");
    };
  }

  /** Leaves the current socket: no more events from it. */
  private detach(): void {
    const ws = this.ws;
    if (ws) ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    this.ws = undefined;
    this.welcomed = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.stopKeepalive();
    this.stopKeepalive = () => {};
    this.onDetach();
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

  private shutdown(code: number | undefined, reason: string): void {
    if (this.stopped) return;
    this.stopped = true;
    this.detach();
    this.setState({ state: "closed", code, reason });
    this.onClosed(this.closedError());
  }
}
