// rooms() against a scripted fetch: each method's route, method and body,
// the bearer token, the answers as given, and a refusal's code.
import assert from "node:assert/strict";
import { test } from "node:test";
import { PylonError, rooms, type Json } from "../dist/index.js";

interface Seen {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: Json | undefined;
}

function scripted(answers: [number, unknown][]): { fetch: typeof fetch; seen: Seen[] } {
  const seen: Seen[] = [];
  const fake = async (url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const headers = (init?.headers ?? {}) as Record<string, string>;
    const body = typeof init?.body === "string" ? (JSON.parse(init.body) as Json) : undefined;
    seen.push({ url: String(url), method: init?.method ?? "GET", headers, body });
    const next = answers.shift();
    if (next === undefined) throw new Error("no answer scripted");
    return new Response(JSON.stringify(next[1]), { status: next[0] });
  };
  return { fetch: fake as typeof fetch, seen };
}

const INFO = { room: "team:1", size: 1, sockets: 0, members: [{ conn: "member:bot", member: "bot", state: {} }] };

test("rooms: each method's route, method and body, with the bearer token", async () => {
  const { fetch, seen } = scripted([
    [200, { member: "bot" }],
    [200, { member: "bot" }],
    [200, {}],
    [200, INFO],
    [200, { rooms: [{ room: "team:1", members: 1, updated: null }], next: null }],
    [200, { member: "bot", left: true }],
  ]);
  const r = rooms("ws://127.0.0.1:8787/", { token: "tok", fetch });
  assert.deepEqual(await r.join("team:1", "bot", { s: 1 }, { ttlMs: 5000 }), { member: "bot" });
  assert.equal(seen[0]!.url, "http://127.0.0.1:8787/v1/rooms/team:1/join");
  assert.equal(seen[0]!.method, "POST");
  assert.equal(seen[0]!.headers.authorization, "Bearer tok");
  assert.deepEqual(seen[0]!.body, { member: "bot", presence: { s: 1 }, ttlMs: 5000 });
  await r.setPresence("team:1", "bot", { s: 2 });
  assert.equal(seen[1]!.url, "http://127.0.0.1:8787/v1/rooms/team:1/presence");
  assert.deepEqual(seen[1]!.body, { member: "bot", presence: { s: 2 } });
  await r.broadcast("team:1", "news");
  assert.deepEqual(seen[2]!.body, { topic: "news" });
  assert.deepEqual(await r.get("team:1"), INFO);
  assert.equal(seen[3]!.url, "http://127.0.0.1:8787/v1/rooms/team:1");
  assert.equal(seen[3]!.method, "GET");
  const page = await r.list({ after: "a", limit: 10 });
  assert.equal(page.rooms[0]!.room, "team:1");
  assert.equal(seen[4]!.url, "http://127.0.0.1:8787/v1/rooms?after=a&limit=10");
  assert.deepEqual(await r.leave("team:1", "bot"), { member: "bot", left: true });
  assert.deepEqual(seen[5]!.body, { member: "bot" });
});

test("rooms: a refusal rejects with the server's code and status", async () => {
  const { fetch } = scripted([[413, { error: { code: "PRESENCE_TOO_LARGE", message: "too big" } }]]);
  const r = rooms("http://127.0.0.1:8787", { fetch });
  await assert.rejects(r.join("lobby", "me", "x"), (e: unknown) => e instanceof PylonError && e.code === "PRESENCE_TOO_LARGE");
});
