/**
 * Waiting in a matchmaking queue (docs/sims.md, "Matchmaking") until the
 * queue puts the player in a group: enqueue with the criteria, then hear
 * the ticket over its socket (or poll it when there is no socket), and
 * resolve with the simulation shard to join.
 *
 * ```ts
 * const match = await matchmake({ url: location.origin, queue: "lobby", criteria: { mode: "duel" } });
 * const sim = joinSim({ url: location.origin, kind: match.kind, id: match.sim });
 * ```
 */
import { PylonError } from "./errors.js";
import { DecodeError, KEEPALIVE_ACK, type Json } from "./protocol.js";
import { decodeTicketMsg, type TicketMsg } from "./sim-protocol.js";
import {
  httpOrigin,
  offeredProtocols,
  pathSegment,
  pickWebSocket,
  resolveToken,
  wsOrigin,
  type TokenSource,
  type WebSocketConstructor,
  type WebSocketLike,
} from "./transport.js";

export interface MatchmakeOptions {
  /** The Worker's origin (`http(s)://` or `ws(s)://`). */
  url: string;
  /** The queue's name: `POST /v1/match/{kind}/{queue}`. */
  queue: string;
  /** The queue's kind (its class name, any case). Default `duels`. */
  kind?: string;
  /** What the player asks for: the request's JSON body (the queue's rules read it). */
  criteria: Json;
  /** Sent as `Authorization: Bearer` and as the socket's `bearer.` subprotocol entry. A signed-in player is its user id. */
  token?: TokenSource;
  /** Default the global `fetch`. */
  fetch?: typeof fetch;
  /** The ticket socket's implementation; default the global `WebSocket`; `null` polls instead. */
  WebSocket?: WebSocketConstructor | null;
  /** How often to poll the ticket when there is no socket. Default 1 000 ms. */
  pollMs?: number;
  /** Aborting leaves the queue (`DELETE` of the ticket) and rejects with `ABORTED`. */
  signal?: AbortSignal;
  /** Told every state of the ticket: the enqueue's answer, then each change. */
  onTicket?: (ticket: TicketMsg) => void;
}

/** Where the queue sent the player. */
export interface Match {
  /** The simulation kind to join (`joinSim({kind})`). */
  kind: string;
  /** The simulation shard's id (`joinSim({id})`). */
  sim: string;
  /** The group's players (user ids; an anonymous player is its ticket id). */
  players: string[];
  ticket: string;
  /** This player, as `players` names it. */
  player: string;
}

/**
 * Why `matchmake` gave up: `EXPIRED` or `LEFT` (the ticket settled with
 * no group; `ticket` says how), the queue's own answer (`BAD_CRITERIA`,
 * `QUEUE_FULL`, `CRITERIA_TOO_LARGE`, `NOT_FOUND`, `FORBIDDEN`, …, with
 * its HTTP `status`), `ABORTED`, `UNAVAILABLE` (the queue could not be
 * reached), `BAD_RESPONSE` (an answer that is not a ticket).
 */
export class MatchError extends PylonError {
  readonly ticket: TicketMsg | undefined;
  constructor(code: string, message: string, extra: { status?: number; ticket?: TicketMsg } = {}) {
    super(code, message, extra.status === undefined ? {} : { status: extra.status });
    this.name = "MatchError";
    this.ticket = extra.ticket;
  }
}

/** Consecutive failed polls (network errors) before giving up. */
const MAX_POLL_FAILURES = 10;

/** What a ticket means for the wait: a match, a refusal, or nothing yet. */
function outcome(t: TicketMsg): Match | MatchError | undefined {
  switch (t.status) {
    case "assigned":
      if (t.sim === undefined) return new MatchError("BAD_RESPONSE", `ticket ${t.ticket} is assigned but names no simulation`, { ticket: t });
      return { kind: t.kind, sim: t.sim, players: t.players, ticket: t.ticket, player: t.player };
    case "expired":
      return new MatchError("EXPIRED", `ticket ${t.ticket} expired before a group was formed`, { ticket: t });
    case "left":
      return new MatchError("LEFT", `ticket ${t.ticket} left the queue`, { ticket: t });
    default:
      return undefined;
  }
}

