#!/usr/bin/env bash
# Fuzzes, with libFuzzer, for SECONDS each (default 13: a smoke run of
# about 40 s for the three; the test command does not fuzz, its native
# tests run the same entry points on generated inputs):
#   decode  both protocol decoders (fuzz/fuzz_targets/decode.rs)
#   token   token and key readers  (fuzz/fuzz_targets/token.rs)
#   cold    cold-path query bodies on SQLite (fuzz/fuzz_targets/cold.rs)
# A long run: bash scripts/fuzz.sh 3600. One target: bash scripts/fuzz.sh 60 token
# PYLON_FUZZ_DEV=1 builds without optimizations (about a third of the build
# time, several times fewer runs per second): for a quick smoke run;
# long runs should not.
# A crash is saved under fuzz/artifacts/<target>/; keep it as a regression
# input in tests/fuzz_regressions/ once fixed.
#
# libFuzzer's instrumentation needs rustc's -Zsanitizer, which only nightly
# toolchains accept; only the stable toolchain can be installed here, so
# RUSTC_BOOTSTRAP=1 unlocks it for this fuzz build alone.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
secs="${1:-13}"
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(decode token cold)
mode=()
[[ "${PYLON_FUZZ_DEV:-}" == 1 ]] && mode=(--dev)
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for target in "${targets[@]}"; do
  set +e
  RUSTC_BOOTSTRAP=1 cargo fuzz run "${mode[@]}" "$target" -- -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  grep -E 'Done [0-9]+ runs' "$log" | sed "s/^/$target: /" || true
  if [[ $rc != 0 ]]; then
    grep -vE '^\s+(at |[0-9]+: )' "$log" | tail -40
    echo "fuzz: $target failed (exit $rc); the input is under fuzz/artifacts/$target/"
    exit "$rc"
  fi
  echo "fuzz: $target, no failure in ${secs}s"
done
