// jobs(), workflows() and scheduler() against a scripted fetch: each
// method's route, method, body and headers, what it returns, and how a
// refusal, a malformed answer and a network failure are reported.
import assert from "node:assert/strict";
import { test } from "node:test";
import { jobs, PylonError, scheduler, workflows, type Json } from "../dist/index.js";

interface Seen {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: Json | undefined;
}

/** A fetch that records each request and answers the next scripted `[status, body]` (a string is sent as it is). */
function scripted(answers: [number, unknown][]): { fetch: typeof fetch; seen: Seen[] } {
  const seen: Seen[] = [];
  const fake = async (url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const headers = (init?.headers ?? {}) as Record<string, string>;
    const body = typeof init?.body === "string" ? (JSON.parse(init.body) as Json) : undefined;
    seen.push({ url: String(url), method: init?.method ?? "GET", headers, body });
    const next = answers.shift();
    if (next === undefined) throw new Error("no answer scripted");
    const [status, answer] = next;
    return new Response(typeof answer === "string" ? answer : JSON.stringify(answer), { status });
  };
  return { fetch: fake as typeof fetch, seen };
}

const JOB = { id: "j1", name: "moveCard", status: "queued", attempts: 0 };
const STATE = { id: "wf-1", workflow: "onboard", status: "running", step: 0, history: [] };

test("jobs: each method's route, method and body, with the bearer token; the answers as given", async () => {
  const { fetch, seen } = scripted([
    [201, { id: "j1", created: true, status: "queued" }],
    [200, JOB],
    [200, { jobs: [JOB] }],
    [200, { jobs: [] }],
    [200, { queues: { default: { done: 2 } }, unsent: 0 }],
    [200, JOB],
    [200, { ...JOB, status: "cancelled" }],
  ]);
  const j = jobs("ws://127.0.0.1:8787/", { token: async () => "tok", fetch });

  const enqueued = await j.enqueue("moveCard", { cardId: "k1" }, { delayMs: 3000, shard: "team:42", key: "k", priority: 9 });
  assert.deepEqual(enqueued, { id: "j1", created: true, status: "queued" });
  assert.equal(seen[0]!.url, "http://127.0.0.1:8787/v1/jobs");
  assert.equal(seen[0]!.method, "POST");
  assert.equal(seen[0]!.headers.authorization, "Bearer tok");
  assert.equal(seen[0]!.headers["content-type"], "application/json");
  // Only the options given: the server's defaults apply to the rest.
  assert.deepEqual(seen[0]!.body, { name: "moveCard", payload: { cardId: "k1" }, delayMs: 3000, shard: "team:42", key: "k", priority: 9 });

  assert.deepEqual(await j.get("job/1:a"), JOB);
  assert.equal(seen[1]!.url, "http://127.0.0.1:8787/v1/jobs/job%2F1:a");
  assert.equal(seen[1]!.method, "GET");
  assert.equal(seen[1]!.body, undefined);
  assert.equal(seen[1]!.headers["content-type"], undefined, "no body, no content type");

  assert.deepEqual(await j.list({ status: "dead", queue: "slow", name: "a b", limit: 500 }), [JOB]);
  assert.equal(seen[2]!.url, "http://127.0.0.1:8787/v1/jobs?status=dead&queue=slow&name=a+b&limit=500");
  assert.deepEqual(await j.list(), []);
  assert.equal(seen[3]!.url, "http://127.0.0.1:8787/v1/jobs");

  assert.deepEqual(await j.stats(), { queues: { default: { done: 2 } }, unsent: 0 });
  assert.equal(seen[4]!.url, "http://127.0.0.1:8787/v1/jobs/stats");

  await j.retry("j1");
  await j.cancel("j1");
  assert.deepEqual(
    seen.slice(5).map((s) => [s.method, s.url, s.body]),
    [
      ["POST", "http://127.0.0.1:8787/v1/jobs/j1/retry", {}],
      ["POST", "http://127.0.0.1:8787/v1/jobs/j1/cancel", {}],
    ],
  );
});

test("jobs: enqueue without payload or options sends a null payload and nothing else; no token, no authorization", async () => {
  const { fetch, seen } = scripted([[201, { id: "j2", created: true, status: "queued" }], [200, JOB]]);
  await jobs("http://h", { fetch }).enqueue("sweep");
  assert.deepEqual(seen[0]!.body, { name: "sweep", payload: null });
  assert.equal(seen[0]!.headers.authorization, undefined);
  await jobs("http://h", { fetch, token: "", headers: { "x-csrf": "c" } }).get("j2");
  assert.equal(seen[1]!.headers.authorization, undefined, "an empty token is none");
  assert.equal(seen[1]!.headers["x-csrf"], "c");
});

