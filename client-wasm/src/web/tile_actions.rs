//! A remote tile's buttons: show it large (focus: asked of the core, which says which tile
//! is shown large), full screen, picture in picture. They work by keyboard as by mouse (a
//! click on the tile itself also focuses it); what the browser cannot do is not offered
//! (no full-screen button without `document.fullscreenEnabled`, no picture-in-picture
//! button without `document.pictureInPictureEnabled`).

use super::error::{WebError, await_promise, call_promise, js};
use super::listener::Listener;
use super::{AppEvent, Events};
use crate::core::Event;
use crate::i18n::{Lang, Text};
use protocol::ClientId;
use wasm_bindgen::JsValue;
use web_sys::{Document, Element, HtmlVideoElement};

/// Four arrows outwards.
const FOCUS_ICON: &str = "<svg viewBox=\"0 0 24 24\" aria-hidden=\"true\" focusable=\"false\">\
<path fill=\"none\" stroke=\"currentColor\" stroke-width=\"2\" stroke-linecap=\"round\" \
d=\"M4 9V4h5M20 9V4h-5M4 15v5h5M20 15v5h-5\"/></svg>";

/// A screen with corners.
const FULLSCREEN_ICON: &str = "<svg viewBox=\"0 0 24 24\" aria-hidden=\"true\" \
focusable=\"false\"><path fill=\"none\" stroke=\"currentColor\" stroke-width=\"2\" \
d=\"M3 5h18v14H3z\"/><path fill=\"currentColor\" d=\"M6 8h4v2H8v2H6zM18 16h-4v-2h2v-2h2z\"/></svg>";

/// A small picture in a large one.
const PIP_ICON: &str = "<svg viewBox=\"0 0 24 24\" aria-hidden=\"true\" focusable=\"false\">\
<path fill=\"none\" stroke=\"currentColor\" stroke-width=\"2\" d=\"M3 5h18v14H3z\"/>\
<path fill=\"currentColor\" d=\"M12 11h7v6h-7z\"/></svg>";

/// The buttons of one tile, and their listeners.
pub(crate) struct TileActions {
    buttons: [(Element, Text); 3],
    _listeners: Vec<Listener>,
}

impl TileActions {
    /// Adds the buttons to `tile`, `id`'s, showing `video`.
    pub(crate) fn new(
        document: &Document,
        id: &ClientId,
        tile: &Element,
        video: &HtmlVideoElement,
        events: &Events,
    ) -> Result<TileActions, WebError> {
        let bar = document
            .create_element("div")
            .map_err(js("createElement"))?;
        bar.set_class_name("tile-actions");
        let button = |class: &str, icon: &str| -> Result<Element, WebError> {
            let b = document
                .create_element("button")
                .map_err(js("createElement"))?;
            b.set_class_name(class);
            b.set_attribute("type", "button")
                .map_err(js("setAttribute"))?;
            b.set_inner_html(icon);
            bar.append_child(&b).map_err(js("appendChild"))?;
            Ok(b)
        };
        let focus = button("tile-focus", FOCUS_ICON)?;
        focus
            .set_attribute("aria-pressed", "false")
            .map_err(js("setAttribute"))?;
        let fullscreen = button("tile-fullscreen", FULLSCREEN_ICON)?;
        let pip = button("tile-pip", PIP_ICON)?;
        for (button, able) in [
            (&fullscreen, "fullscreenEnabled"),
            (&pip, "pictureInPictureEnabled"),
        ] {
            let can = js_sys::Reflect::get(document, &able.into()).is_ok_and(|v| v.is_truthy());
            button
                .toggle_attribute_with_force("hidden", !can)
                .map_err(js("toggleAttribute"))?;
        }
        tile.append_child(&bar).map_err(js("appendChild"))?;
        let ask_focus = {
            let (id, events) = (id.clone(), events.clone());
            move || events.send(AppEvent::Core(Event::ToggleFocus(id.clone())))
        };
        let listeners = vec![
            on_click(&focus, ask_focus.clone()),
            on_click(&fullscreen, {
                let (tile, events) = (tile.clone(), events.clone());
                move || toggle_fullscreen(&tile, &events)
            }),
            on_click(&pip, {
                let (video, events) = (video.clone(), events.clone());
                move || toggle_pip(&video, &events)
            }),
            // A click on the tile itself focuses it too.
            Listener::new(tile.as_ref(), "click", move |_| ask_focus()),
        ];
        Ok(TileActions {
            buttons: [
                (focus, Text::TileFocus),
                (fullscreen, Text::TileFullscreen),
                (pip, Text::TilePictureInPicture),
            ],
            _listeners: listeners,
        })
    }

    /// Says on the focus button whether the tile is shown large.
    pub(crate) fn show_focused(&self, on: bool) {
        let pressed = if on { "true" } else { "false" };
        let _ = self.buttons[0].0.set_attribute("aria-pressed", pressed);
    }

    /// Names the buttons in `lang` (their label and tooltip).
    pub(crate) fn render(&self, lang: Lang) {
        for (button, text) in &self.buttons {
            let words = text.render(lang);
            let _ = button.set_attribute("aria-label", &words);
            let _ = button.set_attribute("title", &words);
        }
    }
}

/// Calls `then` on a click of `button`, the click kept from the tile under it.
fn on_click(button: &Element, then: impl Fn() + 'static) -> Listener {
    Listener::new(button.as_ref(), "click", move |ev| {
        ev.stop_propagation();
        then();
    })
}

/// Shows `tile` full screen, or leaves full screen when it is.
fn toggle_fullscreen(tile: &Element, events: &Events) {
    let Some(document) = tile.owner_document() else {
        return;
    };
    let result = match document.fullscreen_element() {
        Some(el) if el.is_same_node(Some(tile)) => {
            document.exit_fullscreen();
            Ok(())
        }
        _ => tile.request_fullscreen(),
    };
    if let Err(e) = result {
        events.send(AppEvent::Error(WebError::from_js("requestFullscreen", e)));
    }
}

/// Shows `video` in a picture-in-picture window, or closes the window when it does.
fn toggle_pip(video: &HtmlVideoElement, events: &Events) {
    let Some(document) = video.owner_document() else {
        return;
    };
    let current = js_sys::Reflect::get(&document, &"pictureInPictureElement".into());
    let shown = current.is_ok_and(|el| el == JsValue::from(video));
    let (target, method): (JsValue, &'static str) = match shown {
        true => (document.into(), "exitPictureInPicture"),
        false => (video.into(), "requestPictureInPicture"),
    };
    let call = call_promise(&target, method, &[]);
    let events = events.clone();
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(e) = async { await_promise(method, call?).await }.await {
            events.send(AppEvent::Error(e));
        }
    });
}
