/**
 * In-memory query evaluation with the semantics of docs/queries.md (which
 * are SQLite's, as the server's `src/query/eval.rs` implements them), used
 * to place optimistic writes in local results.
 *
 * The client has no schema, so a value's storage form is taken from its
 * JSON type: booleans are INTEGER 0/1, numbers are numeric (integers and
 * reals compare numerically), strings are TEXT compared by bytes (UTF-8 /
 * code point order, so `"B" < "a"`), objects and lists are json (only
 * null-checked). Classes order as NULL < numbers < TEXT < json.
 */
import type { Json, Row } from "./protocol.js";

/** A filter (docs/queries.md, "Filters"). */
export type Filter = { [fieldOrOperator: string]: Json };

/** A live query (docs/queries.md, "Keys"; `after` is not for live queries). */
export interface Query {
  entity: string;
  where?: Filter;
  /** Field names; a `-` prefix sorts descending. `id` ascending is always the last key. */
  order?: string[];
  /** 1..=1000. */
  limit?: number;
  /** Ask the server for the number of matching rows (ignoring `limit`). */
  count?: boolean;
}

type Stored = { c: 0 } | { c: 1; n: number } | { c: 2; s: string } | { c: 3 };

const NULL: Stored = { c: 0 };

function stored(v: Json | undefined): Stored {
  if (v === undefined || v === null) return NULL;
  if (typeof v === "boolean") return { c: 1, n: v ? 1 : 0 };
  if (typeof v === "number") return Number.isNaN(v) ? NULL : { c: 1, n: v };
  if (typeof v === "string") return { c: 2, s: v };
  return { c: 3 };
}

/** Code unit → a key that orders UTF-16 strings by code point (= UTF-8 bytes). */
function fixup(c: number): number {
  if (c >= 0xd800 && c <= 0xdfff) return c + 0x2000;
  if (c >= 0xe000) return c - 0x800;
  return c;
}

/** Compares two strings by code point, as SQLite's BINARY collation compares UTF-8. */
export function compareText(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return fixup(x) < fixup(y) ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

function cmpStored(a: Stored, b: Stored): number {
  if (a.c === 1 && b.c === 1) return a.n < b.n ? -1 : a.n > b.n ? 1 : 0;
  if (a.c === 2 && b.c === 2) return compareText(a.s, b.s);
  return a.c < b.c ? -1 : a.c > b.c ? 1 : 0;
}

/** Compares two JSON values as SQLite would compare their storage forms (NULLs equal). */
export function compareValues(a: Json | undefined, b: Json | undefined): number {
  return cmpStored(stored(a), stored(b));
}

/** SQLite `LIKE` without ESCAPE: `%` any sequence, `_` one character, ASCII letters case-insensitive. */
export function like(pattern: string, text: string): boolean {
  const cut = (s: string) => Array.from(s.split("\0")[0] ?? "");
  const p = cut(pattern);
  const t = cut(text);
  const lower = (c: string) => (c.length === 1 && c >= "A" && c <= "Z" ? c.toLowerCase() : c);
  const same = (a: string, b: string) => a === b || lower(a) === lower(b);
  let pi = 0;
  let ti = 0;
  let star: [number, number] | undefined;
  while (ti < t.length) {
    if (pi < p.length && p[pi] === "%") {
      pi++;
      star = [pi, ti];
    } else if (pi < p.length && (p[pi] === "_" || same(p[pi]!, t[ti]!))) {
      pi++;
      ti++;
    } else if (star) {
      pi = star[0];
      ti = star[1] + 1;
      star = [star[0], star[1] + 1];
    } else {
      return false;
    }
  }
  return p.slice(pi).every((c) => c === "%");
}

const isObj = (v: Json | undefined): v is { [k: string]: Json } =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function isNull(v: Json | undefined): boolean {
  return v === undefined || v === null;
}

/** One `{"$op": literal}` on a field value. Unknown operators match nothing. */
function leaf(value: Json | undefined, op: string, literal: Json): boolean {
  if (op === "$exists") return isNull(value) !== (literal === true);
  if (literal === null) {
    if (op === "$eq") return isNull(value);
    if (op === "$ne") return !isNull(value);
    return false;
  }
  const v = stored(value);
  if (op === "$like") return typeof value === "string" && typeof literal === "string" && like(literal, value);
  if (op === "$in" || op === "$nin") {
    const negated = op === "$nin";
    if (v.c === 0) return negated;
    if (v.c === 3 || !Array.isArray(literal)) return false;
    const found = literal.some((x) => cmpStored(v, stored(x)) === 0);
    return found !== negated;
  }
  if (v.c === 0) return op === "$ne";
  if (v.c === 3) return false; // json fields: null checks only
  const o = cmpStored(v, stored(literal));
  switch (op) {
    case "$eq":
      return o === 0;
    case "$ne":
      return o !== 0;
    case "$gt":
      return o > 0;
    case "$gte":
      return o >= 0;
    case "$lt":
      return o < 0;
    case "$lte":
      return o <= 0;
    default:
      return false;
  }
}

/**
 * Whether `row` matches `filter`, with the two-valued semantics of
 * docs/queries.md: comparisons with a null or absent field do not match,
 * except `$ne` / `$nin`, which do; `$not` is "does not match".
 */
export function matches(filter: Filter | undefined | null, row: { [field: string]: Json }): boolean {
  if (filter === undefined || filter === null) return true;
  if (!isObj(filter)) return false;
  for (const [key, val] of Object.entries(filter)) {
    if (key === "$and" || key === "$or") {
      if (!Array.isArray(val)) return false;
      const parts = val.map((f) => isObj(f) && matches(f, row));
      if (key === "$and" ? !parts.every(Boolean) : !parts.some(Boolean)) return false;
    } else if (key === "$not") {
      if (!isObj(val) || matches(val, row)) return false;
    } else if (key.startsWith("$")) {
      return false;
    } else if (isObj(val)) {
      const ops = Object.entries(val);
      if (ops.length === 0) return false;
      for (const [op, literal] of ops) if (!leaf(row[key], op, literal)) return false;
    } else if (!leaf(row[key], "$eq", val)) {
      return false;
    }
  }
  return true;
}

/** A sort key: a field and its direction. */
export interface OrderKey {
  field: string;
  desc: boolean;
}

/** The sort keys of `order`, with the `id` ascending tie-break appended unless `id` is last. */
export function orderKeys(order: readonly string[] | undefined): OrderKey[] {
  const keys = (order ?? []).map((spelled) =>
    spelled.startsWith("-") ? { field: spelled.slice(1), desc: true } : { field: spelled, desc: false },
  );
  if (keys.length === 0 || keys[keys.length - 1]!.field !== "id") keys.push({ field: "id", desc: false });
  return keys;
}

/** The order of two rows: NULLs first ascending, last descending; total with the id tie-break. */
export function compareRows(keys: readonly OrderKey[], a: { [f: string]: Json }, b: { [f: string]: Json }): number {
  for (const k of keys) {
    const o = compareValues(a[k.field], b[k.field]);
    if (o !== 0) return k.desc ? -o : o;
  }
  return 0;
}

/** Evaluates a query over a set of rows of its entity: filter, order, limit. */
export function evaluate(query: Query, rows: Iterable<Row>): Row[] {
  const keys = orderKeys(query.order);
  const out = [...rows].filter((r) => matches(query.where, r)).sort((a, b) => compareRows(keys, a, b));
  return query.limit === undefined ? out : out.slice(0, query.limit);
}
