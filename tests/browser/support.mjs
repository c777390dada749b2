// What the browser tests share: a `wrangler dev` of the board on a free
// port and its own storage (killable with SIGKILL and restartable on both),
// headless Chromium (Debian's package, driven by playwright-core), test
// tokens signed with the development secret, and, when a test fails,
// screenshots of its pages (target/browser/) and the end of wrangler's log.

import { spawn, spawnSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, mkdirSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

export const root = resolve(import.meta.dirname, "../..");
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
/** How long a page may take to show what a test waits for. */
export const WAIT = 30_000;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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

/** wrangler dev in its own process group, so SIGKILL reaches workerd too. */
export class Dev {
  constructor(port, persist, log) {
    Object.assign(this, { port, persist, log });
  }

  get origin() {
    return `http://127.0.0.1:${this.port}`;
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
        const r = await fetch(`${this.origin}/healthz`);
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

/** The development secret wrangler dev reads from .dev.vars. */
function devSecret() {
  const vars = readFileSync(join(root, ".dev.vars"), "utf8");
  const m = vars.match(/^PYLON_JWT_SECRET="([^"]+)"/m);
  if (!m) throw new Error(".dev.vars has no PYLON_JWT_SECRET");
  return m[1];
}

/** An HS256 token for the board (audience `pylon-dev`), valid for an hour. */
export function devToken(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ aud: "pylon-dev", exp: Math.floor(Date.now() / 1000) + 3600, ...claims })}`;
  return `${body}.${createHmac("sha256", devSecret()).update(body).digest("base64url")}`;
}

/**
 * Runs `body({ dev, browser, track })` against a fresh `wrangler dev` and
 * Chromium, and cleans both up. `track(page, label)` registers a page for
 * the failure screenshots and its console errors; `migrate` applies the
 * D1 migrations first (the board's live queries need them, simulations
 * do not).
 */
export async function withDevAndBrowser({ name, migrate = false }, body) {
  const dir = mkdtempSync(join(tmpdir(), `pylon-${name}-`));
  const persist = join(dir, "state");
  mkdirSync(persist);
  const log = join(dir, "wrangler.log");
  if (migrate) {
    spawnSync("bash", ["-c", `source scripts/env.sh && wrangler d1 migrations apply DB --local --persist-to '${persist}'`],
      { cwd: root, stdio: "ignore" });
  }
  const dev = new Dev(await freePort(), persist, log);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const pages = [];
  const track = (page, label) => {
    pages.push([label, page]);
    page.on("pageerror", (e) => console.error(`[${label}] page error:`, e.message));
    return page;
  };
  try {
    await dev.start();
    await body({ dev, browser, track });
  } catch (e) {
    const shots = join(root, "target", "browser");
    mkdirSync(shots, { recursive: true });
    for (const [label, p] of pages) {
      await p.screenshot({ path: join(shots, `${name}-${label}.png`), fullPage: true }).catch(() => {});
    }
    let tail = "";
    try {
      tail = readFileSync(log, "utf8").split("\n").slice(-60).join("\n");
    } catch {}
    console.error(`screenshots in ${shots}; wrangler log:\n${tail}`);
    throw e;
  } finally {
    await browser.close().catch(() => {});
    dev.kill9();
    rmSync(dir, { recursive: true, force: true });
  }
}
