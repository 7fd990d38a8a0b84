//! [`RedisStore`]: the room state of every relay instance, kept in one Redis and changed only
//! by atomic Lua scripts (`lua/*.lua`), so that a room's cap, its lock and its password hold
//! exactly however many instances act on it at once.
//!
//! The rules are those of `rooms.rs`: a client is in at most one room; a join is checked
//! (password, then lock, then cap, then the room count) before the client leaves its current
//! room, so a refused join changes nothing; a room the client leaves alone frees its slot in
//! the room count; the creator sets the password; an empty room is deleted with its lock and
//! password; members are kept in join order.
//!
//! # Data model
//!
//! Every key starts with a configurable prefix `P` (e.g. `relay:`), so that several relays, or
//! tests, can share a Redis:
//!
//! | key | type | content |
//! |---|---|---|
//! | `P client:{id}` | hash | `instance`, `user`, and `room` while in one |
//! | `P room:{id}:members` | sorted set | client ids scored by `P seq`: join order |
//! | `P room:{id}:meta` | hash | `locked` (`0`/`1`), `pw` (when set), `created` (ms) |
//! | `P rooms` | sorted set | room ids, all scored 0: byte order, for the count |
//! | `P rooms:public` | sorted set | the ids of rooms without a password, scored 0: for listing |
//! | `P seq` | string | counter (`INCR`) that orders joins |
//! | `P instances` | sorted set | instance ids scored by their last heartbeat (ms) |
//! | `P instance:{id}:alive` | string | exists while the instance is alive (TTL) |
//! | `P instance:{id}:clients` | set | the clients whose sockets the instance holds |
//!
//! A member's user and instance are read from its `client:` hash, so `set_user` changes one
//! field. Times come from the Redis server's clock (`TIME`), the one clock all instances share.
//! Messages for an instance are published on the channel `P instance:{id}`.
//!
//! `pw` is the hex SHA-256 of the room id's length (4 bytes, big endian), the room id and the
//! password ([`password_digest`]): the room id is the salt, computed here so the password
//! never reaches Redis. Digests, not passwords, are compared in the script.
//!
//! The scripts build keys from the prefix instead of declaring them (a join only learns the
//! client's old room inside the script), so the store needs a single Redis (or one shard),
//! not Redis Cluster. Redis must not evict keys (`maxmemory-policy noeviction`, the default).
//!
//! # Errors
//!
//! Each operation answers `Result<_, StoreError>` for Redis failures (unreachable, timeout,
//! an unexpected reply, a client Redis no longer knows); refusals the client should hear
//! (`NotInRoom`, [`JoinRefusal`], [`RouteRefusal`]) are an inner `Result` or outcome, so the
//! two consequences (tell the client vs. degrade the instance) never mix.

use futures_util::{Stream, StreamExt};
use protocol::{ClientId, ErrorCode, RoomId, RoomInfo, UserId};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// Longest wait for a TCP connection to Redis.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest wait for a reply; a slow Redis counts as a failed one.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Attempts to reconnect before a request fails (each later request tries again), kept small
/// so that an unreachable Redis is reported in seconds rather than retried silently.
const CONNECT_RETRIES: usize = 2;

/// A failure of the store itself (not a refusal of the request).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The Redis URL does not parse.
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(#[source] redis::RedisError),
    /// Redis did not answer when connecting.
    #[error("cannot reach Redis at {addr}: {source}")]
    Unreachable {
        /// Host and port (the URL without its credentials).
        addr: String,
        /// What failed.
        #[source]
        source: redis::RedisError,
    },
    /// A request to Redis failed (connection lost, timeout, script error).
    #[error("Redis request failed: {0}")]
    Redis(#[from] redis::RedisError),
    /// The client is not in Redis: its instance was removed as dead, or Redis lost its data.
    #[error("client {0} is unknown to the shared store")]
    UnknownClient(ClientId),
    /// A script answered something this code does not expect (a bug, or foreign keys).
    #[error("unexpected reply from the {script} script: {detail}")]
    BadReply {
        /// The script.
        script: &'static str,
        /// What was wrong.
        detail: String,
    },
}

/// A member of a room, wherever its socket is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its client id.
    pub client: ClientId,
    /// Its user id.
    pub user: UserId,
    /// The instance that holds its socket.
    pub instance: String,
}

/// A client left a room: the room and the members who remain there, to tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Left {
    /// The room left (deleted when `members` is empty).
    pub room: RoomId,
    /// Who remains, oldest first.
    pub members: Vec<Member>,
}

