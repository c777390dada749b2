#!/usr/bin/env bash
# Installs @pylon-workers/client's dev dependencies from its lock, when the lock
# changed (scripts/npm-package-install.sh).
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/../../scripts/npm-package-install.sh" clients/ts
