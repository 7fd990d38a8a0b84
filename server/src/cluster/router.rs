//! [`RedisRouter`]: the routing interface (`router.rs`) for several relay instances sharing one
//! Redis. Membership, caps, locks and passwords live in Redis ([`RedisStore`], atomic scripts);
//! this instance keeps only its own connections. A message for a client on another instance is
//! published on that instance's channel and delivered there; messages between two clients of
//! this instance in the same room never leave the process.
//!
//! Background work: a publisher task sends hand-overs in order; a subscriber task reads this
//! instance's channel (subscribing again after a lost connection); `maintain` (called
//! periodically by the relay) refreshes this instance's heartbeat, removes the clients of dead
//! instances, and after Redis comes back (with its data lost, e.g. a restart) registers this
//! instance's clients and rooms again. While Redis is unreachable the instance keeps relaying
//! between its own clients, refuses what needs Redis with a clear error, and reports itself
//! unhealthy (`/readyz`, `relay_ready`).

use super::store::{JoinOutcome, JoinRefusal, Left, Member, RedisStore, StoreError};
use crate::queue::PeerTx;
use crate::rooms::{Outbox, Refusal, RoomLimits, Route, joined_message, lock_message};
use crate::router::{Counts, Inbound, Recipient, Router};
use protocol::{ClientId, ErrorCode, PeerInfo, RoomId, RoomInfo, ServerMessage, UserId};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;

/// Hand-overs waiting to be published, and inbound messages waiting to be delivered, at most.
const QUEUE: usize = 8192;

/// Remote clients whose instance is remembered, at most (then forgotten all at once).
const ROUTE_CACHE: usize = 100_000;

/// Hand-overs sent in one pipeline at most.
const PUBLISH_BATCH: usize = 256;

/// A client connected to this instance.
#[derive(Debug)]
struct Local {
    tx: PeerTx,
    user: UserId,
    room: Option<RoomId>,
}

/// What one hand-over carries: the clients it is for and the encoded message.
#[derive(Deserialize)]
struct Envelope<'a> {
    to: Vec<ClientId>,
    #[serde(default)]
    room: Option<RoomId>,
    #[serde(borrow)]
    msg: &'a RawValue,
}

/// See the module doc.
pub struct RedisRouter {
    store: RedisStore,
    instance: Arc<str>,
    limits: RoomLimits,
    ttl: Duration,
    local: Mutex<HashMap<ClientId, Local>>,
    healthy: AtomicBool,
    /// The store lost this instance's data (or never had it): register everything again.
    needs_resync: AtomicBool,
    publish: mpsc::Sender<(Arc<str>, String)>,
    inbound: tokio::sync::Mutex<mpsc::Receiver<(Option<RoomId>, Inbound)>>,
    /// Which instance holds a remote client (learned from routes; a client never moves).
    instances: Mutex<HashMap<ClientId, Arc<str>>>,
    /// Whether this instance's channel is subscribed (set by the subscriber task).
    subscribed: Arc<AtomicBool>,
}

