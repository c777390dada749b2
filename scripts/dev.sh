#!/usr/bin/env bash
# Sets up, builds and runs the backend locally: wrangler dev on
# 127.0.0.1:8787 (PORT to change) with Durable Object storage and D1 kept in
# .dev-state/ (PERSIST_DIR to change), so data survives restarts.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
bash "$here/setup.sh"
source "$here/env.sh"
cd "$ROOT"
PERSIST_DIR="${PERSIST_DIR:-$ROOT/.dev-state}"
wrangler d1 migrations apply DB --local --persist-to "$PERSIST_DIR"
exec wrangler dev --ip 127.0.0.1 --port "${PORT:-8787}" --persist-to "$PERSIST_DIR"
