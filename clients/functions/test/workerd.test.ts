// The I/O rule in workerd itself (the runtime the Worker runs in), with
// the bundle the build makes: the board's fetchInMutation, every guarded
// entry point (connect through the build's cloudflare:sockets shim), the
// race, and I/O outside a call while a raced handler is still running.
// A harness Worker calls `globalThis.__pylon_functions` with a bridge over
// an in-memory table, as the Rust side would.
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer as createTcpServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const scratch = mkdtempSync(join(tmpdir(), "pylon-functions-workerd-"));

const FUNCTIONS: Record<string, string> = {
  "ioInMutation.ts": `import { mutation, v } from "@pylon-workers/functions";
import { connect } from "cloudflare:sockets";
export default mutation({
  args: { what: v.string(), port: v.int() },
  handler: async (ctx, { what, port }) => {
    await ctx.db.insert("Card", { title: what });
    switch (what) {
      case "fetch": return (await fetch("http://127.0.0.1:" + port + "/")).status;
      case "connect": return String(connect("127.0.0.1:" + port));
      case "setTimeout": return String(setTimeout(() => {}, 0));
      case "setInterval": return String(setInterval(() => {}, 1000));
      case "scheduler.wait": return String(await (globalThis as any).scheduler.wait(1));
      case "caches": return String((globalThis as any).caches.default);
      case "new WebSocket": return String(new WebSocket("ws://127.0.0.1:" + port + "/"));
    }
    return ctx.error("UNKNOWN_IO", what);
  },
});`,
  "awaitsTimer.ts": `import { mutation } from "@pylon-workers/functions";
const late = ((globalThis as any).__late = {} as Record<string, unknown>);
export default mutation({
  handler: async (ctx) => {
    await ctx.db.insert("Card", { title: "in time" });
    await new Promise((resolve) => (globalThis as any).__platformSetTimeout(resolve, 50));
    try { await ctx.db.insert("Card", { title: "too late" }); } catch (e) { late.db = (e as any).code; }
    try { await fetch("http://127.0.0.1:9/"); } catch (e) { late.fetch = (e as any).code; }
    (late.done as () => void)();
  },
});`,
  "dbOnly.ts": `import { mutation, v } from "@pylon-workers/functions";
export default mutation({
  args: { n: v.int() },
  handler: async (ctx, { n }) => {
    for (let i = 0; i < n; i++) await ctx.db.get("Card", await ctx.db.insert("Card", { title: "c" + i }));
    return n;
  },
});`,
  "connectInAction.ts": `import { action, v } from "@pylon-workers/functions";
import { connect } from "cloudflare:sockets";
export default action({
  args: { port: v.int() },
  handler: async (ctx, { port }) => {
    const socket = connect("127.0.0.1:" + port);
    await socket.opened;
    await socket.close();
    return (await ctx.fetch("http://127.0.0.1:" + port + "/")).status;
  },
});`,
};

// Saves the platform's setTimeout before the functions' module wraps it (modules run in import order).
const CAPTURE = "globalThis.__platformSetTimeout = globalThis.setTimeout;\n";

const HARNESS = `import "./capture.js";
import "./functions.js";
const functions = globalThis.__pylon_functions;
const rows = new Map();
let next = 1;
const log = [];
function db(op, payloadJson) {
  const p = JSON.parse(payloadJson);
  log.push(op);
  if (op === "insert") { const id = "r" + next++; rows.set(id, { ...p.row, id }); return JSON.stringify({ ok: id }); }
  if (op === "get") return JSON.stringify({ ok: rows.get(p.id) ?? null });
  if (op === "query") return JSON.stringify({ ok: [...rows.values()] });
  return JSON.stringify({ ok: null });
}
const bridge = (kind) => ({ kind, auth: '{"userId":"u1","tenantId":null,"roles":[],"isAdmin":false}', db,
  call: (k, name, args) => functions.run(name, bridge(k), args) });
const json = (value) => new Response(JSON.stringify(value));
export default {
  async fetch(request) {
    const url = new URL(request.url);
    const q = (k) => url.searchParams.get(k);
    if (url.pathname === "/list") return json(functions.list());
    if (url.pathname === "/run") return new Response(await functions.run(q("name"), bridge(q("kind")), q("args") ?? "{}"));
    if (url.pathname === "/raced") {
      const late = globalThis.__late;
      const finished = new Promise((resolve) => { late.done = resolve; });
      const before = log.length;
      const result = JSON.parse(await functions.run("awaitsTimer", bridge("mutation"), "{}"));
      // The raced handler is still waiting for its timer; I/O here is outside it.
      const outside = (await fetch(q("to"))).status;
      await finished;
      return json({ result, outside, late: { db: late.db, fetch: late.fetch }, ops: log.slice(before) });
    }
    if (url.pathname === "/outside") {
      const socket = (await import("cloudflare:sockets")).connect("127.0.0.1:" + q("port"));
      await socket.opened;
      await socket.close();
      return json({ fetch: (await fetch(q("to"))).status, timer: await new Promise((r) => setTimeout(() => r("fired"), 1)) });
    }
    return new Response("no route", { status: 404 });
  },
};
`;

async function freePort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as AddressInfo;
  await new Promise((done) => server.close(done));
  return port;
}

