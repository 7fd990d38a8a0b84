//! One remote peer in the browser: its RTCPeerConnection, its tile in the grid, and the event
//! listeners that feed the core. Dropping a [`Peer`] removes its listeners, closes the
//! connection and removes the tile, so teardown is one `remove` from the peers map.

use super::error::{WebError, await_promise, call_method, call_promise, js};
use super::listener::Listener;
use super::tile_actions::TileActions;
use super::{AppEvent, Events};
use crate::core::budget::{Encoding, EngineLimit, SendSample, Sent};
use crate::core::{Event, PeerLink, SdpKind, Unreachable};
use crate::i18n::{Lang, Text, Who};
use js_sys::Reflect;
use protocol::{ClientId, Payload};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{
    Document, Element, HtmlVideoElement, MediaStream, RtcConfiguration, RtcIceCandidateInit,
    RtcPeerConnection, RtcPeerConnectionIceEvent, RtcPeerConnectionState,
    RtcRtpTransceiverDirection, RtcRtpTransceiverInit, RtcSdpType, RtcSessionDescriptionInit,
    RtcTrackEvent,
};

/// A remote peer; see the module doc.
pub struct Peer {
    pc: RtcPeerConnection,
    /// The tile's connection-quality line, and the last statistics sample.
    stats_line: Element,
    last_sample: Option<crate::stats::Sample>,
    /// The chat channel, negotiated in the SDP (id 0 on both sides: no extra round trip).
    chat: web_sys::RtcDataChannel,
    tile: Element,
    tracks_attached: bool,
    /// The core's deadline for this connection to come up (cancelled when dropped).
    deadline: Option<gloo_timers::callback::Timeout>,
    /// Given up: closed, its tile saying why (no statistics any more).
    failed: Option<Unreachable>,
    /// The tile's name, its lines of what is received and what is sent, and what they say
    /// (rendered again in another language by [`Peer::render`]).
    name_line: Element,
    media_line: Element,
    label: Who,
    quality: Option<crate::stats::Quality>,
    received: Option<crate::stats::Received>,
    sent: Option<Sent>,
    lang: Lang,
    /// The tile's buttons (focus, full screen, picture in picture).
    actions: TileActions,
    _listeners: Vec<Listener>,
}

impl Peer {
    /// Creates the connection and the tile (appended to `grid`; its texts are shown by
    /// [`Peer::render`]). An offerer attaches the local tracks at once, which makes the
    /// browser ask for negotiation.
    pub fn new(
        id: &ClientId,
        label: Who,
        offerer: bool,
        local: Option<&MediaStream>,
        ice_servers: &JsValue,
        grid: &Element,
        events: &Events,
    ) -> Result<Peer, WebError> {
        let config = RtcConfiguration::new();
        config.set_ice_servers(ice_servers);
        let pc = RtcPeerConnection::new_with_configuration(&config)
            .map_err(js("new RTCPeerConnection"))?;
        let document = grid
            .owner_document()
            .ok_or_else(|| WebError::new("document", "none"))?;
        let (tile, video, name_line, stats_line, media_line) = make_tile(&document, id)?;

        let mut listeners = connection_listeners(&pc, id, events);
        listeners.extend(media_listeners(&pc, &video, &tile, events));
        let (chat, chat_listeners) = chat_channel(&pc, id, &tile, events);
        listeners.extend(chat_listeners);
        let actions = TileActions::new(&document, id, &tile, &video, events)?;
        grid.append_child(&tile).map_err(js("appendChild"))?;
        let mut peer = Peer {
            pc,
            stats_line,
            last_sample: None,
            chat,
            tile,
            tracks_attached: false,
            deadline: None,
            failed: None,
            name_line,
            media_line,
            label,
            quality: None,
            received: None,
            sent: None,
            lang: Lang::default(),
            actions,
            _listeners: listeners,
        };
        if offerer {
            peer.attach_tracks(local)?;
        }
        Ok(peer)
    }

    /// The connection, for the asynchronous negotiation steps.
    pub fn pc(&self) -> &RtcPeerConnection {
        &self.pc
    }

    /// Sends the local tracks on this connection (once). Without local media, asks to receive
    /// audio and video anyway, so a receive-only offer still carries both.
    pub fn attach_tracks(&mut self, local: Option<&MediaStream>) -> Result<(), WebError> {
        if std::mem::replace(&mut self.tracks_attached, true) {
            return Ok(());
        }
        match local {
            Some(stream) => {
                for track in super::media::tracks(stream) {
                    self.pc.add_track_0(&track, stream);
                }
            }
            // An answerer already has the offer's transceivers, which receive: adding more
            // would only trigger a needless renegotiation.
            None if self.pc.get_transceivers().length() > 0 => {}
            None => {
                let init = RtcRtpTransceiverInit::new();
                init.set_direction(RtcRtpTransceiverDirection::Recvonly);
                for kind in ["audio", "video"] {
                    self.pc.add_transceiver_with_str_and_init(kind, &init);
                }
            }
        }
        Ok(())
    }

