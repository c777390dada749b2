// A function written as Pylon's docs write them (only the import line is
// ours) typechecks and runs.
import assert from "node:assert/strict";
import { test } from "node:test";
import { mutation, query, action, v } from "../src/index.ts";
import { install } from "../src/runtime.ts";
import { FakeShard, open } from "./support/fake-bridge.ts";

const moveCard = mutation({
  args: { cardId: v.id("Card"), column: v.string(), position: v.int() },
  trusted: false,
  handler: async (ctx, args) => {
    const card = await ctx.db.get("Card", args.cardId);
    if (!card) ctx.error("NOT_FOUND", "no such card");
    const rows = await ctx.db.query({ entity: "Card", where: { column: args.column }, order: [["position", "asc"]], limit: 100 });
    const same = await ctx.db.query("Card", { where: { column: args.column }, order: [["position", "asc"]], limit: 100 });
    await ctx.db.update("Card", args.cardId, { column: args.column, position: args.position });
    const id = await ctx.db.insert("Audit", { what: "move" });
    await ctx.db.delete("Audit", id);
    return { moved: true, rows: rows.length, same: same.length };
  },
});

const count = query({ args: v.object({ column: v.optional(v.string()) }), handler: async (ctx, args) => (await ctx.db.query("Card", { where: args.column ? { column: args.column } : {} })).length });

const relay = action({
  args: { cardId: v.id("Card") },
  handler: async (ctx, args) => ctx.runMutation("moveCard", { cardId: args.cardId, column: "done", position: 0 }),
});

test("Pylon's shape: args typed from validators, ctx.db in both query forms, actions by name", async () => {
  const functions = install([
    { name: "moveCard", file: "functions/moveCard.ts", module: { default: moveCard } },
    { name: "count", file: "functions/count.ts", module: { default: count } },
    { name: "relay", file: "functions/relay.ts", module: { default: relay } },
  ]);
  const shard = new FakeShard(["Card", "Audit"]);
  shard.db("insert", JSON.stringify({ entity: "Card", row: { column: "todo", position: 0 } }));
  const bridge = shard.bridge("action", undefined, (kind, name, args) => functions.run(name, shard.bridge(kind), args));
  assert.deepEqual(open(await functions.run("relay", bridge, '{"cardId":"r1"}')), { ok: { moved: true, rows: 0, same: 0 } });
  assert.deepEqual(shard.rows("Card"), [{ column: "done", position: 0, id: "r1" }]);
  assert.deepEqual(shard.rows("Audit"), []);
  const queries = shard.log.filter((e) => e.op === "query").map((e) => e.payload);
  assert.deepEqual(queries, [
    { entity: "Card", where: { column: "done" }, order: [["position", "asc"]], limit: 100 },
    { entity: "Card", where: { column: "done" }, order: [["position", "asc"]], limit: 100 },
  ]);
  assert.deepEqual(open(await functions.run("count", shard.bridge("query"), '{"column":"done"}')), { ok: 1 });
  assert.deepEqual(open(await functions.run("moveCard", shard.bridge("mutation"), '{"cardId":"zz","column":"a","position":0}')), {
    err: { code: "FUNCTION_ERROR", message: "NOT_FOUND: no such card" },
  });
});
