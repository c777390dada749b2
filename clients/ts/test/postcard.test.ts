// The postcard codec against the Rust encoder: every golden vector of
// fixtures/postcard-vectors.json (written and kept current by
// tests/protocol_ts_vectors.rs) is decoded and encoded both ways, and every
// frame the Rust decoder refuses is refused here too. Then the format's
// edges, and values written as the JSON text of them would be read.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  decodeClientPostcard,
  DecodeError,
  decodeServer,
  decodeServerPostcard,
  decodeSimServer,
  decodeSimServerPostcard,
  encodeClientPostcard,
  encodeServerPostcard,
  encodeSimInputPostcard,
  encodeSimServerPostcard,
  PostcardReader,
  PostcardWriter,
  readValue,
  writeValue,
  type ClientMsg,
  type SimPostcardCodec,
} from "../dist/index.js";
import { compareUtf8 } from "../dist/postcard-value.js";

interface Vector {
  name: string;
  json: any;
  postcard: string;
  exact?: false;
}
const fixture: {
  client: Vector[];
  server: Vector[];
  invalid_server: { name: string; postcard: string; expect: "unknown_type" | "bad" }[];
  sim_client: Vector[];
  sim_server: Vector[];
} = JSON.parse(readFileSync(new URL("./fixtures/postcard-vectors.json", import.meta.url), "utf8"));

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const bytes = (h: string) => new Uint8Array(Buffer.from(h, "hex"));

/** The counter kind: `Add { add: i64 }` in, `Total { total: i64 }` out. */
const counter: SimPostcardCodec<{ add: number }, { total: number }> = {
  writeInput: (w, input) => w.i64(input.add),
  readSnapshot: (r) => ({ total: r.i64() }),
};

test("the fixture holds every message of both directions", () => {
  const types = (vs: Vector[]) => new Set(vs.map((v) => v.json.type));
  assert.deepEqual(types(fixture.client), new Set(["hello", "sub", "unsub", "mut", "presence", "bcast", "ping", "call", "watch"]));
  assert.deepEqual(
    types(fixture.server),
    new Set(["welcome", "snap", "diff", "reset", "ack", "err", "presence_state", "presence_diff", "bcast", "pong", "result", "value"]),
  );
  assert.deepEqual(types(fixture.sim_server), new Set(["sim_welcome", "sim_snapshot", "sim_ack", "sim_err"]));
  assert.ok(fixture.invalid_server.length >= 10);
});

test("client vectors: the JSON message encodes to the Rust bytes, and the bytes decode to the JSON message", () => {
  for (const v of fixture.client) {
    if (v.exact !== false) assert.equal(hex(encodeClientPostcard(v.json as ClientMsg)), v.postcard, `encode ${v.name}`);
    assert.deepEqual(decodeClientPostcard(bytes(v.postcard)), v.json, `decode ${v.name}`);
  }
});

test("server vectors: the bytes decode to what the JSON decoder gives, which encodes back to the Rust bytes", () => {
  for (const v of fixture.server) {
    const fromJson = decodeServer(JSON.stringify(v.json));
    assert.deepEqual(decodeServerPostcard(bytes(v.postcard)), fromJson, `decode ${v.name}`);
    if (v.exact !== false) assert.equal(hex(encodeServerPostcard(fromJson)), v.postcard, `encode ${v.name}`);
  }
});

test("frames the Rust decoder refuses are refused; an unknown message type is marked to be ignored", () => {
  for (const v of fixture.invalid_server) {
    assert.throws(
      () => decodeServerPostcard(bytes(v.postcard)),
      (e: unknown) => e instanceof DecodeError && e.unknownType === (v.expect === "unknown_type"),
      v.name,
    );
  }
});

test("simulation vectors (the counter kind): inputs encode to the Rust bytes; server messages decode as their JSON does, and back", () => {
  for (const v of fixture.sim_client) {
    assert.equal(hex(encodeSimInputPostcard(v.json.seq, v.json.input, counter)), v.postcard, v.name);
  }
  for (const v of fixture.sim_server) {
    const fromJson = decodeSimServer<{ total: number }>(JSON.stringify(v.json));
    assert.deepEqual(decodeSimServerPostcard(bytes(v.postcard), counter), fromJson, `decode ${v.name}`);
    assert.equal(hex(encodeSimServerPostcard(fromJson, (w, s) => w.i64(s.total))), v.postcard, `encode ${v.name}`);
  }
  assert.throws(() => decodeSimServerPostcard(bytes("04"), counter), (e: DecodeError) => e.unknownType);
  assert.throws(() => decodeSimServerPostcard(bytes("02030400ff"), counter), (e: DecodeError) => !e.unknownType, "trailing bytes");
});