    /// Sends `track` instead of what the connection sends now for its kind (no renegotiation
    /// when a sender of that kind exists; otherwise the track is added and the connection
    /// renegotiates).
    pub fn send_track(&self, track: &web_sys::MediaStreamTrack, stream: &MediaStream) {
        let kind = track.kind();
        let senders = self.pc.get_senders();
        let same_kind = senders
            .iter()
            .filter_map(|s| s.dyn_into::<web_sys::RtcRtpSender>().ok())
            .find(|s| s.track().is_some_and(|t| t.kind() == kind));
        match same_kind {
            Some(sender) => {
                let promise = sender.replace_track(Some(track));
                wasm_bindgen_futures::spawn_local(async move {
                    if let Err(e) = await_promise("replaceTrack", promise).await {
                        web_sys::console::warn_1(&JsValue::from_str(&e.to_string()));
                    }
                });
            }
            None => {
                self.pc.add_track_0(track, stream);
            }
        }
    }

    /// Uses only relayed (TURN) candidates: for networks where only a TURN server gets
    /// through, and to test TURN. Must come before the first negotiation.
    pub fn relay_only(&self, ice_servers: &JsValue) -> Result<(), WebError> {
        let config = RtcConfiguration::new();
        config.set_ice_servers(ice_servers);
        config.set_ice_transport_policy(web_sys::RtcIceTransportPolicy::Relay);
        self.pc
            .set_configuration_with_configuration(&config)
            .map_err(js("setConfiguration"))
    }

    /// The audio tracks received from this peer.
    pub fn remote_audio(&self) -> Vec<web_sys::MediaStreamTrack> {
        self.pc
            .get_receivers()
            .iter()
            .filter_map(|r| r.dyn_into::<web_sys::RtcRtpReceiver>().ok())
            .map(|r| r.track())
            .filter(|t| t.kind() == "audio")
            .collect()
    }

    /// Restarts ICE (the connection renegotiates with new credentials).
    pub fn restart_ice(&self) -> Result<(), WebError> {
        // `restartIce` is not in this web-sys version's bindings: called by name.
        call_method(self.pc.as_ref(), "restartIce", &[]).map(|_| ())
    }

    /// Calls back with [`Event::PeerDeadline`] after `ms`, replacing an earlier deadline.
    pub fn watch(&mut self, id: &ClientId, attempt: u32, ms: u32, events: &Events) {
        let (id, events) = (id.clone(), events.clone());
        self.deadline = Some(gloo_timers::callback::Timeout::new(ms, move || {
            events.send(AppEvent::Core(Event::PeerDeadline(id, attempt)));
        }));
    }

    /// Closes the connection but keeps the tile, which shows why (`data-failed` names it).
    pub fn fail(&mut self, why: Unreachable) {
        self.failed = Some(why);
        self.deadline = None;
        self.chat.close();
        self.pc.close();
        let _ = self.tile.remove_attribute("data-reconnecting");
        let _ = self.tile.set_attribute("data-quality", "failed");
        let _ = self.tile.set_attribute("data-failed", why.wire());
        self.show_lines();
    }

