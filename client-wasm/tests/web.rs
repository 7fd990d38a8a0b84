//! Browser tests of the web layer, in headless Chromium and in headless Firefox with a fake
//! camera and microphone (flags and prefs in `webdriver.json`): local media, two peers
//! connected to each other inside one page (a real offer/answer and ICE exchange until video
//! frames arrive in the tiles), tiles appearing and going away with their peers, and the
//! description payload and ICE server helpers.
//!
//! Run from the workspace (its `.cargo/config.toml` makes `wasm-bindgen-test-runner` the runner):
//! `CHROMEDRIVER=/usr/bin/chromedriver cargo test -p client-wasm --target wasm32-unknown-unknown`
//!
//! A panic inside a JS callback does not fail a test, so callbacks here only send into channels
//! and every assertion runs in the test's own future. Where no event announces a DOM change, the
//! test polls with a JS timer against a deadline.

#![cfg(target_arch = "wasm32")]

use client_wasm::core::{Event, SdpKind};
use client_wasm::i18n::{Lang, MediaFailure, Text, Who};
use client_wasm::protocol::{ClientId, Payload};
use client_wasm::web::dom::Ui;
use client_wasm::web::error::WebError;
use client_wasm::web::peer::{self, Peer};
use client_wasm::web::{self, AppEvent, media};
use futures_channel::mpsc::UnboundedReceiver;
use futures_channel::oneshot;
use futures_util::StreamExt;
use futures_util::future::{Either, select};
use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::{
    Document, Element, HtmlVideoElement, MediaStream, RtcPeerConnection, RtcPeerConnectionState,
    RtcRtpTransceiver, RtcRtpTransceiverDirection, RtcSignalingState,
};

wasm_bindgen_test_configure!(run_in_browser);

/// How long two peers in one page may take to show each other's video: usually well under a
/// second, generous for a loaded 2-core machine, and short enough that a miss is reported before
/// the runner's 20 s limit for the whole suite (`WASM_BINDGEN_TEST_TIMEOUT`) ends the run.
const MEDIA_DEADLINE_MS: f64 = 15_000.0;

fn document() -> Document {
    web_sys::window()
        .and_then(|w| w.document())
        .expect("a document")
}

fn client_id(id: &str) -> ClientId {
    ClientId::new(id).expect("a valid id")
}

/// A container of the test's own in the page's body, removed when dropped. A failing test aborts
/// without unwinding and leaves its container behind, so every test uses its own id and looks only
/// inside its own container.
struct Fixture(Element);

impl Fixture {
    fn new(id: &str) -> Fixture {
        let element = document().create_element("div").expect("createElement");
        element.set_id(id);
        document()
            .body()
            .expect("a body")
            .append_child(&element)
            .expect("appendChild");
        Fixture(element)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.0.remove();
    }
}

/// Resolves after `ms` milliseconds of a JS timer (the browser's event loop runs meanwhile).
async fn timer(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        web_sys::window()
            .expect("a window")
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms)
            .expect("setTimeout");
    });
    JsFuture::from(promise).await.expect("a timer resolves");
}

/// `future`'s output, or `None` if it takes longer than `ms` milliseconds.
async fn within<T>(ms: i32, future: impl Future<Output = T>) -> Option<T> {
    match select(pin!(future), pin!(timer(ms))).await {
        Either::Left((output, _)) => Some(output),
        Either::Right(_) => None,
    }
}

/// Polls `ready` every 50 ms until it holds (`Ok` with the milliseconds it took) or
/// `deadline_ms` have passed (`Err` naming `what`).
async fn poll_until(
    what: &str,
    deadline_ms: f64,
    mut ready: impl FnMut() -> bool,
) -> Result<f64, String> {
    let start = js_sys::Date::now();
    loop {
        if ready() {
            return Ok(js_sys::Date::now() - start);
        }
        if js_sys::Date::now() - start > deadline_ms {
            return Err(format!("{what}: not within {deadline_ms} ms"));
        }
        timer(50).await;
    }
}

