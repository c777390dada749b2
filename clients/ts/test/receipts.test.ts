// Receipts (`recv`, docs/protocol.md "Slow readers"): the frames match the
// Rust encoder's (the fixture's `receipts` vectors), bytes are counted as
// the server counts them, and a client sends one receipt per step of
// bytes received, and nothing on a quiet socket.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { connect, RECEIPT_STEP, ReceiptCounter, receiptFrame, receiptStep, utf8Length, type PylonClient } from "../dist/index.js";
import { FakeServer } from "./support/server.ts";
import { sleep, until } from "./support/wait.ts";

const fixture: { receipts: { name: string; json: any; postcard: string }[] } = JSON.parse(
  readFileSync(new URL("./fixtures/postcard-vectors.json", import.meta.url), "utf8"),
);

test("receipt frames are the Rust encoder's, in both encodings", () => {
  assert.ok(fixture.receipts.length >= 4);
  for (const v of fixture.receipts) {
    const n = v.json.bytes as number;
    assert.deepEqual(JSON.parse(receiptFrame("json", n) as string), v.json, v.name);
    assert.equal(Buffer.from(receiptFrame("postcard", n) as Uint8Array).toString("hex"), v.postcard, v.name);
  }
});

test("text is counted in UTF-8 bytes, as the server counts it", () => {
  for (const s of ["", "abc", "é", "€uro", "😀 x", "\u{10FFFF}", "mixed é€😀 text".repeat(50)]) {
    assert.equal(utf8Length(s), Buffer.byteLength(s, "utf8"), JSON.stringify(s));
  }
});

test("the counter asks for a receipt once per step, with what it received", () => {
  const c = new ReceiptCounter();
  const chunk = "x".repeat(100 * 1024);
  assert.equal(c.received("json", chunk), undefined);
  assert.equal(c.received("json", chunk), undefined);
  assert.equal(c.received("json", chunk), `{"type":"recv","bytes":${3 * chunk.length}}`);
  assert.equal(c.received("postcard", new Uint8Array(10)), undefined);
  c.reset();
  assert.equal(c.received("json", "x".repeat(RECEIPT_STEP - 1)), undefined);
});

test("the step is a quarter of the announced window, the default without one", () => {
  assert.equal(receiptStep(undefined), RECEIPT_STEP);
  assert.equal(receiptStep(1 << 20), RECEIPT_STEP);
  assert.equal(receiptStep(4 << 20), 4 * RECEIPT_STEP);
  const c = new ReceiptCounter();
  c.setWindow(2 << 20);
  const chunk = "x".repeat(300 * 1024);
  assert.equal(c.received("json", chunk), undefined);
  assert.equal(c.received("json", chunk), `{"type":"recv","bytes":${2 * chunk.length}}`);
  c.reset(); // a new socket: the default step until its welcome
  assert.equal(c.received("json", chunk), `{"type":"recv","bytes":${chunk.length}}`);
});

let server: FakeServer;
const clients: PylonClient[] = [];
before(async () => {
  server = await FakeServer.start();
});
after(async () => {
  for (const c of clients) c.close();
  await server.close();
});

test("a client receipts what it reads, one per step, and a quiet socket sends nothing", async () => {
  const client = connect({ url: server.url, shard: "s", keepaliveMs: 0 });
  clients.push(client);
  const conn = await server.nextConnection();
  conn.welcome(0);
  await client.ready();
  const pad = "p".repeat(100 * 1024);
  const sizes: number[] = [];
  for (let i = 0; i < 5; i++) {
    const msg = { type: "pong", t: i, pad };
    sizes.push(Buffer.byteLength(JSON.stringify(msg)));
    conn.send(msg);
  }
  await until(() => conn.log.some((m) => m.type === "recv"), "a receipt");
  await sleep(50);
  const receipts = conn.log.filter((m) => m.type === "recv");
  assert.equal(receipts.length, 1, JSON.stringify(receipts));
  // The welcome (under 1 KiB) and the first three pongs: the step was crossed there.
  assert.ok(receipts[0].bytes >= sizes[0]! + sizes[1]! + sizes[2]!, `${receipts[0].bytes}`);
  assert.ok(receipts[0].bytes < sizes[0]! + sizes[1]! + sizes[2]! + 1024, `${receipts[0].bytes}`);
  client.close();
});

test("a client sizes its receipts from the window its welcome announced", async () => {
  const client = connect({ url: server.url, shard: "s", keepaliveMs: 0 });
  clients.push(client);
  const conn = await server.nextConnection();
  conn.send({ type: "welcome", protocol: "pylon.v1", shard: "s", seq: 0, conn: "c-1", encoding: "json", window: 2 << 20 });
  conn.send({ type: "presence_state", members: [] });
  await client.ready();
  assert.equal(client.welcome?.window, 2 << 20);
  const pad = "p".repeat(100 * 1024);
  const sizes: number[] = [];
  // 300 KiB: past the default step, short of this window's (512 KiB).
  for (let i = 0; i < 3; i++) {
    const msg = { type: "pong", t: i, pad };
    sizes.push(Buffer.byteLength(JSON.stringify(msg)));
    conn.send(msg);
  }
  await sleep(100);
  assert.equal(conn.log.filter((m) => m.type === "recv").length, 0);
  for (let i = 3; i < 6; i++) conn.send({ type: "pong", t: i, pad });
  await until(() => conn.log.some((m) => m.type === "recv"), "a receipt");
  const r = conn.log.find((m) => m.type === "recv");
  assert.ok(r.bytes >= 512 * 1024 && r.bytes < 512 * 1024 + 110 * 1024, `${r.bytes}`);
  client.close();
});
