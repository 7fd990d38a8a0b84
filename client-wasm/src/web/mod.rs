//! The web layer: executes the core's commands in the browser and feeds the outcomes back.
//!
//! Every callback (controls, sockets, peer connections, promises) sends an [`AppEvent`] into one
//! channel, read by one `spawn_local` loop that owns all state ([`App`]): no shared mutable
//! state, no re-entrancy. Layout: `dom.rs` (the page), `media.rs` (getUserMedia), `peer.rs`
//! (RTCPeerConnection and tile), `signal.rs` (the relay socket), `listener.rs` (RAII event
//! listeners), `error.rs` (JS exceptions as Rust errors).

pub mod devices;
pub mod dom;
pub mod error;
pub mod level;
pub mod listener;
pub mod media;
pub mod peer;
pub mod record;
pub mod signal;
mod tile_actions;

use crate::core::{Command, Core, Event, MediaKind, SdpKind};
use crate::i18n::{Device, Lang, ShareFailure, Text};
use dom::Ui;
use error::{WebError, js};
use futures_channel::mpsc;
use futures_util::StreamExt;
use litemap::LiteMap;
use peer::Peer;
use protocol::{ClientId, RoomId, UserId};
use signal::SignalTx;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{MediaStream, MediaStreamTrack};

/// How often connection statistics are read, ms.
const STATS_EVERY_MS: i32 = 1000;

/// Default ICE servers when the page does not configure any.
const DEFAULT_ICE: &str = "stun:stun.l.google.com:19302";

/// Everything that happens to the app.
pub enum AppEvent {
    /// An event for the core.
    Core(Event),
    /// An event from signaling socket number `.0`.
    Signal(u32, Event),
    /// getUserMedia settled.
    Media(Result<MediaStream, WebError>),
    /// The Join button (or Enter in the room field).
    JoinClicked,
    /// The Leave (hang up) button: asks first.
    LeaveClicked,
    /// Leave, confirmed.
    LeaveConfirmed,
    /// The copy-link button.
    CopyLink,
    /// A microphone or camera button.
    Toggle(MediaKind),
    /// The chat form was submitted.
    ChatSubmit,
    /// getDisplayMedia settled.
    Screen(Result<MediaStream, WebError>),
    /// The recorder handed over a piece: the bytes recorded so far.
    RecordingProgress(f64),
    /// The recorder handed over its last piece.
    RecordingStopped,
    /// The devices changed (or media was just granted): list them again.
    DevicesChanged,
    /// The device lists.
    Devices(devices::Devices),
    /// The user picked a device.
    DeviceChosen(MediaKind, String),
    /// The user picked a speaker.
    SpeakerChosen(String),
    /// A picked device's track is ready.
    DeviceTrack(MediaKind, MediaStreamTrack),
    /// Time to read every peer connection's statistics.
    StatsTick,
    /// A peer connection's statistics: its receiving and its sending side.
    Stats(
        ClientId,
        crate::stats::Sample,
        crate::core::budget::SendSample,
    ),
    /// Something failed; show it.
    Error(WebError),
    /// The user picked a language.
    LangChosen(Lang),
}

/// The sending side of the app's event channel.
#[derive(Clone)]
pub struct Events(mpsc::UnboundedSender<AppEvent>);

impl Events {
    /// Queues an event (dropped silently once the page's loop has ended).
    pub fn send(&self, event: AppEvent) {
        let _ = self.0.unbounded_send(event);
    }
}

/// A new event channel: the [`Events`] handle callbacks send into, and the receiver a loop
/// reads (the page's loop, or a browser test standing in for it).
pub fn channel() -> (Events, mpsc::UnboundedReceiver<AppEvent>) {
    let (tx, rx) = mpsc::unbounded();
    (Events(tx), rx)
}

/// Settings read from the page's URL and `<meta>` tags.
pub struct PageConfig {
    /// Room to prefill (`?room=`).
    pub room: Option<String>,
    /// Signaling URL (`?signal=`, default `ws(s)://<host>/ws`).
    pub signal_url: String,
    /// ICE servers as the JS array RTCConfiguration takes (`?ice=url,url`, or
    /// `<meta name="ice-servers" content="url,url">`; empty for none).
    pub ice_servers: JsValue,
    /// User name sent with `register` (`?name=`).
    pub name: Option<String>,
    /// Whether to ask for camera and microphone (`?media=none` joins receive-only).
    pub media: bool,
    /// Whether `?ice=` chose the ICE servers, over the relay's.
    pub ice_from_page: bool,
    /// Room password to prefill (`?password=`).
    pub password: Option<String>,
    /// Only relayed (TURN) candidates (`?relay=only`).
    pub relay_only: bool,
    /// Whether the page's own ICE servers include a TURN server.
    pub page_turn: bool,
    /// The most this page sends over all its links, kbit/s (`?maxkbps=`, or
    /// `<meta name="max-send-kbps" content="N">`).
    pub max_send_kbps: Option<u32>,
    /// Whether the send budget shapes what each link sends (`?budget=off`: the browser's own
    /// rate control alone, for comparisons).
    pub budget: bool,
    /// The page's language (`?lang=`, else the browser's languages).
    pub lang: Lang,
}

