#!/usr/bin/env bash
# Sets up what is missing and runs the app: builds the browser app (Trunk) and the relay, then
# runs the relay on ADDR (default 0.0.0.0:8080; PORT=N also works) serving both the page and
# the signaling WebSocket. Extra arguments go to the relay (`scripts/run.sh --help`).
#
# For development with live reload instead: run the relay (`cargo run -p server`) and, in
# another terminal, `trunk serve` (http://127.0.0.1:3000, /ws proxied to the relay).

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"
ensure_wasm_toolchain
build_app
log "building the relay"
cargo build --release -p server
port="${PORT:-8080}"
log "open http://localhost:$port/?room=demo in two tabs (or two devices) to call yourself"
exec target/release/server --static-dir "$ROOT/dist" "$@"
