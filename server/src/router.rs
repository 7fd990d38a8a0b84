//! The routing interface: where room membership lives and where a message for a client goes.
//!
//! The relay (`relay.rs`) speaks only to [`Router`]: it asks for a membership change or a
//! route, gets back what to send to whom ([`Outbox`] of [`Recipient`]s), and delivers it. A
//! recipient is a connection of this process ([`Recipient::Local`]) or a client held by
//! another relay instance ([`Recipient::Remote`], reached through [`Router::send_remote`]).
//!
//! [`MemoryRouter`] keeps everything in this process (one `Mutex<RoomState>`); every recipient
//! is local. A router backed by a shared store serves several instances through the same
//! interface, so the relay's logic does not change with the deployment.

use crate::queue::PeerTx;
use crate::rooms::{Outbox, Refusal, RoomLimits, RoomState, Route};
use protocol::{ClientId, RoomId, RoomInfo, UserId};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

/// Who receives a message.
#[derive(Debug, Clone)]
pub enum Recipient {
    /// A connection of this process.
    Local(PeerTx),
    /// A client connected to another instance.
    Remote {
        /// The instance that holds its connection.
        instance: Arc<str>,
        /// The client.
        client: ClientId,
        /// The room the sender believes the client is in: the holding instance delivers only
        /// if it still is (`None`: the message comes from the shared store's own view).
        room: Option<RoomId>,
    },
}

/// Sizes, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Rooms.
    pub rooms: usize,
    /// Members in rooms, over all rooms.
    pub members: usize,
}

/// A message another instance handed over for clients connected here.
#[derive(Debug)]
pub struct Inbound {
    /// The clients it is for (already checked against the room the sender meant).
    pub to: Vec<ClientId>,
    /// The encoded message.
    pub text: String,
}

/// Membership and routing; see the module doc. Methods that may need a shared store are
/// async; the local bookkeeping of this process's own connections is synchronous.
pub trait Router: Send + Sync + 'static {
    /// Adds a client connected here, with user id `user`.
    fn attach(&self, id: &ClientId, tx: &PeerTx, user: &UserId) -> impl Future<Output = ()> + Send;

    /// The connection of a client connected here.
    fn sender(&self, id: &ClientId) -> Option<PeerTx>;

    /// Gives a client connected here a new connection (a resumed session); returns the old one.
    fn replace_sender(&self, id: &ClientId, tx: PeerTx) -> Option<PeerTx>;

    /// The user id of a client connected here.
    fn user_of(&self, id: &ClientId) -> Option<UserId>;

    /// The room of a client connected here.
    fn room_of(&self, id: &ClientId) -> Option<RoomId>;

    /// Removes a client connected here (only if `tx` is still its connection, when given) and
    /// says whom to tell; `None` when there was nothing to remove.
    fn remove(
        &self,
        id: &ClientId,
        only_if: Option<&PeerTx>,
    ) -> impl Future<Output = Option<Outbox<Recipient>>> + Send;

    /// `register` (refused when another member of the client's room has that id).
    fn register(
        &self,
        id: &ClientId,
        user: Option<UserId>,
    ) -> impl Future<Output = Result<Outbox<Recipient>, Refusal>> + Send;

    /// `join` (refusals are `join-error` messages in the outbox).
    fn join(
        &self,
        id: &ClientId,
        room: RoomId,
        password: Option<&str>,
    ) -> impl Future<Output = Outbox<Recipient>> + Send;

    /// `leave`.
    fn leave(
        &self,
        id: &ClientId,
        room: Option<&RoomId>,
    ) -> impl Future<Output = Result<Outbox<Recipient>, Refusal>> + Send;

    /// `lock` / `unlock`.
    fn set_locked(
        &self,
        id: &ClientId,
        room: Option<&RoomId>,
        locked: bool,
    ) -> impl Future<Output = Result<Outbox<Recipient>, Refusal>> + Send;

    /// `rooms`: at most `limit` rooms without a password by id, only those named in `allowed`
    /// when given, and whether some were left out.
    fn list_rooms(
        &self,
        limit: usize,
        allowed: Option<&[String]>,
    ) -> impl Future<Output = Result<(Vec<RoomInfo>, bool), Refusal>> + Send;

    /// Where a message from `from` goes: `target` if it is in the sender's room, or every other
    /// member without a target.
    fn route(
        &self,
        from: &ClientId,
        target: Option<&ClientId>,
    ) -> impl Future<Output = Result<Route<Recipient>, Refusal>> + Send;

    /// Hands an encoded message to the instance holding `clients` (who must be in `room`, when
    /// given, for it to be delivered).
    fn send_remote(&self, instance: &str, room: Option<&RoomId>, clients: &[ClientId], text: &str);

    /// Sizes, for metrics.
    fn counts(&self) -> Counts;

    /// The next message other instances handed over (`None`: there will be none).
    fn next_inbound(&self) -> impl Future<Output = Option<Inbound>> + Send {
        async { None }
    }

    /// How often the relay must call [`Router::maintain`] (`None`: never).
    fn maintenance_interval(&self) -> Option<std::time::Duration> {
        None
    }

    /// Periodic upkeep (heartbeats, clean-up of dead instances); says whom to tell what.
    fn maintain(&self) -> impl Future<Output = Outbox<Recipient>> + Send {
        async { Outbox::default() }
    }

    /// Whether the router can do all its work (false while a shared store is unreachable).
    fn healthy(&self) -> bool {
        true
    }
}

