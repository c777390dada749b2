/**
 * The types a handler sees: `ctx` of each kind and the rows of `ctx.db`.
 * Types only; the runtime builds these objects in db.ts and context.ts.
 */

/** Any JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The three kinds of function. */
export type FunctionKind = "query" | "mutation" | "action";

/** Who is calling (the verified token's claims, as policies see them). */
export interface Auth {
  readonly userId: string | null;
  readonly tenantId: string | null;
  readonly roles: readonly string[];
  readonly isAdmin: boolean;
}

/** A stored row: its id and its fields. Narrow it with `ctx.db.get<Card>(...)`. */
export interface Row {
  id: string;
  [field: string]: Json | undefined;
}

/** Field values to insert or set. */
export type Fields = { [field: string]: Json | undefined };

/** A filter in the query language (docs/queries.md, "Filters"). */
export type Filter = { [fieldOrOperator: string]: Json };

/** A sort key: `"position"`, `"-position"` (descending) or `["position", "asc"]`. */
export type OrderKey = string | readonly [field: string, direction: "asc" | "desc"];

/** The rest of a query, after its entity. */
export interface QueryOptions {
  where?: Filter;
  order?: readonly OrderKey[];
  /** 1..=1000. */
  limit?: number;
}

/** A query: `{ entity: "Card", where: { done: false }, order: [["position", "asc"]], limit: 100 }`. */
export interface QuerySpec extends QueryOptions {
  entity: string;
}

/**
 * Reads of the shard's rows. They are synchronous underneath (the shard
 * answers from its SQLite within the call's turn) and return settled
 * promises, so `await` costs no I/O. A refusal (policy, bad query) throws
 * a `PylonError` at the call itself: catch it with try/catch around the
 * `await`, not with `.catch(...)`.
 */
export interface DatabaseReader {
  get<T extends Row = Row>(entity: string, id: string): Promise<T | null>;
  query<T extends Row = Row>(query: QuerySpec): Promise<T[]>;
  query<T extends Row = Row>(entity: string, options?: QueryOptions): Promise<T[]>;
}

/** Reads and writes; a mutation's writes are applied all together or not at all. */
export interface DatabaseWriter extends DatabaseReader {
  /** Returns the new row's id. */
  insert(entity: string, row: Fields): Promise<string>;
  update(entity: string, id: string, set: Fields): Promise<void>;
  delete(entity: string, id: string): Promise<void>;
}

/**
 * Calls of mutations, queries or actions by name, later. Like `ctx.db`,
 * each method is synchronous underneath, returns an already settled
 * promise and throws a refusal at the call. A call is scheduled only if
 * the mutation commits (docs/functions.md, "Scheduled functions").
 */
export interface Scheduler {
  /** Runs `name` with `args` (default `{}`) `delayMs` (finite, >= 0) after this mutation commits; returns the scheduled id. */
  runAfter(delayMs: number, name: string, args?: Fields): Promise<string>;
  /** Runs `name` with `args` (default `{}`) at `when` (ms since the epoch, or a Date); returns the scheduled id. */
  runAt(when: number | Date, name: string, args?: Fields): Promise<string>;
  /** Cancels a scheduled call that has not run; a no-op when none with that id remains. */
  cancel(id: string): Promise<void>;
}

/** Options of a job; each left out takes the default given. */
export interface JobOptions {
  /** Not run before this many ms after the mutation commits (0 to 12 hours); default 0. */
  delayMs?: number;
  /** Runs after the first that may fail before the job is dead (0 to 100); default 3. */
  maxRetries?: number;
  /** One of the app's queues (the manifest's `jobs.queues`); default `"default"`. */
  queue?: string;
  /** 0 to 9, higher first within a delivered batch; default 5. */
  priority?: number;
  /** At most one job per key (1 to 200 bytes): enqueuing a key again returns the first job's id. */
  key?: string;
}

/**
 * Background jobs (Pylon's `JobOps`). Like `ctx.db`, `enqueue` is
 * synchronous underneath, returns an already settled promise and throws a
 * refusal at the call. A job is sent only if the mutation commits
 * (docs/functions.md, "Jobs from a mutation").
 */
export interface Jobs {
  /** Enqueues the function `name` (an action or a mutation) with `payload` as its args (default `{}`); returns the job's id. */
  enqueue(name: string, payload?: Fields, options?: JobOptions): Promise<string>;
}

interface BaseCtx {
  readonly auth: Auth;
  /**
   * Fails the call with `FUNCTION_ERROR` and the message `"<code>: <message>"`
   * (`code` UPPER_SNAKE, else reported as `APP_ERROR`); a mutation's writes
   * are rolled back. Write `return ctx.error(...)` or `throw ctx.error(...)`
   * where TypeScript should know the code after it does not run.
   */
  error(code: string, message: string): never;
}