/// What a join did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome {
    /// The client is now in the room.
    Joined {
        /// The room it left to join this one, and who remains there.
        left: Option<Left>,
        /// The other members, oldest first (all of them are to be told).
        members: Vec<Member>,
    },
    /// The client was in the room already; nothing changed.
    AlreadyIn {
        /// The other members, oldest first.
        members: Vec<Member>,
    },
    /// Refused; nothing changed (the client is still in its old room, if any).
    Refused(JoinRefusal),
}

/// Why a join was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinRefusal {
    /// The room has its maximum of members.
    Full,
    /// The room is locked.
    Locked,
    /// The room has a password and none (`required`) or another one was given.
    BadPassword {
        /// True when no password was given.
        required: bool,
    },
    /// The room would be one more than the maximum.
    TooManyRooms,
    /// Another member has the joiner's user id as its client id or user id.
    UserIdTaken,
}

impl JoinRefusal {
    /// The wire code of the `join-error`.
    pub fn code(self) -> ErrorCode {
        match self {
            JoinRefusal::Full => ErrorCode::RoomFull,
            JoinRefusal::Locked => ErrorCode::RoomLocked,
            JoinRefusal::BadPassword { .. } => ErrorCode::BadPassword,
            JoinRefusal::TooManyRooms => ErrorCode::TooManyRooms,
            JoinRefusal::UserIdTaken => ErrorCode::UserIdTaken,
        }
    }
}

/// The client is in no room, or not in the room its request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotInRoom {
    /// The room it is in, if any.
    pub current: Option<RoomId>,
}

/// Why a message cannot be routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteRefusal {
    /// The sender is in no room.
    NotInRoom,
    /// The target is unknown or in another room.
    TargetNotInRoom,
}

impl RouteRefusal {
    /// The wire code of the `error`.
    pub fn code(self) -> ErrorCode {
        match self {
            RouteRefusal::NotInRoom => ErrorCode::NotInRoom,
            RouteRefusal::TargetNotInRoom => ErrorCode::TargetNotInRoom,
        }
    }
}

/// Where a message from one client to another goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The instance holding the target's socket.
    pub instance: String,
    /// The sender's user id, to stamp.
    pub from_user: UserId,
}

