#!/usr/bin/env bash
# Builds the Worker bundle (build/index.js + wasm) with worker-build, and
# the demo app's client library (scripts/build-demo.sh).
# wrangler runs this as its build command. PYLON_SKIP_BUILD=1 makes it a
# no-op, for the test harness, which builds once and starts wrangler often.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
if [[ "${PYLON_SKIP_BUILD:-}" == 1 && -f "$ROOT/build/index.js" ]]; then
  exit 0
fi
cd "$ROOT"
bash scripts/build-demo.sh
exec worker-build --release