/// The child elements of `parent`, in order.
fn children(parent: &Element) -> Vec<Element> {
    let mut out = Vec::new();
    let mut next = parent.first_element_child();
    while let Some(child) = next {
        next = child.next_element_sibling();
        out.push(child);
    }
    out
}

/// The `data-peer` of each tile in `grid`, in order.
fn tile_ids(grid: &Element) -> Vec<String> {
    children(grid)
        .iter()
        .map(|tile| tile.get_attribute("data-peer").unwrap_or_default())
        .collect()
}

/// The tile of remote peer `id` in `grid`.
fn tile(grid: &Element, id: &str) -> Option<Element> {
    grid.query_selector(&format!("[data-peer=\"{id}\"]"))
        .expect("a valid selector")
}

fn tile_video(tile: &Element) -> HtmlVideoElement {
    tile.query_selector("video")
        .expect("a valid selector")
        .expect("a video in the tile")
        .unchecked_into()
}

/// The sorted kinds (`audio`, `video`) of a stream's tracks.
fn track_kinds(stream: &MediaStream) -> Vec<String> {
    let mut kinds: Vec<String> = media::tracks(stream).iter().map(|t| t.kind()).collect();
    kinds.sort();
    kinds
}

fn stop(stream: &MediaStream) {
    for track in media::tracks(stream) {
        track.stop();
    }
}

fn transceiver_directions(pc: &RtcPeerConnection) -> Vec<Option<RtcRtpTransceiverDirection>> {
    pc.get_transceivers()
        .iter()
        .map(|t| t.unchecked_into::<RtcRtpTransceiver>().current_direction())
        .collect()
}

/// Stands in for the relay and the remote page's core: forwards the ICE candidates one peer
/// reports to the other peer's connection (the end of candidates as the `null` payload the core
/// sends), and records anything that went wrong. Ends once every sender of `events` is gone.
async fn relay_candidates(
    mut events: UnboundedReceiver<AppEvent>,
    to: RtcPeerConnection,
    problems: Rc<RefCell<Vec<String>>>,
) {
    while let Some(event) = events.next().await {
        let problem = match event {
            AppEvent::Core(Event::LocalCandidate(_, candidate)) => {
                let payload =
                    candidate.unwrap_or_else(|| Payload::from_json("null").expect("JSON null"));
                peer::add_candidate(&to, &payload)
                    .await
                    .err()
                    .map(|e| format!("{e} ({payload:?})"))
            }
            AppEvent::Core(Event::PeerState(id, client_wasm::core::PeerLink::Failed)) => {
                Some(format!("the connection to {id} failed"))
            }
            AppEvent::Error(e) => Some(e.to_string()),
            // This test negotiates by itself: `negotiationneeded` is not needed.
            _ => None,
        };
        if let Some(problem) = problem {
            problems.borrow_mut().push(problem);
        }
    }
}

/// [`relay_candidates`] in its own task; the receiver resolves when it has ended.
fn spawn_relay(
    events: UnboundedReceiver<AppEvent>,
    to: RtcPeerConnection,
    problems: Rc<RefCell<Vec<String>>>,
) -> oneshot::Receiver<()> {
    let (done, ended) = oneshot::channel();
    wasm_bindgen_futures::spawn_local(async move {
        relay_candidates(events, to, problems).await;
        let _ = done.send(());
    });
    ended
}

#[wasm_bindgen_test]
async fn media_acquisition_gives_one_audio_and_one_video_track() {
    let stream = media::acquire()
        .await
        .expect("the fake camera and microphone");
    assert_eq!(track_kinds(&stream), ["audio", "video"]);
    stop(&stream);
}