impl PageConfig {
    /// Reads the configuration of the current page.
    pub fn from_page() -> Result<PageConfig, WebError> {
        let window = web_sys::window().ok_or_else(|| WebError::new("window", "none"))?;
        let location = window.location();
        let params =
            web_sys::UrlSearchParams::new_with_str(&location.search().map_err(js("location"))?)
                .map_err(js("URLSearchParams"))?;
        let non_empty = |key: &str| params.get(key).filter(|v| !v.trim().is_empty());
        let signal_url = match non_empty("signal") {
            Some(url) => url,
            None => {
                let scheme = if location.protocol().map_err(js("location"))? == "https:" {
                    "wss"
                } else {
                    "ws"
                };
                format!("{scheme}://{}/ws", location.host().map_err(js("location"))?)
            }
        };
        let meta_ice = window
            .document()
            .and_then(|d| d.query_selector("meta[name=ice-servers]").ok().flatten())
            .and_then(|m| m.get_attribute("content"));
        let meta_ceiling = window
            .document()
            .and_then(|d| d.query_selector("meta[name=max-send-kbps]").ok().flatten())
            .and_then(|m| m.get_attribute("content"));
        let max_send_kbps = non_empty("maxkbps")
            .or(meta_ceiling)
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|k| *k > 0);
        // Only an explicit `?ice=` beats the ICE servers the relay hands out in `welcome`.
        let ice_from_page = params.get("ice").is_some();
        let ice = params
            .get("ice")
            .or(meta_ice)
            .unwrap_or_else(|| DEFAULT_ICE.to_owned());
        // An access token for a relay that requires one goes on the socket's URL.
        let signal_url = match non_empty("token") {
            Some(token) => {
                let sep = if signal_url.contains('?') { '&' } else { '?' };
                let token = String::from(js_sys::encode_uri_component(&token));
                format!("{signal_url}{sep}token={token}")
            }
            None => signal_url,
        };
        Ok(PageConfig {
            room: non_empty("room"),
            signal_url,
            ice_servers: ice_servers(&ice),
            name: non_empty("name"),
            media: params.get("media").as_deref() != Some("none"),
            ice_from_page,
            password: non_empty("password"),
            relay_only: params.get("relay").as_deref() == Some("only"),
            page_turn: ice.split(',').any(protocol::is_turn_url),
            max_send_kbps,
            budget: params.get("budget").as_deref() != Some("off"),
            lang: page_lang(),
        })
    }
}

/// `[{urls: "..."}, ...]` from a comma-separated list of URLs.
pub fn ice_servers(list: &str) -> JsValue {
    let servers = js_sys::Array::new();
    for url in list.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        let server = web_sys::RtcIceServer::new();
        server.set_urls(&JsValue::from_str(url));
        servers.push(&server);
    }
    servers.into()
}

/// Sends the shared screen's video on `peer` instead of the camera.
fn send_screen(peer: &Peer, screen: &MediaStream) {
    if let Some(track) = media::tracks(screen)
        .into_iter()
        .find(|t| t.kind() == "video")
    {
        peer.send_track(&track, screen);
    }
}

/// The page's language: `?lang=` when it names one the page speaks, else the first of the
/// browser's languages that is one, else English.
fn page_lang() -> Lang {
    let Some(window) = web_sys::window() else {
        return Lang::default();
    };
    let asked = window
        .location()
        .search()
        .ok()
        .and_then(|q| web_sys::UrlSearchParams::new_with_str(&q).ok())
        .and_then(|p| p.get("lang"));
    let preferred: Vec<String> = window
        .navigator()
        .languages()
        .iter()
        .filter_map(|l| l.as_string())
        .collect();
    Lang::pick(asked.as_deref(), preferred.iter().map(String::as_str))
}

/// Where the display name is remembered between visits.
const NAME_KEY: &str = "rust-video-call.name";

fn stored_name() -> Option<String> {
    let storage = web_sys::window()?.local_storage().ok()??;
    storage.get_item(NAME_KEY).ok()?.filter(|n| !n.is_empty())
}

fn store_name(name: &str) {
    // Private browsing may refuse storage: the name is then not remembered, nothing more.
    if let Some(Ok(Some(storage))) = web_sys::window().map(|w| w.local_storage()) {
        let _ = storage.set_item(NAME_KEY, name);
    }
}

/// The relay's ICE servers as the JS array RTCConfiguration takes.
fn relay_ice_servers(servers: &[protocol::IceServer]) -> JsValue {
    let list = js_sys::Array::new();
    for s in servers {
        let server = web_sys::RtcIceServer::new();
        let urls: js_sys::Array = s.urls.iter().map(|u| JsValue::from_str(u)).collect();
        server.set_urls(&urls);
        if let Some(username) = &s.username {
            server.set_username(username);
        }
        if let Some(credential) = &s.credential {
            server.set_credential(credential);
        }
        list.push(&server);
    }
    list.into()
}

