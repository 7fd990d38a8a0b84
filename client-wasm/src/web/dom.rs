//! The page: the elements of `www/index.html` the app reads and writes, and the listeners of
//! its controls (owned here, so they live exactly as long as the page's UI).

use super::error::{WebError, js};
use super::listener::Listener;
use super::{AppEvent, Events};
use crate::core::MediaKind;
use crate::core::panels::{Panel, Panels, Participant};
use crate::i18n::{Device, Label, Lang, Text};
use gloo_timers::callback::Timeout;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use wasm_bindgen::JsCast;
use web_sys::{Document, Element, HtmlElement, HtmlInputElement, HtmlVideoElement, MediaStream};

/// How long a short notice stays, ms, and how many are shown at most.
const TOAST_MS: u32 = 5000;
const MAX_TOASTS: usize = 3;

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
    speaker_select: web_sys::HtmlSelectElement,
    record: HtmlElement,
    download: web_sys::HtmlAnchorElement,
    status: Element,
    notice: Element,
    local_video: HtmlVideoElement,
    chat_log: Element,
    chat_input: HtmlInputElement,
    /// The grid of remote tiles.
    pub grid: Element,
    lang_select: web_sys::HtmlSelectElement,
    mic_level: web_sys::HtmlMeterElement,
    media_help: Element,
    leave_dialog: web_sys::HtmlDialogElement,
    toasts: Element,
    chat_toggle: HtmlElement,
    people_toggle: HtmlElement,
    unread: Element,
    people_list: Element,
    /// The short notices shown, oldest first, each with the timer that takes it away.
    shown_toasts: RefCell<VecDeque<(Element, Timeout)>>,
    /// The page's language, and every text shown in it (an element, the attribute or `None`
    /// for its text, and what it says), rendered again when the language changes.
    lang: Cell<Lang>,
    shown: RefCell<Vec<(Element, Option<&'static str>, Text)>>,
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
            speaker_select: get(document, "speaker-select")?,
            record: get(document, "record")?,
            download: get(document, "download")?,
            status: get(document, "status")?,
            notice: get(document, "notice")?,
            local_video: get(document, "local-video")?,
            chat_log: get(document, "chat-log")?,
            chat_input: get(document, "chat-input")?,
            grid: get(document, "grid")?,
            lang_select: get(document, "lang")?,
            mic_level: get(document, "mic-level")?,
            media_help: get(document, "media-help")?,
            leave_dialog: get(document, "leave-dialog")?,
            toasts: get(document, "toasts")?,
            chat_toggle: get(document, "chat-toggle")?,
            people_toggle: get(document, "people-toggle")?,
            unread: get(document, "unread")?,
            people_list: get(document, "people-list")?,
            shown_toasts: RefCell::new(VecDeque::new()),
            lang: Cell::new(Lang::default()),
            shown: RefCell::new(Vec::new()),
            _listeners: Vec::new(),
        };
        let copy: HtmlElement = get(document, "copy")?;
        let leave_yes: HtmlElement = get(document, "leave-yes")?;
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
        let pick = |select: &web_sys::HtmlSelectElement, chosen: fn(String) -> AppEvent| {
            let (events, select2) = (events.clone(), select.clone());
            Listener::new(select.as_ref(), "change", move |_| {
                events.send(chosen(select2.value()));
            })
        };
        let lang = {
            let (events, select) = (events.clone(), ui.lang_select.clone());
            Listener::new(ui.lang_select.as_ref(), "change", move |_| {
                if let Some(lang) = Lang::parse(&select.value()) {
                    events.send(AppEvent::LangChosen(lang));
                }
            })
        };
        let listeners = vec![
            lang,
            pick(&ui.camera_select, |id| {
                AppEvent::DeviceChosen(MediaKind::Video, id)
            }),
            pick(&ui.mic_select, |id| {
                AppEvent::DeviceChosen(MediaKind::Audio, id)
            }),
            pick(&ui.speaker_select, AppEvent::SpeakerChosen),
            keys,
            chat,
            submit,
            click(&ui.leave, || AppEvent::LeaveClicked),
            click(&leave_yes, || AppEvent::LeaveConfirmed),
            click(&ui.chat_toggle, || {
                AppEvent::Core(crate::core::Event::TogglePanel(Panel::Chat))
            }),
            click(&ui.people_toggle, || {
                AppEvent::Core(crate::core::Event::TogglePanel(Panel::People))
            }),
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
        let ui = Ui {
            _listeners: listeners,
            ..ui
        };
        // What the empty grid says (the style sheet shows it).
        ui.put(&ui.grid, Some("data-empty"), Text::NobodyYet);
        Ok(ui)
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

    /// The page's language.
    pub fn lang(&self) -> Lang {
        self.lang.get()
    }

    /// Speaks `lang`: `<html lang>`, the switch, the static labels (`data-i18n*`) and every
    /// text shown so far. A label name that is not one is marked `data-i18n-missing`.
    pub fn set_lang(&self, lang: Lang) {
        self.lang.set(lang);
        if let Some(html) = self.document.document_element() {
            let _ = html.set_attribute("lang", lang.tag());
        }
        self.fill_lang_switch(lang);
        for (attr, target) in [
            ("data-i18n", None),
            ("data-i18n-placeholder", Some("placeholder")),
            ("data-i18n-title", Some("title")),
            ("data-i18n-aria-label", Some("aria-label")),
        ] {
            self.fill_labels(lang, attr, target);
        }
        for (el, attr, text) in self.shown.borrow().iter() {
            write(el, *attr, &text.render(lang));
        }
    }

    fn fill_lang_switch(&self, lang: Lang) {
        if self.lang_select.length() == 0 {
            for l in Lang::ALL {
                let Ok(option) = self.document.create_element("option") else {
                    continue;
                };
                let _ = option.set_attribute("value", l.tag());
                let _ = option.set_attribute("lang", l.tag());
                option.set_text_content(Some(l.name()));
                let _ = self.lang_select.append_child(&option);
            }
        }
        self.lang_select.set_value(lang.tag());
    }

    fn fill_labels(&self, lang: Lang, attr: &str, target: Option<&str>) {
        let Ok(list) = self.document.query_selector_all(&format!("[{attr}]")) else {
            return;
        };
        for el in (0..list.length()).filter_map(|i| list.item(i)?.dyn_into::<Element>().ok()) {
            let key = el.get_attribute(attr).unwrap_or_default();
            match Label::from_key(&key) {
                Some(label) => write(&el, target, &Text::Label(label).render(lang)),
                None => {
                    let _ = el.set_attribute("data-i18n-missing", &key);
                    web_sys::console::error_1(&format!("no text for {attr}=\"{key}\"").into());
                }
            }
        }
    }

    /// Shows `text` in `el` (its text, or the attribute `attr`), in the page's language now
    /// and after a switch.
    pub fn put(&self, el: &Element, attr: Option<&'static str>, text: Text) {
        write(el, attr, &text.render(self.lang()));
        let mut shown = self.shown.borrow_mut();
        // Elements no longer in the page (a picker's old options) are forgotten.
        shown.retain(|(e, _, _)| e.is_connected());
        match shown
            .iter_mut()
            .find(|(e, a, _)| *a == attr && e.is_same_node(Some(el)))
        {
            Some(entry) => entry.2 = text,
            None => shown.push((el.clone(), attr, text)),
        }
    }

    /// Shows the connection status line.
    pub fn set_status(&self, text: Text) {
        self.put(&self.status, None, text);
    }

    /// Shows a notice (media problems, errors) until replaced.
    pub fn set_notice(&self, text: Text) {
        self.put(&self.notice, None, text);
        let _ = self.notice.toggle_attribute_with_force("hidden", false);
    }

    /// Shows a short notice for [`TOAST_MS`] (the oldest goes when [`MAX_TOASTS`] are shown).
    pub fn toast(&self, text: Text) {
        let Ok(el) = self.document.create_element("p") else {
            return;
        };
        self.put(&el, None, text);
        let _ = self.toasts.append_child(&el);
        let gone = el.clone();
        let timer = Timeout::new(TOAST_MS, move || gone.remove());
        let mut shown = self.shown_toasts.borrow_mut();
        shown.retain(|(e, _)| e.is_connected());
        shown.push_back((el, timer));
        while shown.len() > MAX_TOASTS {
            if let Some((oldest, _)) = shown.pop_front() {
                oldest.remove();
            }
        }
    }

    /// Shows the side panels as the core has them: the one open (`body[data-panel]`, and
    /// each button's `aria-expanded`), and the chat's unread count on its button.
    pub fn show_panels(&self, panels: Panels) {
        let open = match panels.open {
            Some(Panel::Chat) => "chat",
            Some(Panel::People) => "people",
            None => "",
        };
        self.mark("data-panel", open);
        let expanded = |on: bool| if on { "true" } else { "false" };
        let chat = panels.open == Some(Panel::Chat);
        let people = panels.open == Some(Panel::People);
        let _ = self
            .chat_toggle
            .set_attribute("aria-expanded", expanded(chat));
        let _ = self
            .people_toggle
            .set_attribute("aria-expanded", expanded(people));
        if let Ok(Some(count)) = self.chat_toggle.query_selector(".count") {
            let n = panels.unread.min(99).to_string();
            count.set_text_content(Some(&n));
            let _ = count.toggle_attribute_with_force("hidden", panels.unread == 0);
        }
        self.put(&self.unread, None, Text::Unread(panels.unread));
    }

    /// Lists who is in the call in the participants panel: each with a name and what of
    /// their microphone and camera is off (`data-mic`, `data-cam`: `on`, `off`, or absent
    /// until told).
    pub fn show_participants(&self, people: &[Participant]) {
        self.people_list.set_text_content(None);
        for person in people {
            let (Ok(li), Ok(name)) = (
                self.document.create_element("li"),
                self.document.create_element("span"),
            ) else {
                return;
            };
            // In the page before their words are put: words kept for a language switch
            // belong to elements in the page.
            let _ = self.people_list.append_child(&li);
            let _ = name.set_attribute("class", "name");
            let _ = li.append_child(&name);
            let who = match &person.who {
                Some(who) => Text::Peer(who.clone()),
                None => Text::Label(Label::You),
            };
            self.put(&name, None, who);
            if person.who.is_none() {
                let _ = li.set_attribute("data-self", "");
            }
            if let Some(media) = person.media {
                let on = |b: bool| if b { "on" } else { "off" };
                let _ = li.set_attribute("data-mic", on(media.mic));
                let _ = li.set_attribute("data-cam", on(media.cam));
                for (off, text) in [(!media.mic, Text::MicOff), (!media.cam, Text::CamOff)] {
                    if let (true, Ok(state)) = (off, self.document.create_element("span")) {
                        let _ = state.set_attribute("class", "state");
                        let _ = li.append_child(&state);
                        self.put(&state, None, text);
                    }
                }
            }
        }
    }

    /// Hides the notice.
    pub fn clear_notice(&self) {
        self.shown
            .borrow_mut()
            .retain(|(e, _, _)| !e.is_same_node(Some(&self.notice)));
        self.notice.set_text_content(None);
        let _ = self.notice.toggle_attribute_with_force("hidden", true);
    }

    /// Shows the pre-join screen or the call (`body[data-view]`: `prejoin`, `call`), and
    /// enables Join or Leave accordingly (out of a call, the leave dialog closes).
    pub fn set_in_call(&self, in_call: bool) {
        self.mark("data-view", if in_call { "call" } else { "prejoin" });
        let _ = self.join.toggle_attribute_with_force("disabled", in_call);
        let _ = self.room.toggle_attribute_with_force("disabled", in_call);
        let _ = self.name.toggle_attribute_with_force("disabled", in_call);
        let _ = self
            .password
            .toggle_attribute_with_force("disabled", in_call);
        let _ = self.leave.toggle_attribute_with_force("disabled", !in_call);
        if !in_call {
            self.leave_dialog.close();
        }
    }

    /// Reflects a microphone or camera toggle on its button.
    pub fn set_media_on(&self, kind: MediaKind, on: bool) {
        let button = match kind {
            MediaKind::Audio => &self.mic,
            MediaKind::Video => &self.cam,
        };
        let _ = button.set_attribute("aria-pressed", if on { "false" } else { "true" });
        self.put(&text_in(button), None, Text::MediaButton(kind, on));
        self.put(button, Some("title"), Text::MediaButtonHint(kind, on));
    }

    /// Reflects screen sharing on its button.
    pub fn set_sharing(&self, on: bool) {
        let _ = self
            .share
            .set_attribute("aria-pressed", if on { "true" } else { "false" });
        self.put(&text_in(&self.share), None, Text::ShareButton(on));
    }

    /// Lists the devices of `kind` in its picker, `current` selected (the speaker picker
    /// shows only where there are speakers to choose).
    pub fn show_devices(
        &self,
        kind: Device,
        devices: &[super::devices::Device],
        current: Option<&str>,
    ) {
        let select = match kind {
            Device::Microphone => &self.mic_select,
            Device::Camera => &self.camera_select,
            Device::Speaker => &self.speaker_select,
        };
        if kind == Device::Speaker {
            let _ = select.toggle_attribute_with_force("hidden", devices.is_empty());
        }
        select.set_inner_html("");
        for (i, device) in devices.iter().enumerate() {
            let Ok(option) = self.document.create_element("option") else {
                continue;
            };
            let _ = option.set_attribute("value", &device.id);
            if device.label.is_empty() {
                self.put(&option, None, Text::DeviceNumbered(kind, i + 1));
            } else {
                option.set_text_content(Some(&device.label));
            }
            let _ = select.append_child(&option);
        }
        if let Some(current) = current {
            select.set_value(current);
        }
        // One device (or none) leaves nothing to pick: the picker is disabled and says why.
        let single = devices.len() < 2;
        let _ = select.toggle_attribute_with_force("disabled", single);
        self.put(
            select,
            Some("title"),
            Text::DevicePicker(kind, devices.len()),
        );
    }

    /// Reflects recording on its button (the bytes recorded so far start again at 0).
    pub fn set_recording(&self, on: bool) {
        let _ = self
            .record
            .set_attribute("aria-pressed", if on { "true" } else { "false" });
        let _ = self.record.set_attribute("data-bytes", "0");
        let text = Text::RecordButton(on.then_some(0.0));
        self.put(&text_in(&self.record), None, text);
    }

    /// Shows how much the recording in progress holds (also in the button's `data-bytes`).
    pub fn set_recorded(&self, bytes: f64) {
        let _ = self.record.set_attribute("data-bytes", &bytes.to_string());
        self.put(
            &text_in(&self.record),
            None,
            Text::RecordButton(Some(megabytes(bytes))),
        );
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
        let text = Text::DownloadRecording(megabytes(blob.size()));
        self.put(&self.download, None, text);
        let _ = self.download.toggle_attribute_with_force("hidden", false);
    }

    /// The pre-join screen's microphone level meter.
    pub fn mic_level(&self) -> &web_sys::HtmlMeterElement {
        &self.mic_level
    }

    /// Shows the pre-join screen's help for media that could not be opened.
    pub fn show_media_help(&self, why: crate::i18n::MediaFailure) {
        self.put(&self.media_help, None, Text::MediaHelp(why));
        let _ = self.media_help.toggle_attribute_with_force("hidden", false);
    }

    /// Asks whether to leave the call (a modal dialog: Stay, or Leave, which sends
    /// [`AppEvent::LeaveConfirmed`]; Escape stays).
    pub fn confirm_leave(&self) {
        if !self.leave_dialog.open() {
            let _ = self.leave_dialog.show_modal();
        }
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
    set_url_param("room", room)
}

/// Sets `?key=value` in the page's URL without reloading; returns the new URL.
pub fn set_url_param(key: &str, value: &str) -> Result<String, WebError> {
    let window = web_sys::window().ok_or_else(|| WebError::new("window", "none"))?;
    let url =
        web_sys::Url::new(&window.location().href().map_err(js("location"))?).map_err(js("URL"))?;
    url.search_params().set(key, value);
    let href = url.href();
    let history = window.history().map_err(js("history"))?;
    history
        .replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&href))
        .map_err(js("history.replaceState"))?;
    Ok(href)
}

/// A size in bytes as megabytes.
fn megabytes(bytes: f64) -> f64 {
    bytes / 1_000_000.0
}

/// Where a control button's words go: its `.text` (beside its icon), or the button itself.
fn text_in(button: &HtmlElement) -> Element {
    match button.query_selector(".text") {
        Ok(Some(text)) => text,
        _ => button.clone().into(),
    }
}

/// Writes `text` as `el`'s text, or as its attribute `attr`.
fn write(el: &Element, attr: Option<&str>, text: &str) {
    match attr {
        Some(attr) => {
            let _ = el.set_attribute(attr, text);
        }
        None => el.set_text_content(Some(text)),
    }
}
