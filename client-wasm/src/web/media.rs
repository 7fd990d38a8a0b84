//! Local media: camera and microphone through getUserMedia, with a message for people when
//! permission is denied or no device exists (the call then goes on receive-only).

use super::error::{WebError, await_promise, js};
use crate::i18n::{MediaFailure, Text};
use wasm_bindgen::JsCast;
use web_sys::{MediaStream, MediaStreamConstraints, MediaStreamTrack};

/// Asks for camera and microphone; falls back to the microphone alone, then the camera alone.
pub async fn acquire() -> Result<MediaStream, WebError> {
    let mut first_error = None;
    for (audio, video) in [(true, true), (true, false), (false, true)] {
        match get_user_media(audio, video).await {
            Ok(stream) => return Ok(stream),
            // Permission refusals apply to every combination: stop asking.
            Err(e) if e.name.as_deref() == Some("NotAllowedError") => return Err(e),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| WebError::new("getUserMedia", "no media")))
}

async fn get_user_media(audio: bool, video: bool) -> Result<MediaStream, WebError> {
    let window = web_sys::window().ok_or_else(|| WebError::new("window", "no window"))?;
    let devices = window
        .navigator()
        .media_devices()
        .map_err(js("navigator.mediaDevices"))?;
    let constraints = MediaStreamConstraints::new();
    constraints.set_audio_bool(audio);
    constraints.set_video_bool(video);
    let promise = devices
        .get_user_media_with_constraints(&constraints)
        .map_err(js("getUserMedia"))?;
    let stream = await_promise("getUserMedia", promise).await?;
    stream.dyn_into::<MediaStream>().map_err(js("getUserMedia"))
}

/// What to tell people when media could not be had.
pub fn explain(e: &WebError) -> Text {
    if e.message.contains("media=none") {
        return Text::ReceiveOnly;
    }
    let why = match e.name.as_deref() {
        Some("NotAllowedError") | Some("SecurityError") => MediaFailure::Denied,
        Some("NotFoundError") | Some("OverconstrainedError") => MediaFailure::NotFound,
        Some("NotReadableError") => MediaFailure::InUse,
        _ => MediaFailure::Unavailable,
    };
    Text::MediaFailed(why, e.to_string())
}

/// The stream's tracks.
pub fn tracks(stream: &MediaStream) -> Vec<MediaStreamTrack> {
    stream
        .get_tracks()
        .iter()
        .filter_map(|t| t.dyn_into::<MediaStreamTrack>().ok())
        .collect()
}
