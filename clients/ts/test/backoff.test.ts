import assert from "node:assert/strict";
import { test } from "node:test";
import { backoffDelay, DEFAULT_BACKOFF } from "../dist/index.js";

test("delays grow exponentially with jitter in [d/2, d] and stay capped", () => {
  const b = { initialMs: 100, maxMs: 1000, factor: 2 };
  for (let attempt = 0; attempt < 20; attempt++) {
    const cap = Math.min(100 * 2 ** attempt, 1000);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(b, attempt);
      assert.ok(d >= cap / 2 && d <= cap, `attempt ${attempt}: ${d} ms, cap ${cap}`);
    }
    assert.equal(backoffDelay(b, attempt, () => 0), cap / 2, "the lower bound");
    assert.ok(Math.abs(backoffDelay(b, attempt, () => 1 - 2 ** -53) - cap) < 1e-9, "the upper bound");
  }
  const samples = new Set(Array.from({ length: 50 }, () => backoffDelay(b, 3)));
  assert.ok(samples.size > 40, "delays are jittered");
});

test("defaults match the Rust client: 250 ms, x2, at most 10 s", () => {
  assert.deepEqual({ ...DEFAULT_BACKOFF }, { initialMs: 250, maxMs: 10_000, factor: 2 });
  assert.equal(backoffDelay(DEFAULT_BACKOFF, 0, () => 0), 125);
  assert.equal(backoffDelay(DEFAULT_BACKOFF, 100, () => 0), 5000);
  assert.ok(Number.isFinite(backoffDelay(DEFAULT_BACKOFF, 1e9)));
});
