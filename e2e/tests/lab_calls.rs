//! Calls across real networks: browser pages in the homes of a network lab (`e2e::netlab`),
//! behind cone, symmetric or no NATs, on clean or bad links, calling through the relay and
//! coturn in the lab's public namespace. Every page of a call is checked.
//!
//! The tests run one at a time (each has two or three browsers on the machine's two cores).

use e2e::netlab::{HomeSpec, Lab, Link, Nat};
use e2e::{Engine, Harness, Page, TurnServer, client_ids, wait_full_mesh};
use server::Config;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// How long a call may take to show video everywhere.
const MEDIA_DEADLINE: Duration = Duration::from_secs(45);

/// One lab call at a time.
static SERIAL: Mutex<()> = Mutex::const_new(());

const TURN_SECRET: &str = "lab-turn-secret";

/// A lab with these homes, coturn in its public namespace, and the relay there too (handing
/// out TURN credentials when `with_turn`).
struct LabCall {
    harness: Harness,
    turn: TurnServer,
    lab: Arc<Lab>,
}

impl LabCall {
    async fn start(homes: &[HomeSpec], with_turn: bool) -> LabCall {
        let lab = Arc::new(Lab::new(homes).expect("the network lab"));
        let turn = TurnServer::start_in(&lab, TURN_SECRET).expect("coturn in the lab");
        let config = if with_turn {
            Config {
                turn_urls: vec![turn.turn_url()],
                turn_secret: Some(TURN_SECRET.into()),
                ..Config::default()
            }
        } else {
            Config::default()
        };
        let harness = Harness::start_in(lab.clone(), config).await.unwrap();
        LabCall { harness, turn, lab }
    }

    /// A Chromium page in home `k` with `query`, joined.
    async fn joined(&self, k: usize, query: &str) -> Page {
        self.joined_with(k, Engine::Chromium, query).await
    }

    /// A page in `engine` in home `k`, joined.
    async fn joined_with(&self, k: usize, engine: Engine, query: &str) -> Page {
        let page = self.harness.page_in_with(k, engine, query).await.unwrap();
        page.join().await.unwrap();
        page
    }

    /// `ice=` for STUN only (coturn's), no TURN.
    fn stun_only(&self) -> String {
        format!("ice={}", self.turn.stun_url())
    }

    async fn end(self, pages: Vec<Page>) {
        for page in pages {
            page.close().await.unwrap();
        }
        self.harness.stop().await.unwrap();
        drop(self.turn);
        drop(self.lab);
    }
}

/// Waits until `page` shows `peer`'s tile with attribute `name` for which `ok` holds.
async fn wait_tile(page: &Page, peer: &str, name: &str, what: &str, ok: impl Fn(&str) -> bool) {
    if let Err(e) = e2e::wait_tile(page, peer, name, MEDIA_DEADLINE, ok).await {
        panic!("waiting for {what}: {e}");
    }
}

/// Both pages of a call show each other's tile on a path of `path`.
async fn assert_path(pages: &[&Page], path: &str) {
    let ids = client_ids(pages).await.unwrap();
    for (i, page) in pages.iter().enumerate() {
        for (j, id) in ids.iter().enumerate() {
            if i != j {
                let what = format!("page {i} to see page {j} over a {path} path");
                wait_tile(page, id, "data-path", &what, |p| p == path).await;
            }
        }
    }
}

/// a. Cone NATs on both sides, STUN only: connected over a server-reflexive pair.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cone_nats_connect_with_stun_over_a_reflexive_path() {
    let _one = SERIAL.lock().await;
    let call = LabCall::start(
        &[HomeSpec::behind(Nat::Cone), HomeSpec::behind(Nat::Cone)],
        false,
    )
    .await;
    let query = format!("room=lab-cone&{}", call.stun_only());
    let a = call.joined(0, &query).await;
    let b = call.joined(1, &query).await;
    wait_full_mesh(&[&a, &b], MEDIA_DEADLINE).await.unwrap();
    assert_path(&[&a, &b], "reflexive").await;
    call.end(vec![a, b]).await;
}

