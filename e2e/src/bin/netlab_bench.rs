//! `netlab-bench`: calls across the network lab (`e2e::netlab`), measured. Needs root.
//!
//! Prints one JSON line per scenario:
//! - `set-up`, per network: two pages in two homes (cone NATs with STUN; symmetric NATs
//!   through TURN with the relay's credentials, and with `?relay=only`; no NATs), N rounds in
//!   fresh rooms: the second page's Join click (`body[data-join-at]`) to the later of the two
//!   pages' first remote frame (`data-first-frame-at`), every round and the median;
//! - `failure`: symmetric NATs without TURN: the second page's Join to the later of the two
//!   pages showing the connection given up (`data-failed`);
//! - `bad-link`: one page on a 500 kbit/s uplink with +200 ms round trips and 5 % loss, the
//!   call held for a minute: the received video's freezes per minute and total freeze time on
//!   each page (`freezeCount`, `totalFreezesDuration` from getStats, on the tiles).
//!
//! Usage: `netlab-bench [rounds]` (default 5); `scripts/bench.sh netlab` runs it.

use anyhow::{Context, Result, bail};
use e2e::netlab::{HomeSpec, Lab, Link, Nat};
use e2e::{Harness, Page, TurnServer};
use serde_json::json;
use server::Config;
use std::sync::Arc;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(45);
const SECRET: &str = "bench-turn-secret";

/// A lab of two homes with coturn and the relay in it.
struct Bench {
    harness: Harness,
    turn: TurnServer,
    lab: Arc<Lab>,
}

impl Bench {
    async fn start(homes: [HomeSpec; 2]) -> Result<Bench> {
        let lab = Arc::new(Lab::new(&homes)?);
        let turn = TurnServer::start_in(&lab, SECRET)?;
        let config = Config {
            turn_urls: vec![turn.turn_url()],
            turn_secret: Some(SECRET.into()),
            ..Config::default()
        };
        let harness = Harness::start_in(lab.clone(), config).await?;
        Ok(Bench { harness, turn, lab })
    }

    /// The two pages, one per home, on the app.
    async fn pages(&self) -> Result<(Page, Page)> {
        Ok((
            self.harness.page_in(0, "ice=").await?,
            self.harness.page_in(1, "ice=").await?,
        ))
    }

