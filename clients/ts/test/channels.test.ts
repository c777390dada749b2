// channels() against a scripted fetch and a fake WebSocket: the routes of
// publish, history and list; a subscription that hands on messages once,
// and reconnects after the last one it handed on.
import assert from "node:assert/strict";
import { test } from "node:test";
import { channels, PylonError, type ChannelMessage, type ChannelReady } from "../dist/index.js";

class FakeSocket {
  static made: FakeSocket[] = [];
  readonly protocol = "pylon.v1.json";
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: unknown) => void) | null = null;
  onclose: ((ev: unknown) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  closed = false;
  readonly url: string;
  readonly protocols?: string | string[];
  constructor(url: string, protocols?: string | string[]) {
    this.url = url;
    this.protocols = protocols;
    FakeSocket.made.push(this);
  }
  send(): void {}
  close(): void {
    this.closed = true;
  }
  frame(f: unknown): void {
    this.onmessage?.({ data: JSON.stringify(f) });
  }
  drop(): void {
    this.onclose?.({ code: 1006 });
  }
}

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

test("publish, history and list: routes, bodies, answers and refusals", async () => {
  const seen: { url: string; method: string; body?: string; auth?: string }[] = [];
  const answers: [number, unknown][] = [
    [200, { id: 3, at: 10, listed: true }],
    [200, { channel: "chat:a", lastId: 3, messages: [{ id: 3, at: 10, data: 1 }] }],
    [200, { channels: [{ name: "chat:a", createdAt: 1 }], next: null }],
    [403, { error: { code: "FORBIDDEN", message: "no" } }],
  ];
  const fetch = (async (url: string, init?: RequestInit) => {
    const headers = (init?.headers ?? {}) as Record<string, string>;
    seen.push({ url, method: init?.method ?? "GET", body: init?.body as string | undefined, auth: headers.authorization });
    const [status, body] = answers.shift()!;
    return new Response(JSON.stringify(body), { status });
  }) as typeof globalThis.fetch;
  const ch = channels("http://127.0.0.1:8787", { token: "tok", fetch });
  assert.deepEqual(await ch.publish("chat:a", { text: "hi" }), { id: 3, at: 10, listed: true });
  assert.deepEqual(seen[0], { url: "http://127.0.0.1:8787/v1/channels/chat:a/publish", method: "POST", body: '{"data":{"text":"hi"}}', auth: "Bearer tok" });
  assert.equal((await ch.history("chat:a", { after: 2 })).messages[0]!.id, 3);
  assert.equal(seen[1]!.url, "http://127.0.0.1:8787/v1/channels/chat:a/history?after=2");
  assert.equal((await ch.list({ limit: 5 })).channels[0]!.name, "chat:a");
  assert.equal(seen[2]!.url, "http://127.0.0.1:8787/v1/channels?limit=5");
  await assert.rejects(ch.publish("news", 1), (e: unknown) => e instanceof PylonError && e.code === "FORBIDDEN");
});

test("a subscription hands each message on once and resumes after the last after a drop", async () => {
  FakeSocket.made = [];
  const got: ChannelMessage[] = [];
  const ready: ChannelReady[] = [];
  const ch = channels("https://api.example.com/", { token: "tok", WebSocket: FakeSocket, backoff: { initialMs: 1, maxMs: 1, factor: 1 }, keepaliveMs: 0 });
  const sub = ch.subscribe("chat:a", { after: 1, onMessage: (m) => got.push(m), onReady: (r) => ready.push(r) });
  await tick();
  const first = FakeSocket.made[0]!;
  assert.equal(first.url, "wss://api.example.com/v1/channels/chat:a/ws?after=1");
  assert.deepEqual(first.protocols, ["pylon.v1.json", "bearer.tok"]);
  first.frame({ type: "message", id: 2, at: 5, data: "b" });
  first.frame({ type: "ready", v: 1, channel: "chat:a", lastId: 2, gap: false });
  first.frame({ type: "message", id: 3, at: 6, data: "c" });
  assert.deepEqual(got.map((m) => m.id), [2, 3]);
  assert.deepEqual(ready, [{ lastId: 2, gap: false }]);
  assert.equal(sub.lastId, 3);
  first.drop();
  await tick(20);
  const second = FakeSocket.made[1]!;
  assert.equal(second.url, "wss://api.example.com/v1/channels/chat:a/ws?after=3");
  // A repeat of what was handed on is not handed on again.
  second.frame({ type: "message", id: 3, at: 6, data: "c" });
  second.frame({ type: "message", id: 4, at: 7, data: "d" });
  assert.deepEqual(got.map((m) => m.id), [2, 3, 4]);
  sub.close();
  assert.ok(second.closed);
  second.drop();
  await tick(20);
  assert.equal(FakeSocket.made.length, 2, "no reconnect after close");
});

test("without after: live only, and a reconnect resumes after ready's lastId", async () => {
  FakeSocket.made = [];
  const ch = channels("http://h", { WebSocket: FakeSocket, backoff: { initialMs: 1, maxMs: 1, factor: 1 }, keepaliveMs: 0 });
  const errors: string[] = [];
  const sub = ch.subscribe("news", { onMessage: () => {}, onError: (e) => errors.push(e.code) });
  await tick();
  assert.equal(FakeSocket.made[0]!.url, "ws://h/v1/channels/news/ws");
  assert.deepEqual(FakeSocket.made[0]!.protocols, ["pylon.v1.json"]);
  FakeSocket.made[0]!.frame({ type: "ready", v: 1, channel: "news", lastId: 7, gap: false });
  FakeSocket.made[0]!.frame({ type: "error", code: "BAD_REQUEST", message: "x" });
  assert.deepEqual(errors, ["BAD_REQUEST"]);
  FakeSocket.made[0]!.drop();
  await tick(20);
  assert.equal(FakeSocket.made[1]!.url, "ws://h/v1/channels/news/ws?after=7");
  sub.close();
});
