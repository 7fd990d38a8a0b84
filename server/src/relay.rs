//! The relay: the protocol's logic over a [`Router`] (membership and routes, `router.rs`), and
//! the delivery of messages to connections.
//!
//! [`Relay`] is a cheap clonable handle. For each request it asks the router what changes and
//! whom to tell, then delivers: each message is encoded once and queued for every local
//! recipient, or handed to the instance holding a remote one. Every connection has a bounded
//! outbound queue ([`PeerTx`]); delivery never waits, and a connection whose queue is full is
//! dropped (its room is told `user-left`) and its task told to drop the socket, so a client
//! that does not read never stalls others nor grows the relay's memory. The relay also issues
//! client ids and resume tokens, and builds `welcome`.

use crate::auth::Claims;
use crate::guard::{Refused, Slot};
use crate::metrics::Metrics;
use crate::queue::{Kick, Outbound, PeerTx};
use crate::rooms::{Outbox, Refusal, RoomLimits, Route};
use crate::router::{Backend, MemoryRouter, Recipient, Router};
use crate::turn::TurnConfig;
use protocol::{
    ClientId, ClientMessage, ErrorCode, Payload, RoomId, RoomInfo, ServerMessage, UserId,
};
use rand::distr::{Alphanumeric, SampleString};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Rooms listed in one `rooms` answer at most.
const ROOM_LIST_LIMIT: usize = 1000;

/// Largest `rooms` answer, in bytes (a thousand rooms with short ids fit).
const ROOM_LIST_BYTES: usize = 64 * 1024;

/// Bytes of a `rooms` answer besides its entries: `{"type":"rooms","rooms":[],"truncated":true}`.
const ROOM_LIST_OVERHEAD: usize = 64;

/// Length of generated client ids (alphanumeric: about 71 bits, not guessable).
const CLIENT_ID_LEN: usize = 12;

/// Length of resume tokens (alphanumeric: about 190 bits; a bearer secret).
const RESUME_TOKEN_LEN: usize = 32;

/// What a connection task holds: its id and its outbound queue.
pub struct PeerRx {
    /// The id assigned to the connection.
    pub id: ClientId,
    /// Messages to write to the socket, and the kick signal.
    pub queue: PeerTx,
}

/// Limits the relay applies besides the room limits.
#[derive(Debug, Clone, Copy)]
pub struct RelayLimits {
    /// Rooms and their caps.
    pub rooms: RoomLimits,
    /// Capacity of each connection's outbound queue.
    pub queue_size: usize,
    /// Whether `rooms` is answered.
    pub room_list: bool,
    /// How long a session whose socket was lost can be resumed (zero: never).
    pub resume_grace: Duration,
    /// The most each client should send over all its calls, kbit/s, told in `welcome`.
    pub max_send_kbps: Option<u32>,
}

/// Resume tokens, both ways, and the sessions whose connection was lost.
#[derive(Default)]
struct Sessions {
    by_token: HashMap<String, ClientId>,
    by_client: HashMap<ClientId, String>,
    /// Each detached session's last queue and the connection slot it keeps (see `guard.rs`).
    detached: HashMap<ClientId, (PeerTx, Option<Slot>)>,
}

/// Why a session was not resumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotResumed {
    /// Unknown token, or the grace period is over.
    Unknown,
    /// The new connection's token is another user's: the connection is refused.
    OtherUser,
    /// The new connection's token does not allow the session's room: the session is ended.
    RoomNotAllowed(RoomId),
}

impl NotResumed {
    /// The explanation sent with `resume-failed`.
    pub fn message(&self) -> String {
        match self {
            NotResumed::Unknown => "session not resumed (unknown token or grace period over): \
                                    this is a new session"
                .to_owned(),
            NotResumed::OtherUser => "session not resumed: it is another user's".to_owned(),
            NotResumed::RoomNotAllowed(room) => format!(
                "session not resumed (your token does not allow its room {room}, so it is \
                 ended): this is a new session"
            ),
        }
    }
}

/// Clonable handle to the relay's shared state.
#[derive(Clone)]
pub struct Relay {
    shared: Arc<Shared>,
}

struct Shared {
    router: Backend,
    /// Resume tokens of live sessions. Never locked while `state` is.
    sessions: Mutex<Sessions>,
    limits: RelayLimits,
    metrics: Arc<Metrics>,
    turn: TurnConfig,
}