/// The digest kept as a room's `pw`: hex SHA-256 of the room id's length, the room id (the
/// salt) and the password. The length prefix keeps `("ab", "c")` and `("a", "bc")` apart.
pub fn password_digest(room: &RoomId, password: &str) -> String {
    use sha2::Digest;
    let room = room.as_str().as_bytes();
    let len = u32::try_from(room.len()).unwrap_or(u32::MAX);
    let mut h = sha2::Sha256::new();
    h.update(len.to_be_bytes());
    h.update(room);
    h.update(password.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// One Lua script, with its name for error messages.
struct Lua {
    name: &'static str,
    script: Script,
}

/// Every script, each prefixed with the shared helpers of `lua/common.lua`.
struct Scripts {
    add_client: Lua,
    set_user: Lua,
    join: Lua,
    leave: Lua,
    remove_client: Lua,
    remove_one_of_instance: Lua,
    route: Lua,
    members_of: Lua,
    set_locked: Lua,
    list_rooms: Lua,
    heartbeat: Lua,
    dead_instances: Lua,
}

macro_rules! lua {
    ($name:literal) => {
        Lua {
            name: $name,
            script: Script::new(concat!(
                include_str!("lua/common.lua"),
                include_str!(concat!("lua/", $name, ".lua"))
            )),
        }
    };
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    add_client: lua!("add_client"),
    set_user: lua!("set_user"),
    join: lua!("join"),
    leave: lua!("leave"),
    remove_client: lua!("remove_client"),
    remove_one_of_instance: lua!("remove_one_of_instance"),
    route: lua!("route"),
    members_of: lua!("members_of"),
    set_locked: lua!("set_locked"),
    list_rooms: lua!("list_rooms"),
    heartbeat: lua!("heartbeat"),
    dead_instances: lua!("dead_instances"),
});

/// The shared room state of one instance's view: a cheap clonable handle over one multiplexed
/// Redis connection that reconnects on its own.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: Arc<str>,
    instance: Arc<str>,
    /// Whether joins refuse a user id another member has (see `RoomLimits::distinct_user_ids`).
    distinct_user_ids: bool,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// Opens `url` and names its address without the credentials a URL may carry.
fn open(url: &str) -> Result<(redis::Client, String), StoreError> {
    let client = redis::Client::open(url).map_err(StoreError::InvalidUrl)?;
    let addr = client.get_connection_info().addr().to_string();
    Ok((client, addr))
}

impl RedisStore {
    /// Connects to the Redis at `url` as instance `instance`, with every key under `prefix`.
    /// Fails within a few seconds, naming the address, when Redis does not answer a `PING`.
    pub async fn connect(url: &str, prefix: &str, instance: &str) -> Result<Self, StoreError> {
        let (client, addr) = open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(CONNECT_RETRIES);
        let unreachable = |source| StoreError::Unreachable {
            addr: addr.clone(),
            source,
        };
        let mut conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(unreachable)?;
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(unreachable)?;
        Ok(RedisStore {
            conn,
            prefix: prefix.into(),
            instance: instance.into(),
            distinct_user_ids: true,
        })
    }

    /// Lets members of a room share a user id (tokens fix them), or not (the default).
    pub fn with_distinct_user_ids(mut self, on: bool) -> Self {
        self.distinct_user_ids = on;
        self
    }

    /// This instance's id.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Runs `lua` with the prefix then `args` as ARGV.
    async fn call(&self, lua: &'static Lua, args: &[&str]) -> Result<Reply, StoreError> {
        let mut invocation = lua.script.prepare_invoke();
        invocation.arg(&*self.prefix);
        for arg in args {
            invocation.arg(*arg);
        }
        let mut conn = self.conn.clone();
        let value: Value = invocation.invoke_async(&mut conn).await?;
        Reply::new(lua.name, value)
    }

    /// Says this instance is alive for `ttl` more, and registers it. Call it well within `ttl`
    /// (a third of it, say), or other instances will remove this one's clients.
    pub async fn heartbeat(&self, ttl: Duration) -> Result<(), StoreError> {
        let ms = ttl.as_millis().max(1).to_string();
        self.call(&SCRIPTS.heartbeat, &[&self.instance, &ms])
            .await?;
        Ok(())
    }

    /// The registered instances whose heartbeat has expired, for [`Self::remove_instance`].
    pub async fn dead_instances(&self) -> Result<Vec<String>, StoreError> {
        let mut reply = self.call(&SCRIPTS.dead_instances, &[]).await?;
        let mut dead = Vec::new();
        while reply.has_more() {
            dead.push(reply.text()?);
        }
        Ok(dead)
    }

    /// Registers a client whose socket this instance holds. False (and nothing changed) when
    /// the id is taken. This also registers the instance: beat ([`Self::heartbeat`]) before
    /// adding clients, or other instances will find it dead and remove them.
    pub async fn add_client(&self, client: &ClientId, user: &UserId) -> Result<bool, StoreError> {
        let args = [client.as_str(), user.as_str(), &self.instance];
        let mut reply = self.call(&SCRIPTS.add_client, &args).await?;
        Ok(reply.int()? == 1)
    }

    /// Changes a client's user id (`register`); false (nothing changed) when another member of
    /// its room has that id as its client id or user id.
    pub async fn set_user(&self, client: &ClientId, user: &UserId) -> Result<bool, StoreError> {
        let args = [client.as_str(), user.as_str()];
        let mut reply = self.call(&SCRIPTS.set_user, &args).await?;
        match reply.int()? {
            1 => Ok(true),
            2 => Ok(false),
            _ => Err(StoreError::UnknownClient(client.clone())),
        }
    }

    /// Moves `client` into `room` (leaving its current room), or refuses and changes nothing.
    /// The creator of a room sets its password; later joiners must give it.
    pub async fn join(
        &self,
        client: &ClientId,
        room: &RoomId,
        password: Option<&str>,
        max_members: usize,
        max_rooms: usize,
    ) -> Result<JoinOutcome, StoreError> {
        let digest = password.map_or_else(String::new, |p| password_digest(room, p));
        let (max_members, max_rooms) = (max_members.to_string(), max_rooms.to_string());
        let distinct = if self.distinct_user_ids { "1" } else { "0" };
        let args = [
            client.as_str(),
            room.as_str(),
            &digest,
            &max_members,
            &max_rooms,
            distinct,
        ];
        let mut reply = self.call(&SCRIPTS.join, &args).await?;
        let refused = |why| Ok(JoinOutcome::Refused(why));
        match reply.text()?.as_str() {
            "unknown" => Err(StoreError::UnknownClient(client.clone())),
            "already" => Ok(JoinOutcome::AlreadyIn {
                members: reply.members()?,
            }),
            "joined" => {
                let members = reply.members()?;
                let left = reply.left()?;
                Ok(JoinOutcome::Joined { left, members })
            }
            "refused" => match reply.text()?.as_str() {
                "full" => refused(JoinRefusal::Full),
                "locked" => refused(JoinRefusal::Locked),
                "password-required" => refused(JoinRefusal::BadPassword { required: true }),
                "bad-password" => refused(JoinRefusal::BadPassword { required: false }),
                "too-many-rooms" => refused(JoinRefusal::TooManyRooms),
                "user-taken" => refused(JoinRefusal::UserIdTaken),
                other => Err(reply.unexpected(other)),
            },
            other => Err(reply.unexpected(other)),
        }
    }

    /// Takes `client` out of its room, which must be `room` when one is named. The room is
    /// deleted when it empties.
    pub async fn leave(
        &self,
        client: &ClientId,
        room: Option<&RoomId>,
    ) -> Result<Result<Left, NotInRoom>, StoreError> {
        let args = [client.as_str(), room.map_or("", RoomId::as_str)];
        let mut reply = self.call(&SCRIPTS.leave, &args).await?;
        match reply.text()?.as_str() {
            "left" => {
                let room = reply.room()?;
                let members = reply.members()?;
                Ok(Ok(Left { room, members }))
            }
            status => reply.not_in_room(status, client).map(Err),
        }
    }

    /// Forgets `client` (its socket closed), taking it out of its room: the room and who
    /// remains there, or `None` when it was in no room. Unknown clients are ignored.
    pub async fn remove_client(&self, client: &ClientId) -> Result<Option<Left>, StoreError> {
        let mut reply = self
            .call(&SCRIPTS.remove_client, &[client.as_str()])
            .await?;
        match reply.text()?.as_str() {
            "gone" => Ok(None),
            "removed" => Ok(reply.removed()?.0),
            other => Err(reply.unexpected(other)),
        }
    }

    /// Where a message from `from` to `target` goes: only to a member of the sender's room.
    pub async fn route(
        &self,
        from: &ClientId,
        target: &ClientId,
    ) -> Result<Result<Route, RouteRefusal>, StoreError> {
        let args = [from.as_str(), target.as_str()];
        let mut reply = self.call(&SCRIPTS.route, &args).await?;
        match reply.text()?.as_str() {
            "ok" => {
                let instance = reply.text()?;
                let from_user = reply.user()?;
                Ok(Ok(Route {
                    instance,
                    from_user,
                }))
            }
            "unknown" => Err(StoreError::UnknownClient(from.clone())),
            "not-in-room" => Ok(Err(RouteRefusal::NotInRoom)),
            "target-not-in-room" => Ok(Err(RouteRefusal::TargetNotInRoom)),
            other => Err(reply.unexpected(other)),
        }
    }

    /// Where a broadcast from `from` goes: its room, its user id, and the other members,
    /// oldest first.
    pub async fn room_members_of(
        &self,
        from: &ClientId,
    ) -> Result<Result<(RoomId, UserId, Vec<Member>), NotInRoom>, StoreError> {
        let mut reply = self.call(&SCRIPTS.members_of, &[from.as_str()]).await?;
        match reply.text()?.as_str() {
            "ok" => {
                let room = reply.room()?;
                let user = reply.user()?;
                let members = reply.members()?;
                Ok(Ok((room, user, members)))
            }
            status => reply.not_in_room(status, from).map(Err),
        }
    }

    /// Locks or unlocks the room of `client` (which must be `room` when one is named): the
    /// room, and all its members including `client`, oldest first, to tell.
    pub async fn set_locked(
        &self,
        client: &ClientId,
        room: Option<&RoomId>,
        locked: bool,
    ) -> Result<Result<(RoomId, Vec<Member>), NotInRoom>, StoreError> {
        let flag = if locked { "1" } else { "0" };
        let args = [client.as_str(), room.map_or("", RoomId::as_str), flag];
        let mut reply = self.call(&SCRIPTS.set_locked, &args).await?;
        match reply.text()?.as_str() {
            "ok" => {
                let room = reply.room()?;
                let members = reply.members()?;
                Ok(Ok((room, members)))
            }
            status => reply.not_in_room(status, client).map(Err),
        }
    }

    /// The rooms without a password, sorted by id (bytes), only those of `allowed` when given,
    /// at most `limit` of them; true when some were left out. `max_members` is reported as
    /// each room's cap.
    pub async fn list_rooms(
        &self,
        limit: usize,
        allowed: Option<&[String]>,
        max_members: usize,
    ) -> Result<(Vec<RoomInfo>, bool), StoreError> {
        let limit_arg = limit.to_string();
        let mut names: Vec<&str> = allowed
            .unwrap_or_default()
            .iter()
            .map(String::as_str)
            .collect();
        // Sorted and unique, so that the script's first `limit` are the first by id.
        names.sort_unstable();
        names.dedup();
        if allowed.is_some() && names.is_empty() {
            return Ok((Vec::new(), false));
        }
        let mut args = vec![limit_arg.as_str()];
        args.extend(names);
        let mut reply = self.call(&SCRIPTS.list_rooms, &args).await?;
        let total = reply.int()?;
        let mut list = reply.nested()?;
        let mut rooms = Vec::new();
        while list.has_more() {
            let id = list.room()?;
            let member_count = usize::try_from(list.int()?).map_err(|e| list.bad(e))?;
            let locked = list.text()? == "1";
            rooms.push(RoomInfo {
                id,
                member_count,
                max_members,
                locked,
            });
        }
        let truncated = usize::try_from(total).map_err(|e| reply.bad(e))? > rooms.len();
        Ok((rooms, truncated))
    }

    /// Removes every client of `instance` (dead, or shutting down) from its room and forgets
    /// the instance. Returns, for each client that was in a room, the room with the members
    /// to tell (those on other instances) and the client that left. Each client is removed by
    /// its own atomic step, so several instances may reap the same dead one at once: each
    /// client is then reported by exactly one of them. Idempotent.
    pub async fn remove_instance(&self, instance: &str) -> Result<Vec<(Left, Member)>, StoreError> {
        let mut removed = Vec::new();
        loop {
            let mut reply = self
                .call(&SCRIPTS.remove_one_of_instance, &[instance])
                .await?;
            match reply.text()?.as_str() {
                "done" => return Ok(removed),
                "skipped" => {}
                "removed" => {
                    if let (Some(mut left), member) = reply.removed()? {
                        left.members.retain(|m| m.instance != instance);
                        removed.push((left, member));
                    }
                }
                other => return Err(reply.unexpected(other)),
            }
        }
    }

    /// Publishes `payload` to `instance`'s channel. Returns how many subscribers got it (0:
    /// the instance is not listening).
    pub async fn publish(&self, instance: &str, payload: &str) -> Result<usize, StoreError> {
        let mut conn = self.conn.clone();
        let receivers = redis::cmd("PUBLISH")
            .arg(channel(&self.prefix, instance))
            .arg(payload)
            .query_async(&mut conn)
            .await?;
        Ok(receivers)
    }

    /// Publishes several messages in one round trip (a pipeline), in order.
    pub async fn publish_many(&self, messages: &[(Arc<str>, String)]) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        for (instance, payload) in messages {
            pipe.cmd("PUBLISH")
                .arg(channel(&self.prefix, instance))
                .arg(payload)
                .ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await?;
        Ok(())
    }

    /// The messages published to `instance`'s channel, on a dedicated connection. The stream
    /// ends when that connection is lost: subscribe again (messages meanwhile are lost, as
    /// always with Redis pub/sub).
    pub async fn subscribe(
        url: &str,
        prefix: &str,
        instance: &str,
    ) -> Result<impl Stream<Item = String> + Send + Unpin + use<>, StoreError> {
        let (client, addr) = open(url)?;
        let unreachable = |source| StoreError::Unreachable {
            addr: addr.clone(),
            source,
        };
        let mut pubsub = tokio::time::timeout(CONNECTION_TIMEOUT, client.get_async_pubsub())
            .await
            .map_err(|_| {
                let timed_out = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no pub/sub connection within the timeout",
                );
                unreachable(timed_out.into())
            })?
            .map_err(unreachable)?;
        pubsub.subscribe(channel(prefix, instance)).await?;
        Ok(pubsub.into_on_message().filter_map(|msg| {
            let payload = msg.get_payload::<String>().ok();
            if payload.is_none() {
                tracing::warn!(
                    channel = msg.get_channel_name(),
                    "dropped a non-UTF-8 message"
                );
            }
            std::future::ready(payload)
        }))
    }
}

