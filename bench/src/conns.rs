//! `conns` mode: the relay's memory per idle connection.
//!
//! Measures the relay's RSS with nothing connected, opens K connections (a bounded number
//! connecting at a time) that each join room `c{i / S}`, measures the RSS again, and holds the
//! connections for a while. Each held connection lives in a light task that keeps reading, so
//! the relay's heartbeat pings are answered and a connection the relay drops is noticed.
//!
//! With several instances, connection i connects to instance `i % N` (so a room of two spans
//! two instances), and memory is summed over the instances.

use crate::client::{self, CLOSE_TIMEOUT, Client, Endpoint};
use crate::stats::{Percentiles, nanos, ratio, round3};
use crate::target::{Figures, Target, TargetArgs};
use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use futures_util::StreamExt;
use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Longest time for all connections to connect and join.
const CONNECT_PHASE_TIMEOUT: Duration = Duration::from_secs(120);
/// Read buffer of each held connection: idle clients need little, and 10 000 of the default
/// 128 KiB would cost the bench over a gigabyte.
const READ_BUFFER: usize = 4 * 1024;

/// Options of the `conns` mode.
#[derive(Args, Debug)]
pub struct ConnsArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Connections to open.
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Clients per room (connection i joins room `c{i / room-size}`).
    #[arg(long, default_value_t = 2)]
    room_size: usize,
    /// Seconds to hold the connections after they have joined.
    #[arg(long, value_name = "SECS", default_value = "2", value_parser = crate::parse_secs)]
    hold: Duration,
    /// Connections being opened and joined at the same time.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
}

/// The JSON report of one `conns` run.
#[derive(Debug, Serialize)]
pub struct ConnsReport {
    mode: &'static str,
    /// The first instance's URL (all of them: `per_instance`).
    url: String,
    count: usize,
    room_size: usize,
    concurrency: usize,
    /// Connections that connected and joined.
    connected: usize,
    failures: usize,
    first_failure: Option<String>,
    /// Time until every connection had joined (or failed).
    connect_s: f64,
    connects_per_s: f64,
    /// Connect + `welcome` + `join` + `joined`, per connection.
    connect_time: Percentiles,
    /// Server CPU time spent while the connections were opened (summed over the instances, as
    /// every server figure below).
    server_cpu_connect_s: f64,
    /// Idle, nothing connected.
    rss_before_kb: u64,
    /// Right after every connection has joined.
    rss_after_kb: u64,
    /// `(rss_after - rss_before) * 1024 / connected`.
    bytes_per_connection: Option<f64>,
    hold_s: f64,
    /// At the end of the hold.
    rss_hold_end_kb: u64,
    /// Connections the relay closed during the hold.
    dropped_during_hold: usize,
    /// Close handshakes that failed or timed out at the end.
    close_failures: usize,
    first_close_failure: Option<String>,
    /// How the spawned server ended after SIGTERM (`i0: ...; i1: ...` for several).
    server_exit: Option<String>,
    /// Per instance: CPU while connecting; memory idle and once every connection has joined.
    #[serde(flatten)]
    target: Figures,
}

/// Signals shared by the connection tasks.
struct Hold {
    /// One per instance; connection i connects to `endpoints[i % N]`.
    endpoints: Vec<Endpoint>,
    room_size: usize,
    connecting: Semaphore,
    dropped: AtomicUsize,
    close_failures: AtomicUsize,
    first_close_failure: Mutex<Option<String>>,
}