    /// Loads `query` on both pages (a fresh room), joins a then b; returns b's Join time.
    async fn round(&self, a: &Page, b: &Page, query: &str) -> Result<f64> {
        for page in [a, b] {
            page.client.goto(&self.harness.url(query)).await?;
            page.wait_for("the app to start", DEADLINE, |p| {
                Box::pin(async move {
                    Ok(p.body_attr("data-ready").await?.is_some()
                        && p.body_attr("data-media").await?.is_some())
                })
            })
            .await?;
        }
        a.join().await?;
        b.join().await?;
        Ok(b.body_attr("data-join-at")
            .await?
            .context("the join time")?
            .parse()?)
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(5);
    for (name, nat, extra) in [
        ("cone+stun", Nat::Cone, "stun"),
        ("symmetric+turn", Nat::Symmetric, ""),
        ("symmetric+relay-only", Nat::Symmetric, "relay=only"),
        ("open", Nat::Open, ""),
    ] {
        set_up(name, nat, extra, rounds).await?;
    }
    failure(rounds.min(3)).await?;
    bad_link(Duration::from_secs(60)).await
}

/// The `set-up` scenario for one network.
async fn set_up(name: &str, nat: Nat, extra: &str, rounds: usize) -> Result<()> {
    let bench = Bench::start([HomeSpec::behind(nat), HomeSpec::behind(nat)]).await?;
    let (a, b) = bench.pages().await?;
    let mut times = Vec::new();
    for round in 0..rounds {
        let mut query = format!("room=bench-{name}-{round}");
        match extra {
            "stun" => query.push_str(&format!("&ice={}", bench.turn.stun_url())),
            "" => {}
            other => query.push_str(&format!("&{other}")),
        }
        let join_at = bench.round(&a, &b, &query).await?;
        let (a_id, b_id) = (id(&a).await?, id(&b).await?);
        let fa = first_frame(&a, &b_id).await?;
        let fb = first_frame(&b, &a_id).await?;
        times.push(fa.max(fb) - join_at);
        a.leave().await?;
        b.leave().await?;
    }
    print(json!({
        "mode": "netlab-set-up",
        "network": name,
        "rounds": rounds,
        "setup_ms": times,
        "median_ms": e2e::median(&times),
    }));
    a.close().await?;
    b.close().await?;
    bench.harness.stop().await
}

/// The `failure` scenario: symmetric NATs, STUN only.
async fn failure(rounds: usize) -> Result<()> {
    let homes = [
        HomeSpec::behind(Nat::Symmetric),
        HomeSpec::behind(Nat::Symmetric),
    ];
    let bench = Bench::start(homes).await?;
    let (a, b) = bench.pages().await?;
    let mut times = Vec::new();
    for round in 0..rounds {
        let query = format!("room=bench-fail-{round}&ice={}", bench.turn.stun_url());
        let join_at = bench.round(&a, &b, &query).await?;
        let (a_id, b_id) = (id(&a).await?, id(&b).await?);
        wait_failed(&a, b_id).await?;
        wait_failed(&b, a_id).await?;
        times.push(now(&a).await? - join_at);
        a.leave().await?;
        b.leave().await?;
    }
    print(json!({
        "mode": "netlab-failure",
        "network": "symmetric, no TURN",
        "rounds": rounds,
        "until_failed_ms": times,
        "median_ms": e2e::median(&times),
    }));
    a.close().await?;
    b.close().await?;
    bench.harness.stop().await
}

/// The `bad-link` scenario, held for `hold`.
async fn bad_link(hold: Duration) -> Result<()> {
    let bad = Link {
        up_kbit: Some(500),
        down_kbit: None,
        delay_ms: 100,
        loss_pct: 5,
    };
    let bench = Bench::start([HomeSpec::behind(Nat::Cone), HomeSpec::behind(Nat::Cone)]).await?;
    let query = format!("room=bench-bad&ice={}", bench.turn.stun_url());
    let a = bench.harness.page_in(0, &query).await?;
    let b = bench.harness.page_in(1, &query).await?;
    // Loaded on a clean link, then the link turns bad before the call.
    bench.lab.set_link(0, bad)?;
    a.join().await?;
    b.join().await?;
    let (a_id, b_id) = (id(&a).await?, id(&b).await?);
    first_frame(&a, &b_id).await?;
    first_frame(&b, &a_id).await?;
    tokio::time::sleep(hold).await;
    let mut pages = Vec::new();
    for (who, page, peer) in [("lossy home", &a, &b_id), ("clean home", &b, &a_id)] {
        let attr = |name: &'static str| async move {
            let v = page.tile_attr(peer, name).await?.unwrap_or_default();
            Ok::<f64, anyhow::Error>(v.parse().unwrap_or(0.0))
        };
        let (freezes, freeze_ms) = (attr("data-freezes").await?, attr("data-freeze-ms").await?);
        let minutes = hold.as_secs_f64() / 60.0;
        pages.push(json!({
            "page": who,
            "receives_from": if who == "lossy home" { "clean home" } else { "lossy home (its uplink)" },
            "freezes": freezes,
            "freezes_per_minute": freezes / minutes,
            "total_freeze_ms": freeze_ms,
            "fps": attr("data-fps").await?,
        }));
    }
    print(json!({
        "mode": "netlab-bad-link",
        "link": "500 kbit/s up, +200 ms RTT, 5 % loss (one home)",
        "held_s": hold.as_secs(),
        "pages": pages,
    }));
    a.close().await?;
    b.close().await?;
    bench.harness.stop().await
}

/// Waits until `page` shows its connection to `peer` given up.
async fn wait_failed(page: &Page, peer: String) -> Result<()> {
    page.wait_for("the connection given up", DEADLINE, move |p| {
        let peer = peer.clone();
        Box::pin(async move { Ok(p.tile_attr(&peer, "data-failed").await?.is_some()) })
    })
    .await
}

async fn id(page: &Page) -> Result<String> {
    page.client_id().await?.context("a client id")
}

/// When `page` showed `peer`'s first frame (ms since the epoch).
async fn first_frame(page: &Page, peer: &str) -> Result<f64> {
    let tiles = page.wait_playing(&[peer.to_owned()], DEADLINE).await?;
    match tiles.first().and_then(|t| t.first_frame_at) {
        Some(at) => Ok(at),
        None => bail!("no first-frame time on {tiles:?}"),
    }
}

/// The page's clock, ms since the epoch.
async fn now(page: &Page) -> Result<f64> {
    page.eval("return Date.now()")
        .await?
        .as_f64()
        .context("Date.now()")
}

fn print(report: serde_json::Value) {
    println!("{report}");
}
