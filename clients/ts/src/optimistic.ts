/**
 * The optimistic layer: applying not-yet-confirmed ops to a query result
 * in memory, with the query's own filter, order and limit.
 */
import type { Json, Op, Row } from "./protocol.js";
import { compareRows, matches, type OrderKey, type Query } from "./query.js";

/** Looks up the full current row `id` of `entity` known elsewhere in the client (other results). */
export type RowLookup = (entity: string, id: string) => Row | undefined;

function insertSorted(rows: Row[], keys: readonly OrderKey[], row: Row): void {
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compareRows(keys, rows[mid]!, row) <= 0) lo = mid + 1;
    else hi = mid;
  }
  rows.splice(lo, 0, row);
}

/**
 * Returns `rows` (the server's result for `query`, in query order) with
 * `ops` applied in order, as the server would apply them, so far as the
 * client can tell:
 *
 * * `insert`: the row enters at its sorted position if it matches `where`
 *   and its id is not held yet (a held id means the server's diff already
 *   brought it, so it is not shown twice); rows without an id are skipped.
 * * `update`: the held row (or one known from another result, or written
 *   by an earlier op) gets the fields of `set`, then leaves or moves as
 *   `where` and `order` say. An unknown row is skipped.
 * * `upsert`: replaces the row entirely (same placement rules).
 * * `delete`: the row leaves.
 *
 * Finally the result is cut to `limit`. Rows below the limit that the
 * server would bring in after a delete are not known and not shown.
 * `rows` is not modified; untouched rows keep their identity.
 */
export function applyOptimistic(
  query: Query,
  keys: readonly OrderKey[],
  rows: readonly Row[],
  ops: Iterable<Op>,
  lookup: RowLookup = () => undefined,
): Row[] {
  const out = rows.slice();
  const written = new Map<string, Row | null>(); // rows the ops wrote (null: deleted)
  const indexOf = (id: string) => out.findIndex((r) => r.id === id);
  const remove = (id: string) => {
    const i = indexOf(id);
    if (i >= 0) out.splice(i, 1);
  };
  const place = (row: Row) => {
    written.set(row.id, row);
    if (matches(query.where, row)) insertSorted(out, keys, row);
  };
  for (const op of ops) {
    if (op.entity !== query.entity) continue;
    switch (op.type) {
      case "insert": {
        const id = op.row.id;
        if (typeof id !== "string" || indexOf(id) >= 0) break;
        place({ ...op.row, id } as Row);
        break;
      }
      case "upsert": {
        if (typeof op.row.id !== "string") break;
        remove(op.row.id);
        place({ ...op.row });
        break;
      }
      case "update": {
        const i = indexOf(op.id);
        const w = written.get(op.id);
        const base = i >= 0 ? out[i] : w === null ? undefined : (w ?? lookup(op.entity, op.id));
        if (base === undefined) break;
        if (i >= 0) out.splice(i, 1);
        const next: { [f: string]: Json } = { ...base, ...op.set, id: op.id };
        place(next as Row);
        break;
      }
      case "delete":
        remove(op.id);
        written.set(op.id, null);
        break;
    }
  }
  if (query.limit !== undefined && out.length > query.limit) out.length = query.limit;
  return out;
}
