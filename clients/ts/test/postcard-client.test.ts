// The shard client and the simulation client speaking pylon.v1.postcard
// to the scripted server: the subprotocol offered, binary frames both
// ways, the keepalive (text in both encodings), and frames of the wrong
// kind.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  connect,
  decodeSimServerPostcard,
  encodeSimServerPostcard,
  joinSim,
  PostcardReader,
  PylonError,
  type PylonClient,
  type SimClient,
  type SimPostcardCodec,
} from "../dist/index.js";
import { FakeServer } from "./support/server.ts";
import { until } from "./support/wait.ts";

let server: FakeServer;
const clients: { close(): void }[] = [];
before(async () => {
  server = await FakeServer.start();
});
after(async () => {
  for (const c of clients) c.close();
  await server.close();
});

function open(): PylonClient {
  const client = connect({ url: server.url, shard: "team-42", encoding: "postcard", token: "tok", backoff: { initialMs: 1, maxMs: 1 }, keepaliveMs: 0 });
  clients.push(client);
  return client;
}

test("postcard: offers pylon.v1.postcard, reads binary snap / diff / ack, writes binary sub and mut", async () => {
  const client = open();
  const conn = await server.nextConnection();
  assert.deepEqual(conn.protocols, ["pylon.v1.postcard", "bearer.tok"]);
  assert.equal(conn.encoding, "postcard");
  conn.welcome(5, "c-1");
  await client.ready();
  assert.equal(client.welcome?.encoding, "postcard");

  const sub = client.subscribe({ entity: "Card", where: { done: false }, order: ["position"], limit: 20, count: true });
  assert.deepEqual(await conn.recv(), { type: "sub", id: "s1", entity: "Card", where: { done: false }, order: ["position"], limit: 20, count: true });
  conn.send({ type: "snap", id: "s1", seq: 5, rows: [{ id: "a", title: "é", position: 1, done: false }], count: 1 });
  assert.deepEqual(await sub.ready(), [{ id: "a", title: "é", position: 1, done: false }]);
  assert.equal(sub.count, 1);

  const acked = client.mutate([{ type: "insert", entity: "Card", row: { id: "b", title: "two", position: 2.5, done: false } }], { opId: "op-1" });
  assert.deepEqual(await conn.recv(), {
    type: "mut",
    op: "op-1",
    ops: [{ type: "insert", entity: "Card", row: { id: "b", title: "two", position: 2.5, done: false } }],
  });
  conn.send({ type: "diff", id: "s1", from: 5, seq: 6, added: [{ pos: 1, row: { id: "b", title: "two", position: 2.5, done: false } }], changed: [], removed: [], count: 2 });
  conn.send({ type: "ack", op: "op-1", seq: 6, dup: false });
  assert.deepEqual(await acked, { op: "op-1", seq: 6, dup: false });
  assert.deepEqual(sub.rows.map((r) => r.id), ["a", "b"]);
  assert.equal(sub.seq, 6);
  assert.equal(sub.count, 2);

  const rtt = client.ping();
  const ping = await conn.expect("ping");
  conn.send({ type: "pong", t: ping.t });
  assert.ok((await rtt) >= 0);
  client.close();
  assert.equal((await conn.closed()).code, 1000);
});

test("postcard: the keepalive's text answer is a sign of life; a text message frame drops the connection, which resumes", async () => {
  const client = connect({ url: server.url, shard: "team-42", encoding: "postcard", backoff: { initialMs: 1, maxMs: 1 }, keepaliveMs: 40 });
  clients.push(client);
  const conn = await server.nextConnection();
  conn.welcome(2);
  await client.ready();
  assert.deepEqual(await conn.recv(), { raw: "pylon.keepalive" }, "the keepalive is a text frame in postcard too");
  conn.sendText("pylon.keepalive.ack");
  const sub = client.subscribe({ entity: "Todo" });
  await conn.expect("sub");
  conn.send({ type: "snap", id: "s1", seq: 2, rows: [{ id: "a" }] });
  await sub.ready();
  assert.equal(client.state.state, "live");
  const drops: string[] = [];
  client.on("disconnected", (d) => drops.push(d.reason));
  conn.sendText('{"type":"pong"}');
  const conn2 = await server.nextConnection();
  assert.match(drops[0] ?? "", /text frame on pylon\.v1\.postcard/);
  conn2.welcome(2);
  const resub = await conn2.recv();
  assert.deepEqual(resub, { type: "sub", id: "s1", entity: "Todo", since: 2 });
  client.close();
});

