//! Prometheus metrics for the relay, kept by hand in atomics and rendered in the text exposition
//! format (version 0.0.4).
//!
//! Every series has a fixed slot decided at compile time: label values are closed sets (message
//! types, [`ErrorCode`]s, [`AuthFailure`]s, histogram buckets), so recording is an index into an
//! array plus one `Relaxed` atomic add — no lock, no allocation, no map lookup on the per-message
//! path. `Relaxed` is enough because each counter is independent and a scrape only needs every
//! value to be one that was current at some point; nothing synchronizes through them.
//!
//! Share one [`Metrics`] as `Arc<Metrics>`; gauges that the relay state already knows (rooms,
//! members, readiness) are not duplicated here but passed to [`Metrics::render`] as [`Gauges`].

use protocol::ErrorCode;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Label values of `relay_messages_relayed_total{type}`; the last one takes every other kind.
const RELAYED_KINDS: [&str; 5] = ["offer", "answer", "candidate", "message", "other"];

/// Upper bounds of the finite `relay_latency_seconds` buckets: in nanoseconds for comparing,
/// and as written in the `le` label. An implicit `+Inf` bucket follows.
const LATENCY_BUCKETS: [(u64, &str); 11] = [
    (10_000, "0.00001"),
    (25_000, "0.000025"),
    (50_000, "0.00005"),
    (100_000, "0.0001"),
    (250_000, "0.00025"),
    (500_000, "0.0005"),
    (1_000_000, "0.001"),
    (2_500_000, "0.0025"),
    (5_000_000, "0.005"),
    (10_000_000, "0.01"),
    (25_000_000, "0.025"),
];

/// Why a client failed authentication (`relay_auth_failures_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthFailure {
    /// The token is malformed or its signature does not verify.
    InvalidToken,
    /// The token was valid once but has expired.
    ExpiredToken,
    /// The token does not grant the requested room.
    RoomNotAllowed,
    /// The WebSocket handshake came from an origin that is not allowed.
    Origin,
    /// The client failed too often recently and was refused without checking.
    Throttled,
    /// The room password is wrong.
    BadPassword,
}

impl AuthFailure {
    /// Every variant, in label order.
    pub const ALL: [AuthFailure; 6] = [
        AuthFailure::InvalidToken,
        AuthFailure::ExpiredToken,
        AuthFailure::RoomNotAllowed,
        AuthFailure::Origin,
        AuthFailure::Throttled,
        AuthFailure::BadPassword,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::InvalidToken => "invalid-token",
            AuthFailure::ExpiredToken => "expired-token",
            AuthFailure::RoomNotAllowed => "room-not-allowed",
            AuthFailure::Origin => "origin",
            AuthFailure::Throttled => "throttled",
            AuthFailure::BadPassword => "bad-password",
        }
    }

    /// The slot in [`AuthFailure::ALL`] (exhaustive, like [`code_slot`]).
    fn slot(self) -> usize {
        match self {
            AuthFailure::InvalidToken => 0,
            AuthFailure::ExpiredToken => 1,
            AuthFailure::RoomNotAllowed => 2,
            AuthFailure::Origin => 3,
            AuthFailure::Throttled => 4,
            AuthFailure::BadPassword => 5,
        }
    }
}

/// Values that live in the relay state rather than in [`Metrics`], read at scrape time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Rooms that exist now (`relay_rooms`).
    pub rooms: usize,
    /// Clients in a room now (`relay_room_members`).
    pub members: usize,
    /// Whether the relay accepts new connections (`relay_ready`, 1 or 0).
    pub ready: bool,
    /// Sessions whose connection was lost, kept for resuming (`relay_detached_sessions`).
    pub detached: usize,
    /// Connections waiting for the rest of their request head (`relay_pending_heads`).
    pub pending_heads: usize,
}

/// The relay's counters and latency histogram. All methods take `&self` and never block.
#[derive(Debug, Default)]
pub struct Metrics {
    relayed: [AtomicU64; RELAYED_KINDS.len()],
    refused: [AtomicU64; ErrorCode::ALL.len()],
    slow_consumer_drops: AtomicU64,
    auth_failures: [AtomicU64; AuthFailure::ALL.len()],
    connections_opened: AtomicU64,
    connections_closed: AtomicU64,
    /// Observations per bucket, not cumulative (the last slot is `+Inf` only): one add per
    /// observation; [`Metrics::render`] accumulates. The count is their sum, so `_count` and
    /// the `+Inf` bucket always agree, even during concurrent observations.
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_sum_nanos: AtomicU64,
}

