//! The HTTP side of the listener: `/healthz` (liveness), `/readyz` (readiness: 503 while
//! draining), `/metrics` (Prometheus), the built browser app or a plain-text banner on `/`, and
//! a WebSocket upgrade on any path, which becomes a signaling connection (see `conn.rs`).
//!
//! The first request head of a connection is read here ([`read_head`]): a WebSocket upgrade is
//! answered directly, its `101` leaving in the same write as the `welcome` (one packet where
//! hyper's upgrade took two), and the connection then runs in a task sized for it alone;
//! anything else is handed to hyper with the bytes read so far. Before upgrading, the request must pass the origin allow-list, the
//! per-address limits (`guard.rs`) and the connection cap (a semaphore whose permit lives as
//! long as the WebSocket); a token in the URL is checked here too.

use crate::auth::{self, AuthConfig};
use crate::conn::{self, AuthState, ConnLimits, Session};
use crate::guard::{IpGuard, Pending, Refused, Slot};
use crate::io::{ConnIo, HoldForFin};
use crate::metrics::{self, AuthFailure, Gauges};
use crate::relay::Relay;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
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

/// Longest the answer to a refused upgrade may take to go out.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);

/// A response with `body` of `content_type`, closing the connection after it.
fn response(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // One request per plain HTTP connection: no idle keep-alive sockets to account for.
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    response(
        status,
        "text/plain; charset=utf-8",
        Bytes::from_static(body.as_bytes()),
    )
}

/// Whether a comma-separated header value (`Connection`, `Upgrade`) lists `token`.
fn lists_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .any(|v| v.to_str().is_ok_and(|s| lists_token(s, token)))
}

/// Answers one HTTP request.
pub(crate) async fn handle(
    req: Request<Incoming>,
    ctx: Arc<Ctx>,
) -> Result<Response<Body>, std::convert::Infallible> {
    if header_has_token(req.headers(), header::UPGRADE, "websocket") {
        // Upgrades are taken before hyper sees the connection (`read_head`): this one came
        // after another request, or with a head too large or malformed.
        return Ok(text(
            StatusCode::BAD_REQUEST,
            "bad WebSocket upgrade request: it must be the connection's first request\n",
        ));
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
                detached: ctx.relay.detached_count(),
                pending_heads: ctx.guard.pending_total(),
            };
            let body = Bytes::from(ctx.relay.metrics().render(&gauges));
            response(StatusCode::OK, metrics::CONTENT_TYPE, body)
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
            let mut res = response(StatusCode::OK, content_type(&file), Bytes::from(bytes));
            // Trunk names assets by content hash; only index.html must be fetched anew.
            let cache = if rel == "index.html" {
                "no-cache"
            } else {
                "public, max-age=31536000, immutable"
            };
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
            res
        }
        Err(_) => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// The value of `name` in a query string (no percent-decoding: tokens are base64url).
fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// Longest request head read before deciding what a connection is; longer ones go to hyper,
/// which refuses them.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Most header lines parsed in a WebSocket upgrade request.
const MAX_HEADERS: usize = 100;

/// What the first request of a connection is.
pub(crate) enum Head {
    /// A WebSocket upgrade, answered by [`upgrade`].
    WebSocket(WsRequest),
    /// Anything else: its bytes were pushed back for hyper to read.
    Http,
    /// The client closed the connection before its request head was complete.
    Gone,
    /// The head is unfinished and its address has as many unfinished heads as allowed.
    Crowded,
}

/// What the relay looks at in a WebSocket upgrade request.
pub(crate) struct WsRequest {
    get: bool,
    http11: bool,
    /// Path and query.
    target: String,
    connection_upgrade: bool,
    version_13: bool,
    /// The `Sec-WebSocket-Key`, when there is exactly one and it is valid (RFC 6455 §4.1: the
    /// base64 of 16 bytes).
    key: Result<String, &'static str>,
    /// The `Origin` (`Err` when there are several: RFC 6454 §7.3 allows one).
    origin: Result<Option<String>, ()>,
    /// Whether the request announces a body (`Content-Length` other than 0, or
    /// `Transfer-Encoding`): an upgrade has none, and its bytes would be read as frames.
    has_body: bool,
}

