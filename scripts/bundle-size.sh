#!/usr/bin/env bash
# Builds the deployable bundle offline (wrangler deploy --dry-run), prints
# its size and fails when it is over the budget (1,175 KiB gzip by default:
# the board measured 796 KiB at opt-level 3 before server functions, 864
# KiB with them, 1,005 KiB with jobs, cron and workflows, 1,028 with the
# cache, 1,153 with rooms, files and channels; docs/benchmarks.md, "Bundle
# size").
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
limit_kib="${PYLON_BUNDLE_LIMIT_KIB:-1175}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
log="$(wrangler deploy --dry-run --outdir "$out" 2>&1)" || { echo "$log"; exit 1; }
line="$(grep -E 'Total Upload:' <<<"$log" || true)"
[[ -n "$line" ]] || { echo "$log"; echo "bundle-size: no 'Total Upload' line in wrangler's output"; exit 1; }
echo "bundle: $line"
# "Total Upload: 512.34 KiB / gzip: 201.11 KiB" -> gzip size in KiB
gzip_kib="$(sed -nE 's/.*gzip: ([0-9.]+) (KiB|MiB).*/\1 \2/p' <<<"$line")"
read -r value unit <<<"$gzip_kib"
[[ "$unit" == MiB ]] && value="$(awk -v v="$value" 'BEGIN{print v*1024}')"
if awk -v v="$value" -v l="$limit_kib" 'BEGIN{exit !(v>l)}'; then
  echo "bundle-size: gzip size ${value} KiB is over the ${limit_kib} KiB budget"
  exit 1
fi
echo "bundle-size: ok (gzip ${value} KiB <= ${limit_kib} KiB)"