impl Metrics {
    /// All counters at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// A message of type `kind` was relayed (`offer`, `answer`, `candidate`, `message`; any
    /// other kind is counted as `other`).
    pub fn relayed(&self, kind: &'static str) {
        let slot = match kind {
            "offer" => 0,
            "answer" => 1,
            "candidate" => 2,
            "message" => 3,
            _ => 4,
        };
        self.relayed[slot].fetch_add(1, Relaxed);
    }

    /// A request was refused with `code` (join refusals included).
    pub fn refused(&self, code: ErrorCode) {
        self.refused[code.index()].fetch_add(1, Relaxed);
    }

    /// A connection was dropped because its outbound queue was full.
    pub fn slow_consumer_dropped(&self) {
        self.slow_consumer_drops.fetch_add(1, Relaxed);
    }

    /// A client failed authentication.
    pub fn auth_failure(&self, reason: AuthFailure) {
        self.auth_failures[reason.slot()].fetch_add(1, Relaxed);
    }

    /// A WebSocket connection was accepted.
    pub fn connection_opened(&self) {
        self.connections_opened.fetch_add(1, Relaxed);
    }

    /// A connection counted by [`Metrics::connection_opened`] ended.
    pub fn connection_closed(&self) {
        self.connections_closed.fetch_add(1, Relaxed);
    }

    /// Records the time from receiving a frame to its message being queued for its target.
    pub fn observe_relay_latency(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let slot = LATENCY_BUCKETS
            .iter()
            .position(|&(bound, _)| nanos <= bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency_buckets[slot].fetch_add(1, Relaxed);
        self.latency_sum_nanos.fetch_add(nanos, Relaxed);
    }

    /// The full text exposition: every family with `# HELP` and `# TYPE`, including `gauges`.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = Exposition(String::with_capacity(4096));

        out.family(
            "relay_messages_relayed_total",
            "counter",
            "Signaling messages relayed to their target, by message type.",
        );
        for (kind, n) in RELAYED_KINDS.iter().zip(&self.relayed) {
            out.sample(
                "relay_messages_relayed_total",
                ("type", kind),
                n.load(Relaxed),
            );
        }

        out.family(
            "relay_messages_refused_total",
            "counter",
            "Client requests refused with an error or join-error, by error code.",
        );
        for (code, n) in ErrorCode::ALL.iter().zip(&self.refused) {
            let label = ("reason", code.as_str());
            out.sample("relay_messages_refused_total", label, n.load(Relaxed));
        }

        out.family(
            "relay_slow_consumer_drops_total",
            "counter",
            "Connections dropped because their outbound queue was full.",
        );
        out.value(
            "relay_slow_consumer_drops_total",
            self.slow_consumer_drops.load(Relaxed),
        );

        out.family(
            "relay_auth_failures_total",
            "counter",
            "Failed authentications, by reason.",
        );
        for (reason, n) in AuthFailure::ALL.iter().zip(&self.auth_failures) {
            let label = ("reason", reason.as_str());
            out.sample("relay_auth_failures_total", label, n.load(Relaxed));
        }

        // Closed is read before opened: a connection that opens and closes between the two
        // loads then counts as open for this scrape rather than driving the gauge below zero.
        let closed = self.connections_closed.load(Relaxed);
        let opened = self.connections_opened.load(Relaxed);
        out.family(
            "relay_connections_total",
            "counter",
            "WebSocket connections accepted.",
        );
        out.value("relay_connections_total", opened);
        out.family(
            "relay_connections",
            "gauge",
            "WebSocket connections open now.",
        );
        out.value("relay_connections", opened.saturating_sub(closed));

        out.family(
            "relay_latency_seconds",
            "histogram",
            "Time from receiving a frame to its message being queued for its target.",
        );
        let mut cumulative = 0;
        for (i, n) in self.latency_buckets.iter().enumerate() {
            cumulative += n.load(Relaxed);
            let le = LATENCY_BUCKETS.get(i).map_or("+Inf", |&(_, le)| le);
            out.sample("relay_latency_seconds_bucket", ("le", le), cumulative);
        }
        let sum_secs = self.latency_sum_nanos.load(Relaxed) as f64 / 1e9;
        let _ = writeln!(out.0, "relay_latency_seconds_sum {sum_secs}");
        out.value("relay_latency_seconds_count", cumulative);

        out.family("relay_rooms", "gauge", "Rooms that exist now.");
        out.value("relay_rooms", gauges.rooms as u64);
        out.family("relay_room_members", "gauge", "Clients in a room now.");
        out.value("relay_room_members", gauges.members as u64);
        out.family(
            "relay_detached_sessions",
            "gauge",
            "Sessions whose connection was lost, kept for resuming (each holds its connection slot).",
        );
        out.value("relay_detached_sessions", gauges.detached as u64);
        out.family(
            "relay_pending_heads",
            "gauge",
            "Connections waiting for the rest of their request head.",
        );
        out.value("relay_pending_heads", gauges.pending_heads as u64);
        out.family(
            "relay_ready",
            "gauge",
            "Whether the relay accepts new connections (1) or is shutting down (0).",
        );
        out.value("relay_ready", u64::from(gauges.ready));

        out.0
    }
}

