//! The microphone level meter of the pre-join screen: an `AnalyserNode` on the local stream's
//! audio, read ten times a second into a `<meter>` (its value, and `data-level` for tests).
//! Dropping it stops the timer and closes its audio context.

use super::error::{WebError, js};
use super::listener::Listener;
use web_sys::{AudioContext, AudioContextState, HtmlMeterElement, MediaStream};

/// How often the meter is read, ms.
const READ_EVERY_MS: u32 = 100;

/// A running meter; see the module doc.
pub struct LevelMeter {
    context: AudioContext,
    _timer: gloo_timers::callback::Interval,
    /// A page without a user gesture yet may start its audio context suspended: the first
    /// click or key press resumes it.
    _resume: Vec<Listener>,
}

impl LevelMeter {
    /// Starts showing the level of `stream`'s audio in `meter`.
    pub fn start(stream: &MediaStream, meter: &HtmlMeterElement) -> Result<LevelMeter, WebError> {
        let context = AudioContext::new().map_err(js("AudioContext"))?;
        let analyser = context.create_analyser().map_err(js("createAnalyser"))?;
        analyser.set_fft_size(1024);
        let source = context
            .create_media_stream_source(stream)
            .map_err(js("createMediaStreamSource"))?;
        source
            .connect_with_audio_node(&analyser)
            .map_err(js("AudioNode.connect"))?;
        let meter = meter.clone();
        let mut samples = vec![0.0f32; analyser.fft_size() as usize];
        let timer = gloo_timers::callback::Interval::new(READ_EVERY_MS, move || {
            analyser.get_float_time_domain_data(&mut samples);
            let level = crate::stats::mic_level(&samples);
            meter.set_value(level);
            let _ = meter.set_attribute("data-level", &format!("{level:.2}"));
        });
        let mut resume = Vec::new();
        if context.state() == AudioContextState::Suspended {
            if let Some(document) = web_sys::window().and_then(|w| w.document()) {
                for kind in ["pointerdown", "keydown"] {
                    let context = context.clone();
                    resume.push(Listener::new(document.as_ref(), kind, move |_| {
                        let _ = context.resume();
                    }));
                }
            }
        }
        Ok(LevelMeter {
            context,
            _timer: timer,
            _resume: resume,
        })
    }
}

impl Drop for LevelMeter {
    fn drop(&mut self) {
        let _ = self.context.close();
    }
}
