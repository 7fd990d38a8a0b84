//! One WebSocket connection: a single `select!` loop over the socket, the outbound queue, the
//! heartbeat, the slow-consumer signal and shutdown.
//!
//! The loop is generic over the socket (`Stream + Sink` of tungstenite messages), so it runs the
//! same on TCP, on an upgraded HTTP connection, or on anything a test supplies. Every refused
//! input gets an `error` reply and the loop goes on; only an over-size frame, a flood past the
//! rate limit, a dead peer, a slow consumer or shutdown end it.

use crate::queue::Recv;
use crate::relay::{PeerRx, Relay};
use crate::rooms::Refusal;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use protocol::{ClientMessage, ErrorCode};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::error::CapacityError;
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
    /// The socket failed or ended: nothing more to send.
    Gone,
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
            Exit::Gone | Exit::Slow | Exit::PeerClosed => return None,
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

/// Token bucket for the per-connection message rate.
struct RateLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    /// Messages refused since the last accepted one.
    refused: u32,
}

impl RateLimiter {
    fn new(limits: &ConnLimits) -> Option<Self> {
        (limits.rate_limit > 0).then(|| {
            let burst = f64::from(limits.rate_burst.max(1));
            RateLimiter {
                rate: f64::from(limits.rate_limit),
                burst,
                tokens: burst,
                last: Instant::now(),
                refused: 0,
            }
        })
    }

    /// Takes a token; false when the connection is over its rate.
    fn allow(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.refused = 0;
            true
        } else {
            self.refused += 1;
            false
        }
    }

    /// The client ignored a whole burst of refusals.
    fn flooding(&self) -> bool {
        f64::from(self.refused) > self.burst
    }
}

/// Serves one WebSocket until it ends, then removes the client from the relay.
pub async fn serve<S>(mut ws: S, relay: Relay, limits: ConnLimits, shutdown: CancellationToken)
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    let PeerRx { id, queue } = relay.connect();
    tracing::debug!(client = %id, "connected");
    let mut limiter = RateLimiter::new(&limits);
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
                        Ok(Err(_)) => break Exit::Gone,
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
                        if let Some(limiter) = limiter.as_mut() {
                            if !limiter.allow() {
                                if limiter.flooding() {
                                    break Exit::Flood;
                                }
                                relay.refuse(&id, Refusal::new(
                                    ErrorCode::RateLimited,
                                    format!("rate limit exceeded ({} messages/s): message dropped", limits.rate_limit),
                                ));
                                continue;
                            }
                        }
                        match ClientMessage::decode(&text) {
                            Ok(msg) => relay.handle(&id, msg),
                            Err(e) => relay.refuse(&id, Refusal::new(e.code, e.message)),
                        }
                    }
                    Some(Ok(Message::Binary(_))) => relay.refuse(&id, Refusal::new(
                        ErrorCode::BinaryFrame,
                        "binary frames are not supported: send JSON text",
                    )),
                    // Pings are answered by tungstenite; pongs only refresh `last_seen`.
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    Some(Ok(Message::Close(_))) => break Exit::PeerClosed,
                    None => break Exit::Gone,
                    Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                        tracing::info!(client = %id, size, max_size, "message too big");
                        break Exit::TooBig;
                    }
                    Some(Err(e)) => {
                        tracing::debug!(client = %id, error = %e, "read failed");
                        break Exit::Gone;
                    }
                }
            }
            _ = ping.tick() => {
                if last_seen.elapsed() >= limits.idle_timeout {
                    break Exit::Idle;
                }
                let sent = tokio::time::timeout(limits.write_timeout, ws.send(Message::Ping(Default::default()))).await;
                if !matches!(sent, Ok(Ok(()))) {
                    break Exit::Gone;
                }
            }
        }
    };

    relay.disconnect(&id);
    tracing::debug!(client = %id, reason = ?exit, "disconnected");
    if exit == Exit::PeerClosed {
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
