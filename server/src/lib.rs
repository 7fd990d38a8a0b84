//! A hardened WebSocket signaling relay for WebRTC calls.
//!
//! Layout:
//! - `config.rs`: every limit and timer ([`Config`]), from flags, environment or a TOML file.
//! - `rooms.rs`: the pure room state: membership, caps, locks, passwords, routing rules.
//! - `router.rs`: the routing interface (membership and routes) and its in-process
//!   implementation over `rooms.rs`.
//! - `relay.rs`: [`Relay`], the protocol's logic over a router, client ids, resume sessions,
//!   and delivery into bounded per-connection queues (`queue.rs`).
//! - `conn.rs`: one `select!` loop per WebSocket: read, write, heartbeat, shutdown; rate limits
//!   and authentication.
//! - `http.rs`: plain HTTP (`/healthz`, `/readyz`, `/metrics`, the built browser app) and the
//!   WebSocket upgrade, on one port, plain or TLS (`tls.rs`), over `io.rs` (read-ahead, and
//!   the write that carries the `101` with the first frames).
//! - `auth.rs` (access tokens), `guard.rs` (per-address limits), `turn.rs` (ICE servers and
//!   TURN credentials), `metrics.rs` (Prometheus).
//!
//! [`run`] serves a bound listener until a shutdown future completes, then closes every
//! connection with a Close frame and returns; `main.rs` only parses flags and signals, so tests
//! run the real server on `127.0.0.1:0`.

pub mod auth;
pub mod cluster;
pub mod config;
pub mod conn;
pub mod guard;
mod http;
pub mod io;
pub mod metrics;
pub mod queue;
pub mod relay;
pub mod rooms;
pub mod router;
pub mod testing;
mod tls;
pub mod turn;

pub use config::Config;
pub use relay::Relay;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use io::{ConnIo, HoldForFin};
use rooms::RoomLimits;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Read buffer of each WebSocket, in bytes. Small, because it is allocated per connection for
/// the connection's lifetime; larger messages are copied out in several chunks from the
/// read-ahead of `io.rs`, which takes them off the socket in one system call. 512 holds a
/// typical ICE candidate message whole.
const READ_BUFFER: usize = 512;

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
    let listener = socket.listen(LISTEN_BACKLOG)?;
    defer_accept(&listener);
    Ok(listener)
}

/// Asks the kernel to hand over accepted connections only once their first bytes (the HTTP
/// request) arrived: one wake-up per connection instead of two.
fn defer_accept(listener: &TcpListener) {
    #[cfg(target_os = "linux")]
    if !io::set_tcp_option(listener, libc::TCP_DEFER_ACCEPT, 1) {
        tracing::debug!("TCP_DEFER_ACCEPT not available");
    }
}

/// Turns Nagle's algorithm off on the listener, so that every accepted socket starts with
/// TCP_NODELAY (Linux copies it to them) and needs no system call of its own. False when the
/// sockets must get it one by one.
fn nodelay_inherited(listener: &TcpListener) -> bool {
    #[cfg(target_os = "linux")]
    return io::set_tcp_option(listener, libc::TCP_NODELAY, 1);
    #[cfg(not(target_os = "linux"))]
    {
        let _ = listener;
        false
    }
}

/// Serves `listener` until `shutdown` completes; then stops accepting, sends every WebSocket a
/// Close frame (1001) and waits up to `config.shutdown_timeout` for connections to end.
/// (`Server::new` then `Server::serve`, for callers that must know setup succeeded first.)
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    Server::new(listener, config).await?.serve(shutdown).await
}

