// The board's functions (examples/board/functions), bundled by the build,
// against a fake bridge: what each one reads and writes.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { FunctionsGlobal } from "../src/runtime.ts";
import { ANONYMOUS, FakeShard, open } from "./support/fake-bridge.ts";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const out = mkdtempSync(join(tmpdir(), "pylon-functions-board-"));
let functions: FunctionsGlobal;

let lookups: string[] = [];
const service = createServer((req, res) => {
  const q = new URL(req.url ?? "/", "http://x").searchParams.get("q") ?? "";
  lookups.push(q);
  if (q === "broken") {
    res.statusCode = 503;
    res.end("down for now");
  } else res.end(`answer for ${q}\n`);
});
let serviceUrl = "";

before(async () => {
  const built = spawnSync(process.execPath, [join(root, "scripts/build-functions.mjs"), join(root, "examples/board"), out], { encoding: "utf8" });
  assert.equal(built.status, 0, built.stderr);
  copyFileSync(join(out, "functions.js"), join(out, "functions.mjs"));
  await import(pathToFileURL(join(out, "functions.mjs")).href);
  functions = (globalThis as unknown as { __pylon_functions: FunctionsGlobal }).__pylon_functions;
  await new Promise<void>((done) => service.listen(0, "127.0.0.1", done));
  serviceUrl = `http://127.0.0.1:${(service.address() as AddressInfo).port}`;
});
after(() => {
  service.close();
  rmSync(out, { recursive: true, force: true });
});

const alice = { userId: "alice", tenantId: null, roles: [], isAdmin: false };

async function run(shard: FakeShard, kind: "query" | "mutation" | "action", name: string, args: object = {}, auth = ANONYMOUS) {
  const bridge = shard.bridge(kind, auth, (k, n, a) => functions.run(n, shard.bridge(k, auth), a));
  return open(await functions.run(name, bridge, JSON.stringify(args)));
}

/** Card titles by column, in position order, with their positions. */
function board(shard: FakeShard): Record<string, string[]> {
  const columns: Record<string, string[]> = {};
  const cards = shard
    .rows("Card")
    .filter((card) => card.archived !== true)
    .sort((a, b) => (a.position as number) - (b.position as number));
  for (const card of cards) (columns[(card.column as string) ?? "todo"] ??= []).push(`${card.title}@${card.position}`);
  return columns;
}

test("the board has its twenty-two functions", () => {
  assert.deepEqual(functions.list(), [
    { name: "addCardAndNotify", kind: "mutation", trusted: false },
    { name: "addCardChecked", kind: "mutation", trusted: false },
    { name: "addCardLater", kind: "mutation", trusted: false },
    { name: "announce", kind: "action", trusted: false },
    { name: "archiveColumn", kind: "mutation", trusted: false },
    { name: "boardSummary", kind: "query", trusted: false },
    { name: "cardById", kind: "query", trusted: false },
    { name: "checkIn", kind: "action", trusted: false },
    { name: "checkOut", kind: "action", trusted: false },
    { name: "failAfterTwoWrites", kind: "mutation", trusted: false },
    { name: "fetchInMutation", kind: "mutation", trusted: false },
    { name: "moveCard", kind: "mutation", trusted: false },
    { name: "noopJob", kind: "action", trusted: false },
    { name: "noopMutation", kind: "mutation", trusted: false },
    { name: "notifyCard", kind: "action", trusted: false },
    { name: "onboardClose", kind: "mutation", trusted: false },
    { name: "onboardOpen", kind: "mutation", trusted: false },
    { name: "rateLimitedLookup", kind: "action", trusted: false },
    { name: "renameCard", kind: "mutation", trusted: false },
    { name: "requireFixedTitle", kind: "action", trusted: false },
    { name: "stamp", kind: "mutation", trusted: false },
    { name: "stampLater", kind: "mutation", trusted: false },
  ]);
});

