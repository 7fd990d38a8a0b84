//! `call-bench`: call set-up time of the browser app on loopback, for Chromium↔Chromium,
//! Firefox↔Firefox and Chromium↔Firefox.
//!
//! Four pages (two Chromium, two Firefox; fake camera and microphone) and the relay with its
//! defaults, serving the built app. Each round measures the three pairs in turn (interleaved,
//! so that the machine's noise falls on all three alike). For one measurement both pages of
//! the pair load a fresh room while the other two rest on a blank page; the first joins, then
//! the second; the set-up time is from the second page's Join click (`body[data-join-at]`,
//! stamped by the app) to the later of the two pages' first remote video frame
//! (`data-first-frame-at` on the tile). In the mixed pair Chromium joins first on even rounds,
//! Firefox on odd ones. Prints one JSON object: every round and the median and range per pair.

use anyhow::{Context, Result, bail};
use e2e::Engine::{Chromium, Firefox};
use e2e::{Harness, Page};
use serde_json::json;
use server::Config;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(30);

/// The pairs measured, by name and by the pages' indexes in `pages`.
const PAIRS: [(&str, usize, usize); 3] = [
    ("chromium-chromium", 0, 1),
    ("firefox-firefox", 2, 3),
    ("chromium-firefox", 0, 2),
];

#[tokio::main]
async fn main() -> Result<()> {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(10);
    let harness = Harness::start(Config::default()).await?;
    let mut pages = Vec::new();
    for engine in [Chromium, Chromium, Firefox, Firefox] {
        let page = harness.page_with(engine, "ice=").await?;
        page.client.goto("about:blank").await?;
        pages.push(page);
    }
    let mut times = vec![Vec::new(); PAIRS.len()];
    for round in 0..rounds {
        for (k, (name, i, j)) in PAIRS.iter().enumerate() {
            let (mut first, mut second) = (&pages[*i], &pages[*j]);
            if k == 2 && round % 2 == 1 {
                (first, second) = (second, first);
            }
            let room = format!("bench-{round}-{k}");
            let ms = setup(&harness, &room, first, second).await?;
            eprintln!("round {round} {name}: {ms:.0} ms");
            times[k].push(ms);
        }
    }
    let mut report = serde_json::Map::new();
    report.insert("mode".into(), json!("call-setup"));
    report.insert("rounds".into(), json!(rounds));
    for ((name, _, _), t) in PAIRS.iter().zip(&times) {
        report.insert((*name).into(), summary(t));
    }
    report.insert(
        "measured".into(),
        json!("second page's Join click to the later first remote frame of both pages"),
    );
    println!("{}", serde_json::Value::Object(report));
    for page in pages {
        page.close().await?;
    }
    harness.stop().await
}

/// One call set-up in `room`: `a` joins, then `b`; both pages go back to a blank page after.
async fn setup(harness: &Harness, room: &str, a: &Page, b: &Page) -> Result<f64> {
    let query = format!("room={room}&ice=");
    for page in [a, b] {
        page.client.goto(&harness.url(&query)).await?;
        page.wait_for("the app to start", DEADLINE, |p| {
            Box::pin(async move {
                Ok(p.body_attr("data-ready").await?.is_some()
                    && p.body_attr("data-media").await?.is_some())
            })
        })
        .await?;
    }
    a.click("join").await?;
    wait_joined(a).await?;
    b.click("join").await?;
    wait_joined(b).await?;
    let a_id = a.client_id().await?.context("a's id")?;
    let b_id = b.client_id().await?.context("b's id")?;
    let a_tiles = a
        .wait_playing(std::slice::from_ref(&b_id), DEADLINE)
        .await?;
    let b_tiles = b
        .wait_playing(std::slice::from_ref(&a_id), DEADLINE)
        .await?;
    let join_at: f64 = b
        .body_attr("data-join-at")
        .await?
        .context("join time")?
        .parse()?;
    let first = |tiles: &[e2e::Tile]| tiles.first().and_then(|t| t.first_frame_at);
    let (Some(fa), Some(fb)) = (first(&a_tiles), first(&b_tiles)) else {
        bail!("a first-frame time is missing: {a_tiles:?} {b_tiles:?}");
    };
    for page in [a, b] {
        page.client.goto("about:blank").await?;
    }
    Ok(fa.max(fb) - join_at)
}

/// Every time, the median and the range.
fn summary(times: &[f64]) -> serde_json::Value {
    let min = times.iter().copied().reduce(f64::min);
    let max = times.iter().copied().reduce(f64::max);
    json!({
        "setup_ms": times,
        "median_ms": e2e::median(times),
        "min_ms": min,
        "max_ms": max,
    })
}

async fn wait_joined(page: &Page) -> Result<()> {
    page.wait_for("the join to complete", DEADLINE, |p| {
        Box::pin(async move { Ok(p.status().await?.starts_with("in room")) })
    })
    .await
}
