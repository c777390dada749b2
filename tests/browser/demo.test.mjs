// Browser end-to-end test of the demo app: headless Chromium (Debian's
// package, driven by playwright-core) opens the board in two pages against
// a real `wrangler dev`, writes in one and sees it in the other; then the
// server is killed with SIGKILL and restarted on the same port and storage,
// and both pages converge again. Screenshots of both pages on failure go to
// target/browser/ (the shared parts are in support.mjs).
//
// Run: bash scripts/test.sh, or after a build:
//   node --test tests/browser/demo.test.mjs   (pinned Node 22 first on PATH)

import { test } from "node:test";
import assert from "node:assert/strict";
import { WAIT, withDevAndBrowser } from "./support.mjs";

test("two pages share a live board, across a kill -9 of the server", { timeout: 240_000 }, async () => {
  const room = `browser-${process.pid}-${Date.now()}`;
  await withDevAndBrowser({ name: "demo", migrate: true }, async ({ dev, browser, track }) => {
    const url = (name) => `http://127.0.0.1:${dev.port}/?room=${room}&name=${name}`;
    const open = async (name) => {
      const page = track(await browser.newPage(), name);
      await page.goto(url(name));
      await page.waitForSelector('#conn[data-state="live"]', { timeout: WAIT });
      return page;
    };
    const pages = [await open("alice"), await open("bob")];
    const [alice, bob] = pages;
    const titles = (page) => page.$$eval("#cards li .title", (els) => els.map((e) => e.textContent));
    const waitTitles = (page, want) =>
      page.waitForFunction(
        (w) => JSON.stringify([...document.querySelectorAll("#cards li .title")].map((e) => e.textContent)) === w,
        JSON.stringify(want), { timeout: WAIT },
      );

    // Presence: both see two people here.
    for (const p of pages) await p.waitForFunction(() => document.getElementById("here").textContent === "2", null, { timeout: WAIT });

    // Alice writes; Bob sees it.
    await alice.fill("#title", "first card");
    await alice.press("#title", "Enter");
    await waitTitles(bob, ["first card"]);

    // Bob ticks it; Alice sees it done.
    await bob.check('#cards li:has-text("first card") input[type=checkbox]');
    await alice.waitForSelector('#cards li.done:has-text("first card")', { timeout: WAIT });

    // The server dies without warning and comes back on the same storage.
    dev.kill9();
    await dev.start();
    for (const p of pages) await p.waitForSelector('#conn[data-state="live"]', { timeout: 60_000 });

    // Writes flow again, both ways, and both pages agree on every row.
    await bob.fill("#title", "after the restart");
    await bob.press("#title", "Enter");
    // Alice writes once she sees Bob's card: the page places a new card
    // after the last one it shows, so two cards written blind would share a
    // position and a second, and their order would be the ids' (random).
    await waitTitles(alice, ["first card", "after the restart"]);
    await alice.fill("#title", "and another");
    await alice.press("#title", "Enter");
    const want = ["first card", "after the restart", "and another"];
    await waitTitles(alice, want);
    await waitTitles(bob, want);
    assert.deepEqual(await titles(alice), await titles(bob));
    assert.equal(await alice.locator("#cards li.done").count(), 1);

    // The server's own view matches what the pages show.
    const r = await fetch(`http://127.0.0.1:${dev.port}/v1/shards/${room}/query`, {
      method: "POST", body: JSON.stringify({ entity: "Card", order: ["position", "createdAt"] }),
    });
    const body = await r.json();
    assert.deepEqual(body.rows.map((c) => c.title), want);
  });
});