/// b. Symmetric NATs on both sides: only TURN gets through, with the relay's credentials;
/// also when the pages ask for relayed candidates only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symmetric_nats_connect_through_turn_with_the_relays_credentials() {
    let _one = SERIAL.lock().await;
    let homes = [
        HomeSpec::behind(Nat::Symmetric),
        HomeSpec::behind(Nat::Symmetric),
    ];
    let call = LabCall::start(&homes, true).await;
    for query in ["room=lab-sym", "room=lab-sym-relay&relay=only"] {
        let a = call.joined(0, query).await;
        let b = call.joined(1, query).await;
        wait_full_mesh(&[&a, &b], MEDIA_DEADLINE).await.unwrap();
        assert_path(&[&a, &b], "relayed").await;
        a.close().await.unwrap();
        b.close().await.unwrap();
    }
    call.end(vec![]).await;
}

/// c. Symmetric NATs and no TURN server: both pages show the same clear state within 20 s,
/// never "good", and the relay carries on (a chat message still gets across).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_turn_symmetric_nats_fail_the_same_way_on_both_pages() {
    let _one = SERIAL.lock().await;
    let homes = [
        HomeSpec::behind(Nat::Symmetric),
        HomeSpec::behind(Nat::Symmetric),
    ];
    let call = LabCall::start(&homes, false).await;
    let query = format!("room=lab-noturn&{}", call.stun_only());
    let a = call.joined(0, &query).await;
    let b = call.joined(1, &query).await;
    // From b's joining (browser start-up not counted).
    let started = Instant::now();
    let ids = client_ids(&[&a, &b]).await.unwrap();
    let reason = "can't connect directly; this network needs a TURN server";
    for (page, peer) in [(&a, &ids[1]), (&b, &ids[0])] {
        wait_tile(page, peer, "data-failed", "the failed state", |r| {
            r == reason
        })
        .await;
        assert_ne!(
            page.tile_attr(peer, "data-quality")
                .await
                .unwrap()
                .as_deref(),
            Some("good")
        );
    }
    let took = started.elapsed();
    assert!(
        took <= Duration::from_secs(20),
        "both failed after {took:?}"
    );
    // The relay and the room go on: chat reaches the other page through the relay.
    a.client
        .find(fantoccini::Locator::Id("chat-input"))
        .await
        .unwrap()
        .send_keys("still here\u{E007}")
        .await
        .unwrap();
    let relayed = "return Array.from(document.querySelectorAll('#chat-log li[data-via=relay]'))\
                   .map(li => li.textContent).join('|')";
    b.wait_for(
        "the chat line, through the relay",
        Duration::from_secs(10),
        |p| {
            Box::pin(async move {
                let log = p.eval(relayed).await?;
                Ok(log.as_str().is_some_and(|l| l.contains("still here")))
            })
        },
    )
    .await
    .unwrap();
    call.end(vec![a, b]).await;
}

/// d. `?relay=only` without any TURN server: a clear notice at once, on both pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_without_turn_says_so_at_once() {
    let _one = SERIAL.lock().await;
    let call = LabCall::start(
        &[HomeSpec::behind(Nat::Cone), HomeSpec::behind(Nat::Cone)],
        false,
    )
    .await;
    let query = format!("room=lab-relayonly&{}", call.stun_only());
    let a = call.joined(0, &format!("{query}&relay=only")).await;
    let status = a.status().await.unwrap();
    assert!(
        status.contains("relay-only mode needs a TURN server"),
        "{status}"
    );
    let b = call.joined(1, &query).await;
    let started = Instant::now();
    let ids = client_ids(&[&a, &b]).await.unwrap();
    let reason = "relay-only mode needs a TURN server, and none is configured";
    for (page, peer) in [(&a, &ids[1]), (&b, &ids[0])] {
        wait_tile(page, peer, "data-failed", "the relay-only refusal", |r| {
            r == reason
        })
        .await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    call.end(vec![a, b]).await;
}

