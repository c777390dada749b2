/**
 * Values and rows in postcard: the tagged form of the Rust `Value`
 * (src/value.rs), so that a JavaScript value goes over `pylon.v1.postcard`
 * as the server would have read it from `pylon.v1.json`.
 *
 * ```ts
 * const w = new PostcardWriter();
 * writeValue(w, { done: false });
 * w.finish(); // 06 01 04 64 6f 6e 65 01 00: Map, 1 entry, "done", Bool(false)
 * ```
 *
 * A value is its tag (a varint) and the payload: `0` Null, `1` Bool,
 * `2` Int (i64, zigzag), `3` Float (f64), `4` Text, `5` List (count, then
 * values), `6` Map (count, then key and value pairs, keys in Rust's order:
 * by their UTF-8 bytes). A row is a map without the tag.
 *
 * Writing follows `JSON.stringify`, whose text the server would read
 * otherwise: integers from -2^63 below 2^63 are Int and other finite
 * numbers Float; NaN and ±Infinity are Null; `toJSON` is called; object
 * members that are undefined, functions or symbols are skipped, and in
 * lists they are Null; a bigint throws a `TypeError`. Reading refuses what
 * the server's decoder refuses: an unknown tag, a non-finite float, and
 * containers nested deeper than {@link MAX_VALUE_DEPTH}.
 */
import { PostcardReader, PostcardWriter } from "./postcard.js";
import { DecodeError, type Json } from "./protocol.js";

/** Containers (lists and maps) nest at most this deep inside any one value field; a row counts as one level (docs/protocol.md, "Limits"). */
export const MAX_VALUE_DEPTH = 64;

/** Writing stops here: a deeper value is cyclic or far beyond what the server takes. */
const MAX_WRITE_DEPTH = 1000;
const TWO_63 = 2 ** 63;

/** The variant indexes of `Value` (its declaration order in src/value.rs). */
const Tag = { Null: 0, Bool: 1, Int: 2, Float: 3, Text: 4, List: 5, Map: 6 } as const;

/** Writes `v` as a tagged `Value`. */
export function writeValue(w: PostcardWriter, v: unknown, depth = 0): void {
  if (depth > MAX_WRITE_DEPTH) throw new TypeError("a value nests too deep (or is cyclic)");
  v = toJson(v);
  switch (typeof v) {
    case "boolean":
      w.byte(Tag.Bool);
      w.bool(v);
      return;
    case "number":
      if (Number.isInteger(v) && v >= -TWO_63 && v < TWO_63) {
        w.byte(Tag.Int);
        w.i64(v);
      } else if (Number.isFinite(v)) {
        w.byte(Tag.Float);
        w.f64(v);
      } else {
        w.byte(Tag.Null);
      }
      return;
    case "string":
      w.byte(Tag.Text);
      w.string(v);
      return;
    case "bigint":
      throw new TypeError("a bigint has no place in a value (as in JSON.stringify)");
    case "object":
      if (v === null) break;
      if (Array.isArray(v)) {
        w.byte(Tag.List);
        w.length(v.length);
        for (const item of v) writeValue(w, skipped(item) ? null : item, depth + 1);
        return;
      }
      w.byte(Tag.Map);
      writeMap(w, v as Record<string, unknown>, depth + 1);
      return;
  }
  w.byte(Tag.Null);
}

/** Writes an object as a row (a map of field to value, without a tag). */
export function writeRow(w: PostcardWriter, row: unknown): void {
  const v = toJson(row);
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new TypeError("a row must be an object");
  writeMap(w, v as Record<string, unknown>, 1);
}

function writeMap(w: PostcardWriter, obj: Record<string, unknown>, depth: number): void {
  const keys = Object.keys(obj).filter((k) => !skipped(obj[k]));
  keys.sort(compareUtf8);
  w.length(keys.length);
  for (const k of keys) {
    w.string(k);
    writeValue(w, obj[k], depth);
  }
}

function toJson(v: unknown): unknown {
  if (typeof v === "object" && v !== null && typeof (v as { toJSON?: unknown }).toJSON === "function") {
    return (v as { toJSON: () => unknown }).toJSON();
  }
  return v;
}

/** What `JSON.stringify` leaves out of an object. */
function skipped(v: unknown): boolean {
  return v === undefined || typeof v === "function" || typeof v === "symbol";
}

/**
 * Orders strings by their UTF-8 bytes (Rust's `String` order, which a
 * `BTreeMap` row keeps): code point order. Plain `<` compares UTF-16 code
 * units, which puts U+E000–U+FFFF after the surrogates of U+10000 and up.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      // Surrogates (0xD800–0xDFFF) above the rest of the BMP.
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

/** Reads a tagged `Value` inside `depth` enclosing containers. */
export function readValue(r: PostcardReader, depth = 0): Json {
  const tag = r.u32();
  switch (tag) {
    case Tag.Null:
      return null;
    case Tag.Bool:
      return r.bool();
    case Tag.Int:
      return r.i64();
    case Tag.Float: {
      const f = r.f64();
      if (!Number.isFinite(f)) throw new DecodeError("a non-finite float has no place in a value");
      return f;
    }
    case Tag.Text:
      return r.string();
    case Tag.List: {
      const inner = innerDepth(depth);
      const n = r.length();
      const out: Json[] = [];
      for (let i = 0; i < n; i++) out.push(readValue(r, inner));
      return out;
    }
    case Tag.Map:
      return readMap(r, innerDepth(depth));
    default:
      throw new DecodeError(`unknown value tag ${tag}`);
  }
}

/** Reads a row's map (its values one level deep). */
export function readRow(r: PostcardReader): { [field: string]: Json } {
  return readMap(r, 1);
}

function innerDepth(depth: number): number {
  if (depth >= MAX_VALUE_DEPTH) throw new DecodeError(`values nest deeper than ${MAX_VALUE_DEPTH} levels`);
  return depth + 1;
}

function readMap(r: PostcardReader, depth: number): { [key: string]: Json } {
  const n = r.length();
  const out: { [key: string]: Json } = {};
  for (let i = 0; i < n; i++) {
    const k = r.key();
    const v = readValue(r, depth);
    // As JSON.parse does: `__proto__` is a member, not the prototype.
    if (k === "__proto__") Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
    else out[k] = v;
  }
  return out;
}
