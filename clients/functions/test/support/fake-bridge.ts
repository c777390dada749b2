// A bridge in the shape the Rust side builds (src/bridge.ts), over
// in-memory tables, for unit tests that need scripted answers. It logs
// every operation that reaches it, so a test can tell what did not.
import type { Bridge, DbOp } from "../../src/runtime.ts";

type Row = { id: string; [field: string]: unknown };
type Auth = { userId: string | null; tenantId: string | null; roles: string[]; isAdmin: boolean };

export const ANONYMOUS: Auth = { userId: null, tenantId: null, roles: [], isAdmin: false };

export class FakeShard {
  readonly tables = new Map<string, Map<string, Row>>();
  readonly log: { op: DbOp; payload: unknown }[] = [];
  /** Entities every operation on is refused (as a policy would). */
  readonly denied = new Set<string>();
  /** Calls scheduled with `schedule` and not cancelled, by id, as their payloads. */
  readonly scheduled = new Map<string, Scheduled>();
  /** When set, `schedule` and `cancel` answer with this error (as the shard would in a query). */
  schedulerRefusal: { code: string; message: string } | undefined;
  /** Jobs enqueued with `enqueue`, by id, as their payloads. */
  readonly jobs = new Map<string, unknown>();
  /** When set, `enqueue` answers with this error (as the shard would for an unknown queue). */
  jobsRefusal: { code: string; message: string } | undefined;
  private nextId = 1;
  private nextScheduled = 1;
  private nextJob = 1;

  constructor(entities: string[] = ["Card"]) {
    for (const entity of entities) this.tables.set(entity, new Map());
  }

  rows(entity: string): Row[] {
    return [...(this.tables.get(entity)?.values() ?? [])];
  }

  bridge(kind: Bridge["kind"], auth: Auth = ANONYMOUS, call?: Bridge["call"]): Bridge {
    return { kind, auth: JSON.stringify(auth), db: (op, payload) => this.db(op, payload), call };
  }

  db(op: DbOp, payloadJson: string): string {
    const payload = JSON.parse(payloadJson) as { entity: string; id?: string; row?: Row; set?: Row; where?: Filter; order?: (string | [string, "asc" | "desc"])[]; limit?: number };
    this.log.push({ op, payload });
    if (op === "schedule" || op === "cancel") return this.scheduler(op, payload as unknown as Scheduled & { id: string });
    if (op === "enqueue") return this.enqueue(payload);
    const table = this.tables.get(payload.entity);
    if (!table) return err("UNKNOWN_ENTITY", `no entity ${payload.entity}`);
    if (this.denied.has(payload.entity)) return err("POLICY_DENIED", `policy denied ${op} on ${payload.entity}`);
    switch (op) {
      case "get":
        return ok(table.get(payload.id as string) ?? null);
      case "query": {
        let rows = [...table.values()].filter((row) => matches(row, payload.where ?? {}));
        for (const key of [...(payload.order ?? [])].reverse()) rows = rows.sort(byKey(key));
        return ok(rows.slice(0, payload.limit ?? rows.length));
      }
      case "insert": {
        const id = `r${this.nextId++}`;
        table.set(id, { ...payload.row, id });
        return ok(id);
      }
      case "update": {
        const row = table.get(payload.id as string);
        if (!row) return err("NOT_FOUND", `no ${payload.entity} ${payload.id}`);
        table.set(row.id, { ...row, ...payload.set });
        return ok(null);
      }
      case "delete":
        table.delete(payload.id as string);
        return ok(null);
    }
  }

  private enqueue(payload: unknown): string {
    if (this.jobsRefusal) return err(this.jobsRefusal.code, this.jobsRefusal.message);
    const id = `job${this.nextJob++}`;
    this.jobs.set(id, payload);
    return ok(id);
  }

  private scheduler(op: "schedule" | "cancel", payload: Scheduled & { id: string }): string {
    if (this.schedulerRefusal) return err(this.schedulerRefusal.code, this.schedulerRefusal.message);
    if (op === "cancel") {
      this.scheduled.delete(payload.id);
      return ok(null);
    }
    const id = `s${this.nextScheduled++}`;
    this.scheduled.set(id, payload);
    return ok(id);
  }
}

/** A `schedule` payload: `delayMs` or `at`, the function's name and its args. */
export type Scheduled = { delayMs?: number; at?: number; name: string; args: unknown };

// Enough of the query language (docs/queries.md) for the tests: equality,
// null (or absent), $or and $and; order keys with a "-" for descending,
// or Pylon's [field, "asc" | "desc"] pairs.
type Filter = { [key: string]: unknown };

function matches(row: Row, where: Filter): boolean {
  return Object.entries(where).every(([key, want]) => {
    if (key === "$or") return (want as Filter[]).some((f) => matches(row, f));
    if (key === "$and") return (want as Filter[]).every((f) => matches(row, f));
    if (want === null) return row[key] === null || row[key] === undefined;
    // `$ne` is SQL's IS NOT: a null field is "not equal" too.
    if (typeof want === "object" && "$ne" in (want as Filter)) return (row[key] ?? null) !== (want as Filter).$ne;
    return row[key] === want;
  });
}

function byKey(key: string | [string, "asc" | "desc"]): (a: Row, b: Row) => number {
  const field = typeof key === "string" ? key.replace(/^-/, "") : key[0];
  const sign = (typeof key === "string" ? key.startsWith("-") : key[1] === "desc") ? -1 : 1;
  return (a, b) => {
    const x = a[field] as string | number | undefined;
    const y = b[field] as string | number | undefined;
    if (x === y) return 0;
    if (x === undefined || x === null) return -sign;
    if (y === undefined || y === null) return sign;
    return (x < y ? -1 : 1) * sign;
  };
}

function ok(value: unknown): string {
  return JSON.stringify({ ok: value });
}

function err(code: string, message: string): string {
  return JSON.stringify({ err: { code, message } });
}

/** Parses `run`'s envelope. */
export function open(envelope: string): { ok?: unknown; err?: { code: string; message: string } } {
  return JSON.parse(envelope);
}
