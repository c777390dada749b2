import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { connect, PylonError, type ConnectionState, type ConnectOptions, type PylonClient, type Row } from "../dist/index.js";
import { FakeServer, type FakeConn } from "./support/server.ts";
import { sleep, until } from "./support/wait.ts";

const ids = (rows: readonly Row[]) => rows.map((r) => r.id);

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
async function open(options: Partial<ConnectOptions> = {}, seq = 0): Promise<{ client: PylonClient; conn: FakeConn }> {
  const client = connect({
    url: server.url,
    shard: "team-42",
    backoff: { initialMs: 4, maxMs: 20 },
    keepaliveMs: 0,
    ...options,
  });
  clients.push(client);
  const conn = await server.nextConnection();
  conn.welcome(seq);
  await client.ready();
  return { client, conn };
}

test("a shard name's colon stays as it is in the socket's path (team:acme)", async () => {
  const client = connect({ url: server.url, shard: "team:acme", keepaliveMs: 0 });
  clients.push(client);
  const conn = await server.nextConnection();
  assert.equal(conn.path, "/v1/shards/team:acme/ws");
  client.close();
});

test("connects to /v1/shards/{shard}/ws offering pylon.v1.json and bearer.<token>; goes live on welcome", async () => {
  const states: string[] = [];
  const client = connect({ url: server.url.replace("ws:", "http:") + "/", shard: "team 42", token: "tok.en-1", keepaliveMs: 0 });
  clients.push(client);
  client.on("state", (s) => states.push(s.state));
  const conn = await server.nextConnection();
  assert.equal(conn.path, "/v1/shards/team%2042/ws");
  assert.deepEqual(conn.protocols, ["pylon.v1.json", "bearer.tok.en-1"]);
  conn.welcome(41, "c-8f2a");
  await client.ready();
  assert.deepEqual(client.state, { state: "live", conn: "c-8f2a", seq: 41 });
  assert.equal(client.welcome?.shard, "team-42");
  assert.deepEqual(states, ["live"], "connecting was the initial state; live follows the welcome");
  client.close();
  assert.equal((await conn.closed()).code, 1000);
  assert.equal(client.state.state, "closed");
});

test("snap, then diffs applied by position; changed and removed rows; count", async () => {
  const { client, conn } = await open();
  const seen: { ids: string[]; cause: string; seq: number | undefined }[] = [];
  const sub = client.subscribe({ entity: "Todo", where: { done: false }, order: ["-priority"], limit: 20, count: true }, (rows, info) =>
    seen.push({ ids: ids(rows), cause: info.cause, seq: info.seq }),
  );
  assert.deepEqual(await conn.recv(), {
    type: "sub",
    id: "s1",
    entity: "Todo",
    where: { done: false },
    order: ["-priority"],
    limit: 20,
    count: true,
  });
  conn.send({ type: "snap", id: "s1", seq: 41, rows: [{ id: "t1", priority: 3 }, { id: "t2", priority: 2 }], count: 2 });
  assert.deepEqual(ids(await sub.ready()), ["t1", "t2"]);
  assert.equal(sub.count, 2);
  conn.send({
    type: "diff",
    id: "s1",
    from: 41,
    seq: 44,
    added: [{ pos: 0, row: { id: "t9", priority: 5 } }],
    changed: [{ pos: 1, row: { id: "t2", priority: 4 } }],
    removed: ["t1"],
    count: 2,
  });
  await until(() => sub.seq === 44, "the diff is applied");
  assert.deepEqual(sub.rows, [{ id: "t9", priority: 5 }, { id: "t2", priority: 4 }]);
  // Absent lists and count: an empty-ish diff that only moves the seq; count stays.
  conn.send({ type: "diff", id: "s1", from: 44, seq: 45, removed: ["t9"] });
  await until(() => sub.seq === 45, "the second diff is applied");
  assert.deepEqual(ids(sub.rows), ["t2"]);
  assert.equal(sub.count, 2);
  assert.deepEqual(seen, [
    { ids: ["t1", "t2"], cause: "snap", seq: 41 },
    { ids: ["t9", "t2"], cause: "diff", seq: 44 },
    { ids: ["t2"], cause: "diff", seq: 45 },
  ]);
  sub.unsubscribe();
  assert.deepEqual(await conn.recv(), { type: "unsub", id: "s1" });
  client.close();
});