    /// Plays the peer's sound on the speaker `id`; a refusal is shown in the page.
    pub fn play_on(&self, id: &str, events: &Events) {
        let Ok(Some(video)) = self.tile.query_selector("video") else {
            return;
        };
        let sink = call_promise(video.as_ref(), "setSinkId", &[&JsValue::from_str(id)]);
        let events = events.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let set = async { await_promise("setSinkId", sink?).await };
            if let Err(e) = set.await {
                events.send(AppEvent::Error(e));
            }
        });
    }

    /// Whether the connection was given up.
    pub fn failed(&self) -> bool {
        self.failed.is_some()
    }

    /// Shows the tile's texts in `lang`: its name, the overlays' words (`data-text-*`, shown
    /// by the style sheet), and the quality and media lines.
    pub fn render(&mut self, lang: Lang) {
        self.lang = lang;
        let name = Text::Peer(self.label.clone()).render(lang);
        self.name_line.set_text_content(Some(&name));
        let _ = self.tile.set_attribute("aria-label", &name);
        for (attr, text) in [
            ("data-text-paused", Text::VideoPaused),
            ("data-text-reconnecting", Text::Reconnecting),
            ("data-text-cam-off", Text::CamOff),
        ] {
            let _ = self.tile.set_attribute(attr, &text.render(lang));
        }
        for (selector, text) in [(".mic-off", Text::MicOff), (".cam-off", Text::CamOff)] {
            if let Ok(Some(badge)) = self.tile.query_selector(selector) {
                let words = text.render(lang);
                let _ = badge.set_attribute("aria-label", &words);
                let _ = badge.set_attribute("title", &words);
            }
        }
        let _ = self
            .stats_line
            .set_attribute("title", &Text::ConnectionQuality.render(lang));
        let _ = self
            .media_line
            .set_attribute("title", &Text::MediaLines.render(lang));
        self.actions.render(lang);
        self.show_lines();
    }

    /// Shows the quality line and the media lines (on every sample, in the page's language).
    fn show_lines(&self) {
        let lang = self.lang;
        let stats = match (self.failed, self.quality) {
            (Some(why), _) => Text::Unreachable(why).render(lang),
            (None, Some(q)) => Text::Quality(q).render(lang),
            (None, None) => String::new(),
        };
        if self.failed.is_some() {
            let _ = self.tile.set_attribute("data-text-failed", &stats);
        }
        self.stats_line.set_text_content(Some(&stats));
        let lines: Vec<String> = [
            self.received.map(|r| Text::Received(r).render(lang)),
            self.sent.map(|s| Text::Sent(s).render(lang)),
        ]
        .into_iter()
        .flatten()
        .collect();
        self.media_line.set_text_content(Some(&lines.join("\n")));
    }

    /// Shows on the tile whether the connection is reconnecting.
    pub fn set_reconnecting(&self, on: bool) {
        let _ = self
            .tile
            .toggle_attribute_with_force("data-reconnecting", on);
    }

    /// Shows the quality since the previous sample on the tile (`data-quality` too); returns
    /// whether the peer spoke meanwhile.
    pub fn show_sample(&mut self, sample: crate::stats::Sample) -> bool {
        let q = crate::stats::quality(self.last_sample.as_ref(), &sample);
        let speaking = crate::stats::speaking(self.last_sample.as_ref(), &sample);
        self.received = Some(crate::stats::received(self.last_sample.as_ref(), &sample));
        self.last_sample = Some(sample);
        self.quality = Some(q);
        self.show_lines();
        let height = sample
            .frame_height
            .map_or_else(String::new, |h| h.to_string());
        let _ = self.tile.set_attribute("data-recv-height", &height);
        let _ = self.tile.set_attribute("data-quality", q.grade.as_str());
        // What tests and curious users read: the path, the frame rate, the freezes so far.
        let path = sample.path.map_or("", crate::stats::Path::as_str);
        let _ = self.tile.set_attribute("data-path", path);
        let fps = sample.fps.map_or_else(String::new, |f| format!("{f:.0}"));
        let _ = self.tile.set_attribute("data-fps", &fps);
        // Not counted by every engine: "unknown" then, never a zero that was not measured.
        let freezes = sample
            .freezes
            .map_or_else(|| "unknown".into(), |n| n.to_string());
        let _ = self.tile.set_attribute("data-freezes", &freezes);
        let freeze_ms = sample
            .freeze_seconds
            .map_or_else(|| "unknown".into(), |s| format!("{:.0}", s * 1000.0));
        let _ = self.tile.set_attribute("data-freeze-ms", &freeze_ms);
        let audio_packets = sample.audio_packets.to_string();
        let _ = self
            .tile
            .set_attribute("data-audio-packets", &audio_packets);
        let audio_lost = sample.audio_lost.to_string();
        let _ = self.tile.set_attribute("data-audio-lost", &audio_lost);
        let energy = format!("{:.6}", sample.audio_energy);
        let _ = self.tile.set_attribute("data-audio-energy", &energy);
        let _ = self
            .tile
            .toggle_attribute_with_force("data-speaking", speaking);
        speaking
    }

    /// Shows what is sent to this peer (the tile's `data-send-*` too).
    pub fn show_sent(&mut self, sent: &Sent) {
        self.sent = Some(*sent);
        self.show_lines();
        let opt = |v: Option<String>| v.unwrap_or_default();
        let attrs = [
            ("data-send-height", opt(sent.height.map(|h| h.to_string()))),
            ("data-send-fps", opt(sent.fps.map(|f| format!("{f:.0}")))),
            ("data-send-kbps", opt(sent.kbps.map(|k| format!("{k:.0}")))),
            (
                "data-send-estimate",
                opt(sent.estimate_kbps.map(|k| format!("{k:.0}"))),
            ),
            (
                "data-send-allowed",
                opt(sent.allowed_kbps.map(|k| format!("{k:.0}"))),
            ),
            ("data-send-loss", opt(sent.loss.map(|l| format!("{l:.3}")))),
            (
                "data-send-limit",
                opt(sent.limit.map(|l| l.as_str().into())),
            ),
        ];
        for (name, value) in attrs {
            let _ = self.tile.set_attribute(name, &value);
        }
        let _ = self
            .tile
            .toggle_attribute_with_force("data-send-paused", sent.paused);
    }

    /// Shows whether the peer's microphone and camera are on (`data-mic`, `data-cam`: `on`
    /// or `off`; badges and a "camera off" picture by the style sheet).
    pub fn show_media(&self, media: crate::core::MediaState) {
        let word = |on: bool| if on { "on" } else { "off" };
        let _ = self.tile.set_attribute("data-mic", word(media.mic));
        let _ = self.tile.set_attribute("data-cam", word(media.cam));
    }

    /// Shows whether the peer paused its video to this page for lack of bandwidth.
    pub fn show_remote_paused(&self, paused: bool) {
        let _ = self
            .tile
            .toggle_attribute_with_force("data-video-paused", paused);
    }

    /// How tall this page shows the peer's video: the tile's height in device pixels.
    pub fn shown_height(&self) -> u32 {
        let dpr = web_sys::window().map_or(1.0, |w| w.device_pixel_ratio());
        (f64::from(self.tile.client_height().max(0)) * dpr).round() as u32
    }

    /// Shows the tile large (`data-focused`, and its focus button pressed) or not.
    pub fn show_focused(&self, on: bool) {
        let _ = self.tile.toggle_attribute_with_force("data-focused", on);
        self.actions.show_focused(on);
    }

    /// Encodes the video sent on this connection as `encoding` says, and sends its audio
    /// at high priority and the bitrate it says (`RTCRtpSender.setParameters`, no
    /// renegotiation).
    pub fn apply_encoding(&self, encoding: &Encoding) {
        for sender in self.pc.get_senders().iter() {
            let Ok(sender) = sender.dyn_into::<web_sys::RtcRtpSender>() else {
                continue;
            };
            let kind = sender.track().map(|t| t.kind());
            let result = match kind.as_deref() {
                Some("video") => encode_video(&sender, encoding),
                Some("audio") => encode_audio(&sender, encoding.audio_kbps),
                _ => continue,
            };
            if let Err(e) = result {
                web_sys::console::warn_1(&JsValue::from_str(&e.to_string()));
            }
        }
    }

    /// Sends text on the chat channel.
    pub fn send_chat(&self, text: &str) -> Result<(), WebError> {
        self.chat
            .send_with_str(text)
            .map_err(js("RTCDataChannel.send"))
    }

    /// Whether the local tracks are attached.
    pub fn tracks_attached(&self) -> bool {
        self.tracks_attached
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Listeners go with `_listeners`; close the connection and take the tile away.
        self.chat.close();
        self.pc.close();
        self.tile.remove();
    }
}

