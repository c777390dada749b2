import assert from "node:assert/strict";
import { test } from "node:test";
import { browserSession, readCookie, SessionError } from "../dist/index.js";

type Call = { url: string; init: RequestInit };

/** A fetch that plays /v1/auth/refresh and /logout and records calls. */
function fakeServer(answers: Array<{ status: number; body: unknown }>) {
  const calls: Call[] = [];
  const fetch = async (url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    calls.push({ url: String(url), init: init ?? {} });
    const a = answers.shift() ?? { status: 500, body: {} };
    return new Response(JSON.stringify(a.body), { status: a.status, headers: { "content-type": "application/json" } });
  };
  return { calls, fetch: fetch as typeof globalThis.fetch };
}

test("reads cookies", () => {
  assert.equal(readCookie("a=1; pylon_csrf=xyz; b=2", "pylon_csrf"), "xyz");
  assert.equal(readCookie("xpylon_csrf=1", "pylon_csrf"), undefined);
  assert.equal(readCookie("pylon_csrf=", "pylon_csrf"), undefined);
});

test("refreshes through the cookie with the CSRF header, caches until near expiry", async () => {
  let clock = 1_000_000;
  const server = fakeServer([
    { status: 200, body: { access_token: "a1", expires_in: 900 } },
    { status: 200, body: { access_token: "a2", expires_in: 900 } },
  ]);
  const s = browserSession({
    url: "https://api.example/",
    fetch: server.fetch,
    cookies: () => "pylon_csrf=tok",
    now: () => clock,
  });
  // Concurrent callers share one refresh (a second would reuse the token).
  const [t1, t2] = await Promise.all([s.token(), s.token()]);
  assert.deepEqual([t1, t2], ["a1", "a1"]);
  assert.equal(server.calls.length, 1);
  const c = server.calls[0]!;
  assert.equal(c.url, "https://api.example/v1/auth/refresh");
  assert.equal(c.init.method, "POST");
  assert.equal(c.init.credentials, "include");
  assert.deepEqual(c.init.headers, { "x-csrf-token": "tok" });
  clock += 800_000;
  assert.equal(await s.token(), "a1");
  clock += 80_000; // within 30 s of expiry
  assert.equal(await s.token(), "a2");
  assert.deepEqual(s.csrfHeaders(), { "x-csrf-token": "tok" });
});

test("a refused refresh is a SessionError with the server's code; logout posts", async () => {
  const server = fakeServer([
    { status: 401, body: { error: { code: "REFRESH_REUSED", message: "revoked" } } },
    { status: 200, body: { ok: true, revoked: true } },
  ]);
  const s = browserSession({ url: "https://api.example", fetch: server.fetch, cookies: () => "" });
  await assert.rejects(s.token(), (e: unknown) => e instanceof SessionError && e.code === "REFRESH_REUSED" && e.status === 401);
  await s.logout();
  assert.equal(server.calls[1]!.url, "https://api.example/v1/auth/logout");
  assert.deepEqual(server.calls[1]!.init.headers, {});
});
