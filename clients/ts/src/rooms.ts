/**
 * Rooms over HTTP (docs/rooms.md), as Pylon's `RoomOps`: a server (or a
 * signed-in caller, for itself) joins, updates and removes members that
 * the room's sockets see in their presence, broadcasts to them, and reads
 * a room's size and members or the list of rooms. Each call is one
 * request to `/v1/rooms…`; a refusal rejects with a {@link PylonError}
 * carrying the server's code (`FORBIDDEN`, `PRESENCE_TOO_LARGE`, …).
 *
 * ```ts
 * const r = rooms("https://api.example.com", { token: adminToken });
 * await r.join("lobby", "bot-1", { status: "ready" }, { ttlMs: 60_000 });
 * await r.broadcast("lobby", "news", { text: "hello" });
 * const { size, members } = await r.get("lobby");
 * ```
 */
import { BackgroundHttp, type BackgroundOptions } from "./background.js";
import type { Json } from "./protocol.js";
import { pathSegment } from "./transport.js";

/** One member of a room: a socket with a presence (`conn` "c1", …) or an HTTP member (`conn` "member:{member}"). */
export interface RoomMember {
  conn: string;
  state: Json;
  /** An HTTP member's id. */
  member?: string;
  /** When an HTTP member with a TTL leaves (ms since the epoch). */
  expiresAt?: number;
}

/** `GET /v1/rooms/{room}`. */
export interface RoomInfo {
  room: string;
  /** Members: sockets with a presence and HTTP members. */
  size: number;
  members: RoomMember[];
  /** Open sockets, with a presence or not. */
  sockets: number;
}

/** One room of `GET /v1/rooms` (about 100 ms behind the room itself). */
export interface ListedRoom {
  room: string;
  members: number;
  updated: string | null;
}

export interface RoomPage {
  rooms: ListedRoom[];
  /** Pass as `after` for the next page; `null` on the last. */
  next: string | null;
}

export interface Rooms {
  /** Adds (or updates) `member` with its presence (default `{}`); with `ttlMs` it leaves that long after. */
  join(room: string, member: string, presence?: Json, options?: { ttlMs?: number }): Promise<{ member: string }>;
  /** Replaces a member's presence; `ttlMs` renews its time. `MEMBER_NOT_FOUND` if it is not in the room. */
  setPresence(room: string, member: string, presence: Json, options?: { ttlMs?: number }): Promise<{ member: string }>;
  /** Removes a member; `left` is false if it was not in the room. */
  leave(room: string, member: string): Promise<{ member: string; left: boolean }>;
  /** A `bcast` to every socket of the room. */
  broadcast(room: string, topic: string, data?: Json): Promise<void>;
  /** The room's size and members. */
  get(room: string): Promise<RoomInfo>;
  /** Rooms with members the caller may enter, by name. */
  list(page?: { after?: string; limit?: number }): Promise<RoomPage>;
}

export function rooms(baseUrl: string, options: BackgroundOptions = {}): Rooms {
  const http = new BackgroundHttp(baseUrl, options);
  const path = (room: string, op = "") => `/v1/rooms/${pathSegment(room)}${op === "" ? "" : `/${op}`}`;
  const ttl = (o?: { ttlMs?: number }) => (o?.ttlMs === undefined ? {} : { ttlMs: o.ttlMs });
  return {
    join: (room, member, presence, o) =>
      http.post(path(room, "join"), { member, ...(presence === undefined ? {} : { presence }), ...ttl(o) }),
    setPresence: (room, member, presence, o) => http.post(path(room, "presence"), { member, presence, ...ttl(o) }),
    leave: (room, member) => http.post(path(room, "leave"), { member }),
    broadcast: async (room, topic, data) => {
      await http.post(path(room, "broadcast"), data === undefined ? { topic } : { topic, data });
    },
    get: (room) => http.get<RoomInfo>(path(room), "members"),
    list: (page = {}) => {
      const p = new URLSearchParams();
      if (page.after !== undefined) p.set("after", page.after);
      if (page.limit !== undefined) p.set("limit", String(page.limit));
      const q = p.toString();
      return http.get<RoomPage>(`/v1/rooms${q === "" ? "" : `?${q}`}`, "rooms");
    },
  };
}