/// A sender's parameters, changed by `edit` in its first encoding, then set.
fn set_parameters(
    sender: &web_sys::RtcRtpSender,
    edit: impl FnOnce(&JsValue, &JsValue) -> Result<(), JsValue>,
) -> Result<(), WebError> {
    let params = call_method(sender.as_ref(), "getParameters", &[])?;
    let encodings =
        Reflect::get(&params, &JsValue::from_str("encodings")).map_err(js("getParameters"))?;
    let first = Reflect::get(&encodings, &JsValue::from_f64(0.0)).map_err(js("getParameters"))?;
    if first.is_undefined() {
        // Not negotiated yet: the next evaluation applies it.
        return Ok(());
    }
    edit(&params, &first).map_err(js("setParameters"))?;
    let promise = call_promise(sender.as_ref(), "setParameters", &[&params])?;
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(e) = await_promise("setParameters", promise).await {
            web_sys::console::warn_1(&JsValue::from_str(&e.to_string()));
        }
    });
    Ok(())
}

fn set(target: &JsValue, key: &str, value: &JsValue) -> Result<(), JsValue> {
    Reflect::set(target, &JsValue::from_str(key), value).map(|_| ())
}

/// The video sender's encoding: on or off, bitrate, scale, frame rate, priority, and what
/// gives way under pressure (where the engine lets it be chosen).
fn encode_video(sender: &web_sys::RtcRtpSender, e: &Encoding) -> Result<(), WebError> {
    let e = *e;
    set_parameters(sender, move |params, first| {
        set(first, "active", &JsValue::from_bool(e.active))?;
        set(
            first,
            "maxBitrate",
            &JsValue::from_f64(f64::from(e.max_kbps) * 1000.0),
        )?;
        set(
            first,
            "scaleResolutionDownBy",
            &JsValue::from_f64(e.scale_down),
        )?;
        set(
            first,
            "maxFramerate",
            &JsValue::from_f64(f64::from(e.max_fps)),
        )?;
        let priority = JsValue::from_str(if e.screen { "medium" } else { "low" });
        set(first, "priority", &priority)?;
        set(first, "networkPriority", &priority)?;
        // Under CPU or bandwidth pressure a camera loses pixels, not frames (smaller frames
        // rather than fewer); a screen loses frames, not the detail of its text.
        let pref = if e.screen {
            "maintain-resolution"
        } else {
            "maintain-framerate"
        };
        set(params, "degradationPreference", &JsValue::from_str(pref))?;
        Ok(())
    })
}

