//! The page: the elements of `www/index.html` the app reads and writes, and the listeners of
//! its controls (owned here, so they live exactly as long as the page's UI).

use super::error::{WebError, js};
use super::listener::Listener;
use super::{AppEvent, Events};
use crate::core::MediaKind;
use wasm_bindgen::JsCast;
use web_sys::{Document, Element, HtmlElement, HtmlInputElement, HtmlVideoElement, MediaStream};

/// The page's elements.
pub struct Ui {
    document: Document,
    room: HtmlInputElement,
    name: HtmlInputElement,
    password: HtmlInputElement,
    join: HtmlElement,
    leave: HtmlElement,
    mic: HtmlElement,
    cam: HtmlElement,
    share: HtmlElement,
    saver: HtmlElement,
    camera_select: web_sys::HtmlSelectElement,
    mic_select: web_sys::HtmlSelectElement,
    record: HtmlElement,
    download: web_sys::HtmlAnchorElement,
    status: Element,
    notice: Element,
    local_video: HtmlVideoElement,
    chat_log: Element,
    chat_input: HtmlInputElement,
    /// The grid of remote tiles.
    pub grid: Element,
    _listeners: Vec<Listener>,
}

fn get<T: JsCast>(document: &Document, id: &str) -> Result<T, WebError> {
    document
        .get_element_by_id(id)
        .ok_or_else(|| WebError::new("getElementById", format!("#{id} is missing from the page")))?
        .dyn_into::<T>()
        .map_err(|_| {
            WebError::new(
                "getElementById",
                format!("#{id} has the wrong element type"),
            )
        })
}

