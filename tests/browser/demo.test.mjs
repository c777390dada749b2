// Browser end-to-end test of the demo app: headless Chromium (Debian's
// package, driven by playwright-core) opens the board in two pages against
// a real `wrangler dev`, writes in one and sees it in the other; then the
// server is killed with SIGKILL and restarted on the same port and storage,
// and both pages converge again. Then, on the same server, two pages
// speaking pylon.v1.postcard (`?encoding=postcard`) converge the same way,
// over binary frames. Last, the board as a kanban runs on the board's
// server functions: two pages see a card added through `addCardChecked`
// and moved with `moveCard` (by keyboard), the live `boardSummary` follows
// on both, an empty title is refused inline (EMPTY_TITLE) and adds nothing,
// and `archiveDone` and `archiveColumn` take cards off both boards. And
// attachments (docs/files.md): a PNG attached to a card with its 📎 on one
// page goes through the Worker into local R2 and its Attachment row into
// the room's shard, so the other page shows it, decoded, under the same
// card, loaded from /v1/files/{room}/{id}. Last, /api.html renders the
// Worker's OpenAPI document from its own origin only. Every
// page runs under public/_headers' CSP without a violation. Screenshots of
// the pages on failure go to target/browser/ (the shared parts are in
// support.mjs).
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
 * frames and the text frames themselves; `violations` the CSP violations
 * the page reported.
 */
async function openBoard({ dev, browser, track }, room, name, encoding) {
  const page = track(await browser.newPage(), `${name}-${encoding}`);
  const frames = { binary: 0, text: [] };
  const violations = [];
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy/i.test(m.text())) violations.push(m.text());
  });
  page.on("websocket", (ws) => ws.on("framereceived", ({ payload }) => {
    if (typeof payload === "string") frames.text.push(payload);
    else frames.binary++;
  }));
  const q = encoding === "json" ? "" : `&encoding=${encoding}`;
  await page.goto(`http://127.0.0.1:${dev.port}/?room=${room}&name=${name}${q}`);
  await page.waitForSelector(`#conn[data-state="live"][data-encoding="${encoding}"]`, { timeout: WAIT });
  return Object.assign(page, { frames, violations });
}

/** The titles the server holds for the board of `room` (those matching `where`), in board order. */
async function serverTitles(dev, room, where = undefined) {
  const r = await fetch(`http://127.0.0.1:${dev.port}/v1/shards/${room}/query`, {
    method: "POST", body: JSON.stringify({ entity: "Card", where, order: ["position", "createdAt"] }),
  });
  return (await r.json()).rows.map((c) => c.title);
}

test("two pages share a live board, across a kill -9 of the server; two postcard pages too; the kanban's server functions; attachments; the API viewer", { timeout: 360_000 }, async () => {
  // One server and one browser for all four: each start costs seconds of
  // the test command's budget.
  await withDevAndBrowser({ name: "demo", migrate: true }, async (ctx) => {
    await jsonAcrossKill9(ctx);
    await postcardConverges(ctx);
    await kanbanFunctions(ctx);
    await attachmentShown(ctx);
    await apiViewer(ctx);
  });
});

/** /api.html renders the Worker's own OpenAPI document, with no other origin and no CSP violation. */
async function apiViewer({ dev, browser, track }) {
  const page = track(await browser.newPage(), "api");
  const violations = [];
  const origins = new Set();
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy/i.test(m.text())) violations.push(m.text());
  });
  page.on("request", (r) => origins.add(new URL(r.url()).origin));
  await page.goto(`http://127.0.0.1:${dev.port}/api.html`);
  await page.waitForFunction(() => Number(document.getElementById("api-count").textContent) > 0, null, { timeout: WAIT });
  const doc = await (await fetch(`http://127.0.0.1:${dev.port}/v1/openapi.json`)).json();
  const ops = Object.values(doc.paths).flatMap((item) => Object.keys(item).filter((k) => k !== "parameters"));
  assert.equal(await page.textContent("#api-count"), String(ops.length));
  // A router route and a server function, each under its tag, with its "Who:".
  for (const id of ["queryShard", "fn_moveCard"]) {
    await page.click(`#${id} summary`);
    assert.match(await page.textContent(`#${id}`), /Who:/);
  }
  assert.ok(await page.locator("#schema-Card").count(), "the Card entity's schema is listed");
  assert.equal(await page.locator("#api-error").isHidden(), true);
  assert.deepEqual([...origins], [`http://127.0.0.1:${dev.port}`]);
  assert.deepEqual(violations, []);
  await page.close();
}

// A 1×1 PNG.
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
  "base64",
);

