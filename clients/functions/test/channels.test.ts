// An action's ctx.channels.publish against a fake bridge: the payload the
// Rust side gets, the answer, a refusal thrown with its code, and a
// bridge without `publish` (not an action's).
import assert from "node:assert/strict";
import { test } from "node:test";
import { action, mutation, PylonError, v, type FunctionDefinition } from "../src/index.ts";
import { install } from "../src/runtime.ts";
import { ANONYMOUS, FakeShard, open } from "./support/fake-bridge.ts";

function registry(functions: Record<string, FunctionDefinition>) {
  return install(Object.entries(functions).map(([name, def]) => ({ name, file: `functions/${name}.ts`, module: { default: def } })));
}

const functions = registry({
  announce: action({
    args: { text: v.string() },
    handler: async (ctx, { text }) => ctx.channels.publish("chat:1", { text }),
  }),
  announceCaught: action({
    handler: async (ctx) => {
      try {
        await ctx.channels.publish("news", 1);
        return "published";
      } catch (e) {
        return e instanceof PylonError ? `${e.code} ${e.message}` : "other";
      }
    },
  }),
  inMutation: mutation({ handler: async () => null }),
});

test("publish hands the channel and the data's JSON to the bridge and returns its answer", async () => {
  const shard = new FakeShard();
  const seen: [string, string][] = [];
  const bridge = {
    ...shard.bridge("action", ANONYMOUS),
    publish: async (channel: string, data: string) => {
      seen.push([channel, data]);
      return JSON.stringify({ ok: { id: 7, at: 1000 } });
    },
  };
  assert.deepEqual(open(await functions.run("announce", bridge, '{"text":"hi"}')), { ok: { id: 7, at: 1000 } });
  assert.deepEqual(seen, [["chat:1", '{"text":"hi"}']]);
});

test("a refusal is thrown with its code", async () => {
  const shard = new FakeShard();
  const bridge = {
    ...shard.bridge("action", ANONYMOUS),
    publish: async () => JSON.stringify({ err: { code: "FORBIDDEN", message: "FORBIDDEN: publishing to channel \"news\": not allowed" } }),
  };
  const got = open(await functions.run("announceCaught", bridge, "{}"));
  assert.deepEqual(got, { ok: 'FORBIDDEN FORBIDDEN: publishing to channel "news": not allowed' });
});

test("a bridge without publish fails the call", async () => {
  const shard = new FakeShard();
  const got = open(await functions.run("announce", shard.bridge("action", ANONYMOUS), '{"text":"x"}'));
  assert.equal((got as { err: { code: string } }).err.code, "FUNCTION_FAILED");
});