test("addCardChecked checks the title and appends the card to its column", async () => {
  const shard = new FakeShard();
  const first = await run(shard, "mutation", "addCardChecked", { title: "  first  " }, alice);
  assert.equal(first.ok, "r1");
  const card = shard.rows("Card")[0] as Record<string, unknown>;
  assert.equal(card.title, "first");
  assert.equal(card.done, false);
  assert.equal(card.position, 0);
  assert.equal(card.author, "alice");
  assert.ok(!Number.isNaN(Date.parse(card.createdAt as string)));
  assert.equal((await run(shard, "mutation", "addCardChecked", { title: "second" })).ok, "r2");
  assert.equal(await run(shard, "mutation", "addCardChecked", { title: "elsewhere", column: "doing" }).then((r) => r.ok), "r3");
  assert.deepEqual(board(shard), { todo: ["first@0", "second@1"], doing: ["elsewhere@0"] });
  assert.deepEqual(await run(shard, "mutation", "addCardChecked", { title: "x".repeat(201) }), {
    err: { code: "FUNCTION_ERROR", message: "TITLE_TOO_LONG: a title has at most 200 characters, not 201" },
  });
  assert.deepEqual(await run(shard, "mutation", "addCardChecked", { title: "   " }), {
    err: { code: "FUNCTION_ERROR", message: "EMPTY_TITLE: a card needs a title" },
  });
  assert.equal((await run(shard, "mutation", "addCardChecked", { title: "x".repeat(200) })).ok, "r4");
});

async function seed(shard: FakeShard) {
  for (const title of ["t0", "t1", "t2"]) await run(shard, "mutation", "addCardChecked", { title });
  for (const title of ["d0", "d1"]) await run(shard, "mutation", "addCardChecked", { title, column: "doing" });
  const ids = Object.fromEntries(shard.rows("Card").map((c) => [c.title, c.id]));
  return ids as Record<string, string>;
}

test("moveCard moves a card and renumbers both columns 0..n-1", async () => {
  const shard = new FakeShard();
  const ids = await seed(shard);
  assert.deepEqual(await run(shard, "mutation", "moveCard", { cardId: ids.t0, column: "doing", position: 1 }), {
    ok: { moved: true, column: "doing", position: 1 },
  });
  assert.deepEqual(board(shard), { todo: ["t1@0", "t2@1"], doing: ["d0@0", "t0@1", "d1@2"] });
  // Within a column, and past the end.
  await run(shard, "mutation", "moveCard", { cardId: ids.d1, column: "doing", position: 0 });
  assert.deepEqual(board(shard), { todo: ["t1@0", "t2@1"], doing: ["d1@0", "d0@1", "t0@2"] });
  await run(shard, "mutation", "moveCard", { cardId: ids.d1, column: "todo", position: 99 });
  assert.deepEqual(board(shard), { todo: ["t1@0", "t2@1", "d1@2"], doing: ["d0@0", "t0@1"] });
  assert.deepEqual(await run(shard, "mutation", "moveCard", { cardId: "nope", column: "doing", position: 0 }), {
    err: { code: "FUNCTION_ERROR", message: "NOT_FOUND: no card nope" },
  });
  assert.deepEqual((await run(shard, "mutation", "moveCard", { cardId: ids.t1, column: "doing", position: "1" })).err, {
    code: "BAD_ARGS",
    message: 'args.position: expected an integer, got "1"',
  });
});

test("boardSummary counts per column; archiveColumn archives one column's cards", async () => {
  const shard = new FakeShard();
  const ids = await seed(shard);
  shard.db("update", JSON.stringify({ entity: "Card", id: ids.d0, set: { done: true } }));
  assert.deepEqual(await run(shard, "query", "boardSummary"), {
    ok: { total: 5, done: 1, columns: { todo: { cards: 3, done: 0 }, doing: { cards: 2, done: 1 } }, capped: false },
  });
  assert.deepEqual(await run(shard, "mutation", "archiveColumn", { column: "doing" }), { ok: { archived: 2 } });
  assert.deepEqual(board(shard), { todo: ["t0@0", "t1@1", "t2@2"] });
  assert.deepEqual(await run(shard, "mutation", "archiveColumn", { column: "todo" }), { ok: { archived: 3 } });
  assert.deepEqual(await run(shard, "query", "boardSummary"), { ok: { total: 0, done: 0, columns: {}, capped: false } });
  // Archived, not deleted.
  assert.equal(shard.rows("Card").length, 5);
});

test("failAfterTwoWrites writes twice, then fails with its own code", async () => {
  const shard = new FakeShard();
  assert.deepEqual(await run(shard, "mutation", "failAfterTwoWrites"), {
    err: { code: "FUNCTION_ERROR", message: "ON_PURPOSE: failed after two writes" },
  });
  assert.deepEqual(shard.log.map((e) => e.op), ["insert", "insert"]);
});

