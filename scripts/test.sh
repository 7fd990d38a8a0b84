#!/usr/bin/env bash
# Sets up what is missing and runs every test:
#   rustfmt, clippy (native and wasm32; warnings are errors);
#   the workspace's unit, property and integration tests (the relay's start the real server on
#   127.0.0.1:0; e2e/ makes real calls between headless Chromium and Firefox pages through the relay, on
#   loopback and in a network lab of namespaces behind NATs and shaped links: needs root);
#   the browser app's wasm-bindgen tests in headless Chromium and headless Firefox;
#   accessibility with axe-core (npm, into .tools/) injected into the e2e pages;
#   the Redis room store's tests against real redis-server processes (installed when missing).
# Artefacts (the 3-way call screenshot) land in artifacts/.

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"
ensure_rust
ensure_wasm_toolchain
ensure_chromium
ensure_firefox
ensure_redis
ensure_coturn
ensure_netlab
ensure_axe

log "rustfmt"
cargo fmt --all -- --check
log "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p client-wasm --target wasm32-unknown-unknown --all-targets --locked -- -D warnings
build_app
log "cargo test (protocol, relay, client core, bench, end-to-end calls)"
cargo test --workspace --locked
log "browser tests of the app (wasm-bindgen-test in headless Chromium)"
env -u GECKODRIVER cargo test -p client-wasm --target wasm32-unknown-unknown --locked
log "browser tests of the app (wasm-bindgen-test in headless Firefox)"
env -u CHROMEDRIVER cargo test -p client-wasm --target wasm32-unknown-unknown --locked
log "all tests passed; artefacts in artifacts/: $(ls artifacts 2>/dev/null | tr '\n' ' ')"
