import assert from "node:assert/strict";
import { test } from "node:test";
import { applyOptimistic, orderKeys, type Query, type Row } from "../dist/index.js";

const q: Query = { entity: "Todo", where: { done: false }, order: ["-priority", "title"], limit: 3 };
const keys = orderKeys(q.order);
const held: Row[] = [
  { id: "t1", title: "a", priority: 3, done: false },
  { id: "t2", title: "b", priority: 2, done: false },
  { id: "t3", title: "c", priority: 1, done: false },
];
const ids = (rows: readonly Row[]) => rows.map((r) => r.id);

test("insert lands at its sorted position and the limit still holds", () => {
  const out = applyOptimistic(q, keys, held, [
    { type: "insert", entity: "Todo", row: { id: "t9", title: "z", priority: 2, done: false } },
  ]);
  assert.deepEqual(ids(out), ["t1", "t2", "t9"]);
  assert.equal(held.length, 3, "the held rows are not modified");
});

test("an insert that does not match, or of another entity, is not shown", () => {
  const out = applyOptimistic(q, keys, held, [
    { type: "insert", entity: "Todo", row: { id: "t9", title: "z", priority: 9, done: true } },
    { type: "insert", entity: "Tag", row: { id: "g1", title: "z", priority: 9, done: false } },
  ]);
  assert.deepEqual(out, held);
});

test("an insert whose id is already held is not shown twice", () => {
  const out = applyOptimistic(q, keys, held, [
    { type: "insert", entity: "Todo", row: { id: "t2", title: "b", priority: 2, done: false } },
  ]);
  assert.deepEqual(out, held);
});

test("update moves a row, or removes it when it stops matching; delete removes", () => {
  assert.deepEqual(ids(applyOptimistic(q, keys, held, [{ type: "update", entity: "Todo", id: "t3", set: { priority: 5 } }])), ["t3", "t1", "t2"]);
  assert.deepEqual(ids(applyOptimistic(q, keys, held, [{ type: "update", entity: "Todo", id: "t1", set: { done: true } }])), ["t2", "t3"]);
  assert.deepEqual(ids(applyOptimistic(q, keys, held, [{ type: "delete", entity: "Todo", id: "t2" }])), ["t1", "t3"]);
});

test("update of a row known elsewhere brings it in; unknown rows are skipped", () => {
  const known: Row = { id: "t7", title: "q", priority: 9, done: true };
  const lookup = (entity: string, id: string) => (entity === "Todo" && id === "t7" ? known : undefined);
  const ops = [
    { type: "update" as const, entity: "Todo", id: "t7", set: { done: false } },
    { type: "update" as const, entity: "Todo", id: "t8", set: { done: false } },
  ];
  assert.deepEqual(ids(applyOptimistic(q, keys, held, ops, lookup)), ["t7", "t1", "t2"]);
});

test("ops apply in order: insert then update, upsert replaces entirely, delete then update is a no-op", () => {
  const out = applyOptimistic({ entity: "Todo", order: ["title"] }, orderKeys(["title"]), held, [
    { type: "insert", entity: "Todo", row: { id: "t9", title: "m", priority: 0, done: true } },
    { type: "update", entity: "Todo", id: "t9", set: { title: "0" } },
    { type: "upsert", entity: "Todo", row: { id: "t1", title: "zz" } },
    { type: "delete", entity: "Todo", id: "t2" },
    { type: "update", entity: "Todo", id: "t2", set: { title: "b2" } },
  ]);
  assert.deepEqual(out, [
    { id: "t9", title: "0", priority: 0, done: true },
    { id: "t3", title: "c", priority: 1, done: false },
    { id: "t1", title: "zz" },
  ]);
});
