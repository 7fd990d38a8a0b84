//! A hardened WebSocket signaling relay for WebRTC calls.
//!
//! Layout:
//! - `config.rs`: every limit and timer ([`Config`]), from flags or the environment.
//! - `rooms.rs`: the pure room state: membership, caps, locks, routing rules.
//! - `relay.rs`: [`Relay`], the one owner of that state, and delivery into bounded per-connection
//!   queues (`queue.rs`).
//! - `conn.rs`: one `select!` loop per WebSocket: read, write, heartbeat, shutdown.
//! - `http.rs`: plain HTTP (`/`, `/healthz`, the built browser app) and the WebSocket upgrade,
//!   on one port.
//!
//! [`run`] serves a bound listener until a shutdown future completes, then closes every
//! connection with a Close frame and returns; `main.rs` only parses flags and signals, so tests
//! run the real server on `127.0.0.1:0`.

pub mod config;
pub mod conn;
mod http;
pub mod queue;
pub mod relay;
pub mod rooms;

pub use config::Config;
pub use relay::Relay;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rooms::RoomLimits;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Read buffer of each WebSocket, in bytes. Small, because it is allocated per connection for
/// the connection's lifetime; larger messages are read in several chunks.
const READ_BUFFER: usize = 1024;

/// Longest a client may take to send its HTTP request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Pending connections the kernel queues before `accept` (the default of 128 overflows when
/// hundreds of clients connect at once, costing each dropped one a 1 s SYN retry).
const LISTEN_BACKLOG: u32 = 4096;

/// Binds a listener with a deep accept backlog and address reuse (quick restarts).
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `listener` until `shutdown` completes; then stops accepting, sends every WebSocket a
/// Close frame (1001) and waits up to `config.shutdown_timeout` for connections to end.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let relay = Relay::new(relay::RelayLimits {
        rooms: RoomLimits {
            max_members: config.max_members,
            max_rooms: config.max_rooms,
        },
        queue_size: config.queue_size,
        room_list: config.room_list,
    });
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let ctx = Arc::new(http::Ctx {
        relay,
        static_dir: config.static_dir.clone(),
        limits: conn::ConnLimits {
            ping_interval: config.ping_interval,
            idle_timeout: config.idle_timeout,
            write_timeout: config.write_timeout,
            rate_limit: config.rate_limit,
            rate_burst: config.rate_burst,
        },
        ws_config: WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .max_message_size(Some(config.max_message_size))
            .max_frame_size(Some(config.max_message_size)),
        permits: Arc::new(Semaphore::new(config.max_connections)),
        shutdown: token.clone(),
        tracker: tracker.clone(),
    });

    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Typically EMFILE: back off instead of spinning, keep serving.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        tracker.spawn(async move {
            let svc_ctx = ctx.clone();
            let service = service_fn(move |req| http::handle(req, svc_ctx.clone()));
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(e) = res {
                        tracing::debug!(%peer, error = %e, "http connection failed");
                    }
                }
                () = ctx.shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
                }
            }
        });
    }

    tracing::info!("shutting down: closing connections");
    drop(listener);
    token.cancel();
    tracker.close();
    if tokio::time::timeout(config.shutdown_timeout, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("shutdown timeout: some connections did not close in time");
    }
    Ok(())
}