test("addCardAndNotify adds a card and enqueues notifyCard for it; failAfter throws after enqueuing", async () => {
  const shard = new FakeShard();
  await seed(shard);
  assert.deepEqual(await run(shard, "mutation", "addCardAndNotify", { title: " ping " }, alice), { ok: { id: "r6", job: "job1" } });
  assert.deepEqual(board(shard), { todo: ["t0@0", "t1@1", "t2@2", "ping@3"], doing: ["d0@0", "d1@1"] });
  assert.equal(shard.rows("Card")[5]?.author, "alice");
  assert.deepEqual([...shard.jobs.values()], [{ name: "notifyCard", payload: { id: "r6" }, queue: "default" }]);
  assert.deepEqual((await run(shard, "mutation", "addCardAndNotify", { title: "pong", column: "doing" })).ok, { id: "r7", job: "job2" });
  assert.deepEqual(board(shard).doing, ["d0@0", "d1@1", "pong@2"]);
  // The fake bridge does not roll back (the shard does: tests/shard_jobs.rs):
  // here the failure is the call's result, after the enqueue was asked for.
  assert.deepEqual(await run(shard, "mutation", "addCardAndNotify", { title: "never", failAfter: true }), {
    err: { code: "FUNCTION_ERROR", message: "ON_PURPOSE: failed after enqueuing" },
  });
  assert.deepEqual(shard.log.slice(-2).map((e) => e.op), ["insert", "enqueue"]);
  assert.deepEqual((await run(shard, "mutation", "addCardAndNotify", { title: "  " })).err?.code, "FUNCTION_ERROR");
});

test("notifyCard, the job's handler, moves the card to the column notified", async () => {
  const shard = new FakeShard();
  const ids = await seed(shard);
  assert.deepEqual(await run(shard, "action", "notifyCard", { id: ids.t1 }), { ok: { moved: true, column: "notified", position: 0 } });
  assert.deepEqual(board(shard), { todo: ["t0@0", "t2@1"], doing: ["d0@0", "d1@1"], notified: ["t1@0"] });
  assert.deepEqual(await run(shard, "action", "notifyCard", { id: "nope" }), { err: { code: "FUNCTION_ERROR", message: "NOT_FOUND: no card nope" } });
});

test("fetchInMutation fails with MUTATION_IO", async () => {
  assert.equal((await run(new FakeShard(), "mutation", "fetchInMutation")).err?.code, "MUTATION_IO");
});

test("rateLimitedLookup asks the local service, records a card, and allows 5 calls a minute per user", async () => {
  lookups = [];
  const shard = new FakeShard();
  const bob = { ...alice, userId: "bob" };
  assert.deepEqual(await run(shard, "action", "rateLimitedLookup", { serviceUrl, q: "q0" }, bob), {
    ok: { said: "answer for q0", cardId: "r1" },
  });
  assert.equal(shard.rows("Card")[0]?.title, "q0: answer for q0");
  for (let i = 1; i < 5; i++) assert.ok((await run(shard, "action", "rateLimitedLookup", { serviceUrl, q: `q${i}` }, bob)).ok);
  assert.deepEqual(await run(shard, "action", "rateLimitedLookup", { serviceUrl, q: "q5" }, bob), {
    err: { code: "FUNCTION_ERROR", message: "RATE_LIMITED: at most 5 lookups a minute" },
  });
  assert.ok((await run(shard, "action", "rateLimitedLookup", { serviceUrl, q: "other" }, { ...alice, userId: "carol" })).ok);
  assert.deepEqual(lookups, ["q0", "q1", "q2", "q3", "q4", "other"]);
  assert.deepEqual(await run(shard, "action", "rateLimitedLookup", { serviceUrl, q: "broken" }, { ...alice, userId: "dave" }), {
    err: { code: "FUNCTION_ERROR", message: "SERVICE_FAILED: the service answered 503: down for now" },
  });
  assert.deepEqual(await run(shard, "action", "rateLimitedLookup", { serviceUrl: "http://example.com/", q: "x" }, alice), {
    err: { code: "FUNCTION_ERROR", message: "BAD_SERVICE_URL: the service must be at http://127.0.0.1:<port>" },
  });
  assert.equal(lookups.length, 7);
  assert.equal(shard.rows("Card").length, 6);
});