/// Audio first: the audio sender at high priority, Opus at `kbps` at most.
fn encode_audio(sender: &web_sys::RtcRtpSender, kbps: u32) -> Result<(), WebError> {
    set_parameters(sender, move |_, first| {
        let high = JsValue::from_str("high");
        set(first, "priority", &high)?;
        set(first, "networkPriority", &high)?;
        set(
            first,
            "maxBitrate",
            &JsValue::from_f64(f64::from(kbps) * 1000.0),
        )
    })
}

/// What the connection tells the core: its ICE candidates, that it needs negotiating, and
/// its state.
fn connection_listeners(pc: &RtcPeerConnection, id: &ClientId, events: &Events) -> Vec<Listener> {
    let mut listeners = Vec::new();
    let on = |kind, f: Box<dyn FnMut(web_sys::Event)>| Listener::new(pc.as_ref(), kind, f);
    {
        let (id, events) = (id.clone(), events.clone());
        listeners.push(on(
            "icecandidate",
            Box::new(move |ev| {
                let ev: RtcPeerConnectionIceEvent = ev.unchecked_into();
                let candidate = ev.candidate().and_then(|c| candidate_payload(&c.to_json()));
                events.send(AppEvent::Core(Event::LocalCandidate(id.clone(), candidate)));
            }),
        ));
    }
    {
        let (id, events) = (id.clone(), events.clone());
        listeners.push(on(
            "negotiationneeded",
            Box::new(move |_| {
                events.send(AppEvent::Core(Event::NegotiationNeeded(id.clone())));
            }),
        ));
    }
    {
        let (id, events, pc2) = (id.clone(), events.clone(), pc.clone());
        listeners.push(on(
            "connectionstatechange",
            Box::new(move |_| {
                let link = match pc2.connection_state() {
                    RtcPeerConnectionState::Connected => PeerLink::Connected,
                    RtcPeerConnectionState::Disconnected => PeerLink::Disconnected,
                    RtcPeerConnectionState::Failed => PeerLink::Failed,
                    _ => return,
                };
                events.send(AppEvent::Core(Event::PeerState(id.clone(), link)));
            }),
        ));
    }
    listeners
}

/// The remote tracks go to the tile's video; its first frame marks the tile as playing.
fn media_listeners(
    pc: &RtcPeerConnection,
    video: &HtmlVideoElement,
    tile: &Element,
    events: &Events,
) -> Vec<Listener> {
    let mut listeners = Vec::new();
    {
        let (video, events) = (video.clone(), events.clone());
        listeners.push(Listener::new(pc.as_ref(), "track", move |ev| {
            let ev: RtcTrackEvent = ev.unchecked_into();
            let stream = match ev.streams().get(0).dyn_into::<MediaStream>() {
                Ok(stream) => stream,
                Err(_) => match video.src_object() {
                    Some(stream) => stream,
                    None => match MediaStream::new() {
                        Ok(stream) => stream,
                        Err(e) => {
                            events.send(AppEvent::Error(WebError::from_js("MediaStream", e)));
                            return;
                        }
                    },
                },
            };
            if !stream.get_tracks().includes(&ev.track(), 0) {
                stream.add_track(&ev.track());
            }
            if video.src_object().as_ref() != Some(&stream) {
                video.set_src_object(Some(&stream));
            }
            play(&video, &events);
        }));
    }
    // The first decoded frame gives the video its size: mark the tile as playing, with the
    // time, for people (CSS) and for the end-to-end tests and the set-up benchmark.
    for kind in ["loadeddata", "resize"] {
        let (v, tile) = (video.clone(), tile.clone());
        listeners.push(Listener::new(video.as_ref(), kind, move |_| {
            if v.video_width() > 0 && !tile.has_attribute("data-playing") {
                let _ = tile.set_attribute("data-playing", "true");
                let _ = tile.set_attribute("data-first-frame-at", &js_sys::Date::now().to_string());
            }
        }));
    }
    listeners
}

/// The chat data channel, negotiated in the SDP (id 0 on both sides), and its listeners:
/// open and close (the tile's `data-chat`), and messages to the core.
fn chat_channel(
    pc: &RtcPeerConnection,
    id: &ClientId,
    tile: &Element,
    events: &Events,
) -> (web_sys::RtcDataChannel, Vec<Listener>) {
    let mut listeners = Vec::new();
    let init = web_sys::RtcDataChannelInit::new();
    init.set_negotiated(true);
    init.set_id(0);
    let chat = pc.create_data_channel_with_data_channel_dict("chat", &init);
    for (kind, open) in [("open", true), ("close", false)] {
        let (id, events, tile) = (id.clone(), events.clone(), tile.clone());
        listeners.push(Listener::new(chat.as_ref(), kind, move |_| {
            // The tile says whether chat goes peer to peer (`data-chat`).
            let _ = tile.set_attribute("data-chat", kind);
            events.send(AppEvent::Core(Event::ChatChannel(id.clone(), open)));
        }));
    }
    {
        let (id, events) = (id.clone(), events.clone());
        listeners.push(Listener::new(chat.as_ref(), "message", move |ev| {
            let ev: web_sys::MessageEvent = ev.unchecked_into();
            if let Some(text) = ev.data().as_string() {
                events.send(AppEvent::Core(Event::ChannelData(id.clone(), text)));
            }
        }));
    }
    (chat, listeners)
}

