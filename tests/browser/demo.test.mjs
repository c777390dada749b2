// Browser end-to-end test of the demo app: headless Chromium (Debian's
// package, driven by playwright-core) opens the board in two pages against
// a real `wrangler dev`, writes in one and sees it in the other; then the
// server is killed with SIGKILL and restarted on the same port and storage,
// and both pages converge again. Then, on the same server, two pages
// speaking pylon.v1.postcard (`?encoding=postcard`) converge the same way,
// over binary frames. Screenshots of the pages on failure go to
// target/browser/ (the shared parts are in support.mjs).
//
// Run: bash scripts/test.sh, or after a build:
//   node --test tests/browser/demo.test.mjs   (pinned Node 22 first on PATH)

import { test } from "node:test";
import assert from "node:assert/strict";
import { WAIT, withDevAndBrowser } from "./support.mjs";

const titles = (page) => page.$$eval("#cards li .title", (els) => els.map((e) => e.textContent));
const waitTitles = (page, want) =>
  page.waitForFunction(
    (w) => JSON.stringify([...document.querySelectorAll("#cards li .title")].map((e) => e.textContent)) === w,
    JSON.stringify(want), { timeout: WAIT },
  );
const waitHere = (page, n) =>
  page.waitForFunction((n) => document.getElementById("here").textContent === n, String(n), { timeout: WAIT });

/**
 * The board of `room` in a new page, live in `encoding` (the welcome says
 * so); `frames` keeps what its sockets receive: the number of binary
 * frames and the text frames themselves.
 */
async function openBoard({ dev, browser, track }, room, name, encoding) {
  const page = track(await browser.newPage(), `${name}-${encoding}`);
  const frames = { binary: 0, text: [] };
  page.on("websocket", (ws) => ws.on("framereceived", ({ payload }) => {
    if (typeof payload === "string") frames.text.push(payload);
    else frames.binary++;
  }));
  const q = encoding === "json" ? "" : `&encoding=${encoding}`;
  await page.goto(`http://127.0.0.1:${dev.port}/?room=${room}&name=${name}${q}`);
  await page.waitForSelector(`#conn[data-state="live"][data-encoding="${encoding}"]`, { timeout: WAIT });
  return Object.assign(page, { frames });
}

/** The titles the server holds for the board of `room`, in board order. */
async function serverTitles(dev, room) {
  const r = await fetch(`http://127.0.0.1:${dev.port}/v1/shards/${room}/query`, {
    method: "POST", body: JSON.stringify({ entity: "Card", order: ["position", "createdAt"] }),
  });
  return (await r.json()).rows.map((c) => c.title);
}

test("two pages share a live board, across a kill -9 of the server; two postcard pages too", { timeout: 300_000 }, async () => {
  await withDevAndBrowser({ name: "demo", migrate: true }, async (ctx) => {
    await jsonAcrossKill9(ctx);
    await postcardConverges(ctx);
  });
});

async function jsonAcrossKill9(ctx) {
  const { dev } = ctx;
  const room = `browser-${process.pid}-${Date.now()}`;
  const pages = [await openBoard(ctx, room, "alice", "json"), await openBoard(ctx, room, "bob", "json")];
  const [alice, bob] = pages;

  // Presence: both see two people here.
  for (const p of pages) await waitHere(p, 2);

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
  assert.deepEqual(await serverTitles(dev, room), want);
  for (const p of pages) assert.equal(p.frames.binary, 0, "JSON comes in text frames only");
  for (const p of pages) await p.close();
}

/** The same board in pylon.v1.postcard: a write and a tick each way (no restart). */
async function postcardConverges(ctx) {
  const room = `browser-pc-${process.pid}-${Date.now()}`;
  const [alice, bob] = [await openBoard(ctx, room, "alice", "postcard"), await openBoard(ctx, room, "bob", "postcard")];
  for (const p of [alice, bob]) await waitHere(p, 2);
  await alice.fill("#title", "binary card");
  await alice.press("#title", "Enter");
  await waitTitles(bob, ["binary card"]);
  await bob.check('#cards li:has-text("binary card") input[type=checkbox]');
  await alice.waitForSelector('#cards li.done:has-text("binary card")', { timeout: WAIT });
  await bob.fill("#title", "é and 😀");
  await bob.press("#title", "Enter");
  const want = ["binary card", "é and 😀"];
  await waitTitles(alice, want);
  await waitTitles(bob, want);
  assert.deepEqual(await serverTitles(ctx.dev, room), want);
  for (const p of [alice, bob]) {
    // welcome, presence, snap, diffs, acks: all binary; a text frame can
    // only be the keepalive's answer.
    assert.ok(p.frames.binary >= 5, `binary frames: ${p.frames.binary}`);
    assert.deepEqual(p.frames.text.filter((t) => t !== "pylon.keepalive.ack"), []);
  }
}
