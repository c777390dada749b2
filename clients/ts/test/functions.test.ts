// Server functions against the scripted server: `call` answered by
// `result` / `err` with its op, sent again with the same op after a
// reconnect; `watch` fed by `value`, sent again after a reconnect and
// stopped by `unsub`; both in postcard too; the app's code of a
// FUNCTION_ERROR; and `callHttp` against plain HTTP answers.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { callHttp, connect, PylonError, type ConnectOptions, type Json, type PylonClient } from "../dist/index.js";
import { FakeServer, type FakeConn, type HttpRequest } from "./support/server.ts";
import { sleep, until } from "./support/wait.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let server: FakeServer;
const clients: PylonClient[] = [];
before(async () => {
  server = await FakeServer.start();
});
after(async () => {
  for (const c of clients) c.close();
  await server.close();
});

/** A client on the shared server and its first (welcomed) connection. */
async function open(options: Partial<ConnectOptions> = {}): Promise<{ client: PylonClient; conn: FakeConn }> {
  const client = connect({ url: server.url, shard: "team-42", backoff: { initialMs: 1, maxMs: 1 }, keepaliveMs: 0, ...options });
  clients.push(client);
  const conn = await server.nextConnection();
  conn.welcome(0);
  await client.ready();
  return { client, conn };
}

test("call: a fresh op per call, args left out when null; resolved by the result with its op, rejected by the err with its op", async () => {
  const { client, conn } = await open();
  const errors: PylonError[] = [];
  client.on("error", (e) => errors.push(e));
  const move = client.call("moveCard", { cardId: "k1", column: "done", position: 0 });
  const summary = client.call("boardSummary");
  const m1 = await conn.expect("call");
  const m2 = await conn.expect("call");
  assert.match(m1.op, UUID);
  assert.match(m2.op, UUID);
  assert.notEqual(m1.op, m2.op);
  assert.deepEqual(m1, { type: "call", op: m1.op, name: "moveCard", args: { cardId: "k1", column: "done", position: 0 } });
  assert.deepEqual(m2, { type: "call", op: m2.op, name: "boardSummary" });

  // Answered out of order; a result for an op nobody waits for is ignored.
  conn.send({ type: "result", op: "someone-else", seq: 3, value: 1 });
  conn.send({ type: "result", op: m2.op, seq: 4, value: { todo: 3, done: 5 } });
  conn.send({ type: "err", code: "FUNCTION_ERROR", message: "CARD_LOCKED: card k1 is locked", op: m1.op });
  assert.deepEqual(await summary, { todo: 3, done: 5 });
  await assert.rejects(move, (e: unknown) => {
    assert.ok(e instanceof PylonError);
    assert.equal(e.code, "FUNCTION_ERROR");
    assert.equal(e.op, m1.op);
    assert.equal(e.appCode, "CARD_LOCKED");
    assert.equal(e.message, "CARD_LOCKED: card k1 is locked");
    return true;
  });

  // A given op id; one already pending (as a call or a mutation) is refused.
  const given = client.call("boardSummary", null, { opId: "op-1" });
  await assert.rejects(client.call("boardSummary", null, { opId: "op-1" }), (e: PylonError) => e.code === "BAD_REQUEST");
  await assert.rejects(client.mutate([], { opId: "op-1" }), (e: PylonError) => e.code === "BAD_REQUEST");
  assert.deepEqual(await conn.recv(), { type: "call", op: "op-1", name: "boardSummary" });
  conn.send({ type: "result", op: "op-1", seq: 4, value: null });
  assert.equal(await given, null);
  await sleep(10);
  assert.deepEqual(errors, [], "an answered call is no error event");
  client.close();
});