test("varints, zigzag, floats and strings at their edges", () => {
  const w = new PostcardWriter();
  const u64s = [0, 127, 128, 16383, 16384, 2 ** 32 - 1, 2 ** 49 - 1, 2 ** 49, 2 ** 53 - 1, 2 ** 53, 2 ** 63, 2 ** 64 - 2 ** 11];
  const i64s = [0, -1, 1, -64, 63, -65, 64, 2 ** 31, -(2 ** 31), 2 ** 52, -(2 ** 53) + 1, 2 ** 53 - 1, 2 ** 60, -(2 ** 63)];
  const strings = ["", "a", "é", "日本😀", "\u{feff}x", "x".repeat(32), "y".repeat(33), "é".repeat(40)];
  for (const n of u64s) w.u64(n);
  for (const n of i64s) w.i64(n);
  for (const s of strings) w.string(s);
  w.f64(-0.1);
  w.u32(2 ** 32 - 1);
  const out = w.finish();
  const r = new PostcardReader(out);
  assert.deepEqual(u64s.map(() => r.u64()), u64s);
  assert.deepEqual(i64s.map(() => r.i64()), i64s);
  assert.deepEqual(strings.map(() => r.string()), strings);
  assert.equal(r.f64(), -0.1);
  assert.equal(r.u32(), 2 ** 32 - 1);
  r.end();
  assert.equal(hex(out.subarray(0, 3)), "007f80", "0, 127, then 128's first byte");

  // u64::MAX as the Rust encoder writes it reads as JSON.parse reads 18446744073709551615.
  assert.equal(new PostcardReader(bytes("ffffffffffffffffff01")).u64(), JSON.parse("18446744073709551615"));
  for (const [h, what] of [
    ["ffffffffffffffffff02", "u64 overflow"],
    ["80", "cut short"],
  ] as const) {
    assert.throws(() => new PostcardReader(bytes(h)).u64(), DecodeError, what);
  }
  assert.throws(() => new PostcardReader(bytes("ffffffff10")).u32(), DecodeError, "u32 overflow");
  assert.throws(() => new PostcardReader(bytes("02")).bool(), DecodeError);
  assert.throws(() => new PostcardReader(bytes("0561")).string(), DecodeError, "longer than the input");
  assert.throws(() => new PostcardWriter().u32(2 ** 32), RangeError);
  assert.throws(() => new PostcardWriter().u64(-1), RangeError);
  assert.throws(() => new PostcardWriter().i64(1.5), RangeError);
});

/** Values `JSON.stringify` treats in its own way. */
const awkward: unknown[] = [
  { a: undefined, b: () => 1, c: [undefined, () => 1, Symbol("s")], d: new Date(0), e: NaN, f: -Infinity },
  { neg0: -0, big: 2 ** 63, minI64: -(2 ** 63), float: 1e21, tiny: 5e-324, i: 2 ** 53 + 2, j: -(2 ** 60) },
  { "10": 1, "2": 2, b: 3, a: 4, "\u{ffff}": 5, "\u{10000}": 6, "": 7 },
  [[[{ x: [null, true, false, "é"] }]]],
  "plain",
  12.5,
  null,
  undefined,
];

test("a value is written as its JSON text would be read: the same bytes as after a JSON round trip", () => {
  for (const v of awkward) {
    const direct = new PostcardWriter();
    writeValue(direct, v);
    const viaJson = new PostcardWriter();
    const text = JSON.stringify(v);
    writeValue(viaJson, text === undefined ? null : JSON.parse(text));
    assert.equal(hex(direct.finish()), hex(viaJson.finish()), JSON.stringify(v) ?? "undefined");
  }
  assert.throws(() => writeValue(new PostcardWriter(), { n: 1n }), TypeError, "a bigint, as in JSON.stringify");
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.throws(() => writeValue(new PostcardWriter(), cyclic), TypeError, "a cycle, as in JSON.stringify");
});

test("values read back; __proto__ is a member, as JSON.parse has it", () => {
  const w = new PostcardWriter();
  const v = JSON.parse('{"__proto__":{"polluted":true},"list":[1,2.5,"x",null,{"a":[]}]}');
  writeValue(w, v);
  const back = readValue(new PostcardReader(w.finish())) as Record<string, unknown>;
  assert.deepEqual(back, v);
  assert.equal(Object.getPrototypeOf(back), Object.prototype);
  assert.deepEqual(Object.keys(back).sort(), ["__proto__", "list"]);
  assert.equal(({} as { polluted?: boolean }).polluted, undefined);
});

test("map keys go in Rust's order: by UTF-8 bytes", () => {
  const parts = ["a", "B", "é", "\u{ffff}", "\u{10000}", "😀", "\u{e000}", "\u{d7ff}", "", "0"];
  const keys: string[] = [];
  for (const x of parts) for (const y of parts) keys.push(x + y);
  const byBytes = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  assert.deepEqual([...keys].sort(compareUtf8), byBytes);
});

test("client messages' optional fields: absent, null and false are left out on the way back", () => {
  const sub: ClientMsg = { type: "sub", id: "s", entity: "E", where: null, count: false };
  assert.deepEqual(decodeClientPostcard(encodeClientPostcard(sub)), { type: "sub", id: "s", entity: "E" });
  const call: ClientMsg = { type: "call", op: "c", name: "f", args: null };
  assert.deepEqual(decodeClientPostcard(encodeClientPostcard(call)), { type: "call", op: "c", name: "f" });
  assert.equal(hex(encodeClientPostcard({ type: "watch", id: "w", name: "f" })), "0801770166" + "00", "absent args are Null");
  assert.throws(() => encodeClientPostcard({ type: "sub", id: "s", entity: "E", limit: -1 }), RangeError);
  assert.throws(() => encodeClientPostcard({ type: "nope" } as unknown as ClientMsg), TypeError);
});
