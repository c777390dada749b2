#!/usr/bin/env bash
# Builds the demo app's client library: @pylon-workers/client (clients/ts)
# compiled with tsc and copied to public/vendor/pylon-client/, where the
# page (public/app.js) imports it. wrangler serves public/ as static assets.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$ROOT/clients/ts/install.sh"
cd "$ROOT/clients/ts"
npx --no-install tsc -p tsconfig.json
out="$ROOT/public/vendor/pylon-client"
rm -rf "$out"
mkdir -p "$out"
cp dist/*.js "$out/"
