import assert from "node:assert/strict";
import { test } from "node:test";
import { applyRows, ApplyError, checkSeq, type Positioned, type Row } from "../dist/index.js";

const row = (id: string, v = 0): Row => ({ id, v });
const at = (pos: number, id: string, v = 0): Positioned => ({ pos, row: row(id, v) });
const ids = (rows: readonly Row[]) => rows.map((r) => r.id);
const diff = (added: Positioned[], changed: Positioned[], removed: string[]) => ({ added, changed, removed });

test("the protocol's example diff", () => {
  const rows = [
    { id: "t1", title: "Write spec", done: false },
    { id: "t2", title: "Ship", done: false },
  ];
  const out = applyRows(rows, {
    added: [{ pos: 0, row: { id: "t9", title: "Buy milk", done: false } }],
    changed: [{ pos: 1, row: { id: "t2", title: "Ship it", done: false } }],
    removed: ["t1"],
  });
  assert.deepEqual(out, [
    { id: "t9", title: "Buy milk", done: false },
    { id: "t2", title: "Ship it", done: false },
  ]);
  assert.equal(rows.length, 2, "the input is not modified");
});

test("positions are in the new result; untouched rows keep their order", () => {
  const rows = ["a", "b", "c", "d", "e"].map((id) => row(id));
  // Move e to the front, change c in place, remove b, add x at the end and y in the middle.
  const out = applyRows(rows, diff([at(3, "y"), at(5, "x")], [at(0, "e", 1), at(2, "c", 7)], ["b"]));
  assert.deepEqual(ids(out), ["e", "a", "c", "y", "d", "x"]);
  assert.equal(out[2]!.v, 7);
  assert.equal(out[1], rows[0], "untouched rows keep their identity");
});

test("an empty diff leaves the rows as they were", () => {
  const rows = [row("a"), row("b")];
  assert.deepEqual(applyRows(rows, diff([], [], [])), rows);
  assert.deepEqual(applyRows([], diff([at(0, "a")], [], [])), [row("a")]);
  assert.deepEqual(applyRows(rows, diff([], [], ["a", "b"])), []);
});

test("diffs that cannot be right are refused", () => {
  const rows = [row("a"), row("b")];
  const kind = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      assert.ok(e instanceof ApplyError);
      return e.kind;
    }
    return "applied";
  };
  assert.equal(kind(() => applyRows(rows, diff([], [], ["z"]))), "unknown_row");
  assert.equal(kind(() => applyRows(rows, diff([], [at(0, "z")], []))), "unknown_row");
  assert.equal(kind(() => applyRows(rows, diff([at(0, "a")], [], []))), "duplicate_row");
  assert.equal(kind(() => applyRows(rows, diff([], [], ["a", "a"]))), "duplicate_row");
  assert.equal(kind(() => applyRows(rows, diff([at(0, "x"), at(1, "x")], [], []))), "duplicate_row");
  assert.equal(kind(() => applyRows(rows, diff([at(0, "x"), at(0, "y")], [], []))), "bad_position");
  assert.equal(kind(() => applyRows(rows, diff([at(3, "x")], [], []))), "bad_position");
  // Removing and re-adding the same id in one diff is fine (as "changed" would be).
  assert.deepEqual(ids(applyRows(rows, diff([at(1, "a")], [], ["a"]))), ["b", "a"]);
});

test("seq checks: the diff must start at the held seq and not go backwards", () => {
  assert.doesNotThrow(() => checkSeq(4, { from: 4, seq: 7 }));
  assert.doesNotThrow(() => checkSeq(4, { from: 4, seq: 4 }), "an empty resume diff may have seq = from");
  assert.throws(() => checkSeq(4, { from: 5, seq: 7 }), (e: ApplyError) => e.kind === "gap");
  assert.throws(() => checkSeq(undefined, { from: 0, seq: 1 }), (e: ApplyError) => e.kind === "gap");
  assert.throws(() => checkSeq(4, { from: 4, seq: 3 }), (e: ApplyError) => e.kind === "backwards");
});

test("randomized: applying the diff between two results yields the second", () => {
  let seed = 7;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (let round = 0; round < 300; round++) {
    const universe = Array.from({ length: 12 }, (_, i) => `r${i}`);
    const pick = () => universe.filter(() => rand(2) === 0).sort(() => rand(3) - 1);
    const before = pick().map((id) => row(id, rand(3)));
    const after = pick().map((id) => row(id, rand(3)));
    const had = new Map(before.map((r, i) => [r.id, { r, i }]));
    const has = new Set(after.map((r) => r.id));
    const removed = before.filter((r) => !has.has(r.id)).map((r) => r.id);
    const added: Positioned[] = [];
    const changed: Positioned[] = [];
    // Rows that stay unnamed must keep their relative order: name as "changed"
    // every staying row whose value changed or that falls out of that order.
    let lastIdx = -1;
    after.forEach((r, pos) => {
      const old = had.get(r.id);
      if (!old) added.push({ pos, row: r });
      else if (old.r.v !== r.v || old.i < lastIdx) changed.push({ pos, row: r });
      else lastIdx = old.i;
    });
    assert.deepEqual(applyRows(before, { added, changed, removed }), after, `round ${round}`);
  }
});