test("an unanswered call is sent again after a reconnect with the same op, in order among the mutations, and resolves once", async () => {
  const { client, conn } = await open();
  const before = client.mutate([{ type: "insert", entity: "Todo", row: { id: "a" } }], { optimistic: false, opId: "m-1" });
  let resolved = 0;
  const args = { cardId: "k1", column: "done" };
  const call = client.call("moveCard", args).then((v) => {
    resolved++;
    return v;
  });
  args.column = "changed later"; // the call keeps what it was given
  const later = client.mutate([{ type: "insert", entity: "Todo", row: { id: "b" } }], { optimistic: false, opId: "m-2" });
  await conn.expect("mut");
  const sent = await conn.expect("call");
  await conn.expect("mut");
  conn.drop();

  const conn2 = await server.nextConnection();
  conn2.welcome(1, "c-2");
  assert.equal((await conn2.expect("mut")).op, "m-1");
  assert.deepEqual(await conn2.recv(), sent, "the same call, same op id");
  assert.deepEqual(sent.args, { cardId: "k1", column: "done" });
  assert.equal((await conn2.expect("mut")).op, "m-2");
  // The first copy had run: the server answers with its first result, then (say) a stray second answer.
  conn2.send({ type: "ack", op: "m-1", seq: 1, dup: true });
  conn2.send({ type: "result", op: sent.op, seq: 2, value: { moved: true }, dup: true });
  conn2.send({ type: "result", op: sent.op, seq: 2, value: { moved: "again" }, dup: true });
  conn2.send({ type: "ack", op: "m-2", seq: 3 });
  assert.deepEqual(await call, { moved: true });
  await before;
  await later;
  await sleep(10);
  assert.equal(resolved, 1);
  assert.equal(conn2.unread, 0, "nothing sent twice");

  // A call made while disconnected waits for the welcome.
  conn2.drop();
  await until(() => client.state.state !== "live", "the drop");
  const offline = client.call("boardSummary", { board: "b1" }, { opId: "op-offline" });
  const conn3 = await server.nextConnection();
  conn3.welcome(3, "c-3");
  assert.deepEqual(await conn3.recv(), { type: "call", op: "op-offline", name: "boardSummary", args: { board: "b1" } });
  conn3.send({ type: "result", op: "op-offline", seq: 3, value: 7 });
  assert.equal(await offline, 7);
  client.close();
});

test("watch: values to onValue with their seq; sent again after a reconnect; close sends unsub and later values are ignored", async () => {
  const { client, conn } = await open();
  const seen: [Json, number][] = [];
  const errors: string[] = [];
  const w = client.watch("boardSummary", { board: "b1" }, (v, seq) => seen.push([v, seq]), (e) => errors.push(`${e.code} ${e.sub}`));
  const other = client.watch("count", null, () => {});
  assert.deepEqual(await conn.recv(), { type: "watch", id: "w1", name: "boardSummary", args: { board: "b1" } });
  assert.deepEqual(await conn.recv(), { type: "watch", id: "w2", name: "count" });
  conn.send({ type: "value", id: "w1", seq: 5, value: { todo: 3 } });
  conn.send({ type: "value", id: "w9", seq: 5, value: "not ours" });
  conn.send({ type: "value", id: "w1", seq: 6, value: { todo: 2 } });
  await until(() => seen.length === 2, "two values");
  assert.deepEqual(seen, [[{ todo: 3 }, 5], [{ todo: 2 }, 6]]);
  assert.deepEqual([w.value, w.seq], [{ todo: 2 }, 6]);

  // Its errors go to onError; the watch stays open.
  conn.send({ type: "err", code: "FUNCTION_FAILED", message: "boom", sub: "w1" });
  await until(() => errors.length === 1, "the err");
  assert.deepEqual(errors, ["FUNCTION_FAILED w1"]);
  assert.equal(w.error?.code, "FUNCTION_FAILED");
  // A watch without onError: its errors are the client's error event.
  const events: string[] = [];
  client.on("error", (e) => events.push(`${e.code} ${e.sub}`));
  conn.send({ type: "err", code: "BAD_ARGS", message: "args: expected null", sub: "w2" });
  await until(() => events.length === 1, "the error event");
  assert.deepEqual(events, ["BAD_ARGS w2"]);
  other.close();
  assert.deepEqual(await conn.recv(), { type: "unsub", id: "w2" });

  conn.drop();
  const conn2 = await server.nextConnection();
  conn2.welcome(6, "c-2");
  assert.deepEqual(await conn2.recv(), { type: "watch", id: "w1", name: "boardSummary", args: { board: "b1" } }, "only the open watch");
  conn2.send({ type: "value", id: "w1", seq: 7, value: { todo: 1 } });
  await until(() => seen.length === 3, "the value after the reconnect");
  assert.deepEqual(seen[2], [{ todo: 1 }, 7]);
  assert.equal(w.error, undefined, "a value clears the error");

  w.close();
  w.close();
  assert.deepEqual(await conn2.recv(), { type: "unsub", id: "w1" });
  conn2.send({ type: "value", id: "w1", seq: 8, value: { todo: 0 } });
  await sleep(20);
  assert.equal(seen.length, 3, "no value after close");
  assert.equal(conn2.unread, 0, "one unsub");
  assert.deepEqual(errors, ["FUNCTION_FAILED w1"]);
  client.close();
});