/// Entry point: runs the app in the page.
#[wasm_bindgen(start)]
pub fn start() {
    wasm_bindgen_futures::spawn_local(async {
        if let Err(e) = run().await {
            show_fatal(&e);
        }
    });
}

/// Shows an error that stops the app in the status line (or the console without one).
fn show_fatal(e: &WebError) {
    let text = Text::AppFailed(e.to_string()).render(page_lang());
    let shown = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("status"))
        .map(|el| el.set_text_content(Some(&text)));
    if shown.is_none() {
        web_sys::console::error_1(&JsValue::from_str(&text));
    }
}

async fn run() -> Result<(), WebError> {
    let window = web_sys::window().ok_or_else(|| WebError::new("window", "none"))?;
    let document = window
        .document()
        .ok_or_else(|| WebError::new("document", "none"))?;
    let config = PageConfig::from_page()?;
    let (events, mut rx) = channel();
    let ui = Ui::new(&document, &events)?;
    if let Some(room) = &config.room {
        ui.set_room(room);
    }
    if let Some(password) = &config.password {
        ui.set_password(password);
    }
    // The name: from the URL, else the one remembered from the last call.
    if let Some(name) = config.name.clone().or_else(stored_name) {
        ui.set_name(&name);
    }
    ui.set_lang(config.lang);
    ui.set_media_on(MediaKind::Audio, true);
    ui.set_media_on(MediaKind::Video, true);
    ui.set_sharing(false);
    ui.set_recording(false);
    ui.set_in_call(false);
    ui.set_status(Text::ReadyToJoin);
    ui.clear_notice();

    // Ask for media at once, so the preview shows and Join does not wait for it.
    let media_events = events.clone();
    let want_media = config.media;
    wasm_bindgen_futures::spawn_local(async move {
        let media = if want_media {
            media::acquire().await
        } else {
            Err(WebError::new("getUserMedia", "not requested (media=none)"))
        };
        media_events.send(AppEvent::Media(media));
    });

    // Connection quality and the active speaker on every tile, every second.
    let stats_events = events.clone();
    let stats_timer = Closure::<dyn FnMut()>::new(move || stats_events.send(AppEvent::StatsTick));
    window
        .set_interval_with_callback_and_timeout_and_arguments_0(
            wasm_bindgen::JsCast::unchecked_ref(stats_timer.as_ref()),
            STATS_EVERY_MS,
        )
        .map_err(js("setInterval"))?;
    let device_change = window.navigator().media_devices().ok().map(|devices| {
        let events = events.clone();
        listener::Listener::new(devices.as_ref(), "devicechange", move |_| {
            events.send(AppEvent::DevicesChanged);
        })
    });
    let mut core = Core::new(None);
    core.set_ice_policy(crate::core::IcePolicy {
        relay_only: config.relay_only,
        from_page: config.ice_from_page,
        page_turn: config.page_turn,
    });
    core.set_send_ceiling(config.max_send_kbps);
    core.set_budget_enabled(config.budget);
    let mut app = App {
        _device_change: device_change,
        _stats_timer: stats_timer,
        core,
        ui,
        peers: LiteMap::new(),
        local: None,
        media_settled: false,
        join_waiting: None,
        screen: None,
        speaker: None,
        recording: None,
        meter: None,
        signal: None,
        generation: 0,
        reconnect: None,
        events,
        config,
    };
    app.ui.mark("data-ready", "true");
    while let Some(event) = rx.next().await {
        app.on_event(event);
    }
    Ok(())
}

/// All state of the running page; owned by the event loop.
struct App {
    core: Core,
    ui: Ui,
    peers: LiteMap<ClientId, Peer>,
    local: Option<MediaStream>,
    media_settled: bool,
    /// A Join clicked before media settled, performed once it has.
    join_waiting: Option<RoomId>,
    signal: Option<SignalTx>,
    generation: u32,
    /// The recording in progress.
    recording: Option<record::Recording>,
    /// The pre-join screen's microphone meter, while it shows.
    meter: Option<level::LevelMeter>,
    /// The listener for plugged and unplugged devices.
    _device_change: Option<listener::Listener>,
    /// The statistics timer's callback (page lifetime).
    _stats_timer: Closure<dyn FnMut()>,
    /// The speaker chosen (the browser's default until one is).
    speaker: Option<String>,
    /// The shared screen, while sharing, and the listener for the browser ending it.
    screen: Option<(MediaStream, listener::Listener)>,
    /// The pending reconnect timer's callback (kept alive until it fires or is replaced).
    reconnect: Option<Closure<dyn FnMut()>>,
    events: Events,
    config: PageConfig,
}

