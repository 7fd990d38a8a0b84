//! The relay's configuration: every limit and timer, settable by flag, environment variable or
//! TOML file (`server --help` lists them), with production defaults. Precedence: flag, then
//! environment, then file, then default.

use clap::{CommandFactory, Parser};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Hardened WebSocket signaling relay for WebRTC calls.
///
/// Every option can also be set by the environment variable named in brackets, or as a key of
/// the TOML file given with --config (the flag's name without dashes: `max-members = 4`).
/// Subcommand: `server token --user U [--room R] [--ttl 1h]` prints a test token.
#[derive(Debug, Clone, Parser)]
#[command(name = "server", version, about, args_override_self = true)]
pub struct Config {
    /// TOML configuration file; its keys are the long flag names (e.g. `addr = "0.0.0.0:443"`).
    #[arg(long, env = "SIGNAL_CONFIG")]
    pub config: Option<PathBuf>,

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
    #[arg(long, env = "SIGNAL_ROOM_LIST", default_value_t = false, action = clap::ArgAction::Set)]
    pub room_list: bool,

    /// Messages per second from one IP address over all its connections (0: no limit).
    #[arg(long, env = "SIGNAL_IP_RATE_LIMIT", default_value_t = 1000)]
    pub ip_rate_limit: u32,

    /// WebSocket connections at once from one IP address (0: no limit); more get HTTP 429.
    #[arg(long, env = "SIGNAL_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: usize,

    /// Connections at once from one IP address whose request head did not arrive whole and that
    /// wait for the rest (0: no limit). More are closed at once.
    #[arg(long, env = "SIGNAL_MAX_PENDING_PER_IP", default_value_t = 32)]
    pub max_pending_per_ip: usize,

    /// Connections at once, from all addresses, whose request head did not arrive whole and
    /// that wait for the rest (0: no limit). More are closed at once. Each holds up to 64 KiB.
    #[arg(long, env = "SIGNAL_MAX_PENDING", default_value_t = 1024)]
    pub max_pending: usize,

    /// Longest a connection may take from being accepted to the end of its request head (TLS
    /// handshake included); one deadline, however the bytes trickle in.
    #[arg(long, env = "SIGNAL_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// Failed authentications (bad tokens, wrong room passwords) from one IP address within a
    /// minute before its new connections are refused (HTTP 429) for a minute (0: no limit).
    #[arg(long, env = "SIGNAL_AUTH_FAILURES_PER_IP", default_value_t = 10)]
    pub auth_failures_per_ip: u32,

    /// Enables token authentication with HS256 JWTs signed with this secret. Clients present
    /// the token as `?token=` on the WebSocket URL or in an `auth` message first.
    #[arg(long, env = "SIGNAL_AUTH_SECRET", hide_env_values = true)]
    pub auth_secret: Option<String>,

    /// Enables token authentication with EdDSA (Ed25519) JWTs: the public key, base64 or PEM.
    #[arg(long, env = "SIGNAL_AUTH_PUBLIC_KEY")]
    pub auth_public_key: Option<String>,

    /// Longest a token may still be valid for: one whose `exp` lies further ahead is refused
    /// (a token that never expires is a leaked credential for ever).
    #[arg(long, env = "SIGNAL_AUTH_MAX_LIFETIME", default_value = "365d", value_parser = parse_duration)]
    pub auth_max_lifetime: Duration,

    /// Clock skew tolerated on token expiry.
    #[arg(long, env = "SIGNAL_AUTH_LEEWAY", default_value = "30s", value_parser = parse_duration)]
    pub auth_leeway: Duration,

    /// Origins allowed to open WebSockets (comma-separated, e.g. https://call.example.com);
    /// empty: any origin (development).
    #[arg(long, env = "SIGNAL_ALLOWED_ORIGINS", value_delimiter = ',', action = clap::ArgAction::Set)]
    pub allowed_origins: Vec<String>,

    /// STUN URLs given to clients in `welcome` (comma-separated, e.g. stun:stun.example.com).
    #[arg(long, env = "SIGNAL_STUN_URLS", value_delimiter = ',', action = clap::ArgAction::Set)]
    pub stun_urls: Vec<String>,

    /// TURN URLs given to clients in `welcome` (comma-separated, e.g.
    /// turn:turn.example.com:3478?transport=udp).
    #[arg(long, env = "SIGNAL_TURN_URLS", value_delimiter = ',', action = clap::ArgAction::Set)]
    pub turn_urls: Vec<String>,

    /// Shared secret of the TURN server (coturn `static-auth-secret`): each connection gets
    /// time-limited credentials made with it (TURN REST API).
    #[arg(long, env = "SIGNAL_TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<String>,

    /// The most each client should send over all its calls together, kbit/s, told in
    /// `welcome` (the browser app's send budget heeds it; a page's own lower ceiling still
    /// applies). Unset or 0: no ceiling.
    #[arg(long, env = "SIGNAL_MAX_SEND_KBPS")]
    pub max_send_kbps: Option<u32>,

    /// Lifetime of generated TURN credentials.
    #[arg(long, env = "SIGNAL_TURN_TTL", default_value = "12h", value_parser = parse_duration)]
    pub turn_ttl: Duration,

    /// TLS certificate chain (PEM); with --tls-key the relay serves https:// and wss://.
    #[arg(long, env = "SIGNAL_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM).
    #[arg(long, env = "SIGNAL_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// How long shutdown keeps serving with /readyz failing (so load balancers stop sending
    /// new clients) before closing connections.
    #[arg(long, env = "SIGNAL_DRAIN_TIME", default_value = "0s", value_parser = parse_duration)]
    pub drain_time: Duration,

