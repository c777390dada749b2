import assert from "node:assert/strict";
import { test } from "node:test";
import { compareRows, compareText, evaluate, like, matches, orderKeys, type Filter, type Row } from "../dist/index.js";

const rows: Row[] = [
  { id: "a", title: "Apple", n: 3, done: false, tag: "x" },
  { id: "b", title: "banana", n: null, done: true, tag: "y" },
  { id: "c", title: "Cherry", n: 1.5, done: false },
  { id: "d", title: "date", n: 10, done: null, tag: "x" },
  { id: "e", title: "Éclair", n: -2, done: true, tag: "z" },
];
const ids = (f: Filter) => rows.filter((r) => matches(f, r)).map((r) => r.id);

test("equality, several keys ANDed; bools compare as 0/1", () => {
  assert.deepEqual(ids({ done: false }), ["a", "c"]);
  assert.deepEqual(ids({ done: false, tag: "x" }), ["a"]);
  assert.deepEqual(ids({ n: { $eq: 3 } }), ["a"]);
  assert.deepEqual(ids({ n: 1.5 }), ["c"]);
  assert.deepEqual(ids({ id: "d" }), ["d"]);
});

test("comparisons with a null or absent field do not match", () => {
  assert.deepEqual(ids({ n: { $gt: 0 } }), ["a", "c", "d"]);
  assert.deepEqual(ids({ n: { $gte: 1.5, $lt: 10 } }), ["a", "c"]);
  assert.deepEqual(ids({ n: { $lte: 1.5 } }), ["c", "e"]);
  assert.deepEqual(ids({ tag: { $in: ["x", "z"] } }), ["a", "d", "e"]);
  assert.deepEqual(ids({ title: { $like: "%a%" } }), ["a", "b", "d", "e"]);
});

test("$ne and $nin match null fields (SQL IS NOT); $not is two-valued", () => {
  assert.deepEqual(ids({ done: { $ne: true } }), ["a", "c", "d"], "d has done = null");
  assert.deepEqual(ids({ tag: { $nin: ["x"] } }), ["b", "c", "e"], "c has no tag");
  assert.deepEqual(ids({ $not: { n: { $gt: 2 } } }), ["b", "c", "e"], "b (null n) does not match n > 2");
  assert.deepEqual(ids({ tag: { $in: [] } }), []);
  assert.deepEqual(ids({ tag: { $nin: [] } }), ["a", "b", "c", "d", "e"]);
});

test("null checks: null / $eq null, $ne null, $exists", () => {
  assert.deepEqual(ids({ n: null }), ["b"]);
  assert.deepEqual(ids({ tag: { $eq: null } }), ["c"], "absent counts as null");
  assert.deepEqual(ids({ done: { $ne: null } }), ["a", "b", "c", "e"]);
  assert.deepEqual(ids({ tag: { $exists: false } }), ["c"]);
  assert.deepEqual(ids({ tag: { $exists: true } }), ["a", "b", "d", "e"]);
});

test("$and / $or / $not; empty $and matches all, empty $or none", () => {
  assert.deepEqual(ids({ $or: [{ tag: "y" }, { n: { $lt: 0 } }] }), ["b", "e"]);
  assert.deepEqual(ids({ $and: [{ tag: "x" }, { $not: { done: false } }] }), ["d"]);
  assert.deepEqual(ids({ $and: [] }), ["a", "b", "c", "d", "e"]);
  assert.deepEqual(ids({ $or: [] }), []);
  assert.deepEqual(ids({}), ["a", "b", "c", "d", "e"]);
});

test("$like: % and _, ASCII-only case folding, NUL cuts, strings only", () => {
  assert.ok(like("a%_c", "ABxC"));
  assert.ok(like("ABC", "abc"));
  assert.ok(!like("é", "É"), "case folding is ASCII only");
  assert.ok(like("_", "é"), "_ is one character, not one byte");
  assert.ok(like("_", "😀"), "_ is one code point");
  assert.ok(!like("_", ""));
  assert.ok(like("%", ""));
  assert.ok(!like("", "a"));
  assert.ok(like("%a_", "xxaay"));
  assert.ok(like("a%", "a\0zzz"));
  assert.ok(like("a", "a\0b"));
  assert.deepEqual(ids({ title: { $like: "é%" } }), [], "É is not é");
  assert.deepEqual(ids({ title: { $like: "É%" } }), ["e"]);
  assert.deepEqual(ids({ title: { $like: "c%" } }), ["c"]);
  assert.deepEqual(ids({ n: { $like: "3" } }), [], "LIKE on a number field does not match here");
});

test("text compares by bytes (BINARY): B < a, and code point order beyond the BMP", () => {
  assert.ok(compareText("B", "a") < 0);
  assert.ok(compareText("a", "ab") < 0);
  assert.ok(compareText("\uffff", "😀") < 0, "U+FFFF sorts before U+1F600 in UTF-8, unlike UTF-16");
  assert.ok(compareText("é", "z") > 0);
  assert.equal(compareText("x", "x"), 0);
});

test("order: multi-key, NULLs first ascending and last descending, id tie-break", () => {
  const people: Row[] = [
    { id: "p3", team: "b", score: 2 },
    { id: "p1", team: "a", score: null },
    { id: "p2", team: "a", score: 5 },
    { id: "p5", team: null, score: 5 },
    { id: "p4", team: "a", score: 5 },
    { id: "p6", team: "b" },
  ];
  const sorted = (order: string[]) => evaluate({ entity: "P", order }, people).map((r) => r.id);
  assert.deepEqual(sorted(["score"]), ["p1", "p6", "p3", "p2", "p4", "p5"], "nulls first ascending, then id");
  assert.deepEqual(sorted(["-score"]), ["p2", "p4", "p5", "p3", "p1", "p6"], "nulls last descending");
  assert.deepEqual(sorted(["team", "-score"]), ["p5", "p2", "p4", "p1", "p3", "p6"]);
  assert.deepEqual(sorted([]), ["p1", "p2", "p3", "p4", "p5", "p6"], "default order is id");
  assert.deepEqual(sorted(["-id"]), ["p6", "p5", "p4", "p3", "p2", "p1"], "id may be the last key");
  assert.deepEqual(orderKeys(["-a", "b"]), [
    { field: "a", desc: true },
    { field: "b", desc: false },
    { field: "id", desc: false },
  ]);
});

test("numbers compare numerically across int and real; classes order null < number < text", () => {
  const k = orderKeys(["v"]);
  assert.ok(compareRows(k, { id: "a", v: 2 }, { id: "b", v: 10 }) < 0);
  assert.ok(compareRows(k, { id: "a", v: 2 }, { id: "b", v: 2.5 }) < 0);
  assert.ok(compareRows(k, { id: "a", v: null }, { id: "b", v: -1e9 }) < 0);
  assert.ok(compareRows(k, { id: "a", v: 99 }, { id: "b", v: "1" }) < 0);
});

test("limit applies after filtering and ordering", () => {
  const out = evaluate({ entity: "T", where: { n: { $ne: null } }, order: ["-n"], limit: 2 }, rows);
  assert.deepEqual(out.map((r) => r.id), ["d", "a"]);
});
