#!/usr/bin/env bash
# Benchmarks the relay: builds the server and the load generator (relay-bench) in release mode,
# then runs each measurement against a freshly spawned server: relay throughput and latency
# (50 pairs), memory per idle connection (10 000 connections), call set-ups per second.
# Prints one JSON line per run and saves them to artifacts/bench.json.
#
# Usage:
#   scripts/bench.sh                      # all three runs with their default options
#   scripts/bench.sh relay --pairs 10     # one run; the options go to `relay-bench relay`
#   scripts/bench.sh setup --server-arg=--max-members --server-arg=4
# `relay-bench <mode> --help` lists every option. CARGO_TARGET_DIR is honoured.
set -euo pipefail

cd "$(dirname "$0")/.."
cargo build --release -p server -p bench

target_dir="${CARGO_TARGET_DIR:-target}"
bench="$target_dir/release/relay-bench"
server="$target_dir/release/server"
out=artifacts/bench.json
mkdir -p artifacts
: >"$out"

run() {
    local mode=$1
    shift
    "$bench" "$mode" --spawn "$server" "$@" | tee -a "$out"
}

if (($# > 0)); then
    run "$@"
else
    run relay --pairs 50
    run conns --count 10000
    run setup
fi
echo "saved to $out" >&2
