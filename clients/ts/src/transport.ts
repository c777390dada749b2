/**
 * What every socket of the client shares, whatever it speaks (`pylon.v1`
 * on a shard, `pylon.sim.v1` on a simulation shard, a matchmaking
 * ticket): the WebSocket it needs, the token offered at the upgrade, the
 * close codes that stop reconnecting, and the keepalive.
 *
 * ```ts
 * wsOrigin("https://api.example.com/"); // "wss://api.example.com"
 * offeredProtocols("tok"); // ["pylon.v1.json", "bearer.tok"]
 * offeredProtocols(undefined, "pylon.v1.postcard"); // ["pylon.v1.postcard"]
 * ```
 */
import { CloseCode, KEEPALIVE, SUBPROTOCOL } from "./protocol.js";

/** The part of the WebSocket API the client uses (the browser's and Node 22's global `WebSocket` fit). */
export interface WebSocketLike {
  readonly protocol: string;
  /** Set to `"arraybuffer"` when the socket speaks postcard, so binary frames come as bytes, not `Blob`s. */
  binaryType?: string;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: any) => void) | null;
  onclose: ((ev: any) => void) | null;
  onerror: ((ev: any) => void) | null;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** A token, or a function asked for one before every connection attempt (and after a 4401 close). */
export type TokenSource = string | undefined | (() => string | undefined | Promise<string | undefined>);

/** The given implementation, else the global `WebSocket`, else undefined. */
export function pickWebSocket(given: WebSocketConstructor | undefined): WebSocketConstructor | undefined {
  return given ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
}

/** `base` without trailing slashes, with `http(s)://` turned into `ws(s)://`. */
/**
 * A path segment (a shard name, an id): the router matches paths as
 * written (it decodes nothing), and `:` is legal in shard names
 * (`team:acme`) and common in ids, so it stays as it is.
 */
export function pathSegment(s: string): string {
  return encodeURIComponent(s).replace(/%3A/gi, ":");
}

export function wsOrigin(base: string): string {
  return base.replace(/\/+$/, "").replace(/^http(s?):\/\//i, (_m, s: string) => `ws${s}://`);
}

/** `base` without trailing slashes, with `ws(s)://` turned into `http(s)://` (for plain requests). */
export function httpOrigin(base: string): string {
  return base.replace(/\/+$/, "").replace(/^ws(s?):\/\//i, (_m, s: string) => `http${s}://`);
}

/** The token a source gives now. */
export async function resolveToken(source: TokenSource): Promise<string | undefined> {
  return typeof source === "function" ? await source() : source;
}

/**
 * The subprotocols to offer: the encoding's (`pylon.v1.json` unless told
 * otherwise), and the token as the entry `bearer.<token>` (browsers cannot
 * set headers on an upgrade; the router reads and removes it,
 * docs/auth.md).
 */
export function offeredProtocols(token: string | undefined, subprotocol: string = SUBPROTOCOL): string[] {
  return token === undefined || token === "" ? [subprotocol] : [subprotocol, `bearer.${token}`];
}

/**
 * Close codes after which a socket does not reconnect: 4400 (protocol
 * error) and 4403 (forbidden). 4401 stops only when the token cannot be
 * refreshed; the caller decides that.
 */
export function closeStops(code: number | undefined): boolean {
  return code === CloseCode.PROTOCOL || code === CloseCode.FORBIDDEN;
}

/** The close code a close event means: 1005 (none given) and 1006 (no close frame) are no code. */
export function closeCodeOf(ev: { code?: number }): number | undefined {
  return ev.code === 1005 || ev.code === 1006 ? undefined : ev.code;
}

export interface KeepaliveHooks {
  /** Milliseconds since the last frame from the server. */
  silentMs(): number;
  /** Sends one raw text frame. */
  sendRaw(text: string): void;
  /** The server has been silent too long: drop the connection. */
  dead(silentMs: number): void;
}

/**
 * Starts the keepalive of one live socket: after `ms` of silence it sends
 * the `pylon.keepalive` text frame (answered by the platform without
 * waking the object, docs/protocol.md), after twice as much it gives the
 * socket up. Returns the stopper; `ms` ≤ 0 starts nothing.
 */
export function startKeepalive(ms: number, hooks: KeepaliveHooks): () => void {
  if (!(ms > 0)) return () => {};
  const timer = setInterval(() => {
    const silent = hooks.silentMs();
    if (silent >= 2 * ms) hooks.dead(silent);
    else if (silent >= ms) hooks.sendRaw(KEEPALIVE);
  }, Math.max(1, Math.floor(ms / 4)));
  return () => clearInterval(timer);
}