test("workflows: start, get, list, sendEvent, cancel, advance", async () => {
  const { fetch, seen } = scripted([
    [201, STATE],
    [201, STATE],
    [200, { ...STATE, status: "waiting", waitingFor: "approved" }],
    [200, { workflows: [{ id: "wf-1", workflow: "onboard", status: "waiting", step: 2, startedBy: "ann", createdMs: 1, updatedMs: 2 }] }],
    [202, STATE],
    [200, { ...STATE, status: "cancelled" }],
    [200, STATE],
  ]);
  const w = workflows("http://127.0.0.1:9", { token: "t", fetch });

  assert.deepEqual(await w.start("onboard", { title: "x" }, { shard: "s1" }), STATE);
  assert.deepEqual([seen[0]!.method, seen[0]!.url], ["POST", "http://127.0.0.1:9/v1/workflows"]);
  assert.deepEqual(seen[0]!.body, { workflow: "onboard", input: { title: "x" }, shard: "s1" });
  await w.start("onboard", undefined, { id: "wf:mine" });
  assert.deepEqual(seen[1]!.body, { workflow: "onboard", input: null, id: "wf:mine" });

  assert.equal((await w.get("wf:1")).waitingFor, "approved");
  assert.deepEqual([seen[2]!.method, seen[2]!.url], ["GET", "http://127.0.0.1:9/v1/workflows/wf:1"]);

  const listed = await w.list({ workflow: "onboard", status: "waiting", limit: 5 });
  assert.equal(listed[0]!.startedBy, "ann");
  assert.equal(seen[3]!.url, "http://127.0.0.1:9/v1/workflows?workflow=onboard&status=waiting&limit=5");

  await w.sendEvent("wf-1", "approved", { by: "ts" });
  assert.deepEqual([seen[4]!.method, seen[4]!.url, seen[4]!.body], ["POST", "http://127.0.0.1:9/v1/workflows/wf-1/events", { name: "approved", payload: { by: "ts" } }]);
  assert.equal((await w.cancel("wf-1")).status, "cancelled");
  await w.advance("wf-1");
  assert.deepEqual(
    seen.slice(5).map((s) => [s.method, s.url, s.body, s.headers.authorization]),
    [
      ["POST", "http://127.0.0.1:9/v1/workflows/wf-1/cancel", {}, "Bearer t"],
      ["POST", "http://127.0.0.1:9/v1/workflows/wf-1/advance", {}, "Bearer t"],
    ],
  );
});

test("scheduler: list and trigger", async () => {
  const entry = { name: "tidyTick", cron: "*/30 * * * *", run: "addCardChecked", args: {}, shard: "cron-board", lastRuns: null };
  const { fetch, seen } = scripted([
    [200, { crons: [entry] }],
    [200, { ok: true, value: "c1" }],
  ]);
  const s = scheduler("http://h/", { token: "admin", fetch });
  assert.deepEqual(await s.list(), [entry]);
  assert.deepEqual([seen[0]!.method, seen[0]!.url], ["GET", "http://h/v1/crons"]);
  assert.deepEqual(await s.trigger("tidy Tick"), { ok: true, value: "c1" });
  assert.deepEqual([seen[1]!.method, seen[1]!.url, seen[1]!.body], ["POST", "http://h/v1/crons/tidy%20Tick/run", {}]);
});

test("errors: the server's code and status; HTTP_<status> without the API's body; BAD_RESPONSE; UNAVAILABLE", async () => {
  const { fetch } = scripted([
    [403, { error: { code: "FORBIDDEN", message: "listing jobs: not allowed for this caller" } }],
    [409, { error: { code: "WORKFLOW_FINISHED", message: "it is completed" } }],
    [502, "<html>bad gateway</html>"],
    [200, "not json"],
    [200, { jobs: "not a list" }],
    [200, [1, 2]],
  ]);
  const j = jobs("http://h", { fetch });
  await assert.rejects(j.list(), (e: unknown) => {
    assert.ok(e instanceof PylonError);
    assert.deepEqual([e.code, e.status, e.message], ["FORBIDDEN", 403, "listing jobs: not allowed for this caller"]);
    return true;
  });
  await assert.rejects(workflows("http://h", { fetch }).sendEvent("wf-1", "approved"), (e: PylonError) => e.code === "WORKFLOW_FINISHED" && e.status === 409);
  await assert.rejects(j.stats(), (e: PylonError) => e.code === "HTTP_502" && e.status === 502);
  await assert.rejects(j.get("j1"), (e: PylonError) => e.code === "BAD_RESPONSE" && e.status === 200);
  await assert.rejects(j.list(), (e: PylonError) => e.code === "BAD_RESPONSE");
  await assert.rejects(scheduler("http://h", { fetch }).trigger("x"), (e: PylonError) => e.code === "BAD_RESPONSE");

  const down = (async () => {
    throw new TypeError("fetch failed");
  }) as typeof fetch;
  await assert.rejects(jobs("http://h", { fetch: down }).enqueue("x"), (e: PylonError) => {
    assert.equal(e.code, "UNAVAILABLE");
    assert.equal(e.status, undefined);
    assert.match(e.message, /POST \/v1\/jobs: TypeError: fetch failed/);
    return true;
  });
});