/// The pub/sub channel of `instance`.
fn channel(prefix: &str, instance: &str) -> String {
    format!("{prefix}instance:{instance}")
}

/// A script's reply, read item by item: every script answers an array (a status first, for
/// most), so that one reader serves them all.
struct Reply {
    script: &'static str,
    items: std::vec::IntoIter<Value>,
}

impl Reply {
    fn new(script: &'static str, value: Value) -> Result<Self, StoreError> {
        match value {
            Value::Array(items) => Ok(Reply {
                script,
                items: items.into_iter(),
            }),
            other => Err(StoreError::BadReply {
                script,
                detail: format!("expected an array, got {other:?}"),
            }),
        }
    }

    fn bad(&self, detail: impl std::fmt::Display) -> StoreError {
        StoreError::BadReply {
            script: self.script,
            detail: detail.to_string(),
        }
    }

    fn unexpected(&self, status: &str) -> StoreError {
        self.bad(format_args!("unexpected status {status:?}"))
    }

    fn has_more(&self) -> bool {
        self.items.len() > 0
    }

    fn next(&mut self) -> Result<Value, StoreError> {
        self.items.next().ok_or_else(|| self.bad("reply too short"))
    }

    fn text(&mut self) -> Result<String, StoreError> {
        match self.next()? {
            Value::BulkString(bytes) => String::from_utf8(bytes).map_err(|e| self.bad(e)),
            Value::SimpleString(s) => Ok(s),
            Value::Int(n) => Ok(n.to_string()),
            other => Err(self.bad(format_args!("expected a string, got {other:?}"))),
        }
    }