#[wasm_bindgen_test]
fn a_refused_permission_is_explained_as_denied() {
    let refusal =
        web_sys::DomException::new_with_message_and_name("Permission denied", "NotAllowedError")
            .expect("a DOMException");
    let e = WebError::from_js("getUserMedia", refusal.into());
    assert_eq!(e.name.as_deref(), Some("NotAllowedError"));
    let text = media::explain(&e);
    assert!(
        matches!(text, Text::MediaFailed(MediaFailure::Denied, _)),
        "{text:?}"
    );
    let text = text.render(Lang::En);
    assert!(text.contains("denied"), "{text}");

    let missing = WebError {
        api: "getUserMedia",
        name: Some("NotFoundError".to_owned()),
        message: "Requested device not found".to_owned(),
    };
    let text = media::explain(&missing).render(Lang::En);
    assert!(!text.contains("denied"), "{text}");
    assert!(text.contains("no camera or microphone"), "{text}");
}

#[wasm_bindgen_test]
async fn two_peers_in_one_page_connect_show_video_and_go_away_when_dropped() {
    let local = media::acquire()
        .await
        .expect("the fake camera and microphone");
    let fixture = Fixture::new("pair-grid");
    let grid = &fixture.0;
    // Host candidates only: both ends are in this page.
    let no_ice = web::ice_servers("");
    let (offerer_events, offerer_rx) = web::channel();
    let (answerer_events, answerer_rx) = web::channel();

    // A `Peer` is named after the remote side: the offering page's peer is "answerer".
    let offerer = Peer::new(
        &client_id("answerer"),
        Who::Named("Answerer".into()),
        true,
        Some(&local),
        &no_ice,
        grid,
        &offerer_events,
    )
    .expect("the offerer's peer");
    let mut answerer = Peer::new(
        &client_id("offerer"),
        Who::Named("Offerer".into()),
        false,
        Some(&local),
        &no_ice,
        grid,
        &answerer_events,
    )
    .expect("the answerer's peer");
    assert!(offerer.tracks_attached(), "an offerer sends at once");
    assert!(
        !answerer.tracks_attached(),
        "an answerer waits for the offer"
    );
    assert_eq!(tile_ids(grid), ["answerer", "offerer"]);
    for id in ["answerer", "offerer"] {
        let tile = tile(grid, id).expect("a tile");
        assert_eq!(tile.class_name(), "tile remote");
        assert!(!tile.has_attribute("data-playing"), "no video yet for {id}");
    }

    // Offer and answer in the order the core commands them, through the wire payloads.
    let offer = peer::make_local_description(offerer.pc(), SdpKind::Offer)
        .await
        .expect("an offer");
    let offer = peer::description_sdp(&peer::description_payload(SdpKind::Offer, &offer))
        .expect("the offer's SDP");
    peer::set_remote_description(answerer.pc(), SdpKind::Offer, &offer)
        .await
        .expect("the offer applied");
    answerer
        .attach_tracks(Some(&local))
        .expect("the answerer's tracks");
    let answer = peer::make_local_description(answerer.pc(), SdpKind::Answer)
        .await
        .expect("an answer");
    let answer = peer::description_sdp(&peer::description_payload(SdpKind::Answer, &answer))
        .expect("the answer's SDP");
    peer::set_remote_description(offerer.pc(), SdpKind::Answer, &answer)
        .await
        .expect("the answer applied");
    for pc in [offerer.pc(), answerer.pc()] {
        assert_eq!(pc.signaling_state(), RtcSignalingState::Stable);
    }
    // The answerer's tracks went on the offered transceivers, so the answer sends too and no
    // second negotiation is needed.
    let sendrecv = Some(RtcRtpTransceiverDirection::Sendrecv);
    assert_eq!(transceiver_directions(answerer.pc()), [sendrecv, sendrecv]);
    assert_eq!(transceiver_directions(offerer.pc()), [sendrecv, sendrecv]);

    // The candidates gathered so far waited in the channels; both sides can take them now.
    let problems = Rc::new(RefCell::new(Vec::new()));
    let offerer_relay = spawn_relay(offerer_rx, answerer.pc().clone(), problems.clone());
    let answerer_relay = spawn_relay(answerer_rx, offerer.pc().clone(), problems.clone());

    let playing = |id: &str| tile(grid, id).is_some_and(|t| t.has_attribute("data-playing"));
    let waited = poll_until("video playing in both tiles", MEDIA_DEADLINE_MS, || {
        (playing("offerer") && playing("answerer")) || !problems.borrow().is_empty()
    })
    .await;
    assert_eq!(*problems.borrow(), Vec::<String>::new());
    let waited = waited.unwrap();
    web_sys::console::log_1(&JsValue::from_str(&format!(
        "video playing in both tiles after {waited} ms"
    )));
    for id in ["answerer", "offerer"] {
        let tile = tile(grid, id).expect("a tile");
        let first_frame_at: f64 = tile
            .get_attribute("data-first-frame-at")
            .and_then(|t| t.parse().ok())
            .expect("the first frame's time");
        assert!(first_frame_at > 0.0);
        let video = tile_video(&tile);
        assert!(video.video_width() > 0, "{id}: a decoded frame has a size");
        let remote = video.src_object().expect("the remote stream on the video");
        assert_eq!(track_kinds(&remote), ["audio", "video"], "{id}");
    }
    for pc in [offerer.pc(), answerer.pc()] {
        assert_eq!(pc.connection_state(), RtcPeerConnectionState::Connected);
    }

    // Dropping a peer closes its connection and takes its tile away, and only its tile.
    let offerer_pc = offerer.pc().clone();
    drop(offerer);
    assert_eq!(tile_ids(grid), ["offerer"]);
    assert_eq!(
        offerer_pc.connection_state(),
        RtcPeerConnectionState::Closed
    );
    assert_eq!(offerer_pc.signaling_state(), RtcSignalingState::Closed);
    let answerer_pc = answerer.pc().clone();
    assert_ne!(answerer_pc.signaling_state(), RtcSignalingState::Closed);
    drop(answerer);
    assert_eq!(tile_ids(grid), Vec::<String>::new());
    assert_eq!(
        answerer_pc.connection_state(),
        RtcPeerConnectionState::Closed
    );
    assert_eq!(answerer_pc.signaling_state(), RtcSignalingState::Closed);

    // The peers' listeners held the only other senders: with them released, the relays end.
    drop((offerer_events, answerer_events));
    let ended = within(2_000, async {
        let _ = offerer_relay.await;
        let _ = answerer_relay.await;
    })
    .await;
    assert!(
        ended.is_some(),
        "a dropped peer's callbacks still hold its events"
    );
    stop(&local);
}