impl RedisRouter {
    /// Connects to Redis as instance `instance` (keys under `prefix`), registers the instance
    /// with a heartbeat of lifetime `ttl`, and starts its publisher and subscriber tasks.
    /// Fails when Redis cannot be reached.
    pub async fn connect(
        url: &str,
        prefix: &str,
        instance: &str,
        limits: RoomLimits,
        ttl: Duration,
    ) -> Result<Self, StoreError> {
        let store = RedisStore::connect(url, prefix, instance)
            .await?
            .with_distinct_user_ids(limits.distinct_user_ids);
        store.heartbeat(ttl).await?;
        let messages = RedisStore::subscribe(url, prefix, instance).await?;
        let (publish, mut outgoing) = mpsc::channel::<(Arc<str>, String)>(QUEUE);
        let publisher = store.clone();
        tokio::spawn(async move {
            // One task, so hand-overs to an instance keep their order; what queued up while a
            // round trip was in flight goes in the next pipeline, so throughput does not stop
            // at one message per round trip.
            let mut batch = Vec::with_capacity(PUBLISH_BATCH);
            while outgoing.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
                if let Err(e) = publisher.publish_many(&batch).await {
                    tracing::warn!(error = %e, lost = batch.len(), "hand-overs to other instances lost");
                }
                batch.clear();
            }
        });
        let (deliver, inbound) = mpsc::channel::<(Option<RoomId>, Inbound)>(QUEUE);
        let (url, prefix, me) = (url.to_owned(), prefix.to_owned(), instance.to_owned());
        let subscribed = Arc::new(AtomicBool::new(true));
        let subscribed_flag = subscribed.clone();
        tokio::spawn(async move {
            use futures_util::StreamExt;
            let mut messages = Some(messages);
            loop {
                let mut stream = match messages.take() {
                    Some(stream) => stream,
                    None => match RedisStore::subscribe(&url, &prefix, &me).await {
                        Ok(stream) => {
                            subscribed_flag.store(true, Ordering::Relaxed);
                            tracing::info!("subscribed to this instance's channel again");
                            stream
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot subscribe to this instance's channel");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            continue;
                        }
                    },
                };
                while let Some(payload) = stream.next().await {
                    let Ok(envelope) = serde_json::from_str::<Envelope<'_>>(&payload) else {
                        tracing::warn!("malformed hand-over from another instance");
                        continue;
                    };
                    let item = (
                        envelope.room,
                        Inbound {
                            to: envelope.to,
                            text: envelope.msg.get().to_owned(),
                        },
                    );
                    if deliver.send(item).await.is_err() {
                        return; // The relay is gone.
                    }
                }
                // Hand-overs published meanwhile are lost (Redis pub/sub keeps nothing), so
                // the instance reports itself unhealthy until it is subscribed again.
                subscribed_flag.store(false, Ordering::Relaxed);
                tracing::warn!("lost this instance's channel: subscribing again");
            }
        });
        Ok(RedisRouter {
            store,
            instance: instance.into(),
            limits,
            ttl,
            local: Mutex::new(HashMap::new()),
            healthy: AtomicBool::new(true),
            needs_resync: AtomicBool::new(false),
            publish,
            inbound: tokio::sync::Mutex::new(inbound),
            instances: Mutex::new(HashMap::new()),
            subscribed,
        })
    }

    fn instances(&self) -> MutexGuard<'_, HashMap<ClientId, Arc<str>>> {
        self.instances.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn local(&self) -> MutexGuard<'_, HashMap<ClientId, Local>> {
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes a store failure and turns it into the client's refusal.
    fn unavailable(&self, e: &StoreError) -> Refusal {
        if let StoreError::UnknownClient(_) = e {
            // Redis lost this instance's data: register it again on the next maintenance.
            self.needs_resync.store(true, Ordering::Relaxed);
        } else if self.healthy.swap(false, Ordering::Relaxed) {
            tracing::error!(error = %e, "shared store unavailable: serving local clients only");
        }
        Refusal::new(
            ErrorCode::Unavailable,
            "the shared room store is unavailable; only local work is possible now: try again",
        )
    }

    /// Who receives what is meant for `client`, connected to `instance`.
    fn recipient(
        &self,
        instance: &str,
        client: &ClientId,
        local: &HashMap<ClientId, Local>,
    ) -> Option<Recipient> {
        if instance == &*self.instance {
            local.get(client).map(|l| Recipient::Local(l.tx.clone()))
        } else {
            Some(Recipient::Remote {
                instance: instance.into(),
                client: client.clone(),
                room: None,
            })
        }
    }

    fn recipient_at(&self, instance: &str, client: &ClientId) -> Option<Recipient> {
        self.recipient(instance, client, &self.local())
    }

    fn recipients(&self, members: &[Member]) -> Vec<Recipient> {
        let local = self.local();
        members
            .iter()
            .filter_map(|m| self.recipient(&m.instance, &m.client, &local))
            .collect()
    }

    fn me(&self, id: &ClientId) -> Vec<Recipient> {
        self.local()
            .get(id)
            .map(|l| Recipient::Local(l.tx.clone()))
            .into_iter()
            .collect()
    }

    fn set_room(&self, id: &ClientId, room: Option<RoomId>) {
        if let Some(l) = self.local().get_mut(id) {
            l.room = room;
        }
    }

    /// `user-left` for everyone who remains in `left.room`.
    fn tell_left(&self, out: &mut Outbox<Recipient>, left: &Left, client: &ClientId, user: UserId) {
        let to = self.recipients(&left.members);
        out.push(
            to,
            ServerMessage::UserLeft {
                user_id: user,
                client_id: client.clone(),
            },
        );
    }

    /// The `joined` answer listing `members`.
    fn joined(room: RoomId, members: &[Member]) -> ServerMessage {
        let peers = members
            .iter()
            .map(|m| PeerInfo {
                client_id: m.client.clone(),
                user_id: m.user.clone(),
            })
            .collect();
        joined_message(room, peers)
    }

    /// Registers this instance's clients and their rooms again after Redis lost them.
    async fn resync(&self) -> Result<(), StoreError> {
        let clients: Vec<(ClientId, UserId, Option<RoomId>)> = self
            .local()
            .iter()
            .map(|(id, l)| (id.clone(), l.user.clone(), l.room.clone()))
            .collect();
        for (id, user, room) in clients {
            self.store.add_client(&id, &user).await?;
            if let Some(room) = room {
                let max = (self.limits.max_members, self.limits.max_rooms);
                if let JoinOutcome::Refused(why) =
                    self.store.join(&id, &room, None, max.0, max.1).await?
                {
                    tracing::warn!(client = %id, %room, ?why, "could not rejoin after the store's reset");
                    self.set_room(&id, None);
                }
            }
        }
        tracing::info!("shared store: this instance's clients registered again");
        Ok(())
    }
}

