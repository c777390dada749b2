// scripts/build-functions.sh on apps made up in a temporary directory: the
// bundle's registry, the files it skips, the failures that name a file,
// and the import it puts first in the Worker's index.js.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { FunctionsGlobal } from "../src/runtime.ts";
import { FakeShard, open } from "./support/fake-bridge.ts";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const scratch = mkdtempSync(join(tmpdir(), "pylon-functions-build-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

let apps = 0;
/** A new app directory with these files under functions/. */
function app(files: Record<string, string>): string {
  const dir = join(scratch, `app${apps++}`);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, "functions", name)), { recursive: true });
    writeFileSync(join(dir, "functions", name), text);
  }
  mkdirSync(dir, { recursive: true });
  return dir;
}

function build(dir: string) {
  const result = spawnSync("bash", [join(root, "scripts/build-functions.sh"), dir], { encoding: "utf8" });
  return { status: result.status, stderr: result.stderr };
}

/** Imports a built bundle (a .mjs copy: the app has no package.json) and returns what it installed. */
async function load(dir: string): Promise<FunctionsGlobal> {
  const copy = join(dir, "build", `functions-${Date.now()}.mjs`);
  copyFileSync(join(dir, "build", "functions.js"), copy);
  await import(pathToFileURL(copy).href);
  return (globalThis as unknown as { __pylon_functions: FunctionsGlobal }).__pylon_functions;
}

const HELLO = `import { query, v } from "@pylon-workers/functions";
export default query({ args: { who: v.string() }, handler: async (ctx, args) => "hello " + args.who });
`;
const HELLO_WITH_HELPER = `import { query, v } from "@pylon-workers/functions";
import { greeting } from "./_greeting.ts";
export default query({ args: { who: v.string() }, handler: async (ctx, args) => greeting(args.who) + " from " + (ctx.auth.userId ?? "nobody") });
`;
const ADD_ONE = `import { mutation, v } from "@pylon-workers/functions";
export default mutation({ trusted: true, args: { n: v.int() }, handler: async (ctx, { n }) => ctx.db.insert("Card", { n: n + 1 }) });
`;

test("two function files (TypeScript and JavaScript) become one module that lists and runs them", async () => {
  const dir = app({
    "hello.ts": HELLO_WITH_HELPER,
    "addOne.js": ADD_ONE,
    "_greeting.ts": "export const greeting = (who: string): string => `hello ${who}`;\n",
    "types.d.ts": "export type Nothing = never;\n",
    "notes.md": "not code\n",
    "nested/deeper.ts": "export default 1;\n",
  });
  const built = build(dir);
  assert.equal(built.status, 0, built.stderr);
  assert.match(built.stderr, /2 function\(s\) \(addOne, hello\)/);
  const functions = await load(dir);
  assert.equal(functions.version, 1);
  assert.deepEqual(functions.list(), [
    { name: "addOne", kind: "mutation", trusted: true },
    { name: "hello", kind: "query", trusted: false },
  ]);
  const shard = new FakeShard();
  const auth = { userId: "u7", tenantId: null, roles: [], isAdmin: false };
  assert.deepEqual(open(await functions.run("hello", shard.bridge("query", auth), '{"who":"you"}')), { ok: "hello you from u7" });
  assert.deepEqual(open(await functions.run("addOne", shard.bridge("mutation"), '{"n":1}')), { ok: "r1" });
  assert.deepEqual(shard.rows("Card"), [{ n: 2, id: "r1" }]);
  // One ES module: the runtime is inside, only the platform's modules stay imports.
  const text = readFileSync(join(dir, "build", "functions.js"), "utf8");
  const imports = [...text.matchAll(/\bimport\s*(?:\{[^}]*\}\s*from\s*|\*\s*as\s*[\w$]+\s*from\s*)?"([^"]+)"/g)].map((m) => m[1]);
  assert.deepEqual(imports, ["node:async_hooks"]);
});

test("a file name that is not a function name fails the build, naming the file", () => {
  const built = build(app({ "hello.ts": HELLO, "2fast.ts": ADD_ONE }));
  assert.notEqual(built.status, 0);
  assert.match(built.stderr, /functions\/2fast\.ts: "2fast" is not a function name/);
  const dashed = build(app({ "add-one.ts": ADD_ONE }));
  assert.notEqual(dashed.status, 0);
  assert.match(dashed.stderr, /functions\/add-one\.ts/);
  const twice = build(app({ "addOne.ts": ADD_ONE, "addOne.js": ADD_ONE }));
  assert.notEqual(twice.status, 0);
  assert.match(twice.stderr, /functions\/addOne\.(js|ts): functions\/addOne\.(js|ts) already defines a function named addOne/);
});

test("a default export that is not a query, mutation or action fails the build, naming the file", () => {
  const built = build(app({ "hello.ts": HELLO, "notOne.ts": "export default { handler: () => 1 };\n" }));
  assert.notEqual(built.status, 0);
  assert.match(built.stderr, /functions\/notOne\.ts: the default export is not a query, mutation or action/);
  const none = build(app({ "named.ts": "export const x = 1;\n" }));
  assert.notEqual(none.status, 0);
  assert.match(none.stderr, /functions\/named\.ts: the default export is not/);
});

test("a file that does not compile fails the build with esbuild's message", () => {
  const built = build(app({ "broken.ts": "export default mutation({ handler: ( => 1 });\n" }));
  assert.notEqual(built.status, 0);
  assert.match(built.stderr, /esbuild failed:\n\s+functions\/broken\.ts:1: /);
});

test("an app without functions/ gets no runtime: its module installs no registry, and the Worker then lists none", async () => {
  const dir = join(scratch, "bare");
  mkdirSync(dir);
  const built = build(dir);
  assert.equal(built.status, 0, built.stderr);
  const text = readFileSync(join(dir, "build", "functions.js"), "utf8");
  assert.ok(text.length < 200 && !text.includes("__pylon_functions"), text);
});

test("the Worker's index.js imports the functions first, once however often the build runs, and bundlers keep the import", async () => {
  const dir = app({ "hello.ts": HELLO });
  mkdirSync(join(dir, "build"));
  const original = 'import{WorkerEntrypoint as zt}from"cloudflare:workers";var et=1;\nexport{et as default};\n';
  writeFileSync(join(dir, "build", "index.js"), original);
  // As worker-build writes it: only index.js has side effects.
  const manifest = { name: "app", type: "module", main: "index.js", sideEffects: ["./index.js"] };
  writeFileSync(join(dir, "build", "package.json"), JSON.stringify(manifest));
  for (let i = 0; i < 2; i++) assert.equal(build(dir).status, 0);
  const text = readFileSync(join(dir, "build", "index.js"), "utf8");
  assert.equal(text, `import "./functions.js";\n${original}`);
  const patched = JSON.parse(readFileSync(join(dir, "build", "package.json"), "utf8"));
  assert.deepEqual(patched, { ...manifest, sideEffects: ["./index.js", "./functions.js"] });
  // Bundled the way wrangler bundles the Worker: the functions stay in, first.
  const esbuild = createRequire(join(root, "package.json"))("esbuild") as typeof import("esbuild");
  const bundled = await esbuild.build({
    entryPoints: [join(dir, "build", "index.js")],
    bundle: true,
    format: "esm",
    write: false,
    external: ["cloudflare:*", "node:*"],
    logLevel: "silent",
  });
  const code = bundled.outputFiles[0]?.text ?? "";
  assert.ok(code.includes("__pylon_functions"), "the functions' module was dropped");
  assert.ok(code.indexOf("__pylon_functions") < code.indexOf("var et = 1"), "the functions' module runs first");
});
