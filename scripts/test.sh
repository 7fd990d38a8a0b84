#!/usr/bin/env bash
# Sets up what is missing and runs every test: formatting, clippy (warnings are errors), and
# the workspace's unit, property and integration tests (the relay's start the real server on
# 127.0.0.1:0).

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"
ensure_rust

log "rustfmt"
cargo fmt --all -- --check
log "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo test (protocol, relay, bench)"
cargo test --workspace --locked
log "all tests passed"
