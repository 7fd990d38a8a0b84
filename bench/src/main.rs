//! `relay-bench`: load generator for the signaling relay.
//!
//! Four modes, each printing one JSON object on stdout:
//!
//! - `relay`: relay throughput and latency of `candidate` messages between pairs of clients in a
//!   closed loop (a bounded window of messages in flight per client), per server CPU-second.
//! - `conns`: server memory per idle connection that has joined a room.
//! - `setup`: complete call set-ups per second (connect, join, 5 KB offer and answer, candidates,
//!   close), per server CPU-second.
//! - `heads`: the relay's memory under many connections that never finish their request head,
//!   and whether it keeps answering others meanwhile.
//!
//! The relay under test is either spawned by the bench (`--spawn`; `--instances N` for several
//! instances sharing a Redis, the bench's own `redis-server` unless `--redis-url` is given) or
//! already running (`--url` with `--pid`, repeated for several instances); its CPU time and
//! memory are read from `/proc` and summed over the instances. With several instances, the
//! clients are spread over them (`relay` and `setup`: the two clients of a pair on different
//! instances, unless `--same-instance`). Layout: `target.rs` selects, measures and stops the
//! servers (and their Redis), `procfs.rs` reads `/proc`, `client.rs` holds the WebSocket client
//! helpers, `stats.rs` the percentiles, and one module per mode.

mod client;
mod conns;
mod heads;
mod procfs;
mod relay;
mod setup;
mod stats;
mod target;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use serde::Serialize;

/// Command line of `relay-bench`.
#[derive(Parser)]
#[command(name = "relay-bench", version, about)]
struct Cli {
    /// Worker threads of the bench's tokio runtime (default: one per core).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    mode: Mode,
}

/// The measurement to run.
#[derive(Subcommand)]
enum Mode {
    /// Relay throughput and latency of candidate messages between pairs of clients.
    Relay(relay::RelayArgs),
    /// Server memory per idle connection in a room.
    Conns(conns::ConnsArgs),
    /// Complete call set-ups per second.
    Setup(setup::SetupArgs),
    /// Memory under connections that never finish their request head.
    Heads(heads::HeadsArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // Before the runtime starts and before a server is spawned, so that the child inherits it.
    target::raise_nofile_limit()?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(threads) = cli.threads {
        builder.worker_threads(threads.max(1));
    }
    let runtime = builder.build().context("cannot start the tokio runtime")?;
    runtime.block_on(async {
        match cli.mode {
            Mode::Relay(args) => print(&relay::run(args).await?),
            Mode::Conns(args) => print(&conns::run(args).await?),
            Mode::Setup(args) => print(&setup::run(args).await?),
            Mode::Heads(args) => print(&heads::run(args).await?),
        }
    })
}

/// Prints one run's report as one line of JSON.
fn print<T: Serialize>(report: &T) -> Result<()> {
    let line = serde_json::to_string(report).context("cannot serialize the report")?;
    println!("{line}");
    Ok(())
}

/// Parses a number of seconds, fractions allowed (`0.5`), for `--duration` and friends.
fn parse_secs(s: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|e| format!("`{s}` is not a number of seconds: {e}"))?;
    std::time::Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}` seconds: {e}"))
}
