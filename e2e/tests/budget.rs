//! End-to-end: the mesh send budget on loopback, where the network is not the limit and the
//! receivers' tile sizes are. Three Chromium pages, one with a phone-sized window: every
//! sender encodes each link at no more than the size its receiver shows it at (read from the
//! sender's getStats, `frameHeight` of the link's outbound video), desktop receivers keep
//! their resolution, and focusing a tile raises what its sender encodes. Every page is
//! asserted. The shaped-uplink cases are in `lab_budget.rs`.

use e2e::{Harness, Page, client_ids, wait_full_mesh};
use server::Config;
use std::time::Duration;

const MEDIA_DEADLINE: Duration = Duration::from_secs(45);
/// How long a new view takes to reach the encoder: the hint, an evaluation (every 3 s),
/// `setParameters`, frames at the new size (the encoder may step down through sizes).
const ENCODE_DEADLINE: Duration = Duration::from_secs(30);

/// How `page` shows `peer`'s tile: its height in device pixels.
async fn shown_height(page: &Page, peer: &str) -> f64 {
    page.eval(&format!(
        "const t = document.querySelector('#grid .tile[data-peer=\"{peer}\"]'); \
         return t.clientHeight * window.devicePixelRatio;"
    ))
    .await
    .unwrap()
    .as_f64()
    .expect("a tile height")
}

/// What `page` sends to `peer` now: the outbound height and what limits it.
async fn sent(page: &Page, peer: &str) -> (u32, String) {
    let height = page.tile_attr(peer, "data-send-height").await.unwrap();
    let limit = page.tile_attr(peer, "data-send-limit").await.unwrap();
    (
        height.and_then(|h| h.parse().ok()).unwrap_or(0),
        limit.unwrap_or_default(),
    )
}

/// Clicks `peer`'s tile on `page` (focusing it, or unfocusing it when it was).
async fn click_tile(page: &Page, peer: &str) {
    page.eval(&format!(
        "document.querySelector('#grid .tile[data-peer=\"{peer}\"]').click(); return true;"
    ))
    .await
    .unwrap();
}

/// The encoder's step for a tile this tall (the smallest of 120, 180, 240, 360, 480, 540,
/// 720, 1080 at least as tall).
fn step_up(height: f64) -> u32 {
    [120, 180, 240, 360, 480, 540, 720, 1080]
        .into_iter()
        .find(|h| f64::from(*h) >= height)
        .unwrap_or(1080)
}

/// Waits until `sender` encodes its link to `receiver` so that `ok(height, limit)` holds.
async fn wait_sent(
    sender: &Page,
    receiver_id: &str,
    what: &str,
    ok: impl Fn(u32, &str) -> bool + Copy + Send + Sync + 'static,
) {
    let peer = receiver_id.to_owned();
    let waited = sender
        .wait_for(what, ENCODE_DEADLINE, move |p| {
            let peer = peer.clone();
            Box::pin(async move {
                let (h, limit) = sent(p, &peer).await;
                Ok(h > 0 && ok(h, &limit))
            })
        })
        .await;
    let now = sent(sender, receiver_id).await;
    if let Err(e) = waited {
        panic!("{what}: {e}; sending {now:?}");
    }
    println!("{what}: sending {now:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_link_is_encoded_at_its_receivers_tile_size_and_focus_raises_it() {
    let harness = Harness::start(Config::default()).await.unwrap();
    let query = "room=e2e-budget&ice=";
    let a = harness.page(query).await.unwrap();
    let b = harness.page(query).await.unwrap();
    let phone = harness.page(query).await.unwrap();
    phone.client.set_window_size(390, 844).await.unwrap();
    for page in [&a, &b, &phone] {
        page.join().await.unwrap();
    }
    let pages = [&a, &b, &phone];
    wait_full_mesh(&pages, MEDIA_DEADLINE).await.unwrap();
    let ids = client_ids(&pages).await.unwrap();

    // Every link: at most the receiver's tile (in the encoder's steps); the phone's tiles
    // are at most 360 lines tall, the desktop ones are sent the ladder's 480 (three pages:
    // two peers each), unless this machine's CPU is what holds the encoder back.
    for (i, sender) in pages.iter().enumerate() {
        for (j, receiver) in pages.iter().enumerate() {
            if i == j {
                continue;
            }
            let shown = step_up(shown_height(receiver, &ids[i]).await);
            if j == 2 {
                assert!(shown <= 360, "the phone shows page {i} {shown} tall");
                let what = format!("page {i} to send the phone at most {shown} lines");
                wait_sent(sender, &ids[j], &what, move |h, _| h <= shown).await;
            } else {
                let what = format!("page {i} to send page {j} its tile's {shown} lines");
                let want = shown.min(480);
                wait_sent(sender, &ids[j], &what, move |h, limit| {
                    h == want || (limit == "cpu" && h < want)
                })
                .await;
            }
        }
    }

    // On b, the phone's tile is focused: a's becomes a thumbnail, and a sends b less...
    click_tile(&b, &ids[2]).await;
    let thumb = step_up(shown_height(&b, &ids[0]).await);
    assert!(
        thumb <= 240,
        "a's tile on b is {thumb} tall once the phone's is focused"
    );
    wait_sent(&a, &ids[1], "a to send b's thumbnail", move |h, limit| {
        h <= thumb && limit == "receiver size"
    })
    .await;
    // ...and focusing a's tile raises it again.
    click_tile(&b, &ids[0]).await;
    wait_sent(
        &a,
        &ids[1],
        "a to send b's focused tile more",
        move |h, _| h > thumb,
    )
    .await;
    // The phone's focused tile on b now is a thumbnail: the phone sends b less too.
    let phone_thumb = step_up(shown_height(&b, &ids[2]).await);
    wait_sent(
        &phone,
        &ids[1],
        "the phone to send b's thumbnail",
        move |h, _| h <= phone_thumb,
    )
    .await;

    for page in [a, b, phone] {
        page.close().await.unwrap();
    }
    harness.stop().await.unwrap();
}