#[wasm_bindgen_test]
fn dropping_the_middle_peer_leaves_the_other_tiles_in_order() {
    // The real page, so `Ui` finds the elements it finds in the app.
    let page = Fixture::new("tiles-page");
    page.0.set_inner_html(include_str!("../../www/index.html"));
    let (events, _rx) = web::channel();
    let ui = Ui::new(&document(), &events).expect("the page's elements");
    let no_ice = web::ice_servers("");
    let mut peers: Vec<Peer> = [("p1", "Ann"), ("p2", "Bob"), ("p3", "Cy")]
        .into_iter()
        .map(|(id, label)| {
            Peer::new(
                &client_id(id),
                Who::Named(label.into()),
                false,
                None,
                &no_ice,
                &ui.grid,
                &events,
            )
            .map(|mut peer| {
                peer.render(ui.lang());
                peer
            })
            .expect("a peer")
        })
        .collect();
    ui.update_grid();
    assert_eq!(tile_ids(&ui.grid), ["p1", "p2", "p3"]);
    let labels: Vec<String> = children(&ui.grid)
        .iter()
        .map(|t| t.text_content().unwrap_or_default())
        .collect();
    assert_eq!(labels, ["Ann", "Bob", "Cy"]);
    assert_eq!(ui.grid.get_attribute("data-count").as_deref(), Some("3"));

    let middle = peers.remove(1);
    let middle_pc = middle.pc().clone();
    drop(middle);
    ui.update_grid();
    assert_eq!(tile_ids(&ui.grid), ["p1", "p3"]);
    assert_eq!(ui.grid.get_attribute("data-count").as_deref(), Some("2"));
    assert_eq!(middle_pc.signaling_state(), RtcSignalingState::Closed);
    for peer in &peers {
        assert_eq!(peer.pc().signaling_state(), RtcSignalingState::Stable);
    }

    drop(peers);
    ui.update_grid();
    assert_eq!(tile_ids(&ui.grid), Vec::<String>::new());
    assert_eq!(ui.grid.get_attribute("data-count").as_deref(), Some("0"));
}