/** A PNG attached on one page shows under the same card on another, and its bytes are the ones sent. */
async function attachmentShown(ctx) {
  const room = `files-${process.pid}-${Date.now()}`;
  const [alice, bob] = [await openBoard(ctx, room, "alice", "json"), await openBoard(ctx, room, "bob", "json")];
  await alice.fill("#title", "with a file");
  await alice.press("#title", "Enter");
  const card = '#cards li:has-text("with a file")';
  await bob.waitForSelector(card, { timeout: WAIT });

  await alice.setInputFiles(`${card} input[type=file]`, { name: "dot.png", mimeType: "image/png", buffer: PNG });
  const img = `${card} .files img.thumb[alt="dot.png"]`;
  for (const p of [alice, bob]) {
    await p.waitForSelector(img, { timeout: WAIT });
    // The image decoded: its bytes came back from R2 as they went in.
    await p.waitForFunction(
      () => [...document.querySelectorAll("#cards .files img.thumb")].some((i) => i.alt === "dot.png" && i.naturalWidth === 1),
      null, { timeout: WAIT },
    );
  }
  const src = await bob.getAttribute(img, "src");
  assert.match(src, new RegExp(`^/v1/files/${room}/f-`));
  const r = await fetch(`http://127.0.0.1:${ctx.dev.port}${src}`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "image/png");
  assert.deepEqual(Buffer.from(await r.arrayBuffer()), PNG);
  assert.equal(await alice.locator("#error").isHidden(), true);
  for (const p of [alice, bob]) assert.deepEqual(p.violations, []);
  for (const p of [alice, bob]) await p.close();
}

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
  for (const p of pages) assert.deepEqual(p.violations, []);
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
    assert.deepEqual(p.violations, []);
  }
  for (const p of [alice, bob]) await p.close();
}

/** Waits until `column` of the page's board shows exactly the titles `want`, in order. */
const waitColumn = (page, column, want) =>
  page.waitForFunction(
    ([c, w]) => JSON.stringify([...document.querySelectorAll(`#cards section[data-column="${c}"] li .title`)].map((e) => e.textContent)) === w,
    [column, JSON.stringify(want)], { timeout: WAIT },
  );
/** Waits until the page's summary line (the watched `boardSummary`) says `total` cards, so many per column. */
const waitSummary = (page, total, columns) =>
  page.waitForFunction(
    ([t, c]) => {
      const s = document.getElementById("summary").dataset;
      return s.total === t && s.columns === c;
    },
    [String(total), JSON.stringify(columns)], { timeout: WAIT },
  );

/** The kanban on the board's server functions, seen from two pages. */
async function kanbanFunctions(ctx) {
  const room = `browser-fn-${process.pid}-${Date.now()}`;
  const pages = [await openBoard(ctx, room, "ann", "json"), await openBoard(ctx, room, "ben", "json")];
  const [ann, ben] = pages;
  for (const p of pages) await waitSummary(p, 0, {});

  // Ann adds a card through the form (addCardChecked); Ben sees it in todo.
  await ann.fill("#title", "write the plan");
  await ann.press("#title", "Enter");
  await waitColumn(ben, "todo", ["write the plan"]);
  for (const p of pages) await waitSummary(p, 1, { todo: 1 });

  // Ann moves it right with the keyboard (moveCard); Ben sees it in doing.
  await ann.locator('#cards li:has-text("write the plan") button[data-action="right"]').press("Enter");
  await waitColumn(ben, "doing", ["write the plan"]);
  await waitColumn(ben, "todo", []);
  for (const p of pages) await waitSummary(p, 1, { doing: 1 });
  // The focus followed the card, so another Enter would move it on.
  assert.equal(await ann.evaluate(() => `${document.activeElement.closest("li").dataset.column}/${document.activeElement.dataset.action}`), "doing/right");

  // An empty title: the server refuses it, the form says why, nothing is added.
  await ann.fill("#title", "   ");
  await ann.press("#title", "Enter");
  await ann.waitForSelector('#add-error[data-code="EMPTY_TITLE"]:not([hidden])', { timeout: WAIT });
  assert.deepEqual(await serverTitles(ctx.dev, room), ["write the plan"]);

  // A card straight into doing; Ben ticks it and archives the done cards (archiveDone, in Rust).
  await ann.selectOption("#column", "doing");
  await ann.fill("#title", "review it");
  await ann.press("#title", "Enter");
  await waitColumn(ben, "doing", ["write the plan", "review it"]);
  await ann.waitForSelector("#add-error[hidden]", { state: "attached", timeout: WAIT });
  await ben.check('#cards li:has-text("review it") input[type=checkbox]');
  await ben.click("#archive-done");
  for (const p of pages) await waitColumn(p, "doing", ["write the plan"]);

  // Ann archives the doing column (archiveColumn): both boards are empty,
  // and the cards stay in storage, archived.
  await ann.click('#cards section[data-column="doing"] button[data-action="archive-column"]');
  for (const p of pages) {
    await waitSummary(p, 0, {});
    await p.waitForFunction(() => document.querySelectorAll("#cards li").length === 0, null, { timeout: WAIT });
  }
  assert.deepEqual((await serverTitles(ctx.dev, room, { archived: true })).sort(), ["review it", "write the plan"]);
  for (const p of pages) assert.deepEqual(p.violations, []);
}
