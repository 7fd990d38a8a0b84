//! The HTTP side of the listener: `/healthz` (liveness), `/readyz` (readiness: 503 while
//! draining), `/metrics` (Prometheus), the built browser app or a plain-text banner on `/`, and
//! a WebSocket upgrade on any path, which becomes a signaling connection (see `conn.rs`).
//!
//! hyper parses the request and performs the upgrade; tungstenite then speaks WebSocket on the
//! upgraded stream. Before upgrading, the request must pass the origin allow-list, the
//! per-address limits (`guard.rs`) and the connection cap (a semaphore whose permit lives as
//! long as the WebSocket); a token in the URL is checked here too.

use crate::auth::{self, AuthConfig};
use crate::conn::{self, AuthState, ConnLimits, Session};
use crate::guard::{IpGuard, Refused};
use crate::metrics::{AuthFailure, Gauges};
use crate::relay::Relay;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Semaphore;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Everything a request handler needs, shared by all connections.
pub(crate) struct Ctx {
    pub relay: Relay,
    pub auth: Option<Arc<AuthConfig>>,
    pub allowed_origins: Vec<String>,
    pub guard: Arc<IpGuard>,
    pub draining: AtomicBool,
    pub static_dir: Option<std::path::PathBuf>,
    pub limits: ConnLimits,
    pub ws_config: WebSocketConfig,
    pub permits: Arc<Semaphore>,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
}

type Body = Full<Bytes>;

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut res = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    // One request per plain HTTP connection: no idle keep-alive sockets to account for.
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Answers one HTTP request.
pub(crate) async fn handle(
    mut req: Request<Incoming>,
    ctx: Arc<Ctx>,
    ip: IpAddr,
) -> Result<Response<Body>, std::convert::Infallible> {
    let headers = req.headers();
    if header_has_token(headers, header::UPGRADE, "websocket") {
        return Ok(upgrade(&mut req, ctx, ip));
    }
    Ok(match (req.method(), req.uri().path()) {
        (&Method::GET | &Method::HEAD, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET | &Method::HEAD, "/readyz") => {
            if ctx.draining.load(Ordering::Relaxed) {
                text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
            } else if !ctx.relay.healthy() {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "shared store unavailable\n",
                )
            } else {
                text(StatusCode::OK, "ready\n")
            }
        }
        (&Method::GET | &Method::HEAD, "/metrics") => {
            let gauges = Gauges {
                rooms: ctx.relay.room_count(),
                members: ctx.relay.member_count(),
                ready: !ctx.draining.load(Ordering::Relaxed) && ctx.relay.healthy(),
            };
            let mut res =
                Response::new(Full::new(Bytes::from(ctx.relay.metrics().render(&gauges))));
            let h = res.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
            res
        }
        (&Method::GET | &Method::HEAD, path) => match &ctx.static_dir {
            Some(dir) => serve_file(dir, path).await,
            None if path == "/" => text(
                StatusCode::OK,
                "WebRTC signaling relay: connect with a WebSocket.\n",
            ),
            None => text(StatusCode::NOT_FOUND, "not found\n"),
        },
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
    })
}

/// Content type by file extension, for the files of the built app.
fn content_type(path: &std::path::Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Serves a file of `dir` (`/` is `index.html`). Paths with `..`, `%` or a backslash are
/// refused rather than decoded, so nothing outside `dir` can be named.
async fn serve_file(dir: &std::path::Path, path: &str) -> Response<Body> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "index.html" } else { rel };
    if rel
        .split('/')
        .any(|part| part.is_empty() || part.starts_with('.'))
        || rel.contains(['%', '\\'])
    {
        return text(StatusCode::NOT_FOUND, "not found\n");
    }
    let file = dir.join(rel);
    match tokio::fs::read(&file).await {
        Ok(bytes) => {
            let mut res = Response::new(Full::new(Bytes::from(bytes)));
            let h = res.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(&file)),
            );
            // Trunk names assets by content hash; only index.html must be fetched anew.
            let cache = if rel == "index.html" {
                "no-cache"
            } else {
                "public, max-age=31536000, immutable"
            };
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
            res
        }
        Err(_) => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Validates a WebSocket upgrade, answers 101 and starts the connection on the upgraded stream.
/// The value of `name` in a query string (no percent-decoding: tokens are base64url).
fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

fn upgrade(req: &mut Request<Incoming>, ctx: Arc<Ctx>, ip: IpAddr) -> Response<Body> {
    let headers = req.headers();
    if req.method() != Method::GET
        || !header_has_token(headers, header::CONNECTION, "upgrade")
        || headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_none_or(|v| v != "13")
    {
        return text(StatusCode::BAD_REQUEST, "bad WebSocket upgrade request\n");
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return text(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key\n");
    };
    if ctx.shutdown.is_cancelled() || ctx.draining.load(Ordering::Relaxed) {
        return text(StatusCode::SERVICE_UNAVAILABLE, "server shutting down\n");
    }
    if !ctx.allowed_origins.is_empty() {
        let origin = headers
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .unwrap_or("");
        if !ctx.allowed_origins.iter().any(|allowed| allowed == origin) {
            tracing::info!(%ip, origin, "origin not allowed");
            ctx.relay.metrics().auth_failure(AuthFailure::Origin);
            return text(StatusCode::FORBIDDEN, "origin not allowed\n");
        }
    }
    let ticket = match ctx.guard.admit(ip) {
        Ok(ticket) => ticket,
        Err(Refused::Throttled) => {
            ctx.relay.metrics().auth_failure(AuthFailure::Throttled);
            return text(
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed authentications\n",
            );
        }
        Err(Refused::TooManyConnections) => {
            return text(
                StatusCode::TOO_MANY_REQUESTS,
                "too many connections from your address\n",
            );
        }
    };
    let auth = match &ctx.auth {
        None => AuthState::Off,
        Some(cfg) => match query_param(req.uri().query(), "token") {
            Some(token) => match auth::verify(token, cfg, auth::now_unix()) {
                Ok(claims) => AuthState::Verified(claims),
                Err(e) => AuthState::Failed(e),
            },
            None => AuthState::Pending(cfg.clone()),
        },
    };
    let resume = query_param(req.uri().query(), "resume").map(str::to_owned);
    let Ok(permit) = ctx.permits.clone().try_acquire_owned() else {
        tracing::warn!("connection limit reached: upgrade refused");
        return text(StatusCode::SERVICE_UNAVAILABLE, "too many connections\n");
    };
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(req);
    let task_ctx = ctx.clone();
    ctx.tracker.spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade failed");
                return;
            }
        };
        let ws = WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            Some(task_ctx.ws_config),
        )
        .await;
        conn::serve(
            ws,
            task_ctx.relay.clone(),
            task_ctx.limits,
            task_ctx.shutdown.clone(),
            Session {
                auth,
                ticket: Some(ticket),
                resume,
            },
        )
        .await;
        drop(permit);
    });
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    res
}
