//! One WebSocket connection: a single `select!` loop over the socket, the outbound queue, the
//! heartbeat, the slow-consumer signal and shutdown.
//!
//! The loop is generic over the socket (`Stream + Sink` of tungstenite messages), so it runs the
//! same on TCP, on an upgraded HTTP connection, or on anything a test supplies. Every refused
//! input gets an `error` reply and the loop goes on; only an over-size frame, a broken frame, a
//! flood past the rate limit, an address that keeps failing to authenticate, a dead peer, a
//! slow consumer, a resume on another connection or shutdown end it.
//!
//! A connection holds its session's [`Slot`] (its share of the per-address and relay-wide
//! connection caps). When the connection is lost (a network error or silence, not a Close, a
//! broken frame or a refusal) the session keeps the slot while it waits to be resumed.

use crate::auth::{self, AuthConfig, AuthError, Claims};
use crate::guard::{IpTicket, Slot, TokenBucket};
use crate::io::{ConnIo, HoldForFin};
use crate::metrics::{AuthFailure, Metrics};
use crate::queue::{Kick, Recv};
use crate::relay::{NotResumed, PeerRx, Relay};
use crate::rooms::Refusal;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use protocol::{ClientId, ClientMessage, ErrorCode, RoomId, ServerMessage};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
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
    /// A frame that breaks the WebSocket protocol (unmasked, bad opcode, invalid UTF-8...).
    Broken,
    /// Its address failed to authenticate too often (this connection's last failure did it).
    Throttled,
    /// Its session was resumed on another connection.
    Replaced,
    /// Its session was ended by a newer connection's token (see [`Kick::Ended`]).
    Ended,
}

impl From<Kick> for Exit {
    fn from(kick: Kick) -> Exit {
        match kick {
            Kick::Slow => Exit::Slow,
            Kick::Replaced => Exit::Replaced,
            Kick::Ended => Exit::Ended,
        }
    }
}

/// The Close code of a connection whose session was resumed on another one (an application
/// code: RFC 6455 §7.4.2 leaves 4000–4999 to applications).
pub const CLOSE_REPLACED: u16 = 4000;

impl Exit {
    fn close_frame(self) -> Option<CloseFrame> {
        let (code, reason) = match self {
            Exit::Gone | Exit::Lost | Exit::Slow | Exit::PeerClosed => return None,
            Exit::Shutdown => (CloseCode::Away, "server shutting down"),
            Exit::Idle => (CloseCode::Away, "heartbeat timeout"),
            Exit::TooBig => (CloseCode::Size, "message too big"),
            Exit::Flood => (CloseCode::Policy, "rate limit exceeded"),
            Exit::Broken => (CloseCode::Protocol, "protocol error"),
            Exit::Throttled => (
                CloseCode::Policy,
                "too many failed authentications from your address",
            ),
            Exit::Replaced => (
                CloseCode::from(CLOSE_REPLACED),
                "session resumed on another connection",
            ),
            Exit::Ended => (
                CloseCode::Policy,
                "session ended: a newer connection's token does not allow its room",
            ),
        };
        Some(CloseFrame {
            code,
            reason: reason.into(),
        })
    }
}

/// Per-connection and per-address message rates, and the count of ignored refusals; holds the
/// connection's slot, whose ticket carries the address's shared bucket.
struct RateLimiter {
    conn: Option<TokenBucket>,
    slot: Option<Slot>,
    /// Messages refused since the last accepted one.
    refused: u32,
    burst: u32,
}

impl RateLimiter {
    fn new(limits: &ConnLimits, slot: Option<Slot>) -> Self {
        let conn = (limits.rate_limit > 0).then(|| {
            TokenBucket::new(
                f64::from(limits.rate_limit),
                f64::from(limits.rate_burst.max(1)),
            )
        });
        RateLimiter {
            conn,
            slot,
            refused: 0,
            burst: limits.rate_burst.max(1),
        }
    }

    fn ticket(&self) -> Option<&IpTicket> {
        self.slot.as_ref().map(Slot::ticket)
    }

    /// Takes a token from both buckets; the refusal to send when either is empty.
    fn allow(&mut self) -> Result<(), String> {
        let conn_ok = self.conn.as_mut().is_none_or(TokenBucket::take);
        let ip_ok = conn_ok && self.ticket().is_none_or(IpTicket::allow_message);
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

    /// Takes `n` more tokens from both buckets (into debt if need be), for a request whose
    /// answer costs as much as `n` messages.
    fn charge(&mut self, n: u32) {
        if let Some(bucket) = &mut self.conn {
            bucket.charge(n);
        }
        if let Some(ticket) = self.ticket() {
            ticket.charge(n);
        }
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
    /// Its share of the connection caps.
    pub slot: Option<Slot>,
    /// A resume token from the connect URL (`?resume=`).
    pub resume: Option<String>,
    /// Whether `slot` was taken from the detached session `resume` names: it goes back to that
    /// session if this connection fails to authenticate.
    pub claimed: bool,
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
    ticket: Option<&IpTicket>,
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
                if let Some(ticket) = ticket {
                    ticket.auth_failed();
                }
            }
            metrics.refused(ErrorCode::Unauthorized);
            let reply = ServerMessage::error(ErrorCode::Unauthorized, message);
            refuse_connection(ws, &reply, "unauthorized").await;
            Err(())
        }
    }
}

