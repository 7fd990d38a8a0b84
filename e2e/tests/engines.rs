//! Calls of three pages in two engines (2 Chromium + 1 Firefox, 1 Chromium + 2 Firefox), every
//! page checked for video, audio and chat, then the Firefox page leaves and its tiles go away.
//! Two-page calls across the engines, with the call features, are in `call.rs`.

use e2e::Engine::{Chromium as C, Firefox as F};
use e2e::{Harness, Page, wait_chat_over_channels, wait_full_mesh, wait_media_flowing};
use server::Config;
use std::time::Duration;

/// How long a call may take to show video everywhere.
const MEDIA_DEADLINE: Duration = Duration::from_secs(45);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_pages_of_two_engines_all_play() {
    let harness = Harness::start(Config::default()).await.unwrap();
    for (room, engines) in [("three-ccf", [C, C, F]), ("three-cff", [C, F, F])] {
        let mut pages = Vec::new();
        for engine in engines {
            let page = harness
                .page_with(engine, &format!("room={room}&ice="))
                .await
                .unwrap();
            page.join().await.unwrap();
            pages.push(page);
        }
        let refs: Vec<&Page> = pages.iter().collect();
        wait_full_mesh(&refs, MEDIA_DEADLINE).await.unwrap();
        wait_media_flowing(&refs, MEDIA_DEADLINE).await.unwrap();
        wait_chat_over_channels(&refs, MEDIA_DEADLINE)
            .await
            .unwrap();
        // The last page (Firefox) leaves: the two others show exactly each other again.
        let leaver = pages.pop().unwrap();
        leaver.leave().await.unwrap();
        let refs: Vec<&Page> = pages.iter().collect();
        wait_full_mesh(&refs, MEDIA_DEADLINE).await.unwrap();
        leaver.close().await.unwrap();
        for page in pages {
            page.close().await.unwrap();
        }
    }
    harness.stop().await.unwrap();
}