/// A microphone struck through (inline SVG, drawn in the text colour).
const MIC_OFF_ICON: &str = "<svg viewBox=\"0 0 24 24\" aria-hidden=\"true\" focusable=\"false\">\
<path fill=\"none\" stroke=\"currentColor\" stroke-width=\"2\" stroke-linecap=\"round\" \
d=\"M12 3a3 3 0 0 0-3 3v6a3 3 0 0 0 6 0V6a3 3 0 0 0-3-3zM5 11a7 7 0 0 0 14 0M12 18v3M4 4l16 16\"/></svg>";

/// A camera struck through.
const CAM_OFF_ICON: &str = "<svg viewBox=\"0 0 24 24\" aria-hidden=\"true\" focusable=\"false\">\
<path fill=\"none\" stroke=\"currentColor\" stroke-width=\"2\" stroke-linecap=\"round\" \
stroke-linejoin=\"round\" d=\"M3 7h11a1 1 0 0 1 1 1v8a1 1 0 0 1-1 1H3a1 1 0 0 1-1-1V8a1 1 0 0 1 1-1zM15 11l6-3v8l-6-3M2 3l20 18\"/></svg>";

fn make_tile(
    document: &Document,
    id: &ClientId,
) -> Result<(Element, HtmlVideoElement, Element, Element, Element), WebError> {
    let tile = document
        .create_element("div")
        .map_err(js("createElement"))?;
    tile.set_class_name("tile remote");
    tile.set_attribute("role", "group")
        .map_err(js("setAttribute"))?;
    tile.set_attribute("data-peer", id.as_str())
        .map_err(js("setAttribute"))?;
    let video: HtmlVideoElement = document
        .create_element("video")
        .map_err(js("createElement"))?
        .unchecked_into();
    video.set_autoplay(true);
    video
        .set_attribute("playsinline", "")
        .map_err(js("setAttribute"))?;
    let div = |class: &str| -> Result<Element, WebError> {
        let el = document
            .create_element("div")
            .map_err(js("createElement"))?;
        el.set_class_name(class);
        Ok(el)
    };
    let (name, stats, media) = (div("label")?, div("stats")?, div("media")?);
    let badges = div("badges")?;
    for (class, icon) in [
        ("badge mic-off", MIC_OFF_ICON),
        ("badge cam-off", CAM_OFF_ICON),
    ] {
        let badge = div(class)?;
        badge
            .set_attribute("role", "img")
            .map_err(js("setAttribute"))?;
        badge.set_inner_html(icon);
        badges.append_child(&badge).map_err(js("appendChild"))?;
    }
    for child in [&video.clone().into(), &name, &badges, &stats, &media] {
        tile.append_child(child).map_err(js("appendChild"))?;
    }
    Ok((tile, video, name, stats, media))
}

/// Starts playback; a refusal (autoplay policy) is shown in the page.
fn play(video: &HtmlVideoElement, events: &Events) {
    let Ok(promise) = video.play() else { return };
    let events = events.clone();
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(e) = await_promise("video.play", promise).await {
            // Chrome rejects a play() superseded by a newer one (AbortError): not a problem.
            if e.name.as_deref() != Some("AbortError") {
                events.send(AppEvent::Error(e));
            }
        }
    });
}

/// The JSON text of a JS value (an RTCIceCandidate's `toJSON()`), as a payload.
fn candidate_payload(value: &JsValue) -> Option<Payload> {
    let text = js_sys::JSON::stringify(value).ok()?.as_string()?;
    Payload::from_json(text).ok()
}

/// The payload sent for a local description: `{"type": "offer"|"answer", "sdp": "..."}`, the
/// shape of `RTCSessionDescriptionInit` that reference clients send too.
pub fn description_payload(kind: SdpKind, sdp: &str) -> Payload {
    let kind = match kind {
        SdpKind::Offer => "offer",
        SdpKind::Answer => "answer",
    };
    Payload::from_value(&Description { kind, sdp }).expect("a JSON object serializes")
}

pub use crate::core::description_sdp;

/// A description's wire form.
#[derive(serde::Serialize)]
struct Description<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    sdp: &'a str,
}