/** Enqueues and waits for the group; see {@link MatchmakeOptions}. */
export async function matchmake(options: MatchmakeOptions): Promise<Match> {
  const f = options.fetch ?? globalThis.fetch;
  const kind = options.kind ?? "duels";
  const path = `/v1/match/${pathSegment(kind)}/${pathSegment(options.queue)}`;
  const signal = options.signal;

  /** One request to the queue; the answer must be a ticket. */
  const request = async (method: string, rest: string, body?: string, withSignal = true): Promise<TicketMsg> => {
    const token = await resolveToken(options.token);
    const headers: Record<string, string> = {};
    if (token !== undefined && token !== "") headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    let resp: Response;
    try {
      resp = await f(`${httpOrigin(options.url)}${path}${rest}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        ...(withSignal && signal ? { signal } : {}),
      });
    } catch (e) {
      if (signal?.aborted) throw new MatchError("ABORTED", "matchmaking was aborted");
      throw new MatchError("UNAVAILABLE", `${method} ${path}${rest}: ${String(e)}`);
    }
    const text = await resp.text().catch(() => "");
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!resp.ok) {
      const err = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
      const code = typeof err?.code === "string" ? err.code : `HTTP_${resp.status}`;
      const message = typeof err?.message === "string" ? err.message : `${method} ${path}${rest} answered ${resp.status}`;
      throw new MatchError(code, message, { status: resp.status });
    }
    try {
      return decodeTicketMsg(json);
    } catch (e) {
      throw new MatchError("BAD_RESPONSE", `${method} ${path}${rest}: ${(e as Error).message}`, { status: resp.status });
    }
  };

  if (signal?.aborted) throw new MatchError("ABORTED", "matchmaking was aborted");
  const first = await request("POST", "", JSON.stringify(options.criteria ?? null));
  options.onTicket?.(first);
  const settled = outcome(first);
  if (settled instanceof MatchError) throw settled;
  if (settled) return settled;
  const ticketPath = `/tickets/${encodeURIComponent(first.ticket)}`;

  return new Promise<Match>((resolve, reject) => {
    let done = false;
    let ws: WebSocketLike | undefined;
    let pollTimer: ReturnType<typeof setTimeout> | undefined;
    let failures = 0;

    const closeSocket = () => {
      const s = ws;
      ws = undefined;
      if (!s) return;
      s.onopen = s.onmessage = s.onclose = s.onerror = null;
      try {
        s.close(1000, "done");
      } catch {
        /* already closed */
      }
    };
    const finish = (r: Match | MatchError) => {
      if (done) return;
      done = true;
      if (pollTimer !== undefined) clearTimeout(pollTimer);
      closeSocket();
      signal?.removeEventListener("abort", onAbort);
      if (r instanceof MatchError) reject(r);
      else resolve(r);
    };
    const heard = (t: TicketMsg) => {
      if (done) return;
      options.onTicket?.(t);
      const r = outcome(t);
      if (r) finish(r);
    };
    const poll = async () => {
      pollTimer = undefined;
      if (done) return;
      try {
        heard(await request("GET", ticketPath));
        failures = 0;
      } catch (e) {
        const err = e as MatchError;
        // The queue's own answer (a forgotten ticket, another player's)
        // will not change; a network error may.
        if (err.status !== undefined || err.code === "ABORTED" || ++failures >= MAX_POLL_FAILURES) {
          finish(err);
          return;
        }
      }
      if (!done) pollTimer = setTimeout(() => void poll(), options.pollMs ?? 1_000);
    };
    /** The socket went away before the ticket settled: poll from now on. */
    const fallBack = () => {
      closeSocket();
      if (!done && pollTimer === undefined) void poll();
    };
    const onAbort = () => {
      finish(new MatchError("ABORTED", "matchmaking was aborted"));
      // Best effort: a ticket that cannot be left expires on its own.
      request("DELETE", ticketPath, undefined, false).catch(() => {});
    };
    signal?.addEventListener("abort", onAbort, { once: true });

    const WS = options.WebSocket === null ? undefined : pickWebSocket(options.WebSocket);
    if (!WS) {
      void poll();
      return;
    }
    void resolveToken(options.token).then(
      (token) => {
        if (done) return;
        let s: WebSocketLike;
        try {
          s = new WS(`${wsOrigin(options.url)}${path}/ws?ticket=${encodeURIComponent(first.ticket)}`, offeredProtocols(token));
        } catch {
          fallBack();
          return;
        }
        ws = s;
        s.onmessage = (ev: { data: unknown }) => {
          if (ws !== s || typeof ev.data !== "string" || ev.data === KEEPALIVE_ACK) return;
          try {
            heard(decodeTicketMsg(ev.data));
          } catch (e) {
            if (!(e instanceof DecodeError && e.unknownType)) fallBack();
          }
        };
        // The server closes it (1000) right after the settled ticket; any
        // close before that, or a failed upgrade, falls back to polling.
        s.onclose = s.onerror = () => {
          if (ws === s) fallBack();
        };
      },
      () => fallBack(),
    );
  });
}