impl Router for RedisRouter {
    async fn attach(&self, id: &ClientId, tx: &PeerTx, user: &UserId) {
        self.local().insert(
            id.clone(),
            Local {
                tx: tx.clone(),
                user: user.clone(),
                room: None,
            },
        );
        if let Err(e) = self.store.add_client(id, user).await {
            self.unavailable(&e);
            // Registered again once the store is back.
            self.needs_resync.store(true, Ordering::Relaxed);
        }
    }

    fn sender(&self, id: &ClientId) -> Option<PeerTx> {
        self.local().get(id).map(|l| l.tx.clone())
    }

    fn replace_sender(&self, id: &ClientId, tx: PeerTx) -> Option<PeerTx> {
        self.local()
            .get_mut(id)
            .map(|l| std::mem::replace(&mut l.tx, tx))
    }

    fn user_of(&self, id: &ClientId) -> Option<UserId> {
        self.local().get(id).map(|l| l.user.clone())
    }

    fn room_of(&self, id: &ClientId) -> Option<RoomId> {
        self.local().get(id).and_then(|l| l.room.clone())
    }

    async fn remove(&self, id: &ClientId, only_if: Option<&PeerTx>) -> Option<Outbox<Recipient>> {
        let user = {
            let mut local = self.local();
            let current = local.get(id)?;
            if only_if.is_some_and(|wanted| !Arc::ptr_eq(wanted, &current.tx)) {
                return None;
            }
            local.remove(id)?.user
        };
        let mut out = Outbox::default();
        match self.store.remove_client(id).await {
            Ok(Some(left)) => self.tell_left(&mut out, &left, id, user),
            Ok(None) => {}
            // Gone from Redis when it comes back: resync registers only live local clients.
            Err(e) => {
                self.unavailable(&e);
            }
        }
        Some(out)
    }

    async fn register(
        &self,
        id: &ClientId,
        user: Option<UserId>,
    ) -> Result<Outbox<Recipient>, Refusal> {
        let user = user.unwrap_or_else(|| UserId::from(id.clone()));
        match self.store.set_user(id, &user).await {
            Ok(true) => {}
            Ok(false) => {
                let room = self.local().get(id).and_then(|l| l.room.clone());
                return Err(Refusal::user_id_taken(&user, room.as_ref()));
            }
            // Refused, not changed here alone: joins check the id the store holds.
            Err(e) => return Err(self.unavailable(&e)),
        }
        if let Some(l) = self.local().get_mut(id) {
            l.user = user.clone();
        }
        let mut out = Outbox::default();
        out.push(self.me(id), ServerMessage::Registered { user_id: user });
        Ok(out)
    }

