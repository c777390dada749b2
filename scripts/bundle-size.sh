#!/usr/bin/env bash
# Builds an app's deployable bundle offline (wrangler deploy --dry-run),
# prints its size and fails when it is over the app's budget:
# `bash scripts/bundle-size.sh [APP_DIR]`, default examples/board (the root
# wrangler.toml). PYLON_BUNDLE_LIMIT_KIB overrides the budget.
# Budgets, gzip KiB at the default opt-level 3 (docs/benchmarks.md,
# "Bundle size"): the board, with every optional part of the runtime,
# 1,190 (it measured 796 before server functions, 864 with them, 1,005
# with jobs, cron and workflows, 1,028 with the cache, 1,153 with rooms,
# files and channels, 1,171 with the optional parts as features, 1,181
# with the engine's cheaper writes and the board's checkOut action);
# examples/minimal, with none of them, 750 (748.5 measured on
# 2026-12-02, 736 before the engine's cheaper writes; 593 at opt-level z).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
app="${1:-examples/board}"
case "$app" in
  examples/board) config="wrangler.toml"; budget=1190 ;;
  examples/minimal) config="$app/wrangler.toml"; budget=750 ;;
  *) config="$app/wrangler.toml"; budget="" ;;
esac
limit_kib="${PYLON_BUNDLE_LIMIT_KIB:-$budget}"
[[ -n "$limit_kib" ]] || { echo "bundle-size: set PYLON_BUNDLE_LIMIT_KIB for $app"; exit 2; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
log="$(wrangler deploy --dry-run -c "$config" --outdir "$out" 2>&1)" || { echo "$log"; exit 1; }
line="$(grep -E 'Total Upload:' <<<"$log" || true)"
[[ -n "$line" ]] || { echo "$log"; echo "bundle-size: no 'Total Upload' line in wrangler's output"; exit 1; }
echo "bundle ($app): $line"
# "Total Upload: 512.34 KiB / gzip: 201.11 KiB" -> gzip size in KiB
gzip_kib="$(sed -nE 's/.*gzip: ([0-9.]+) (KiB|MiB).*/\1 \2/p' <<<"$line")"
read -r value unit <<<"$gzip_kib"
[[ "$unit" == MiB ]] && value="$(awk -v v="$value" 'BEGIN{print v*1024}')"
if awk -v v="$value" -v l="$limit_kib" 'BEGIN{exit !(v>l)}'; then
  echo "bundle-size: $app's gzip size ${value} KiB is over its ${limit_kib} KiB budget"
  exit 1
fi
echo "bundle-size: ok ($app: gzip ${value} KiB <= ${limit_kib} KiB)"
