#!/usr/bin/env bash
# Builds an app's Worker bundle (index.js + wasm) with worker-build:
# `bash scripts/build-worker.sh [APP_DIR]`, APP_DIR relative to the project
# root, default `examples/board` (the demo, whose bundle goes to `build/`,
# where the root wrangler.toml looks); any other app's goes to APP_DIR/build.
# The demo also gets the page's client library (scripts/build-demo.sh).
# Every app gets its server functions (APP_DIR/functions, none is fine)
# bundled into functions.js, which index.js imports first
# (scripts/build-functions.sh).
# wrangler runs this as its build command. PYLON_SKIP_BUILD=1 makes it a
# no-op when the bundle exists, for the test harness, which builds once and
# starts wrangler often.
# PYLON_OPT_LEVEL (3, s or z; default 3) is rustc's opt-level for the
# Worker: z makes the bundle about a fifth smaller and the Worker slower
# (docs/benchmarks.md, "Bundle size"). Each level has its own target
# directory, so switching does not rebuild the other.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
app="${1:-examples/board}"
if [[ "$app" == examples/board ]]; then out="$ROOT/build"; else out="$ROOT/$app/build"; fi
if [[ "${PYLON_SKIP_BUILD:-}" == 1 && -f "$out/index.js" ]]; then
  exit 0
fi
cd "$ROOT"
[[ "$app" == examples/board ]] && bash scripts/build-demo.sh
# worker-build takes the output directory relative to the app's crate.
rel_out="$(realpath -m --relative-to="$ROOT/$app" "$out")"
# PYLON_WASM_OPT=0 skips wasm-opt (a quicker build for tests that only
# need the app to run; the bundle is larger).
opt=()
[[ "${PYLON_WASM_OPT:-1}" == 0 ]] && opt=(--no-opt)
# The wasm build has a target directory of its own, so it can run beside
# the native tests (cargo locks a target directory while it builds).
level="${PYLON_OPT_LEVEL:-3}"
case "$level" in
  3) target_dir="$ROOT/target/wasm" ;;
  s|z) target_dir="$ROOT/target/wasm-$level" ;;
  *) echo "build-worker: PYLON_OPT_LEVEL must be 3, s or z (not $level)"; exit 2 ;;
esac
CARGO_PROFILE_RELEASE_OPT_LEVEL="$level" \
  worker-build --release "${opt[@]}" --out-dir "$rel_out" "$ROOT/$app" --target-dir "$target_dir"
# worker-build keeps the wasm name section (function names for stack
# traces, about 50 KiB of the gzip bundle); a deployed Worker does without
# it: panics keep their message, file and line. PYLON_KEEP_NAMES=1 keeps it.
if [[ "${PYLON_KEEP_NAMES:-}" != 1 && "${PYLON_WASM_OPT:-1}" != 0 ]]; then
  wasm-opt --strip-debug --enable-mutable-globals --enable-sign-ext \
    --enable-nontrapping-float-to-int --enable-bulk-memory --enable-multivalue \
    --enable-reference-types --enable-exception-handling \
    "$out/index_bg.wasm" -o "$out/index_bg.wasm"
fi
# After worker-build, which writes index.js afresh: the functions' module
# and the import that loads it first.
bash scripts/build-functions.sh "$app"