/// Runs the `conns` mode.
pub async fn run(args: ConnsArgs) -> Result<ConnsReport> {
    ensure!(args.count > 0, "--count must be at least 1");
    ensure!(args.room_size > 0, "--room-size must be at least 1");
    ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    let mut target = Target::start(&args.target)?;
    let start = target.usage()?;

    let hold = Arc::new(Hold {
        endpoints: target.endpoints(),
        room_size: args.room_size,
        connecting: Semaphore::new(args.concurrency),
        dropped: AtomicUsize::new(0),
        close_failures: AtomicUsize::new(0),
        first_close_failure: Mutex::new(None),
    });
    let (joined_tx, mut joined_rx) = mpsc::channel(args.count);
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 0..args.count {
        tasks.spawn(hold_connection(
            i,
            hold.clone(),
            joined_tx.clone(),
            stop_rx.clone(),
        ));
    }
    drop(joined_tx);

    let mut connect_nanos = Vec::with_capacity(args.count);
    let mut failures = 0;
    let mut first_failure = None;
    let wait_all = async {
        while let Some(result) = joined_rx.recv().await {
            match result {
                Ok(took) => connect_nanos.push(nanos(took)),
                Err(e) => {
                    failures += 1;
                    first_failure.get_or_insert_with(|| format!("{e:#}"));
                }
            }
        }
    };
    if timeout(CONNECT_PHASE_TIMEOUT, wait_all).await.is_err() {
        let _ = stop_tx.send(true);
        tasks.abort_all();
        bail!("the connections did not all join within {CONNECT_PHASE_TIMEOUT:?}");
    }
    let connect_s = started.elapsed().as_secs_f64();
    let joined = target.usage()?;
    let server_cpu_connect_s = joined.cpu_s() - start.cpu_s();
    let (rss_before_kb, rss_after_kb) = (start.rss_kb(), joined.rss_kb());
    let connected = connect_nanos.len();

    sleep(args.hold).await;
    let rss_hold_end_kb = target.usage()?.rss_kb();
    let dropped_during_hold = hold.dropped.load(Ordering::Relaxed);
    let _ = stop_tx.send(true);
    let close_all = async { while tasks.join_next().await.is_some() {} };
    let close_timeout = CLOSE_TIMEOUT + Duration::from_secs(10);
    if timeout(close_timeout, close_all).await.is_err() {
        bail!("the connections did not close within {close_timeout:?}");
    }
    target.check_running()?;
    let instances = target.len();
    let clients: Vec<usize> = (0..instances)
        .map(|k| args.count / instances + usize::from(k < args.count % instances))
        .collect();
    let mut figures = target.figures(&start, &start, &joined, connect_s, &clients);
    let url = target.url();
    let server_exit = target.stop(&mut figures)?;

    let grown_bytes = (rss_after_kb as f64 - rss_before_kb as f64) * 1024.0;
    Ok(ConnsReport {
        mode: "conns",
        url,
        count: args.count,
        room_size: args.room_size,
        concurrency: args.concurrency,
        connected,
        failures,
        first_failure,
        connect_s: round3(connect_s),
        connects_per_s: round3(connected as f64 / connect_s),
        connect_time: Percentiles::from_nanos(&mut connect_nanos),
        server_cpu_connect_s: round3(server_cpu_connect_s),
        rss_before_kb,
        rss_after_kb,
        bytes_per_connection: ratio(grown_bytes, connected as f64),
        hold_s: round3(args.hold.as_secs_f64()),
        rss_hold_end_kb,
        dropped_during_hold,
        close_failures: hold.close_failures.load(Ordering::Relaxed),
        first_close_failure: hold.first_close_failure.lock().ok().and_then(|f| f.clone()),
        server_exit,
        target: figures,
    })
}

/// Connects client `i`, joins its room, reports how long that took, then reads until `stop`
/// and closes.
async fn hold_connection(
    i: usize,
    hold: Arc<Hold>,
    joined: mpsc::Sender<Result<Duration>>,
    mut stop: watch::Receiver<bool>,
) {
    let client = {
        let Ok(_permit) = hold.connecting.acquire().await else {
            return;
        };
        let started = Instant::now();
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        async {
            let endpoint = &hold.endpoints[i % hold.endpoints.len()];
            let mut client = Client::connect(endpoint, config).await?;
            client.join(&format!("c{}", i / hold.room_size)).await?;
            anyhow::Ok((client, started.elapsed()))
        }
        .await
        .with_context(|| format!("connection {i}"))
    };
    let mut ws = match client {
        Ok((client, took)) => {
            let _ = joined.send(Ok(took)).await;
            client.ws
        }
        Err(e) => {
            let _ = joined.send(Err(e)).await;
            return;
        }
    };
    drop(joined);
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|&stopped| stopped) => break,
            next = ws.next() => match next {
                Some(Ok(Message::Close(_)) | Err(_)) | None => {
                    hold.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Some(Ok(_)) => {}
            },
        }
    }
    if let Err(e) = client::close(ws).await {
        hold.close_failures.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = hold.first_close_failure.lock() {
            first.get_or_insert_with(|| format!("{e:#}"));
        }
    }
}