/// Serves one WebSocket until it ends, then removes the client from the relay (or keeps its
/// session for resuming, when the connection was lost).
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
        slot,
        resume,
        claimed,
    } = session;
    // Boxed: its state would otherwise stay in every connection's future for its whole life.
    let ticket = slot.as_ref().map(Slot::ticket);
    let started = Box::pin(start(
        &mut ws,
        &relay,
        auth,
        ticket,
        resume.as_deref(),
        &shutdown,
    ))
    .await;
    let Some((claims, PeerRx { id, queue })) = started else {
        if let (true, Some(token), Some(slot)) = (claimed, &resume, slot) {
            // Not resumed here: the session keeps its slot for another try.
            relay.give_back(token, slot);
        }
        return;
    };
    drop(resume);
    metrics.connection_opened();
    tracing::debug!(client = %id, "connected");
    let mut limiter = RateLimiter::new(&limits, slot);
    let mut last_seen = Instant::now();
    let mut ping = tokio::time::interval_at(last_seen + limits.ping_interval, limits.ping_interval);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);

    let mut batch = VecDeque::new();
    let exit = loop {
        // Unbiased: a busy outbound queue must not starve reading, nor the reverse.
        tokio::select! {
            () = shutdown.cancelled() => break Exit::Shutdown,
            recv = queue.recv(&mut batch) => {
                if let Recv::Kicked(why) = recv {
                    break why.into();
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
                    why = queue.kicked() => break why.into(),
                    () = shutdown.cancelled() => break Exit::Shutdown,
                }
                batch.clear();
            }
            frame = ws.next() => {
                last_seen = Instant::now();
                let input = Input { relay: &relay, id: &id };
                let exit = match frame {
                    Some(Ok(Message::Text(text))) => match input.decode(&text, &mut limiter) {
                        Ok(msg) => {
                            let received = Instant::now();
                            let handled = handle(&relay, &id, msg, claims.as_ref(), limiter.ticket()).await;
                            input.outcome(handled, received, &mut limiter)
                        }
                        Err(exit) => exit,
                    },
                    other => input.frame(other),
                };
                if let Some(exit) = exit {
                    break exit;
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

    // A lost connection (not a clean close, nor a refusal) keeps its session for resuming,
    // with what is queued for it; otherwise what is queued (the refusal that ends it, say)
    // goes out before the Close.
    let last = if matches!(exit, Exit::Lost | Exit::Idle) {
        relay.detach(id.clone(), queue.clone(), limiter.slot.take());
        VecDeque::new()
    } else {
        relay.disconnect_if(&id, &queue).await;
        queue.take_all()
    };
    metrics.connection_closed();
    tracing::debug!(client = %id, reason = ?exit, "disconnected");
    close(&mut ws, exit, last).await;
}

/// Authenticates the connection and starts its session: its token's claims and the session,
/// or `None` after refusing the connection.
async fn start<S>(
    ws: &mut S,
    relay: &Relay,
    auth: AuthState,
    ticket: Option<&IpTicket>,
    resume: Option<&str>,
    shutdown: &CancellationToken,
) -> Option<(Option<Claims>, PeerRx)>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    let claims = authenticate(ws, auth, ticket, relay.metrics(), shutdown)
        .await
        .ok()?;
    let peer = open_session(ws, relay, resume, claims.as_ref()).await?;
    Some((claims, peer))
}

/// The session a connection starts: the one its resume token names, or a fresh one (told why
/// the resume failed); `None` after refusing a connection that came to resume another user's
/// session.
async fn open_session<S>(
    ws: &mut S,
    relay: &Relay,
    resume: Option<&str>,
    claims: Option<&Claims>,
) -> Option<PeerRx>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    let user = claims.map(|c| c.sub.clone());
    let Some(token) = resume else {
        return Some(relay.connect(user).await);
    };
    let why = match relay.resume(token, claims).await {
        Ok(peer) => return Some(peer),
        Err(why) => why,
    };
    relay.metrics().refused(ErrorCode::ResumeFailed);
    if why == NotResumed::OtherUser {
        let reply = ServerMessage::error(ErrorCode::ResumeFailed, why.message());
        refuse_connection(ws, &reply, "another user's session").await;
        return None;
    }
    let peer = relay.connect(user).await;
    relay.refuse(
        &peer.id,
        Refusal::new(ErrorCode::ResumeFailed, why.message()),
    );
    Some(peer)
}

/// Sends `reply`, then Close 1008 with `reason`, to a connection that has no session.
async fn refuse_connection<S>(ws: &mut S, reply: &ServerMessage, reason: &'static str)
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    let close = CloseFrame {
        code: CloseCode::Policy,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        ws.feed(Message::text(reply.encode())).await?;
        ws.send(Message::Close(Some(close))).await
    })
    .await;
}