impl App {
    fn on_event(&mut self, event: AppEvent) {
        match event {
            AppEvent::Core(event) => self.drive(event),
            AppEvent::Signal(generation, event) => {
                if generation == self.generation {
                    if event == Event::SignalClosed {
                        self.signal = None;
                    }
                    self.drive(event);
                }
            }
            AppEvent::Media(result) => self.on_media(result),
            AppEvent::JoinClicked => self.on_join_clicked(),
            AppEvent::LeaveClicked => self.ui.confirm_leave(),
            AppEvent::LeaveConfirmed => {
                self.join_waiting = None;
                self.ui.set_in_call(false);
                self.start_meter();
                self.drive(Event::Leave);
            }
            AppEvent::CopyLink => self.copy_link(),
            AppEvent::Toggle(kind) => self.drive(Event::Toggle(kind)),
            AppEvent::Screen(Ok(stream)) => self.on_screen(stream),
            AppEvent::Screen(Err(e)) => {
                self.ui.set_notice(share_failure(&e));
                self.drive(Event::ShareEnded);
            }
            AppEvent::DevicesChanged => {
                let events = self.events.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    match devices::list().await {
                        Ok(found) => events.send(AppEvent::Devices(found)),
                        Err(e) => events.send(AppEvent::Error(e)),
                    }
                });
            }
            AppEvent::Devices(found) => self.on_devices(found),
            AppEvent::SpeakerChosen(id) => {
                for peer in self.peers.values() {
                    peer.play_on(&id, &self.events);
                }
                self.speaker = Some(id);
            }
            AppEvent::DeviceChosen(kind, id) => {
                let events = self.events.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    match devices::open(kind, &id).await {
                        Ok(track) => events.send(AppEvent::DeviceTrack(kind, track)),
                        Err(e) => events.send(AppEvent::Error(e)),
                    }
                });
            }
            AppEvent::DeviceTrack(kind, track) => self.on_device_track(kind, track),
            AppEvent::RecordingProgress(bytes) => {
                if self
                    .recording
                    .as_ref()
                    .is_some_and(record::Recording::is_recording)
                {
                    self.ui.set_recorded(bytes);
                }
            }
            AppEvent::RecordingStopped => {
                // Stopped by the user or on its own: the core leaves recording either way.
                self.drive(Event::RecordingEnded);
                if let Some(recording) = self.recording.take() {
                    match recording.blob() {
                        // Stopped before the recorder encoded a frame: no empty file to offer.
                        Ok(blob) if blob.size() == 0.0 => self.ui.set_notice(Text::NothingRecorded),
                        Ok(blob) => self.ui.offer_recording(&blob),
                        Err(e) => self.show(&e),
                    }
                }
            }
            AppEvent::StatsTick => {
                for (id, peer) in self.peers.iter().filter(|(_, p)| !p.failed()) {
                    let (id, pc, events) = (id.clone(), peer.pc().clone(), self.events.clone());
                    wasm_bindgen_futures::spawn_local(async move {
                        // A connection closing meanwhile has no statistics: skip it this time.
                        if let Ok((sample, send)) = peer::sample(&pc).await {
                            events.send(AppEvent::Stats(id, sample, send));
                        }
                    });
                }
            }
            AppEvent::Stats(id, sample, send) => self.on_stats(id, sample, send),
            AppEvent::ChatSubmit => {
                if let Some(text) = self.ui.take_chat_input() {
                    self.drive(Event::ChatSend {
                        text,
                        time: js_sys::Date::now(),
                    });
                }
            }
            AppEvent::Error(e) => self.show(&e),
            AppEvent::LangChosen(lang) => {
                self.ui.set_lang(lang);
                for (_, peer) in self.peers.iter_mut() {
                    peer.render(lang);
                }
                if let Err(e) = dom::set_url_param("lang", lang.tag()) {
                    self.show(&e);
                }
            }
        }
    }

    /// getUserMedia settled: the preview, the meter and the pickers, or why there is no media.
    fn on_media(&mut self, result: Result<MediaStream, WebError>) {
        self.media_settled = true;
        match result {
            Ok(stream) => {
                self.ui.show_local(&stream);
                let kinds: Vec<String> = media::tracks(&stream).iter().map(|t| t.kind()).collect();
                self.drive(Event::LocalMedia {
                    audio: kinds.iter().any(|k| k == "audio"),
                    video: kinds.iter().any(|k| k == "video"),
                });
                self.local = Some(stream);
                self.start_meter();
                self.ui.mark("data-media", "ok");
                // Labels are only listed once permission is granted.
                self.events.send(AppEvent::DevicesChanged);
            }
            Err(e) => {
                self.drive(Event::LocalMedia {
                    audio: false,
                    video: false,
                });
                let explained = media::explain(&e);
                if let Text::MediaFailed(why, _) = &explained {
                    self.ui.show_media_help(*why);
                }
                self.ui.set_notice(explained);
                self.ui.disable_media_controls();
                self.ui.mark("data-media", "none");
            }
        }
        if let Some(room) = self.join_waiting.take() {
            self.drive(Event::Join(room));
        }
    }

    /// The Join button: the name is kept, the room checked, and the call joined (once media settled).
    fn on_join_clicked(&mut self) {
        let name = self.ui.name();
        if let Some(name) = &name {
            store_name(name);
        }
        let name = name.and_then(|n| UserId::new(n).ok());
        for command in self.core.set_user_name(name) {
            if let Err(e) = self.execute(command) {
                self.show(&e);
            }
        }
        let room = self.ui.room();
        self.core.set_password(self.ui.password());
        match RoomId::new(room.as_str()) {
            Ok(room_id) => {
                self.ui.stamp("data-join-at");
                if let Err(e) = dom::set_url_room(&room) {
                    self.show(&e);
                }
                self.ui.set_in_call(true);
                self.meter = None;
                if self.media_settled {
                    self.drive(Event::Join(room_id));
                } else {
                    self.ui.set_status(Text::WaitingForMedia);
                    self.join_waiting = Some(room_id);
                }
            }
            Err(e) => self.ui.set_notice(Text::BadRoom(e.to_string())),
        }
    }

    /// A screen to share: sent on every connection instead of the camera.
    fn on_screen(&mut self, stream: MediaStream) {
        let Some(track) = media::tracks(&stream)
            .into_iter()
            .find(|t| t.kind() == "video")
        else {
            return self.drive(Event::ShareEnded);
        };
        // Text and lines stay sharp: the encoder favours detail over motion.
        let _ = js_sys::Reflect::set(
            track.as_ref(),
            &JsValue::from_str("contentHint"),
            &JsValue::from_str("detail"),
        );
        // The browser's own "stop sharing" control ends the track.
        let events = self.events.clone();
        let ended = listener::Listener::new(track.as_ref(), "ended", move |_| {
            events.send(AppEvent::Core(Event::ShareEnded));
        });
        for peer in self.peers.values() {
            peer.send_track(&track, &stream);
        }
        self.ui.show_local(&stream);
        self.ui.set_sharing(true);
        self.screen = Some((stream, ended));
    }

    /// The device lists: shown in the pickers, the devices in use selected.
    fn on_devices(&mut self, found: devices::Devices) {
        let current = |kind: MediaKind| {
            let local = self.local.as_ref()?;
            let track = media::tracks(local)
                .into_iter()
                .find(|t| t.kind() == devices::kind_name(kind))?;
            devices::device_of(&track)
        };
        let (camera, mic) = (current(MediaKind::Video), current(MediaKind::Audio));
        self.ui
            .show_devices(Device::Camera, &found.cameras, camera.as_deref());
        self.ui
            .show_devices(Device::Microphone, &found.mics, mic.as_deref());
        // A speaker unplugged is no longer chosen: the browser's default plays.
        let plugged = |id: &String| found.speakers.iter().any(|d| d.id == *id);
        self.speaker = self.speaker.take().filter(plugged);
        let speaker = self.speaker.as_deref();
        self.ui
            .show_devices(Device::Speaker, &found.speakers, speaker);
    }

    /// A picked device's track: it replaces the old one in the preview and on every connection.
    fn on_device_track(&mut self, kind: MediaKind, track: MediaStreamTrack) {
        let Some(local) = &self.local else {
            return track.stop();
        };
        // The new device keeps the mute or camera-off state.
        track.set_enabled(self.core.media_on(kind));
        for old in media::tracks(local)
            .into_iter()
            .filter(|t| t.kind() == track.kind())
        {
            local.remove_track(&old);
            old.stop();
        }
        local.add_track(&track);
        let sharing_screen = kind == MediaKind::Video && self.screen.is_some();
        if !sharing_screen {
            for peer in self.peers.values() {
                peer.send_track(&track, local);
            }
        }
        self.ui.show_local(local);
        if kind == MediaKind::Audio && self.meter.is_some() {
            self.start_meter();
        }
    }

    /// Shows `focused`'s tile large and the others small, or every tile alike.
    fn show_focus(&self, focused: Option<&ClientId>) {
        for (id, peer) in &self.peers {
            peer.show_focused(Some(id) == focused);
        }
        let any = focused.is_some_and(|id| self.peers.contains_key(id));
        let _ = self.ui.grid.toggle_attribute_with_force("data-focus", any);
    }

    /// A connection's statistics: shown on its tile, and given to the core.
    fn on_stats(
        &mut self,
        id: ClientId,
        sample: crate::stats::Sample,
        send: crate::core::budget::SendSample,
    ) {
        let Some(peer) = self.peers.get_mut(&id).filter(|p| !p.failed()) else {
            return;
        };
        let speaking = peer.show_sample(sample);
        // Whether it is focused, the core knows and adds.
        let view = crate::core::budget::View {
            height: peer.shown_height(),
            speaking,
            ..Default::default()
        };
        self.drive(Event::Viewed(id.clone(), view));
        self.drive(Event::SendStats(id, send));
    }

    /// Shows the local microphone's level on the pre-join screen (again after a new
    /// microphone or a call), if there is local media.
    fn start_meter(&mut self) {
        self.meter = None;
        let Some(local) = &self.local else { return };
        match level::LevelMeter::start(local, self.ui.mic_level()) {
            Ok(meter) => self.meter = Some(meter),
            Err(e) => self.show(&e),
        }
    }

    fn show(&self, e: &WebError) {
        self.ui.set_notice(Text::Error(e.to_string()));
    }

    /// Runs one core event and executes the commands it returns.
    fn drive(&mut self, event: Event) {
        for command in self.core.handle(event) {
            if let Err(e) = self.execute(command) {
                self.show(&e);
            }
        }
    }

    fn execute(&mut self, command: Command) -> Result<(), WebError> {
        match command {
            Command::Connect(resume) => self.connect(resume)?,
            Command::ScheduleReconnect(ms) => self.schedule_reconnect(ms)?,
            Command::Send(msg) => {
                if let Some(signal) = &self.signal {
                    signal.send(&msg);
                }
            }
            Command::CreatePeer { id, label, offerer } => self.create_peer(id, label, offerer)?,
            Command::ClosePeer(id) => {
                self.peers.remove(&id);
                self.ui.update_grid();
            }
            Command::CreateOffer(id) => self.local_description(id, SdpKind::Offer),
            Command::CreateAnswer(id) => self.local_description(id, SdpKind::Answer),
            Command::SetRemoteDescription(id, kind, payload) => {
                self.set_remote_description(id, kind, payload)?
            }
            Command::AddCandidate(id, payload) => self.add_candidate(id, payload)?,
            Command::SetTrackEnabled(kind, on) => self.set_track_enabled(kind, on)?,
            Command::StartShare => self.start_share()?,
            Command::StopShare => self.stop_share()?,
            Command::StartRecording => self.start_recording()?,
            Command::StopRecording => {
                let running = self.recording.as_ref().filter(|r| r.is_recording());
                if let Some(recording) = running {
                    recording.stop()?;
                }
                self.ui.set_recording(false);
            }
            Command::RestartIce(id) => {
                if let Some(peer) = self.peers.get(&id) {
                    peer.restart_ice()?;
                }
            }
            Command::WatchPeer(id, attempt, ms) => {
                if let Some(peer) = self.peers.get_mut(&id) {
                    peer.watch(&id, attempt, ms, &self.events);
                }
            }
            Command::PeerFailed(id, why) => {
                if let Some(peer) = self.peers.get_mut(&id) {
                    peer.fail(why);
                }
            }
            Command::PeerReconnecting(id, on) => {
                if let Some(peer) = self.peers.get(&id) {
                    peer.set_reconnecting(on);
                }
            }
            Command::SendChannelData(id, text) => {
                if let Some(peer) = self.peers.get(&id) {
                    peer.send_chat(&text)?;
                }
            }
            Command::SetEncoding(id, encoding) => {
                if let Some(peer) = self.peers.get(&id) {
                    peer.apply_encoding(&encoding);
                }
            }
            Command::ShowSent(id, sent) => {
                if let Some(peer) = self.peers.get_mut(&id) {
                    peer.show_sent(&sent);
                }
            }
            Command::ShowPeerMedia(id, media) => {
                if let Some(peer) = self.peers.get(&id) {
                    peer.show_media(media);
                }
            }
            Command::ShowRemotePaused(id, paused) => {
                if let Some(peer) = self.peers.get(&id) {
                    peer.show_remote_paused(paused);
                }
            }
            Command::ShowDataSaver(on) => self.ui.set_data_saver(on),
            Command::ShowChat { line, from } => self.ui.show_chat(&line, from),
            Command::UseIceServers(servers) => {
                if !self.config.ice_from_page {
                    self.config.ice_servers = relay_ice_servers(&servers);
                }
            }
            Command::Toast(text) => self.ui.toast(text),
            Command::ShowPanels(panels) => self.ui.show_panels(panels),
            Command::ShowFocus(focused) => self.show_focus(focused.as_ref()),
            Command::ShowParticipants(people) => self.ui.show_participants(&people),
            Command::Status(text) => {
                self.ui.set_status(text);
                if let Some(me) = self.core.me() {
                    self.ui.mark("data-client-id", me.as_str());
                }
            }
        }
        Ok(())
    }

    /// Opens the signaling socket (resuming with the token when there is one).
    fn connect(&mut self, resume: Option<String>) -> Result<(), WebError> {
        self.generation += 1;
        let url = match resume {
            Some(token) => {
                let sep = if self.config.signal_url.contains('?') {
                    '&'
                } else {
                    '?'
                };
                format!("{}{sep}resume={token}", self.config.signal_url)
            }
            None => self.config.signal_url.clone(),
        };
        // Replacing the old socket (if any) closes it; its late events are ignored.
        match signal::open(&url, self.generation, &self.events) {
            Ok(tx) => self.signal = Some(tx),
            Err(e) => {
                self.show(&e);
                let generation = self.generation;
                self.events
                    .send(AppEvent::Signal(generation, Event::SignalClosed));
            }
        }
        Ok(())
    }

    /// Calls the core back after `ms` to reconnect.
    fn schedule_reconnect(&mut self, ms: u32) -> Result<(), WebError> {
        let events = self.events.clone();
        let callback = Closure::<dyn FnMut()>::new(move || {
            events.send(AppEvent::Core(Event::ReconnectDue));
        });
        let window = web_sys::window().ok_or_else(|| WebError::new("window", "none"))?;
        window
            .set_timeout_with_callback_and_timeout_and_arguments_0(
                wasm_bindgen::JsCast::unchecked_ref(callback.as_ref()),
                i32::try_from(ms).unwrap_or(i32::MAX),
            )
            .map_err(js("setTimeout"))?;
        self.reconnect = Some(callback);
        Ok(())
    }

    /// Creates a peer connection and its tile.
    fn create_peer(
        &mut self,
        id: ClientId,
        label: crate::i18n::Who,
        offerer: bool,
    ) -> Result<(), WebError> {
        let mut peer = Peer::new(
            &id,
            label,
            offerer,
            self.local.as_ref(),
            &self.config.ice_servers,
            &self.ui.grid,
            &self.events,
        )?;
        peer.render(self.ui.lang());
        if let Some(speaker) = &self.speaker {
            peer.play_on(speaker, &self.events);
        }
        if self.config.relay_only {
            peer.relay_only(&self.config.ice_servers)?;
        }
        if offerer {
            if let Some((screen, _)) = &self.screen {
                send_screen(&peer, screen);
            }
        }
        self.peers.insert(id, peer);
        self.ui.update_grid();
        Ok(())
    }

    /// Applies a remote description, reporting the outcome to the core.
    fn set_remote_description(
        &mut self,
        id: ClientId,
        kind: SdpKind,
        payload: protocol::Payload,
    ) -> Result<(), WebError> {
        let Some(peer) = self.peers.get_mut(&id) else {
            return Ok(());
        };
        let sdp = peer::description_sdp(&payload)
            .ok_or_else(|| WebError::new("setRemoteDescription", "no SDP in the message"))?;
        let pc = peer.pc().clone();
        let events = self.events.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let event = match peer::set_remote_description(&pc, kind, &sdp).await {
                Ok(()) => Event::RemoteDescriptionSet(id, kind),
                Err(e) => Event::NegotiationFailed(id, e.to_string()),
            };
            events.send(AppEvent::Core(event));
        });
        Ok(())
    }

    /// Adds a remote ICE candidate.
    fn add_candidate(&mut self, id: ClientId, payload: protocol::Payload) -> Result<(), WebError> {
        let Some(peer) = self.peers.get(&id) else {
            return Ok(());
        };
        let pc = peer.pc().clone();
        wasm_bindgen_futures::spawn_local(async move {
            // A candidate can fail to apply after an ignored glare offer or for a
            // transport that is gone; perfect negotiation expects and ignores that.
            if let Err(e) = peer::add_candidate(&pc, &payload).await {
                web_sys::console::debug_1(&JsValue::from_str(&e.to_string()));
            }
        });
        Ok(())
    }

    /// Turns the local tracks of a kind on or off.
    fn set_track_enabled(&mut self, kind: MediaKind, on: bool) -> Result<(), WebError> {
        if let Some(stream) = &self.local {
            for track in media::tracks(stream) {
                let matches = match kind {
                    MediaKind::Audio => track.kind() == "audio",
                    MediaKind::Video => track.kind() == "video",
                };
                if matches {
                    track.set_enabled(on);
                }
            }
        }
        self.ui.set_media_on(kind, on);
        Ok(())
    }

    /// Asks the browser for a screen to share.
    fn start_share(&mut self) -> Result<(), WebError> {
        // A browser without the API (or refusing at once) ends the same way as a
        // refusal later: the page says why and the core leaves sharing.
        let promise = match display_media() {
            Ok(promise) => promise,
            Err(e) => {
                self.events.send(AppEvent::Screen(Err(e)));
                return Ok(());
            }
        };
        let events = self.events.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let result = error::await_promise("getDisplayMedia", promise)
                .await
                .and_then(|s| {
                    wasm_bindgen::JsCast::dyn_into::<MediaStream>(s).map_err(js("getDisplayMedia"))
                });
            events.send(AppEvent::Screen(result));
        });
        Ok(())
    }

    /// Stops sharing and sends the camera again.
    fn stop_share(&mut self) -> Result<(), WebError> {
        if let Some((screen, _ended)) = self.screen.take() {
            for track in media::tracks(&screen) {
                track.stop();
            }
        }
        if let Some(local) = &self.local {
            if let Some(camera) = media::tracks(local)
                .into_iter()
                .find(|t| t.kind() == "video")
            {
                for peer in self.peers.values() {
                    peer.send_track(&camera, local);
                }
            }
            self.ui.show_local(local);
        }
        self.ui.set_sharing(false);
        Ok(())
    }

    /// Starts recording the call, or tells the core it could not.
    fn start_recording(&mut self) -> Result<(), WebError> {
        // A recording that cannot start is told back: the core leaves recording, and
        // the next click starts again.
        let Some(local) = &self.local else {
            self.ui.set_notice(Text::NothingToRecord);
            self.events.send(AppEvent::Core(Event::RecordingEnded));
            return Ok(());
        };
        let remote_audio: Vec<_> = self.peers.values().flat_map(|p| p.remote_audio()).collect();
        match record::Recording::start(local, &remote_audio, &self.events) {
            Ok(recording) => {
                self.recording = Some(recording);
                self.ui.set_recording(true);
            }
            Err(e) => {
                self.show(&e);
                self.events.send(AppEvent::Core(Event::RecordingEnded));
            }
        }
        Ok(())
    }

    /// Creates an offer or answer for `id` and reports it to the core.
    fn local_description(&mut self, id: ClientId, kind: SdpKind) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if kind == SdpKind::Answer {
            // The answerer's tracks go on the offered transceivers, now that the offer is set.
            if let Err(e) = peer.attach_tracks(self.local.as_ref()) {
                self.ui.set_notice(Text::Error(e.to_string()));
            }
            if let Some((screen, _)) = &self.screen {
                send_screen(peer, screen);
            }
        }
        let pc = peer.pc().clone();
        let events = self.events.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let event = match peer::make_local_description(&pc, kind).await {
                Ok(sdp) => Event::LocalDescription(id, kind, peer::description_payload(kind, &sdp)),
                Err(e) => Event::NegotiationFailed(id, e.to_string()),
            };
            events.send(AppEvent::Core(event));
        });
    }

    fn copy_link(&self) {
        let room = self.ui.room();
        let href = match dom::set_url_room(&room) {
            Ok(href) => href,
            Err(e) => return self.show(&e),
        };
        let Some(window) = web_sys::window() else {
            return;
        };
        let navigator = window.navigator();
        let copied = navigator.clipboard().write_text(&href);
        self.settle("clipboard.writeText", copied);
        if let Some(shared) = web_share(&navigator, &href) {
            self.settle("navigator.share", shared);
        }
        self.ui.set_notice(Text::LinkToShare(href));
    }

    /// Waits for `promise` in the background; a rejection is shown as an error (a share the
    /// user cancelled is not one).
    fn settle(&self, api: &'static str, promise: js_sys::Promise) {
        let events = self.events.clone();
        wasm_bindgen_futures::spawn_local(async move {
            match error::await_promise(api, promise).await {
                // Cancelled, or a share sheet already open: nothing went wrong.
                Err(e)
                    if !matches!(e.name.as_deref(), Some("AbortError" | "InvalidStateError")) =>
                {
                    events.send(AppEvent::Error(e))
                }
                _ => {}
            }
        });
    }
}

