//! Local recording with MediaRecorder: the local camera and microphone, plus the audio of every
//! remote peer when recording starts, into a WebM file offered as a download link.

use super::error::{WebError, js};
use super::listener::Listener;
use super::{AppEvent, Events};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use web_sys::{Blob, BlobEvent, MediaRecorder, MediaStream, MediaStreamTrack};

/// A recording in progress; its pieces are collected as the recorder hands them over.
pub struct Recording {
    recorder: MediaRecorder,
    chunks: Rc<RefCell<Vec<Blob>>>,
    _listeners: Vec<Listener>,
}

impl Recording {
    /// Starts recording `local`'s tracks and the `remote` audio tracks. Pieces arrive every
    /// second; `AppEvent::RecordingStopped` comes when the recorder has handed over the last.
    pub fn start(
        local: &MediaStream,
        remote_audio: &[MediaStreamTrack],
        events: &Events,
    ) -> Result<Recording, WebError> {
        let stream =
            MediaStream::new_with_tracks(&local.get_tracks()).map_err(js("MediaStream"))?;
        for track in remote_audio {
            stream.add_track(track);
        }
        let recorder =
            MediaRecorder::new_with_media_stream(&stream).map_err(js("MediaRecorder"))?;
        let chunks = Rc::new(RefCell::new(Vec::new()));
        let collected = chunks.clone();
        let data = Listener::new(recorder.as_ref(), "dataavailable", move |ev| {
            if let Some(blob) = ev.dyn_ref::<BlobEvent>().and_then(BlobEvent::data) {
                if blob.size() > 0.0 {
                    collected.borrow_mut().push(blob);
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
            _listeners: vec![data, stopped],
        })
    }

    /// Asks the recorder to stop (it then hands over its last piece and fires `stop`).
    pub fn stop(&self) -> Result<(), WebError> {
        self.recorder.stop().map_err(js("MediaRecorder.stop"))
    }

    /// The recording so far, as one WebM blob.
    pub fn blob(&self) -> Result<Blob, WebError> {
        let parts: js_sys::Array = self.chunks.borrow().iter().collect();
        let options = web_sys::BlobPropertyBag::new();
        options.set_type("video/webm");
        Blob::new_with_blob_sequence_and_options(&parts, &options).map_err(js("Blob"))
    }
}