/// Ends the WebSocket after `exit`: flushes the reply to the peer's Close, or sends the `last`
/// messages and our Close.
async fn close<X>(ws: &mut WebSocketStream<ConnIo<X>>, exit: Exit, last: VecDeque<Utf8Bytes>)
where
    X: AsyncRead + AsyncWrite + HoldForFin + Unpin,
{
    if exit == Exit::PeerClosed {
        // The Close reply is the last write: it leaves with the FIN when the socket closes.
        ws.get_ref().hold_for_fin();
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.flush()).await;
    } else if let Some(frame) = exit.close_frame() {
        // The closing handshake: send Close, then read until the peer's Close (or EOF), so the
        // socket is not torn down under frames the peer has yet to read.
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            for msg in last {
                ws.feed(Message::Text(msg)).await?;
            }
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

/// What a `rooms` answer costs in rate-limit tokens: one per KiB started (beyond the one every
/// message costs), so that listing cannot turn small requests into a flood of bytes.
fn list_cost(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024))
        .unwrap_or(u32::MAX)
        .saturating_sub(1)
}

/// What one frame from the client is handled against.
struct Input<'a> {
    relay: &'a Relay,
    id: &'a ClientId,
}

impl Input<'_> {
    /// Takes a text frame through the rate limits and the decoder: the message to handle, or
    /// (the refusal answered) the exit it causes, if any. Not async, like [`Input::outcome`]:
    /// only `handle` waits, so only its state sits in the connection's future.
    fn decode(&self, text: &str, limiter: &mut RateLimiter) -> Result<ClientMessage, Option<Exit>> {
        let (relay, metrics) = (self.relay, self.relay.metrics());
        if let Err(why) = limiter.allow() {
            if limiter.flooding() {
                return Err(Some(Exit::Flood));
            }
            metrics.refused(ErrorCode::RateLimited);
            relay.refuse(self.id, Refusal::new(ErrorCode::RateLimited, why));
            return Err(None);
        }
        ClientMessage::decode(text).map_err(|e| {
            metrics.refused(e.code);
            relay.refuse(self.id, Refusal::new(e.code, e.message));
            None
        })
    }

    /// Counts what handling a message (received at `received`) did: the exit it causes, if any.
    fn outcome(
        &self,
        handled: Result<Handled, ErrorCode>,
        received: Instant,
        limiter: &mut RateLimiter,
    ) -> Option<Exit> {
        let metrics = self.relay.metrics();
        match handled {
            Ok(Handled::Relayed) => metrics.observe_relay_latency(received.elapsed()),
            Ok(Handled::Answered) => {}
            Ok(Handled::Listed { bytes }) => limiter.charge(list_cost(bytes)),
            Ok(Handled::Blocked) => {
                metrics.refused(ErrorCode::BadPassword);
                metrics.auth_failure(AuthFailure::BadPassword);
                return Some(Exit::Throttled);
            }
            Err(code) => {
                metrics.refused(code);
                if code == ErrorCode::BadPassword {
                    metrics.auth_failure(AuthFailure::BadPassword);
                }
            }
        }
        None
    }

    /// Handles any other frame, or the end of the stream: the exit it causes, if any.
    fn frame(&self, frame: Option<Result<Message, WsError>>) -> Option<Exit> {
        let id = self.id;
        match frame {
            Some(Ok(Message::Text(_))) => None,
            Some(Ok(Message::Binary(_))) => {
                self.relay.metrics().refused(ErrorCode::BinaryFrame);
                self.relay.refuse(
                    id,
                    Refusal::new(
                        ErrorCode::BinaryFrame,
                        "binary frames are not supported: send JSON text",
                    ),
                );
                None
            }
            // Pings are answered by tungstenite; pongs only refresh the idle deadline.
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => None,
            Some(Ok(Message::Close(_))) => Some(Exit::PeerClosed),
            None => Some(Exit::Gone),
            Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                tracing::info!(client = %id, size, max_size, "message too big");
                Some(Exit::TooBig)
            }
            // The peer closed TCP without a Close frame: it went away on purpose (a process
            // that exits); network trouble shows as an I/O error or silence.
            Some(Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake))) => {
                Some(Exit::Gone)
            }
            // Only the network's failures leave a session to resume; a peer that breaks the
            // protocol is refused.
            Some(Err(WsError::Io(e))) => {
                tracing::debug!(client = %id, error = %e, "read failed");
                Some(Exit::Lost)
            }
            Some(Err(e)) => {
                tracing::debug!(client = %id, error = %e, "broken frame");
                Some(Exit::Broken)
            }
        }
    }
}