test("postcard: a welcome that names another encoding: the client closes that socket with 4400 and tries again", async () => {
  const client = open();
  const drops: string[] = [];
  client.on("disconnected", (d) => drops.push(d.reason));
  const conn = await server.nextConnection();
  conn.send({ type: "welcome", protocol: "pylon.v1", shard: "s", seq: 0, conn: "c", encoding: "json" });
  assert.equal((await conn.closed()).code, 4400);
  assert.deepEqual(drops, ["unexpected welcome: protocol pylon.v1, encoding json"]);
  const conn2 = await server.nextConnection();
  conn2.welcome();
  await client.ready();
  client.close();
});

test("postcard: a limit that is no u32 is refused at once; an unknown encoding is refused", () => {
  const client = open();
  assert.throws(() => client.subscribe({ entity: "E", limit: 1.5 }), (e: PylonError) => e.code === "BAD_REQUEST");
  assert.throws(() => client.subscribe({ entity: "E", limit: -1 }), (e: PylonError) => e.code === "BAD_REQUEST");
  client.close();
  assert.throws(
    () => connect({ url: server.url, shard: "s", encoding: "xml" as "json" }),
    (e: PylonError) => e.code === "BAD_REQUEST" && /encoding/.test(e.message),
  );
});

// ---- the simulation client ----------------------------------------------------

type Add = { add: number };
type Total = { total: number };
const counter: SimPostcardCodec<Add, Total> = {
  writeInput: (w, input) => w.i64(input.add),
  readSnapshot: (r) => ({ total: r.i64() }),
};

test("postcard simulation: needs the kind's codec; sends binary inputs, reads binary welcome / snapshot / ack / err", async () => {
  assert.throws(
    () => joinSim({ url: "ws://127.0.0.1:1", kind: "counter", id: "c", encoding: "postcard" }),
    (e: PylonError) => e.code === "BAD_REQUEST" && /codec/.test(e.message),
  );
  const simServer = await FakeServer.start({
    binary: {
      // The server side of sim_input: tag 0, seq, the counter's `add`.
      decode: (bytes) => {
        const r = new PostcardReader(bytes);
        assert.equal(r.u32(), 0);
        const msg = { type: "sim_input", seq: r.u64(), input: { add: r.i64() } };
        r.end();
        return msg;
      },
      encode: (msg) => encodeSimServerPostcard(msg, (w, view: Total) => w.i64(view.total)),
    },
  });
  try {
    const sim: SimClient<Add, Total> = joinSim({ url: simServer.url, kind: "counter", id: "c-1", subscriber: "ada", encoding: "postcard", postcard: counter, keepaliveMs: 0 });
    clients.push(sim);
    const snaps: number[] = [];
    const errors: string[] = [];
    sim.on("snapshot", (s) => snaps.push(s.total));
    sim.on("error", (e) => errors.push(`${e.code} ${e.seq} ${e.reason}`));
    const conn = await simServer.nextConnection();
    assert.deepEqual(conn.protocols, ["pylon.v1.postcard"]);
    conn.send({ type: "sim_welcome", protocol: "pylon.sim.v1", sim: "c-1", kind: "counter", conn: "c7", subscriber: "ada", tick: 3, acked: 2, tick_hz: 0, encoding: "postcard" });
    await sim.ready();
    assert.equal(sim.sendInput({ add: 5 }), 3);
    assert.equal(sim.sendInput({ add: 1000 }), 4);
    assert.deepEqual(await conn.recv(), { type: "sim_input", seq: 3, input: { add: 5 } });
    assert.deepEqual(await conn.recv(), { type: "sim_input", seq: 4, input: { add: 1000 } });
    conn.send({ type: "sim_ack", seq: 3, tick: 4, dup: false });
    conn.send({ type: "sim_snapshot", tick: 4, acked: 3, final: false, view: { total: -12 } });
    conn.send({ type: "sim_err", code: "INPUT_REJECTED", message: "rejected", seq: 4, reason: "too much" });
    await until(() => errors.length === 1, "the error");
    assert.deepEqual(snaps, [-12]);
    assert.deepEqual(errors, ["INPUT_REJECTED 4 too much"]);
    assert.deepEqual(sim.pending(), []);
    assert.equal(sim.acked, 3);
    sim.close();
  } finally {
    await simServer.close();
  }
  // The decoder alone, on a frame of a newer server: ignored, not an error.
  assert.throws(() => decodeSimServerPostcard(new Uint8Array([9]), counter), (e: { unknownType?: boolean }) => e.unknownType === true);
});