impl WsRequest {
    /// The upgrade in `req`, or `None` when it does not ask for a WebSocket.
    fn from_parsed(req: &httparse::Request<'_, '_>) -> Option<WsRequest> {
        let values = |name: &'static str| {
            req.headers
                .iter()
                .filter(move |h| h.name.eq_ignore_ascii_case(name))
                .filter_map(|h| std::str::from_utf8(h.value).ok())
        };
        let has_token =
            |name: &'static str, token: &str| values(name).any(|v| lists_token(v, token));
        if !has_token("upgrade", "websocket") {
            return None;
        }
        let first = |name: &'static str| values(name).next().map(|v| v.trim().to_owned());
        let count = |name: &'static str| {
            req.headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name))
                .count()
        };
        let key = match (count("sec-websocket-key"), first("sec-websocket-key")) {
            (1, Some(key)) if is_websocket_key(&key) => Ok(key),
            (0, _) => Err("missing Sec-WebSocket-Key\n"),
            (1, _) => Err("Sec-WebSocket-Key is not the base64 of 16 bytes\n"),
            _ => Err("more than one Sec-WebSocket-Key\n"),
        };
        let has_body =
            count("transfer-encoding") > 0 || values("content-length").any(|v| v.trim() != "0");
        Some(WsRequest {
            get: req.method == Some("GET"),
            http11: req.version == Some(1),
            target: req.path.unwrap_or("/").to_owned(),
            connection_upgrade: has_token("connection", "upgrade"),
            version_13: first("sec-websocket-version").is_some_and(|v| v == "13"),
            key,
            origin: if count("origin") > 1 {
                Err(())
            } else {
                Ok(first("origin"))
            },
            has_body,
        })
    }

    fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }
}

/// Whether `key` is a valid `Sec-WebSocket-Key`: padded base64 of exactly 16 bytes.
fn is_websocket_key(key: &str) -> bool {
    use base64::Engine;
    key.len() == 24
        && base64::engine::general_purpose::STANDARD
            .decode(key)
            .is_ok_and(|bytes| bytes.len() == 16)
}

/// Reads the first request head of a connection and tells a WebSocket upgrade (handled here)
/// from anything else (pushed back, for hyper). Bytes after an upgrade's head stay in `io`.
///
/// A head that is not complete after the first read must wait for more: `wait` then counts
/// the connection among its address's unfinished ones ([`Head::Crowded`] when it has too many),
/// until the head is complete. Heads that arrive whole, nearly all of them, are never counted,
/// so a burst of quick clients from one address is not refused.
pub(crate) async fn read_head<S: AsyncRead + Unpin>(
    io: &mut ConnIo<S>,
    wait: impl FnOnce() -> Option<Pending>,
) -> std::io::Result<Head> {
    let mut head = Vec::with_capacity(4096);
    let mut wait = Some(wait);
    let mut _waiting = None;
    loop {
        if head.len() == head.capacity() {
            if head.len() >= MAX_HEAD {
                io.unread(&head);
                return Ok(Head::Http);
            }
            // Exact: the head never grows past MAX_HEAD plus one step.
            head.reserve_exact(4096);
        }
        if io.read_buf(&mut head).await? == 0 {
            return Ok(Head::Gone);
        }
        return Ok(match parse_head(&head) {
            Parsed::Partial => {
                if let Some(wait) = wait.take() {
                    match wait() {
                        Some(pending) => _waiting = Some(pending),
                        None => return Ok(Head::Crowded),
                    }
                }
                continue;
            }
            Parsed::WebSocket(ws, len) => {
                io.unread(&head[len..]);
                Head::WebSocket(ws)
            }
            Parsed::Other => {
                io.unread(&head);
                Head::Http
            }
        });
    }
}

/// What the bytes of a request head read so far hold.
enum Parsed {
    Partial,
    /// A WebSocket upgrade whose head is this many bytes long.
    WebSocket(WsRequest, usize),
    /// Another request, or a malformed one (hyper then gives the error answer).
    Other,
}

/// Parses a request head. Not async: the header table stays on the stack instead of in
/// every connection's future.
fn parse_head(head: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Ok(httparse::Status::Complete(len)) => match WsRequest::from_parsed(&req) {
            Some(ws) => Parsed::WebSocket(ws, len),
            None => Parsed::Other,
        },
        Err(_) => Parsed::Other,
    }
}

/// An upgrade that passed every check: what the connection needs.
struct Admitted {
    accept: String,
    session: Session,
}