/// What handling a message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handled {
    /// Relayed to another client (offer, answer, candidate, message).
    Relayed,
    /// Answered, or changed the sender's membership.
    Answered,
    /// Answered with a room list of this many bytes.
    Listed { bytes: usize },
    /// Refused for a wrong room password, the failure that blocked the sender's address.
    Blocked,
}

/// Handles one message, applying the address's and the access token's rules first (see
/// [`join`]); the token fixes the user id. Returns what was done, or the refusal's code.
async fn handle(
    relay: &Relay,
    id: &ClientId,
    msg: ClientMessage,
    claims: Option<&Claims>,
    ticket: Option<&IpTicket>,
) -> Result<Handled, ErrorCode> {
    let msg = match (msg, claims) {
        // Boxed: joins are rare, and their state would otherwise sit in every connection.
        (ClientMessage::Join { room_id, password }, _) => {
            return Box::pin(join(relay, id, room_id, password, claims, ticket)).await;
        }
        (ClientMessage::Register { .. }, Some(claims)) => {
            let user_id = claims.sub.clone();
            relay.reply(id, &ServerMessage::Registered { user_id });
            return Ok(Handled::Answered);
        }
        (ClientMessage::Rooms, _) => {
            let allowed = claims.and_then(|c| c.rooms.as_deref());
            let bytes = Box::pin(relay.list_rooms(id, allowed)).await?;
            return Ok(Handled::Listed { bytes });
        }
        (other, _) => other,
    };
    if relay.handle(id, msg).await? {
        Ok(Handled::Relayed)
    } else {
        Ok(Handled::Answered)
    }
}

/// `join`, with the address's and the token's rules: a blocked address may not join; a join
/// with a password is a guess, reserved while it is checked ([`IpTicket::guess`]) and counted
/// against the address when wrong; the token may restrict rooms.
async fn join(
    relay: &Relay,
    id: &ClientId,
    room_id: RoomId,
    password: Option<String>,
    claims: Option<&Claims>,
    ticket: Option<&IpTicket>,
) -> Result<Handled, ErrorCode> {
    let guess = match ticket {
        Some(t) if password.is_some() => t.guess().map(Some),
        Some(t) if t.blocked() => None,
        _ => Some(None),
    };
    let Some(guess) = guess else {
        let refusal = Refusal::new(
            ErrorCode::Throttled,
            "too many failed authentications from your address: try again in a minute",
        );
        relay.reply(id, &refusal.into_join_error(room_id));
        return Err(ErrorCode::Throttled);
    };
    if claims.is_some_and(|c| !c.allows_room(&room_id)) {
        relay.reply(
            id,
            &ServerMessage::JoinError {
                error: format!("your token does not allow room {room_id}"),
                room_id: Some(room_id),
                code: Some(ErrorCode::RoomNotAllowed),
            },
        );
        relay.metrics().auth_failure(AuthFailure::RoomNotAllowed);
        return Err(ErrorCode::RoomNotAllowed);
    }
    match relay
        .handle(id, ClientMessage::Join { room_id, password })
        .await
    {
        Err(ErrorCode::BadPassword) => {
            let blocked = match guess {
                Some(guess) => guess.failed(),
                None => ticket.is_some_and(IpTicket::auth_failed),
            };
            if blocked {
                Ok(Handled::Blocked)
            } else {
                Err(ErrorCode::BadPassword)
            }
        }
        Err(code) => Err(code),
        Ok(_) => Ok(Handled::Answered),
    }
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
                    distinct_user_ids: true,
                },
                queue_size: 8,
                room_list: true,
                resume_grace: Duration::ZERO,
                max_send_kbps: None,
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
            slot: None,
            resume: None,
            claimed: false,
        };
        let (socket, _far) = tokio::io::duplex(64);
        let ws = WebSocketStream::from_raw_socket(ConnIo::new(socket), Role::Server, None).await;
        let future = serve(ws, relay, limits, CancellationToken::new(), session);
        let size = std::mem::size_of_val(&future);
        assert!(size <= 2400, "a connection's future takes {size} bytes");
    }
}