    fn int(&mut self) -> Result<i64, StoreError> {
        match self.next()? {
            Value::Int(n) => Ok(n),
            other => Err(self.bad(format_args!("expected an integer, got {other:?}"))),
        }
    }

    fn nested(&mut self) -> Result<Reply, StoreError> {
        let value = self.next()?;
        Reply::new(self.script, value)
    }

    fn room(&mut self) -> Result<RoomId, StoreError> {
        let s = self.text()?;
        RoomId::new(s).map_err(|e| self.bad(format_args!("room id {e}")))
    }

    fn user(&mut self) -> Result<UserId, StoreError> {
        let s = self.text()?;
        UserId::new(s).map_err(|e| self.bad(format_args!("user id {e}")))
    }

    fn client(&mut self) -> Result<ClientId, StoreError> {
        let s = self.text()?;
        ClientId::new(s).map_err(|e| self.bad(format_args!("client id {e}")))
    }

    /// A nested flat list `client, user, instance, ...`.
    fn members(&mut self) -> Result<Vec<Member>, StoreError> {
        let mut list = self.nested()?;
        let mut members = Vec::with_capacity(list.items.len() / 3);
        while list.has_more() {
            members.push(Member {
                client: list.client()?,
                user: list.user()?,
                instance: list.text()?,
            });
        }
        Ok(members)
    }

