//! `relay` mode: throughput and latency of relayed `candidate` messages.
//!
//! P rooms hold two clients each. Every client keeps a window of W candidates in flight to its
//! peer: it sends W at the start and one more for each it receives (a closed loop, so the load
//! adapts to what the relay sustains and nothing queues without bound). Each candidate carries
//! its send time; the receiver turns it into a latency. After a warm-up, messages, latencies and
//! the relay's CPU time are measured over a fixed interval.
//!
//! With several instances, client A of pair i connects to instance `i % N` and client B to
//! instance `(i + 1) % N`, so that every message crosses from one instance to another through
//! Redis; with `--same-instance` both clients of pair i connect to instance `i % N` instead, for
//! comparison. CPU time and memory are summed over the instances.

use crate::client::{self, Client, Endpoint, RECV_TIMEOUT, Ws};
use crate::procfs;
use crate::stats::{Percentiles, nanos, ratio, round3};
use crate::target::{Figures, Target, TargetArgs};
use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use futures_util::{FutureExt, SinkExt, StreamExt, TryStreamExt, future, stream};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

/// Pairs being connected and joined at the same time.
const CONNECT_CONCURRENCY: usize = 32;
/// Most messages read before the replies to them are written and flushed together.
const MAX_BATCH: usize = 64;

/// Options of the `relay` mode.
#[derive(Args, Debug)]
pub struct RelayArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Rooms, each with two clients sending candidates to each other.
    #[arg(long, default_value_t = 50)]
    pairs: usize,
    /// Candidates each client keeps in flight.
    #[arg(long, default_value_t = 4)]
    window: usize,
    /// Seconds measured.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = crate::parse_secs)]
    duration: Duration,
    /// Seconds of load before measuring.
    #[arg(long, value_name = "SECS", default_value = "2", value_parser = crate::parse_secs)]
    warmup: Duration,
    /// With several instances, put both clients of a pair on the same instance (pairs spread
    /// round-robin) instead of on two different ones.
    #[arg(long)]
    same_instance: bool,
}

/// The JSON report of one `relay` run.
#[derive(Debug, Serialize)]
pub struct RelayReport {
    mode: &'static str,
    /// The first instance's URL (all of them: `per_instance`).
    url: String,
    /// Whether the two clients of every pair are on different instances.
    cross_instance: bool,
    pairs: usize,
    window: usize,
    warmup_s: f64,
    /// The measured interval as it actually elapsed.
    duration_s: f64,
    /// Candidates received during the measured interval.
    messages: u64,
    messages_per_s: f64,
    /// Send-to-receive time of the candidates received during the measured interval.
    latency: Percentiles,
    /// Summed over the instances, as every server figure below.
    server_cpu_s: f64,
    /// Server CPU time as a share of one core over the interval.
    server_cpu_percent: f64,
    messages_per_server_cpu_s: Option<f64>,
    /// Per CPU-second of the instances and of the Redis they share (the bench's own
    /// redis-server); the same as `messages_per_server_cpu_s` without Redis.
    messages_per_cpu_s_with_redis: Option<f64>,
    bench_cpu_s: f64,
    /// After every pair has connected and joined, before any candidate.
    server_rss_before_kb: u64,
    /// At the end of the measured interval.
    server_rss_after_kb: u64,
    /// Candidates sent and received over the whole run, warm-up included.
    sent_total: u64,
    received_total: u64,
    /// `error` messages the relay sent during the load.
    relay_errors: u64,
    first_relay_error: Option<String>,
    /// Candidates that arrived from someone other than the peer.
    misrouted: u64,
    /// Other messages received during the load.
    unexpected: u64,
    first_unexpected: Option<String>,
    /// Clients whose loop failed (closed, timed out, ...).
    client_failures: usize,
    first_client_failure: Option<String>,
    /// How the spawned server ended after SIGTERM (`i0: ...; i1: ...` for several).
    server_exit: Option<String>,
    #[serde(flatten)]
    target: Figures,
}

