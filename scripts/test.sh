#!/usr/bin/env bash
# Sets up and runs every test: native unit and integration tests (real
# SQLite), the wasm build, the bundle-size check and the end-to-end suite
# against wrangler dev.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"

# Each step says how long the one before it took (the suite's time budget
# is 20 minutes from a fresh clone; see where it goes).
started=$SECONDS; last=$SECONDS; last_name="setup"
step() {
  echo; echo "==> ($last_name took $((SECONDS - last)) s) $*"
  last=$SECONDS; last_name="${*%% (*}"
}
trap 'echo; echo "test.sh: $last_name took $((SECONDS - last)) s; $((SECONDS - started)) s in all"' EXIT

bash "$here/setup.sh"
source "$here/env.sh"
cd "$ROOT"
# A build from a clean clone has no incremental state to reuse; writing it
# cost about 40 CPU seconds of the compile.
export CARGO_INCREMENTAL=0

step "TypeScript client (build and unit tests)"
bash clients/ts/test.sh

# The Workers build (wasm32, release, LTO: minutes, mostly on one core)
# runs in the background, in its own target directory, beside the
# functions' step (which leaves a core idle) and the native tests; the
# bundle step waits for it. Not before the TypeScript client's step: the
# demo's build compiles that client in the same directory.
# Fuzzing is not part of this command: the native tests run the three fuzz
# targets' bodies (protocol decoders, token readers, cold query) on
# thousands of generated and saved inputs each, and libFuzzer's own build
# (instrumented, a third compile of every dependency) cost the suite two
# to three minutes for a few thousand runs. `bash scripts/fuzz.sh 3600` is
# the fuzzing run.
mkdir -p target
worker_log="$ROOT/target/worker-build.log"
( bash scripts/build-worker.sh &&
  # The second app, built without the runtime's optional parts: its
  # bundle has a budget of its own.
  bash scripts/build-worker.sh examples/minimal ) >"$worker_log" 2>&1 &
worker_build=$!

step "server functions' runtime (@pylon-workers/functions: unit tests, the build, the I/O rule in workerd; the board's functions typechecked)"
bash clients/functions/test.sh

# The native step builds the library with the e2e suite's features, and
# compiles the e2e suite's binary with the native tests in one command (it
# runs later, against the Workers), so that crate compiles beside the
# others instead of alone after the bundles. The D1 migrations of both
# apps are checked by tests/store_migrations.rs, with pylon-migrations
# --check.
step "native tests (engine, protocol, client, the example apps, D1 migrations; real SQLite)"
cargo test --workspace --features pylon-workers/e2e --no-run --lib --bins --test native --test e2e
cargo test --workspace --features pylon-workers/e2e

step "Worker builds (wasm32, release, wasm-opt): the board, and examples/minimal, the second app the e2e suite runs (waiting for the background build)"
if ! wait "$worker_build"; then
  cat "$worker_log"
  echo "test.sh: the Worker build failed"
  exit 1
fi
grep -E "Done in|Finished" "$worker_log" || true

step "bundle sizes (wrangler deploy --dry-run): the board with every optional part, examples/minimal with none"
PYLON_SKIP_BUILD=1 bash scripts/bundle-size.sh
PYLON_SKIP_BUILD=1 bash scripts/bundle-size.sh examples/minimal

step "end-to-end suite against wrangler dev"
PYLON_SKIP_BUILD=1 cargo test --workspace --features pylon-workers/e2e --test e2e

step "browser tests: the demo board and the plane game in headless Chromium against wrangler dev"
node --test --test-concurrency=1 tests/browser/*.test.mjs
