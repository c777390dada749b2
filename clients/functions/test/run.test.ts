// `run` against a fake bridge: envelopes, errors and their codes, ctx.
import assert from "node:assert/strict";
import { test } from "node:test";
import { action, mutation, PylonError, query, v, type FunctionDefinition } from "../src/index.ts";
import { install } from "../src/runtime.ts";
import { ANONYMOUS, FakeShard, open } from "./support/fake-bridge.ts";

function registry(functions: Record<string, FunctionDefinition>) {
  return install(Object.entries(functions).map(([name, def]) => ({ name, file: `functions/${name}.ts`, module: { default: def } })));
}

const seen: { caught?: unknown } = {};

const functions = registry({
  addCard: mutation({
    args: { title: v.string(), position: v.int() },
    handler: async (ctx, args) => {
      const id = await ctx.db.insert("Card", { title: args.title, position: args.position, done: false });
      const row = await ctx.db.get("Card", id);
      await ctx.db.update("Card", id, { done: true });
      const mine = await ctx.db.query({ entity: "Card", where: { title: args.title }, order: ["position"], limit: 10 });
      const again = await ctx.db.query("Card", { where: { done: true } });
      return { id, row, found: mine.length, again: again.length };
    },
  }),
  removeCard: mutation({
    args: { id: v.id("Card") },
    handler: async (ctx, { id }) => {
      await ctx.db.delete("Card", id);
    },
  }),
  plain: query({ handler: () => 42 }),
  whoAmI: query({ handler: (ctx) => ctx.auth }),
  trustedWrite: mutation({ trusted: true, handler: async () => null }),
  readSecret: mutation({ handler: async (ctx) => ctx.db.get("Secret", "s1") }),
  catchDenied: mutation({
    handler: async (ctx) => {
      try {
        await ctx.db.get("Secret", "s1");
      } catch (error) {
        seen.caught = error;
        return "caught";
      }
      return "not denied";
    },
  }),
  appError: mutation({ args: { code: v.string() }, handler: (ctx, { code }) => ctx.error(code, "on purpose") }),
  throwsError: mutation({
    handler: async () => {
      throw new Error("boom at line 3");
    },
  }),
  throwsString: query({
    handler: () => {
      throw "just a string";
    },
  }),
  throwsOwnPylonError: mutation({
    handler: () => {
      throw new PylonError("READ_ONLY", "pretending");
    },
  }),
  bigint: query({ handler: () => ({ n: 10n }) as unknown as null }),
  cycle: query({
    handler: () => {
      const a: Record<string, unknown> = {};
      a.self = a;
      return a;
    },
  }),
  fn: query({ handler: () => (() => 1) as unknown as null }),
  writeInQuery: query({
    args: { op: v.string() },
    handler: async (ctx, { op }) => {
      const db = ctx.db as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
      await (db[op] as (...args: unknown[]) => Promise<unknown>)("Card", "r1", { title: "x" });
    },
  }),
  lookup: action({
    args: { title: v.string() },
    handler: async (ctx, { title }) => {
      const { id } = await ctx.runMutation<{ id: string }>("addCard", { title, position: 1 });
      const plain = await ctx.runQuery("plain");
      try {
        await ctx.runMutation("appError", { code: "NOPE" });
      } catch (error) {
        seen.caught = error;
      }
      return { id, plain, fetchIsGlobal: typeof ctx.fetch === "function" };
    },
  }),
  failingAction: action({ handler: async (ctx) => ctx.runMutation("appError", { code: "INNER" }) }),
});

/** Runs `name` as `kind` with `args` on `shard`. */
async function call(shard: FakeShard, kind: "query" | "mutation" | "action", name: string, args: unknown = {}) {
  const bridge = shard.bridge(kind, ANONYMOUS, (k, n, a) => functions.run(n, shard.bridge(k), a));
  return open(await functions.run(name, bridge, typeof args === "string" ? args : JSON.stringify(args)));
}

test("the global is installed with version 1 and lists every function", () => {
  const installed = (globalThis as unknown as { __pylon_functions: typeof functions }).__pylon_functions;
  assert.equal(installed, functions);
  assert.equal(installed.version, 1);
  const list = installed.list();
  assert.deepEqual(list.find((f) => f.name === "addCard"), { name: "addCard", kind: "mutation", trusted: false });
  assert.deepEqual(list.find((f) => f.name === "trustedWrite"), { name: "trustedWrite", kind: "mutation", trusted: true });
  assert.deepEqual(list.find((f) => f.name === "lookup"), { name: "lookup", kind: "action", trusted: false });
  assert.equal(list.length, 17);
});

