//! One WebSocket connection: a single `select!` loop over the socket, the outbound queue, the
//! heartbeat, the slow-consumer signal and shutdown.
//!
//! The loop is generic over the socket (`Stream + Sink` of tungstenite messages), so it runs the
//! same on TCP, on an upgraded HTTP connection, or on anything a test supplies. Every refused
//! input gets an `error` reply and the loop goes on; only an over-size frame, a flood past the
//! rate limit, a dead peer, a slow consumer or shutdown end it.

use crate::auth::{self, AuthConfig, AuthError, Claims};
use crate::guard::{IpTicket, TokenBucket};
use crate::io::{ConnIo, HoldForFin};
use crate::metrics::{AuthFailure, Metrics};
use crate::queue::Recv;
use crate::relay::{PeerRx, Relay};
use crate::rooms::Refusal;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use protocol::{ClientId, ClientMessage, ErrorCode, ServerMessage};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

/// How long the final Close frame may take to go out.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The timers and limits of a connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Interval between pings.
    pub ping_interval: Duration,
    /// Silence after which the peer is dropped.
    pub idle_timeout: Duration,
    /// Longest a batch of writes may take.
    pub write_timeout: Duration,
    /// Sustained messages per second (0: no limit).
    pub rate_limit: u32,
    /// Burst above the sustained rate.
    pub rate_burst: u32,
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    /// The socket ended (EOF): nothing more to send.
    Gone,
    /// The socket failed (reset, write error): the session may be resumed.
    Lost,
    /// The peer sent Close; tungstenite queued the reply, which must still be flushed.
    PeerClosed,
    /// The relay is shutting down.
    Shutdown,
    /// No frame from the peer within the idle timeout.
    Idle,
    /// A frame over the size limit.
    TooBig,
    /// Kept flooding past the rate limit.
    Flood,
    /// The outbound queue filled up, or a write timed out.
    Slow,
}

impl Exit {
    fn close_frame(self) -> Option<CloseFrame> {
        let (code, reason) = match self {
            Exit::Gone | Exit::Lost | Exit::Slow | Exit::PeerClosed => return None,
            Exit::Shutdown => (CloseCode::Away, "server shutting down"),
            Exit::Idle => (CloseCode::Away, "heartbeat timeout"),
            Exit::TooBig => (CloseCode::Size, "message too big"),
            Exit::Flood => (CloseCode::Policy, "rate limit exceeded"),
        };
        Some(CloseFrame {
            code,
            reason: reason.into(),
        })
    }
}

/// Per-connection and per-address message rates, and the count of ignored refusals.
struct RateLimiter {
    conn: Option<TokenBucket>,
    ticket: Option<IpTicket>,
    /// Messages refused since the last accepted one.
    refused: u32,
    burst: u32,
}

impl RateLimiter {
    fn new(limits: &ConnLimits, ticket: Option<IpTicket>) -> Self {
        let conn = (limits.rate_limit > 0).then(|| {
            TokenBucket::new(
                f64::from(limits.rate_limit),
                f64::from(limits.rate_burst.max(1)),
            )
        });
        RateLimiter {
            conn,
            ticket,
            refused: 0,
            burst: limits.rate_burst.max(1),
        }
    }

    /// Takes a token from both buckets; the refusal to send when either is empty.
    fn allow(&mut self) -> Result<(), String> {
        let conn_ok = self.conn.as_mut().is_none_or(TokenBucket::take);
        let ip_ok = conn_ok && self.ticket.as_ref().is_none_or(IpTicket::allow_message);
        let why = if !conn_ok {
            let rate = self.conn.as_ref().map_or(0.0, TokenBucket::rate);
            format!("rate limit exceeded ({rate} messages/s): message dropped")
        } else if !ip_ok {
            "rate limit of your address exceeded: message dropped".to_owned()
        } else {
            self.refused = 0;
            return Ok(());
        };
        self.refused += 1;
        Err(why)
    }

    /// The client ignored a whole burst of refusals.
    fn flooding(&self) -> bool {
        self.refused > self.burst
    }
}

