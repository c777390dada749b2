import assert from "node:assert/strict";
import { test } from "node:test";
import { v, type Infer, type Validator } from "../src/index.ts";
import { formatFailure } from "../src/validators.ts";

/** The message a validator gives for `value` (as BAD_ARGS shows it), or "ok". */
function verdict(validator: Validator<unknown, boolean>, value: unknown): string {
  const failure = validator.check(value);
  return failure ? formatFailure("args", failure) : "ok";
}

test("scalars accept their type and refuse others with what they got", () => {
  assert.equal(verdict(v.string(), "x"), "ok");
  assert.equal(verdict(v.string(), 3), "args: expected a string, got 3");
  assert.equal(verdict(v.int(), 3), "ok");
  assert.equal(verdict(v.int(), -(2 ** 53 - 1)), "ok");
  assert.equal(verdict(v.int(), "3"), 'args: expected an integer, got "3"');
  assert.equal(verdict(v.int(), 1.5), "args: expected an integer, got 1.5");
  assert.equal(verdict(v.int(), 2 ** 53), "args: expected an integer, got 9007199254740992");
  assert.equal(verdict(v.float(), 1.5), "ok");
  assert.equal(verdict(v.float(), 2), "ok");
  assert.equal(verdict(v.float(), Number.POSITIVE_INFINITY), "args: expected a number, got Infinity");
  assert.equal(verdict(v.float(), null), "args: expected a number, got null");
  assert.equal(verdict(v.boolean(), false), "ok");
  assert.equal(verdict(v.boolean(), 0), "args: expected a boolean, got 0");
  assert.equal(verdict(v.null(), null), "ok");
  assert.equal(verdict(v.null(), undefined), "args: expected null, got nothing");
  assert.equal(verdict(v.any(), { deep: [1] }), "ok");
});

test("ids are non-empty strings and name their entity", () => {
  assert.equal(verdict(v.id("Card"), "c1"), "ok");
  assert.equal(verdict(v.id("Card"), ""), 'args: expected an id of Card (a non-empty string), got ""');
  assert.equal(verdict(v.id("Card"), 7), "args: expected an id of Card (a non-empty string), got 7");
});

test("datetimes are RFC 3339 with every field in range", () => {
  for (const ok of [
    "2026-12-01T10:00:00Z",
    "2026-12-01t10:00:00z",
    "2026-12-01T10:00:00.123456Z",
    "2026-12-01T10:00:00+02:00",
    "2026-12-01T23:59:60-11:30",
    "2024-02-29T00:00:00Z",
    "2000-02-29T00:00:00Z",
  ]) {
    assert.equal(verdict(v.datetime(), ok), "ok", ok);
  }
  for (const bad of [
    "2026-12-01",
    "2026-12-01 10:00:00Z",
    "2026-12-01T10:00:00",
    "2026-13-01T10:00:00Z",
    "2026-00-10T10:00:00Z",
    "2026-04-31T10:00:00Z",
    "2023-02-29T00:00:00Z",
    "1900-02-29T00:00:00Z",
    "2026-12-01T24:00:00Z",
    "2026-12-01T10:60:00Z",
    "2026-12-01T10:00:00+24:00",
    "2026-12-01T10:00:00.Z",
    " 2026-12-01T10:00:00Z",
  ]) {
    assert.match(verdict(v.datetime(), bad), /^args: expected an RFC 3339 date-time string, got "/, bad);
  }
  assert.equal(verdict(v.datetime(), 1764583200000), "args: expected an RFC 3339 date-time string, got 1764583200000");
});

test("literals and unions", () => {
  assert.equal(verdict(v.literal("asc"), "asc"), "ok");
  assert.equal(verdict(v.literal("asc"), "desc"), 'args: expected "asc", got "desc"');
  assert.equal(verdict(v.literal(3), 3), "ok");
  assert.equal(verdict(v.literal(true), "true"), 'args: expected true, got "true"');
  const either = v.union(v.string(), v.int());
  assert.equal(verdict(either, "a"), "ok");
  assert.equal(verdict(either, 4), "ok");
  assert.equal(verdict(either, 4.5), "args: expected a string or an integer, got 4.5");
});

test("paths through nested arrays and objects", () => {
  const order = v.object({
    customer: v.object({ name: v.string(), "e-mail": v.optional(v.string()) }),
    items: v.array(v.object({ sku: v.id("Item"), qty: v.int() })),
  });
  const items = [{ sku: "a", qty: 1 }, { sku: "b", qty: 2 }, { sku: "c", qty: "3" }];
  assert.equal(verdict(order, { customer: { name: "n" }, items }), 'args.items[2].qty: expected an integer, got "3"');
  assert.equal(verdict(order, { customer: { name: "n", "e-mail": 5 }, items: [] }), 'args.customer["e-mail"]: expected a string, got 5');
  assert.equal(verdict(order, { customer: { name: "n" }, items: "none" }), 'args.items: expected an array, got "none"');
  assert.equal(verdict(order, { customer: [], items: [] }), "args.customer: expected an object, got an array");
  assert.equal(verdict(order, { customer: { name: "n" }, items: [{ sku: "a" }] }), "args.items[0].qty: missing, expected an integer");
  assert.equal(verdict(v.array(v.array(v.int())), [[1], [2, null]]), "args[1][1]: expected an integer, got null");
  assert.equal(verdict(order, { items: [] }), "args.customer: missing, expected an object");
});

test("optional fields may be left out (or undefined) but not null; unknown fields are refused", () => {
  const shape = v.object({ title: v.string(), note: v.optional(v.string()) });
  assert.equal(verdict(shape, { title: "t" }), "ok");
  assert.equal(verdict(shape, { title: "t", note: undefined }), "ok");
  assert.equal(verdict(shape, { title: "t", note: null }), "args.note: expected a string, got null");
  assert.equal(verdict(shape, { title: "t", extra: 1 }), "args.extra: unknown field");
  assert.equal(verdict(v.array(shape), [{ title: "t" }, { title: "u", nested: {} }]), "args[1].nested: unknown field");
  // JSON.parse makes "__proto__" an own key like any other.
  assert.equal(verdict(shape, JSON.parse('{"title":"t","__proto__":{}}')), "args.__proto__: unknown field");
});

test("long strings are cut in messages", () => {
  const message = verdict(v.int(), "x".repeat(500));
  assert.ok(message.length < 80, message);
  assert.ok(message.endsWith('…"'), message);
});

// Types: checked by tsc (tsconfig.test.json) when the tests are built.
test("Infer gives the handler's types", () => {
  const spec = v.object({
    id: v.id("Card"),
    n: v.int(),
    when: v.optional(v.datetime()),
    tags: v.array(v.string()),
    mode: v.union(v.literal("a"), v.literal("b")),
  });
  type Args = Infer<typeof spec>;
  const value: Args = { id: "c", n: 1, tags: [], mode: "a" };
  const withWhen: Args = { ...value, when: "2026-12-01T00:00:00Z" };
  // @ts-expect-error n must be a number
  const wrongType: Args = { ...value, n: "1" };
  // @ts-expect-error mode is "a" or "b"
  const wrongLiteral: Args = { ...value, mode: "c" };
  // @ts-expect-error tags is required
  const missing: Args = { id: "c", n: 1, mode: "a" };
  assert.equal(verdict(spec, value), "ok");
  assert.equal(verdict(spec, withWhen), "ok");
  assert.notEqual(verdict(spec, wrongType), "ok");
  assert.notEqual(verdict(spec, wrongLiteral), "ok");
  assert.notEqual(verdict(spec, missing), "ok");
});
