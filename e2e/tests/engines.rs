//! Calls between browser engines: Chromium and Firefox pages in one call, every page checked
//! for audio, video and chat (the features with a Firefox page on one side are in `call.rs`).

use e2e::{Engine, Harness, Page, client_ids, wait_full_mesh};
use server::Config;
use std::time::Duration;
use tokio::time::Instant;

/// How long a call may take to show video everywhere.
const MEDIA_DEADLINE: Duration = Duration::from_secs(45);

/// Waits until `page` shows `peer`'s tile with attribute `name` for which `ok` holds.
async fn wait_tile(page: &Page, peer: &str, name: &str, what: &str, ok: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + MEDIA_DEADLINE;
    loop {
        let value = page.tile_attr(peer, name).await.unwrap();
        if value.as_deref().is_some_and(&ok) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{}: timed out waiting for {what}: {name} = {value:?}",
            page.engine.name()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every page receives video frames and audible audio from every other page: a frame rate,
/// audio packets and audio energy that grow.
async fn assert_media_flowing(pages: &[&Page]) {
    let ids = client_ids(pages).await.unwrap();
    for (i, page) in pages.iter().enumerate() {
        for (j, id) in ids.iter().enumerate().filter(|(j, _)| *j != i) {
            let what = format!("page {i} to receive video from page {j}");
            wait_tile(page, id, "data-fps", &what, |f| {
                f.parse::<f64>().is_ok_and(|v| v > 0.0)
            })
            .await;
            for attr in ["data-audio-packets", "data-audio-energy"] {
                let first: f64 = page
                    .tile_attr(id, attr)
                    .await
                    .unwrap()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0.0);
                let what = format!("page {i}'s {attr} from page {j} to grow past {first}");
                wait_tile(page, id, attr, &what, |v| {
                    v.parse::<f64>().is_ok_and(|v| v > first)
                })
                .await;
            }
        }
    }
}

/// Every page's chat channel to every other page is open; a line each page types over it
/// reaches every other page.
async fn assert_chat_over_channels(pages: &[&Page]) {
    let ids = client_ids(pages).await.unwrap();
    for (i, page) in pages.iter().enumerate() {
        for (j, id) in ids.iter().enumerate().filter(|(j, _)| *j != i) {
            let what = format!("page {i}'s chat channel to page {j} to open");
            wait_tile(page, id, "data-chat", &what, |v| v == "open").await;
        }
    }
    for (i, page) in pages.iter().enumerate() {
        page.client
            .find(fantoccini::Locator::Id("chat-input"))
            .await
            .unwrap()
            .send_keys(&format!("hi from {}\u{E007}", page.engine.name()))
            .await
            .unwrap();
        let line = format!("P{i}: hi from {}", page.engine.name());
        for (j, other) in pages.iter().enumerate().filter(|(j, _)| *j != i) {
            let what = format!("page {j} to show {line:?}");
            let line = line.clone();
            other
                .wait_for(&what, MEDIA_DEADLINE, move |p| {
                    let line = line.clone();
                    Box::pin(async move {
                        let log = p.eval(CHAT_LOG).await?;
                        let got: Vec<String> = serde_json::from_value(log)?;
                        Ok(got.contains(&line))
                    })
                })
                .await
                .unwrap();
        }
    }
}

/// The page's chat lines as `name: text`.
const CHAT_LOG: &str = "return Array.from(document.querySelectorAll('#chat-log li')).map(li => \
     li.querySelector('.name').textContent + ': ' + li.querySelector('.text').textContent);";

/// Pages in `engines`, in this order, joined to `room`.
async fn call_of(harness: &Harness, room: &str, engines: &[Engine]) -> Vec<Page> {
    let mut pages = Vec::new();
    for (i, engine) in engines.iter().enumerate() {
        let page = harness
            .page_with(*engine, &format!("room={room}&ice=&name=P{i}"))
            .await
            .unwrap();
        page.join().await.unwrap();
        pages.push(page);
    }
    pages
}

/// Chromium and Firefox, both join orders: video and audio both ways, chat over the data
/// channel both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_and_firefox_call_each_other_in_both_join_orders() {
    let harness = Harness::start(Config::default()).await.unwrap();
    for (room, order) in [
        ("mixed-cf", [Engine::Chromium, Engine::Firefox]),
        ("mixed-fc", [Engine::Firefox, Engine::Chromium]),
    ] {
        let pages = call_of(&harness, room, &order).await;
        let refs: Vec<&Page> = pages.iter().collect();
        wait_full_mesh(&refs, MEDIA_DEADLINE).await.unwrap();
        assert_media_flowing(&refs).await;
        assert_chat_over_channels(&refs).await;
        for page in pages {
            page.close().await.unwrap();
        }
    }
    harness.stop().await.unwrap();
}

/// Three pages, two engines: two Chromium and one Firefox, then one Chromium and two Firefox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_pages_of_two_engines_all_play() {
    let harness = Harness::start(Config::default()).await.unwrap();
    for (room, engines) in [
        (
            "three-ccf",
            [Engine::Chromium, Engine::Chromium, Engine::Firefox],
        ),
        (
            "three-cff",
            [Engine::Chromium, Engine::Firefox, Engine::Firefox],
        ),
    ] {
        let pages = call_of(&harness, room, &engines).await;
        let refs: Vec<&Page> = pages.iter().collect();
        wait_full_mesh(&refs, MEDIA_DEADLINE).await.unwrap();
        assert_media_flowing(&refs).await;
        for page in pages {
            page.close().await.unwrap();
        }
    }
    harness.stop().await.unwrap();
}