/// e. A bad link (one page on a 500 kbit/s uplink with +200 ms round trips and 5 % loss): the
/// call connects and plays, both tiles grade it fair or poor with real numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_link_plays_and_is_graded_with_real_numbers() {
    let _one = SERIAL.lock().await;
    let bad = Link {
        up_kbit: Some(500),
        down_kbit: None,
        delay_ms: 100,
        loss_pct: 5,
    };
    let homes = [HomeSpec::behind(Nat::Cone), HomeSpec::behind(Nat::Cone)];
    let call = LabCall::start(&homes, false).await;
    let query = format!("room=lab-bad&{}", call.stun_only());
    // The pages load on a clean link (loading the app over this one takes long), then the
    // link turns bad before the call.
    let a = call.harness.page_in(0, &query).await.unwrap();
    let b = call.harness.page_in(1, &query).await.unwrap();
    call.lab.set_link(0, bad).unwrap();
    a.join().await.unwrap();
    b.join().await.unwrap();
    wait_full_mesh(&[&a, &b], MEDIA_DEADLINE).await.unwrap();
    let ids = client_ids(&[&a, &b]).await.unwrap();
    for (page, peer) in [(&a, &ids[1]), (&b, &ids[0])] {
        wait_tile(page, peer, "data-quality", "a fair or poor grade", |q| {
            q == "fair" || q == "poor"
        })
        .await;
        let line = page
            .eval(&format!(
                "return document.querySelector('#grid .tile[data-peer=\"{peer}\"] .stats').textContent"
            ))
            .await
            .unwrap();
        let rtt: f64 = line
            .as_str()
            .and_then(|l| l.split(" · ").nth(1))
            .and_then(|r| r.trim_end_matches(" ms").parse().ok())
            .unwrap_or_else(|| panic!("a round-trip time in {line}"));
        assert!(
            rtt >= 180.0,
            "round trip {rtt} ms over a +200 ms link: {line}"
        );
    }
    call.end(vec![a, b]).await;
}

/// Every page receives video from every other page now: a frame rate above zero on each tile.
async fn assert_flowing(pages: &[&Page]) {
    let ids = client_ids(pages).await.unwrap();
    for (i, page) in pages.iter().enumerate() {
        for (j, id) in ids.iter().enumerate() {
            if i != j {
                let what = format!("page {i} to receive frames from page {j}");
                wait_tile(page, id, "data-fps", &what, |f| {
                    f.parse::<f64>().is_ok_and(|fps| fps > 0.0)
                })
                .await;
            }
        }
    }
}

/// Whether every tile of `page` shows reconnecting.
async fn all_reconnecting(page: &Page) -> bool {
    page.eval(
        "const t = document.querySelectorAll('#grid .tile'); \
         return t.length > 0 && Array.from(t).every(x => x.hasAttribute('data-reconnecting'));",
    )
    .await
    .unwrap()
        == serde_json::json!(true)
}