test("a gap drops the seq, resubscribes under a new id without since, and ignores the old id", async () => {
  const { client, conn } = await open();
  const resyncs: string[] = [];
  client.on("resync", (e) => resyncs.push(e.reason));
  const sub = client.subscribe({ entity: "Todo" });
  await conn.expect("sub");
  conn.send({ type: "snap", id: "s1", seq: 10, rows: [{ id: "a" }] });
  await sub.ready();
  conn.send({ type: "diff", id: "s1", from: 11, seq: 12, added: [{ pos: 1, row: { id: "b" } }] });
  assert.deepEqual(await conn.recv(), { type: "unsub", id: "s1" });
  assert.deepEqual(await conn.recv(), { type: "sub", id: "s1.1", entity: "Todo" });
  assert.equal(sub.status, "resyncing");
  assert.equal(sub.seq, undefined);
  assert.deepEqual(ids(sub.rows), ["a"], "the last good rows stay readable");
  assert.match(resyncs[0]!, /gap/);
  // A late diff for the old id is ignored; the new snap replaces the rows.
  conn.send({ type: "diff", id: "s1", from: 12, seq: 13, added: [{ pos: 0, row: { id: "zz" } }] });
  conn.send({ type: "snap", id: "s1.1", seq: 13, rows: [{ id: "a" }, { id: "b" }, { id: "c" }] });
  await until(() => sub.status === "live", "the resync snap");
  assert.deepEqual(ids(sub.rows), ["a", "b", "c"]);
  assert.equal(sub.seq, 13);
  // A diff that names a row not held is refused the same way.
  conn.send({ type: "diff", id: "s1.1", from: 13, seq: 14, removed: ["nope"] });
  assert.deepEqual(await conn.recv(), { type: "unsub", id: "s1.1" });
  assert.deepEqual(await conn.recv(), { type: "sub", id: "s1.2", entity: "Todo" });
  client.close();
});

test("reset: rows wait for the snap that follows on the same id", async () => {
  const { client, conn } = await open();
  const sub = client.subscribe({ entity: "Todo" });
  await conn.expect("sub");
  conn.send({ type: "snap", id: "s1", seq: 3, rows: [{ id: "a" }] });
  await sub.ready();
  conn.send({ type: "reset", id: "s1", reason: "schema" });
  await until(() => sub.status === "resyncing", "the reset");
  conn.send({ type: "snap", id: "s1", seq: 9, rows: [{ id: "b" }] });
  await until(() => sub.seq === 9, "the snap after reset");
  assert.deepEqual(ids(sub.rows), ["b"]);
  assert.equal(conn.unread, 0, "nothing is sent for a reset");
  client.close();
});

