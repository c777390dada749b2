// Browser end-to-end test of the demo app: headless Chromium (Debian's
// package, driven by playwright-core) opens the board in two pages against
// a real `wrangler dev`, writes in one and sees it in the other; then the
// server is killed with SIGKILL and restarted on the same port and storage,
// and both pages converge again. Screenshots of both pages on failure go to
// target/browser/.
//
// Run: bash scripts/test.sh, or after a build:
//   node --test tests/browser/demo.test.mjs   (pinned Node 22 first on PATH)

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, openSync, rmSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const root = resolve(import.meta.dirname, "../..");
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const WAIT = 30_000;

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

async function portFree(port) {
  return new Promise((ok) => {
    const s = createServer();
    s.once("error", () => ok(false));
    s.listen(port, "127.0.0.1", () => s.close(() => ok(true)));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** wrangler dev in its own process group, so SIGKILL reaches workerd too. */
class Dev {
  constructor(port, persist, log) {
    Object.assign(this, { port, persist, log });
  }

  async start() {
    const deadline = Date.now() + 30_000;
    while (!(await portFree(this.port))) {
      if (Date.now() > deadline) throw new Error(`port ${this.port} stays busy`);
      await sleep(100);
    }
    const out = openSync(this.log, "a");
    this.child = spawn(
      "bash",
      ["-c", `source scripts/env.sh && exec wrangler dev --ip 127.0.0.1 --port ${this.port} ` +
        `--inspector-port 0 --persist-to '${this.persist}'`],
      { cwd: root, env: { ...process.env, PYLON_SKIP_BUILD: "1" }, stdio: ["ignore", out, out], detached: true },
    );
    const until = Date.now() + 90_000;
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`wrangler dev exited with ${this.child.exitCode}`);
      try {
        const r = await fetch(`http://127.0.0.1:${this.port}/healthz`);
        if (r.ok) return;
      } catch {}
      if (Date.now() > until) throw new Error("wrangler dev was not ready in 90 s");
      await sleep(200);
    }
  }

  kill9() {
    if (this.child && this.child.exitCode === null) {
      try {
        process.kill(-this.child.pid, "SIGKILL");
      } catch {}
    }
  }
}

test("two pages share a live board, across a kill -9 of the server", { timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "pylon-browser-"));
  const persist = join(dir, "state");
  mkdirSync(persist);
  const log = join(dir, "wrangler.log");
  spawnSync("bash", ["-c", `source scripts/env.sh && wrangler d1 migrations apply DB --local --persist-to '${persist}'`],
    { cwd: root, stdio: "ignore" });
  const dev = new Dev(await freePort(), persist, log);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const room = `browser-${process.pid}-${Date.now()}`;
  let pages = [];
  try {
    await dev.start();
    const url = (name) => `http://127.0.0.1:${dev.port}/?room=${room}&name=${name}`;
    const open = async (name) => {
      const page = await browser.newPage();
      page.on("pageerror", (e) => console.error(`[${name}] page error:`, e.message));
      await page.goto(url(name));
      await page.waitForSelector('#conn[data-state="live"]', { timeout: WAIT });
      return page;
    };
    const [alice, bob] = (pages = [await open("alice"), await open("bob")]);
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
  } catch (e) {
    const shots = join(root, "target", "browser");
    mkdirSync(shots, { recursive: true });
    for (const [i, p] of pages.entries()) {
      await p.screenshot({ path: join(shots, `page-${i}.png`), fullPage: true }).catch(() => {});
    }
    console.error(`screenshots in ${shots}; wrangler log:\n${readFileSync(log, "utf8").split("\n").slice(-60).join("\n")}`);
    throw e;
  } finally {
    await browser.close().catch(() => {});
    dev.kill9();
    rmSync(dir, { recursive: true, force: true });
  }
});
