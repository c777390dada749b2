// ctx.jobs against the fake bridge: the `enqueue` payload, inputs refused
// before the bridge, mutations only, CALL_ENDED after the call, and the
// shard's refusals.
import assert from "node:assert/strict";
import { test } from "node:test";
import { action, mutation, PylonError, query, v, type FunctionDefinition, type Jobs } from "../src/index.ts";
import { install } from "../src/runtime.ts";
import { ANONYMOUS, FakeShard, open } from "./support/fake-bridge.ts";

// Taken before install wraps the global scope's timers.
const originalSetTimeout = globalThis.setTimeout;

const cycle: Record<string, unknown> = {};
cycle.self = cycle;

const NAME = "(a letter, then letters, digits or _, 64 at most)";

/** Bad inputs, each with the message it is refused with. */
const badInputs: [use: (j: Jobs) => Promise<unknown>, message: string | RegExp][] = [
  [(j) => j.enqueue("1notify"), `ctx.jobs.enqueue: "1notify" is not a function name ${NAME}`],
  [(j) => j.enqueue("a".repeat(65)), `ctx.jobs.enqueue: "${"a".repeat(65)}" is not a function name ${NAME}`],
  [(j) => j.enqueue(undefined as unknown as string), `ctx.jobs.enqueue: undefined is not a function name ${NAME}`],
  [(j) => j.enqueue("notify", [1] as unknown as {}), "ctx.jobs.enqueue: payload must be an object (the handler's args), got an array"],
  [(j) => j.enqueue("notify", null as unknown as {}), "ctx.jobs.enqueue: payload must be an object (the handler's args), got null"],
  [(j) => j.enqueue("notify", "x" as unknown as {}), 'ctx.jobs.enqueue: payload must be an object (the handler\'s args), got "x"'],
  [(j) => j.enqueue("notify", { n: 1n } as unknown as {}), "ctx.jobs.enqueue: payload is not JSON: Do not know how to serialize a BigInt"],
  [(j) => j.enqueue("notify", cycle as {}), /^ctx\.jobs\.enqueue: payload is not JSON: Converting circular structure to JSON/],
  [(j) => j.enqueue("notify", {}, 5 as unknown as {}), "ctx.jobs.enqueue: options must be an object, got 5"],
  [(j) => j.enqueue("notify", {}, { delay: 10 } as unknown as {}), 'ctx.jobs.enqueue: unknown option "delay" (delayMs, maxRetries, queue, priority, key)'],
  [(j) => j.enqueue("notify", {}, { delayMs: -1 }), "ctx.jobs.enqueue: delayMs must be an integer from 0 to 43200000, got -1"],
  [(j) => j.enqueue("notify", {}, { delayMs: 1.5 }), "ctx.jobs.enqueue: delayMs must be an integer from 0 to 43200000, got 1.5"],
  [(j) => j.enqueue("notify", {}, { delayMs: 43_200_001 }), "ctx.jobs.enqueue: delayMs must be an integer from 0 to 43200000, got 43200001"],
  [(j) => j.enqueue("notify", {}, { delayMs: "10" as unknown as number }), 'ctx.jobs.enqueue: delayMs must be an integer from 0 to 43200000, got "10"'],
  [(j) => j.enqueue("notify", {}, { maxRetries: 101 }), "ctx.jobs.enqueue: maxRetries must be an integer from 0 to 100, got 101"],
  [(j) => j.enqueue("notify", {}, { priority: 10 }), "ctx.jobs.enqueue: priority must be an integer from 0 to 9, got 10"],
  [(j) => j.enqueue("notify", {}, { priority: Number.NaN }), "ctx.jobs.enqueue: priority must be an integer from 0 to 9, got NaN"],
  [(j) => j.enqueue("notify", {}, { queue: "no way" }), `ctx.jobs.enqueue: queue must be a queue name ${NAME}, got "no way"`],
  [(j) => j.enqueue("notify", {}, { queue: 7 as unknown as string }), `ctx.jobs.enqueue: queue must be a queue name ${NAME}, got 7`],
  [(j) => j.enqueue("notify", {}, { key: "" }), 'ctx.jobs.enqueue: key must be a string of 1 to 200 bytes, got ""'],
  // 67 characters, 201 bytes of UTF-8.
  [(j) => j.enqueue("notify", {}, { key: "é".repeat(100) + "x" }), /^ctx\.jobs\.enqueue: key must be a string of 1 to 200 bytes, got "é/],
  [(j) => j.enqueue("notify", {}, { key: 1 as unknown as string }), "ctx.jobs.enqueue: key must be a string of 1 to 200 bytes, got 1"],
];

/** What a handler saw of an enqueue it made after its call had ended. */
const late: { code?: string; done?: () => void } = {};

const functions = install(
  Object.entries({
    plan: mutation({
      handler: async (ctx) => {
        const plain = await ctx.jobs.enqueue("notifyCard", { id: "c1" });
        const bare = await ctx.jobs.enqueue("sweep");
        const full = await ctx.jobs.enqueue(
          "sendDigest",
          { to: "a@example.com" },
          { delayMs: 43_200_000, maxRetries: 0, queue: "slow", priority: 9, key: "digest:é" },
        );
        const some = await ctx.jobs.enqueue("notifyCard", { id: "c2" }, { priority: 0, delayMs: undefined });
        return [plain, bare, full, some];
      },
    }),
    badInput: mutation({
      args: { index: v.int() },
      handler: (ctx, { index }) => {
        const [use] = badInputs[index] ?? [];
        try {
          // Not awaited: the refusal must be thrown at the call itself.
          void use?.(ctx.jobs);
        } catch (error) {
          return { thrownAtCall: true, code: (error as PylonError).code, message: (error as PylonError).message };
        }
        return { thrownAtCall: false };
      },
    }),
    badInputEscapes: mutation({ handler: async (ctx) => ctx.jobs.enqueue("notify", {}, { priority: -1 }) }),
    refused: mutation({ handler: async (ctx) => ctx.jobs.enqueue("notify", {}, { queue: "mail" }) }),
    refusedCaught: mutation({
      handler: async (ctx) => {
        try {
          await ctx.jobs.enqueue("notify");
        } catch (error) {
          return { isPylonError: error instanceof PylonError, code: (error as PylonError).code };
        }
        return "not refused";
      },
    }),
    lateJobs: mutation({
      handler: async (ctx) => {
        // Long enough that the race's timer fires first even on a busy machine.
        await new Promise((resolve) => originalSetTimeout(resolve, 50));
        try {
          await ctx.jobs.enqueue("notify");
        } catch (error) {
          late.code = (error as PylonError).code;
        }
        late.done?.();
      },
    }),
    queryCtx: query({
      handler: (ctx) => {
        // @ts-expect-error: a query's ctx has no jobs.
        const jobs: unknown = ctx.jobs;
        return { has: "jobs" in ctx, jobs: jobs === undefined ? "undefined" : "defined" };
      },
    }),
    actionCtx: action({
      handler: async (ctx) => {
        // @ts-expect-error: an action's ctx has no jobs.
        const jobs: unknown = ctx.jobs;
        return { has: "jobs" in ctx, jobs: jobs === undefined ? "undefined" : "defined" };
      },
    }),
  } satisfies Record<string, FunctionDefinition>).map(([name, def]) => ({ name, file: `functions/${name}.ts`, module: { default: def } })),
);

async function call(shard: FakeShard, kind: "query" | "mutation" | "action", name: string, args: unknown = {}) {
  const bridge = shard.bridge(kind, ANONYMOUS, (k, n, a) => functions.run(n, shard.bridge(k), a));
  return open(await functions.run(name, bridge, JSON.stringify(args)));
}

test("enqueue reaches the bridge with the contract's payload and returns the shard's id", async () => {
  const shard = new FakeShard();
  assert.deepEqual(await call(shard, "mutation", "plan"), { ok: ["job1", "job2", "job3", "job4"] });
  assert.deepEqual(shard.log, [
    { op: "enqueue", payload: { name: "notifyCard", payload: { id: "c1" } } },
    { op: "enqueue", payload: { name: "sweep", payload: {} } },
    {
      op: "enqueue",
      payload: { name: "sendDigest", payload: { to: "a@example.com" }, delayMs: 43_200_000, maxRetries: 0, queue: "slow", priority: 9, key: "digest:é" },
    },
    { op: "enqueue", payload: { name: "notifyCard", payload: { id: "c2" }, priority: 0 } },
  ]);
  assert.equal(shard.jobs.size, 4);
});

test("bad inputs are BAD_JOB, thrown at the call, and never reach the bridge", async () => {
  const shard = new FakeShard();
  for (const [index, [, message]] of badInputs.entries()) {
    const result = await call(shard, "mutation", "badInput", { index });
    const seen = result.ok as { thrownAtCall: boolean; code?: string; message?: string };
    assert.equal(seen.thrownAtCall, true, String(message));
    assert.equal(seen.code, "BAD_JOB", String(message));
    if (message instanceof RegExp) assert.match(seen.message ?? "", message);
    else assert.equal(seen.message, message);
  }
  assert.deepEqual(await call(shard, "mutation", "badInputEscapes"), {
    err: { code: "BAD_JOB", message: "ctx.jobs.enqueue: priority must be an integer from 0 to 9, got -1" },
  });
  assert.deepEqual(shard.log, []);
});

test("an err envelope from the bridge throws with its code", async () => {
  const shard = new FakeShard();
  shard.jobsRefusal = { code: "UNKNOWN_QUEUE", message: 'no queue "mail" in this app' };
  assert.deepEqual(await call(shard, "mutation", "refused"), { err: { code: "UNKNOWN_QUEUE", message: 'no queue "mail" in this app' } });
  shard.jobsRefusal = { code: "UNKNOWN_FUNCTION", message: "no function" };
  assert.deepEqual(await call(shard, "mutation", "refusedCaught"), { ok: { isPylonError: true, code: "UNKNOWN_FUNCTION" } });
  assert.deepEqual(shard.log.map((entry) => entry.op), ["enqueue", "enqueue"]);
  assert.equal(shard.jobs.size, 0);
});

test("queries and actions have no ctx.jobs", async () => {
  const shard = new FakeShard();
  assert.deepEqual(await call(shard, "query", "queryCtx"), { ok: { has: false, jobs: "undefined" } });
  assert.deepEqual(await call(shard, "action", "actionCtx"), { ok: { has: false, jobs: "undefined" } });
});

test("after the call has ended, ctx.jobs is CALL_ENDED and never reaches the bridge", async () => {
  const shard = new FakeShard();
  const finished = new Promise<void>((resolve) => {
    late.done = resolve;
  });
  assert.equal((await call(shard, "mutation", "lateJobs")).err?.code, "MUTATION_IO");
  await finished;
  assert.equal(late.code, "CALL_ENDED");
  assert.deepEqual(shard.log, []);
});