/// Checks an upgrade request: well-formed, not draining, allowed origin, the address's limits,
/// a token if one is given, and a free connection slot. A refusal is a status and a text.
fn admit(req: &WsRequest, ctx: &Ctx, ip: IpAddr) -> Result<Admitted, (StatusCode, &'static str)> {
    if !req.get || !req.http11 || !req.connection_upgrade || !req.version_13 {
        return Err((StatusCode::BAD_REQUEST, "bad WebSocket upgrade request\n"));
    }
    let key = req
        .key
        .as_ref()
        .map_err(|why| (StatusCode::BAD_REQUEST, *why))?;
    if req.has_body {
        return Err((StatusCode::BAD_REQUEST, "a WebSocket upgrade has no body\n"));
    }
    let Ok(origin) = &req.origin else {
        return Err((StatusCode::BAD_REQUEST, "more than one Origin header\n"));
    };
    if ctx.shutdown.is_cancelled() || ctx.draining.load(Ordering::Relaxed) {
        return Err((StatusCode::SERVICE_UNAVAILABLE, "server shutting down\n"));
    }
    if !ctx.allowed_origins.is_empty() {
        let origin = origin.as_deref().unwrap_or("");
        if !ctx.allowed_origins.iter().any(|allowed| allowed == origin) {
            tracing::info!(%ip, origin, "origin not allowed");
            ctx.relay.metrics().auth_failure(AuthFailure::Origin);
            return Err((StatusCode::FORBIDDEN, "origin not allowed\n"));
        }
    }
    let resume = query_param(req.query(), "resume").map(str::to_owned);
    let (slot, claimed) = take_slot(ctx, ip, resume.as_deref())?;
    let auth = match &ctx.auth {
        None => AuthState::Off,
        Some(cfg) => match query_param(req.query(), "token") {
            Some(token) => match auth::verify(token, cfg, auth::now_unix()) {
                Ok(claims) => AuthState::Verified(claims),
                Err(e) => AuthState::Failed(e),
            },
            None => AuthState::Pending(cfg.clone()),
        },
    };
    Ok(Admitted {
        accept: derive_accept_key(key.as_bytes()),
        session: Session {
            auth,
            slot: Some(slot),
            resume,
            claimed,
        },
    })
}

/// The connection slot of an upgrade from `ip`: the one of the detached session its resume
/// token names (true: claimed), else a new one, if the address and the relay have room.
fn take_slot(
    ctx: &Ctx,
    ip: IpAddr,
    resume: Option<&str>,
) -> Result<(Slot, bool), (StatusCode, &'static str)> {
    if let Some(token) = resume {
        let claimed = ctx.relay.claim_detached(token, ip);
        if let Some(slot) = claimed.map_err(|why| refusal(ctx, why))? {
            return Ok((slot, true));
        }
    }
    let ticket = ctx.guard.admit(ip).map_err(|why| refusal(ctx, why))?;
    let Ok(permit) = ctx.permits.clone().try_acquire_owned() else {
        tracing::warn!("connection limit reached: upgrade refused");
        return Err((StatusCode::SERVICE_UNAVAILABLE, "too many connections\n"));
    };
    Ok((Slot::new(ticket, permit), false))
}

/// The answer to an upgrade its address's limits refuse.
fn refusal(ctx: &Ctx, why: Refused) -> (StatusCode, &'static str) {
    match why {
        Refused::Throttled => {
            ctx.relay.metrics().auth_failure(AuthFailure::Throttled);
            (
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed authentications\n",
            )
        }
        Refused::TooManyConnections => (
            StatusCode::TOO_MANY_REQUESTS,
            "too many connections from your address\n",
        ),
    }
}

/// Answers a WebSocket upgrade request: a refusal with its status, or `101 Switching Protocols`
/// (sent with the first frames) and the signaling connection, started in a task of its own:
/// one sized for the connection alone, not for this one's request head and HTTP state.
pub(crate) async fn upgrade<S>(mut io: ConnIo<S>, req: WsRequest, ctx: &Ctx, ip: IpAddr)
where
    S: AsyncRead + AsyncWrite + HoldForFin + Unpin + Send + 'static,
{
    let Admitted { accept, session } = match admit(&req, ctx, ip) {
        Ok(admitted) => admitted,
        Err((status, body)) => {
            let response = format!(
                "HTTP/1.1 {} {}\r\ncontent-type: text/plain; charset=utf-8\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                status.as_u16(),
                status.canonical_reason().unwrap_or(""),
                body.len(),
            );
            let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
                io.write_all(response.as_bytes()).await?;
                io.shutdown().await
            })
            .await;
            return;
        }
    };
    io.set_prefix(
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
             sec-websocket-accept: {accept}\r\n\r\n"
        )
        .into_bytes(),
    );
    let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(ctx.ws_config)).await;
    let serve = conn::serve(
        ws,
        ctx.relay.clone(),
        ctx.limits,
        ctx.shutdown.clone(),
        session,
    );
    ctx.tracker.spawn(serve);
}