/// A relay set up and ready to serve: TLS, token checks and the router (connected to Redis with
/// `--store redis`) are in place.
pub struct Server {
    listener: TcpListener,
    config: Config,
    tls: Option<tokio_rustls::TlsAcceptor>,
    ctx: Arc<http::Ctx>,
    guard: Arc<guard::IpGuard>,
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Server {
    /// Sets the relay up on `listener`; fails (e.g. Redis unreachable, bad TLS files) before
    /// serving anything.
    pub async fn new(listener: TcpListener, config: Config) -> std::io::Result<Server> {
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
            _ => None,
        };
        let auth = auth_config(&config)?;
        let room_limits = RoomLimits {
            max_members: config.max_members,
            max_rooms: config.max_rooms,
            distinct_user_ids: auth.is_none(),
        };
        let backend = match config.store.as_str() {
            "redis" => {
                let instance = config.instance_id.clone().unwrap_or_else(|| {
                    use rand::distr::{Alphanumeric, SampleString};
                    Alphanumeric.sample_string(&mut rand::rng(), 12)
                });
                let router = cluster::RedisRouter::connect(
                    &config.redis_url,
                    &config.redis_prefix,
                    &instance,
                    room_limits,
                    config.instance_ttl,
                )
                .await
                .map_err(|e| std::io::Error::other(format!("shared store: {e}")))?;
                tracing::info!(%instance, "sharing rooms through Redis");
                router::Backend::Redis(router)
            }
            _ => router::Backend::Memory(router::MemoryRouter::new(room_limits, config.room_list)),
        };
        let relay = Relay::with_router(
            backend,
            relay::RelayLimits {
                rooms: room_limits,
                queue_size: config.queue_size,
                room_list: config.room_list,
                resume_grace: config.resume_grace,
                max_send_kbps: config.max_send_kbps.filter(|k| *k > 0),
            },
            Arc::new(metrics::Metrics::new()),
            turn::TurnConfig {
                stun_urls: config.stun_urls.clone(),
                turn_urls: config.turn_urls.clone(),
                secret: config.turn_secret.clone(),
                ttl_secs: config.turn_ttl.as_secs(),
            },
        );
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        let guard = guard::IpGuard::new(guard::IpLimits {
            max_connections: config.max_connections_per_ip,
            rate: config.ip_rate_limit,
            failures: config.auth_failures_per_ip,
            max_pending: config.max_pending_per_ip,
            max_pending_total: config.max_pending,
        });
        let ctx = Arc::new(http::Ctx {
            relay,
            auth,
            allowed_origins: config.allowed_origins.clone(),
            guard: guard.clone(),
            draining: AtomicBool::new(false),
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
        Ok(Server {
            listener,
            config,
            tls,
            ctx,
            guard,
            token,
            tracker,
        })
    }

    /// Serves until `shutdown` completes; see [`run`].
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let Server {
            listener,
            config,
            tls,
            ctx,
            guard,
            token,
            tracker,
        } = self;
        let background = ctx.relay.start_background();
        let nodelay_inherited = nodelay_inherited(&listener);
        let sweeper = guard.clone();
        // Forget addresses whose failures are old.
        let sweep = tokio::spawn(async move {
            let guard = sweeper;
            let mut tick = tokio::time::interval(guard::FAILURE_WINDOW);
            loop {
                tick.tick().await;
                guard.sweep();
            }
        });

        tokio::pin!(shutdown);
        // Draining: after the shutdown signal, keep serving (with /readyz failing and new
        // WebSockets refused) for `drain_time`, then close everything.
        let mut drain: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown, if drain.is_none() => {
                    tracing::info!(drain = ?config.drain_time, "shutdown requested: draining");
                    ctx.draining.store(true, Ordering::Relaxed);
                    drain = Some(Box::pin(tokio::time::sleep(config.drain_time)));
                    continue;
                }
                () = async { drain.as_mut().expect("guarded").await }, if drain.is_some() => break,
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
            // Small messages go out at once, not held back for the peer's ACK.
            if !nodelay_inherited {
                let _ = stream.set_nodelay(true);
            }
            let early = Early {
                ctx: ctx.clone(),
                guard: guard.clone(),
                peer,
                deadline: tokio::time::Instant::now() + config.header_timeout,
            };
            let tls = tls.clone();
            tracker.spawn(async move {
                match tls {
                    None => serve_connection(stream, early).await,
                    Some(acceptor) => {
                        let handshake =
                            tokio::time::timeout_at(early.deadline, acceptor.accept(stream));
                        match handshake.await {
                            Ok(Ok(stream)) => serve_connection(stream, early).await,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed")
                            }
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    }
                }
            });
        }

        tracing::info!("shutting down: closing connections");
        sweep.abort();
        for task in background {
            task.abort();
        }
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
}

/// A connection before it is a WebSocket: who counts its address's unfinished request heads,
/// and the one deadline for its TLS handshake and request head.
struct Early {
    ctx: Arc<http::Ctx>,
    guard: Arc<guard::IpGuard>,
    peer: std::net::SocketAddr,
    deadline: tokio::time::Instant,
}

/// Serves one accepted connection, plain or TLS: a WebSocket when its first request is an
/// upgrade, plain HTTP otherwise.
async fn serve_connection<S>(stream: S, early: Early)
where
    S: AsyncRead + AsyncWrite + HoldForFin + Unpin + Send + 'static,
{
    let mut io = ConnIo::new(stream);
    let Early {
        ctx, guard, peer, ..
    } = &early;
    let wait = || guard.pending(peer.ip());
    let head = tokio::select! {
        head = tokio::time::timeout_at(early.deadline, http::read_head(&mut io, wait)) => head,
        () = ctx.shutdown.cancelled() => return,
    };
    match head {
        // The WebSocket gets a task of its own (see `http::upgrade`).
        Ok(Ok(http::Head::WebSocket(req))) => http::upgrade(io, req, ctx, peer.ip()).await,
        Ok(Ok(http::Head::Http)) => serve_http(TokioIo::new(io), early).await,
        Ok(Ok(http::Head::Gone)) => {}
        Ok(Ok(http::Head::Crowded)) => {
            tracing::debug!(%peer, "too many unfinished request heads from this address: closed");
        }
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "reading the request failed"),
        Err(_) => tracing::debug!(%peer, "request head timed out"),
    }
}

