//! Camera and microphone choice: the pickers list the devices (enumerateDevices, again on
//! `devicechange`), and a new choice replaces the track live on every peer connection
//! (replaceTrack: the call goes on without renegotiation).

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

/// The cameras and microphones, in the browser's order.
pub async fn list() -> Result<(Vec<Device>, Vec<Device>), WebError> {
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
    let (mut cameras, mut mics) = (Vec::new(), Vec::new());
    for info in js_sys::Array::from(&all).iter() {
        let Ok(info) = info.dyn_into::<MediaDeviceInfo>() else {
            continue;
        };
        let device = Device {
            id: info.device_id(),
            label: info.label(),
        };
        match info.kind() {
            MediaDeviceKind::Videoinput => cameras.push(device),
            MediaDeviceKind::Audioinput => mics.push(device),
            _ => {}
        }
    }
    Ok((cameras, mics))
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
