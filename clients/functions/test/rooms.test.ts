// An action's ctx.rooms against a fake bridge: the operation, room and
// body the Rust side gets for each method (the HTTP routes' bodies), the
// answers handed back, a refusal thrown with its code, a call after the
// action ended, and a bridge without `room` (not an action's).
import assert from "node:assert/strict";
import { test } from "node:test";
import { action, PylonError, type FunctionDefinition } from "../src/index.ts";
import { install } from "../src/runtime.ts";
import { ANONYMOUS, FakeShard, open } from "./support/fake-bridge.ts";

function registry(functions: Record<string, FunctionDefinition>) {
  return install(Object.entries(functions).map(([name, def]) => ({ name, file: `functions/${name}.ts`, module: { default: def } })));
}

let late: Promise<unknown> | undefined;

const functions = registry({
  everything: action({
    handler: async (ctx) => {
      const joined = await ctx.rooms.join("lobby", "alice", { at: "door" }, { ttlMs: 60_000 });
      await ctx.rooms.join("lobby", "bob");
      await ctx.rooms.setPresence("lobby", "alice", { at: "desk" });
      await ctx.rooms.broadcast("lobby", "news", { n: 1 });
      await ctx.rooms.broadcast("lobby", "ping");
      const info = await ctx.rooms.get("lobby");
      const left = await ctx.rooms.leave("lobby", "bob");
      const first = await ctx.rooms.list();
      const next = await ctx.rooms.list({ after: "lobby", limit: 10 });
      return { joined, size: info.size, left: left.left, first: first.rooms.length, next: next.next };
    },
  }),
  caught: action({
    handler: async (ctx) => {
      try {
        await ctx.rooms.join("lobby", "a b");
        return "joined";
      } catch (e) {
        return e instanceof PylonError ? `${e.code} ${e.message}` : "other";
      }
    },
  }),
  leaveLater: action({
    handler: async (ctx) => {
      late = new Promise((done) => setTimeout(() => ctx.rooms.leave("lobby", "x").then(done, done), 10));
      return null;
    },
  }),
});

type Seen = [op: string, room: string, body: unknown];

function answering(seen: Seen[]) {
  return async (op: string, room: string, body: string) => {
    seen.push([op, room, JSON.parse(body)]);
    const answers: Record<string, unknown> = {
      join: { member: "m" },
      presence: { member: "m" },
      leave: { member: "bob", left: true },
      broadcast: {},
      get: { room, size: 2, members: [], sockets: 0 },
      list: { rooms: [{ room: "lobby", members: 2, updated: null }], next: null },
    };
    return JSON.stringify({ ok: answers[op] });
  };
}

test("each method hands its operation, room and route body to the bridge and returns its answer", async () => {
  const shard = new FakeShard();
  const seen: Seen[] = [];
  const bridge = { ...shard.bridge("action", ANONYMOUS), room: answering(seen) };
  const got = open(await functions.run("everything", bridge, "{}"));
  assert.deepEqual(got, { ok: { joined: { member: "m" }, size: 2, left: true, first: 1, next: null } });
  assert.deepEqual(seen, [
    ["join", "lobby", { member: "alice", presence: { at: "door" }, ttlMs: 60_000 }],
    ["join", "lobby", { member: "bob" }],
    ["presence", "lobby", { member: "alice", presence: { at: "desk" } }],
    ["broadcast", "lobby", { topic: "news", data: { n: 1 } }],
    ["broadcast", "lobby", { topic: "ping" }],
    ["get", "lobby", null],
    ["leave", "lobby", { member: "bob" }],
    ["list", "", {}],
    ["list", "", { after: "lobby", limit: 10 }],
  ]);
  assert.equal(shard.log.length, 0, "no ctx.db call");
});

test("a refusal is thrown with its code and the rooms API's own at the start of the message", async () => {
  const shard = new FakeShard();
  const bridge = {
    ...shard.bridge("action", ANONYMOUS),
    room: async () => JSON.stringify({ err: { code: "BAD_ARGS", message: "BAD_MEMBER: member is 1 to 128 characters" } }),
  };
  const got = open(await functions.run("caught", bridge, "{}"));
  assert.deepEqual(got, { ok: "BAD_ARGS BAD_MEMBER: member is 1 to 128 characters" });
});

test("a call after the action answered is refused without reaching the bridge", async () => {
  const shard = new FakeShard();
  const seen: Seen[] = [];
  const bridge = { ...shard.bridge("action", ANONYMOUS), room: answering(seen) };
  assert.deepEqual(open(await functions.run("leaveLater", bridge, "{}")), { ok: null });
  const e = await late;
  assert.ok(e instanceof PylonError && e.code === "CALL_ENDED", String(e));
  assert.deepEqual(seen, []);
});

test("a bridge without room fails the call", async () => {
  const shard = new FakeShard();
  const got = open(await functions.run("everything", shard.bridge("action", ANONYMOUS), "{}"));
  assert.equal((got as { err: { code: string } }).err.code, "FUNCTION_FAILED");
});
