// ctx.scheduler against the fake bridge: the `schedule` and `cancel`
// payloads, inputs refused before the bridge, mutations only, CALL_ENDED
// after the call, and the shard's refusals.
import assert from "node:assert/strict";
import { test } from "node:test";
import { action, mutation, PylonError, query, v, type FunctionDefinition, type Scheduler } from "../src/index.ts";
import { install } from "../src/runtime.ts";
import { ANONYMOUS, FakeShard, open } from "./support/fake-bridge.ts";

// Taken before install wraps the global scope's timers.
const originalSetTimeout = globalThis.setTimeout;

const AT = Date.UTC(2030, 0, 2, 3, 4, 5);

const cycle: Record<string, unknown> = {};
cycle.self = cycle;

/** Bad inputs, each with the message it is refused with. */
const badInputs: [use: (s: Scheduler) => Promise<unknown>, message: string | RegExp][] = [
  [(s) => s.runAfter(-1, "remind"), "ctx.scheduler.runAfter: delayMs must be a finite number >= 0, got -1"],
  [(s) => s.runAfter(Number.NaN, "remind"), "ctx.scheduler.runAfter: delayMs must be a finite number >= 0, got NaN"],
  [(s) => s.runAfter(Infinity, "remind"), "ctx.scheduler.runAfter: delayMs must be a finite number >= 0, got Infinity"],
  [(s) => s.runAfter("10" as unknown as number, "remind"), 'ctx.scheduler.runAfter: delayMs must be a finite number >= 0, got "10"'],
  [(s) => s.runAt(new Date("nope"), "remind"), "ctx.scheduler.runAt: when must be a finite number of ms since the epoch or a valid Date, got an invalid Date"],
  [(s) => s.runAt(Number.POSITIVE_INFINITY, "remind"), "ctx.scheduler.runAt: when must be a finite number of ms since the epoch or a valid Date, got Infinity"],
  [(s) => s.runAt("2030-01-01" as unknown as number, "remind"), 'ctx.scheduler.runAt: when must be a finite number of ms since the epoch or a valid Date, got "2030-01-01"'],
  [(s) => s.runAfter(0, "1remind"), 'ctx.scheduler.runAfter: "1remind" is not a function name (a letter, then letters, digits or _, 64 at most)'],
  [(s) => s.runAt(AT, "a".repeat(65)), `ctx.scheduler.runAt: "${"a".repeat(65)}" is not a function name (a letter, then letters, digits or _, 64 at most)`],
  [(s) => s.runAfter(0, "re-mind"), 'ctx.scheduler.runAfter: "re-mind" is not a function name (a letter, then letters, digits or _, 64 at most)'],
  [(s) => s.runAfter(0, undefined as unknown as string), "ctx.scheduler.runAfter: undefined is not a function name (a letter, then letters, digits or _, 64 at most)"],
  [(s) => s.runAfter(0, "remind", [1] as unknown as {}), "ctx.scheduler.runAfter: args must be an object, got an array"],
  [(s) => s.runAfter(0, "remind", null as unknown as {}), "ctx.scheduler.runAfter: args must be an object, got null"],
  [(s) => s.runAt(AT, "remind", "x" as unknown as {}), 'ctx.scheduler.runAt: args must be an object, got "x"'],
  [(s) => s.runAfter(0, "remind", { n: 1n } as unknown as {}), "ctx.scheduler.runAfter: args are not JSON: Do not know how to serialize a BigInt"],
  [(s) => s.runAt(AT, "remind", cycle as {}), /^ctx\.scheduler\.runAt: args are not JSON: Converting circular structure to JSON/],
  [(s) => s.cancel(""), 'ctx.scheduler.cancel: id must be a scheduled id (a non-empty string), got ""'],
  [(s) => s.cancel(7 as unknown as string), "ctx.scheduler.cancel: id must be a scheduled id (a non-empty string), got 7"],
];

/** What a handler saw of a scheduler call it made after its call had ended. */
const late: { code?: string; done?: () => void } = {};