test("reconnect resumes every held query with since, resends pending mutations with the same op id, and presence", async () => {
  const { client, conn } = await open({ backoff: { initialMs: 1, maxMs: 1 } });
  const states: ConnectionState["state"][] = [];
  client.on("state", (s) => states.push(s.state));
  const todos = client.subscribe({ entity: "Todo", order: ["title"] });
  const tags = client.subscribe({ entity: "Tag" });
  await conn.expect("sub");
  await conn.expect("sub");
  conn.send({ type: "snap", id: "s1", seq: 5, rows: [{ id: "t1", title: "a" }] });
  conn.send({ type: "snap", id: "s2", seq: 5, rows: [] });
  conn.send({ type: "diff", id: "s1", from: 5, seq: 7, added: [{ pos: 1, row: { id: "t2", title: "b" } }] });
  await until(() => todos.seq === 7 && tags.seq === 5, "both results");
  client.presence({ name: "Ada" });
  assert.deepEqual(await conn.recv(), { type: "presence", state: { name: "Ada" } });
  const done = client.mutate([{ type: "insert", entity: "Todo", row: { id: "t3", title: "c" } }], { optimistic: false });
  const first = await conn.expect("mut");
  conn.drop();

  const conn2 = await server.nextConnection();
  conn2.welcome(8, "c-2");
  assert.deepEqual(await conn2.recv(), { type: "sub", id: "s1", entity: "Todo", order: ["title"], since: 7 });
  assert.deepEqual(await conn2.recv(), { type: "sub", id: "s2", entity: "Tag", since: 5 });
  assert.deepEqual(await conn2.recv(), first, "the same mut, same op id");
  assert.deepEqual(await conn2.recv(), { type: "presence", state: { name: "Ada" } });
  // The first copy had landed at 8: the resumed diff brings it, then a dup ack.
  conn2.send({ type: "diff", id: "s1", from: 7, seq: 8, added: [{ pos: 2, row: { id: "t3", title: "c" } }] });
  conn2.send({ type: "diff", id: "s2", from: 5, seq: 8 });
  conn2.send({ type: "ack", op: first.op, seq: 8, dup: true });
  assert.deepEqual(await done, { op: first.op, seq: 8, dup: true });
  assert.deepEqual(ids(todos.rows), ["t1", "t2", "t3"], "no missed or doubled row");
  assert.equal(tags.seq, 8, "an empty diff confirms the resumed query");
  assert.deepEqual(states, ["waiting", "connecting", "live"]);
  client.close();
});

test("a failed attempt backs off with growing attempts; a refused upgrade is retried", async () => {
  let refusals = 2;
  const refusing = await FakeServer.start({ refuse: () => (refusals-- > 0 ? 503 : undefined) });
  const states: ConnectionState[] = [];
  const client = connect({ url: refusing.url, shard: "s", backoff: { initialMs: 4, maxMs: 8 }, keepaliveMs: 0, random: () => 0 });
  client.on("state", (s) => states.push(s));
  const conn = await refusing.nextConnection();
  conn.welcome(0);
  await client.ready();
  assert.deepEqual(states, [
    { state: "waiting", attempt: 1, delayMs: 4 },
    { state: "connecting", attempt: 1 },
    { state: "waiting", attempt: 2, delayMs: 4 },
    { state: "connecting", attempt: 2 },
    { state: "live", conn: "c-1", seq: 0 },
  ]);
  assert.equal(refusing.upgrades, 3);
  client.close();
  await refusing.close();
});

