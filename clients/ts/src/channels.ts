/**
 * Pub/sub channels (docs/pubsub.md), Pylon's `PubSubOps`: publish, history
 * and the channel list over HTTP, and a subscription over the channel's
 * WebSocket that resumes after the last message it handed on whenever the
 * socket drops (`?after=<id>`), so a reconnect neither repeats nor skips a
 * kept message.
 *
 * ```ts
 * const ch = channels("https://api.example.com", { token });
 * await ch.publish("chat:lobby", { text: "hi" }); // {id, at}
 * const sub = ch.subscribe("chat:lobby", { after: 0, onMessage: (m) => show(m.data) });
 * sub.close();
 * ```
 */
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.js";
import { BackgroundHttp, type BackgroundOptions } from "./background.js";
import { PylonError } from "./errors.js";
import { ReceiptCounter } from "./receipts.js";
import { KEEPALIVE_ACK, type Json } from "./protocol.js";
import {
  offeredProtocols,
  pathSegment,
  pickWebSocket,
  resolveToken,
  startKeepalive,
  wsOrigin,
  type WebSocketConstructor,
  type WebSocketLike,
} from "./transport.js";

/** A message: its id (1, 2, … per channel), when it was published (ms since the epoch) and its data. */
export interface ChannelMessage {
  id: number;
  at: number;
  data: Json;
}

/** Sent once per socket after its replay: live messages follow. */
export interface ChannelReady {
  lastId: number;
  /** Messages after the id resumed from were dropped by retention before this socket could have them. */
  gap: boolean;
}

export interface ChannelsOptions extends BackgroundOptions {
  /** Default the global `WebSocket`. */
  WebSocket?: WebSocketConstructor;
  /** Reconnect delays. Default 250 ms doubling to 10 s, jittered. */
  backoff?: BackoffOptions;
  /** Keepalive after this much silence (ms); 0 for none. Default 30 s. */
  keepaliveMs?: number;
}

export interface SubscribeOptions {
  /** Replay the kept messages after this id first (0: all kept); without it, live messages only. */
  after?: number;
  onMessage(message: ChannelMessage): void;
  onReady?(ready: ChannelReady): void;
  /** A server `error` frame. */
  onError?(error: PylonError): void;
}

export interface ChannelSubscription {
  /** The id of the last message handed on (or `ready`'s `lastId`); where a reconnect resumes. */
  readonly lastId: number | undefined;
  /** Closes the socket for good. */
  close(): void;
}

export interface Channels {
  publish(channel: string, data: Json): Promise<{ id: number; at: number }>;
  history(channel: string, page?: { after?: number; limit?: number }): Promise<{ channel: string; lastId: number; messages: ChannelMessage[] }>;
  /** The channels the caller may subscribe to, by name, a page at a time (`next` is the following page's `after`). */
  list(page?: { after?: string; limit?: number }): Promise<{ channels: { name: string; createdAt: number }[]; next: string | null }>;
  subscribe(channel: string, options: SubscribeOptions): ChannelSubscription;
}

function query(fields: Record<string, string | number | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) p.set(k, String(v));
  const s = p.toString();
  return s === "" ? "" : `?${s}`;
}

export function channels(baseUrl: string, options: ChannelsOptions = {}): Channels {
  const http = new BackgroundHttp(baseUrl, options);
  const path = (channel: string, what: string) => `/v1/channels/${pathSegment(channel)}/${what}`;
  return {
    publish: (channel, data) => http.post(path(channel, "publish"), { data }),
    history: (channel, page = {}) => http.get(path(channel, "history") + query(page), "messages"),
    list: (page = {}) => http.get(`/v1/channels${query(page)}`, "channels"),
    subscribe: (channel, o) => new Subscriber(`${wsOrigin(baseUrl)}${path(channel, "ws")}`, options, o),
  };
}

/** One subscription: a socket at a time, reopened after `lastId` until closed. */
class Subscriber implements ChannelSubscription {
  lastId: number | undefined;
  private ws: WebSocketLike | undefined;
  private closed = false;
  private attempt = 0;
  private stopKeepalive: () => void = () => {};
  private heardAt = 0;
  /** What the socket received and has not receipted (`recv`). */
  private readonly receipts = new ReceiptCounter();

  private readonly url: string;
  private readonly options: ChannelsOptions;
  private readonly handlers: SubscribeOptions;

  constructor(url: string, options: ChannelsOptions, handlers: SubscribeOptions) {
    this.url = url;
    this.options = options;
    this.handlers = handlers;
    this.lastId = handlers.after;
    void this.open();
  }

  close(): void {
    this.closed = true;
    this.stopKeepalive();
    this.ws?.close(1000, "closed by the client");
  }

  private async open(): Promise<void> {
    const Ws = pickWebSocket(this.options.WebSocket);
    if (Ws === undefined) {
      this.handlers.onError?.(new PylonError("UNAVAILABLE", "no WebSocket implementation: pass options.WebSocket"));
      return;
    }
    const token = await resolveToken(this.options.token);
    if (this.closed) return;
    const after = this.lastId === undefined ? "" : `?after=${this.lastId}`;
    const ws = new Ws(this.url + after, offeredProtocols(token));
    this.ws = ws;
    this.heardAt = Date.now();
    this.receipts.reset();
    ws.onmessage = (ev: { data: unknown }) => this.frame(ev.data);
    ws.onclose = () => this.dropped(ws);
    ws.onerror = () => {};
    this.stopKeepalive = startKeepalive(this.options.keepaliveMs ?? 30_000, {
      silentMs: () => Date.now() - this.heardAt,
      sendRaw: (text) => ws.send(text),
      dead: () => ws.close(4000, "silent"),
    });
  }

  private frame(data: unknown): void {
    this.heardAt = Date.now();
    if (typeof data !== "string" || data === KEEPALIVE_ACK) return;
    const receipt = this.receipts.received("json", data);
    if (receipt !== undefined) this.ws?.send(receipt);
    let f: { type?: string; id?: number; at?: number; data?: Json; lastId?: number; gap?: boolean; code?: string; message?: string };
    try {
      f = JSON.parse(data);
    } catch {
      return;
    }
    if (f.type === "message" && typeof f.id === "number") {
      // A replay after a reconnect starts after lastId; never hand on one twice.
      if (this.lastId !== undefined && f.id <= this.lastId) return;
      this.lastId = f.id;
      this.handlers.onMessage({ id: f.id, at: f.at ?? 0, data: f.data ?? null });
    } else if (f.type === "ready" && typeof f.lastId === "number") {
      this.attempt = 0;
      // Live from here: a reconnect resumes after what the channel had.
      if (this.lastId === undefined) this.lastId = f.lastId;
      this.handlers.onReady?.({ lastId: f.lastId, gap: f.gap === true });
    } else if (f.type === "error") {
      this.handlers.onError?.(new PylonError(f.code ?? "INTERNAL", f.message ?? ""));
    }
  }

  private dropped(ws: WebSocketLike): void {
    this.stopKeepalive();
    if (this.closed || ws !== this.ws) return;
    const delay = backoffDelay(this.options.backoff ?? DEFAULT_BACKOFF, this.attempt++);
    setTimeout(() => void this.open(), delay);
  }
}