    async fn join(&self, id: &ClientId, room: RoomId, password: Option<&str>) -> Outbox<Recipient> {
        let mut out = Outbox::default();
        let me = self.me(id);
        let result = self
            .store
            .join(
                id,
                &room,
                password,
                self.limits.max_members,
                self.limits.max_rooms,
            )
            .await;
        match result {
            Ok(JoinOutcome::AlreadyIn { members }) => out.push(me, Self::joined(room, &members)),
            Ok(JoinOutcome::Joined { left, members }) => {
                let user = self.user_of(id).unwrap_or_else(|| UserId::from(id.clone()));
                if let Some(left) = &left {
                    out.push(
                        me.clone(),
                        ServerMessage::Left {
                            room_id: left.room.clone(),
                        },
                    );
                    self.tell_left(&mut out, left, id, user.clone());
                }
                self.set_room(id, Some(room.clone()));
                out.push(me, Self::joined(room, &members));
                let others = self.recipients(&members);
                out.push(
                    others,
                    ServerMessage::UserJoined {
                        user_id: user,
                        client_id: id.clone(),
                    },
                );
            }
            Ok(JoinOutcome::Refused(why)) => {
                let refusal = match why {
                    JoinRefusal::Full => Refusal::room_full(&room, self.limits.max_members),
                    JoinRefusal::Locked => Refusal::room_locked(&room),
                    JoinRefusal::BadPassword { required } => {
                        Refusal::bad_password(&room, !required)
                    }
                    JoinRefusal::TooManyRooms => Refusal::too_many_rooms(self.limits.max_rooms),
                    JoinRefusal::UserIdTaken => {
                        let user = self.user_of(id).unwrap_or_else(|| UserId::from(id.clone()));
                        Refusal::user_id_taken(&user, Some(&room))
                    }
                };
                out.push(me, refusal.into_join_error(room));
            }
            Err(e) => {
                let refusal = self.unavailable(&e);
                out.push(me, refusal.into_join_error(room));
            }
        }
        out
    }

    async fn leave(
        &self,
        id: &ClientId,
        room: Option<&RoomId>,
    ) -> Result<Outbox<Recipient>, Refusal> {
        match self.store.leave(id, room).await {
            Ok(Ok(left)) => {
                let mut out = Outbox::default();
                self.set_room(id, None);
                out.push(
                    self.me(id),
                    ServerMessage::Left {
                        room_id: left.room.clone(),
                    },
                );
                let user = self.user_of(id).unwrap_or_else(|| UserId::from(id.clone()));
                self.tell_left(&mut out, &left, id, user);
                Ok(out)
            }
            Ok(Err(not)) => Err(Refusal::not_in_room(not.current.as_ref(), room)),
            Err(e) => Err(self.unavailable(&e)),
        }
    }

    async fn set_locked(
        &self,
        id: &ClientId,
        room: Option<&RoomId>,
        locked: bool,
    ) -> Result<Outbox<Recipient>, Refusal> {
        match self.store.set_locked(id, room, locked).await {
            Ok(Ok((room_id, members))) => {
                let mut out = Outbox::default();
                out.push(
                    self.recipients(&members),
                    lock_message(room_id, id.clone(), locked),
                );
                Ok(out)
            }
            Ok(Err(not)) => Err(Refusal::not_in_room(not.current.as_ref(), room)),
            Err(e) => Err(self.unavailable(&e)),
        }
    }

    async fn list_rooms(
        &self,
        limit: usize,
        allowed: Option<&[String]>,
    ) -> Result<(Vec<RoomInfo>, bool), Refusal> {
        self.store
            .list_rooms(limit, allowed, self.limits.max_members)
            .await
            .map_err(|e| self.unavailable(&e))
    }

