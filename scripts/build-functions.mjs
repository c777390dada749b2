// The work of scripts/build-functions.sh (read it first):
// `node scripts/build-functions.mjs APP_DIR OUT_DIR`. Uses the esbuild that
// wrangler brings (the root node_modules); TypeScript is stripped, not
// checked (clients/functions/test.sh typechecks the board's functions).
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const runtimeSrc = join(root, "clients/functions/src");
const esbuild = createRequire(join(root, "package.json"))("esbuild");

// The same rule as the runtime's FUNCTION_NAME (clients/functions/src/runtime.ts).
const FUNCTION_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const IMPORT_LINE = 'import "./functions.js";';

function fail(message) {
  console.error(`build-functions: ${message}`);
  process.exit(1);
}

/** The function files of `appDir/functions`, sorted: [{ name, file (relative to the app), path }]. */
function functionFiles(appDir) {
  const dir = join(appDir, "functions");
  if (!existsSync(dir)) return [];
  const found = new Map();
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (!entry.isFile() || entry.name.startsWith("_") || entry.name.endsWith(".d.ts")) continue;
    const match = /^(.*)\.(ts|js)$/.exec(entry.name);
    if (!match) continue;
    const file = `functions/${entry.name}`;
    const name = match[1];
    if (!FUNCTION_NAME.test(name)) {
      fail(`${file}: "${name}" is not a function name (a letter, then letters, digits or _, 64 at most; helpers start with _)`);
    }
    if (found.has(name)) fail(`${file}: ${found.get(name).file} already defines a function named ${name}`);
    found.set(name, { name, file, path: join(dir, entry.name) });
  }
  return [...found.values()];
}

/** The generated entry: import every file, hand them to the runtime's install(). */
function entrySource(files) {
  const lines = ['import { install } from "@pylon-workers/functions/runtime";'];
  files.forEach((f, i) => lines.push(`import * as f${i} from ${JSON.stringify(f.path)};`));
  const list = files.map((f, i) => `{ name: ${JSON.stringify(f.name)}, file: ${JSON.stringify(f.file)}, module: f${i} }`);
  lines.push(`install([${list.join(", ")}]);`);
  return lines.join("\n");
}

// The runtime is bundled from its TypeScript sources (no separate build
// step). `connect` from cloudflare:sockets reaches an app's function only
// through a shim that applies the I/O rule: a module's exports cannot be
// wrapped at run time, as the global scope's can.
const SOCKETS_SHIM = `import { connect as platformConnect } from "cloudflare:sockets";
import { guardIoFunction } from "./io-guard.ts";
export * from "cloudflare:sockets";
export const connect = guardIoFunction("connect", platformConnect);`;

const pylonPlugin = {
  name: "pylon-functions",
  setup(build) {
    build.onResolve({ filter: /^@pylon-workers\/functions$/ }, () => ({ path: join(runtimeSrc, "index.ts") }));
    build.onResolve({ filter: /^@pylon-workers\/functions\/runtime$/ }, () => ({ path: join(runtimeSrc, "runtime.ts") }));
    build.onResolve({ filter: /^cloudflare:sockets$/ }, (args) =>
      args.namespace === "pylon-shim" ? { path: args.path, external: true } : { path: "sockets", namespace: "pylon-shim" },
    );
    build.onLoad({ filter: /.*/, namespace: "pylon-shim" }, () => ({ contents: SOCKETS_SHIM, loader: "ts", resolveDir: runtimeSrc }));
    build.onResolve({ filter: /^(cloudflare|node):/ }, (args) => ({ path: args.path, external: true }));
  },
};

async function bundle(appDir, files, outFile) {
  const result = await esbuild.build({
    stdin: { contents: entrySource(files), resolveDir: appDir, sourcefile: "functions-entry.js", loader: "js" },
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    mainFields: ["module", "main"],
    conditions: ["workerd", "worker", "browser"],
    plugins: [pylonPlugin],
    minify: true,
    legalComments: "none",
    banner: { js: "// Server functions and their runtime, bundled by scripts/build-functions.sh (docs/functions.md)." },
    outfile: outFile,
    logLevel: "silent",
  }).catch((error) => {
    const messages = error.errors ?? [];
    const shown = messages.map((m) => (m.location ? `${relative(appDir, m.location.file)}:${m.location.line}: ${m.text}` : m.text));
    fail(`esbuild failed:\n  ${shown.join("\n  ") || error.message}`);
  });
  for (const warning of result.warnings) console.error(`build-functions: warning: ${warning.text}`);
}

/**
 * Evaluates the bundle in Node so that a file whose default export is not
 * a function fails the build (the runtime's install() throws a
 * FunctionFileError naming it). The Worker checks it again when it starts,
 * which covers bundles Node cannot load (cloudflare: imports).
 */
async function checkExports(outFile) {
  // A .mjs copy: Node then knows it is a module whatever package.json is near.
  const dir = mkdtempSync(join(tmpdir(), "pylon-functions-"));
  const copy = join(dir, "functions.mjs");
  copyFileSync(outFile, copy);
  let problem;
  try {
    await import(pathToFileURL(copy).href);
  } catch (error) {
    problem = error ?? new Error("the bundle threw");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (problem?.name === "FunctionFileError") fail(problem.message);
  if (problem) console.error(`build-functions: note: not checked in Node (${problem.message ?? problem}); the Worker checks the exports when it starts`);
}

/**
 * Makes worker-build's index.js import the functions first (once), and
 * keeps bundlers from dropping that import: worker-build's package.json
 * declares only index.js as having side effects, and the import of a
 * module without side effects and without bindings is removed (wrangler's
 * esbuild does so), which would leave the global uninstalled.
 */
function importFirst(outDir) {
  const index = join(outDir, "index.js");
  if (!existsSync(index)) return false;
  const text = readFileSync(index, "utf8");
  if (text.split("\n", 1)[0] !== IMPORT_LINE) writeFileSync(index, `${IMPORT_LINE}\n${text}`);
  const manifest = join(outDir, "package.json");
  if (existsSync(manifest)) {
    const pkg = JSON.parse(readFileSync(manifest, "utf8"));
    const marked = Array.isArray(pkg.sideEffects) ? pkg.sideEffects : pkg.sideEffects === false ? [] : null;
    if (marked !== null && !marked.includes("./functions.js")) {
      pkg.sideEffects = [...marked, "./functions.js"];
      writeFileSync(manifest, `${JSON.stringify(pkg, null, 2)}\n`);
    }
  }
  return true;
}

const [appArg, outArg] = process.argv.slice(2);
if (!appArg || !outArg) fail("usage: node scripts/build-functions.mjs APP_DIR OUT_DIR");
const appDir = resolve(appArg);
const outDir = resolve(outArg);
const files = functionFiles(appDir);
mkdirSync(outDir, { recursive: true });
const outFile = join(outDir, "functions.js");
if (files.length === 0) {
  // No functions, no runtime: the Worker finds no registry and lists none
  // (4 KiB gzip less for an app without TypeScript functions).
  writeFileSync(outFile, "// No server functions in this app (docs/functions.md).\n");
} else {
  await bundle(appDir, files, outFile);
  await checkExports(outFile);
}
const imported = importFirst(outDir);
const names = files.map((f) => f.name).join(", ") || "none";
console.error(`build-functions: ${files.length} function(s) (${names}) -> ${relative(root, outFile) || outFile}${imported ? ", imported first by index.js" : ""}`);