impl Ui {
    /// Finds the elements and wires the controls to `events`.
    pub fn new(document: &Document, events: &Events) -> Result<Ui, WebError> {
        let ui = Ui {
            document: document.clone(),
            room: get(document, "room")?,
            name: get(document, "name")?,
            password: get(document, "password")?,
            join: get(document, "join")?,
            leave: get(document, "leave")?,
            mic: get(document, "mic")?,
            cam: get(document, "cam")?,
            share: get(document, "share")?,
            saver: get(document, "saver")?,
            camera_select: get(document, "camera-select")?,
            mic_select: get(document, "mic-select")?,
            record: get(document, "record")?,
            download: get(document, "download")?,
            status: get(document, "status")?,
            notice: get(document, "notice")?,
            local_video: get(document, "local-video")?,
            chat_log: get(document, "chat-log")?,
            chat_input: get(document, "chat-input")?,
            grid: get(document, "grid")?,
            _listeners: Vec::new(),
        };
        let copy: HtmlElement = get(document, "copy")?;
        let form: HtmlElement = get(document, "join-form")?;
        let click = |el: &HtmlElement, what: fn() -> AppEvent| {
            let events = events.clone();
            Listener::new(el.as_ref(), "click", move |_| events.send(what()))
        };
        let submit = {
            let events = events.clone();
            Listener::new(form.as_ref(), "submit", move |ev| {
                ev.prevent_default();
                events.send(AppEvent::JoinClicked);
            })
        };
        // Keyboard shortcuts: m (microphone) and v (camera), except while typing in a field.
        let keys = {
            let events = events.clone();
            Listener::new(document.as_ref(), "keydown", move |ev| {
                let Some(key) = ev.dyn_ref::<web_sys::KeyboardEvent>() else {
                    return;
                };
                if key.ctrl_key() || key.meta_key() || key.alt_key() {
                    return;
                }
                let typing = ev
                    .target()
                    .and_then(|t| t.dyn_into::<Element>().ok())
                    .is_some_and(|el| matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA"));
                if typing {
                    return;
                }
                match key.key().as_str() {
                    "m" | "M" => events.send(AppEvent::Toggle(MediaKind::Audio)),
                    "v" | "V" => events.send(AppEvent::Toggle(MediaKind::Video)),
                    _ => {}
                }
            })
        };
        let chat_form: HtmlElement = get(document, "chat-form")?;
        let chat = {
            let events = events.clone();
            Listener::new(chat_form.as_ref(), "submit", move |ev| {
                ev.prevent_default();
                events.send(AppEvent::ChatSubmit);
            })
        };
        let pick = |select: &web_sys::HtmlSelectElement, kind: MediaKind| {
            let (events, select2) = (events.clone(), select.clone());
            Listener::new(select.as_ref(), "change", move |_| {
                events.send(AppEvent::DeviceChosen(kind, select2.value()));
            })
        };
        let listeners = vec![
            pick(&ui.camera_select, MediaKind::Video),
            pick(&ui.mic_select, MediaKind::Audio),
            keys,
            chat,
            submit,
            click(&ui.leave, || AppEvent::LeaveClicked),
            click(&copy, || AppEvent::CopyLink),
            click(&ui.mic, || AppEvent::Toggle(MediaKind::Audio)),
            click(&ui.cam, || AppEvent::Toggle(MediaKind::Video)),
            click(&ui.share, || {
                AppEvent::Core(crate::core::Event::ShareToggle)
            }),
            click(&ui.saver, || {
                AppEvent::Core(crate::core::Event::DataSaverToggle)
            }),
            click(&ui.record, || {
                AppEvent::Core(crate::core::Event::RecordToggle)
            }),
        ];
        Ok(Ui {
            _listeners: listeners,
            ..ui
        })
    }

    /// Shows whether data saver is on (the button, and `body[data-data-saver]`).
    pub fn set_data_saver(&self, on: bool) {
        let _ = self
            .saver
            .set_attribute("aria-pressed", if on { "true" } else { "false" });
        self.mark("data-data-saver", if on { "on" } else { "off" });
    }

    /// The room typed in the field.
    pub fn room(&self) -> String {
        self.room.value().trim().to_owned()
    }

    /// The display name typed (empty: none).
    pub fn name(&self) -> Option<String> {
        Some(self.name.value().trim().to_owned()).filter(|n| !n.is_empty())
    }

    /// Prefills the name field.
    pub fn set_name(&self, name: &str) {
        self.name.set_value(name);
    }

    /// The room password typed (empty: none).
    pub fn password(&self) -> Option<String> {
        Some(self.password.value()).filter(|p| !p.is_empty())
    }

    /// Prefills the password field.
    pub fn set_password(&self, password: &str) {
        self.password.set_value(password);
    }

    /// Prefills the room field.
    pub fn set_room(&self, room: &str) {
        self.room.set_value(room);
    }

    /// Shows the connection status line.
    pub fn set_status(&self, text: &str) {
        self.status.set_text_content(Some(text));
    }

    /// Shows a notice (media problems, errors) until replaced; empty hides it.
    pub fn set_notice(&self, text: &str) {
        self.notice.set_text_content(Some(text));
        let _ = self
            .notice
            .toggle_attribute_with_force("hidden", text.is_empty());
    }

    /// Enables Join or Leave according to whether a call is on.
    pub fn set_in_call(&self, in_call: bool) {
        let _ = self.join.toggle_attribute_with_force("disabled", in_call);
        let _ = self.room.toggle_attribute_with_force("disabled", in_call);
        let _ = self.name.toggle_attribute_with_force("disabled", in_call);
        let _ = self
            .password
            .toggle_attribute_with_force("disabled", in_call);
        let _ = self.leave.toggle_attribute_with_force("disabled", !in_call);
    }

    /// Reflects a microphone or camera toggle on its button.
    pub fn set_media_on(&self, kind: MediaKind, on: bool) {
        let (button, what) = match kind {
            MediaKind::Audio => (&self.mic, "microphone, key m"),
            MediaKind::Video => (&self.cam, "camera, key v"),
        };
        let _ = button.set_attribute("aria-pressed", if on { "false" } else { "true" });
        let label = match (kind, on) {
            (MediaKind::Audio, true) => "Mute",
            (MediaKind::Audio, false) => "Unmute",
            (MediaKind::Video, true) => "Camera off",
            (MediaKind::Video, false) => "Camera on",
        };
        button.set_text_content(Some(label));
        let _ = button.set_attribute("title", &format!("{label} ({what})"));
    }

    /// Reflects screen sharing on its button.
    pub fn set_sharing(&self, on: bool) {
        let _ = self
            .share
            .set_attribute("aria-pressed", if on { "true" } else { "false" });
        self.share
            .set_text_content(Some(if on { "Stop sharing" } else { "Share screen" }));
    }

    /// Lists the devices of `kind` in its picker, `current` selected.
    pub fn show_devices(
        &self,
        kind: MediaKind,
        devices: &[super::devices::Device],
        current: Option<&str>,
    ) {
        let select = match kind {
            MediaKind::Audio => &self.mic_select,
            MediaKind::Video => &self.camera_select,
        };
        select.set_inner_html("");
        for (i, device) in devices.iter().enumerate() {
            let Ok(option) = self.document.create_element("option") else {
                continue;
            };
            let _ = option.set_attribute("value", &device.id);
            let label = if device.label.is_empty() {
                format!(
                    "{} {}",
                    if kind == MediaKind::Audio {
                        "Microphone"
                    } else {
                        "Camera"
                    },
                    i + 1
                )
            } else {
                device.label.clone()
            };
            option.set_text_content(Some(&label));
            let _ = select.append_child(&option);
        }
        if let Some(current) = current {
            select.set_value(current);
        }
        // One device (or none) leaves nothing to pick: the picker is disabled and says why.
        let single = devices.len() < 2;
        let _ = select.toggle_attribute_with_force("disabled", single);
        let name = if kind == MediaKind::Audio {
            "Microphone"
        } else {
            "Camera"
        };
        let title = match devices.len() {
            0 => format!("{name}: none found"),
            1 => format!("{name}: the only one found"),
            _ => name.to_owned(),
        };
        let _ = select.set_attribute("title", &title);
    }

    /// Reflects recording on its button (the bytes recorded so far start again at 0).
    pub fn set_recording(&self, on: bool) {
        let _ = self
            .record
            .set_attribute("aria-pressed", if on { "true" } else { "false" });
        let _ = self.record.set_attribute("data-bytes", "0");
        self.record
            .set_text_content(Some(if on { "Stop recording" } else { "Record" }));
    }

    /// Shows how much the recording in progress holds (also in the button's `data-bytes`).
    pub fn set_recorded(&self, bytes: f64) {
        let _ = self.record.set_attribute("data-bytes", &bytes.to_string());
        self.record
            .set_text_content(Some(&format!("Stop recording ({})", megabytes(bytes))));
    }

    /// Offers a finished recording as a download link (its size in `data-bytes`).
    pub fn offer_recording(&self, blob: &web_sys::Blob) {
        let Ok(url) = web_sys::Url::create_object_url_with_blob(blob) else {
            return;
        };
        // The previous recording's URL is released with its link.
        let old = self.download.href();
        if old.starts_with("blob:") {
            let _ = web_sys::Url::revoke_object_url(&old);
        }
        self.download.set_href(&url);
        let _ = self
            .download
            .set_attribute("data-bytes", &blob.size().to_string());
        self.download.set_text_content(Some(&format!(
            "Download the recording ({})",
            megabytes(blob.size())
        )));
        let _ = self.download.toggle_attribute_with_force("hidden", false);
    }

    /// Disables the microphone and camera buttons (no local media).
    pub fn disable_media_controls(&self) {
        let _ = self.mic.toggle_attribute_with_force("disabled", true);
        let _ = self.cam.toggle_attribute_with_force("disabled", true);
    }

    /// The chat text typed, emptied (none when blank).
    pub fn take_chat_input(&self) -> Option<String> {
        let text = self.chat_input.value().trim().to_owned();
        self.chat_input.set_value("");
        (!text.is_empty()).then_some(text)
    }

    /// Appends a chat message: sender, local time, text (as text, never as HTML).
    pub fn show_chat(&self, line: &crate::core::ChatLine, from: crate::core::ChatFrom) {
        use crate::core::ChatFrom;
        let Ok(item) = self.document.create_element("li") else {
            return;
        };
        item.set_class_name(if from == ChatFrom::Me {
            "own"
        } else {
            "theirs"
        });
        // How it came (`data-via`): typed here, peer to peer, or through the relay.
        let via = match from {
            ChatFrom::Me => "me",
            ChatFrom::Channel => "channel",
            ChatFrom::Relay => "relay",
        };
        let _ = item.set_attribute("data-via", via);
        let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(line.time));
        let time = format!("{:02}:{:02}", date.get_hours(), date.get_minutes());
        for (class, text) in [
            ("name", line.name.as_str()),
            ("time", time.as_str()),
            ("text", line.chat.as_str()),
        ] {
            if let Ok(span) = self.document.create_element("span") {
                span.set_class_name(class);
                span.set_text_content(Some(text));
                let _ = item.append_child(&span);
            }
        }
        let _ = self.chat_log.append_child(&item);
        item.scroll_into_view();
    }

