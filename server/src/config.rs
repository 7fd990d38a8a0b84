//! The relay's configuration: every limit and timer, settable by flag or environment variable
//! (`server --help` lists them), with production defaults.

use clap::Parser;
use std::net::SocketAddr;

use std::time::Duration;

/// Hardened WebSocket signaling relay for WebRTC calls.
///
/// Every option can also be set by the environment variable named in brackets.
#[derive(Debug, Clone, Parser)]
#[command(name = "server", version, about)]
pub struct Config {
    /// Address to listen on. `PORT=N` alone means 0.0.0.0:N.
    #[arg(long, env = "SIGNAL_ADDR", default_value = "0.0.0.0:8080")]
    pub addr: SocketAddr,

    /// Largest WebSocket message (and frame) accepted, in bytes; a bigger one closes the
    /// connection with code 1009.
    #[arg(long, env = "SIGNAL_MAX_MESSAGE_SIZE", default_value_t = 64 * 1024)]
    pub max_message_size: usize,

    /// Most members in one room.
    #[arg(long, env = "SIGNAL_MAX_MEMBERS", default_value_t = 10)]
    pub max_members: usize,

    /// Most rooms at once.
    #[arg(long, env = "SIGNAL_MAX_ROOMS", default_value_t = 10_000)]
    pub max_rooms: usize,

    /// Most WebSocket connections at once; more are answered 503.
    #[arg(long, env = "SIGNAL_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Messages per second a connection may send, sustained (0: no limit).
    #[arg(long, env = "SIGNAL_RATE_LIMIT", default_value_t = 50)]
    pub rate_limit: u32,

    /// Messages a connection may send in a burst above the sustained rate. A client that goes
    /// on sending this many more refused messages is disconnected (code 1008).
    #[arg(long, env = "SIGNAL_RATE_BURST", default_value_t = 200)]
    pub rate_burst: u32,

    /// Messages queued for one connection before it counts as a slow consumer and is dropped.
    #[arg(long, env = "SIGNAL_QUEUE_SIZE", default_value_t = 256)]
    pub queue_size: usize,

    /// Interval between WebSocket pings (e.g. 15s, 500ms).
    #[arg(long, env = "SIGNAL_PING_INTERVAL", default_value = "15s", value_parser = parse_duration)]
    pub ping_interval: Duration,

    /// A client silent for this long (no frame, not even a pong) is dropped.
    #[arg(long, env = "SIGNAL_IDLE_TIMEOUT", default_value = "40s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// A write to a client that takes longer than this drops the client.
    #[arg(long, env = "SIGNAL_WRITE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub write_timeout: Duration,

    /// How long graceful shutdown waits for connections to close.
    #[arg(long, env = "SIGNAL_SHUTDOWN_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Runtime worker threads (default: one per CPU core). 1 runs everything on one thread,
    /// which spends the least CPU per message; more threads add capacity.
    #[arg(long, env = "SIGNAL_WORKERS")]
    pub workers: Option<usize>,

    /// Directory of the built browser app (Trunk's `dist/`) to serve on the same port; `/`
    /// then serves its index.html instead of the plain-text banner.
    #[arg(long, env = "SIGNAL_STATIC_DIR")]
    pub static_dir: Option<std::path::PathBuf>,

    /// Whether clients may list rooms with the `rooms` message.
    #[arg(long, env = "SIGNAL_ROOM_LIST", default_value_t = true, action = clap::ArgAction::Set)]
    pub room_list: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config::parse_from(["server"])
    }
}

/// Parses `500ms`, `15s`, `2m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "invalid duration unit in {s:?} (use ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("invalid duration {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn defaults_are_production_defaults() {
        let c = Config::default();
        assert_eq!(c.max_message_size, 65536);
        assert_eq!(c.max_members, 10);
        assert!(c.idle_timeout > c.ping_interval * 2);
    }
}
