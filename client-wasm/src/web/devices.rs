//! Camera, microphone and speaker choice: the pickers list the devices (enumerateDevices,
//! again on `devicechange`); a new camera or microphone replaces the track live on every peer
//! connection (replaceTrack: the call goes on without renegotiation), a new speaker plays
//! every peer's sound (`setSinkId`, where the browser has it).

use super::error::{WebError, await_promise, js};
use crate::core::MediaKind;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{
    MediaDeviceInfo, MediaDeviceKind, MediaStream, MediaStreamConstraints, MediaStreamTrack,
};

/// One device as a picker shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Its id for getUserMedia.
    pub id: String,
    /// Its name (empty before permission was granted).
    pub label: String,
}

/// The devices of each kind, in the browser's order.
#[derive(Debug, Clone, Default)]
pub struct Devices {
    /// The cameras.
    pub cameras: Vec<Device>,
    /// The microphones.
    pub mics: Vec<Device>,
    /// The speakers (none listed where the browser cannot choose one: no `setSinkId`).
    pub speakers: Vec<Device>,
}

/// Lists the devices.
pub async fn list() -> Result<Devices, WebError> {
    let window = web_sys::window().ok_or_else(|| WebError::new("window", "none"))?;
    let devices = window
        .navigator()
        .media_devices()
        .map_err(js("mediaDevices"))?;
    let all = await_promise(
        "enumerateDevices",
        devices
            .enumerate_devices()
            .map_err(js("enumerateDevices"))?,
    )
    .await?;
    let mut found = Devices::default();
    let sinks = can_choose_speaker();
    for info in js_sys::Array::from(&all).iter() {
        let Ok(info) = info.dyn_into::<MediaDeviceInfo>() else {
            continue;
        };
        let device = Device {
            id: info.device_id(),
            label: info.label(),
        };
        match info.kind() {
            MediaDeviceKind::Videoinput => found.cameras.push(device),
            MediaDeviceKind::Audioinput => found.mics.push(device),
            MediaDeviceKind::Audiooutput if sinks => found.speakers.push(device),
            _ => {}
        }
    }
    Ok(found)
}

/// Whether the browser can play a media element on a chosen speaker.
fn can_choose_speaker() -> bool {
    let Ok(element) = js_sys::Reflect::get(&js_sys::global(), &"HTMLMediaElement".into()) else {
        return false;
    };
    js_sys::Reflect::get(&element, &"prototype".into())
        .and_then(|p| js_sys::Reflect::has(&p, &"setSinkId".into()))
        .unwrap_or(false)
}

/// A track from the device `id` of `kind`.
pub async fn open(kind: MediaKind, id: &str) -> Result<MediaStreamTrack, WebError> {
    let window = web_sys::window().ok_or_else(|| WebError::new("window", "none"))?;
    let devices = window
        .navigator()
        .media_devices()
        .map_err(js("mediaDevices"))?;
    let exact = js_sys::Object::new();
    let device = js_sys::Object::new();
    js_sys::Reflect::set(&exact, &"exact".into(), &JsValue::from_str(id))
        .map_err(js("constraints"))?;
    js_sys::Reflect::set(&device, &"deviceId".into(), &exact).map_err(js("constraints"))?;
    let constraints = MediaStreamConstraints::new();
    match kind {
        MediaKind::Audio => constraints.set_audio(&device),
        MediaKind::Video => constraints.set_video(&device),
    }
    let promise = devices
        .get_user_media_with_constraints(&constraints)
        .map_err(js("getUserMedia"))?;
    let stream: MediaStream = await_promise("getUserMedia", promise)
        .await?
        .dyn_into()
        .map_err(js("getUserMedia"))?;
    super::media::tracks(&stream)
        .into_iter()
        .next()
        .ok_or_else(|| WebError::new("getUserMedia", "the device gave no track"))
}

/// The id of the device a track comes from.
pub fn device_of(track: &MediaStreamTrack) -> Option<String> {
    js_sys::Reflect::get(&track.get_settings(), &"deviceId".into())
        .ok()?
        .as_string()
}

/// The track kind's name in the DOM.
pub fn kind_name(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    }
}