/** `ctx` of a query: reads only (the write methods throw `READ_ONLY`). */
export interface QueryCtx extends BaseCtx {
  readonly db: DatabaseReader;
}

/** `ctx` of a mutation. */
export interface MutationCtx extends BaseCtx {
  readonly db: DatabaseWriter;
  /** Schedules calls, sent only if this mutation commits. Mutations only (not queries, not actions). */
  readonly scheduler: Scheduler;
  /** Enqueues jobs, sent only if this mutation commits. Mutations only (not queries, not actions). */
  readonly jobs: Jobs;
}

/** A published message's id (1, 2, … per channel) and when it was stored (ms since the epoch). */
export interface Published {
  id: number;
  at: number;
}

/** Pub/sub channels (Pylon's `PubSubOps`, docs/pubsub.md). Actions only. */
export interface Channels {
  /**
   * Publishes `data` (any JSON value, at most 64 KiB) to `channel` as this
   * action's caller, whom the manifest's `channels` rules must let publish.
   * A refusal throws a `PylonError` whose message starts with the channel's
   * code (`FORBIDDEN`, `UNKNOWN_CHANNEL`, `MESSAGE_TOO_LARGE`, …).
   */
  publish(channel: string, data: Json): Promise<Published>;
}

/** One member of a room: a socket with a presence (`conn` "c1", …) or an HTTP member (`conn` "member:{member}"). */
export interface RoomMember {
  conn: string;
  state: Json;
  /** An HTTP member's id. */
  member?: string;
  /** When an HTTP member with a TTL leaves (ms since the epoch). */
  expiresAt?: number;
}

/** A room's size and members (`ctx.rooms.get`). */
export interface RoomInfo {
  room: string;
  /** Members: sockets with a presence and HTTP members. */
  size: number;
  members: RoomMember[];
  /** Open sockets, with a presence or not. */
  sockets: number;
}

/** One room of the room list (about 100 ms behind the room itself). */
export interface ListedRoom {
  room: string;
  members: number;
  updated: string | null;
}

/** A page of the room list; pass `next` as `after` for the next one (`null` on the last). */
export interface RoomPage {
  rooms: ListedRoom[];
  next: string | null;
}

/**
 * Rooms (Pylon's `RoomOps`, docs/rooms.md), as the TypeScript client's
 * `rooms()` has them. Actions only. Each call acts as this action's
 * caller: the shard rules must let it into the room, and it joins,
 * updates and removes only itself (an admin: anyone). A refusal throws a
 * `PylonError` whose message starts with the rooms API's code
 * (`BAD_MEMBER`, `FORBIDDEN`, `MEMBER_NOT_FOUND`, `PRESENCE_TOO_LARGE`, …).
 */
export interface Rooms {
  /** Adds (or updates) `member` with its presence (default `{}`); with `ttlMs` it leaves that long after. */
  join(room: string, member: string, presence?: Json, options?: { ttlMs?: number }): Promise<{ member: string }>;
  /** Replaces a member's presence; `ttlMs` renews its time. `MEMBER_NOT_FOUND` if it is not in the room. */
  setPresence(room: string, member: string, presence: Json, options?: { ttlMs?: number }): Promise<{ member: string }>;
  /** Removes a member; `left` is false if it was not in the room. */
  leave(room: string, member: string): Promise<{ member: string; left: boolean }>;
  /** A `bcast` of `topic` to every socket of the room. */
  broadcast(room: string, topic: string, data?: Json): Promise<void>;
  /** The room's size and members. */
  get(room: string): Promise<RoomInfo>;
  /** Rooms with members the caller may enter, by name. */
  list(page?: { after?: string; limit?: number }): Promise<RoomPage>;
}

/** `ctx` of an action: no `db`, `scheduler` or `jobs`; it may do I/O and calls queries and mutations by name. */
export interface ActionCtx extends BaseCtx {
  /** Runs the query `name` (its result is not checked against `T`). */
  runQuery<T = Json>(name: string, args?: Fields): Promise<T>;
  /** Runs the mutation `name` in its own turn of the shard (its result is not checked against `T`). */
  runMutation<T = Json>(name: string, args?: Fields): Promise<T>;
  /** The global `fetch`. */
  readonly fetch: typeof fetch;
  /** Publishes to channels. */
  readonly channels: Channels;
  /** Joins, updates, removes and reads members of rooms, and broadcasts to them. */
  readonly rooms: Rooms;
}
