#!/usr/bin/env bash
# Bundles an app's server functions into its Worker:
# `bash scripts/build-functions.sh [APP_DIR]` (default `examples/board`;
# APP_DIR relative to the project root, or absolute). Every
# APP_DIR/functions/*.ts|*.js (not *.d.ts, not _*.ts: helpers they import)
# is one function named after its file; they and the runtime
# (clients/functions) become one ES module, OUT/functions.js, and
# OUT/index.js (worker-build's) imports it first, so the Rust side finds
# `globalThis.__pylon_functions` (docs/functions.md). OUT is `build/` for
# the board and APP_DIR/build for any other app, as in build-worker.sh,
# which runs this after worker-build. A bad file name or a default export
# that is not a query, mutation or action fails the build, naming the file.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
app="${1:-examples/board}"
case "$app" in
  /*) app_dir="$app" ;;
  *) app_dir="$ROOT/$app" ;;
esac
if [[ "$app" == examples/board ]]; then out="$ROOT/build"; else out="$app_dir/build"; fi
node "$ROOT/scripts/build-functions.mjs" "$app_dir" "$out"