test("the jobs bench's functions: noopJob and noopMutation answer their n; stampLater schedules stamp, which records due and run times", async () => {
  const shard = new FakeShard();
  assert.deepEqual(await run(shard, "action", "noopJob", { n: 7 }), { ok: { n: 7 } });
  assert.deepEqual(await run(shard, "mutation", "noopMutation", { n: 8 }), { ok: { n: 8 } });
  assert.equal(shard.rows("Card").length, 0);
  const before = Date.now();
  assert.equal((await run(shard, "mutation", "stampLater", { delayMs: 2500, tag: "t1" })).ok, "s1");
  const call = shard.scheduled.get("s1") as { delayMs: number; name: string; args: { dueMs: number; tag: string } };
  assert.equal(call.delayMs, 2500);
  assert.equal(call.name, "stamp");
  assert.equal(call.args.tag, "t1");
  assert.ok(call.args.dueMs >= before + 2500 && call.args.dueMs <= Date.now() + 2500, `due ${call.args.dueMs}`);
  assert.equal((await run(shard, "mutation", "stamp", call.args)).ok, "r1");
  const card = shard.rows("Card")[0] as Record<string, unknown>;
  assert.equal(card.column, "t1");
  assert.equal(card.position, call.args.dueMs);
  const ran = Number((card.title as string).replace("ran ", ""));
  assert.ok(ran >= before && ran <= Date.now(), card.title as string);
  assert.equal(Date.parse(card.createdAt as string), ran);
  assert.equal((await run(shard, "mutation", "stampLater", { delayMs: -1, tag: "t1" })).err?.message, "BAD_DELAY: a delay is 0 to 24 hours, in ms");
});

test("checkIn joins the caller with its status, tells the room and answers its size; anonymous asks nothing", async () => {
  const shard = new FakeShard();
  const seen: unknown[] = [];
  const room = async (op: string, name: string, body: string) => {
    seen.push([op, name, JSON.parse(body)]);
    return JSON.stringify({ ok: op === "get" ? { room: name, size: 3, members: [], sockets: 2 } : {} });
  };
  const bridge = (auth: typeof alice | typeof ANONYMOUS) => ({ ...shard.bridge("action", auth), room });
  const args = JSON.stringify({ room: "lobby", status: "here", ttlMs: 60_000 });
  assert.deepEqual(open(await functions.run("checkIn", bridge(alice), args)), { ok: { size: 3 } });
  assert.deepEqual(seen, [
    ["join", "lobby", { member: "alice", presence: { status: "here" }, ttlMs: 60_000 }],
    ["broadcast", "lobby", { topic: "checkIn", data: { member: "alice", status: "here" } }],
    ["get", "lobby", null],
  ]);
  seen.length = 0;
  const got = open(await functions.run("checkIn", bridge(ANONYMOUS), args)) as { err?: { code: string; message: string } };
  assert.equal(got.err?.code, "FUNCTION_ERROR");
  assert.match(got.err?.message ?? "", /^SIGN_IN: /);
  assert.deepEqual(seen, []);
});

test("checkOut sets the caller's presence and looks for the room in the list, or leaves; anonymous asks nothing", async () => {
  const shard = new FakeShard();
  const seen: unknown[] = [];
  const room = async (op: string, name: string, body: string) => {
    seen.push([op, name, JSON.parse(body)]);
    const ok =
      op === "list" ? { rooms: [{ room: "lobby", members: 1, updated: null }], next: null } : op === "leave" ? { member: "alice", left: true } : { member: "alice" };
    return JSON.stringify({ ok });
  };
  const bridge = (auth: typeof alice | typeof ANONYMOUS) => ({ ...shard.bridge("action", auth), room });
  const stay = JSON.stringify({ room: "lobby", status: "away", leave: false });
  assert.deepEqual(open(await functions.run("checkOut", bridge(alice), stay)), { ok: { listed: true } });
  const elsewhere = JSON.stringify({ room: "kitchen", status: "away", leave: false });
  assert.deepEqual(open(await functions.run("checkOut", bridge(alice), elsewhere)), { ok: { listed: false } });
  assert.deepEqual(open(await functions.run("checkOut", bridge(alice), JSON.stringify({ room: "lobby", status: "", leave: true }))), {
    ok: { left: true },
  });
  assert.deepEqual(seen, [
    ["presence", "lobby", { member: "alice", presence: { status: "away" } }],
    ["list", "", { limit: 1000 }],
    ["presence", "kitchen", { member: "alice", presence: { status: "away" } }],
    ["list", "", { limit: 1000 }],
    ["leave", "lobby", { member: "alice" }],
  ]);
  seen.length = 0;
  const got = open(await functions.run("checkOut", bridge(ANONYMOUS), stay)) as { err?: { code: string; message: string } };
  assert.equal(got.err?.code, "FUNCTION_ERROR");
  assert.match(got.err?.message ?? "", /^SIGN_IN: /);
  assert.deepEqual(seen, []);
});
