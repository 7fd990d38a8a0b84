//! Connection quality from WebRTC statistics: the pure part (the web layer reads `getStats()`
//! into [`Sample`]s). Two samples a few seconds apart give the inbound bitrate and the packet
//! loss over that interval; with the round-trip time they grade the connection. What is not
//! known (no round-trip time yet, no packets over the interval, no earlier sample) is shown as
//! unknown, never counted as zero: a connection that is not up is never graded "good".

/// What one `getStats()` of a peer connection says, summed over its inbound RTP streams.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sample {
    /// When it was taken, ms (any monotonic clock).
    pub at_ms: f64,
    /// Round-trip time of the selected candidate pair, ms.
    pub rtt_ms: Option<f64>,
    /// Bytes received so far.
    pub bytes_received: u64,
    /// Packets received so far.
    pub packets_received: u64,
    /// Packets lost so far.
    pub packets_lost: u64,
    /// The received audio's total energy so far (`totalAudioEnergy`).
    pub audio_energy: f64,
    /// The received audio's duration so far, seconds (`totalSamplesDuration`).
    pub audio_seconds: f64,
    /// Audio packets received so far, and lost so far.
    pub audio_packets: u64,
    /// See `audio_packets`.
    pub audio_lost: u64,
    /// How the selected candidate pair gets through (`None`: no pair selected yet).
    pub path: Option<Path>,
    /// The received video's freezes so far (`freezeCount`) and their total length, seconds
    /// (`totalFreezesDuration`); `None` where the engine does not count them (Firefox).
    pub freezes: Option<u64>,
    /// See `freezes`.
    pub freeze_seconds: Option<f64>,
    /// The received video's frame rate now (`framesPerSecond`).
    pub fps: Option<f64>,
    /// The received video's height now (`frameHeight`).
    pub frame_height: Option<u32>,
    /// Video bytes received so far.
    pub video_bytes: u64,
}

/// The video received between two samples, for the tile's line (`i18n::Text::Received`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Received {
    /// Its height now.
    pub height: Option<u32>,
    /// Its frame rate now.
    pub fps: Option<f64>,
    /// Its bitrate over the interval, kbit/s (needs an earlier sample).
    pub kbps: Option<f64>,
}

/// The video received since `prev`.
pub fn received(prev: Option<&Sample>, now: &Sample) -> Received {
    let kbps = prev.filter(|p| now.at_ms > p.at_ms).map(|p| {
        let bytes = now.video_bytes.saturating_sub(p.video_bytes) as f64;
        bytes * 8.0 / (now.at_ms - p.at_ms)
    });
    Received {
        height: now.frame_height,
        fps: now.fps,
        kbps,
    }
}

impl Received {
    /// Its figures, e.g. `480p 30 fps 450 kb/s`; unknown ones are dashes.
    pub fn figures(&self) -> String {
        media_figures(self.height, self.fps, self.kbps)
    }
}

/// A video's height, frame rate and bitrate, e.g. `480p 30 fps 450 kb/s`; unknown figures
/// are dashes.
pub fn media_figures(height: Option<u32>, fps: Option<f64>, kbps: Option<f64>) -> String {
    let height = height.map_or("–".to_owned(), |h| format!("{h}p"));
    let fps = fps.map_or("–".to_owned(), |f| format!("{f:.0}"));
    let kbps = kbps.map_or("–".to_owned(), |k| format!("{k:.0}"));
    format!("{height} {fps} fps {kbps} kb/s")
}

/// How a connection's selected candidate pair gets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Host to host: no NAT in the way (or the same network).
    Direct,
    /// Through a NAT's mapping (a server- or peer-reflexive candidate on either side).
    Reflexive,
    /// Through a TURN server (a relayed candidate on either side).
    Relayed,
}

impl Path {
    /// The path of a pair with these candidate types (`host`, `srflx`, `prflx`, `relay`).
    pub fn of(local: &str, remote: &str) -> Option<Path> {
        let types = [local, remote];
        if types
            .iter()
            .any(|t| !matches!(*t, "host" | "srflx" | "prflx" | "relay"))
        {
            return None;
        }
        Some(if types.contains(&"relay") {
            Path::Relayed
        } else if types.contains(&"srflx") || types.contains(&"prflx") {
            Path::Reflexive
        } else {
            Path::Direct
        })
    }

    /// The path as a word (the tile's `data-path`).
    pub fn as_str(self) -> &'static str {
        match self {
            Path::Direct => "direct",
            Path::Reflexive => "reflexive",
            Path::Relayed => "relayed",
        }
    }
}

/// Audio level above which a peer counts as speaking.
pub const SPEAKING_LEVEL: f64 = 0.02;