let hits = 0;
const service = createHttpServer((_req, res) => {
  hits++;
  res.end("ok");
});
let servicePort = 0;
let workerdPort = 0;
let workerd: ChildProcess | undefined;
let workerdLog = "";

before(async () => {
  const app = join(scratch, "app");
  mkdirSync(join(app, "functions"), { recursive: true });
  for (const [name, text] of Object.entries(FUNCTIONS)) writeFileSync(join(app, "functions", name), text);
  copyFileSync(join(root, "examples/board/functions/fetchInMutation.ts"), join(app, "functions/fetchInMutation.ts"));
  const built = spawnSync("bash", [join(root, "scripts/build-functions.sh"), app], { encoding: "utf8" });
  assert.equal(built.status, 0, built.stderr);

  await new Promise<void>((done) => service.listen(0, "127.0.0.1", done));
  servicePort = (service.address() as AddressInfo).port;
  workerdPort = await freePort();
  const dir = join(app, "build");
  writeFileSync(join(dir, "capture.js"), CAPTURE);
  writeFileSync(join(dir, "harness.js"), HARNESS);
  // The Worker's compatibility date (wrangler.toml) and no flags: Node's
  // AsyncLocalStorage comes with the Node compatibility that date turns on.
  writeFileSync(
    join(dir, "config.capnp"),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .harness), (name = "local", network = (allow = ["private", "local"])) ],
  sockets = [ (name = "http", address = "127.0.0.1:${workerdPort}", http = (), service = "main") ],
);
const harness :Workerd.Worker = (
  modules = [
    (name = "harness.js", esModule = embed "harness.js"),
    (name = "capture.js", esModule = embed "capture.js"),
    (name = "functions.js", esModule = embed "functions.js"),
  ],
  compatibilityDate = "2026-11-01",
  globalOutbound = "local",
);
`,
  );
  workerd = spawn(join(root, "node_modules/.bin/workerd"), ["serve", join(dir, "config.capnp")], { stdio: ["ignore", "pipe", "pipe"] });
  workerd.stdout?.on("data", (d) => (workerdLog += d));
  workerd.stderr?.on("data", (d) => (workerdLog += d));
  for (let i = 0; ; i++) {
    try {
      await fetch(`http://127.0.0.1:${workerdPort}/list`);
      break;
    } catch {
      if (i > 200 || workerd.exitCode !== null) throw new Error(`workerd did not start:\n${workerdLog}`);
      await new Promise((done) => setTimeout(done, 25));
    }
  }
});

after(() => {
  workerd?.kill();
  service.close();
  rmSync(scratch, { recursive: true, force: true });
});

async function get(path: string, params: Record<string, string> = {}): Promise<unknown> {
  const url = new URL(`http://127.0.0.1:${workerdPort}${path}`);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  const response = await fetch(url);
  const text = await response.text();
  assert.equal(response.status, 200, `${text}\n${workerdLog}`);
  return JSON.parse(text);
}

function run(name: string, kind: string, args: object = {}) {
  return get("/run", { name, kind, args: JSON.stringify(args) });
}

test("the bundle installs the global before the Worker's own module runs", async () => {
  const names = ((await get("/list")) as { name: string }[]).map((f) => f.name);
  assert.deepEqual(names, ["awaitsTimer", "connectInAction", "dbOnly", "fetchInMutation", "ioInMutation"]);
});

test("in workerd, every I/O entry point in a mutation throws MUTATION_IO and starts nothing", async () => {
  hits = 0;
  assert.deepEqual(await run("fetchInMutation", "mutation"), {
    err: { code: "MUTATION_IO", message: "fetch is not allowed in a mutation: a mutation runs inside the shard's turn; do I/O in an action" },
  });
  for (const what of ["fetch", "connect", "setTimeout", "setInterval", "scheduler.wait", "caches", "new WebSocket"]) {
    assert.deepEqual(await run("ioInMutation", "mutation", { what, port: servicePort }), {
      err: { code: "MUTATION_IO", message: `${what} is not allowed in a mutation: a mutation runs inside the shard's turn; do I/O in an action` },
    }, what);
  }
  assert.equal(hits, 0);
});

test("in workerd, I/O outside calls and in actions works (connect through the shim too)", async () => {
  hits = 0;
  assert.deepEqual(await get("/outside", { to: `http://127.0.0.1:${servicePort}/`, port: String(servicePort) }), { fetch: 200, timer: "fired" });
  assert.deepEqual(await run("connectInAction", "action", { port: servicePort }), { ok: 200 });
  assert.equal(hits, 2);
});

test("in workerd, awaiting a timer loses the race; outside I/O meanwhile works; the late handler reaches nothing", async () => {
  hits = 0;
  const raced = (await get("/raced", { to: `http://127.0.0.1:${servicePort}/` })) as Record<string, unknown>;
  assert.equal((raced.result as { err: { code: string } }).err.code, "MUTATION_IO");
  assert.match((raced.result as { err: { message: string } }).err.message, /awaited something other than ctx\.db/);
  assert.equal(raced.outside, 200);
  assert.deepEqual(raced.late, { db: "CALL_ENDED", fetch: "MUTATION_IO" });
  assert.deepEqual(raced.ops, ["insert"]);
  assert.equal(hits, 1);
});

test("in workerd, a handler that awaits only ctx.db (400 awaits) settles before the race", async () => {
  assert.deepEqual(await run("dbOnly", "mutation", { n: 200 }), { ok: 200 });
});
