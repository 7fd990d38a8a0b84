#!/usr/bin/env bash
# Shared helpers of the project's scripts: idempotent installers (each skips what is present)
# and small utilities. Sourced by run.sh, test.sh and bench.sh.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Runs a command as root (directly, or through sudo when available).
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; return 1
  fi
}

ensure_rust() {
  if ! command -v cargo >/dev/null; then
    log "installing the Rust toolchain (rustup)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  fi
  # rustfmt and clippy are used by the test command.
  for c in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$c"; then
      log "installing rustup component $c"
      rustup component add "$c"
    fi
  done
}
