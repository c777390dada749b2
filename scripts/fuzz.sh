#!/usr/bin/env bash
# Fuzzes both protocol decoders (fuzz/fuzz_targets/decode.rs) with libFuzzer
# for SECONDS (default 20; the test command's short budget). A long run:
#   bash scripts/fuzz.sh 3600
# A crash is saved under fuzz/artifacts/decode/; keep it as a regression
# input in tests/fuzz_regressions/ once fixed.
#
# libFuzzer's instrumentation needs rustc's -Zsanitizer, which only nightly
# toolchains accept; only the stable toolchain can be installed here, so
# RUSTC_BOOTSTRAP=1 unlocks it for this fuzz build alone.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
secs="${1:-20}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
RUSTC_BOOTSTRAP=1 cargo fuzz run decode -- -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1
rc=$?
set -e
grep -E 'Done [0-9]+ runs' "$log" || true
if [[ $rc != 0 ]]; then
  grep -vE '^\s+(at |[0-9]+: )' "$log" | tail -40
  echo "fuzz: the decoders failed (exit $rc); the input is under fuzz/artifacts/decode/"
  exit "$rc"
fi
echo "fuzz: no failure in ${secs}s"