#[wasm_bindgen_test]
fn the_page_switches_language_with_every_text_it_shows() {
    let page = Fixture::new("lang-page");
    page.0.set_inner_html(include_str!("../../www/index.html"));
    let (events, _rx) = web::channel();
    let ui = Ui::new(&document(), &events).expect("the page's elements");
    let mut peer = Peer::new(
        &client_id("p1"),
        Who::Id("p1".into()),
        false,
        None,
        &web::ice_servers(""),
        &ui.grid,
        &events,
    )
    .expect("a peer");
    let text = |sel: &str| {
        page.0
            .query_selector(sel)
            .ok()
            .flatten()
            .and_then(|e| e.text_content())
            .unwrap_or_default()
    };
    let attr = |sel: &str, name: &str| {
        page.0
            .query_selector(sel)
            .ok()
            .flatten()
            .and_then(|e| e.get_attribute(name))
            .unwrap_or_default()
    };
    for lang in [Lang::ZhCn, Lang::En, Lang::ZhCn] {
        ui.set_lang(lang);
        ui.set_status(Text::ReadyToJoin);
        ui.set_media_on(client_wasm::core::MediaKind::Audio, false);
        peer.render(lang);
        let zh = lang == Lang::ZhCn;
        let html_lang = document()
            .document_element()
            .and_then(|h| h.get_attribute("lang"));
        assert_eq!(html_lang.as_deref(), Some(lang.tag()));
        assert_eq!(text("#join"), if zh { "加入房间" } else { "Join" });
        assert_eq!(
            attr("#room", "placeholder"),
            if zh {
                "例如 team-standup"
            } else {
                "e.g. team-standup"
            }
        );
        assert_eq!(text("#mic .text"), if zh { "取消静音" } else { "Unmute" });
        assert_eq!(text("#status"), Text::ReadyToJoin.render(lang));
        assert_eq!(
            text("#grid .tile .label"),
            if zh { "成员 p1" } else { "peer p1" }
        );
        assert_eq!(
            attr("#grid .tile", "data-text-paused"),
            Text::VideoPaused.render(lang)
        );
        let select: web_sys::HtmlSelectElement = page
            .0
            .query_selector("#lang")
            .ok()
            .flatten()
            .expect("the switch")
            .unchecked_into();
        assert_eq!(select.value(), lang.tag());
        assert_eq!(select.length(), 2, "one option per language, added once");
    }
    // Media that could not be opened: the pre-join screen says how to allow it.
    ui.show_media_help(MediaFailure::Denied);
    assert_eq!(
        text("#media-help"),
        Text::MediaHelp(MediaFailure::Denied).render(Lang::ZhCn)
    );
    let hidden = page.0.query_selector("#media-help[hidden]").ok().flatten();
    assert!(hidden.is_none(), "the help is shown");
    ui.set_lang(Lang::En);
    assert!(
        text("#media-help").contains("Allow"),
        "{}",
        text("#media-help")
    );
    // Every static label the page names is one the app has.
    let missing = page.0.query_selector("[data-i18n-missing]").ok().flatten();
    assert!(missing.is_none(), "{:?}", missing.map(|m| m.outer_html()));
}

