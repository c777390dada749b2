// Browser check of attachments on the demo board (docs/files.md): in
// headless Chromium against a real `wrangler dev`, one page attaches a PNG
// to a card with the card's 📎 (a file input); the upload goes through the
// Worker into local R2 and its Attachment row into the room's shard, so a
// second page shows the image under the same card, loaded from
// /v1/files/{room}/{id}. No CSP violation on either page.
//
// Run after a build: node --test tests/browser/files.test.mjs (pinned Node 22 first on PATH)

import { test } from "node:test";
import assert from "node:assert/strict";
import { WAIT, withDevAndBrowser } from "./support.mjs";

// A 1×1 PNG.
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
  "base64",
);

async function openBoard({ dev, browser, track }, room, name) {
  const page = track(await browser.newPage(), name);
  const violations = [];
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy/i.test(m.text())) violations.push(m.text());
  });
  await page.goto(`http://127.0.0.1:${dev.port}/?room=${room}&name=${name}`);
  await page.waitForSelector('#conn[data-state="live"]', { timeout: WAIT });
  return Object.assign(page, { violations });
}

test("a PNG attached to a card on one page shows under the card on another", { timeout: 180_000 }, async () => {
  await withDevAndBrowser({ name: "files", migrate: true }, async (ctx) => {
    const room = `files-${process.pid}-${Date.now()}`;
    const [alice, bob] = [await openBoard(ctx, room, "alice"), await openBoard(ctx, room, "bob")];
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
  });
});
