//! Local recording with MediaRecorder: the local camera and microphone, plus the audio of every
//! remote peer when recording starts, into a WebM file offered as a download link.
//!
//! The audio tracks are mixed into one (Web Audio) before they reach the recorder: recorders
//! take one audio track (Chromium records only the first, Firefox refuses more).

use super::error::{WebError, js};
use super::listener::Listener;
use super::{AppEvent, Events};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use web_sys::{
    AudioContext, Blob, BlobEvent, MediaRecorder, MediaStream, MediaStreamTrack, RecordingState,
};

/// A recording in progress; its pieces are collected as the recorder hands them over.
pub struct Recording {
    recorder: MediaRecorder,
    chunks: Rc<RefCell<Vec<Blob>>>,
    /// Mixes the audio tracks into the one the recorder takes (closed with the recording).
    mixer: AudioContext,
    _listeners: Vec<Listener>,
}

impl Drop for Recording {
    fn drop(&mut self) {
        let _ = self.mixer.close();
    }
}

/// The local video tracks and one audio track mixing `audio`, and the context doing the mix.
fn mixed(
    local: &MediaStream,
    audio: &[MediaStreamTrack],
) -> Result<(MediaStream, AudioContext), WebError> {
    let mixer = AudioContext::new().map_err(js("AudioContext"))?;
    // A context made without a recent user gesture starts suspended and would record silence;
    // recording starts from a click, so resuming is allowed.
    let resumed = mixer.resume().map_err(js("AudioContext.resume"))?;
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(e) = super::error::await_promise("AudioContext.resume", resumed).await {
            web_sys::console::warn_1(&wasm_bindgen::JsValue::from_str(&e.to_string()));
        }
    });
    let out = mixer
        .create_media_stream_destination()
        .map_err(js("createMediaStreamDestination"))?;
    for track in audio {
        let tracks: js_sys::Array = std::iter::once(track.clone()).collect();
        let one = MediaStream::new_with_tracks(&tracks).map_err(js("MediaStream"))?;
        let source = mixer
            .create_media_stream_source(&one)
            .map_err(js("createMediaStreamSource"))?;
        source
            .connect_with_audio_node(&out)
            .map_err(js("AudioNode.connect"))?;
    }
    let stream = MediaStream::new().map_err(js("MediaStream"))?;
    for track in local.get_video_tracks().iter() {
        stream.add_track(&track.unchecked_into());
    }
    for track in out.stream().get_audio_tracks().iter() {
        stream.add_track(&track.unchecked_into());
    }
    Ok((stream, mixer))
}

impl Recording {
    /// Starts recording `local`'s tracks and the `remote` audio tracks. Pieces arrive every
    /// second, each reported as `AppEvent::RecordingProgress` with the bytes recorded so far;
    /// `AppEvent::RecordingStopped` comes when the recorder has handed over the last.
    pub fn start(
        local: &MediaStream,
        remote_audio: &[MediaStreamTrack],
        events: &Events,
    ) -> Result<Recording, WebError> {
        let audio: Vec<MediaStreamTrack> = local
            .get_audio_tracks()
            .iter()
            .map(JsCast::unchecked_into)
            .chain(remote_audio.iter().cloned())
            .collect();
        let (stream, mixer) = mixed(local, &audio)?;
        let recorder =
            MediaRecorder::new_with_media_stream(&stream).map_err(js("MediaRecorder"))?;
        let chunks = Rc::new(RefCell::new(Vec::new()));
        let collected = chunks.clone();
        let progress = events.clone();
        let data = Listener::new(recorder.as_ref(), "dataavailable", move |ev| {
            if let Some(blob) = ev.dyn_ref::<BlobEvent>().and_then(BlobEvent::data) {
                if blob.size() > 0.0 {
                    let mut chunks = collected.borrow_mut();
                    chunks.push(blob);
                    let bytes = chunks.iter().map(Blob::size).sum();
                    progress.send(AppEvent::RecordingProgress(bytes));
                }
            }
        });
        let events = events.clone();
        let stopped = Listener::new(recorder.as_ref(), "stop", move |_| {
            events.send(AppEvent::RecordingStopped);
        });
        recorder
            .start_with_time_slice(1000)
            .map_err(js("MediaRecorder.start"))?;
        Ok(Recording {
            recorder,
            chunks,
            mixer,
            _listeners: vec![data, stopped],
        })
    }

    /// Asks the recorder to stop (it then hands over its last piece and fires `stop`).
    pub fn stop(&self) -> Result<(), WebError> {
        self.recorder.stop().map_err(js("MediaRecorder.stop"))
    }

    /// Whether the recorder is still recording (not once `stop` was asked).
    pub fn is_recording(&self) -> bool {
        self.recorder.state() == RecordingState::Recording
    }

    /// The recording so far, as one WebM blob.
    pub fn blob(&self) -> Result<Blob, WebError> {
        let parts: js_sys::Array = self.chunks.borrow().iter().collect();
        let options = web_sys::BlobPropertyBag::new();
        options.set_type("video/webm");
        Blob::new_with_blob_sequence_and_options(&parts, &options).map_err(js("Blob"))
    }
}
