// Browser end-to-end test of the plane game (public/plane.html, a
// simulation shard of kind `plane` at 20 Hz): two signed-in players in
// headless Chromium against a real `wrangler dev` fly to meet, one steers
// right and the other sees it move; then the server is killed with SIGKILL
// and restarted on the same port and storage, both pages reconnect as the
// same players, and the position is where it was, on both pages and in the
// shard's own stats. Last, "Find a match" pairs them into a fresh plane.
//
// Run: bash scripts/test.sh, or after a build:
//   node --test tests/browser/plane.test.mjs   (pinned Node 22 first on PATH)

import { test } from "node:test";
import assert from "node:assert/strict";
import { devToken, sleep, WAIT, withDevAndBrowser } from "./support.mjs";

/** Where two positions may differ and still be the same (the page rounds to 0.01). */
const SAME = 0.05;
const near = (a, b, d) => Math.hypot(a.x - b.x, a.y - b.y) <= d;

test("two players meet on a plane, one moves, and both positions survive a kill -9 of the server", { timeout: 120_000 }, async () => {
  const id = `plane-browser-${process.pid}`;
  await withDevAndBrowser({ name: "plane" }, async ({ dev, browser, track }) => {
    // The page must run under public/_headers' policy (no inline script or style).
    const violations = [];
    const open = async (pilot) => {
      const page = track(await browser.newPage(), pilot);
      page.on("console", (m) => {
        if (m.type() === "error" && /Content Security Policy/i.test(m.text())) violations.push(`[${pilot}] ${m.text()}`);
      });
      await page.goto(`${dev.origin}/plane.html?id=${id}#token=${devToken({ sub: pilot })}`);
      await page.waitForSelector('#conn[data-state="live"]', { timeout: WAIT });
      // The page's first input puts the player on the plane.
      await page.waitForSelector("#me[data-x]", { state: "attached", timeout: WAIT });
      return page;
    };
    const [a, b] = [await open("pilot-a"), await open("pilot-b")];
    assert.equal(await a.textContent("#who"), "pilot-a");

    /** The player's own position, as its page draws it. */
    const me = (page) => page.$eval("#me", (el) => ({ x: Number(el.dataset.x), y: Number(el.dataset.y) }));
    /** Where `page` draws `pilot`, or null when out of sight. */
    const seen = (page, pilot) =>
      page.evaluate((p) => {
        const el = document.querySelector(`#others [data-id="${p}"]`);
        return el ? { x: Number(el.dataset.x), y: Number(el.dataset.y) } : null;
      }, pilot);
    /** Waits until the player is within `d` of (x, y). */
    const waitNear = (page, x, y, d) =>
      page.waitForFunction(
        ([x, y, d]) => {
          const el = document.getElementById("me");
          return el.dataset.x !== undefined && Math.hypot(Number(el.dataset.x) - x, Number(el.dataset.y) - y) < d;
        },
        [x, y, d],
        { timeout: WAIT },
      );
    /** Clicks the plane at (x, y): the page flies its player there and stops. */
    const flyTo = async (page, x, y) => {
      const box = await page.locator("#plane").boundingBox();
      await page.mouse.click(box.x + (box.width * x) / 100, box.y + (box.height * y) / 100);
    };
    /** The player's position once it stopped moving (its last input reflected, two reads apart agree). */
    const settled = async (page) => {
      await page.waitForSelector("#me:not(.pending)", { state: "attached", timeout: WAIT });
      for (let last = await me(page); ; ) {
        await sleep(200);
        const now = await me(page);
        if (near(now, last, 0)) return now;
        last = now;
      }
    };

    // Players appear at random spots: both fly near the middle, 15 apart (sight is 30).
    await flyTo(a, 40, 50);
    await flyTo(b, 55, 50);
    await waitNear(a, 40, 50, 1.5);
    await waitNear(b, 55, 50, 1.5);
    await b.waitForSelector('#others [data-id="pilot-a"]', { state: "attached", timeout: WAIT });
    await a.waitForSelector('#others [data-id="pilot-b"]', { state: "attached", timeout: WAIT });
    const start = await settled(a);

    // A steers right; B sees A's marker move right; A stops.
    await a.click("#pad .right");
    await b.waitForFunction(
      (x0) => {
        const el = document.querySelector('#others [data-id="pilot-a"]');
        return el !== null && Number(el.dataset.x) >= x0 + 3;
      },
      start.x,
      { timeout: WAIT },
    );
    await a.click("#pad .stop");
    const at = await settled(a);
    assert.ok(at.x >= start.x + 3 && Math.abs(at.y - start.y) < SAME, `A moved right: ${JSON.stringify(start)} → ${JSON.stringify(at)}`);
    await b.waitForFunction(
      (at) => {
        const el = document.querySelector('#others [data-id="pilot-a"]');
        return el !== null && Math.hypot(Number(el.dataset.x) - at.x, Number(el.dataset.y) - at.y) <= 0.05;
      },
      at,
      { timeout: WAIT },
    );
    const bAt = await settled(b);
    const welcomes = await Promise.all([a, b].map((p) => p.$eval("#plane", (el) => Number(el.dataset.welcomes))));

    // The server dies without warning and comes back on the same storage.
    dev.kill9();
    for (const p of [a, b]) await p.waitForSelector('#conn:not([data-state="live"])', { state: "attached", timeout: WAIT });
    await dev.start();
    // Both reconnect as the same players and draw a snapshot of the new connection.
    for (const [i, p] of [a, b].entries()) {
      await p.waitForSelector('#conn[data-state="live"]', { timeout: WAIT });
      await p.waitForFunction((n) => Number(document.getElementById("plane").dataset.welcomes) > n, welcomes[i], { timeout: WAIT });
    }
    assert.equal(await a.textContent("#who"), "pilot-a");
    const after = await me(a);
    assert.ok(near(after, at, SAME), `A is where it stopped: ${JSON.stringify(at)}, now ${JSON.stringify(after)}`);
    assert.ok(near(await me(b), bAt, SAME), "B is where it stopped");
    const seenByB = await seen(b, "pilot-a");
    assert.ok(seenByB && near(seenByB, at, SAME), `B still sees A there: ${JSON.stringify(seenByB)}`);

    // The shard's own view: both players, A where the pages show it.
    const stats = await (await fetch(`${dev.origin}/v1/sims/plane/${id}`)).json();
    assert.equal(stats.players, 2);
    const aStats = stats.others.find((o) => o.id === "pilot-a");
    assert.ok(aStats && near(aStats, at, SAME), `the shard has A at ${JSON.stringify(aStats)}`);

    // Find a match: the `lobby` queue pairs the two into a fresh plane, which both pages join.
    await a.click("#match");
    await b.click("#match");
    for (const [p, other] of [[a, "pilot-b"], [b, "pilot-a"]]) {
      await p.waitForFunction((o) => document.getElementById("match-status").textContent === `matched with ${o}`, other, { timeout: WAIT });
      await p.waitForSelector('#conn[data-state="live"]', { timeout: WAIT });
      await p.waitForFunction(() => document.getElementById("players").textContent === "2", null, { timeout: WAIT });
    }
    const ids = [a, b].map((p) => new URL(p.url()).searchParams.get("id"));
    assert.match(ids[0], /^lobby-\d+$/);
    assert.equal(ids[1], ids[0], "both pages play the plane the queue chose");
    assert.deepEqual(violations, []);
  });
});