/// The router a relay runs on: in this process, or shared through Redis.
pub enum Backend {
    /// Everything in this process.
    Memory(MemoryRouter),
    /// Several instances sharing a Redis.
    Redis(crate::cluster::RedisRouter),
}

macro_rules! delegate {
    ($self:ident, $r:ident => $e:expr) => {
        match $self {
            Backend::Memory($r) => $e,
            Backend::Redis($r) => $e,
        }
    };
}

/// Awaits an operation of either router. The Redis router's is boxed: its state (a Redis
/// round trip) is large and would otherwise sit in every connection's future, memory store
/// or not, for the connection's whole life.
macro_rules! delegate_await {
    ($self:ident, $r:ident => $e:expr) => {
        match $self {
            Backend::Memory($r) => $e.await,
            Backend::Redis($r) => Box::pin($e).await,
        }
    };
}

impl Router for Backend {
    async fn attach(&self, id: &ClientId, tx: &PeerTx, user: &UserId) {
        delegate_await!(self, r => r.attach(id, tx, user))
    }
    fn sender(&self, id: &ClientId) -> Option<PeerTx> {
        delegate!(self, r => r.sender(id))
    }
    fn replace_sender(&self, id: &ClientId, tx: PeerTx) -> Option<PeerTx> {
        delegate!(self, r => r.replace_sender(id, tx))
    }
    fn user_of(&self, id: &ClientId) -> Option<UserId> {
        delegate!(self, r => r.user_of(id))
    }
    fn room_of(&self, id: &ClientId) -> Option<RoomId> {
        delegate!(self, r => r.room_of(id))
    }
    async fn remove(&self, id: &ClientId, only_if: Option<&PeerTx>) -> Option<Outbox<Recipient>> {
        delegate_await!(self, r => r.remove(id, only_if))
    }
    async fn register(
        &self,
        id: &ClientId,
        user: Option<UserId>,
    ) -> Result<Outbox<Recipient>, Refusal> {
        delegate_await!(self, r => r.register(id, user))
    }
    async fn join(&self, id: &ClientId, room: RoomId, password: Option<&str>) -> Outbox<Recipient> {
        delegate_await!(self, r => r.join(id, room, password))
    }
    async fn leave(
        &self,
        id: &ClientId,
        room: Option<&RoomId>,
    ) -> Result<Outbox<Recipient>, Refusal> {
        delegate_await!(self, r => r.leave(id, room))
    }
    async fn set_locked(
        &self,
        id: &ClientId,
        room: Option<&RoomId>,
        locked: bool,
    ) -> Result<Outbox<Recipient>, Refusal> {
        delegate_await!(self, r => r.set_locked(id, room, locked))
    }
    async fn list_rooms(
        &self,
        limit: usize,
        allowed: Option<&[String]>,
    ) -> Result<(Vec<RoomInfo>, bool), Refusal> {
        delegate_await!(self, r => r.list_rooms(limit, allowed))
    }
    async fn route(
        &self,
        from: &ClientId,
        target: Option<&ClientId>,
    ) -> Result<Route<Recipient>, Refusal> {
        delegate_await!(self, r => r.route(from, target))
    }
    fn send_remote(&self, instance: &str, room: Option<&RoomId>, clients: &[ClientId], text: &str) {
        delegate!(self, r => r.send_remote(instance, room, clients, text))
    }
    fn counts(&self) -> Counts {
        delegate!(self, r => r.counts())
    }
    async fn next_inbound(&self) -> Option<Inbound> {
        delegate_await!(self, r => r.next_inbound())
    }
    fn maintenance_interval(&self) -> Option<std::time::Duration> {
        delegate!(self, r => r.maintenance_interval())
    }
    async fn maintain(&self) -> Outbox<Recipient> {
        delegate_await!(self, r => r.maintain())
    }
    fn healthy(&self) -> bool {
        delegate!(self, r => r.healthy())
    }
}