test("optimistic insert shows at once, in query order, and is rolled back on err", async () => {
  const { client, conn } = await open();
  const causes: string[] = [];
  const sub = client.subscribe({ entity: "Todo", where: { done: false }, order: ["-priority", "title"] }, (_rows, info) => causes.push(info.cause));
  await conn.expect("sub");
  conn.send({
    type: "snap",
    id: "s1",
    seq: 1,
    rows: [
      { id: "t1", title: "a", priority: 3, done: false },
      { id: "t2", title: "b", priority: 1, done: false },
    ],
  });
  await sub.ready();
  const p = client.mutate([
    { type: "insert", entity: "Todo", row: { id: "t9", title: "m", priority: 2, done: false } },
    { type: "insert", entity: "Todo", row: { id: "t8", title: "hidden", priority: 9, done: true } },
  ]);
  assert.deepEqual(ids(sub.rows), ["t1", "t9", "t2"], "shown before any answer, at its sorted position");
  assert.equal(sub.optimistic, true);
  const m = await conn.expect("mut");
  assert.match(m.op, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  conn.send({ type: "err", code: "ALREADY_EXISTS", message: "Todo t9 exists", op: m.op });
  await assert.rejects(p, (e: PylonError) => e instanceof PylonError && e.code === "ALREADY_EXISTS" && e.op === m.op);
  assert.deepEqual(ids(sub.rows), ["t1", "t2"]);
  assert.equal(sub.optimistic, false);
  assert.deepEqual(causes, ["snap", "optimistic", "rollback"]);
  client.close();
});

test("optimistic writes reconcile on ack without a double row; the server's diff is the truth", async () => {
  const { client, conn } = await open();
  const sub = client.subscribe({ entity: "Todo", order: ["title"] });
  await conn.expect("sub");
  conn.send({ type: "snap", id: "s1", seq: 1, rows: [{ id: "t1", title: "a" }, { id: "t2", title: "b" }] });
  await sub.ready();
  const p = client.mutate([
    { type: "insert", entity: "Todo", row: { id: "t9", title: "c" } },
    { type: "update", entity: "Todo", id: "t1", set: { title: "z" } },
  ]);
  assert.deepEqual(sub.rows, [{ id: "t2", title: "b" }, { id: "t9", title: "c" }, { id: "t1", title: "z" }]);
  const m = await conn.expect("mut");
  // The server's diff comes before the ack and carries a field the client did not know (created).
  conn.send({
    type: "diff",
    id: "s1",
    from: 1,
    seq: 2,
    added: [{ pos: 1, row: { id: "t9", title: "c", created: "2025-01-01T00:00:00Z" } }],
    changed: [{ pos: 2, row: { id: "t1", title: "z" } }],
  });
  await until(() => sub.seq === 2, "the diff");
  assert.deepEqual(ids(sub.rows), ["t2", "t9", "t1"], "the inserted row is shown once");
  assert.equal((sub.rows as readonly Row[])[1]!.created, "2025-01-01T00:00:00Z", "the server's row wins");
  conn.send({ type: "ack", op: m.op, seq: 2 });
  assert.deepEqual(await p, { op: m.op, seq: 2, dup: false });
  assert.equal(sub.optimistic, false);
  assert.deepEqual(ids(sub.rows), ["t2", "t9", "t1"]);
  // A later server change is not overridden by the settled op.
  conn.send({ type: "diff", id: "s1", from: 2, seq: 3, changed: [{ pos: 0, row: { id: "t1", title: "0" } }] });
  await until(() => sub.seq === 3, "the later diff");
  assert.deepEqual(ids(sub.rows), ["t1", "t2", "t9"]);
  client.close();
});

test("an ack before a lagging subscription's snap keeps the write shown until that snap", async () => {
  const { client, conn } = await open();
  const a = client.subscribe({ entity: "Todo" });
  await conn.expect("sub");
  conn.send({ type: "snap", id: "s1", seq: 1, rows: [{ id: "a" }] });
  await a.ready();
  const p = client.mutate([{ type: "insert", entity: "Todo", row: { id: "n" } }]);
  const m = await conn.expect("mut");
  conn.send({ type: "reset", id: "s1", reason: "resync" });
  conn.send({ type: "ack", op: m.op, seq: 2 });
  await p;
  assert.equal(a.status, "resyncing");
  assert.deepEqual(ids(a.rows), ["a", "n"], "still shown: the subscription has not reached seq 2");
  assert.equal(a.optimistic, true);
  conn.send({ type: "snap", id: "s1", seq: 2, rows: [{ id: "a" }, { id: "n" }] });
  await until(() => a.seq === 2, "the snap");
  assert.equal(a.optimistic, false);
  assert.deepEqual(ids(a.rows), ["a", "n"]);
  client.close();
});

test("an err for a subscription fails it; ready() rejects", async () => {
  const { client, conn } = await open();
  const sub = client.subscribe({ entity: "Todoo" });
  await conn.expect("sub");
  conn.send({ type: "err", code: "UNKNOWN_ENTITY", message: "no entity `Todoo`", sub: "s1" });
  await assert.rejects(sub.ready(), (e: PylonError) => e.code === "UNKNOWN_ENTITY");
  assert.equal(sub.status, "failed");
  const errors: string[] = [];
  client.on("error", (e) => errors.push(e.code));
  conn.send({ type: "err", code: "RATE_LIMITED", message: "slow down" });
  await until(() => errors.length === 1, "the unmatched err");
  assert.deepEqual(errors, ["RATE_LIMITED"]);
  client.close();
});

test("close 4403 stops the client; pending mutations reject with CLOSED and roll back", async () => {
  const { client, conn } = await open();
  const sub = client.subscribe({ entity: "Todo" });
  await conn.expect("sub");
  conn.send({ type: "snap", id: "s1", seq: 1, rows: [] });
  await sub.ready();
  const p = client.mutate([{ type: "insert", entity: "Todo", row: { id: "t1" } }]);
  assert.deepEqual(ids(sub.rows), ["t1"]);
  await conn.expect("mut");
  conn.close(4403, "forbidden");
  await assert.rejects(p, (e: PylonError) => e.code === "CLOSED" && e.closeCode === 4403);
  assert.deepEqual(client.state, { state: "closed", code: 4403, reason: "forbidden" });
  assert.deepEqual(sub.rows, []);
  assert.equal(sub.status, "closed");
  assert.throws(() => client.subscribe({ entity: "Todo" }), PylonError);
  await sleep(30);
  assert.equal(server.connections.at(-1), conn, "no reconnect");
});

test("close 4401: a token function is asked again and the client reconnects; a static token stops", async () => {
  const tokens = ["old", "new"];
  const { client, conn } = await open({ token: () => tokens.shift() });
  assert.deepEqual(conn.protocols, ["pylon.v1.json", "bearer.old"]);
  conn.close(4401, "expired");
  const conn2 = await server.nextConnection();
  assert.deepEqual(conn2.protocols, ["pylon.v1.json", "bearer.new"]);
  conn2.welcome();
  await client.ready();
  client.close();

  const fixed = await open({ token: "static" });
  fixed.conn.close(4401, "expired");
  await until(() => fixed.client.state.state === "closed", "the client stops");
  assert.deepEqual(fixed.client.state, { state: "closed", code: 4401, reason: "expired" });
});

test("hello follows the welcome when a client id is set; a second welcome answers it", async () => {
  const { client, conn } = await open({ clientId: "web/0.1", token: "tok" });
  assert.deepEqual(await conn.recv(), { type: "hello", client: "web/0.1", token: "tok" });
  conn.send({ type: "welcome", protocol: "pylon.v1", shard: "team-42", seq: 3, conn: "c-1", encoding: "json" });
  await until(() => client.welcome?.seq === 3, "the second welcome");
  await client.setToken("tok2");
  assert.deepEqual(await conn.recv(), { type: "hello", client: "web/0.1", token: "tok2" });
  client.close();
});

test("presence members and events, broadcast both ways, ping", async () => {
  const { client, conn } = await open();
  const changes: string[] = [];
  client.on("presence", (members, change) => changes.push(`${change.type}:${[...members.keys()].join(",")}`));
  const got: unknown[] = [];
  client.on("bcast", (b) => got.push(b));
  conn.send({ type: "presence_state", members: [{ conn: "c-8f2a", state: { name: "Ada" } }, { conn: "c-11b0", state: { name: "Linus" } }] });
  conn.send({
    type: "presence_diff",
    joins: [{ conn: "c-77d1", state: { name: "Grace" } }],
    updates: [{ conn: "c-11b0", state: { name: "Linus", typing: true } }],
    leaves: ["c-8f2a"],
  });
  conn.send({ type: "bcast", topic: "typing", data: { doc: "d1" }, from: "c-11b0" });
  await until(() => got.length === 1, "the bcast");
  assert.deepEqual(changes.slice(-2), ["state:c-8f2a,c-11b0", "diff:c-11b0,c-77d1"]);
  assert.deepEqual(client.presenceMembers.get("c-11b0"), { name: "Linus", typing: true });
  assert.deepEqual(got, [{ topic: "typing", data: { doc: "d1" }, from: "c-11b0" }]);

  client.broadcast("cursor", [1, 2]);
  assert.deepEqual(await conn.recv(), { type: "bcast", topic: "cursor", data: [1, 2] });
  client.presence(null);
  assert.deepEqual(await conn.recv(), { type: "presence", state: null });

  const rtt = client.ping();
  const ping = await conn.expect("ping");
  conn.send({ type: "pong", t: ping.t });
  assert.ok((await rtt) >= 0);
  client.close();
  assert.throws(() => client.broadcast("x", 1), (e: PylonError) => e.code === "NOT_CONNECTED");
});

test("unknown message types are ignored; an undecodable frame drops the connection and the client resumes", async () => {
  const { client, conn } = await open({ backoff: { initialMs: 1, maxMs: 1 } });
  const sub = client.subscribe({ entity: "Todo" });
  await conn.expect("sub");
  conn.send({ type: "snap", id: "s1", seq: 2, rows: [{ id: "a" }] });
  conn.send({ type: "shiny_new_message", x: 1 });
  await sub.ready();
  assert.equal(client.state.state, "live");
  conn.sendText("{not json");
  const conn2 = await server.nextConnection();
  conn2.welcome(2);
  assert.deepEqual(await conn2.recv(), { type: "sub", id: "s1", entity: "Todo", since: 2 });
  client.close();
});

test("keepalive: sends the keepalive frame after silence, takes the ack as a sign of life, drops a connection that stays silent", async () => {
  const { client, conn } = await open({ keepaliveMs: 40, backoff: { initialMs: 1, maxMs: 1 } });
  assert.deepEqual(await conn.recv(), { raw: "pylon.keepalive" });
  // The ack (not JSON) is neither an error nor a message; it resets the silence.
  const errors: unknown[] = [];
  client.on("error", (e: unknown) => errors.push(e));
  conn.sendText("pylon.keepalive.ack");
  assert.deepEqual(await conn.recv(), { raw: "pylon.keepalive" }, "the next keepalive after more silence");
  assert.equal(client.state.state, "live", "the ack kept the connection");
  assert.deepEqual(errors, []);
  const conn2 = await server.nextConnection();
  conn2.welcome();
  await client.ready();
  client.close();
});

/** An unsigned JWT-shaped token (the client never verifies) expiring at `exp` (Unix seconds). */
function jwt(name: string, exp: number): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${part({ alg: "HS256" })}.${part({ sub: "ann", n: name, exp })}.sig`;
}

test("renews before the token's exp: hello with a fresh token; its welcome reschedules the next", async () => {
  const soon = () => Math.floor(Date.now() / 1000) + 1; // halfway is ~0.5 s away
  let n = 0;
  const { client, conn } = await open({ token: () => jwt(`t${n++}`, soon()) });
  const hello = await conn.recv(3000);
  assert.equal(hello.type, "hello");
  const claims = (t: string) => JSON.parse(Buffer.from(t.split(".")[1]!, "base64url").toString());
  assert.equal(claims(conn.protocols[1]!.slice("bearer.".length)).n, "t0");
  assert.equal(claims(hello.token).n, "t1", "a fresh token");
  conn.send({ type: "welcome", protocol: "pylon.v1", shard: "team-42", seq: 0, conn: "c-1", encoding: "json" });
  const again = await conn.recv(3000);
  assert.equal(again.type, "hello", "renewed again before the new token's exp");
  assert.equal(claims(again.token).n, "t2");
  client.close();
});

test("renewal is off with renewBeforeMs: 0 and with a static token", async () => {
  const exp = Math.floor(Date.now() / 1000) + 1;
  const off = await open({ token: () => jwt("x", exp), renewBeforeMs: 0 });
  const fixed = await open({ token: jwt("y", exp) });
  await sleep(800);
  assert.equal(off.conn.unread, 0);
  assert.equal(fixed.conn.unread, 0);
  off.client.close();
  fixed.client.close();
});

test("TOKEN_EXPIRED: renews; refused writes and subscriptions go again; paused queries catch up exactly", async () => {
  const far = Math.floor(Date.now() / 1000) + 3600;
  let n = 0;
  const { client, conn } = await open({ token: () => jwt(`t${n++}`, far), renewBeforeMs: 0 });
  const sub = client.subscribe({ entity: "Todo", order: ["title"] });
  await conn.expect("sub");
  conn.send({ type: "snap", id: "s1", seq: 1, rows: [{ id: "a", title: "a" }] });
  await sub.ready();

  // The shard noticed the expiry: one pushed err, and the client renews.
  const errors: string[] = [];
  client.on("error", (e) => errors.push(e.code));
  conn.send({ type: "err", code: "UNAUTHORIZED", message: "TOKEN_EXPIRED: the connection's token expired; ..." });
  const hello = await conn.expect("hello");
  assert.equal(hello.token, jwt("t1", far));
  // Meanwhile a write and a new query, refused while expired: kept.
  const done = client.mutate([{ type: "insert", entity: "Todo", row: { id: "m", title: "m" } }], { opId: "op-m" });
  await conn.expect("mut");
  conn.send({ type: "err", code: "UNAUTHORIZED", message: "TOKEN_EXPIRED: ...", op: "op-m" });
  const other = client.subscribe({ entity: "Note" });
  await conn.expect("sub");
  conn.send({ type: "err", code: "UNAUTHORIZED", message: "TOKEN_EXPIRED: ...", sub: "s2" });
  await sleep(20);
  assert.equal(other.status, "pending", "not failed");

  // Renewed: the shard catches the paused query up; the client resends.
  conn.send({ type: "welcome", protocol: "pylon.v1", shard: "team-42", seq: 3, conn: "c-1", encoding: "json" });
  conn.send({ type: "presence_state", members: [] });
  conn.send({ type: "diff", id: "s1", from: 1, seq: 3, added: [{ pos: 1, row: { id: "b", title: "b" } }], changed: [], removed: [] });
  assert.deepEqual(await conn.recv(), { type: "mut", op: "op-m", ops: [{ type: "insert", entity: "Todo", row: { id: "m", title: "m" } }] });
  assert.deepEqual(await conn.recv(), { type: "sub", id: "s2", entity: "Note" });
  conn.send({ type: "diff", id: "s1", from: 3, seq: 4, added: [{ pos: 2, row: { id: "m", title: "m" } }], changed: [], removed: [] });
  conn.send({ type: "ack", op: "op-m", seq: 4, dup: false });
  assert.deepEqual(await done, { op: "op-m", seq: 4, dup: false });
  await until(() => sub.seq === 4, "the diffs");
  assert.deepEqual(ids(sub.rows), ["a", "b", "m"]);
  assert.equal(sub.status, "live");
  assert.deepEqual(errors, [], "a handled expiry is no error");
  client.close();
});

test("a refused renewal is tried once more, then the client reconnects with a fresh token", async () => {
  const far = Math.floor(Date.now() / 1000) + 3600;
  let n = 0;
  const { client, conn } = await open({ token: () => jwt(`t${n++}`, far), renewBeforeMs: 0 });
  const sub = client.subscribe({ entity: "Todo" });
  await conn.expect("sub");
  conn.send({ type: "snap", id: "s1", seq: 5, rows: [] });
  await sub.ready();
  conn.send({ type: "err", code: "UNAUTHORIZED", message: "SESSION_REVOKED: the connection's session was revoked; ..." });
  assert.equal((await conn.expect("hello")).token, jwt("t1", far));
  conn.send({ type: "err", code: "UNAUTHORIZED", message: "SESSION_REVOKED: the session was revoked" });
  assert.equal((await conn.expect("hello")).token, jwt("t2", far));
  conn.send({ type: "err", code: "UNAUTHORIZED", message: "SESSION_REVOKED: the session was revoked" });
  const conn2 = await server.nextConnection();
  assert.deepEqual(conn2.protocols, ["pylon.v1.json", `bearer.${jwt("t3", far)}`]);
  conn2.welcome(6);
  assert.deepEqual(await conn2.recv(), { type: "sub", id: "s1", entity: "Todo", since: 5 });
  client.close();

  // A static token cannot renew: the client stops as after close 4401.
  const fixed = await open({ token: jwt("static", far) });
  fixed.conn.send({ type: "err", code: "UNAUTHORIZED", message: "TOKEN_EXPIRED: ..." });
  await until(() => fixed.client.state.state === "closed", "the client stops");
  assert.equal((fixed.client.state as { code?: number }).code, 4401);
});
