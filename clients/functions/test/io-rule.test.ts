// The I/O rule in Node (whose AsyncLocalStorage behaves as workerd's;
// workerd.test.ts runs the same rule in workerd): queries and mutations
// may not start I/O or await anything but ctx.db; code outside them, and
// actions, are untouched.
import assert from "node:assert/strict";
import { createServer, get as httpGet, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { ANONYMOUS, FakeShard, open } from "./support/fake-bridge.ts";

// Platform globals Node lacks, in place before the runtime wraps the global scope.
const platformCaches = { default: { name: "default cache" } };
Object.defineProperty(globalThis, "caches", { value: platformCaches, configurable: true, enumerable: true, writable: true });
const scope = globalThis as unknown as Record<string, unknown>;
scope.scheduler = { wait: (ms: number) => new Promise((resolve) => setTimeout(resolve, ms)) };
const originalSetTimeout = globalThis.setTimeout;

/**
 * An I/O entry point the guard does not wrap (as a platform may have), on
 * a connection of its own: a pooled `fetch` connection opened here would
 * carry this async context into later requests that reuse it.
 */
function unguardedGet(url: string): Promise<void> {
  return new Promise((resolve) => {
    httpGet(url, { agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve());
    }).on("error", () => resolve());
  });
}

const { install } = await import("../src/runtime.ts");
const { action, mutation, query, v } = await import("../src/index.ts");