test("a watch opened while disconnected is sent at the welcome; closed meanwhile, it is not", async () => {
  const { client, conn } = await open();
  conn.drop();
  await until(() => client.state.state !== "live", "the drop");
  const kept = client.watch("boardSummary", null, () => {});
  client.watch("gone", null, () => {}).close();
  const conn2 = await server.nextConnection();
  conn2.welcome(0, "c-2");
  assert.deepEqual(await conn2.recv(), { type: "watch", id: kept.id, name: "boardSummary" });
  await sleep(20);
  assert.equal(conn2.unread, 0);
  client.close();
});

test("the client's close rejects pending calls with CLOSED and tells watches; call and watch refuse afterwards", async () => {
  const { client, conn } = await open();
  const call = client.call("slow");
  const heard: PylonError[] = [];
  const w = client.watch("boardSummary", null, () => {}, (e) => heard.push(e));
  await conn.expect("call");
  await conn.expect("watch");
  conn.close(4403, "forbidden");
  await assert.rejects(call, (e: PylonError) => e.code === "CLOSED" && e.closeCode === 4403);
  await until(() => heard.length === 1, "the watch hears the close");
  assert.equal(heard[0]!.code, "CLOSED");
  assert.equal(w.error?.code, "CLOSED");
  await assert.rejects(client.call("x"), (e: PylonError) => e.code === "CLOSED");
  assert.throws(() => client.watch("x", null, () => {}), (e: PylonError) => e.code === "CLOSED");
});

