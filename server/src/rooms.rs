//! The room state: who is connected, who is in which room, and what each change tells whom.
//!
//! [`RoomState`] is pure and synchronous: it never sends anything. Each operation returns an
//! [`Outbox`] of messages with their recipients, which the caller sends after releasing the lock
//! that guards the state (see `relay.rs`). It is generic over the recipient handle `S` so that
//! property tests can drive it with plain values.
//!
//! Invariants, checked by [`RoomState::check_invariants`] in the property tests: a client is in
//! at most one room; a room lists each member once, only connected clients, at most its cap; no
//! room is empty; no member of a room has another member's user id, nor a user id that is
//! another member's client id.

use protocol::{ClientId, ErrorCode, PeerInfo, RoomId, RoomInfo, ServerMessage, UserId};
use std::collections::{BTreeSet, HashMap};

/// Limits the state enforces on rooms.
#[derive(Debug, Clone, Copy)]
pub struct RoomLimits {
    /// Most members in one room.
    pub max_members: usize,
    /// Most rooms at once.
    pub max_rooms: usize,
    /// Whether no member of a room may have another member's user id (or client id as its user
    /// id). Off when access tokens fix the user ids: two connections with one token's `sub`
    /// are the same person (a laptop and a phone), and nobody can take another's id.
    pub distinct_user_ids: bool,
}

/// A refused request: the `error` reply to send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Why, for programs.
    pub code: ErrorCode,
    /// Why, for people.
    pub message: String,
}

impl Refusal {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }

    /// The sender is in no room (`current` is `None`), or not in the room `named` it gave.
    pub fn not_in_room(current: Option<&RoomId>, named: Option<&RoomId>) -> Self {
        match (current, named) {
            (Some(cur), Some(named)) => Refusal::new(
                ErrorCode::NotInRoom,
                format!("you are not in room {named} (you are in {cur})"),
            ),
            _ => Refusal::new(ErrorCode::NotInRoom, "you are not in a room"),
        }
    }

    /// `join-error` reasons, worded the same whichever router refuses.
    pub fn room_full(room: &RoomId, max_members: usize) -> Self {
        Refusal::new(
            ErrorCode::RoomFull,
            format!("room {room} is full ({max_members} members)"),
        )
    }

    /// The room is locked.
    pub fn room_locked(room: &RoomId) -> Self {
        Refusal::new(ErrorCode::RoomLocked, format!("room {room} is locked"))
    }

    /// The room's password was not given (`given` false) or is wrong.
    pub fn bad_password(room: &RoomId, given: bool) -> Self {
        let why = if given {
            "wrong password"
        } else {
            "a password is required"
        };
        Refusal::new(ErrorCode::BadPassword, format!("room {room}: {why}"))
    }

    /// Another member of `room` (the client's own room when `None`) already has `user` as its
    /// user id or client id.
    pub fn user_id_taken(user: &UserId, room: Option<&RoomId>) -> Self {
        let room = room.map_or_else(|| "your room".to_owned(), |r| format!("room {r}"));
        Refusal::new(
            ErrorCode::UserIdTaken,
            format!("user id {user} is already used in {room}: pick another"),
        )
    }

    /// The relay holds as many rooms as it admits.
    pub fn too_many_rooms(max_rooms: usize) -> Self {
        Refusal::new(
            ErrorCode::TooManyRooms,
            format!("the relay already holds {max_rooms} rooms"),
        )
    }

    /// The `join-error` that carries this refusal of a join to `room`.
    pub fn into_join_error(self, room: RoomId) -> ServerMessage {
        ServerMessage::JoinError {
            error: self.message,
            room_id: Some(room),
            code: Some(self.code),
        }
    }

    /// The `error` message that carries this refusal.
    pub fn into_message(self) -> ServerMessage {
        ServerMessage::error(self.code, self.message)
    }
}

/// Messages to send once the state's lock is released: each with all its recipients, so that
/// it is encoded once however many receive it.
#[derive(Debug)]
pub struct Outbox<S> {
    /// `(recipients, message)` pairs, in sending order.
    pub items: Vec<(Vec<S>, ServerMessage)>,
}

impl<S> Default for Outbox<S> {
    fn default() -> Self {
        Outbox { items: Vec::new() }
    }
}