/// Offers `url` to the system's share sheet on a touch screen (a phone's way to pass a link
/// on), where the browser has the Web Share API; a desktop copies only.
fn web_share(navigator: &web_sys::Navigator, url: &str) -> Option<js_sys::Promise> {
    let window = web_sys::window()?;
    let touch = window.match_media("(hover: none)").ok()??.matches();
    if !touch {
        return None;
    }
    let share = js_sys::Reflect::get(navigator, &"share".into()).ok()?;
    let share = share.dyn_into::<js_sys::Function>().ok()?;
    let data = js_sys::Object::new();
    js_sys::Reflect::set(&data, &"url".into(), &url.into()).ok()?;
    let title = window.document()?.title();
    js_sys::Reflect::set(&data, &"title".into(), &title.into()).ok()?;
    share.call1(navigator, &data).ok()?.dyn_into().ok()
}

/// Asks the browser for a screen, window or tab to share.
fn display_media() -> Result<js_sys::Promise, WebError> {
    let window = web_sys::window().ok_or_else(|| WebError::new("window", "none"))?;
    let devices = window
        .navigator()
        .media_devices()
        .map_err(js("mediaDevices"))?;
    let has_api =
        js_sys::Reflect::has(&devices, &JsValue::from_str("getDisplayMedia")).unwrap_or(false);
    if !has_api {
        return Err(WebError {
            api: "getDisplayMedia",
            name: Some("NotSupportedError".into()),
            message: "not available in this browser".into(),
        });
    }
    devices.get_display_media().map_err(js("getDisplayMedia"))
}

/// What the page says when sharing did not start: the reason in words, then the browser's.
fn share_failure(e: &WebError) -> Text {
    let reason = match e.name.as_deref() {
        Some("NotAllowedError") => ShareFailure::NotAllowed,
        Some("NotFoundError") => ShareFailure::NoScreen,
        Some("NotSupportedError") | Some("TypeError") => ShareFailure::Unsupported,
        Some("NotReadableError") | Some("AbortError") => ShareFailure::CaptureFailed,
        _ => ShareFailure::Refused,
    };
    Text::ShareFailed(reason, e.to_string())
}
