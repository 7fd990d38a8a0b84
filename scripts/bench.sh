#!/usr/bin/env bash
# Benchmarks the relay: builds the server and the load generator (relay-bench) in release mode,
# then runs each measurement against a freshly spawned server: relay throughput and latency
# (50 pairs), memory per idle connection (10 000 connections), call set-ups per second, memory
# under 2,000 unfinished request heads from one address (300 KiB, then 60 KiB each). Then
# `cluster`: the relay as one instance (memory store), and as two instances sharing a Redis
# (relay-bench starts its own redis-server on a free port) with every pair split across the two
# instances, then with each pair on one instance. Then the browser app: release bundle size (raw
# and gzipped) and call set-up time, Chromium↔Chromium, Firefox↔Firefox and Chromium↔Firefox
# (10 rounds each, interleaved; median and range). Prints one JSON line
# per run and saves them to artifacts/bench.json.
#
# Usage:
#   scripts/bench.sh                      # every run with its default options
#   scripts/bench.sh relay --pairs 10     # one run; the options go to `relay-bench relay`
#   scripts/bench.sh relay --instances 2  # two instances sharing a Redis, pairs split across them
#   scripts/bench.sh setup --server-arg=--max-members --server-arg=4
#   scripts/bench.sh cluster              # relay: 1 instance, 2 cross-instance, 2 same-instance
#   scripts/bench.sh cluster --duration 5 # the options go to each of the three relay runs
#   scripts/bench.sh app                  # browser app: bundle size and call set-up time in
#                                         # Chromium, Firefox and across the two
#   scripts/bench.sh heads --sources 50   # unfinished request heads spread over 50 addresses
#   scripts/bench.sh netlab               # calls in the network lab (root): set-up per NAT kind,
#                                         # time to a reported failure, freezes on a bad link
#   scripts/bench.sh mesh [N] [window_s]  # full-mesh calls of 2..N pages in the lab (root), uplinks
#                                         # uncapped / 2 / 1 Mbit/s, send budget on and off
# `relay-bench <mode> --help` lists every option. CARGO_TARGET_DIR is honoured.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"
ensure_rust
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

# The relay alone (memory store) and as two instances sharing a Redis, across and within them.
cluster() {
    ensure_redis
    run relay --pairs 50 "$@"
    run relay --pairs 50 --instances 2 "$@"
    run relay --pairs 50 --instances 2 --same-instance "$@"
}

# The browser app: bundle sizes of dist/ and the call set-up benchmark.
app() {
    ensure_wasm_toolchain
    ensure_chromium
    ensure_firefox
    build_app
    local wasm js
    wasm=$(ls dist/*_bg.wasm)
    js=$(ls dist/*.js)
    local wr wg jr jg
    wr=$(stat -c %s "$wasm"); wg=$(gzip -9c "$wasm" | wc -c)
    jr=$(stat -c %s "$js"); jg=$(gzip -9c "$js" | wc -c)
    printf '{"mode":"bundle","wasm_bytes":%d,"wasm_gzip_bytes":%d,"js_bytes":%d,"js_gzip_bytes":%d,"total_gzip_bytes":%d}\n' \
        "$wr" "$wg" "$jr" "$jg" $((wg + jg)) | tee -a "$out"
    cargo build --release -p e2e --bin call-bench
    "$target_dir/release/call-bench" 10 | tee -a "$out"
}

# Calls across the network lab (needs root): set-up per NAT kind, time to a reported failure,
# freezes on a bad link.
netlab() {
    ensure_wasm_toolchain
    ensure_chromium
    ensure_coturn
    ensure_netlab
    build_app
    cargo build --release -p e2e --bin netlab-bench
    "$target_dir/release/netlab-bench" "$@" | tee -a "$out"
}

# Full-mesh calls of 2..N pages in the network lab (needs root), uplinks uncapped, 2 Mbit/s and
# 1 Mbit/s, with the send budget and without it (?budget=off), interleaved.
mesh() {
    ensure_wasm_toolchain
    ensure_chromium
    ensure_coturn
    ensure_netlab
    build_app
    cargo build --release -p e2e --bin mesh-bench
    "$target_dir/release/mesh-bench" "$@" | tee -a "$out"
}

if (($# > 0)); then
    case $1 in
    app) app ;;
    netlab) shift; netlab "$@" ;;
    mesh) shift; mesh "$@" ;;
    cluster) shift; cluster "$@" ;;
    *) run "$@" ;;
    esac
else
    run relay --pairs 50
    run conns --count 10000
    run setup
    run heads
    run heads --head-kb 60
    cluster
    app
    netlab
    mesh
fi
echo "saved to $out" >&2