/// How a connection authenticates.
pub enum AuthState {
    /// The relay does not require tokens.
    Off,
    /// The connect URL carried a valid token.
    Verified(Claims),
    /// The connect URL carried a bad token.
    Failed(AuthError),
    /// Tokens are required and none was given: the first message must be `auth`.
    Pending(Arc<AuthConfig>),
}

/// What a connection brings besides its socket.
pub struct Session {
    /// Its authentication.
    pub auth: AuthState,
    /// Its address's share of the per-address limits.
    pub ticket: Option<IpTicket>,
    /// A resume token from the connect URL (`?resume=`).
    pub resume: Option<String>,
}

/// How long an unauthenticated connection may take to send its `auth` message.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

fn auth_failure_kind(e: &AuthError) -> AuthFailure {
    if matches!(e, AuthError::Expired { .. }) {
        AuthFailure::ExpiredToken
    } else {
        AuthFailure::InvalidToken
    }
}

/// Settles authentication: the claims of a valid token, or `None` after refusing the client.
async fn authenticate<S>(
    ws: &mut S,
    auth: AuthState,
    session: &Option<IpTicket>,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) -> Result<Option<Claims>, ()>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    let result = match auth {
        AuthState::Off => return Ok(None),
        AuthState::Verified(claims) => return Ok(Some(claims)),
        AuthState::Failed(e) => Err((e.to_string(), Some(auth_failure_kind(&e)))),
        AuthState::Pending(cfg) => {
            // The upgrade's answer may still wait for the first write: the client needs it
            // before it can send `auth`.
            if ws.flush().await.is_err() {
                return Err(());
            }
            let read_first = tokio::time::timeout(AUTH_TIMEOUT, async {
                loop {
                    match ws.next().await {
                        Some(Ok(Message::Text(t))) => return Some(t),
                        // Not an `auth` message either: refused like any other first message.
                        Some(Ok(Message::Binary(_))) => return Some(Default::default()),
                        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                        _ => return None,
                    }
                }
            });
            // Shutdown must not wait for a client that has not authenticated yet.
            let first = tokio::select! {
                first = read_first => first,
                () = shutdown.cancelled() => {
                    let close = Message::Close(Exit::Shutdown.close_frame());
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.send(close)).await;
                    return Err(());
                }
            };
            match first {
                Ok(Some(text)) => match ClientMessage::decode(&text) {
                    Ok(ClientMessage::Auth { token }) => {
                        auth::verify(&token, &cfg, auth::now_unix()).map_err(|e| {
                            let kind = auth_failure_kind(&e);
                            (e.to_string(), Some(kind))
                        })
                    }
                    _ => Err((
                        "authentication required: send {\"type\":\"auth\",\"token\":...} first \
                         or connect with ?token="
                            .to_owned(),
                        None,
                    )),
                },
                Ok(None) => return Err(()),
                Err(_) => Err(("authentication timed out".to_owned(), None)),
            }
        }
    };
    match result {
        Ok(claims) => Ok(Some(claims)),
        Err((message, failure)) => {
            if let Some(kind) = failure {
                metrics.auth_failure(kind);
                if let Some(ticket) = session {
                    ticket.auth_failed();
                }
            }
            metrics.refused(ErrorCode::Unauthorized);
            let reply = ServerMessage::error(ErrorCode::Unauthorized, message);
            let close = CloseFrame {
                code: CloseCode::Policy,
                reason: "unauthorized".into(),
            };
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
                ws.feed(Message::text(reply.encode())).await?;
                ws.send(Message::Close(Some(close))).await
            })
            .await;
            Err(())
        }
    }
}

