#!/usr/bin/env bash
# Sets up, builds and runs the backend locally: wrangler dev on
# 127.0.0.1:8787 (PORT to change) with Durable Object storage and D1 kept in
# .dev-state/ (PERSIST_DIR to change), so data survives restarts.
# `bash scripts/dev.sh` runs the demo board (the root wrangler.toml);
# `bash scripts/dev.sh examples/minimal` runs another app by its directory
# (its own wrangler.toml, state in APP_DIR/.dev-state).
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
bash "$here/setup.sh"
source "$here/env.sh"
cd "$ROOT"
app="${1:-}"
config=()
state="$ROOT/.dev-state"
if [[ -n "$app" && "$app" != examples/board ]]; then
  [[ -f "$app/wrangler.toml" ]] || { echo "dev: no $app/wrangler.toml" >&2; exit 1; }
  config=(-c "$app/wrangler.toml")
  state="$ROOT/$app/.dev-state"
fi
PERSIST_DIR="${PERSIST_DIR:-$state}"
wrangler d1 migrations apply DB --local --persist-to "$PERSIST_DIR" "${config[@]}"
# --test-scheduled: GET /__scheduled?cron=… runs the cron entries now.
exec wrangler dev --ip 127.0.0.1 --port "${PORT:-8787}" --persist-to "$PERSIST_DIR" --test-scheduled "${config[@]}"