impl<S> Outbox<S> {
    /// Adds `msg` for `to` (nothing when `to` is empty).
    pub fn push(&mut self, to: Vec<S>, msg: ServerMessage) {
        if !to.is_empty() {
            self.items.push((to, msg));
        }
    }
}

/// A connected client.
#[derive(Debug)]
struct Client<S> {
    user_id: UserId,
    room: Option<RoomId>,
    tx: S,
}

/// A room and its members, oldest first.
#[derive(Debug, Default)]
struct Room {
    members: Vec<ClientId>,
    locked: bool,
    password: Option<PasswordHash>,
}

/// A room password, kept only as a salted SHA-256 digest and compared in constant time. (A
/// slow hash would let joins burn the relay's CPU; the digest never leaves the process.)
struct PasswordHash {
    salt: [u8; 16],
    digest: [u8; 32],
}

impl PasswordHash {
    fn new(password: &str) -> Self {
        let salt: [u8; 16] = rand::random();
        PasswordHash {
            salt,
            digest: Self::digest(&salt, password),
        }
    }

    fn digest(salt: &[u8; 16], password: &str) -> [u8; 32] {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(salt);
        h.update(password.as_bytes());
        h.finalize().into()
    }

    fn matches(&self, password: &str) -> bool {
        use subtle::ConstantTimeEq;
        Self::digest(&self.salt, password)
            .ct_eq(&self.digest)
            .into()
    }
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

/// All clients and rooms of one relay.
#[derive(Debug)]
pub struct RoomState<S> {
    clients: HashMap<ClientId, Client<S>>,
    rooms: HashMap<RoomId, Room>,
    limits: RoomLimits,
    /// The rooms `rooms` may list (those without a password), in order, when listing is on:
    /// an answer then takes its first entries instead of sorting every room under the lock.
    listed: Option<BTreeSet<RoomId>>,
}

/// Where a relayed message goes: the target's handle and the sender's user id to stamp.
#[derive(Debug)]
pub struct Route<S> {
    /// The recipients.
    pub to: Vec<S>,
    /// The sender's user id.
    pub from_user_id: UserId,
}

impl<S: Clone> RoomState<S> {
    /// An empty state.
    pub fn new(limits: RoomLimits) -> Self {
        RoomState {
            clients: HashMap::new(),
            rooms: HashMap::new(),
            limits,
            listed: None,
        }
    }

    /// An empty state that keeps the index [`RoomState::list_rooms`] reads (its memory is
    /// spent only when listing is on).
    pub fn with_room_list(limits: RoomLimits) -> Self {
        RoomState {
            listed: Some(BTreeSet::new()),
            ..Self::new(limits)
        }
    }

    /// Number of connected clients.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// Number of rooms.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Whether `id` is connected.
    pub fn contains(&self, id: &ClientId) -> bool {
        self.clients.contains_key(id)
    }

    /// The room `id` is in.
    pub fn room_of(&self, id: &ClientId) -> Option<&RoomId> {
        self.clients.get(id)?.room.as_ref()
    }

    /// Members of `room`, oldest first.
    pub fn members(&self, room: &RoomId) -> &[ClientId] {
        self.rooms.get(room).map_or(&[], |r| &r.members)
    }

    /// Adds a connected client whose user id defaults to its client id. Returns false (and
    /// changes nothing) when the id is taken.
    pub fn connect(&mut self, id: ClientId, tx: S) -> bool {
        let user_id = UserId::from(id.clone());
        self.connect_as(id, tx, user_id)
    }

    /// Adds a connected client with a given user id. Returns false when the id is taken.
    pub fn connect_as(&mut self, id: ClientId, tx: S, user_id: UserId) -> bool {
        if self.clients.contains_key(&id) {
            return false;
        }
        self.clients.insert(
            id,
            Client {
                user_id,
                room: None,
                tx,
            },
        );
        true
    }

    /// Members in rooms, over all rooms.
    pub fn member_count(&self) -> usize {
        self.rooms.values().map(|r| r.members.len()).sum()
    }
    /// Removes a client, telling its room. Unknown ids are ignored (the client may have been
    /// removed already, e.g. as a slow consumer).
    pub fn disconnect(&mut self, id: &ClientId) -> Outbox<S> {
        let mut out = Outbox::default();
        if self.clients.contains_key(id) {
            self.leave_current(id, false, &mut out);
            self.clients.remove(id);
        }
        out
    }