/// Serves one WebSocket until it ends, then removes the client from the relay.
pub async fn serve<X>(
    mut ws: WebSocketStream<ConnIo<X>>,
    relay: Relay,
    limits: ConnLimits,
    shutdown: CancellationToken,
    session: Session,
) where
    X: AsyncRead + AsyncWrite + HoldForFin + Unpin,
{
    let metrics = relay.metrics().clone();
    let Session {
        auth,
        ticket,
        resume,
    } = session;
    // Boxed: its state would otherwise stay in every connection's future for its whole life.
    let Ok(claims) = Box::pin(authenticate(&mut ws, auth, &ticket, &metrics, &shutdown)).await
    else {
        return;
    };
    let user = claims.as_ref().map(|c| c.sub.clone());
    let PeerRx { id, queue } = match resume {
        Some(token) => match relay.resume(&token, user.as_ref()) {
            Some(peer) => peer,
            None => {
                // A fresh session instead, and the client is told why.
                let peer = relay.connect(user).await;
                metrics.refused(ErrorCode::ResumeFailed);
                relay.refuse(&peer.id, Refusal::new(
                    ErrorCode::ResumeFailed,
                    "session not resumed (unknown token or grace period over): this is a new session",
                ));
                peer
            }
        },
        None => relay.connect(user).await,
    };
    metrics.connection_opened();
    tracing::debug!(client = %id, "connected");
    let mut limiter = RateLimiter::new(&limits, ticket);
    let mut last_seen = Instant::now();
    let mut ping = tokio::time::interval_at(last_seen + limits.ping_interval, limits.ping_interval);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);

    let mut batch = VecDeque::new();
    let exit = loop {
        // Unbiased: a busy outbound queue must not starve reading, nor the reverse.
        tokio::select! {
            () = shutdown.cancelled() => break Exit::Shutdown,
            recv = queue.recv(&mut batch) => {
                if let Recv::Kicked = recv {
                    break Exit::Slow;
                }
                let write = async {
                    for msg in batch.drain(..) {
                        ws.feed(Message::Text(msg)).await?;
                    }
                    ws.flush().await
                };
                // A write blocked by a peer that does not read ends on the write timeout, or
                // sooner when the relay drops the peer because its queue filled meanwhile.
                tokio::select! {
                    res = tokio::time::timeout(limits.write_timeout, write) => match res {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => break Exit::Lost,
                        Err(_) => break Exit::Slow,
                    },
                    () = queue.kicked() => break Exit::Slow,
                    () = shutdown.cancelled() => break Exit::Shutdown,
                }
                batch.clear();
            }
            frame = ws.next() => {
                last_seen = Instant::now();
                match frame {
                    Some(Ok(Message::Text(text))) => {
                        if let Err(why) = limiter.allow() {
                            if limiter.flooding() {
                                break Exit::Flood;
                            }
                            metrics.refused(ErrorCode::RateLimited);
                            relay.refuse(&id, Refusal::new(ErrorCode::RateLimited, why));
                            continue;
                        }
                        let received = Instant::now();
                        let refused = match ClientMessage::decode(&text) {
                            Ok(msg) => handle(&relay, &id, msg, claims.as_ref()).await,
                            Err(e) => {
                                let code = e.code;
                                relay.refuse(&id, Refusal::new(e.code, e.message));
                                Err(code)
                            }
                        };
                        match refused {
                            Ok(true) => metrics.observe_relay_latency(received.elapsed()),
                            Ok(false) => {}
                            Err(code) => {
                                metrics.refused(code);
                                if code == ErrorCode::BadPassword {
                                    metrics.auth_failure(AuthFailure::BadPassword);
                                    if let Some(t) = &limiter.ticket {
                                        t.auth_failed();
                                    }
                                }
                            }
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        metrics.refused(ErrorCode::BinaryFrame);
                        relay.refuse(&id, Refusal::new(
                            ErrorCode::BinaryFrame,
                            "binary frames are not supported: send JSON text",
                        ));
                    }
                    // Pings are answered by tungstenite; pongs only refresh `last_seen`.
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    Some(Ok(Message::Close(_))) => break Exit::PeerClosed,
                    None => break Exit::Gone,
                    Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                        tracing::info!(client = %id, size, max_size, "message too big");
                        break Exit::TooBig;
                    }
                    // The peer closed TCP without a Close frame: it went away on purpose (a
                    // process that exits); network trouble shows as an I/O error or silence.
                    Some(Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake))) => {
                        break Exit::Gone;
                    }
                    Some(Err(e)) => {
                        tracing::debug!(client = %id, error = %e, "read failed");
                        break Exit::Lost;
                    }
                }
            }
            _ = ping.tick() => {
                if last_seen.elapsed() >= limits.idle_timeout {
                    break Exit::Idle;
                }
                let sent = tokio::time::timeout(limits.write_timeout, ws.send(Message::Ping(Default::default()))).await;
                if !matches!(sent, Ok(Ok(()))) {
                    break Exit::Lost;
                }
            }
        }
    };

    // A lost connection (not a clean close) keeps its session for resuming.
    if matches!(exit, Exit::Lost | Exit::Idle) {
        relay.detach(id.clone(), queue.clone());
    } else {
        relay.disconnect_if(&id, &queue).await;
    }
    metrics.connection_closed();
    tracing::debug!(client = %id, reason = ?exit, "disconnected");
    if exit == Exit::PeerClosed {
        // The Close reply is the last write: it leaves with the FIN when the socket closes.
        ws.get_ref().hold_for_fin();
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.flush()).await;
    } else if let Some(frame) = exit.close_frame() {
        // The closing handshake: send Close, then read until the peer's Close (or EOF), so the
        // socket is not torn down under frames the peer has yet to read.
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            ws.send(Message::Close(Some(frame))).await?;
            while let Some(frame) = ws.next().await {
                if matches!(frame?, Message::Close(_)) {
                    break;
                }
            }
            Ok::<(), WsError>(())
        })
        .await;
    }
}

