//! `call-bench`: call set-up time of the browser app in headless Chromium on loopback.
//!
//! Two pages (fake camera and microphone) and the relay with its defaults, serving the built
//! app. For each of N rounds both pages load a fresh room; the first joins, then the second;
//! the set-up time is from the second page's Join click (`body[data-join-at]`, stamped by the
//! app) to the later of the two pages' first remote video frame (`data-first-frame-at` on the
//! tile). Prints one JSON object: every round and the median.

use anyhow::{Context, Result, bail};
use e2e::{Harness, Page};
use server::Config;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() -> Result<()> {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(10);
    let harness = Harness::start(Config::default()).await?;
    let a = harness.page("ice=").await?;
    let b = harness.page("ice=").await?;
    let mut times = Vec::new();
    for round in 0..rounds {
        let query = format!("room=bench-{round}&ice=");
        for page in [&a, &b] {
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
        wait_joined(&a).await?;
        b.click("join").await?;
        wait_joined(&b).await?;
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
        let ms = fa.max(fb) - join_at;
        eprintln!("round {round}: {ms:.0} ms");
        times.push(ms);
        a.click("leave").await?;
        b.click("leave").await?;
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let median = if sorted.is_empty() {
        f64::NAN
    } else if sorted.len() % 2 == 1 {
        sorted[sorted.len() / 2]
    } else {
        (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2]) / 2.0
    };
    let report = serde_json::json!({
        "mode": "call-setup",
        "rounds": rounds,
        "setup_ms": times,
        "median_ms": median,
        "min_ms": sorted.first(),
        "max_ms": sorted.last(),
        "measured": "second page's Join click to the later first remote frame of both pages",
    });
    println!("{report}");
    a.close().await?;
    b.close().await?;
    harness.stop().await
}

async fn wait_joined(page: &Page) -> Result<()> {
    page.wait_for("the join to complete", DEADLINE, |p| {
        Box::pin(async move { Ok(p.status().await?.starts_with("in room")) })
    })
    .await
}