impl Relay {
    /// A single-process relay with no clients, counting into `metrics` and handing out ICE
    /// servers from `turn`.
    pub fn new(limits: RelayLimits, metrics: Arc<Metrics>, turn: TurnConfig) -> Self {
        let router = Backend::Memory(MemoryRouter::new(limits.rooms, limits.room_list));
        Self::with_router(router, limits, metrics, turn)
    }

    /// A relay on `router` (e.g. shared with other instances through Redis).
    pub fn with_router(
        router: Backend,
        limits: RelayLimits,
        metrics: Arc<Metrics>,
        turn: TurnConfig,
    ) -> Self {
        let sessions = Mutex::new(Sessions::default());
        Relay {
            shared: Arc::new(Shared {
                router,
                sessions,
                limits,
                metrics,
                turn,
            }),
        }
    }

    /// The relay's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    fn router(&self) -> &Backend {
        &self.shared.router
    }

    /// Whether the relay can do all its work (its router's shared store is reachable).
    pub fn healthy(&self) -> bool {
        self.router().healthy()
    }

    /// Starts the router's background work: delivering what other instances hand over, and
    /// periodic maintenance. Abort the returned tasks on shutdown.
    pub fn start_background(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        let relay = self.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(inbound) = relay.router().next_inbound().await {
                let text = Utf8Bytes::from(inbound.text);
                for client in &inbound.to {
                    if let Some(peer) = relay.router().sender(client) {
                        if !enqueue(&peer, text.clone()) {
                            relay.drop_slow(peer);
                        }
                    }
                }
            }
        }));
        if let Some(every) = self.router().maintenance_interval() {
            let relay = self.clone();
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let out = relay.router().maintain().await;
                    relay.deliver(out);
                }
            }));
        }
        tasks
    }

    /// Members in rooms, over all rooms.
    pub fn member_count(&self) -> usize {
        self.router().counts().members
    }

    /// Number of rooms.
    pub fn room_count(&self) -> usize {
        self.router().counts().rooms
    }

    /// Registers a new connection under a fresh id and queues its `welcome`. `user` fixes the
    /// user id (from an access token); without it the client id is used until `register`.
    pub async fn connect(&self, user: Option<UserId>) -> PeerRx {
        let id = loop {
            let candidate = Alphanumeric.sample_string(&mut rand::rng(), CLIENT_ID_LEN);
            let id = ClientId::new(candidate).expect("generated ids are valid");
            if self.router().sender(&id).is_none() {
                break id;
            }
        };
        let queue = Outbound::new(id.clone(), self.shared.limits.queue_size);
        let user = user.unwrap_or_else(|| UserId::from(id.clone()));
        self.router().attach(&id, &queue, &user).await;
        let resume_token = self.new_session(&id);
        let welcome = self.welcome(&id, &user, resume_token, false);
        self.send_to(&queue, &welcome);
        PeerRx { id, queue }
    }

    /// Resumes the session of `token` on a new connection: same client id and room, with the
    /// messages queued for it meanwhile, after a `welcome` with `resumed: true`; the old
    /// connection, if still open, is closed. Refused when the token is unknown or its grace
    /// period is over, or when the new connection's access token (`claims`) is another user's
    /// (the session is left alone: a resume token seen in a log must not end it); when the
    /// token is the user's but does not allow the session's room, the session is ended.
    pub async fn resume(&self, token: &str, claims: Option<&Claims>) -> Result<PeerRx, NotResumed> {
        let id = self.sessions().by_token.get(token).cloned();
        let id = id.ok_or(NotResumed::Unknown)?;
        let session_user = self.router().user_of(&id).ok_or(NotResumed::Unknown)?;
        let refused = match (claims, self.router().room_of(&id)) {
            (Some(c), _) if c.sub != session_user => Some(NotResumed::OtherUser),
            (Some(c), Some(room)) if !c.allows_room(&room) => {
                Some(NotResumed::RoomNotAllowed(room))
            }
            _ => None,
        };
        if let Some(why) = refused {
            if let NotResumed::RoomNotAllowed(_) = why {
                self.end_session(&id).await;
            }
            return Err(why);
        }
        let queue = Outbound::new(id.clone(), self.shared.limits.queue_size);
        let old = self
            .router()
            .replace_sender(&id, queue.clone())
            .ok_or(NotResumed::Unknown)?;
        // Move what waited for the client; the old connection (if still there) then ends
        // without removing the client, which is no longer its.
        for msg in old.take_all() {
            let _ = queue.push(msg);
        }
        old.kick(Kick::Replaced);
        let resume_token = self.new_session(&id);
        let welcome = self.welcome(&id, &session_user, resume_token, true);
        queue.push_front(Utf8Bytes::from(welcome.encode()));
        tracing::debug!(client = %id, "session resumed");
        Ok(PeerRx { id, queue })
    }

    /// Ends the session of `id` whatever its connection: its room is told, its token forgotten,
    /// its open connection (if any) closed.
    async fn end_session(&self, id: &ClientId) {
        if let Some(queue) = self.router().sender(id) {
            queue.kick(Kick::Ended);
            self.disconnect_if(id, &queue).await;
        }
    }

    /// Takes the slot of the detached session `token` names for the connection from `ip` that
    /// comes to resume it, so that a session at its address's cap can still be resumed.
    /// `Ok(None)` when the token names no detached session (or one whose slot is taken); a
    /// refusal when `ip` may not take it (a blocked address, or a new address at its cap), the
    /// slot then staying with the session.
    pub fn claim_detached(&self, token: &str, ip: IpAddr) -> Result<Option<Slot>, Refused> {
        // All under the sessions lock: the session can neither end nor be claimed again
        // between taking its slot and giving it back.
        let mut sessions = self.sessions();
        let Some(id) = sessions.by_token.get(token).cloned() else {
            return Ok(None);
        };
        let Some((_, kept)) = sessions.detached.get_mut(&id) else {
            return Ok(None);
        };
        let Some(slot) = kept.take() else {
            return Ok(None);
        };
        match slot.move_to(ip) {
            Ok(moved) => Ok(Some(moved)),
            Err((slot, why)) => {
                *kept = Some(slot);
                Err(why)
            }
        }
    }

    /// Gives a claimed slot back to the detached session `token` names, whose new connection
    /// did not resume it; dropped when that session ended meanwhile.
    pub fn give_back(&self, token: &str, slot: Slot) {
        let mut sessions = self.sessions();
        let Some(id) = sessions.by_token.get(token).cloned() else {
            return;
        };
        if let Some((_, kept @ None)) = sessions.detached.get_mut(&id) {
            *kept = Some(slot);
        }
    }

    /// Sessions kept for resuming now.
    pub fn detached_count(&self) -> usize {
        self.sessions().detached.len()
    }

    fn sessions(&self) -> MutexGuard<'_, Sessions> {
        self.shared
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh resume token for `id`, when resuming is on.
    fn new_session(&self, id: &ClientId) -> Option<String> {
        if self.shared.limits.resume_grace.is_zero() {
            return None;
        }
        let token = Alphanumeric.sample_string(&mut rand::rng(), RESUME_TOKEN_LEN);
        let mut sessions = self.sessions();
        // One token per client: a new one (on resume) replaces the old.
        if let Some(old) = sessions.by_client.insert(id.clone(), token.clone()) {
            sessions.by_token.remove(&old);
        }
        sessions.by_token.insert(token.clone(), id.clone());
        Some(token)
    }

    fn welcome(
        &self,
        id: &ClientId,
        user: &UserId,
        resume_token: Option<String>,
        resumed: bool,
    ) -> ServerMessage {
        let ice_servers =
            crate::turn::ice_servers(&self.shared.turn, user.as_str(), crate::auth::now_unix());
        ServerMessage::Welcome {
            client_id: id.clone(),
            ice_servers,
            resume_token,
            resumed,
            max_send_kbps: self.shared.limits.max_send_kbps,
        }
    }

    /// Removes client `id` if `queue` is still its connection's (not replaced by a resume).
    pub async fn disconnect_if(&self, id: &ClientId, queue: &PeerTx) {
        if let Some(out) = self.router().remove(id, Some(queue)).await {
            self.forget_session(id);
            self.deliver(out);
        }
    }

    /// Keeps client `id` (its room, its queue, its connection `slot`) for the resume grace
    /// period after its socket was lost; removes it then unless a new connection resumed it.
    /// The room is not told unless the client does not come back.
    pub fn detach(&self, id: ClientId, queue: PeerTx, slot: Option<Slot>) {
        let grace = self.shared.limits.resume_grace;
        let relay = self.clone();
        if !grace.is_zero() {
            tracing::debug!(client = %id, ?grace, "connection lost: session kept for resuming");
            let kept = (queue.clone(), slot);
            self.sessions().detached.insert(id.clone(), kept);
        }
        tokio::spawn(async move {
            // A resume kicks the old queue: the session's slot is then given back at once.
            tokio::select! {
                () = tokio::time::sleep(grace) => {}
                _ = queue.kicked() => {}
            }
            relay.disconnect_if(&id, &queue).await;
            let mut sessions = relay.sessions();
            if sessions
                .detached
                .get(&id)
                .is_some_and(|(q, _)| Arc::ptr_eq(q, &queue))
            {
                sessions.detached.remove(&id);
            }
        });
    }

    /// Forgets an ended session's token, and the slot it kept if it was detached.
    fn forget_session(&self, id: &ClientId) {
        if !self.shared.limits.resume_grace.is_zero() {
            let mut sessions = self.sessions();
            if let Some(token) = sessions.by_client.remove(id) {
                sessions.by_token.remove(&token);
            }
            sessions.detached.remove(id);
        }
    }

    /// Handles one decoded message from `from`; returns whether it was relayed to another
    /// client (offer, answer, candidate, message), or the code of the refusal (`error` or
    /// `join-error`) it answered with.
    pub async fn handle(&self, from: &ClientId, msg: ClientMessage) -> Result<bool, ErrorCode> {
        let kind = msg.kind();
        let router = self.router();
        let result = match msg {
            ClientMessage::Register { user_id } => router.register(from, user_id).await,
            ClientMessage::Join { room_id, password } => {
                Ok(router.join(from, room_id, password.as_deref()).await)
            }
            ClientMessage::Leave { room_id } => router.leave(from, room_id.as_ref()).await,
            ClientMessage::Lock { room_id } => {
                router.set_locked(from, room_id.as_ref(), true).await
            }
            ClientMessage::Unlock { room_id } => {
                router.set_locked(from, room_id.as_ref(), false).await
            }
            ClientMessage::Rooms => {
                // The connection answers `rooms` itself, with the token's rooms
                // (`conn.rs`); this is the answer without them.
                return Box::pin(self.list_rooms(from, None)).await.map(|_| false);
            }
            ClientMessage::Auth { .. } => Err(Refusal::new(
                ErrorCode::InvalidField,
                "already authenticated",
            )),
            ClientMessage::Offer { target_id, sdp } => {
                self.forward(from, Some(&target_id), sdp, |from_id, from_user_id, sdp| {
                    ServerMessage::Offer {
                        from_id,
                        from_user_id,
                        sdp,
                    }
                })
                .await
            }
            ClientMessage::Answer { target_id, sdp } => {
                self.forward(from, Some(&target_id), sdp, |from_id, from_user_id, sdp| {
                    ServerMessage::Answer {
                        from_id,
                        from_user_id,
                        sdp,
                    }
                })
                .await
            }
            ClientMessage::Candidate {
                target_id,
                candidate,
            } => {
                self.forward(
                    from,
                    Some(&target_id),
                    candidate,
                    |from_id, from_user_id, candidate| ServerMessage::Candidate {
                        from_id,
                        from_user_id,
                        candidate,
                    },
                )
                .await
            }
            ClientMessage::Message { target_id, content } => {
                self.forward(
                    from,
                    target_id.as_ref(),
                    content,
                    |from_id, from_user_id, content| ServerMessage::Message {
                        from_id,
                        from_user_id,
                        content,
                    },
                )
                .await
            }
        };
        match result {
            Ok(out) => {
                let refused = out.items.iter().find_map(|(_, m)| match m {
                    ServerMessage::JoinError { code, .. } => {
                        Some(code.unwrap_or(ErrorCode::Unknown))
                    }
                    _ => None,
                });
                let relayed = matches!(kind, "offer" | "answer" | "candidate" | "message");
                if refused.is_none() && relayed {
                    self.shared.metrics.relayed(kind);
                }
                self.deliver(out);
                refused.map_or(Ok(relayed), Err)
            }
            Err(refusal) => {
                let code = refusal.code;
                self.refuse(from, refusal);
                Err(code)
            }
        }
    }

    /// Sends an `error` reply to `to`.
    pub fn refuse(&self, to: &ClientId, refusal: Refusal) {
        self.reply(to, &refusal.into_message());
    }

    /// Sends `msg` to `to` alone (a client connected here).
    pub fn reply(&self, to: &ClientId, msg: &ServerMessage) {
        if let Some(peer) = self.router().sender(to) {
            self.send_to(&peer, msg);
        }
    }

    /// Answers `rooms`: the rooms without a password, by id, only those of `allowed` when given
    /// (an access token's rooms), at most [`ROOM_LIST_LIMIT`] of them and [`ROOM_LIST_BYTES`]
    /// in all. Returns the answer's size in bytes, or the refusal's code.
    pub async fn list_rooms(
        &self,
        from: &ClientId,
        allowed: Option<&[String]>,
    ) -> Result<usize, ErrorCode> {
        let listed = self.room_list(allowed).await;
        let message = match listed {
            Ok((rooms, truncated)) => ServerMessage::Rooms { rooms, truncated },
            Err(refusal) => {
                let code = refusal.code;
                self.refuse(from, refusal);
                return Err(code);
            }
        };
        let text = Utf8Bytes::from(message.encode());
        let bytes = text.len();
        if let Some(me) = self.router().sender(from) {
            if !enqueue(&me, text) {
                self.drop_slow(me);
            }
        }
        Ok(bytes)
    }

    async fn room_list(
        &self,
        allowed: Option<&[String]>,
    ) -> Result<(Vec<RoomInfo>, bool), Refusal> {
        if !self.shared.limits.room_list {
            return Err(Refusal::new(
                ErrorCode::UnknownType,
                "room listing is disabled",
            ));
        }
        let (mut rooms, mut truncated) = self.router().list_rooms(ROOM_LIST_LIMIT, allowed).await?;
        // Ids may be long and escape to twice their length: the answer is cut to a size.
        let mut total = ROOM_LIST_OVERHEAD;
        let fits = rooms
            .iter()
            .take_while(|room| {
                total += serde_json::to_string(room).map_or(usize::MAX, |t| t.len()) + 1;
                total <= ROOM_LIST_BYTES
            })
            .count();
        if fits < rooms.len() {
            rooms.truncate(fits);
            truncated = true;
        }
        Ok((rooms, truncated))
    }

    /// Relays a payload to one member of the sender's room, or to all the others.
    async fn forward(
        &self,
        from: &ClientId,
        target: Option<&ClientId>,
        payload: Payload,
        make: impl FnOnce(ClientId, UserId, Payload) -> ServerMessage,
    ) -> Result<Outbox<Recipient>, Refusal> {
        let Route { to, from_user_id } = self.router().route(from, target).await?;
        let msg = make(from.clone(), from_user_id, payload);
        Ok(Outbox {
            items: vec![(to, msg)],
        })
    }

    /// Sends every message of `out`: queued for local recipients (dropping those whose queue
    /// is full), handed on for remote ones, one hand-over per instance.
    fn deliver(&self, out: Outbox<Recipient>) {
        let mut slow = Vec::new();
        for (to, msg) in &out.items {
            let text = Utf8Bytes::from(msg.encode());
            let mut remote: Vec<(&str, Option<&RoomId>, Vec<ClientId>)> = Vec::new();
            for recipient in to {
                match recipient {
                    Recipient::Local(peer) => {
                        if !enqueue(peer, text.clone()) {
                            slow.push(peer.clone());
                        }
                    }
                    Recipient::Remote {
                        instance,
                        client,
                        room,
                    } => {
                        let key = (&**instance, room.as_ref());
                        match remote.iter_mut().find(|(i, r, _)| (*i, *r) == key) {
                            Some((_, _, clients)) => clients.push(client.clone()),
                            None => remote.push((instance, room.as_ref(), vec![client.clone()])),
                        }
                    }
                }
            }
            for (instance, room, clients) in remote {
                self.router().send_remote(instance, room, &clients, &text);
            }
        }
        for peer in slow {
            self.drop_slow(peer);
        }
    }

    fn send_to(&self, peer: &PeerTx, msg: &ServerMessage) {
        if !enqueue(peer, Utf8Bytes::from(msg.encode())) {
            self.drop_slow(peer.clone());
        }
    }

    /// Drops a connection whose queue is full: its task is told to drop the socket, and the
    /// client is removed (its room told) right after.
    fn drop_slow(&self, peer: PeerTx) {
        tracing::warn!(client = %peer.id(), "outbound queue full: dropping slow consumer");
        self.shared.metrics.slow_consumer_dropped();
        peer.kick(Kick::Slow);
        // Removing tells the room, which may find more full queues: done as its own task, so
        // delivery never recurses; each client is removed once.
        let relay = self.clone();
        tokio::spawn(async move {
            relay.disconnect_if(&peer.id().clone(), &peer).await;
        });
    }
}

/// Queues `text` for `peer`; false when its queue is full.
fn enqueue(peer: &PeerTx, text: Utf8Bytes) -> bool {
    peer.push(text).is_ok()
}
