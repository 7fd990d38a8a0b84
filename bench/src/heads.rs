//! `heads` mode: what half-open request heads cost the relay.
//!
//! Opens `--count` TCP connections from `--sources` loopback addresses (127.0.0.1, 127.0.0.2,
//! ...: Linux routes all of 127.0.0.0/8 to `lo`) and sends on each an unfinished request head
//! of `--head-kb` KiB (a header line that never ends), as fast as the relay takes it, then
//! holds them for `--hold`. Meanwhile it samples the relay's memory and, from another address,
//! times `GET /healthz`. Reported: the relay's resident memory before, at its peak and after the
//! sockets are closed; how many sockets the relay had closed by the end of the hold; and the
//! health check's answers and worst latency during the attack.

use crate::stats::round3;
use crate::target::{Figures, Target, TargetArgs};
use anyhow::{Context, Result, ensure};
use clap::Args;
use serde::Serialize;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout};

/// Longest a health check may take before it counts as unanswered.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// Options of the `heads` mode.
#[derive(Args, Debug)]
pub struct HeadsArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Connections to open.
    #[arg(long, default_value_t = 2000)]
    count: usize,
    /// Loopback source addresses the connections are spread over (127.0.0.1 upwards).
    #[arg(long, default_value_t = 1)]
    sources: u8,
    /// Size of each unfinished head, in KiB.
    #[arg(long, default_value_t = 300)]
    head_kb: usize,
    /// Seconds to hold the connections open.
    #[arg(long, value_name = "SECS", default_value = "3", value_parser = crate::parse_secs)]
    hold: Duration,
}

/// The JSON report of one `heads` run.
#[derive(Debug, Serialize)]
pub struct HeadsReport {
    mode: &'static str,
    count: usize,
    sources: u8,
    head_kb: usize,
    hold_s: f64,
    /// Connections the relay accepted (those it refused at once included).
    connected: usize,
    /// Connections the relay had closed by the end of the hold.
    closed_by_relay: usize,
    /// Bytes of head the relay took in, over all connections.
    bytes_sent: usize,
    rss_before_kb: u64,
    /// The highest resident memory seen (`VmHWM`).
    rss_peak_kb: u64,
    /// One second after the bench closed its connections.
    rss_after_kb: u64,
    /// `GET /healthz` from another address during the hold: answered / tried.
    health_answered: usize,
    health_tried: usize,
    health_worst_ms: Option<f64>,
    /// How the spawned server ended after SIGTERM.
    server_exit: Option<String>,
    /// Per instance: CPU and memory over the run.
    #[serde(flatten)]
    target: Figures,
}

/// What the connection tasks count.
#[derive(Default)]
struct Counts {
    connected: AtomicUsize,
    closed: AtomicUsize,
    sent: AtomicUsize,
}

/// Runs the `heads` mode.
pub async fn run(args: HeadsArgs) -> Result<HeadsReport> {
    ensure!(args.count > 0, "--count must be at least 1");
    ensure!(args.sources > 0, "--sources must be at least 1");
    let mut target = Target::start(&args.target)?;
    let addr: SocketAddr = target.endpoints()[0]
        .addr()
        .parse()
        .context("the relay's address is not ip:port")?;
    let start = target.usage()?;
    let started = Instant::now();
    let counts = Arc::new(Counts::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = JoinSet::new();
    for i in 0..args.count {
        let source = Ipv4Addr::new(127, 0, 0, 1 + (i % usize::from(args.sources)) as u8);
        let (counts, mut stop) = (counts.clone(), stop_rx.clone());
        let head_bytes = args.head_kb * 1024;
        tasks.spawn(async move {
            let held = hold_head(source, addr, head_bytes, &counts);
            tokio::select! {
                () = held => {}
                _ = stop.wait_for(|&s| s) => {}
            }
        });
    }
    // The health checks come from an address the attack does not use.
    let health_source = Ipv4Addr::new(127, 0, 1, 1);
    let deadline = Instant::now() + args.hold;
    let (mut tried, mut answered, mut worst) = (0, 0, None::<Duration>);
    while Instant::now() < deadline {
        tried += 1;
        if let Some(took) = health(health_source, addr).await {
            answered += 1;
            worst = Some(worst.map_or(took, |w| w.max(took)));
        }
        sleep(Duration::from_millis(100)).await;
    }
    let rss_peak_kb = target.peak_rss_kb()?;
    let closed_by_relay = counts.closed.load(Ordering::Relaxed);
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    sleep(Duration::from_secs(1)).await;
    let end = target.usage()?;
    target.check_running()?;
    let mut figures = target.figures(&start, &start, &end, started.elapsed().as_secs_f64(), &[]);
    let server_exit = target.stop(&mut figures)?;
    Ok(HeadsReport {
        mode: "heads",
        count: args.count,
        sources: args.sources,
        head_kb: args.head_kb,
        hold_s: round3(args.hold.as_secs_f64()),
        connected: counts.connected.load(Ordering::Relaxed),
        closed_by_relay,
        bytes_sent: counts.sent.load(Ordering::Relaxed),
        rss_before_kb: start.rss_kb(),
        rss_peak_kb,
        rss_after_kb: end.rss_kb(),
        health_answered: answered,
        health_tried: tried,
        health_worst_ms: worst.map(|w| round3(w.as_secs_f64() * 1000.0)),
        server_exit,
        target: figures,
    })
}

/// Connects from `source` and sends an unfinished head of `bytes`, as far as the relay reads
/// it, then waits until the relay closes the connection (or the task is stopped).
async fn hold_head(source: Ipv4Addr, addr: SocketAddr, bytes: usize, counts: &Counts) {
    let Ok(mut s) = connect_from(source, addr).await else {
        return;
    };
    counts.connected.fetch_add(1, Ordering::Relaxed);
    let mut head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
    head.resize(bytes.max(head.len()), b'a');
    for chunk in head.chunks(16 * 1024) {
        if s.write_all(chunk).await.is_err() {
            break;
        }
        counts.sent.fetch_add(chunk.len(), Ordering::Relaxed);
    }
    let mut buf = [0u8; 512];
    // Ends when the relay closes (EOF or reset), whatever it sent first.
    while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
    counts.closed.fetch_add(1, Ordering::Relaxed);
}

/// A TCP connection to `addr` from the loopback address `source`.
async fn connect_from(source: Ipv4Addr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    socket.connect(addr).await
}

/// Times one `GET /healthz` from `source`; `None` when it gets no `200` in time.
async fn health(source: Ipv4Addr, addr: SocketAddr) -> Option<Duration> {
    let started = Instant::now();
    let check = async {
        let mut s = connect_from(source, addr).await.ok()?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .ok()?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).await.ok()?;
        answer.starts_with(b"HTTP/1.1 200").then_some(())
    };
    timeout(HEALTH_TIMEOUT, check).await.ok()??;
    Some(started.elapsed())
}