/// Creates an offer or answer and sets it as the local description; returns its SDP.
pub async fn make_local_description(
    pc: &RtcPeerConnection,
    kind: SdpKind,
) -> Result<String, WebError> {
    let (api, promise) = match kind {
        SdpKind::Offer => ("createOffer", pc.create_offer()),
        SdpKind::Answer => ("createAnswer", pc.create_answer()),
    };
    let desc = await_promise(api, promise).await?;
    let sdp = Reflect::get(&desc, &JsValue::from_str("sdp"))
        .ok()
        .and_then(|v| v.as_string())
        .ok_or_else(|| WebError::new(api, "no sdp in the description"))?;
    let init = RtcSessionDescriptionInit::new(sdp_type(kind));
    init.set_sdp(&sdp);
    await_promise("setLocalDescription", pc.set_local_description(&init)).await?;
    Ok(sdp)
}

/// Applies a remote description.
pub async fn set_remote_description(
    pc: &RtcPeerConnection,
    kind: SdpKind,
    sdp: &str,
) -> Result<(), WebError> {
    let init = RtcSessionDescriptionInit::new(sdp_type(kind));
    init.set_sdp(sdp);
    await_promise("setRemoteDescription", pc.set_remote_description(&init)).await?;
    Ok(())
}

/// Adds a remote candidate (`null`: end of candidates).
pub async fn add_candidate(pc: &RtcPeerConnection, payload: &Payload) -> Result<(), WebError> {
    // `null`, the candidate line alone, or an `RTCIceCandidateInit`, which the browser reads
    // as it is (its `usernameFragment` too).
    let value = js_sys::JSON::parse(payload.get()).map_err(js("addIceCandidate"))?;
    let init = if value.is_null() {
        None
    } else if let Some(line) = value.as_string() {
        Some(RtcIceCandidateInit::new(&line))
    } else if value.is_object() && !js_sys::Array::is_array(&value) {
        Some(value.unchecked_into::<RtcIceCandidateInit>())
    } else {
        return Err(WebError::new(
            "addIceCandidate",
            "candidate is not an object",
        ));
    };
    let promise = pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(init.as_ref());
    await_promise("addIceCandidate", promise).await?;
    Ok(())
}

fn sdp_type(kind: SdpKind) -> RtcSdpType {
    match kind {
        SdpKind::Offer => RtcSdpType::Offer,
        SdpKind::Answer => RtcSdpType::Answer,
    }
}

fn number(stat: &JsValue, key: &str) -> Option<f64> {
    Reflect::get(stat, &JsValue::from_str(key)).ok()?.as_f64()
}

fn text(stat: &JsValue, key: &str) -> Option<String> {
    Reflect::get(stat, &JsValue::from_str(key))
        .ok()?
        .as_string()
}

/// Reads `getStats()` into samples of both sides. Receiving: the selected candidate pair's
/// round-trip time and path, the inbound RTP streams' byte and packet counts, and the
/// received video's size, rate and freezes. Sending: the pair's outgoing estimate, the
/// outbound streams' bytes, the sent video's size and rate, what limits its encoder, and the
/// height of the track sent.
pub async fn sample(
    pc: &RtcPeerConnection,
) -> Result<(crate::stats::Sample, SendSample), WebError> {
    let report = await_promise("getStats", pc.get_stats()).await?;
    let at_ms = js_sys::Date::now();
    let mut sample = crate::stats::Sample {
        at_ms,
        ..Default::default()
    };
    let source = sent_video(pc);
    let mut send = SendSample {
        at_ms,
        source_height: source
            .as_ref()
            .and_then(|s| s.get_height())
            .map(|h| h.max(0) as u32),
        source_fps: source.as_ref().and_then(|s| s.get_frame_rate()),
        ..Default::default()
    };
    let entries = js_sys::try_iter(&report)
        .map_err(js("getStats"))?
        .ok_or_else(|| WebError::new("getStats", "the report is not iterable"))?;
    // Candidate types by id, and the selected pair's two ids: resolved once all are read.
    let mut candidates = std::collections::HashMap::new();
    let mut selected = None;
    let mut rtt_from_reports = None;
    for entry in entries {
        let entry = entry.map_err(js("getStats"))?;
        let stat = Reflect::get(&entry, &JsValue::from_f64(1.0)).map_err(js("getStats"))?;
        match text(&stat, "type").as_deref() {
            Some("candidate-pair") if selected_pair(&stat) => {
                if let Some(rtt) = pair_rtt(&stat) {
                    sample.rtt_ms = Some(rtt * 1000.0);
                }
                selected = text(&stat, "localCandidateId").zip(text(&stat, "remoteCandidateId"));
                send.available_kbps = number(&stat, "availableOutgoingBitrate").map(|b| b / 1000.0);
            }
            Some("outbound-rtp") => add_outbound(&mut send, &stat),
            // Where the pair has no round-trip time (yet), the peer's RTCP reports have one.
            Some("remote-inbound-rtp") => {
                if let Some(rtt) = number(&stat, "roundTripTime") {
                    rtt_from_reports = Some(rtt * 1000.0);
                }
                if let Some(lost) = number(&stat, "fractionLost") {
                    send.loss = Some(send.loss.map_or(lost, |l: f64| l.max(lost)));
                }
            }
            Some("local-candidate" | "remote-candidate") => {
                if let (Some(id), Some(kind)) = (text(&stat, "id"), text(&stat, "candidateType")) {
                    candidates.insert(id, kind);
                }
            }
            Some("inbound-rtp") => add_inbound(&mut sample, &stat),
            _ => {}
        }
    }
    sample.rtt_ms = sample.rtt_ms.or(rtt_from_reports);
    send.rtt_ms = sample.rtt_ms;
    sample.path = selected.and_then(|(local, remote)| {
        crate::stats::Path::of(candidates.get(&local)?, candidates.get(&remote)?)
    });
    Ok((sample, send))
}