/// State shared by the bench's clients.
struct Shared {
    /// The origin of the send times carried in candidates.
    epoch: Instant,
    /// Whether the measured interval is running.
    measuring: AtomicBool,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        nanos(self.epoch.elapsed())
    }
}

/// What one client saw during the load.
#[derive(Default)]
struct Tally {
    latencies: Vec<u64>,
    measured: u64,
    sent: u64,
    received: u64,
    relay_errors: u64,
    first_relay_error: Option<String>,
    misrouted: u64,
    unexpected: u64,
    first_unexpected: Option<String>,
}

/// Runs the `relay` mode.
pub async fn run(args: RelayArgs) -> Result<RelayReport> {
    ensure!(args.pairs > 0, "--pairs must be at least 1");
    ensure!(args.window > 0, "--window must be at least 1");
    ensure!(!args.duration.is_zero(), "--duration must be positive");
    let mut target = Target::start(&args.target)?;
    let endpoints = target.endpoints();
    let instances = endpoints.len();
    let mut clients_per_instance = vec![0; instances];
    let placed: Vec<(usize, usize)> = (0..args.pairs)
        .map(|i| pair_instances(i, instances, args.same_instance))
        .collect();
    for &(a, b) in &placed {
        clients_per_instance[a] += 1;
        clients_per_instance[b] += 1;
    }

    let pairs: Vec<(Client, Client)> = stream::iter(placed.iter().enumerate())
        .map(|(i, &(a, b))| connect_pair(&endpoints[a], &endpoints[b], i))
        .buffer_unordered(CONNECT_CONCURRENCY)
        .try_collect()
        .await
        .context("cannot set up the pairs")?;
    let rss_start = target.usage()?;

    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        measuring: AtomicBool::new(false),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut clients = JoinSet::new();
    for (a, b) in pairs {
        let (a_id, b_id) = (a.id.clone(), b.id.clone());
        for (client, peer) in [(a, b_id), (b, a_id)] {
            let (shared, stop) = (shared.clone(), stop_rx.clone());
            clients.spawn(run_client(client, peer, args.window, shared, stop));
        }
    }

    sleep(args.warmup).await;
    let cpu_start = target.usage()?;
    let own_start = procfs::own_cpu_seconds()?;
    let started = Instant::now();
    shared.measuring.store(true, Ordering::Relaxed);
    sleep(args.duration).await;
    shared.measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let end = target.usage()?;
    let bench_cpu_s = procfs::own_cpu_seconds()? - own_start;
    let server_cpu_s = end.cpu_s() - cpu_start.cpu_s();
    // Every client is waiting on this or on a read with a timeout, so all stop promptly.
    let _ = stop_tx.send(true);

    let mut total = Tally::default();
    let mut client_failures = 0;
    let mut first_client_failure = None;
    let mut stopped = Vec::with_capacity(2 * args.pairs);
    let collect = async {
        while let Some(joined) = clients.join_next().await {
            let (client, outcome) = match joined {
                Ok((client, outcome)) => (Some(client), outcome),
                Err(e) => (None, Err(e).context("client task panicked")),
            };
            stopped.extend(client);
            match outcome {
                Ok(tally) => total.merge(tally),
                Err(e) => {
                    client_failures += 1;
                    first_client_failure.get_or_insert_with(|| format!("{e:#}"));
                }
            }
        }
    };
    let collect_timeout = RECV_TIMEOUT + Duration::from_secs(5);
    if timeout(collect_timeout, collect).await.is_err() {
        bail!("the clients did not stop within {collect_timeout:?} of the end of the run");
    }
    // Only once every loop has stopped, so that no client sends to a peer that has left. A
    // failed close handshake does not invalidate the measurement.
    future::join_all(stopped.into_iter().map(Client::close)).await;
    target.check_running()?;
    let mut figures = target.figures(&cpu_start, &rss_start, &end, elapsed, &clients_per_instance);
    let url = target.url();
    let server_exit = target.stop(&mut figures)?;

    let messages = total.measured;
    Ok(RelayReport {
        mode: "relay",
        url,
        cross_instance: placed.iter().any(|(a, b)| a != b),
        pairs: args.pairs,
        window: args.window,
        warmup_s: round3(args.warmup.as_secs_f64()),
        duration_s: round3(elapsed),
        messages,
        messages_per_s: round3(messages as f64 / elapsed),
        latency: Percentiles::from_nanos(&mut total.latencies),
        server_cpu_s: round3(server_cpu_s),
        server_cpu_percent: round3(server_cpu_s / elapsed * 100.0),
        messages_per_server_cpu_s: ratio(messages as f64, server_cpu_s),
        messages_per_cpu_s_with_redis: figures
            .cpu_with_redis(server_cpu_s)
            .and_then(|cpu| ratio(messages as f64, cpu)),
        bench_cpu_s: round3(bench_cpu_s),
        server_rss_before_kb: rss_start.rss_kb(),
        server_rss_after_kb: end.rss_kb(),
        sent_total: total.sent,
        received_total: total.received,
        relay_errors: total.relay_errors,
        first_relay_error: total.first_relay_error,
        misrouted: total.misrouted,
        unexpected: total.unexpected,
        first_unexpected: total.first_unexpected,
        client_failures,
        first_client_failure,
        server_exit,
        target: figures,
    })
}