    /// How long a client whose connection was lost (network error or heartbeat timeout, not
    /// a clean close) can resume its session with the `resumeToken` of its `welcome`: same
    /// client id and room, messages queued meanwhile delivered. 0 disables resuming.
    #[arg(long, env = "SIGNAL_RESUME_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub resume_grace: Duration,

    /// Where room state lives: `memory` (this process) or `redis` (shared by every instance
    /// pointed at the same Redis, so clients on different instances can call each other).
    #[arg(long, env = "SIGNAL_STORE", default_value = "memory", value_parser = ["memory", "redis"])]
    pub store: String,

    /// Redis URL for `--store redis`.
    #[arg(
        long,
        env = "SIGNAL_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,

    /// Prefix of every Redis key and channel (several relay clusters can share one Redis).
    #[arg(long, env = "SIGNAL_REDIS_PREFIX", default_value = "relay:")]
    pub redis_prefix: String,

    /// This instance's id in the cluster (default: random).
    #[arg(long, env = "SIGNAL_INSTANCE_ID")]
    pub instance_id: Option<String>,

    /// An instance whose heartbeat is older than this is dead: the others remove its clients
    /// and tell their rooms. Heartbeats go every third of it.
    #[arg(long, env = "SIGNAL_INSTANCE_TTL", default_value = "10s", value_parser = parse_duration)]
    pub instance_ttl: Duration,

    /// Log format: text or json.
    #[arg(long, env = "SIGNAL_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

impl Config {
    /// Parses flags and environment, layered over the TOML file named by `--config` or
    /// `SIGNAL_CONFIG`.
    pub fn load(args: Vec<OsString>) -> Result<Config, ConfigError> {
        let first = Config::try_parse_from(&args).map_err(ConfigError::Args)?;
        let Some(path) = first.config.clone() else {
            return Ok(first);
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ConfigError::File(format!("cannot read {}: {e}", path.display())))?;
        let layered = file_args(&text, &path)?;
        // File values first: flags given on the command line come later and override them.
        let mut all = Vec::with_capacity(args.len() + layered.len());
        all.extend(args.first().cloned());
        all.extend(layered);
        all.extend(args.into_iter().skip(1));
        Config::try_parse_from(all).map_err(ConfigError::Args)
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Bad flags or values (clap's message, or help/version output).
    #[error("{0}")]
    Args(clap::Error),
    /// A bad configuration file.
    #[error("configuration file: {0}")]
    File(String),
}

/// The file's keys as `--key=value` flags, skipping keys whose environment variable is set
/// (the environment overrides the file).
fn file_args(text: &str, path: &std::path::Path) -> Result<Vec<OsString>, ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e| ConfigError::File(format!("{}: {e}", path.display())))?;
    let command = Config::command();
    let mut out = Vec::new();
    for (key, value) in table {
        let name = key.replace('_', "-");
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(name.as_str()) && name != "config")
            .ok_or_else(|| ConfigError::File(format!("{}: unknown key {key:?}", path.display())))?;
        if arg
            .get_env()
            .is_some_and(|env| std::env::var_os(env).is_some())
        {
            continue;
        }
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(s),
                    other => Err(ConfigError::File(format!(
                        "{key}: expected strings, got {other}"
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            other => {
                return Err(ConfigError::File(format!(
                    "{key}: unsupported value {other}"
                )));
            }
        };
        out.push(OsString::from(format!("--{name}={value}")));
    }
    Ok(out)
}

impl Default for Config {
    fn default() -> Self {
        Config::parse_from(["server"])
    }
}

/// Parses `500ms`, `15s`, `2m`, `12h`, `365d` or a bare number of seconds.
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
        "d" => n * 86400.0,
        _ => {
            return Err(format!(
                "invalid duration unit in {s:?} (use ms, s, m, h or d)"
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
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(2 * 86400)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn file_env_and_flags_layer_in_that_order() {
        let dir = std::env::temp_dir().join(format!("relay-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("relay.toml");
        std::fs::write(
            &path,
            "max-members = 4\nmax_rooms = 7\nping-interval = \"5s\"\nroom-list = false\n\
             stun-urls = [\"stun:a\", \"stun:b\"]\n",
        )
        .unwrap();
        let args = |extra: &[&str]| {
            let mut v: Vec<OsString> =
                vec!["server".into(), "--config".into(), path.clone().into()];
            v.extend(extra.iter().map(OsString::from));
            v
        };
        let c = Config::load(args(&[])).unwrap();
        assert_eq!((c.max_members, c.max_rooms), (4, 7));
        assert_eq!(c.ping_interval, Duration::from_secs(5));
        assert!(!c.room_list);
        assert_eq!(c.stun_urls, ["stun:a", "stun:b"]);
        // A flag beats the file.
        let c = Config::load(args(&["--max-members", "6"])).unwrap();
        assert_eq!(c.max_members, 6);
        // An unknown key is an error that names it.
        std::fs::write(&path, "max-memberz = 4\n").unwrap();
        let e = Config::load(args(&[])).unwrap_err().to_string();
        assert!(e.contains("max-memberz"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn defaults_are_production_defaults() {
        let c = Config::default();
        assert_eq!(c.max_message_size, 65536);
        assert_eq!(c.max_members, 10);
        assert!(c.idle_timeout > c.ping_interval * 2);
    }
}