    /// `register`: sets the user id, unless another member of the client's room has it as its
    /// client id or user id.
    pub fn register(
        &mut self,
        id: &ClientId,
        user_id: Option<UserId>,
    ) -> Result<Outbox<S>, Refusal> {
        let mut out = Outbox::default();
        let user_id = user_id.unwrap_or_else(|| UserId::from(id.clone()));
        let Some(client) = self.clients.get(id) else {
            return Ok(out);
        };
        if let Some(room) = &client.room {
            if self.taken_in(room, id, &user_id) {
                return Err(Refusal::user_id_taken(&user_id, Some(room)));
            }
        }
        let client = self.clients.get_mut(id).expect("checked above");
        client.user_id = user_id;
        let msg = ServerMessage::Registered {
            user_id: client.user_id.clone(),
        };
        out.push(vec![client.tx.clone()], msg);
        Ok(out)
    }

    /// Whether a member of `room` other than `id` has `user` as its client id or user id, or
    /// has `id` as its user id: letting `id` in with `user` would make two members look alike.
    fn taken_in(&self, room: &RoomId, id: &ClientId, user: &UserId) -> bool {
        if !self.limits.distinct_user_ids {
            return false;
        }
        self.members(room).iter().filter(|m| *m != id).any(|m| {
            let theirs = &self.clients[m].user_id;
            m.as_str() == user.as_str() || theirs == user || theirs.as_str() == id.as_str()
        })
    }

    /// `join`: moves the client into `room`, or answers `join-error` and changes nothing. The
    /// client that creates a room may set its password; later joiners must give it.
    pub fn join(&mut self, id: &ClientId, room_id: RoomId, password: Option<&str>) -> Outbox<S> {
        let mut out = Outbox::default();
        let Some(client) = self.clients.get(id) else {
            return out;
        };
        let me = client.tx.clone();
        if client.room.as_ref() == Some(&room_id) {
            // Joining the room one is in again only repeats the answer.
            let joined = self.joined_message(id, room_id);
            out.push(vec![me], joined);
            return out;
        }
        if let Err(refusal) = self.admits(id, &room_id, password) {
            out.push(vec![me], refusal.into_join_error(room_id));
            return out;
        }
        self.leave_current(id, true, &mut out);
        if !self.rooms.contains_key(&room_id) {
            if let (Some(listed), None) = (&mut self.listed, password) {
                listed.insert(room_id.clone());
            }
        }
        let room = self.rooms.entry(room_id.clone()).or_insert_with(|| Room {
            password: password.map(PasswordHash::new),
            ..Room::default()
        });
        let others: Vec<S> = room
            .members
            .iter()
            .map(|m| self.clients[m].tx.clone())
            .collect();
        room.members.push(id.clone());
        let client = self.clients.get_mut(id).expect("checked above");
        client.room = Some(room_id.clone());
        let announce = ServerMessage::UserJoined {
            user_id: client.user_id.clone(),
            client_id: id.clone(),
        };
        let joined = self.joined_message(id, room_id);
        out.push(vec![me], joined);
        out.push(others, announce);
        out
    }

    fn joined_message(&self, id: &ClientId, room_id: RoomId) -> ServerMessage {
        let peers = self
            .members(&room_id)
            .iter()
            .filter(|m| *m != id)
            .map(|m| PeerInfo {
                client_id: m.clone(),
                user_id: self.clients[m].user_id.clone(),
            })
            .collect();
        joined_message(room_id, peers)
    }

