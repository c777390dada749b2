/**
 * `ctx` for one call: `auth`, `error`, and `db` (query, mutation),
 * `scheduler` and `jobs` (mutation) or `runQuery` / `runMutation` / `fetch` /
 * `channels` / `rooms` (action).
 */
import { openEnvelope, type RoomOp } from "./bridge.ts";
import type { Call } from "./call.ts";
import type { ActionCtx, Auth, Fields, Json, MutationCtx, Published, QueryCtx, RoomInfo, RoomPage, Rooms } from "./ctx.ts";
import { databaseFor } from "./db.ts";
import { appError, ErrorCode, raise } from "./errors.ts";
import { jobsFor } from "./jobs.ts";
import { schedulerFor } from "./scheduler.ts";

/** Reads `bridge.auth`; a missing or mistyped claim is the anonymous value. */
export function parseAuth(text: string): Auth {
  const raw = (JSON.parse(text) ?? {}) as Record<string, unknown>;
  const roles = Array.isArray(raw.roles) ? raw.roles.filter((r): r is string => typeof r === "string") : [];
  return Object.freeze({
    userId: typeof raw.userId === "string" ? raw.userId : null,
    tenantId: typeof raw.tenantId === "string" ? raw.tenantId : null,
    roles: Object.freeze(roles),
    isAdmin: raw.isAdmin === true,
  });
}

function fail(code: string, message: string): never {
  throw appError(code, message);
}

export function contextFor(call: Call, auth: Auth): QueryCtx | MutationCtx | ActionCtx {
  if (call.kind === "query") return { auth, error: fail, db: databaseFor(call, false) };
  if (call.kind === "mutation") {
    return { auth, error: fail, db: databaseFor(call, true), scheduler: schedulerFor(call), jobs: jobsFor(call) };
  }
  const run = async (kind: "query" | "mutation", name: string, args: Fields | undefined): Promise<Json> => {
    call.ensureRunning(kind === "query" ? "ctx.runQuery" : "ctx.runMutation");
    const bridge = call.bridge;
    if (typeof bridge.call !== "function") throw raise(ErrorCode.FUNCTION_FAILED, "this call's bridge cannot run functions");
    return openEnvelope(await bridge.call(kind, name, JSON.stringify(args ?? {}))) as Json;
  };
  const ctx: ActionCtx = {
    auth,
    error: fail,
    runQuery: <T>(name: string, args?: Fields) => run("query", name, args) as Promise<T>,
    runMutation: <T>(name: string, args?: Fields) => run("mutation", name, args) as Promise<T>,
    // The global at the time of the call (a test or the platform may replace it).
    fetch: ((input: RequestInfo | URL, init?: RequestInit) => globalThis.fetch(input, init)) as typeof fetch,
    channels: {
      publish: async (channel: string, data: Json): Promise<Published> => {
        call.ensureRunning("ctx.channels.publish");
        const bridge = call.bridge;
        if (typeof bridge.publish !== "function") throw raise(ErrorCode.FUNCTION_FAILED, "this call's bridge cannot publish");
        return openEnvelope(await bridge.publish(channel, JSON.stringify(data ?? null))) as Published;
      },
    },
    rooms: roomsFor(call),
  };
  return ctx;
}

/** `ctx.rooms`: each method one `bridge.room` call with the HTTP route's body. */
function roomsFor(call: Call): Rooms {
  const room = async (op: RoomOp, name: string, body: { [key: string]: Json | undefined } | null): Promise<unknown> => {
    call.ensureRunning(`ctx.rooms.${op === "presence" ? "setPresence" : op}`);
    const bridge = call.bridge;
    if (typeof bridge.room !== "function") throw raise(ErrorCode.FUNCTION_FAILED, "this call's bridge cannot reach rooms");
    return openEnvelope(await bridge.room(op, name, JSON.stringify(body)));
  };
  const ttl = (o?: { ttlMs?: number }) => (o?.ttlMs === undefined ? {} : { ttlMs: o.ttlMs });
  return {
    join: async (name, member, presence, o) =>
      (await room("join", name, { member, ...(presence === undefined ? {} : { presence }), ...ttl(o) })) as { member: string },
    setPresence: async (name, member, presence, o) =>
      (await room("presence", name, { member, presence, ...ttl(o) })) as { member: string },
    leave: async (name, member) => (await room("leave", name, { member })) as { member: string; left: boolean },
    broadcast: async (name, topic, data) => {
      await room("broadcast", name, data === undefined ? { topic } : { topic, data });
    },
    get: async (name) => (await room("get", name, null)) as RoomInfo,
    list: async (page = {}) => (await room("list", "", { after: page.after, limit: page.limit })) as RoomPage,
  };
}
