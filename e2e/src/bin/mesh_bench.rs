//! `mesh-bench`: full-mesh calls of N pages in the network lab (`e2e::netlab`), each page in
//! its own home behind a cone NAT, every uplink capped alike; with the send budget and
//! without it (`?budget=off`: each link left to the browser's own rate control), the two
//! interleaved for each N and cap. Needs root.
//!
//! For each run, after the call settles, a window of statistics read from every page's tiles
//! (its getStats): the bitrate sent per link (mean over links), the received frame rate
//! (median over links), freezes per minute and the time frozen (mean over links), audio
//! loss (over all links), and the CPU each page's browser used (mean over pages, percent of
//! one core). Prints one JSON line per run.
//!
//! Usage: `mesh-bench [max_pages] [window_s]` (defaults 6 and 30); `scripts/bench.sh mesh`
//! runs it.

use anyhow::{Context, Result};
use e2e::netlab::{HomeSpec, Lab, Link, Nat};
use e2e::{Harness, Page, TileWindow, TurnServer, wait_full_mesh};
use serde_json::json;
use server::Config;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(60);
const SETTLE: Duration = Duration::from_secs(15);
const READ_EVERY: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let max_pages: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(6);
    let window_s: u64 = args.next().map(|n| n.parse()).transpose()?.unwrap_or(30);
    let window = Duration::from_secs(window_s);
    for cap in [None, Some(2000), Some(1000)] {
        for n in 2..=max_pages {
            // Interleaved, the order swapped every other N: neither mode always runs first.
            let order = if n % 2 == 0 {
                [true, false]
            } else {
                [false, true]
            };
            for budget in order {
                match run(n, cap, budget, window).await {
                    Ok(report) => println!("{report}"),
                    Err(e) => println!(
                        "{}",
                        json!({"mode": "mesh", "pages": n, "uplink_kbit": cap,
                               "budget": budget, "error": format!("{e:#}")})
                    ),
                }
            }
        }
    }
    Ok(())
}

/// One call of `n` pages on uplinks of `cap`, measured over `window`.
async fn run(
    n: usize,
    cap: Option<u32>,
    budget: bool,
    window: Duration,
) -> Result<serde_json::Value> {
    let link = Link {
        up_kbit: cap,
        ..Link::default()
    };
    let lab = Arc::new(Lab::new(&vec![HomeSpec::behind(Nat::Cone).on(link); n])?);
    let turn = TurnServer::start_in(&lab, "mesh-bench")?;
    let harness = Harness::start_in(lab.clone(), Config::default()).await?;
    let off = if budget { "" } else { "&budget=off" };
    let query = format!("room=mesh&ice={}{off}", turn.stun_url());
    let mut pages = Vec::new();
    for k in 0..n {
        let page = harness.page_in(k, &query).await?;
        page.join().await?;
        pages.push(page);
    }
    let all: Vec<&Page> = pages.iter().collect();
    let result = measure(&harness, &all, window).await;
    for page in pages {
        page.close().await?;
    }
    harness.stop().await?;
    drop(turn);
    drop(lab);
    let m = result?;
    Ok(json!({
        "mode": "mesh",
        "pages": n,
        "uplink_kbit": cap,
        "budget": budget,
        "window_s": window.as_secs(),
        "send_kbps_per_link": round(m.send_kbps),
        "fps_median": round(m.fps),
        "freezes_per_min": round(m.freezes_per_min),
        "frozen_pct": round(m.frozen_pct),
        "audio_loss_pct": round(m.audio_loss_pct),
        "cpu_pct_per_page": round(m.cpu_pct),
    }))
}

/// The figures of one run.
struct Measured {
    send_kbps: f64,
    fps: f64,
    freezes_per_min: f64,
    frozen_pct: f64,
    audio_loss_pct: f64,
    cpu_pct: f64,
}

async fn measure(harness: &Harness, pages: &[&Page], window: Duration) -> Result<Measured> {
    wait_full_mesh(pages, DEADLINE).await?;
    e2e::watch_tiles(pages, SETTLE, READ_EVERY).await?;
    let groups: Vec<u32> = (0..pages.len())
        .filter_map(|k| harness.home_driver_pid(k))
        .collect();
    let cpu_before = cpu_seconds(&groups);
    let started = Instant::now();
    let windows = e2e::watch_tiles(pages, window, READ_EVERY).await?;
    let cpu = cpu_seconds(&groups) - cpu_before;
    let elapsed = started.elapsed().as_secs_f64();
    let links: Vec<&TileWindow> = windows.iter().flat_map(BTreeMap::values).collect();
    let mean = |f: fn(&TileWindow) -> f64| {
        links.iter().map(|w| f(w)).sum::<f64>() / links.len().max(1) as f64
    };
    let fps: Vec<f64> = links.iter().map(|w| w.fps).collect();
    let packets: f64 = links.iter().map(|w| w.audio_packets).sum();
    let lost: f64 = links.iter().map(|w| w.audio_lost).sum();
    Ok(Measured {
        send_kbps: mean(|w| w.send_kbps),
        fps: e2e::median(&fps).context("no links")?,
        freezes_per_min: mean(|w| w.freezes.unwrap_or(0.0) / (w.span_ms / 60_000.0).max(1e-9)),
        frozen_pct: mean(|w| w.frozen.unwrap_or(0.0) * 100.0),
        audio_loss_pct: 100.0 * lost / (packets + lost).max(1.0),
        cpu_pct: 100.0 * cpu / elapsed / pages.len() as f64,
    })
}

/// CPU time (user and system, seconds) of every process in these process groups.
fn cpu_seconds(groups: &[u32]) -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let mut total = 0.0;
    for entry in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The fields after the command name (which may hold spaces) in parentheses.
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split(' ').collect();
        let field = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        // pgrp is field 5 of stat(5), utime 14, stime 15: 3, 12, 13 after the name.
        if let (Some(pgrp), Some(user), Some(system)) = (field(2), field(11), field(12)) {
            if groups.contains(&(pgrp as u32)) {
                total += (user + system) / ticks;
            }
        }
    }
    total
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