test("a mutation's ctx.db calls reach the bridge with the contract's payloads", async () => {
  const shard = new FakeShard();
  const result = await call(shard, "mutation", "addCard", { title: "a", position: 2 });
  assert.deepEqual(result, {
    ok: { id: "r1", row: { title: "a", position: 2, done: false, id: "r1" }, found: 1, again: 1 },
  });
  assert.deepEqual(shard.log, [
    { op: "insert", payload: { entity: "Card", row: { title: "a", position: 2, done: false } } },
    { op: "get", payload: { entity: "Card", id: "r1" } },
    { op: "update", payload: { entity: "Card", id: "r1", set: { done: true } } },
    { op: "query", payload: { entity: "Card", where: { title: "a" }, order: ["position"], limit: 10 } },
    { op: "query", payload: { entity: "Card", where: { done: true } } },
  ]);
  assert.deepEqual(await call(shard, "mutation", "removeCard", { id: "r1" }), { ok: null }, "undefined is null");
  assert.deepEqual(shard.log.at(-1), { op: "delete", payload: { entity: "Card", id: "r1" } });
  assert.equal(shard.rows("Card").length, 0);
});

test("plain (not async) handlers and auth", async () => {
  const shard = new FakeShard();
  assert.deepEqual(await call(shard, "query", "plain"), { ok: 42 });
  const auth = { userId: "u1", tenantId: "t1", roles: ["a", "b"], isAdmin: true };
  const out = await functions.run("whoAmI", shard.bridge("query", auth), "{}");
  assert.deepEqual(open(out), { ok: auth });
});

test("a refusal from the bridge is a PylonError in the handler and the same code if it escapes", async () => {
  const shard = new FakeShard(["Card", "Secret"]);
  shard.denied.add("Secret");
  assert.deepEqual(await call(shard, "mutation", "readSecret"), {
    err: { code: "POLICY_DENIED", message: "policy denied get on Secret" },
  });
  seen.caught = undefined;
  assert.deepEqual(await call(shard, "mutation", "catchDenied"), { ok: "caught" });
  assert.ok(seen.caught instanceof PylonError);
  assert.equal((seen.caught as PylonError).code, "POLICY_DENIED");
});

test("ctx.error is FUNCTION_ERROR with the app's code in the message; a code that is not UPPER_SNAKE is APP_ERROR", async () => {
  const shard = new FakeShard();
  assert.deepEqual(await call(shard, "mutation", "appError", { code: "ON_PURPOSE" }), {
    err: { code: "FUNCTION_ERROR", message: "ON_PURPOSE: on purpose" },
  });
  for (const bad of ["on_purpose", "ON-PURPOSE", "_X", "X__Y", ""]) {
    assert.deepEqual(await call(shard, "mutation", "appError", { code: bad }), {
      err: { code: "FUNCTION_ERROR", message: "APP_ERROR: on purpose" },
    }, bad);
  }
});

test("anything else thrown is FUNCTION_FAILED with its message and never a stack", async () => {
  const shard = new FakeShard();
  assert.deepEqual(await call(shard, "mutation", "throwsError"), { err: { code: "FUNCTION_FAILED", message: "boom at line 3" } });
  assert.deepEqual(await call(shard, "query", "throwsString"), { err: { code: "FUNCTION_FAILED", message: "just a string" } });
  // An app cannot pass its own error off as one of the runtime's codes.
  assert.deepEqual(await call(shard, "mutation", "throwsOwnPylonError"), { err: { code: "FUNCTION_FAILED", message: "pretending" } });
});

test("a result that is not JSON is FUNCTION_FAILED", async () => {
  const shard = new FakeShard();
  for (const name of ["bigint", "cycle", "fn"]) {
    const result = await call(shard, "query", name);
    assert.equal(result.err?.code, "FUNCTION_FAILED", name);
    assert.match(result.err?.message ?? "", /^the result is not JSON: /, name);
  }
});

test("unknown functions and the wrong kind", async () => {
  const shard = new FakeShard();
  assert.deepEqual(await call(shard, "mutation", "nope"), { err: { code: "UNKNOWN_FUNCTION", message: 'no function is named "nope"' } });
  assert.deepEqual(await call(shard, "query", "addCard", { title: "a", position: 1 }), {
    err: { code: "WRONG_KIND", message: "addCard is a mutation, but was called as a query" },
  });
  assert.deepEqual(await call(shard, "mutation", "lookup", { title: "a" }), {
    err: { code: "WRONG_KIND", message: "lookup is an action, but was called as a mutation" },
  });
  assert.equal(shard.log.length, 0);
});