    /// A room left (`''` for none) then who remains.
    fn left(&mut self) -> Result<Option<Left>, StoreError> {
        let room = self.text()?;
        let members = self.members()?;
        if room.is_empty() {
            return Ok(None);
        }
        let room = RoomId::new(room).map_err(|e| self.bad(format_args!("room id {e}")))?;
        Ok(Some(Left { room, members }))
    }

    /// The rest of a `removed` reply: client, room left, who remains, user, instance.
    fn removed(&mut self) -> Result<(Option<Left>, Member), StoreError> {
        let client = self.client()?;
        let left = self.left()?;
        let user = self.user()?;
        let instance = self.text()?;
        let member = Member {
            client,
            user,
            instance,
        };
        Ok((left, member))
    }

    /// The refusal of a `not-in-room` status (its current room follows, `''` for none).
    fn not_in_room(&mut self, status: &str, client: &ClientId) -> Result<NotInRoom, StoreError> {
        match status {
            "unknown" => Err(StoreError::UnknownClient(client.clone())),
            "not-in-room" => {
                let current = self.text()?;
                let current = if current.is_empty() {
                    None
                } else {
                    Some(RoomId::new(current).map_err(|e| self.bad(format_args!("room id {e}")))?)
                };
                Ok(NotInRoom { current })
            }
            other => Err(self.unexpected(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_digests_are_salted_by_the_room_and_unambiguous() {
        let room = |s: &str| RoomId::new(s).unwrap();
        let d = password_digest(&room("r"), "pw");
        assert_eq!(d.len(), 64);
        assert!(d.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(d, password_digest(&room("r"), "pw"));
        assert_ne!(d, password_digest(&room("q"), "pw"));
        assert_ne!(
            password_digest(&room("ab"), "c"),
            password_digest(&room("a"), "bc")
        );
    }
}