/// Serves plain HTTP on one connection (one request: answers close the connection). The
/// request head must be complete by the connection's deadline, and may not be longer than the
/// relay's own reader takes ([`http::MAX_HEAD`]): hyper would buffer ~400 KB by default.
async fn serve_http<I>(io: I, early: Early)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let Early {
        ctx,
        peer,
        deadline,
        ..
    } = early;
    let svc_ctx = ctx.clone();
    let service = service_fn(move |req| http::handle(req, svc_ctx.clone()));
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(left.max(Duration::from_millis(1)))
        .max_buf_size(http::MAX_HEAD)
        .serve_connection(io, service);
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
}

/// The token check the configuration asks for, if any.
fn auth_config(config: &Config) -> std::io::Result<Option<Arc<auth::AuthConfig>>> {
    let invalid =
        |e: auth::AuthError| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string());
    let ed25519_public_key = config
        .auth_public_key
        .as_deref()
        .map(auth::AuthConfig::parse_ed25519_public_key)
        .transpose()
        .map_err(invalid)?;
    let cfg = auth::AuthConfig {
        hs256_secret: config.auth_secret.as_ref().map(|s| s.as_bytes().to_vec()),
        ed25519_public_key,
        leeway_secs: config.auth_leeway.as_secs(),
        max_lifetime_secs: config.auth_max_lifetime.as_secs(),
    };
    Ok(cfg.enabled().then(|| Arc::new(cfg)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The relay skips the per-socket TCP_NODELAY call when the listener's setting carries
    /// over to accepted sockets; this checks that it does, through tokio.
    #[tokio::test]
    async fn accepted_sockets_inherit_nodelay_from_the_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let inherited = nodelay_inherited(&listener);
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        if inherited {
            assert!(accepted.nodelay().unwrap(), "TCP_NODELAY was not inherited");
        }
        assert!(cfg!(not(target_os = "linux")) || inherited);
        drop(client);
    }
}