    /// Shows the local preview (muted: people must not hear themselves).
    pub fn show_local(&self, stream: &MediaStream) {
        self.local_video.set_muted(true);
        self.local_video.set_src_object(Some(stream));
    }

    /// Keeps the tile count on the grid, for the layout.
    pub fn update_grid(&self) {
        let n = self.grid.child_element_count();
        let _ = self.grid.set_attribute("data-count", &n.to_string());
    }

    /// Records a timestamp (ms since the epoch) on the body, for tests and benchmarks.
    pub fn stamp(&self, name: &str) {
        if let Some(body) = self.document.body() {
            let _ = body.set_attribute(name, &js_sys::Date::now().to_string());
        }
    }

    /// Records a value on the body, for tests.
    pub fn mark(&self, name: &str, value: &str) {
        if let Some(body) = self.document.body() {
            let _ = body.set_attribute(name, value);
        }
    }
}

/// Puts `room` in the page's URL (so it can be shared) without reloading.
pub fn set_url_room(room: &str) -> Result<String, WebError> {
    let window = web_sys::window().ok_or_else(|| WebError::new("window", "none"))?;
    let url =
        web_sys::Url::new(&window.location().href().map_err(js("location"))?).map_err(js("URL"))?;
    url.search_params().set("room", room);
    let href = url.href();
    let history = window.history().map_err(js("history"))?;
    history
        .replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&href))
        .map_err(js("history.replaceState"))?;
    Ok(href)
}

/// A size in bytes as megabytes with one decimal, e.g. "1.2 MB".
fn megabytes(bytes: f64) -> String {
    format!("{:.1} MB", bytes / 1_000_000.0)
}