/// f. A network change: one home's link cut for 10 s, then restored: both pages show
/// reconnecting, then the same peers play again without a rejoin. Cut for 60 s: both pages
/// give the connection up the same way, and call again once the home is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_link_recovers_and_a_long_cut_ends_and_calls_again() {
    let _one = SERIAL.lock().await;
    let call = LabCall::start(
        &[HomeSpec::behind(Nat::Cone), HomeSpec::behind(Nat::Cone)],
        false,
    )
    .await;
    let query = format!("room=lab-cut&{}", call.stun_only());
    let a = call.joined(0, &query).await;
    let b = call.joined(1, &query).await;
    wait_full_mesh(&[&a, &b], MEDIA_DEADLINE).await.unwrap();
    let ids = client_ids(&[&a, &b]).await.unwrap();
    let mark = "document.querySelectorAll('#grid .tile').forEach(t => t.dataset.mark = 'kept');";
    for page in [&a, &b] {
        page.eval(mark).await.unwrap();
    }

    // 10 s: both pages see it go, then come back on the same connections.
    call.lab.cut(0).unwrap();
    let cut_at = Instant::now();
    let (mut seen_a, mut seen_b) = (false, false);
    while cut_at.elapsed() < Duration::from_secs(10) {
        seen_a |= all_reconnecting(&a).await;
        seen_b |= all_reconnecting(&b).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    call.lab.restore(0).unwrap();
    assert!(
        seen_a && seen_b,
        "reconnecting shown: a {seen_a}, b {seen_b}"
    );
    let kept = "const t = document.querySelector('#grid .tile'); \
                return t !== null && t.dataset.mark === 'kept' && !t.hasAttribute('data-reconnecting');";
    for page in [&a, &b] {
        page.wait_for("the same call back", MEDIA_DEADLINE, move |p| {
            Box::pin(async move { Ok(p.eval(kept).await? == serde_json::json!(true)) })
        })
        .await
        .unwrap();
    }
    assert_flowing(&[&a, &b]).await;
    assert_eq!(client_ids(&[&a, &b]).await.unwrap(), ids, "no rejoin");

    // 60 s: both pages give it up, the same way, while it is cut.
    call.lab.cut(0).unwrap();
    let long_cut = Instant::now();
    let reason = "connection lost; it comes back when the network does";
    for (page, peer) in [(&a, &ids[1]), (&b, &ids[0])] {
        let deadline = long_cut + Duration::from_secs(58);
        loop {
            if page
                .tile_attr(peer, "data-failed")
                .await
                .unwrap()
                .as_deref()
                == Some(reason)
            {
                break;
            }
            assert!(Instant::now() < deadline, "not given up within the cut");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    tokio::time::sleep_until(long_cut + Duration::from_secs(60)).await;
    call.lab.restore(0).unwrap();
    // Once back, the home's page reconnects to the relay and they call again.
    let back = Duration::from_secs(90);
    wait_full_mesh(&[&a, &b], back).await.unwrap();
    assert_flowing(&[&a, &b]).await;
    call.end(vec![a, b]).await;
}

/// g. Three pages, behind no NAT, a cone NAT (Firefox) and a symmetric NAT, all play each
/// other (TURN where nothing else gets through).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_pages_behind_three_kinds_of_network_all_play() {
    let _one = SERIAL.lock().await;
    let homes = [
        HomeSpec::behind(Nat::Open),
        HomeSpec::behind(Nat::Cone),
        HomeSpec::behind(Nat::Symmetric),
    ];
    let call = LabCall::start(&homes, true).await;
    let mut pages = Vec::new();
    for k in 0..3 {
        // The page behind the cone NAT runs in Firefox.
        let engine = if k == 1 {
            Engine::Firefox
        } else {
            Engine::Chromium
        };
        pages.push(call.joined_with(k, engine, "room=lab-three").await);
    }
    let refs: Vec<&Page> = pages.iter().collect();
    wait_full_mesh(&refs, MEDIA_DEADLINE).await.unwrap();
    assert_flowing(&refs).await;
    // Without a NAT in the way the call goes direct (or through the cone's mapping); between
    // the cone and the symmetric NAT only TURN gets through.
    let ids = client_ids(&refs).await.unwrap();
    for (page, peer) in [(0, 1), (1, 0)] {
        let what = format!("page {page} to reach page {peer} without TURN");
        wait_tile(refs[page], &ids[peer], "data-path", &what, |p| {
            p == "direct" || p == "reflexive"
        })
        .await;
    }
    for (page, peer) in [(1, 2), (2, 1)] {
        let what = format!("page {page} to reach page {peer} through TURN");
        wait_tile(refs[page], &ids[peer], "data-path", &what, |p| {
            p == "relayed"
        })
        .await;
    }
    call.end(pages).await;
}

/// h. Two, then three pages, one of them on a 1 Mbit/s uplink: every page plays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_on_a_one_megabit_uplink_plays_with_two_and_three() {
    let _one = SERIAL.lock().await;
    let slow = Link {
        up_kbit: Some(1000),
        ..Link::default()
    };
    let homes = [
        HomeSpec::behind(Nat::Cone).on(slow),
        HomeSpec::behind(Nat::Cone),
        HomeSpec::behind(Nat::Cone),
    ];
    let call = LabCall::start(&homes, false).await;
    let query = format!("room=lab-slow&{}", call.stun_only());
    let a = call.joined(0, &query).await;
    let b = call.joined(1, &query).await;
    wait_full_mesh(&[&a, &b], MEDIA_DEADLINE).await.unwrap();
    assert_flowing(&[&a, &b]).await;
    let c = call.joined(2, &query).await;
    wait_full_mesh(&[&a, &b, &c], MEDIA_DEADLINE).await.unwrap();
    assert_flowing(&[&a, &b, &c]).await;
    call.end(vec![a, b, c]).await;
}