/// Whether the peer spoke between two samples: the root-mean-square level of the audio
/// received meanwhile (from the energy and duration totals, so a short word between two
/// samples still counts) is above [`SPEAKING_LEVEL`].
pub fn speaking(prev: Option<&Sample>, now: &Sample) -> bool {
    let base = prev.copied().unwrap_or_default();
    let seconds = now.audio_seconds - base.audio_seconds;
    let energy = now.audio_energy - base.audio_energy;
    seconds > 0.0 && (energy / seconds).max(0.0).sqrt() > SPEAKING_LEVEL
}

/// The quietest level a microphone meter shows above zero, dB below full scale.
pub const METER_FLOOR_DB: f64 = 60.0;

/// A microphone meter's level, 0 to 1, for audio samples (-1 to 1): their root mean square in
/// dB, from [`METER_FLOOR_DB`] below full scale (0) to full scale (1).
pub fn mic_level(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let power = samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / samples.len() as f64;
    let db = 10.0 * power.max(1e-12).log10();
    ((db + METER_FLOOR_DB) / METER_FLOOR_DB).clamp(0.0, 1.0)
}

/// A simple grade for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grade {
    /// No round-trip time or no packets over the interval: nothing to grade.
    Unknown,
    /// RTT under 150 ms and loss under 2%.
    Good,
    /// RTT under 400 ms and loss under 8%.
    Fair,
    /// Worse.
    Poor,
}

impl Grade {
    /// The grade as a word (also the tile's `data-quality`).
    pub fn as_str(self) -> &'static str {
        match self {
            Grade::Unknown => "unknown",
            Grade::Good => "good",
            Grade::Fair => "fair",
            Grade::Poor => "poor",
        }
    }
}

/// The quality over the interval between two samples (`None`: not known).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    /// Round-trip time, ms.
    pub rtt_ms: Option<f64>,
    /// Inbound bitrate, kbit/s (needs an earlier sample).
    pub kbps: Option<f64>,
    /// Packets lost over the interval, percent of those expected (needs packets).
    pub loss_pct: Option<f64>,
    /// The grade.
    pub grade: Grade,
}

/// The quality since `prev` (or since the start of the connection without it).
pub fn quality(prev: Option<&Sample>, now: &Sample) -> Quality {
    let base = prev.copied().unwrap_or_default();
    let secs = ((now.at_ms - base.at_ms) / 1000.0).max(0.001);
    let bytes = now.bytes_received.saturating_sub(base.bytes_received);
    let received = now.packets_received.saturating_sub(base.packets_received);
    let lost = now.packets_lost.saturating_sub(base.packets_lost);
    let expected = received + lost;
    let loss_pct = (expected > 0).then(|| 100.0 * lost as f64 / expected as f64);
    let kbps = prev.map(|_| bytes as f64 * 8.0 / 1000.0 / secs);
    let grade = match (now.rtt_ms, loss_pct) {
        (Some(rtt), Some(loss)) if rtt < 150.0 && loss < 2.0 => Grade::Good,
        (Some(rtt), Some(loss)) if rtt < 400.0 && loss < 8.0 => Grade::Fair,
        (Some(_), Some(_)) => Grade::Poor,
        _ => Grade::Unknown,
    };
    Quality {
        rtt_ms: now.rtt_ms,
        kbps,
        loss_pct,
        grade,
    }
}

impl Quality {
    /// Its round trip and bitrate, e.g. `12 ms · 1.2 Mb/s`; unknown figures are dashes
    /// (`– ms · – kb/s`). The tile's line adds the grade and [`Quality::loss`] in words.
    pub fn figures(&self) -> String {
        let rate = match self.kbps {
            Some(k) if k >= 1000.0 => format!("{:.1} Mb/s", k / 1000.0),
            Some(k) => format!("{k:.0} kb/s"),
            None => "– kb/s".to_owned(),
        };
        let rtt = self
            .rtt_ms
            .map_or_else(|| "– ms".to_owned(), |r| format!("{r:.0} ms"));
        format!("{rtt} · {rate}")
    }