/** An unsigned JWT-shaped token (the client never verifies) expiring at `exp` (Unix seconds). */
function jwt(name: string, exp: number): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${part({ alg: "HS256" })}.${part({ sub: "ann", n: name, exp })}.sig`;
}

test("TOKEN_EXPIRED: a refused call and watch stay pending and go again after the renewal", async () => {
  const far = Math.floor(Date.now() / 1000) + 3600;
  let n = 0;
  const { client, conn } = await open({ token: () => jwt(`t${n++}`, far), renewBeforeMs: 0 });
  const errors: string[] = [];
  client.on("error", (e) => errors.push(e.code));
  const call = client.call("moveCard", { cardId: "k1" }, { opId: "op-c" });
  const seen: Json[] = [];
  const onError: string[] = [];
  client.watch("boardSummary", null, (v) => seen.push(v), (e) => onError.push(e.code));
  await conn.expect("call");
  await conn.expect("watch");
  conn.send({ type: "err", code: "UNAUTHORIZED", message: "TOKEN_EXPIRED: ...", op: "op-c" });
  assert.equal((await conn.expect("hello")).token, jwt("t1", far));
  conn.send({ type: "err", code: "UNAUTHORIZED", message: "TOKEN_EXPIRED: ...", sub: "w1" });
  await sleep(20);

  conn.send({ type: "welcome", protocol: "pylon.v1", shard: "team-42", seq: 3, conn: "c-1", encoding: "json" });
  assert.deepEqual(await conn.recv(), { type: "call", op: "op-c", name: "moveCard", args: { cardId: "k1" } });
  assert.deepEqual(await conn.recv(), { type: "watch", id: "w1", name: "boardSummary" });
  conn.send({ type: "result", op: "op-c", seq: 4, value: true });
  conn.send({ type: "value", id: "w1", seq: 4, value: 9 });
  assert.equal(await call, true);
  await until(() => seen.length === 1, "the value");
  assert.deepEqual(errors, [], "a handled expiry is no error");
  assert.deepEqual(onError, []);
  client.close();
});

test("postcard: call, result, err, watch and value in binary frames", async () => {
  const { client, conn } = await open({ encoding: "postcard" });
  assert.equal(conn.encoding, "postcard");
  const call = client.call("moveCard", { cardId: "k1", position: 2 }, { opId: "c-1" });
  const refused = client.call("boardSummary", null, { opId: "c-2" });
  const seen: [Json, number][] = [];
  client.watch("boardSummary", { board: "b1" }, (v, seq) => seen.push([v, seq]));
  assert.deepEqual(await conn.recv(), { type: "call", op: "c-1", name: "moveCard", args: { cardId: "k1", position: 2 } });
  assert.deepEqual(await conn.recv(), { type: "call", op: "c-2", name: "boardSummary" });
  assert.deepEqual(await conn.recv(), { type: "watch", id: "w1", name: "boardSummary", args: { board: "b1" } });
  conn.send({ type: "result", op: "c-1", seq: 57, value: { moved: true }, dup: false });
  conn.send({ type: "err", code: "UNKNOWN_FUNCTION", message: 'no function "boardSummary" in this app', op: "c-2" });
  conn.send({ type: "value", id: "w1", seq: 58, value: [3, "five"] });
  assert.deepEqual(await call, { moved: true });
  await assert.rejects(refused, (e: PylonError) => e.code === "UNKNOWN_FUNCTION" && e.appCode === undefined);
  await until(() => seen.length === 1, "the value");
  assert.deepEqual(seen, [[[3, "five"], 58]]);
  client.close();
});

test("appCode: the app's code of a FUNCTION_ERROR, undefined otherwise", () => {
  const e = (code: string, message: string) => new PylonError(code, message).appCode;
  assert.equal(e("FUNCTION_ERROR", "CARD_LOCKED: card k1 is locked"), "CARD_LOCKED");
  assert.equal(e("FUNCTION_ERROR", "APP_ERROR: the code was not UPPER_SNAKE"), "APP_ERROR");
  assert.equal(e("FUNCTION_ERROR", "E2: "), "E2");
  assert.equal(e("FUNCTION_ERROR", "no code here"), undefined);
  assert.equal(e("FUNCTION_ERROR", "lower_case: x"), undefined);
  assert.equal(e("BAD_ARGS", "ARGS: args.items[2].qty: expected a number"), undefined, "only for FUNCTION_ERROR");
});

test("callHttp: POST /v1/shards/{shard}/fn/{name}?op= with the args as JSON and the bearer token; {value, seq, dup}; errors with code, status and appCode", async () => {
  const answers: { status: number; body?: unknown }[] = [
    { status: 200, body: { value: { moved: true }, seq: 57, dup: true } },
    { status: 200, body: { value: null } },
    { status: 400, body: { error: { code: "FUNCTION_ERROR", message: "CARD_LOCKED: card k1 is locked" } } },
    { status: 502 },
    { status: 200, body: { seq: 1 } },
  ];
  const http = await FakeServer.start({ http: () => answers.shift() });
  const seen = (): HttpRequest => http.requests.at(-1)!;
  try {
    const r = await callHttp(http.url.replace("ws:", "http:") + "/", "team 42", "moveCard", { cardId: "k1" }, { token: "tok", op: "op 1" });
    assert.deepEqual(r, { value: { moved: true }, seq: 57, dup: true });
    assert.equal(seen().method, "POST");
    assert.equal(seen().path, "/v1/shards/team%2042/fn/moveCard?op=op%201");
    assert.equal(seen().headers.authorization, "Bearer tok");
    assert.equal(seen().headers["content-type"], "application/json");
    assert.deepEqual(JSON.parse(seen().body), { cardId: "k1" });

    // An action answers only {value}; no op, no token, no args. A shard
    // name's `:` stays as it is (the router decodes nothing).
    assert.deepEqual(await callHttp(http.url, "team:acme", "sendMail"), { value: null, seq: undefined, dup: false });
    assert.equal(seen().path, "/v1/shards/team:acme/fn/sendMail");
    assert.equal(seen().headers.authorization, undefined);
    assert.equal(seen().body, "null");

    await assert.rejects(callHttp(http.url, "s", "moveCard", {}, { op: "op-2" }), (e: unknown) => {
      assert.ok(e instanceof PylonError);
      assert.deepEqual([e.code, e.status, e.appCode, e.op], ["FUNCTION_ERROR", 400, "CARD_LOCKED", "op-2"]);
      return true;
    });
    await assert.rejects(callHttp(http.url, "s", "f"), (e: PylonError) => e.code === "HTTP_502" && e.status === 502);
    await assert.rejects(callHttp(http.url, "s", "f"), (e: PylonError) => e.code === "BAD_RESPONSE" && e.status === 200);
  } finally {
    await http.close();
  }
  // Nobody listens there any more: no answer at all.
  await assert.rejects(callHttp(http.url, "s", "f"), (e: PylonError) => e.code === "UNAVAILABLE" && e.status === undefined);
});