test("bad args: not JSON, not an object, a validator's path and reason", async () => {
  const shard = new FakeShard();
  const bad = async (args: unknown) => (await call(shard, "mutation", "addCard", args)).err;
  assert.deepEqual(await bad("{nope"), { code: "BAD_ARGS", message: "args: not JSON" });
  assert.deepEqual(await bad("[1]"), { code: "BAD_ARGS", message: "args: expected an object, got an array" });
  // null is "no arguments": an empty object, which misses `title` here.
  assert.deepEqual(await bad("null"), { code: "BAD_ARGS", message: "args.title: missing, expected a string" });
  assert.deepEqual(await bad("3"), { code: "BAD_ARGS", message: "args: expected an object, got 3" });
  assert.deepEqual(await bad({ title: "a", position: "2" }), { code: "BAD_ARGS", message: 'args.position: expected an integer, got "2"' });
  assert.deepEqual(await bad({ title: "a", position: 2, extra: true }), { code: "BAD_ARGS", message: "args.extra: unknown field" });
  assert.deepEqual(await bad({ position: 2 }), { code: "BAD_ARGS", message: "args.title: missing, expected a string" });
  // A function without args takes none.
  assert.deepEqual((await call(shard, "query", "plain", { x: 1 })).err, { code: "BAD_ARGS", message: "args.x: unknown field" });
  assert.equal(shard.log.length, 0);
});

test("a query's write methods throw READ_ONLY and never reach the bridge", async () => {
  const shard = new FakeShard();
  for (const op of ["insert", "update", "delete"]) {
    assert.deepEqual(await call(shard, "query", "writeInQuery", { op }), {
      err: { code: "READ_ONLY", message: `ctx.db.${op} is not allowed in a query: a query only reads; write in a mutation` },
    });
  }
  assert.equal(shard.log.length, 0);
});

test("an action runs mutations and queries by name through bridge.call; their errors keep their codes", async () => {
  const shard = new FakeShard();
  seen.caught = undefined;
  assert.deepEqual(await call(shard, "action", "lookup", { title: "t" }), { ok: { id: "r1", plain: 42, fetchIsGlobal: true } });
  assert.ok(seen.caught instanceof PylonError);
  assert.equal((seen.caught as PylonError).code, "FUNCTION_ERROR");
  assert.equal((seen.caught as PylonError).message, "NOPE: on purpose");
  assert.deepEqual(await call(shard, "action", "failingAction"), { err: { code: "FUNCTION_ERROR", message: "INNER: on purpose" } });
  // The mutation ran through its own bridge, as the Rust side would run it.
  assert.equal(shard.rows("Card").length, 1);
});

test("run never rejects, whatever the bridge does", async () => {
  const throwing = {
    kind: "mutation" as const,
    auth: JSON.stringify(ANONYMOUS),
    db: () => {
      throw new TypeError("the bridge broke");
    },
  };
  assert.deepEqual(open(await functions.run("addCard", throwing, '{"title":"a","position":1}')), {
    err: { code: "FUNCTION_FAILED", message: "the bridge broke" },
  });
  const garbage = { ...throwing, db: () => "not json" };
  assert.equal(open(await functions.run("addCard", garbage, '{"title":"a","position":1}')).err?.code, "FUNCTION_FAILED");
  const badAuth = { ...throwing, auth: "{" };
  assert.equal(open(await functions.run("plain", { ...badAuth, kind: "query" }, "{}")).err?.code, "FUNCTION_FAILED");
  const noCall = new FakeShard().bridge("action");
  assert.deepEqual(open(await functions.run("lookup", noCall, '{"title":"t"}')), {
    err: { code: "FUNCTION_FAILED", message: "this call's bridge cannot run functions" },
  });
});

test("install refuses a bad name or a default export that is not a function, naming the file", () => {
  const def = query({ handler: () => 1 });
  assert.throws(() => install([{ name: "1bad", file: "functions/1bad.ts", module: { default: def } }]), /functions\/1bad\.ts: "1bad" is not a function name/);
  assert.throws(
    () => install([{ name: "notOne", file: "functions/notOne.ts", module: { default: { handler: () => 1 } } }]),
    /functions\/notOne\.ts: the default export is not a query, mutation or action/,
  );
  assert.throws(() => install([{ name: "none", file: "functions/none.ts", module: {} }]), /functions\/none\.ts: /);
  // The installed functions are still the last good ones.
  assert.equal((globalThis as unknown as { __pylon_functions: typeof functions }).__pylon_functions, functions);
});
