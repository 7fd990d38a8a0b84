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

# Versions the browser build needs; wasm-bindgen-cli must equal the wasm-bindgen crate
# (client-wasm/Cargo.toml pins it with `=`), and Trunk.toml's [tools] names these too.
WASM_BINDGEN_VERSION=0.2.130
TRUNK_VERSION=0.21.14
BINARYEN_VERSION=132.0.0
export PATH="$ROOT/.tools/node_modules/.bin:$PATH"

# Installs a crate's binaries at an exact version unless that version is on PATH already.
cargo_install_pinned() { # crate version binary [cargo install option...]
  local crate=$1 version=$2 bin=$3
  shift 3
  if command -v "$bin" >/dev/null && "$bin" --version 2>/dev/null | grep -q "$version"; then
    return 0
  fi
  log "installing $crate $version (a few minutes, once)"
  # The crates.io mirror can lag behind a lock file; retry without --locked then.
  cargo install "$crate" --version "=$version" --locked "$@" \
    || cargo install "$crate" --version "=$version" "$@"
}

apt_install() { # package...
  log "installing Debian packages: $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" \
    || { as_root apt-get update && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"; }
}

# The browser app's toolchain: wasm32 target, wasm-bindgen-cli, Trunk, and wasm-opt (binaryen
# from npm: Debian's wasm-opt 108 miscompiles reference-types modules).
ensure_wasm_toolchain() {
  ensure_rust
  if ! rustup target list --installed | grep -q '^wasm32-unknown-unknown$'; then
    log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  cargo_install_pinned wasm-bindgen-cli "$WASM_BINDGEN_VERSION" wasm-bindgen
  cargo_install_pinned trunk "$TRUNK_VERSION" trunk
  if ! wasm-opt --version 2>/dev/null | grep -q "version_${BINARYEN_VERSION%%.*}"; then
    command -v npm >/dev/null || apt_install nodejs npm
    log "installing wasm-opt (binaryen $BINARYEN_VERSION from npm) into .tools/"
    npm install --prefix "$ROOT/.tools" --no-audit --no-fund --loglevel=error "binaryen@$BINARYEN_VERSION"
  fi
}

# The release bundle is built by a pinned nightly: it rebuilds the standard library for the app
# (`-Zbuild-std`, optimised for size with the app instead of shipped at opt-level 3), panics
# abort at once without formatting a message (a panic in the page had no console to print to
# anyway), and panic locations are left out: 13 KB gzipped less than stable builds it. Tests
# and clippy stay on stable. The machine's own `nightly` is used when it is this build.
APP_NIGHTLY_DATE=2026-05-19
APP_NIGHTLY_COMMIT=e50aa6fba
ensure_app_nightly() {
  if rustc +nightly --version 2>/dev/null | grep -q "($APP_NIGHTLY_COMMIT $APP_NIGHTLY_DATE)"; then
    APP_NIGHTLY=nightly
  else
    APP_NIGHTLY="nightly-$APP_NIGHTLY_DATE"
    if ! rustc "+$APP_NIGHTLY" --version >/dev/null 2>&1; then
      log "installing the release bundle's toolchain $APP_NIGHTLY"
      rustup toolchain install "$APP_NIGHTLY" --profile minimal
    fi
  fi
  local installed
  installed=$(rustup "+$APP_NIGHTLY" component list --installed)
  grep -q '^rust-src' <<<"$installed" || rustup "+$APP_NIGHTLY" component add rust-src
  grep -q '^rust-std-wasm32-unknown-unknown' <<<"$installed" \
    || rustup "+$APP_NIGHTLY" target add wasm32-unknown-unknown
  # The standard library's own dependencies (Trunk builds offline); a no-op once present.
  cargo "+$APP_NIGHTLY" fetch --quiet --manifest-path \
    "$(rustc "+$APP_NIGHTLY" --print sysroot)/lib/rustlib/src/rust/library/Cargo.toml"
}

# Headless Chromium and its WebDriver, for the browser tests.
ensure_chromium() {
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    apt_install chromium chromium-driver
  fi
  export CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}"
  export CHROME_BIN="${CHROME_BIN:-$(command -v chromium)}"
  # A font with Chinese characters, so the zh-CN screenshots show words, not boxes.
  [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || apt_install fonts-wqy-microhei
}

# Headless Firefox (Debian's ESR) and geckodriver (pinned, from crates.io), for the browser tests
# in the second engine.
GECKODRIVER_VERSION=0.37.1
ensure_firefox() {
  command -v firefox-esr >/dev/null || apt_install firefox-esr
  # An unoptimised build: 1.5 min instead of 2.8 here, and a WebDriver proxy's speed does not
  # show in the tests.
  cargo_install_pinned geckodriver "$GECKODRIVER_VERSION" geckodriver --debug
  export GECKODRIVER="${GECKODRIVER:-$(command -v geckodriver)}"
  export FIREFOX_BIN="${FIREFOX_BIN:-$(command -v firefox-esr)}"
}

# redis-server, for the tests of the shared Redis room store (server/tests/redis_store.rs):
# they start their own servers on loopback ports, so the package's service is not needed.
ensure_redis() {
  command -v redis-server >/dev/null || apt_install redis-server
}

# coturn's turnserver, for the end-to-end test that breaks and restores the media path.
ensure_coturn() {
  command -v turnserver >/dev/null || apt_install coturn
}

# The network lab's tools (e2e/src/netlab.rs): namespaces and veths (iproute2), NATs and loss
# (nftables), the NFQUEUE that delays packets (iptables-legacy), rates (tc, iproute2).
ensure_netlab() {
  local missing=()
  command -v ip >/dev/null || missing+=(iproute2)
  command -v tc >/dev/null || missing+=(iproute2)
  command -v nft >/dev/null || missing+=(nftables)
  command -v iptables-legacy >/dev/null || missing+=(iptables)
  if ((${#missing[@]})); then apt_install "${missing[@]}"; fi
}

# axe-core (npm), which the end-to-end tests inject into the pages to check accessibility.
AXE_VERSION=4.14.1
ensure_axe() {
  local js="$ROOT/.tools/node_modules/axe-core/axe.min.js"
  if ! head -c 64 "$js" 2>/dev/null | grep -q "axe v$AXE_VERSION"; then
    command -v npm >/dev/null || apt_install nodejs npm
    log "installing axe-core $AXE_VERSION from npm into .tools/"
    npm install --prefix "$ROOT/.tools" --no-audit --no-fund --loglevel=error "axe-core@$AXE_VERSION"
  fi
  export AXE_JS="${AXE_JS:-$js}"
}

# Builds the browser app into dist/ (release: size-optimized wasm).
build_app() {
  ensure_app_nightly
  log "building the browser app (trunk build --release, $APP_NIGHTLY with build-std)"
  (cd "$ROOT" && RUSTUP_TOOLCHAIN="$APP_NIGHTLY" \
    CARGO_UNSTABLE_BUILD_STD=std,panic_abort \
    RUSTFLAGS="-Zlocation-detail=none -Zunstable-options -Cpanic=immediate-abort" \
    trunk build --release --offline)
}