#[wasm_bindgen_test]
fn description_payloads_round_trip() {
    let sdp = "v=0\r\no=- 4611 2 IN IP4 127.0.0.1\r\ns=-\r\na=msid-semantic: WMS \"x\"\r\n";
    for (kind, name) in [(SdpKind::Offer, "offer"), (SdpKind::Answer, "answer")] {
        let payload = peer::description_payload(kind, sdp);
        let value: serde_json::Value = payload.parse().expect("JSON");
        assert_eq!(value, serde_json::json!({ "type": name, "sdp": sdp }));
        assert_eq!(peer::description_sdp(&payload).as_deref(), Some(sdp));
    }
    // A bare SDP string, as some clients send it.
    let bare = Payload::from_value(sdp).expect("a JSON string");
    assert_eq!(peer::description_sdp(&bare).as_deref(), Some(sdp));
    for not_sdp in ["42", "null", "[]", r#"{"type":"offer"}"#, r#"{"sdp":7}"#] {
        let payload = Payload::from_json(not_sdp).expect("JSON");
        assert_eq!(peer::description_sdp(&payload), None, "{not_sdp}");
    }
}

#[wasm_bindgen_test]
fn ice_servers_come_from_a_comma_separated_list() {
    let servers: js_sys::Array =
        web::ice_servers(" stun:a.example:3478, ,turn:b.example ").unchecked_into();
    let urls: Vec<Option<String>> = servers
        .iter()
        .map(|s| {
            js_sys::Reflect::get(&s, &JsValue::from_str("urls"))
                .ok()
                .and_then(|u| u.as_string())
        })
        .collect();
    assert_eq!(
        urls,
        [
            Some("stun:a.example:3478".to_owned()),
            Some("turn:b.example".to_owned())
        ]
    );
    assert_eq!(js_sys::Array::from(&web::ice_servers("")).length(), 0);
}

/// What the app does for a failed connection: an ICE restart renegotiates with new ICE
/// credentials, and the connection is connected again afterwards.
#[wasm_bindgen_test]
async fn an_ice_restart_renegotiates_and_reconnects() {
    let fixture = Fixture::new("restart-grid");
    let grid = &fixture.0;
    let no_ice = web::ice_servers("");
    let (a_events, a_rx) = web::channel();
    let (b_events, b_rx) = web::channel();
    // Receive-only on both sides: ICE still runs for the transceivers and the chat channel.
    let a = Peer::new(
        &client_id("b"),
        Who::Named("B".into()),
        true,
        None,
        &no_ice,
        grid,
        &a_events,
    )
    .expect("a");
    let b = Peer::new(
        &client_id("a"),
        Who::Named("A".into()),
        false,
        None,
        &no_ice,
        grid,
        &b_events,
    )
    .expect("b");
    let problems = Rc::new(RefCell::new(Vec::new()));
    let _a_relay = spawn_relay(a_rx, b.pc().clone(), problems.clone());
    let _b_relay = spawn_relay(b_rx, a.pc().clone(), problems.clone());
    let negotiate = || async {
        let offer = peer::make_local_description(a.pc(), SdpKind::Offer)
            .await
            .expect("offer");
        peer::set_remote_description(b.pc(), SdpKind::Offer, &offer)
            .await
            .expect("offer set");
        let answer = peer::make_local_description(b.pc(), SdpKind::Answer)
            .await
            .expect("answer");
        peer::set_remote_description(a.pc(), SdpKind::Answer, &answer)
            .await
            .expect("answer set");
        offer
    };
    let connected = || {
        [a.pc(), b.pc()]
            .iter()
            .all(|pc| pc.connection_state() == RtcPeerConnectionState::Connected)
    };
    let ufrag = |sdp: &str| {
        sdp.lines()
            .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
            .map(str::to_owned)
    };

    let first = negotiate().await;
    poll_until("connected", MEDIA_DEADLINE_MS, || {
        connected() || !problems.borrow().is_empty()
    })
    .await
    .expect("connected");
    a.restart_ice().expect("restartIce");
    let second = negotiate().await;
    assert_ne!(
        ufrag(&second),
        ufrag(&first),
        "the restart offer has new ICE credentials"
    );
    poll_until("connected again", MEDIA_DEADLINE_MS, || {
        connected() || !problems.borrow().is_empty()
    })
    .await
    .expect("connected after the restart");
    assert_eq!(*problems.borrow(), Vec::<String>::new());
}
