/**
 * Applying `snap` / `diff` to a held result, exactly as docs/protocol.md
 * ("diff") says. Pure functions, no I/O; the same checks as the Rust
 * client's `src/client/apply.rs`.
 */
import type { Diff, Positioned, Row } from "./protocol.js";

/** Why a diff cannot be applied. Every case is a server bug or a lost message. */
export class ApplyError extends Error {
  readonly kind: "gap" | "backwards" | "unknown_row" | "duplicate_row" | "bad_position";
  constructor(kind: ApplyError["kind"], message: string) {
    super(message);
    this.name = "ApplyError";
    this.kind = kind;
  }
}

/** Refuses a diff whose `from` is not the held seq (a gap), or that goes backwards. */
export function checkSeq(held: number | undefined, diff: Pick<Diff, "from" | "seq">): void {
  if (held !== diff.from) {
    throw new ApplyError("gap", `gap: diff from seq ${diff.from} but the subscription holds ${held ?? "none"}`);
  }
  if (diff.seq < diff.from) {
    throw new ApplyError("backwards", `diff goes backwards: from ${diff.from} to ${diff.seq}`);
  }
}

/**
 * Returns the rows after `diff`: drop every row whose id is in `removed` or
 * `changed`, then put every `changed` and `added` row at its `pos` in the
 * new result; untouched rows keep their relative order. `rows` is not
 * modified. Throws {@link ApplyError} for a diff that cannot be right: a
 * `removed` / `changed` id not held, an `added` id already held, an id
 * twice, two rows at one position, or a position past the end.
 */
export function applyRows(rows: readonly Row[], diff: Pick<Diff, "added" | "changed" | "removed">): Row[] {
  const held = new Set<string>();
  for (const r of rows) held.add(r.id);
  const gone = new Set<string>();
  for (const id of [...diff.removed, ...diff.changed.map((p) => p.row.id)]) {
    if (!held.has(id)) throw new ApplyError("unknown_row", `diff names row \`${id}\` which is not in the result`);
    if (gone.has(id)) throw new ApplyError("duplicate_row", `diff names row \`${id}\` twice`);
    gone.add(id);
  }
  const placed = new Set<string>();
  for (const p of [...diff.changed, ...diff.added]) {
    if (placed.has(p.row.id)) throw new ApplyError("duplicate_row", `diff places row \`${p.row.id}\` twice`);
    placed.add(p.row.id);
  }
  for (const p of diff.added) {
    if (held.has(p.row.id) && !gone.has(p.row.id)) {
      throw new ApplyError("duplicate_row", `diff adds row \`${p.row.id}\` which is already in the result`);
    }
  }
  const inserts: Positioned[] = [...diff.changed, ...diff.added].sort((a, b) => a.pos - b.pos);
  const untouched = rows.filter((r) => !gone.has(r.id));
  const newLen = untouched.length + inserts.length;
  inserts.forEach((p, i) => {
    if ((i > 0 && inserts[i - 1]!.pos === p.pos) || p.pos >= newLen) {
      throw new ApplyError("bad_position", `diff position ${p.pos} is taken twice or out of range (new length ${newLen})`);
    }
  });
  const out: Row[] = new Array(newLen);
  let u = 0;
  let k = 0;
  for (let i = 0; i < newLen; i++) {
    const next = inserts[k];
    if (next !== undefined && next.pos === i) {
      out[i] = next.row;
      k++;
    } else {
      out[i] = untouched[u++]!;
    }
  }
  return out;
}