/// Text exposition being written. Writing to a `String` cannot fail, hence the ignored results.
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// A sample with one label. Label values are fixed strings with nothing to escape.
    fn sample(&mut self, name: &str, (label, value): (&str, &str), n: u64) {
        let _ = writeln!(self.0, "{name}{{{label}=\"{value}\"}} {n}");
    }

    fn value(&mut self, name: &str, n: u64) {
        let _ = writeln!(self.0, "{name} {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};
    use std::sync::Arc;

    fn lines(text: &str) -> HashSet<&str> {
        text.lines().collect()
    }

    /// The value of the sample written exactly as `series` (name and labels).
    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
            .parse()
            .unwrap()
    }

    #[test]
    fn counters_render_after_increments() {
        let m = Metrics::new();
        m.relayed("offer");
        m.relayed("offer");
        m.relayed("candidate");
        m.relayed("leave");
        m.relayed("rooms");
        m.refused(ErrorCode::RoomFull);
        m.refused(ErrorCode::TargetNotInRoom);
        m.refused(ErrorCode::TargetNotInRoom);
        m.slow_consumer_dropped();
        m.auth_failure(AuthFailure::BadPassword);
        m.auth_failure(AuthFailure::Origin);
        m.auth_failure(AuthFailure::Origin);
        m.connection_opened();
        m.connection_opened();
        m.connection_opened();
        m.connection_closed();
        let text = m.render(&Gauges {
            rooms: 4,
            members: 7,
            ready: true,
            detached: 2,
            pending_heads: 3,
        });
        let got = lines(&text);
        for want in [
            r#"relay_messages_relayed_total{type="offer"} 2"#,
            r#"relay_messages_relayed_total{type="answer"} 0"#,
            r#"relay_messages_relayed_total{type="candidate"} 1"#,
            r#"relay_messages_relayed_total{type="message"} 0"#,
            r#"relay_messages_relayed_total{type="other"} 2"#,
            r#"relay_messages_refused_total{reason="room-full"} 1"#,
            r#"relay_messages_refused_total{reason="target-not-in-room"} 2"#,
            r#"relay_messages_refused_total{reason="room-locked"} 0"#,
            "relay_slow_consumer_drops_total 1",
            r#"relay_auth_failures_total{reason="bad-password"} 1"#,
            r#"relay_auth_failures_total{reason="origin"} 2"#,
            r#"relay_auth_failures_total{reason="invalid-token"} 0"#,
            "relay_connections_total 3",
            "relay_connections 2",
            "relay_rooms 4",
            "relay_room_members 7",
            "relay_ready 1",
            "relay_detached_sessions 2",
            "relay_pending_heads 3",
        ] {
            assert!(got.contains(want), "missing {want:?} in\n{text}");
        }
        let not_ready = m.render(&Gauges::default());
        assert!(lines(&not_ready).contains("relay_ready 0"));
    }

    #[test]
    fn every_label_value_is_always_present() {
        let text = Metrics::new().render(&Gauges::default());
        for kind in RELAYED_KINDS {
            assert_eq!(
                value(
                    &text,
                    &format!("relay_messages_relayed_total{{type=\"{kind}\"}}")
                ),
                0.0
            );
        }
        for code in ErrorCode::ALL {
            let series = format!(
                "relay_messages_refused_total{{reason=\"{}\"}}",
                code.as_str()
            );
            assert_eq!(value(&text, &series), 0.0);
        }
        for reason in AuthFailure::ALL {
            let series = format!(
                "relay_auth_failures_total{{reason=\"{}\"}}",
                reason.as_str()
            );
            assert_eq!(value(&text, &series), 0.0);
        }
    }

    #[test]
    fn slots_match_label_tables() {
        for (i, reason) in AuthFailure::ALL.into_iter().enumerate() {
            assert_eq!(reason.slot(), i, "{reason:?}");
        }
        // Each refusal lands on its own label.
        for code in ErrorCode::ALL {
            let m = Metrics::new();
            m.refused(code);
            let text = m.render(&Gauges::default());
            let series = format!(
                "relay_messages_refused_total{{reason=\"{}\"}}",
                code.as_str()
            );
            assert_eq!(value(&text, &series), 1.0, "{code:?}");
            let total: f64 = ErrorCode::ALL
                .iter()
                .map(|c| {
                    let s = format!("relay_messages_refused_total{{reason=\"{}\"}}", c.as_str());
                    value(&text, &s)
                })
                .sum();
            assert_eq!(total, 1.0);
        }
    }

    #[test]
    fn histogram_is_cumulative_and_counts_every_observation() {
        let m = Metrics::new();
        let observations = [
            Duration::ZERO,
            Duration::from_nanos(10_000), // exactly on a bound: counted in that bucket (le)
            Duration::from_nanos(10_001),
            Duration::from_micros(30),
            Duration::from_micros(700),
            Duration::from_millis(3),
            Duration::from_millis(25),
            Duration::from_millis(26),     // above every finite bound
            Duration::from_secs(u64::MAX), // saturates instead of wrapping
        ];
        for d in observations {
            m.observe_relay_latency(d);
        }
        let text = m.render(&Gauges::default());
        let bucket = |le: &str| {
            value(
                &text,
                &format!("relay_latency_seconds_bucket{{le=\"{le}\"}}"),
            )
        };

        let expected = [
            ("0.00001", 2.0),
            ("0.000025", 3.0),
            ("0.00005", 4.0),
            ("0.0001", 4.0),
            ("0.00025", 4.0),
            ("0.0005", 4.0),
            ("0.001", 5.0),
            ("0.0025", 5.0),
            ("0.005", 6.0),
            ("0.01", 6.0),
            ("0.025", 7.0),
            ("+Inf", 9.0),
        ];
        let mut previous = 0.0;
        for (le, want) in expected {
            let got = bucket(le);
            assert_eq!(got, want, "le={le}");
            assert!(got >= previous, "not cumulative at le={le}");
            previous = got;
        }
        let count = value(&text, "relay_latency_seconds_count");
        assert_eq!(count, observations.len() as f64);
        assert_eq!(bucket("+Inf"), count);
        // The bucket lines come in increasing `le` order, `+Inf` last.
        let order: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("relay_latency_seconds_bucket{le=\""))
            .map(|l| l.split('"').next().unwrap())
            .collect();
        let want_order: Vec<&str> = expected.iter().map(|&(le, _)| le).collect();
        assert_eq!(order, want_order);
    }

    #[test]
    fn histogram_sum_is_in_seconds() {
        let m = Metrics::new();
        assert!(lines(&m.render(&Gauges::default())).contains("relay_latency_seconds_sum 0"));
        m.observe_relay_latency(Duration::from_micros(250));
        m.observe_relay_latency(Duration::from_micros(1_750));
        let text = m.render(&Gauges::default());
        let sum = value(&text, "relay_latency_seconds_sum");
        assert!((sum - 0.002).abs() < 1e-12, "sum {sum}");
    }

    #[test]
    fn connections_gauge_never_goes_negative() {
        let m = Metrics::new();
        m.connection_closed(); // a bug elsewhere must not make the gauge wrap
        let text = m.render(&Gauges::default());
        assert!(lines(&text).contains("relay_connections 0"));
        assert!(lines(&text).contains("relay_connections_total 0"));
    }

    #[test]
    fn concurrent_updates_are_all_counted() {
        let m = Arc::new(Metrics::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        m.relayed("answer");
                        m.observe_relay_latency(Duration::from_micros(i % 40));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = m.render(&Gauges::default());
        assert_eq!(
            value(&text, r#"relay_messages_relayed_total{type="answer"}"#),
            4000.0
        );
        assert_eq!(value(&text, "relay_latency_seconds_count"), 4000.0);
        assert_eq!(
            value(&text, r#"relay_latency_seconds_bucket{le="+Inf"}"#),
            4000.0
        );
    }

    /// A metric or label name: `[a-zA-Z_:][a-zA-Z0-9_:]*` (no colons in label names).
    fn is_name(s: &str, colons: bool) -> bool {
        let ok = |c: char, first: bool| {
            c.is_ascii_alphabetic()
                || c == '_'
                || (colons && c == ':')
                || (!first && c.is_ascii_digit())
        };
        let mut chars = s.chars();
        chars.next().is_some_and(|c| ok(c, true)) && chars.all(|c| ok(c, false))
    }

    /// Parses `name{k="v",...} value` or `name value`; returns the name and labels.
    fn parse_sample(line: &str) -> Option<(&str, Vec<(&str, &str)>)> {
        let (series, value) = line.rsplit_once(' ')?;
        value.parse::<f64>().ok()?;
        let (name, labels) = match series.split_once('{') {
            None => (series, Vec::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}')?;
                let mut labels = Vec::new();
                for pair in body.split(',') {
                    let (k, v) = pair.split_once('=')?;
                    let v = v.strip_prefix('"')?.strip_suffix('"')?;
                    if !is_name(k, false) || v.contains(['"', '\\', '\n']) {
                        return None;
                    }
                    labels.push((k, v));
                }
                (name, labels)
            }
        };
        is_name(name, true).then_some((name, labels))
    }

    #[test]
    fn exposition_parses_and_every_family_has_help_and_type() {
        let m = Metrics::new();
        m.relayed("offer");
        m.observe_relay_latency(Duration::from_micros(5));
        let text = m.render(&Gauges {
            rooms: 1,
            members: 2,
            ready: true,
            detached: 0,
            pending_heads: 0,
        });
        assert!(text.ends_with('\n'));

        let mut help: HashMap<&str, usize> = HashMap::new();
        let mut types: HashMap<&str, &str> = HashMap::new();
        let mut sampled: HashSet<&str> = HashSet::new();
        let mut series: HashSet<String> = HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, doc) = rest.split_once(' ').expect("HELP has text");
                assert!(!doc.is_empty() && is_name(name, true), "{line}");
                *help.entry(name).or_default() += 1;
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE has a kind");
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                // TYPE comes before the family's first sample.
                assert!(!sampled.contains(name), "TYPE after samples: {line}");
                assert!(types.insert(name, kind).is_none(), "duplicate TYPE: {line}");
            } else {
                assert!(
                    !line.starts_with('#') && !line.is_empty(),
                    "stray line {line:?}"
                );
                let (name, _) = parse_sample(line).unwrap_or_else(|| panic!("bad line {line:?}"));
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| {
                        let base = name.strip_suffix(suffix)?;
                        (types.get(base) == Some(&"histogram")).then_some(base)
                    })
                    .unwrap_or(name);
                assert!(types.contains_key(family), "sample before TYPE: {line}");
                sampled.insert(family);
                let key = line.rsplit_once(' ').unwrap().0.to_owned();
                assert!(series.insert(key), "duplicate series: {line}");
            }
        }
        for family in types.keys() {
            assert_eq!(help.get(family), Some(&1), "HELP for {family}");
            assert!(sampled.contains(family), "no samples for {family}");
        }
        assert_eq!(help.len(), types.len());
        let mut families: Vec<_> = types.into_iter().collect();
        families.sort();
        assert_eq!(
            families,
            vec![
                ("relay_auth_failures_total", "counter"),
                ("relay_connections", "gauge"),
                ("relay_connections_total", "counter"),
                ("relay_detached_sessions", "gauge"),
                ("relay_latency_seconds", "histogram"),
                ("relay_messages_refused_total", "counter"),
                ("relay_messages_relayed_total", "counter"),
                ("relay_pending_heads", "gauge"),
                ("relay_ready", "gauge"),
                ("relay_room_members", "gauge"),
                ("relay_rooms", "gauge"),
                ("relay_slow_consumer_drops_total", "counter"),
            ]
        );
    }
}