    /// Whether `id` may enter `room_id` with `password` (not counting a room it is already in).
    fn admits(
        &self,
        id: &ClientId,
        room_id: &RoomId,
        password: Option<&str>,
    ) -> Result<(), Refusal> {
        match self.rooms.get(room_id) {
            Some(Room {
                password: Some(hash),
                ..
            }) if !password.is_some_and(|p| hash.matches(p)) => {
                Err(Refusal::bad_password(room_id, password.is_some()))
            }
            Some(room) if room.locked => Err(Refusal::room_locked(room_id)),
            Some(room) if room.members.len() >= self.limits.max_members => {
                Err(Refusal::room_full(room_id, self.limits.max_members))
            }
            // Checked last: only someone who may enter learns who is inside.
            Some(_) => match self.clients.get(id) {
                Some(c) if self.taken_in(room_id, id, &c.user_id) => {
                    Err(Refusal::user_id_taken(&c.user_id, Some(room_id)))
                }
                _ => Ok(()),
            },
            None => {
                // The room the client leaves is deleted if it is alone there, freeing a slot.
                let frees_one = self
                    .room_of(id)
                    .and_then(|r| self.rooms.get(r))
                    .is_some_and(|r| r.members.len() == 1);
                let after = self.rooms.len() + 1 - usize::from(frees_one);
                if after > self.limits.max_rooms {
                    Err(Refusal::too_many_rooms(self.limits.max_rooms))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Takes `id` out of its room (if any): `left` to itself when `tell_self`, `user-left` to
    /// the others, and the room deleted when it becomes empty.
    fn leave_current(&mut self, id: &ClientId, tell_self: bool, out: &mut Outbox<S>) {
        let Some(client) = self.clients.get_mut(id) else {
            return;
        };
        let Some(room_id) = client.room.take() else {
            return;
        };
        let user_id = client.user_id.clone();
        let me = client.tx.clone();
        let room = self
            .rooms
            .get_mut(&room_id)
            .expect("a client's room exists");
        room.members.retain(|m| m != id);
        let others: Vec<S> = room
            .members
            .iter()
            .map(|m| self.clients[m].tx.clone())
            .collect();
        if room.members.is_empty() {
            self.rooms.remove(&room_id);
            if let Some(listed) = &mut self.listed {
                listed.remove(&room_id);
            }
        }
        if tell_self {
            out.push(vec![me], ServerMessage::Left { room_id });
        }
        out.push(
            others,
            ServerMessage::UserLeft {
                user_id,
                client_id: id.clone(),
            },
        );
    }

    /// `leave`: leaves the current room, which must be `room_id` when one is given.
    pub fn leave(&mut self, id: &ClientId, room_id: Option<&RoomId>) -> Result<Outbox<S>, Refusal> {
        self.own_room(id, room_id)?;
        let mut out = Outbox::default();
        self.leave_current(id, true, &mut out);
        Ok(out)
    }

    /// The sender's room, checked against the room a request names.
    fn own_room(&self, id: &ClientId, named: Option<&RoomId>) -> Result<RoomId, Refusal> {
        match (self.room_of(id), named) {
            (Some(cur), Some(named)) if cur != named => {
                Err(Refusal::not_in_room(Some(cur), Some(named)))
            }
            (Some(cur), _) => Ok(cur.clone()),
            (None, _) => Err(Refusal::not_in_room(None, named)),
        }
    }

    /// `lock`/`unlock`: sets the lock of the sender's room and tells every member.
    pub fn set_locked(
        &mut self,
        id: &ClientId,
        room_id: Option<&RoomId>,
        locked: bool,
    ) -> Result<Outbox<S>, Refusal> {
        let room_id = self.own_room(id, room_id)?;
        let room = self
            .rooms
            .get_mut(&room_id)
            .expect("a client's room exists");
        room.locked = locked;
        let all: Vec<S> = room
            .members
            .iter()
            .map(|m| self.clients[m].tx.clone())
            .collect();
        let mut out = Outbox::default();
        out.push(all, lock_message(room_id, id.clone(), locked));
        Ok(out)
    }

    /// Where a message from `from` to `target` goes: only to a member of the sender's room.
    pub fn route(&self, from: &ClientId, target: &ClientId) -> Result<Route<S>, Refusal> {
        let sender = self.clients.get(from).ok_or_else(not_in_room)?;
        let room = sender.room.as_ref().ok_or_else(not_in_room)?;
        match self.clients.get(target) {
            Some(t) if t.room.as_ref() == Some(room) => Ok(Route {
                to: vec![t.tx.clone()],
                from_user_id: sender.user_id.clone(),
            }),
            _ => Err(Refusal::new(
                ErrorCode::TargetNotInRoom,
                format!("client {target} is not in your room"),
            )),
        }
    }

    /// Where a broadcast from `from` goes: every other member of its room.
    pub fn route_broadcast(&self, from: &ClientId) -> Result<Route<S>, Refusal> {
        let sender = self.clients.get(from).ok_or_else(not_in_room)?;
        let room = sender.room.as_ref().ok_or_else(not_in_room)?;
        let to = self.rooms[room]
            .members
            .iter()
            .filter(|m| *m != from)
            .map(|m| self.clients[m].tx.clone())
            .collect();
        Ok(Route {
            to,
            from_user_id: sender.user_id.clone(),
        })
    }

    /// The rooms without a password, sorted by id, only those named in `allowed` when given,
    /// at most `limit` of them; true when some were left out.
    pub fn list_rooms(&self, limit: usize, allowed: Option<&[String]>) -> (Vec<RoomInfo>, bool) {
        let info = |id: &RoomId| {
            let r = self.rooms.get(id).filter(|r| r.password.is_none())?;
            Some(RoomInfo {
                id: id.clone(),
                member_count: r.members.len(),
                max_members: self.limits.max_members,
                locked: r.locked,
            })
        };
        let mut rooms: Vec<RoomInfo> = match (allowed, &self.listed) {
            (Some(names), _) => {
                let ids: BTreeSet<RoomId> = names
                    .iter()
                    .filter_map(|n| RoomId::new(n.as_str()).ok())
                    .collect();
                ids.iter().filter_map(info).take(limit + 1).collect()
            }
            (None, Some(listed)) => listed.iter().take(limit + 1).filter_map(info).collect(),
            (None, None) => {
                let mut all: Vec<RoomInfo> = self.rooms.keys().filter_map(info).collect();
                all.sort_unstable_by(|a, b| a.id.cmp(&b.id));
                all
            }
        };
        let truncated = rooms.len() > limit;
        rooms.truncate(limit);
        (rooms, truncated)
    }

    /// Replaces a connected client's handle (a resumed session's new connection); returns the
    /// old one.
    pub fn replace_sender(&mut self, id: &ClientId, tx: S) -> Option<S> {
        self.clients
            .get_mut(id)
            .map(|c| std::mem::replace(&mut c.tx, tx))
    }

    /// A connected client's user id.
    pub fn user_of(&self, id: &ClientId) -> Option<&UserId> {
        self.clients.get(id).map(|c| &c.user_id)
    }

    /// The handle of a connected client.
    pub fn sender(&self, id: &ClientId) -> Option<&S> {
        self.clients.get(id).map(|c| &c.tx)
    }

    /// Panics with a description when an invariant (see the module doc) does not hold.
    pub fn check_invariants(&self) {
        for (room_id, room) in &self.rooms {
            assert!(!room.members.is_empty(), "room {room_id} is empty");
            for m in &room.members {
                let user = &self.clients[m].user_id;
                assert!(
                    !self.taken_in(room_id, m, user),
                    "{m} ({user}) looks like another member of {room_id}"
                );
            }
            assert!(
                room.members.len() <= self.limits.max_members,
                "room {room_id} over cap"
            );
            for (i, m) in room.members.iter().enumerate() {
                assert!(!room.members[..i].contains(m), "{m} twice in {room_id}");
                let client = self
                    .clients
                    .get(m)
                    .unwrap_or_else(|| panic!("{m} not connected"));
                assert_eq!(
                    client.room.as_ref(),
                    Some(room_id),
                    "{m} listed in {room_id}"
                );
            }
        }
        for (id, client) in &self.clients {
            if let Some(room_id) = &client.room {
                let room = self
                    .rooms
                    .get(room_id)
                    .unwrap_or_else(|| panic!("{room_id} gone"));
                assert!(room.members.contains(id), "{id} missing from {room_id}");
            }
        }
        assert!(self.rooms.len() <= self.limits.max_rooms, "too many rooms");
        if let Some(listed) = &self.listed {
            let public = self.rooms.iter().filter(|(_, r)| r.password.is_none());
            let public: BTreeSet<&RoomId> = public.map(|(id, _)| id).collect();
            assert_eq!(public, listed.iter().collect(), "the list's index");
        }
    }
}

/// The answer to a join: the room and its other members (`members` and `peers`, same order).
pub fn joined_message(room_id: RoomId, peers: Vec<PeerInfo>) -> ServerMessage {
    let members = peers.iter().map(|p| p.client_id.clone()).collect();
    ServerMessage::Joined {
        room_id,
        members,
        peers,
    }
}

/// `locked` or `unlocked`, for every member.
pub fn lock_message(room_id: RoomId, by_id: ClientId, locked: bool) -> ServerMessage {
    if locked {
        ServerMessage::Locked { room_id, by_id }
    } else {
        ServerMessage::Unlocked { room_id, by_id }
    }
}

fn not_in_room() -> Refusal {
    Refusal::not_in_room(None, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cid(s: &str) -> ClientId {
        ClientId::new(s).unwrap()
    }
    fn rid(s: &str) -> RoomId {
        RoomId::new(s).unwrap()
    }
    fn state(max_members: usize, max_rooms: usize) -> RoomState<String> {
        RoomState::with_room_list(RoomLimits {
            max_members,
            max_rooms,
            distinct_user_ids: true,
        })
    }
    /// The outbox as (recipient, type) pairs, for compact assertions.
    fn flat(out: &Outbox<String>) -> Vec<(String, String)> {
        let mut v = Vec::new();
        for (to, msg) in &out.items {
            let json: serde_json::Value = serde_json::from_str(&msg.encode()).unwrap();
            for r in to {
                v.push((r.clone(), json["type"].as_str().unwrap().to_owned()));
            }
        }
        v
    }
    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn join_move_and_leave_tell_the_right_clients() {
        let mut s = state(10, 10);
        for c in ["a", "b", "c"] {
            assert!(s.connect(cid(c), c.to_owned()));
        }
        assert!(flat(&s.join(&cid("a"), rid("r"), None)) == pairs(&[("a", "joined")]));
        assert_eq!(
            flat(&s.join(&cid("b"), rid("r"), None)),
            pairs(&[("b", "joined"), ("a", "user-joined")])
        );
        // Moving to another room: left + user-left first, then joined.
        assert_eq!(
            flat(&s.join(&cid("a"), rid("q"), None)),
            pairs(&[("a", "left"), ("b", "user-left"), ("a", "joined")])
        );
        assert_eq!(
            flat(&s.disconnect(&cid("b"))),
            Vec::<(String, String)>::new()
        );
        assert_eq!(s.room_count(), 1, "the emptied room is deleted");
        assert!(s.leave(&cid("c"), None).is_err(), "c is in no room");
        s.check_invariants();
    }

    #[test]
    fn full_locked_and_too_many_rooms_refuse_without_moving() {
        let mut s = state(2, 2);
        for c in ["a", "b", "c", "d"] {
            s.connect(cid(c), c.to_owned());
        }
        s.join(&cid("a"), rid("r"), None);
        s.join(&cid("b"), rid("r"), None);
        s.join(&cid("c"), rid("q"), None);
        let out = s.join(&cid("c"), rid("r"), None);
        assert!(matches!(
            &out.items[0].1,
            ServerMessage::JoinError {
                code: Some(ErrorCode::RoomFull),
                ..
            }
        ));
        assert_eq!(
            s.room_of(&cid("c")),
            Some(&rid("q")),
            "a refused join keeps the old room"
        );
        let out = s.join(&cid("d"), rid("x"), None);
        assert!(matches!(
            &out.items[0].1,
            ServerMessage::JoinError {
                code: Some(ErrorCode::TooManyRooms),
                ..
            }
        ));
        // c is alone in q, so moving to a new room does not add one.
        assert_eq!(
            flat(&s.join(&cid("c"), rid("x"), None)),
            pairs(&[("c", "left"), ("c", "joined")])
        );
        s.set_locked(&cid("c"), None, true).unwrap();
        s.leave(&cid("a"), Some(&rid("r"))).unwrap();
        let out = s.join(&cid("a"), rid("x"), None);
        assert!(matches!(
            &out.items[0].1,
            ServerMessage::JoinError {
                code: Some(ErrorCode::RoomLocked),
                ..
            }
        ));
        s.check_invariants();
    }

    #[test]
    fn routes_only_within_the_room() {
        let mut s = state(10, 10);
        for c in ["a", "b", "c"] {
            s.connect(cid(c), c.to_owned());
        }
        s.join(&cid("a"), rid("r"), None);
        s.join(&cid("b"), rid("r"), None);
        s.join(&cid("c"), rid("q"), None);
        assert_eq!(
            s.route(&cid("a"), &cid("b")).unwrap().to,
            vec!["b".to_owned()]
        );
        assert_eq!(
            s.route(&cid("a"), &cid("c")).unwrap_err().code,
            ErrorCode::TargetNotInRoom
        );
        assert_eq!(
            s.route(&cid("a"), &cid("zz")).unwrap_err().code,
            ErrorCode::TargetNotInRoom
        );
        assert_eq!(
            s.route_broadcast(&cid("b")).unwrap().to,
            vec!["a".to_owned()]
        );
    }

    #[test]
    fn the_creator_sets_the_password_and_later_joiners_need_it() {
        let mut s = state(10, 10);
        for c in ["a", "b", "c"] {
            s.connect(cid(c), c.to_owned());
        }
        s.join(&cid("a"), rid("r"), Some("s3cret"));
        let refused = |out: &Outbox<String>| match &out.items[0].1 {
            ServerMessage::JoinError {
                code: Some(ErrorCode::BadPassword),
                error,
                ..
            } => {
                assert!(!error.contains("s3cret"), "the password is never echoed");
                error.clone()
            }
            other => panic!("expected bad-password, got {other:?}"),
        };
        assert!(refused(&s.join(&cid("b"), rid("r"), None)).contains("required"));
        assert!(refused(&s.join(&cid("b"), rid("r"), Some("guess"))).contains("wrong password"));
        assert_eq!(s.room_of(&cid("b")), None);
        assert_eq!(
            flat(&s.join(&cid("b"), rid("r"), Some("s3cret"))),
            pairs(&[("b", "joined"), ("a", "user-joined")])
        );
        // A password given for an existing open room does not lock it.
        s.join(&cid("c"), rid("open"), None);
        s.join(&cid("a"), rid("open"), Some("late"));
        s.leave(&cid("a"), None).unwrap();
        s.join(&cid("a"), rid("open"), None);
        assert_eq!(s.room_of(&cid("a")), Some(&rid("open")));
        // When the room empties it is gone, password and all.
        s.leave(&cid("b"), None).unwrap();
        s.join(&cid("b"), rid("r"), None);
        assert_eq!(s.room_of(&cid("b")), Some(&rid("r")));
        s.check_invariants();
    }

    #[test]
    fn a_member_cannot_take_another_members_id() {
        let mut s = state(10, 10);
        for c in ["a", "b", "c"] {
            s.connect(cid(c), c.to_owned());
        }
        let uid = |u: &str| Some(UserId::new(u).unwrap());
        s.register(&cid("a"), uid("alice")).unwrap();
        s.join(&cid("a"), rid("r"), None);
        s.join(&cid("b"), rid("r"), None);
        // Another member's user id, or its client id, is refused; the name stays as it was.
        for taken in ["alice", "a"] {
            let refusal = s.register(&cid("b"), uid(taken)).unwrap_err();
            assert_eq!(refusal.code, ErrorCode::UserIdTaken);
            assert_eq!(s.user_of(&cid("b")).unwrap().as_str(), "b");
        }
        s.register(&cid("b"), uid("bob")).unwrap();
        // A joiner whose user id is a member's (or a member's client id) is refused.
        s.register(&cid("c"), uid("bob")).unwrap();
        let out = s.join(&cid("c"), rid("r"), None);
        assert!(matches!(
            &out.items[0].1,
            ServerMessage::JoinError {
                code: Some(ErrorCode::UserIdTaken),
                ..
            }
        ));
        assert_eq!(s.room_of(&cid("c")), None);
        // A password room answers bad-password first: only who may enter learns who is inside.
        s.join(&cid("a"), rid("secret"), Some("pw"));
        s.register(&cid("c"), uid("alice")).unwrap();
        let out = s.join(&cid("c"), rid("secret"), None);
        assert!(matches!(
            &out.items[0].1,
            ServerMessage::JoinError {
                code: Some(ErrorCode::BadPassword),
                ..
            }
        ));
        s.check_invariants();
    }

    #[test]
    fn the_list_shows_rooms_without_a_password_within_the_allowed_ones() {
        let mut s = state(10, 10);
        for c in ["a", "b", "c", "d"] {
            s.connect(cid(c), c.to_owned());
        }
        s.join(&cid("a"), rid("zulu"), None);
        s.join(&cid("b"), rid("alpha"), None);
        s.join(&cid("c"), rid("secret"), Some("pw"));
        s.join(&cid("d"), rid("mike"), None);
        let names = |(list, truncated): (Vec<RoomInfo>, bool)| {
            let ids: Vec<String> = list.into_iter().map(|r| r.id.to_string()).collect();
            (ids, truncated)
        };
        let strs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            names(s.list_rooms(10, None)),
            (strs(&["alpha", "mike", "zulu"]), false)
        );
        assert_eq!(
            names(s.list_rooms(2, None)),
            (strs(&["alpha", "mike"]), true)
        );
        let allowed = strs(&["zulu", "secret", "nowhere", "alpha", "zulu"]);
        assert_eq!(
            names(s.list_rooms(10, Some(&allowed))),
            (strs(&["alpha", "zulu"]), false)
        );
        assert_eq!(
            names(s.list_rooms(1, Some(&allowed))),
            (strs(&["alpha"]), true)
        );
        s.leave(&cid("b"), None).unwrap();
        assert_eq!(names(s.list_rooms(10, None)).0, strs(&["mike", "zulu"]));
        s.check_invariants();
        // With tokens, ids are the token's: one user may be in a room twice.
        let mut t = RoomState::new(RoomLimits {
            max_members: 10,
            max_rooms: 10,
            distinct_user_ids: false,
        });
        t.connect_as(cid("p"), "p".to_owned(), UserId::new("ann").unwrap());
        t.connect_as(cid("q"), "q".to_owned(), UserId::new("ann").unwrap());
        t.join(&cid("p"), rid("r"), None);
        assert_eq!(
            flat(&t.join(&cid("q"), rid("r"), None)),
            pairs(&[("q", "joined"), ("p", "user-joined")])
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Connect(u8),
        Disconnect(u8),
        Join(u8, u8, bool),
        Leave(u8),
        Lock(u8, bool),
        Register(u8, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..12u8).prop_map(Op::Connect),
            (0..12u8).prop_map(Op::Disconnect),
            (0..12u8, 0..6u8, any::<bool>()).prop_map(|(c, r, p)| Op::Join(c, r, p)),
            (0..12u8).prop_map(Op::Leave),
            (0..12u8, any::<bool>()).prop_map(|(c, l)| Op::Lock(c, l)),
            // User ids "0".."11" are also client ids; "12".."15" are nobody's.
            (0..12u8, 0..16u8).prop_map(|(c, u)| Op::Register(c, u)),
        ]
    }

    proptest! {
        /// Any sequence of operations keeps every invariant, and every client that ends in a
        /// room was told so.
        #[test]
        fn any_sequence_keeps_invariants(ops in proptest::collection::vec(op(), 1..200)) {
            let mut s = state(3, 4);
            for op in ops {
                match op {
                    Op::Connect(c) => { s.connect(cid(&c.to_string()), c.to_string()); }
                    Op::Disconnect(c) => { s.disconnect(&cid(&c.to_string())); }
                    Op::Join(c, r, with_password) => {
                        let id = cid(&c.to_string());
                        let password = with_password.then_some("pw");
                        let out = s.join(&id, rid(&format!("room{r}")), password);
                        if s.contains(&id) {
                            let ok = s.room_of(&id) == Some(&rid(&format!("room{r}")));
                            let got = &out.items.iter().find(|(to, _)| to == &vec![c.to_string()])
                                .expect("the joiner is answered").1;
                            prop_assert_eq!(ok, !matches!(got, ServerMessage::JoinError { .. }));
                        }
                    }
                    Op::Leave(c) => { let _ = s.leave(&cid(&c.to_string()), None); }
                    Op::Lock(c, l) => { let _ = s.set_locked(&cid(&c.to_string()), None, l); }
                    Op::Register(c, u) => {
                        let id = cid(&c.to_string());
                        let user = UserId::new(u.to_string()).unwrap();
                        match s.register(&id, Some(user.clone())) {
                            Ok(_) => prop_assert!(!s.contains(&id) || s.user_of(&id) == Some(&user)),
                            Err(r) => prop_assert_eq!(r.code, ErrorCode::UserIdTaken),
                        }
                    }
                }
                s.check_invariants();
            }
        }
    }
}