/// The instances of pair `i`'s two clients among `instances`: consecutive ones (every pair
/// crosses instances when there are several), or the same one with `same_instance`.
fn pair_instances(i: usize, instances: usize, same_instance: bool) -> (usize, usize) {
    let a = i % instances;
    if same_instance {
        (a, a)
    } else {
        (a, (i + 1) % instances)
    }
}

/// Connects client A to `a` and B to `b`, puts them in room `p{i}` and checks that each learns
/// the other's id.
async fn connect_pair(a: &Endpoint, b: &Endpoint, i: usize) -> Result<(Client, Client)> {
    let config = WebSocketConfig::default();
    let mut a = Client::connect(a, config).await?;
    let mut b = Client::connect(b, config).await?;
    let room = format!("p{i}");
    a.join(&room).await?;
    let joined = b.join(&room).await?;
    let members = joined.get("members").and_then(|m| m.as_array());
    if !members.is_some_and(|m| m.iter().any(|id| id.as_str() == Some(&a.id))) {
        bail!(
            "`joined` of room {room} does not list the first member {}: {joined}",
            a.id
        );
    }
    let user_joined = a.expect("user-joined").await?;
    let newcomer = client::str_field(&user_joined, "clientId")?;
    if newcomer != b.id {
        bail!(
            "`user-joined` in room {room} names {newcomer}, expected {}",
            b.id
        );
    }
    Ok((a, b))
}

/// Runs one client's closed loop until `stop`; returns the client, still connected.
async fn run_client(
    mut client: Client,
    peer: String,
    window: usize,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) -> (Client, Result<Tally>) {
    let mut tally = Tally::default();
    let looped = pump(&mut client.ws, &peer, window, &shared, stop, &mut tally).await;
    let id = &client.id;
    let outcome = looped
        .with_context(|| format!("client {id} (peer {peer})"))
        .map(|()| tally);
    (client, outcome)
}

/// The closed loop: send `window` candidates, then one per candidate received. Messages that
/// are already buffered are read together and answered with one flush.
async fn pump(
    ws: &mut Ws,
    peer: &str,
    window: usize,
    shared: &Shared,
    mut stop: watch::Receiver<bool>,
    tally: &mut Tally,
) -> Result<()> {
    let peer_json = serde_json::to_string(peer).context("cannot encode the peer id")?;
    let candidate = |t: u64| {
        Message::text(format!(
            r#"{{"type":"candidate","targetId":{peer_json},"candidate":{{"candidate":"candidate:1 1 udp 2122260223 192.168.1.2 54321 typ host","sdpMid":"0","sdpMLineIndex":0,"t":{t}}}}}"#
        ))
    };
    for _ in 0..window {
        ws.feed(candidate(shared.now_ns()))
            .await
            .context("cannot send")?;
    }
    ws.flush().await.context("cannot send")?;
    tally.sent += window as u64;

    loop {
        let first = tokio::select! {
            biased;
            _ = stop.wait_for(|&stopped| stopped) => return Ok(()),
            next = timeout(RECV_TIMEOUT, ws.next()) => next
                .with_context(|| format!("nothing received for {RECV_TIMEOUT:?}"))?,
        };
        let mut replies = 0;
        let mut next = first;
        loop {
            if let Some(text) = text_of(next)? {
                replies += tally.record(&text, peer, shared);
            }
            if replies >= MAX_BATCH {
                break;
            }
            match ws.next().now_or_never() {
                Some(more) => next = more,
                None => break,
            }
        }
        if replies > 0 {
            for _ in 0..replies {
                ws.feed(candidate(shared.now_ns()))
                    .await
                    .context("cannot send")?;
            }
            ws.flush().await.context("cannot send")?;
            tally.sent += replies as u64;
        }
    }
}