/// Handles one message, applying the access token's rules first: the token fixes the user id
/// and may restrict rooms. Returns whether it was relayed to someone, or the refusal's code.
async fn handle(
    relay: &Relay,
    id: &ClientId,
    msg: ClientMessage,
    claims: Option<&Claims>,
) -> Result<bool, ErrorCode> {
    if let Some(claims) = claims {
        match &msg {
            ClientMessage::Register { .. } => {
                relay.reply(
                    id,
                    &ServerMessage::Registered {
                        user_id: claims.sub.clone(),
                    },
                );
                return Ok(false);
            }
            ClientMessage::Join { room_id, .. } if !claims.allows_room(room_id) => {
                relay.reply(
                    id,
                    &ServerMessage::JoinError {
                        error: format!("your token does not allow room {room_id}"),
                        room_id: Some(room_id.clone()),
                        code: Some(ErrorCode::RoomNotAllowed),
                    },
                );
                relay.metrics().auth_failure(AuthFailure::RoomNotAllowed);
                return Err(ErrorCode::RoomNotAllowed);
            }
            _ => {}
        }
    }
    relay.handle(id, msg).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::relay::RelayLimits;
    use crate::rooms::RoomLimits;
    use tokio_tungstenite::tungstenite::protocol::Role;

    /// Every connection's future lives as long as the connection: what it holds is most of an
    /// idle connection's memory (the 6 KB per connection target). A Redis round trip's state
    /// inlined in it added 800 bytes once; this catches such growth.
    #[tokio::test]
    async fn the_connection_future_stays_small() {
        let relay = Relay::new(
            RelayLimits {
                rooms: RoomLimits {
                    max_members: 10,
                    max_rooms: 10,
                },
                queue_size: 8,
                room_list: true,
                resume_grace: Duration::ZERO,
            },
            Arc::new(Metrics::new()),
            Default::default(),
        );
        let limits = ConnLimits {
            ping_interval: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            write_timeout: Duration::from_secs(1),
            rate_limit: 0,
            rate_burst: 0,
        };
        let session = Session {
            auth: AuthState::Off,
            ticket: None,
            resume: None,
        };
        let (socket, _far) = tokio::io::duplex(64);
        let ws = WebSocketStream::from_raw_socket(ConnIo::new(socket), Role::Server, None).await;
        let future = serve(ws, relay, limits, CancellationToken::new(), session);
        let size = std::mem::size_of_val(&future);
        assert!(size <= 2400, "a connection's future takes {size} bytes");
    }
}
