//! Connection quality from WebRTC statistics: the pure part (the web layer reads `getStats()`
//! into [`Sample`]s). Two samples a few seconds apart give the inbound bitrate and the packet
//! loss over that interval; with the round-trip time they grade the connection.

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

/// A simple grade for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grade {
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
            Grade::Good => "good",
            Grade::Fair => "fair",
            Grade::Poor => "poor",
        }
    }
}

/// The quality over the interval between two samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    /// Round-trip time, ms.
    pub rtt_ms: Option<f64>,
    /// Inbound bitrate, kbit/s.
    pub kbps: f64,
    /// Packets lost over the interval, percent of those expected.
    pub loss_pct: f64,
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
    let loss_pct = if expected == 0 {
        0.0
    } else {
        100.0 * lost as f64 / expected as f64
    };
    let kbps = if prev.is_some() {
        bytes as f64 * 8.0 / 1000.0 / secs
    } else {
        0.0
    };
    let rtt = now.rtt_ms.unwrap_or(0.0);
    let grade = if rtt < 150.0 && loss_pct < 2.0 {
        Grade::Good
    } else if rtt < 400.0 && loss_pct < 8.0 {
        Grade::Fair
    } else {
        Grade::Poor
    };
    Quality {
        rtt_ms: now.rtt_ms,
        kbps,
        loss_pct,
        grade,
    }
}

impl Quality {
    /// The line shown on a tile, e.g. `good · 12 ms · 1.2 Mb/s · 0.0% loss`.
    pub fn describe(&self) -> String {
        let rate = if self.kbps >= 1000.0 {
            format!("{:.1} Mb/s", self.kbps / 1000.0)
        } else {
            format!("{:.0} kb/s", self.kbps)
        };
        let rtt = self
            .rtt_ms
            .map_or_else(|| "– ms".to_owned(), |r| format!("{r:.0} ms"));
        format!(
            "{} · {rtt} · {rate} · {:.1}% loss",
            self.grade.as_str(),
            self.loss_pct
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_ms: f64, rtt: f64, bytes: u64, received: u64, lost: u64) -> Sample {
        Sample {
            at_ms,
            rtt_ms: Some(rtt),
            bytes_received: bytes,
            packets_received: received,
            packets_lost: lost,
            audio_energy: 0.0,
            audio_seconds: 0.0,
        }
    }

    #[test]
    fn bitrate_and_loss_come_from_the_interval() {
        let a = sample(0.0, 20.0, 0, 0, 0);
        let b = sample(2000.0, 20.0, 250_000, 990, 10);
        let q = quality(Some(&a), &b);
        assert_eq!(q.kbps, 1000.0);
        assert!((q.loss_pct - 1.0).abs() < 1e-9);
        assert_eq!(q.grade, Grade::Good);
        assert_eq!(q.describe(), "good · 20 ms · 1.0 Mb/s · 1.0% loss");
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
        assert_eq!(quality(None, &sample(1000.0, 20.0, 5000, 10, 0)).kbps, 0.0);
    }
}
