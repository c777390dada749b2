// Bytes per frame and decode time per frame of typical server messages in
// pylon.v1.json and pylon.v1.postcard, as the TypeScript client decodes
// them: a JSON frame arrives as a string (the WebSocket has already read
// the UTF-8), a postcard frame as bytes. The messages are the board's: a
// snapshot of 100 cards, a diff of one changed card, an ack, a
// presence_diff. Each figure is the median over RUNS runs (their range in
// brackets), the two encodings interleaved run by run; a run times as many
// decodes as fit in about 200 ms after a warm-up.
//
// Run (after a build of the client, e.g. bash clients/ts/test.sh):
//   source scripts/env.sh && node clients/ts/bench/encoding.mjs
import assert from "node:assert/strict";
import { decodeServer, decodeServerPostcard, encodeServerPostcard } from "../dist/index.js";

const RUNS = Number(process.env.RUNS ?? 9);
const RUN_MS = 200;

/** A card as the board stores it (the demo's Card entity). */
const card = (i) => ({
  id: `0b7c${String(i).padStart(4, "0")}-4a57-4d0c-b5e3-1f0c7f0a9d21`,
  title: `Card number ${i}: buy milk and bread`,
  done: i % 3 === 0,
  position: i,
  createdAt: "2026-12-01T10:00:00Z",
  author: "ada",
});

// Each message as the server's JSON encoder writes it (empty lists and
// absent counts left out).
const messages = {
  "snap, 100 cards": { type: "snap", id: "s1", seq: 4711, rows: Array.from({ length: 100 }, (_, i) => card(i + 1)) },
  "diff, one card changed": { type: "diff", id: "s1", from: 4711, seq: 4712, changed: [{ pos: 41, row: { ...card(42), done: true } }] },
  ack: { type: "ack", op: "9b2e6c1e-4a57-4d0c-b5e3-1f0c7f0a9d21", seq: 4712 },
  "presence_diff, one join": { type: "presence_diff", joins: [{ conn: "c-8f2a", state: { name: "Ada", cursor: [120, 48] } }] },
};

function timePerCall(fn, arg) {
  for (let i = 0; i < 200; i++) fn(arg); // warm-up
  let n = 0;
  let sink = 0;
  const start = process.hrtime.bigint();
  const until = start + BigInt(RUN_MS * 1e6);
  let now = start;
  while (now < until) {
    for (let i = 0; i < 50; i++) sink += fn(arg).type.length;
    n += 50;
    now = process.hrtime.bigint();
  }
  if (sink === 0) throw new Error("unreachable");
  return Number(now - start) / n;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ns) => (ns >= 10_000 ? `${(ns / 1000).toFixed(1)} µs` : `${Math.round(ns)} ns`);
const range = (xs) => `[${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}]`;

console.log(`node ${process.version}, ${RUNS} runs of ~${RUN_MS} ms per figure\n`);
console.log("| message | JSON bytes | postcard bytes | ratio | JSON decode | postcard decode | speed-up |");
console.log("|---|---:|---:|---:|---:|---:|---:|");
for (const [name, wire] of Object.entries(messages)) {
  const text = JSON.stringify(wire);
  const bytes = encodeServerPostcard(decodeServer(text));
  assert.deepEqual(decodeServerPostcard(bytes), decodeServer(text), name);
  const json = [];
  const pc = [];
  for (let r = 0; r < RUNS; r++) {
    json.push(timePerCall(decodeServer, text));
    pc.push(timePerCall(decodeServerPostcard, bytes));
  }
  const jsonBytes = Buffer.byteLength(text);
  console.log(
    `| ${name} | ${jsonBytes} | ${bytes.length} | ${(bytes.length / jsonBytes).toFixed(2)} | ` +
      `${fmt(median(json))} ${range(json)} | ${fmt(median(pc))} ${range(pc)} | ×${(median(json) / median(pc)).toFixed(2)} |`,
  );
}