/// Everything in this process: one [`RoomState`] behind one lock.
pub struct MemoryRouter {
    state: Mutex<RoomState<Recipient>>,
}

impl MemoryRouter {
    /// An empty router with these limits, that can list its rooms when `room_list`.
    pub fn new(limits: RoomLimits, room_list: bool) -> Self {
        let state = if room_list {
            RoomState::with_room_list(limits)
        } else {
            RoomState::new(limits)
        };
        MemoryRouter {
            state: Mutex::new(state),
        }
    }

    fn state(&self) -> MutexGuard<'_, RoomState<Recipient>> {
        // A panic while holding the lock is a bug; the state stays consistent enough to go on
        // serving (every operation completes its changes before it can panic).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn local(r: &Recipient) -> Option<&PeerTx> {
    match r {
        Recipient::Local(tx) => Some(tx),
        Recipient::Remote { .. } => None,
    }
}

impl Router for MemoryRouter {
    async fn attach(&self, id: &ClientId, tx: &PeerTx, user: &UserId) {
        self.state()
            .connect_as(id.clone(), Recipient::Local(tx.clone()), user.clone());
    }

    fn sender(&self, id: &ClientId) -> Option<PeerTx> {
        self.state().sender(id).and_then(local).cloned()
    }

    fn replace_sender(&self, id: &ClientId, tx: PeerTx) -> Option<PeerTx> {
        match self.state().replace_sender(id, Recipient::Local(tx))? {
            Recipient::Local(old) => Some(old),
            Recipient::Remote { .. } => None,
        }
    }

    fn user_of(&self, id: &ClientId) -> Option<UserId> {
        self.state().user_of(id).cloned()
    }

    fn room_of(&self, id: &ClientId) -> Option<RoomId> {
        self.state().room_of(id).cloned()
    }

    async fn remove(&self, id: &ClientId, only_if: Option<&PeerTx>) -> Option<Outbox<Recipient>> {
        let mut state = self.state();
        let current = state.sender(id).and_then(local)?;
        if only_if.is_some_and(|wanted| !Arc::ptr_eq(wanted, current)) {
            return None;
        }
        Some(state.disconnect(id))
    }

    async fn register(
        &self,
        id: &ClientId,
        user: Option<UserId>,
    ) -> Result<Outbox<Recipient>, Refusal> {
        self.state().register(id, user)
    }

    async fn join(&self, id: &ClientId, room: RoomId, password: Option<&str>) -> Outbox<Recipient> {
        self.state().join(id, room, password)
    }

    async fn leave(
        &self,
        id: &ClientId,
        room: Option<&RoomId>,
    ) -> Result<Outbox<Recipient>, Refusal> {
        self.state().leave(id, room)
    }

    async fn set_locked(
        &self,
        id: &ClientId,
        room: Option<&RoomId>,
        locked: bool,
    ) -> Result<Outbox<Recipient>, Refusal> {
        self.state().set_locked(id, room, locked)
    }

    async fn list_rooms(
        &self,
        limit: usize,
        allowed: Option<&[String]>,
    ) -> Result<(Vec<RoomInfo>, bool), Refusal> {
        Ok(self.state().list_rooms(limit, allowed))
    }

    async fn route(
        &self,
        from: &ClientId,
        target: Option<&ClientId>,
    ) -> Result<Route<Recipient>, Refusal> {
        let state = self.state();
        match target {
            Some(target) => state.route(from, target),
            None => state.route_broadcast(from),
        }
    }

    fn send_remote(
        &self,
        instance: &str,
        _room: Option<&RoomId>,
        clients: &[ClientId],
        _text: &str,
    ) {
        // Every recipient of a memory router is local.
        tracing::error!(
            instance,
            ?clients,
            "remote recipient in a single-process relay"
        );
    }

    fn counts(&self) -> Counts {
        let state = self.state();
        Counts {
            rooms: state.room_count(),
            members: state.member_count(),
        }
    }
}
