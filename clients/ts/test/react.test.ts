// The React entry point, without React: "react" is mapped to a stand-in
// module, and the hook is driven through createUseLiveQuery with a tiny
// hooks implementation that behaves like React's for one component.
import assert from "node:assert/strict";
import { registerHooks } from "node:module";
import { after, before, test } from "node:test";
import type { Hooks, LiveQueryState, QueryFnState } from "../dist/react.js";
import { connect, type PylonClient } from "../dist/index.js";
import { FakeServer } from "./support/server.ts";

registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier === "react") {
      const src = "export const useMemo = (f) => f(); export const useSyncExternalStore = (s, g) => g();";
      return { url: `data:text/javascript,${encodeURIComponent(src)}`, shortCircuit: true };
    }
    return nextResolve(specifier, context);
  },
});
const react = await import("../dist/react.js");

/** One mounted component: memo by deps, store subscribed once, re-render on change. */
function component(): { hooks: Hooks; renders: number; unmount: () => void } {
  let memo: { deps: readonly unknown[]; value: unknown } | undefined;
  let sub: { subscribe: unknown; unsubscribe: () => void } | undefined;
  const self = {
    renders: 0,
    hooks: {
      useMemo<T>(factory: () => T, deps: readonly unknown[]): T {
        if (!memo || memo.deps.length !== deps.length || memo.deps.some((d, i) => !Object.is(d, deps[i]))) {
          memo = { deps, value: factory() };
        }
        return memo.value as T;
      },
      useSyncExternalStore<T>(subscribe: (cb: () => void) => () => void, getSnapshot: () => T): T {
        if (sub?.subscribe !== subscribe) {
          sub?.unsubscribe();
          sub = { subscribe, unsubscribe: subscribe(() => self.renders++) };
        }
        return getSnapshot();
      },
    } as Hooks,
    unmount: () => sub?.unsubscribe(),
  };
  return self;
}

let server: FakeServer;
let client: PylonClient;
before(async () => {
  server = await FakeServer.start();
  client = connect({ url: server.url, shard: "s", keepaliveMs: 0 });
});
after(async () => {
  client.close();
  await server.close();
});

test("the react entry point loads with react mapped, and exports the hooks", () => {
  assert.equal(typeof react.useLiveQuery, "function");
  assert.equal(typeof react.useConnectionState, "function");
  assert.equal(typeof react.useQueryFn, "function");
  assert.deepEqual(react.useLiveQuery(null, { entity: "Todo" }), {
    rows: [],
    status: "idle",
    error: undefined,
    seq: undefined,
    optimistic: false,
  });
  assert.deepEqual(react.useQueryFn(null, "boardSummary", { board: "b1" }), { value: undefined, error: undefined, loading: false, seq: undefined });
});

test("useLiveQuery: one subscription across renders with an equal query literal; rows, status, error; unsub on unmount", async () => {
  const conn = await server.nextConnection();
  conn.welcome(0);
  await client.ready();
  const c = component();
  const use = react.createUseLiveQuery(c.hooks);
  let state: LiveQueryState = use(client, { entity: "Todo", order: ["title"] });
  assert.equal(state.status, "pending");
  assert.deepEqual(await conn.recv(), { type: "sub", id: "s1", entity: "Todo", order: ["title"] });
  conn.send({ type: "snap", id: "s1", seq: 4, rows: [{ id: "a", title: "x" }] });
  while (c.renders === 0) await new Promise((r) => setTimeout(r, 2));
  const first = use(client, { entity: "Todo", order: ["title"] });
  assert.deepEqual(first.rows, [{ id: "a", title: "x" }]);
  assert.equal(first.status, "live");
  assert.equal(first.seq, 4);
  assert.equal(use(client, { entity: "Todo", order: ["title"] }), first, "a stable snapshot while nothing changes");
  assert.equal(conn.unread, 0, "no second sub for an equal query");

  const p = client.mutate([{ type: "insert", entity: "Todo", row: { id: "b", title: "a" } }]);
  state = use(client, { entity: "Todo", order: ["title"] });
  assert.deepEqual(state.rows.map((r) => r.id), ["b", "a"]);
  assert.equal(state.optimistic, true);
  const m = await conn.expect("mut");
  conn.send({ type: "err", code: "FORBIDDEN", message: "no", op: m.op });
  await assert.rejects(p);
  assert.deepEqual(use(client, { entity: "Todo", order: ["title"] }).rows.map((r) => r.id), ["a"]);

  c.unmount();
  assert.deepEqual(await conn.recv(), { type: "unsub", id: "s1" });

  const d = component();
  const useState = react.createUseConnectionState(d.hooks);
  assert.deepEqual(useState(client), { state: "live", conn: "c-1", seq: 0 });
});

test("useQueryFn: one watch across renders with equal args in any key order; value, error, loading; watches again when name or args change; unsub on unmount", async () => {
  const conn = server.connections[0]!;
  const c = component();
  const use = react.createUseQueryFn(c.hooks);
  let state: QueryFnState = use(client, "boardSummary", { board: "b1", open: true });
  assert.deepEqual(state, { value: undefined, error: undefined, loading: true, seq: undefined });
  assert.deepEqual(await conn.recv(), { type: "watch", id: "w1", name: "boardSummary", args: { board: "b1", open: true } });
  conn.send({ type: "value", id: "w1", seq: 7, value: { todo: 3 } });
  while (c.renders === 0) await new Promise((r) => setTimeout(r, 2));
  state = use(client, "boardSummary", { open: true, board: "b1" });
  assert.deepEqual(state, { value: { todo: 3 }, error: undefined, loading: false, seq: 7 });
  assert.equal(use(client, "boardSummary", { board: "b1", open: true }), state, "a stable snapshot while nothing changes");
  assert.equal(conn.unread, 0, "no second watch for equal args");

  // Other args: the old watch closes, a new one opens.
  assert.equal(use(client, "boardSummary", { board: "b2", open: true }).loading, true);
  assert.deepEqual(await conn.recv(), { type: "unsub", id: "w1" });
  assert.deepEqual(await conn.recv(), { type: "watch", id: "w2", name: "boardSummary", args: { board: "b2", open: true } });
  conn.send({ type: "err", code: "FUNCTION_ERROR", message: "NO_BOARD: b2 does not exist", sub: "w2" });
  while (use(client, "boardSummary", { board: "b2", open: true }).loading) await new Promise((r) => setTimeout(r, 2));
  state = use(client, "boardSummary", { board: "b2", open: true });
  assert.equal(state.error?.appCode, "NO_BOARD");
  assert.equal(state.value, undefined);

  // Another name, same args.
  use(client, "boardStats", { board: "b2", open: true });
  assert.deepEqual(await conn.recv(), { type: "unsub", id: "w2" });
  assert.deepEqual(await conn.recv(), { type: "watch", id: "w3", name: "boardStats", args: { board: "b2", open: true } });
  c.unmount();
  assert.deepEqual(await conn.recv(), { type: "unsub", id: "w3" });
});

test("stableJson: object keys sorted at every depth, lists kept in order", () => {
  assert.equal(react.stableJson({ b: 1, a: { d: [2, { z: 1, y: 0 }], c: null } }), '{"a":{"c":null,"d":[2,{"y":0,"z":1}]},"b":1}');
  assert.equal(react.stableJson(undefined), "null");
});