/// The text of a received frame; `None` for pings and pongs; an error when the connection ends.
fn text_of(next: Option<Result<Message, WsError>>) -> Result<Option<Utf8Bytes>> {
    match next {
        None => bail!("the relay closed the connection"),
        Some(Err(e)) => Err(e).context("WebSocket error"),
        Some(Ok(Message::Text(text))) => Ok(Some(text)),
        Some(Ok(Message::Close(frame))) => bail!("the relay closed the connection: {frame:?}"),
        Some(Ok(Message::Binary(_))) => bail!("the relay sent a binary frame"),
        Some(Ok(_)) => Ok(None),
    }
}

/// The fields of a received message that the loop looks at; the rest is skipped unparsed.
#[derive(Deserialize)]
struct Received<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(rename = "fromId", borrow, default)]
    from_id: Option<Cow<'a, str>>,
    #[serde(default)]
    candidate: Option<Stamp>,
}

/// The send time inside a candidate payload.
#[derive(Deserialize)]
struct Stamp {
    #[serde(default)]
    t: Option<u64>,
}

impl Tally {
    /// Accounts for one received message; returns 1 when it is a candidate from the peer,
    /// which calls for a reply, else 0.
    fn record(&mut self, text: &str, peer: &str, shared: &Shared) -> usize {
        let Ok(message) = serde_json::from_str::<Received>(text) else {
            self.note_unexpected(text);
            return 0;
        };
        match message.kind.as_ref() {
            "candidate" if message.from_id.as_deref() == Some(peer) => {
                self.received += 1;
                if shared.measuring.load(Ordering::Relaxed) {
                    self.measured += 1;
                    if let Some(t) = message.candidate.and_then(|c| c.t) {
                        self.latencies.push(shared.now_ns().saturating_sub(t));
                    }
                }
                1
            }
            "candidate" => {
                self.misrouted += 1;
                0
            }
            "error" => {
                self.relay_errors += 1;
                if self.first_relay_error.is_none() {
                    self.first_relay_error = Some(client::preview(text));
                }
                0
            }
            _ => {
                self.note_unexpected(text);
                0
            }
        }
    }

    fn note_unexpected(&mut self, text: &str) {
        self.unexpected += 1;
        self.first_unexpected
            .get_or_insert_with(|| client::preview(text));
    }

    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.measured += other.measured;
        self.sent += other.sent;
        self.received += other.received;
        self.relay_errors += other.relay_errors;
        if self.first_relay_error.is_none() {
            self.first_relay_error = other.first_relay_error;
        }
        self.misrouted += other.misrouted;
        self.unexpected += other.unexpected;
        if self.first_unexpected.is_none() {
            self.first_unexpected = other.first_unexpected;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_cross_instances_unless_asked_not_to() {
        let cross: Vec<_> = (0..4).map(|i| pair_instances(i, 2, false)).collect();
        assert_eq!(cross, [(0, 1), (1, 0), (0, 1), (1, 0)]);
        let same: Vec<_> = (0..4).map(|i| pair_instances(i, 3, true)).collect();
        assert_eq!(same, [(0, 0), (1, 1), (2, 2), (0, 0)]);
        assert_eq!(pair_instances(5, 1, false), (0, 0));
    }
}