/// Adds one outbound RTP stream's figures to `send`.
fn add_outbound(send: &mut SendSample, stat: &JsValue) {
    let bytes = number(stat, "bytesSent").unwrap_or(0.0) as u64;
    match text(stat, "kind").as_deref() {
        Some("audio") => send.audio_bytes += bytes,
        Some("video") => {
            send.video_bytes += bytes;
            send.frame_height = number(stat, "frameHeight").map(|h| h as u32);
            send.fps = number(stat, "framesPerSecond");
            send.engine_limit = match text(stat, "qualityLimitationReason").as_deref() {
                Some("cpu") => EngineLimit::Cpu,
                Some("bandwidth") => EngineLimit::Bandwidth,
                _ => EngineLimit::None,
            };
        }
        _ => {}
    }
}

/// The settings of the video track a connection sends (the camera's or the screen's).
fn sent_video(pc: &RtcPeerConnection) -> Option<web_sys::MediaTrackSettings> {
    Some(video_sender(pc)?.track()?.get_settings())
}

/// The connection's video sender (the one whose track is video).
fn video_sender(pc: &RtcPeerConnection) -> Option<web_sys::RtcRtpSender> {
    pc.get_senders()
        .iter()
        .filter_map(|s| s.dyn_into::<web_sys::RtcRtpSender>().ok())
        .find(|s| s.track().is_some_and(|t| t.kind() == "video"))
}

/// Whether a candidate pair is the one in use: succeeded and nominated (Chromium), or
/// `selected` (Firefox, which may leave `nominated` out).
fn selected_pair(stat: &JsValue) -> bool {
    let flag = |key: &str| {
        Reflect::get(stat, &JsValue::from_str(key))
            .ok()
            .and_then(|v| v.as_bool())
            == Some(true)
    };
    text(stat, "state").as_deref() == Some("succeeded") && (flag("nominated") || flag("selected"))
}

/// A pair's round-trip time, seconds: `currentRoundTripTime`, else the average of its
/// checks so far (engines that report only the totals).
fn pair_rtt(stat: &JsValue) -> Option<f64> {
    number(stat, "currentRoundTripTime").or_else(|| {
        let total = number(stat, "totalRoundTripTime")?;
        let responses = number(stat, "responsesReceived").filter(|n| *n > 0.0)?;
        Some(total / responses)
    })
}

/// Adds one inbound RTP stream's figures to `sample`.
fn add_inbound(sample: &mut crate::stats::Sample, stat: &JsValue) {
    sample.bytes_received += number(stat, "bytesReceived").unwrap_or(0.0) as u64;
    sample.packets_received += number(stat, "packetsReceived").unwrap_or(0.0) as u64;
    // packetsLost can be negative (duplicates): count none then.
    sample.packets_lost += number(stat, "packetsLost").unwrap_or(0.0).max(0.0) as u64;
    match text(stat, "kind").as_deref() {
        Some("audio") => {
            sample.audio_packets += number(stat, "packetsReceived").unwrap_or(0.0) as u64;
            sample.audio_lost += number(stat, "packetsLost").unwrap_or(0.0).max(0.0) as u64;
            sample.audio_energy += number(stat, "totalAudioEnergy").unwrap_or(0.0);
            sample.audio_seconds += number(stat, "totalSamplesDuration").unwrap_or(0.0);
        }
        Some("video") => {
            sample.video_bytes += number(stat, "bytesReceived").unwrap_or(0.0) as u64;
            if let Some(h) = number(stat, "frameHeight") {
                sample.frame_height = Some(h as u32);
            }
            if let Some(n) = number(stat, "freezeCount") {
                *sample.freezes.get_or_insert(0) += n as u64;
            }
            if let Some(s) = number(stat, "totalFreezesDuration") {
                *sample.freeze_seconds.get_or_insert(0.0) += s;
            }
            sample.fps = number(stat, "framesPerSecond").or(sample.fps);
        }
        _ => {}
    }
}