const functions = install(
  Object.entries({
    plan: mutation({
      handler: async (ctx) => {
        const later = await ctx.scheduler.runAfter(1500, "remind", { cardId: "c1", note: "soon" });
        const atDate = await ctx.scheduler.runAt(new Date(AT), "remind");
        const atMs = await ctx.scheduler.runAt(AT + 1, "sweep_2", { all: true });
        const now = await ctx.scheduler.runAfter(0, "remind", {});
        await ctx.scheduler.cancel(atMs);
        await ctx.scheduler.cancel("s404");
        return [later, atDate, atMs, now];
      },
    }),
    badInput: mutation({
      args: { index: v.int() },
      handler: (ctx, { index }) => {
        const [use] = badInputs[index] ?? [];
        try {
          // Not awaited: the refusal must be thrown at the call itself.
          void use?.(ctx.scheduler);
        } catch (error) {
          return { thrownAtCall: true, code: (error as PylonError).code, message: (error as PylonError).message };
        }
        return { thrownAtCall: false };
      },
    }),
    badInputEscapes: mutation({ handler: async (ctx) => ctx.scheduler.runAfter(-5, "remind") }),
    refused: mutation({ handler: async (ctx) => ctx.scheduler.runAfter(10, "remind") }),
    refusedCaught: mutation({
      handler: async (ctx) => {
        try {
          await ctx.scheduler.cancel("s1");
        } catch (error) {
          return { isPylonError: error instanceof PylonError, code: (error as PylonError).code };
        }
        return "not refused";
      },
    }),
    lateScheduler: mutation({
      handler: async (ctx) => {
        await new Promise((resolve) => originalSetTimeout(resolve, 5));
        try {
          await ctx.scheduler.runAfter(0, "remind");
        } catch (error) {
          late.code = (error as PylonError).code;
        }
        late.done?.();
      },
    }),
    queryCtx: query({
      handler: (ctx) => {
        // @ts-expect-error: a query's ctx has no scheduler.
        const scheduler: unknown = ctx.scheduler;
        return { has: "scheduler" in ctx, scheduler: scheduler === undefined ? "undefined" : "defined" };
      },
    }),
    actionCtx: action({
      handler: async (ctx) => {
        // @ts-expect-error: an action's ctx has no scheduler.
        const scheduler: unknown = ctx.scheduler;
        return { has: "scheduler" in ctx, scheduler: scheduler === undefined ? "undefined" : "defined" };
      },
    }),
  } satisfies Record<string, FunctionDefinition>).map(([name, def]) => ({ name, file: `functions/${name}.ts`, module: { default: def } })),
);

async function call(shard: FakeShard, kind: "query" | "mutation" | "action", name: string, args: unknown = {}) {
  const bridge = shard.bridge(kind, ANONYMOUS, (k, n, a) => functions.run(n, shard.bridge(k), a));
  return open(await functions.run(name, bridge, JSON.stringify(args)));
}

test("runAfter, runAt and cancel reach the bridge with the contract's payloads", async () => {
  const shard = new FakeShard();
  assert.deepEqual(await call(shard, "mutation", "plan"), { ok: ["s1", "s2", "s3", "s4"] });
  assert.deepEqual(shard.log, [
    { op: "schedule", payload: { delayMs: 1500, name: "remind", args: { cardId: "c1", note: "soon" } } },
    { op: "schedule", payload: { at: AT, name: "remind", args: {} } },
    { op: "schedule", payload: { at: AT + 1, name: "sweep_2", args: { all: true } } },
    { op: "schedule", payload: { delayMs: 0, name: "remind", args: {} } },
    { op: "cancel", payload: { id: "s3" } },
    { op: "cancel", payload: { id: "s404" } },
  ]);
  assert.deepEqual([...shard.scheduled.keys()], ["s1", "s2", "s4"]);
});

test("bad inputs are BAD_SCHEDULE, thrown at the call, and never reach the bridge", async () => {
  const shard = new FakeShard();
  for (const [index, [, message]] of badInputs.entries()) {
    const result = await call(shard, "mutation", "badInput", { index });
    const seen = result.ok as { thrownAtCall: boolean; code?: string; message?: string };
    assert.equal(seen.thrownAtCall, true, String(message));
    assert.equal(seen.code, "BAD_SCHEDULE", String(message));
    if (message instanceof RegExp) assert.match(seen.message ?? "", message);
    else assert.equal(seen.message, message);
  }
  assert.deepEqual(await call(shard, "mutation", "badInputEscapes"), {
    err: { code: "BAD_SCHEDULE", message: "ctx.scheduler.runAfter: delayMs must be a finite number >= 0, got -5" },
  });
  assert.deepEqual(shard.log, []);
});

test("an err envelope from the bridge throws with its code", async () => {
  const shard = new FakeShard();
  shard.schedulerRefusal = { code: "READ_ONLY", message: "not in this call" };
  assert.deepEqual(await call(shard, "mutation", "refused"), { err: { code: "READ_ONLY", message: "not in this call" } });
  shard.schedulerRefusal = { code: "SCHEDULE_LIMIT", message: "too many" };
  assert.deepEqual(await call(shard, "mutation", "refusedCaught"), { ok: { isPylonError: true, code: "SCHEDULE_LIMIT" } });
  assert.deepEqual(shard.log.map((entry) => entry.op), ["schedule", "cancel"]);
});

test("queries and actions have no ctx.scheduler", async () => {
  const shard = new FakeShard();
  assert.deepEqual(await call(shard, "query", "queryCtx"), { ok: { has: false, scheduler: "undefined" } });
  assert.deepEqual(await call(shard, "action", "actionCtx"), { ok: { has: false, scheduler: "undefined" } });
});

test("after the call has ended, ctx.scheduler is CALL_ENDED and never reaches the bridge", async () => {
  const shard = new FakeShard();
  const finished = new Promise<void>((resolve) => {
    late.done = resolve;
  });
  assert.equal((await call(shard, "mutation", "lateScheduler")).err?.code, "MUTATION_IO");
  await finished;
  assert.equal(late.code, "CALL_ENDED");
  assert.deepEqual(shard.log, []);
});