// A local service that counts its requests; /hold answers when released.
let hits = 0;
let held: ServerResponse[] = [];
const server = createServer((req, res) => {
  hits++;
  if (req.url === "/hold") held.push(res);
  else res.end("hello");
});
let base = "";
before(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

/** What the handler of a raced mutation did after the call had ended. */
const late: { code?: string; fetchCode?: string; done?: () => void } = {};

function ioOf(what: string): () => unknown {
  const g = globalThis as unknown as Record<string, (...args: unknown[]) => unknown> & { scheduler: { wait(ms: number): unknown } };
  switch (what) {
    case "fetch":
      return () => fetch(`${base}/mutation`);
    case "setTimeout":
      return () => setTimeout(() => {}, 0);
    case "setInterval":
      return () => setInterval(() => {}, 1000);
    case "scheduler.wait":
      return () => g.scheduler.wait(1);
    case "caches":
      return () => (globalThis as unknown as { caches: unknown }).caches;
    case "new WebSocket":
      return () => new WebSocket("ws://127.0.0.1:9/");
    default:
      throw new Error(what);
  }
}

const functions = install(
  Object.entries({
    ioInMutation: mutation({ args: { what: v.string() }, handler: async (_ctx, { what }) => ioOf(what)() }),
    ioInQuery: query({ args: { what: v.string() }, handler: (_ctx, { what }) => ioOf(what)() }),
    fetchAfterDb: mutation({
      handler: async (ctx) => {
        await ctx.db.insert("Card", { title: "before" });
        return (await fetch(`${base}/after-db`)).status;
      },
    }),
    awaitsTimer: mutation({
      handler: async (ctx) => {
        await ctx.db.insert("Card", { title: "in time" });
        await new Promise((resolve) => originalSetTimeout(resolve, 5));
        try {
          await ctx.db.insert("Card", { title: "too late" });
        } catch (error) {
          late.code = (error as { code?: string }).code;
        }
        try {
          await unguardedGet(`${base}/late`);
          await fetch(`${base}/late`);
        } catch (error) {
          late.fetchCode = (error as { code?: string }).code;
        }
        late.done?.();
        return "never seen";
      },
    }),
    dbOnly: mutation({
      args: { n: v.int() },
      handler: async (ctx, { n }) => {
        const nested = async (i: number) => {
          const id = await ctx.db.insert("Card", { title: `c${i}` });
          return (await ctx.db.get("Card", id))?.id;
        };
        let last: string | undefined;
        for (let i = 0; i < n; i++) last = await nested(i);
        await Promise.all([ctx.db.query("Card", {}), ctx.db.get("Card", "r1")]);
        return { last, rows: (await ctx.db.query("Card", {})).length };
      },
    }),
    actionFetches: action({
      args: { path: v.string() },
      handler: async (ctx, { path }) => (await ctx.fetch(`${base}${path}`)).text(),
    }),
  }).map(([name, def]) => ({ name, file: `functions/${name}.ts`, module: { default: def } })),
);

async function run(shard: FakeShard, kind: "query" | "mutation" | "action", name: string, args: object = {}) {
  return open(await functions.run(name, shard.bridge(kind, ANONYMOUS), JSON.stringify(args)));
}

const IO_KINDS = ["fetch", "setTimeout", "setInterval", "scheduler.wait", "caches", "new WebSocket"];

test("every I/O entry point in a mutation or a query throws MUTATION_IO and starts nothing", async () => {
  hits = 0;
  const shard = new FakeShard();
  for (const what of IO_KINDS) {
    for (const [kind, name] of [["mutation", "ioInMutation"], ["query", "ioInQuery"]] as const) {
      assert.deepEqual(await run(shard, kind, name, { what }), {
        err: { code: "MUTATION_IO", message: `${what} is not allowed in a ${kind}: a ${kind} runs inside the shard's turn; do I/O in an action` },
      }, `${what} in a ${kind}`);
    }
  }
  assert.deepEqual(await run(shard, "mutation", "fetchAfterDb"), {
    err: { code: "MUTATION_IO", message: "fetch is not allowed in a mutation: a mutation runs inside the shard's turn; do I/O in an action" },
  });
  assert.equal(hits, 0);
});

test("the same entry points outside a call work as before", async () => {
  hits = 0;
  assert.equal(await (await fetch(`${base}/outside`)).text(), "hello");
  assert.equal(hits, 1);
  await new Promise((resolve) => setTimeout(resolve, 1));
  clearInterval(setInterval(() => {}, 1000));
  await (scope.scheduler as { wait(ms: number): Promise<void> }).wait(1);
  assert.equal((globalThis as unknown as { caches: unknown }).caches, platformCaches);
  const socket = new WebSocket("ws://127.0.0.1:9/");
  assert.ok(socket instanceof WebSocket);
  socket.onerror = () => {};
  socket.close();
});

test("a handler that awaits something else loses the race: MUTATION_IO, and nothing it does later reaches the bridge", async () => {
  hits = 0;
  const shard = new FakeShard();
  const finished = new Promise<void>((resolve) => {
    late.done = resolve;
  });
  const result = await run(shard, "mutation", "awaitsTimer");
  assert.equal(result.err?.code, "MUTATION_IO");
  assert.match(result.err?.message ?? "", /^awaitsTimer awaited something other than ctx\.db/);
  await finished;
  assert.equal(late.code, "CALL_ENDED");
  assert.equal(late.fetchCode, "MUTATION_IO", "the ended call still may not fetch");
  assert.equal(hits, 1, "only the unguarded original fetch got through");
  assert.deepEqual(shard.log.map((entry) => entry.op), ["insert"]);
});

test("a handler that awaits only ctx.db settles before the race, and its timer is cleared", async () => {
  const shard = new FakeShard();
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
  const before = timers();
  assert.deepEqual(await run(shard, "mutation", "dbOnly", { n: 200 }), { ok: { last: "r200", rows: 200 } });
  assert.equal(timers(), before);
});

test("an action may fetch; a call in flight does not block I/O elsewhere, and I/O elsewhere does not unblock it", async () => {
  hits = 0;
  held = [];
  const shard = new FakeShard();
  const pending = run(shard, "action", "actionFetches", { path: "/hold" });
  while (held.length === 0) await new Promise((resolve) => originalSetTimeout(resolve, 1));
  // While the action waits: a mutation is refused, outside code is not.
  assert.equal((await run(shard, "mutation", "ioInMutation", { what: "fetch" })).err?.code, "MUTATION_IO");
  assert.equal(await (await fetch(`${base}/outside`)).text(), "hello");
  // And while a raced mutation's handler is still going on.
  const finished = new Promise<void>((resolve) => {
    late.done = resolve;
  });
  assert.equal((await run(shard, "mutation", "awaitsTimer")).err?.code, "MUTATION_IO");
  assert.equal(await (await fetch(`${base}/outside`)).text(), "hello");
  await finished;
  (held[0] as ServerResponse).end("released");
  assert.deepEqual(await pending, { ok: "released" });
  assert.equal(hits, 4, "the action's, two outside, the raced handler's unguarded one");
});
