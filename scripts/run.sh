#!/usr/bin/env bash
# Sets up what is missing and runs the app: the signaling relay (release build) on
# ADDR (default 0.0.0.0:8080; PORT=N also works). Extra arguments go to the relay,
# e.g. `scripts/run.sh --max-members 4`; `scripts/run.sh --help` lists every option.

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"
ensure_rust
log "building the relay"
cargo build --release -p server
log "starting the relay (ctrl-c to stop)"
exec target/release/server "$@"