    async fn route(
        &self,
        from: &ClientId,
        target: Option<&ClientId>,
    ) -> Result<Route<Recipient>, Refusal> {
        let Some(target) = target else {
            return match self.store.room_members_of(from).await {
                Ok(Ok((_, from_user_id, others))) => Ok(Route {
                    to: self.recipients(&others),
                    from_user_id,
                }),
                Ok(Err(_)) => Err(Refusal::not_in_room(None, None)),
                Err(e) => Err(self.unavailable(&e)),
            };
        };
        {
            // Both connected here and in the same room: no need to ask Redis.
            let local = self.local();
            if let (Some(f), Some(t)) = (local.get(from), local.get(target)) {
                return match (&f.room, &t.room) {
                    (Some(a), Some(b)) if a == b => Ok(Route {
                        to: vec![Recipient::Local(t.tx.clone())],
                        from_user_id: f.user.clone(),
                    }),
                    (None, _) => Err(Refusal::not_in_room(None, None)),
                    _ => Err(Refusal::new(
                        ErrorCode::TargetNotInRoom,
                        format!("client {target} is not in your room"),
                    )),
                };
            }
        }
        // Another instance's client is reached through Redis: refuse clearly while it is down
        // rather than publish into the void.
        if !self.healthy() {
            return Err(Refusal::new(
                ErrorCode::Unavailable,
                format!("client {target} is on another relay instance, unreachable now: try again"),
            ));
        }
        // A target on another instance that a route already found: no Redis round trip; its
        // instance delivers only if the target is still in the sender's room.
        let remembered = self.instances().get(target).cloned();
        if let Some(instance) = remembered {
            let sender = self
                .local()
                .get(from)
                .map(|l| (l.room.clone(), l.user.clone()));
            if let Some((Some(room), from_user_id)) = sender {
                let to = vec![Recipient::Remote {
                    instance,
                    client: target.clone(),
                    room: Some(room),
                }];
                return Ok(Route { to, from_user_id });
            }
        }
        match self.store.route(from, target).await {
            Ok(Ok(route)) => {
                if route.instance.as_str() != &*self.instance {
                    let mut instances = self.instances();
                    if instances.len() >= ROUTE_CACHE {
                        instances.clear();
                    }
                    instances.insert(target.clone(), route.instance.as_str().into());
                }
                let to = self
                    .recipient_at(&route.instance, target)
                    .into_iter()
                    .collect();
                Ok(Route {
                    to,
                    from_user_id: route.from_user,
                })
            }
            Ok(Err(why)) => Err(Refusal::new(
                why.code(),
                match why.code() {
                    ErrorCode::NotInRoom => "you are not in a room".to_owned(),
                    _ => format!("client {target} is not in your room"),
                },
            )),
            Err(e) => Err(self.unavailable(&e)),
        }
    }

    fn send_remote(&self, instance: &str, room: Option<&RoomId>, clients: &[ClientId], text: &str) {
        let to = serde_json::to_string(clients).unwrap_or_else(|_| "[]".to_owned());
        let room = room.map_or_else(
            || "null".to_owned(),
            |r| serde_json::to_string(r).unwrap_or_else(|_| "null".to_owned()),
        );
        let payload = format!("{{\"to\":{to},\"room\":{room},\"msg\":{text}}}");
        if self.publish.try_send((instance.into(), payload)).is_err() {
            tracing::warn!(
                instance,
                "hand-over queue full: message to another instance dropped"
            );
        }
    }

    fn counts(&self) -> Counts {
        let local = self.local();
        let rooms: HashSet<&RoomId> = local.values().filter_map(|l| l.room.as_ref()).collect();
        Counts {
            rooms: rooms.len(),
            members: local.values().filter(|l| l.room.is_some()).count(),
        }
    }

    async fn next_inbound(&self) -> Option<Inbound> {
        let (room, mut inbound) = self.inbound.lock().await.recv().await?;
        if let Some(room) = room {
            // Sent on a remembered route: deliver only to clients still in the sender's room.
            let local = self.local();
            inbound
                .to
                .retain(|c| local.get(c).is_some_and(|l| l.room.as_ref() == Some(&room)));
        }
        Some(inbound)
    }

    fn maintenance_interval(&self) -> Option<Duration> {
        Some(self.ttl / 3)
    }

    async fn maintain(&self) -> Outbox<Recipient> {
        let mut out = Outbox::default();
        if let Err(e) = self.store.heartbeat(self.ttl).await {
            self.unavailable(&e);
            return out;
        }
        if !self.healthy.swap(true, Ordering::Relaxed) {
            tracing::info!("shared store reachable again");
            self.needs_resync.store(true, Ordering::Relaxed);
        }
        if self.needs_resync.swap(false, Ordering::Relaxed) {
            if let Err(e) = self.resync().await {
                self.needs_resync.store(true, Ordering::Relaxed);
                self.unavailable(&e);
                return out;
            }
        }
        let dead = match self.store.dead_instances().await {
            Ok(dead) => dead,
            Err(e) => {
                self.unavailable(&e);
                return out;
            }
        };
        for instance in dead.iter().filter(|i| **i != *self.instance) {
            match self.store.remove_instance(instance).await {
                Ok(removed) => {
                    if !removed.is_empty() {
                        tracing::warn!(%instance, clients = removed.len(), "instance dead: its clients removed");
                    }
                    for (left, member) in removed {
                        self.tell_left(&mut out, &left, &member.client, member.user);
                    }
                }
                Err(e) => {
                    self.unavailable(&e);
                }
            }
        }
        out
    }

    fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed) && self.subscribed.load(Ordering::Relaxed)
    }
}