    /// Its loss, e.g. `0.5%` (`–%` when not known).
    pub fn loss(&self) -> String {
        self.loss_pct
            .map_or_else(|| "–%".to_owned(), |l| format!("{l:.1}%"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::{Lang, Text};

    fn line(q: Quality) -> String {
        Text::Quality(q).render(Lang::En)
    }

    fn sample(at_ms: f64, rtt: f64, bytes: u64, received: u64, lost: u64) -> Sample {
        Sample {
            at_ms,
            rtt_ms: Some(rtt),
            bytes_received: bytes,
            packets_received: received,
            packets_lost: lost,
            audio_energy: 0.0,
            audio_seconds: 0.0,
            ..Default::default()
        }
    }

    #[test]
    fn bitrate_and_loss_come_from_the_interval() {
        let a = sample(0.0, 20.0, 0, 0, 0);
        let b = sample(2000.0, 20.0, 250_000, 990, 10);
        let q = quality(Some(&a), &b);
        assert_eq!(q.kbps, Some(1000.0));
        assert!((q.loss_pct.unwrap() - 1.0).abs() < 1e-9);
        assert_eq!(q.grade, Grade::Good);
        assert_eq!(line(q), "good · 20 ms · 1.0 Mb/s · 1.0% loss");
    }

    #[test]
    fn the_received_line_says_size_rate_and_bitrate() {
        let a = Sample {
            at_ms: 0.0,
            video_bytes: 0,
            ..Default::default()
        };
        let b = Sample {
            at_ms: 2000.0,
            video_bytes: 100_000,
            frame_height: Some(360),
            fps: Some(29.6),
            ..Default::default()
        };
        assert_eq!(received(Some(&a), &b).figures(), "360p 30 fps 400 kb/s");
        assert_eq!(received(None, &a).figures(), "– – fps – kb/s");
    }

    #[test]
    fn speaking_means_audible_energy_over_the_interval() {
        let at = |energy, seconds| Sample {
            audio_energy: energy,
            audio_seconds: seconds,
            ..Default::default()
        };
        // RMS 0.1 over a second: speaking; RMS 0.01: silence; no audio: silence.
        assert!(speaking(Some(&at(0.0, 0.0)), &at(0.01, 1.0)));
        assert!(!speaking(Some(&at(0.0, 0.0)), &at(0.0001, 1.0)));
        assert!(!speaking(Some(&at(5.0, 3.0)), &at(5.0, 3.0)));
        // Only the interval counts, not what was said before.
        assert!(!speaking(Some(&at(9.0, 1.0)), &at(9.00001, 2.0)));
    }

    #[test]
    fn the_meter_shows_loudness_in_decibels() {
        assert_eq!(mic_level(&[]), 0.0);
        assert_eq!(mic_level(&[0.0; 64]), 0.0);
        // Full scale: 1; a tenth of it (-20 dB): two thirds; a thousandth (-60 dB): 0.
        assert!((mic_level(&[1.0, -1.0]) - 1.0).abs() < 1e-9);
        assert!((mic_level(&[0.1, -0.1]) - 2.0 / 3.0).abs() < 1e-6);
        assert!(mic_level(&[0.001, -0.001]).abs() < 1e-6);
        assert!(mic_level(&[0.3; 8]) > mic_level(&[0.03; 8]));
    }

    #[test]
    fn grades_follow_rtt_and_loss() {
        let a = sample(0.0, 0.0, 0, 0, 0);
        assert_eq!(
            quality(Some(&a), &sample(1000.0, 200.0, 1, 100, 0)).grade,
            Grade::Fair
        );
        assert_eq!(
            quality(Some(&a), &sample(1000.0, 20.0, 1, 95, 5)).grade,
            Grade::Fair
        );
        assert_eq!(
            quality(Some(&a), &sample(1000.0, 500.0, 1, 100, 0)).grade,
            Grade::Poor
        );
        assert_eq!(
            quality(Some(&a), &sample(1000.0, 20.0, 1, 80, 20)).grade,
            Grade::Poor
        );
        // Old losses do not count against a good interval.
        let lossy_past = sample(0.0, 20.0, 0, 1000, 500);
        assert_eq!(
            quality(Some(&lossy_past), &sample(1000.0, 20.0, 9, 2000, 500)).grade,
            Grade::Good
        );
        // Without a previous sample there is no rate yet.
        assert_eq!(quality(None, &sample(1000.0, 20.0, 5000, 10, 0)).kbps, None);
    }

    #[test]
    fn the_path_comes_from_the_candidate_types() {
        assert_eq!(Path::of("host", "host"), Some(Path::Direct));
        assert_eq!(Path::of("srflx", "host"), Some(Path::Reflexive));
        assert_eq!(Path::of("host", "prflx"), Some(Path::Reflexive));
        assert_eq!(Path::of("relay", "srflx"), Some(Path::Relayed));
        assert_eq!(Path::of("srflx", "relay"), Some(Path::Relayed));
        assert_eq!(Path::of("", "host"), None);
    }

    #[test]
    fn unknown_figures_are_shown_as_unknown_never_as_good() {
        // No round-trip time (never connected, or failing): unknown, not 0 ms and good.
        let no_rtt = Sample {
            rtt_ms: None,
            ..sample(1000.0, 0.0, 0, 0, 0)
        };
        let q = quality(Some(&sample(0.0, 0.0, 0, 0, 0)), &no_rtt);
        assert_eq!(q.grade, Grade::Unknown);
        assert_eq!(line(q), "unknown · – ms · 0 kb/s · –% loss");
        // A round-trip time but no packets over the interval: nothing flows, nothing to grade.
        let stalled = quality(
            Some(&sample(0.0, 20.0, 900, 50, 0)),
            &sample(1000.0, 20.0, 900, 50, 0),
        );
        assert_eq!(stalled.grade, Grade::Unknown);
        assert_eq!(stalled.loss_pct, None);
        // The first sample has no rate.
        assert_eq!(
            line(quality(None, &no_rtt)),
            "unknown · – ms · – kb/s · –% loss"
        );
    }
}
