import assert from "node:assert/strict";
import { test } from "node:test";
import { identityEnded, jwtExpiry, jwtSubject, renewalDelay } from "../dist/index.js";

const b64url = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");

test("jwtExpiry reads exp from the payload without verifying; anything else is undefined", () => {
  assert.equal(jwtExpiry(`${b64url({ alg: "HS256" })}.${b64url({ sub: "ann", exp: 1_700_000_000 })}.sig`), 1_700_000_000);
  // base64url without padding, and characters - and _ in it.
  const odd = `h.${b64url({ exp: 12, n: "\u00ff\u00fe>>>???" })}.s`;
  assert.equal(jwtExpiry(odd), 12);
  for (const t of [undefined, "", "opaque", "a.b.c", `h.${b64url({ exp: "soon" })}.s`, `h.${b64url({ sub: "x" })}.s`, `h.${b64url([1])}.s`]) {
    assert.equal(jwtExpiry(t), undefined, String(t));
  }
});

test("jwtSubject reads sub from the payload without verifying; anything else is undefined", () => {
  assert.equal(jwtSubject(`${b64url({ alg: "HS256" })}.${b64url({ sub: "pilot-a", exp: 1 })}.sig`), "pilot-a");
  for (const t of [undefined, "opaque", `h.${b64url({ sub: 7 })}.s`, `h.${b64url({ sub: "" })}.s`, `h.${b64url({ exp: 1 })}.s`, `h.${b64url(["sub"])}.s`]) {
    assert.equal(jwtSubject(t), undefined, String(t));
  }
});

test("renewalDelay: the margin ahead of exp, never sooner than halfway", () => {
  const now = 1_000_000;
  assert.equal(renewalDelay(1_000 + 900, now, 20_000), 880_000); // 15 min token: 20 s early
  assert.equal(renewalDelay(1_000 + 3, now, 20_000), 1_500); // shorter than the margin: halfway
  assert.equal(renewalDelay(1_000 - 5, now, 20_000), 0); // already expired: now
});

test("identityEnded: err UNAUTHORIZED with TOKEN_EXPIRED or SESSION_REVOKED", () => {
  assert.ok(identityEnded({ code: "UNAUTHORIZED", message: "TOKEN_EXPIRED: the connection's token expired" }));
  assert.ok(identityEnded({ code: "UNAUTHORIZED", message: "SESSION_REVOKED: revoked" }));
  assert.ok(!identityEnded({ code: "UNAUTHORIZED", message: "EXPIRED: the token has expired" }));
  assert.ok(!identityEnded({ code: "FORBIDDEN", message: "TOKEN_EXPIRED: no" }));
});
