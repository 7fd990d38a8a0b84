//! The message enums, one per direction, and the small types they carry.
//!
//! Serialization is derived (`type` tag, kebab-case type names, camelCase fields); decoding lives
//! in `decode.rs`. Optional extension fields are skipped when empty, so the JSON a reference
//! client sees is exactly the reference format.

use crate::ids::{ClientId, RoomId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::fmt;

/// A relayed payload (`sdp`, `candidate`, `content`): any JSON value, kept as the raw text the
/// sender wrote and forwarded untouched.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Payload(Box<RawValue>);

impl Payload {
    /// Wraps raw JSON text, checking that it is one valid JSON value.
    pub fn from_json(json: impl Into<String>) -> Result<Self, serde_json::Error> {
        RawValue::from_string(json.into()).map(Payload)
    }

    /// Serializes `value` into a payload.
    pub fn from_value<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(Payload)
    }

    /// The raw JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Parses the payload into `T`.
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }
}

impl From<Box<RawValue>> for Payload {
    fn from(raw: Box<RawValue>) -> Self {
        Payload(raw)
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.get())
    }
}

impl PartialEq for Payload {
    /// Payloads compare as text: the relay never reformats them.
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for Payload {}

/// A message from a client to the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum ClientMessage {
    /// Sets the user id that the relay stamps as `fromUserId` on this client's messages and
    /// announces in `user-joined`/`user-left`. Without `userId`, the client id is used.
    /// Answered by `registered`.
    Register {
        /// The requested user id.
        #[serde(skip_serializing_if = "Option::is_none")]
        user_id: Option<UserId>,
    },
    /// Enters a room, leaving the current one first. Answered by `joined`, or `join-error`
    /// when the room is full or locked or the relay has too many rooms.
    Join {
        /// The room to enter; it is created when it does not exist.
        room_id: RoomId,
        /// Extension: the room's password. The client that creates the room sets it; later
        /// joiners must give the same. Never echoed.
        #[serde(skip_serializing_if = "Option::is_none")]
        password: Option<String>,
    },
    /// Leaves the current room. Answered by `left`.
    Leave {
        /// The room to leave; when given it must be the current room.
        #[serde(skip_serializing_if = "Option::is_none")]
        room_id: Option<RoomId>,
    },
    /// An SDP offer for a member of the same room, forwarded untouched.
    Offer {
        /// The receiving client.
        target_id: ClientId,
        /// The session description, as the sender wrote it.
        sdp: Payload,
    },
    /// An SDP answer for a member of the same room, forwarded untouched.
    Answer {
        /// The receiving client.
        target_id: ClientId,
        /// The session description, as the sender wrote it.
        sdp: Payload,
    },
    /// A trickled ICE candidate for a member of the same room, forwarded untouched
    /// (`null` included: it marks the end of candidates).
    Candidate {
        /// The receiving client.
        target_id: ClientId,
        /// The candidate, as the sender wrote it.
        candidate: Payload,
    },
    /// Free-form content for one member of the room, or for every other member when
    /// `targetId` is absent.
    Message {
        /// The receiving client; absent (or `null`) to broadcast to the room.
        #[serde(skip_serializing_if = "Option::is_none")]
        target_id: Option<ClientId>,
        /// Any JSON value, forwarded untouched.
        content: Payload,
    },
    /// Extension: locks the sender's room so that nobody else can join it. Every member is
    /// told with `locked`.
    Lock {
        /// The room; when given it must be the sender's room.
        #[serde(skip_serializing_if = "Option::is_none")]
        room_id: Option<RoomId>,
    },
    /// Extension: unlocks the sender's room. Every member is told with `unlocked`.
    Unlock {
        /// The room; when given it must be the sender's room.
        #[serde(skip_serializing_if = "Option::is_none")]
        room_id: Option<RoomId>,
    },
    /// Extension: asks for the list of rooms. Answered by `rooms`.
    Rooms,
    /// Extension: authenticates with a token (a JWT), as the first message, when the relay
    /// requires tokens and none was given in the connect URL. Answered by `welcome`.
    Auth {
        /// The token.
        token: String,
    },
}

/// A member of a room, as listed in `joined`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerInfo {
    /// The member's connection.
    pub client_id: ClientId,
    /// The member's user id.
    pub user_id: UserId,
}

/// An ICE server, shaped like a WebRTC `RTCIceServer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceServer {
    /// `stun:`, `turn:` or `turns:` URLs.
    pub urls: Vec<String>,
    /// TURN user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl IceServer {
    /// Whether it is a TURN server (one of its URLs is `turn:` or `turns:`).
    pub fn is_turn(&self) -> bool {
        self.urls.iter().any(|u| is_turn_url(u))
    }
}

/// Whether an ICE server URL names a TURN server (`turn:` or `turns:`).
pub fn is_turn_url(url: &str) -> bool {
    let scheme = url.trim().split(':').next().unwrap_or("");
    scheme.eq_ignore_ascii_case("turn") || scheme.eq_ignore_ascii_case("turns")
}

/// One room in a `rooms` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomInfo {
    /// The room.
    pub id: RoomId,
    /// How many clients are in it.
    pub member_count: usize,
    /// How many clients it admits.
    pub max_members: usize,
    /// Whether it is locked.
    pub locked: bool,
}

/// Machine-readable reason of an `error` or `join-error` (extension field `code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// The frame is not valid JSON, or not a JSON object.
    InvalidJson,
    /// `type` names no known message.
    UnknownType,
    /// A field is missing, has the wrong JSON type, or an invalid value.
    InvalidField,
    /// A binary frame: the protocol is text only.
    BinaryFrame,
    /// The request needs a room and the sender is in none (or in another one).
    NotInRoom,
    /// The target client is not in the sender's room (or does not exist).
    TargetNotInRoom,
    /// The room has as many members as it admits.
    RoomFull,
    /// The room is locked.
    RoomLocked,
    /// The relay holds as many rooms as it admits.
    TooManyRooms,
    /// The sender exceeded its message rate.
    RateLimited,
    /// The room has a password and the join gave none or a wrong one.
    BadPassword,
    /// Authentication is required and the token is missing, invalid or expired.
    Unauthorized,
    /// The client's token does not allow this room.
    RoomNotAllowed,
    /// The session to resume does not exist any more (grace period over, or unknown token).
    ResumeFailed,
    /// The relay cannot do this now (its shared store is unreachable); try again.
    Unavailable,
    /// The user id is another member's client id or user id in the room.
    UserIdTaken,
    /// The sender's address failed to authenticate (tokens, room passwords) too often
    /// recently: joins are refused for a while.
    Throttled,
    /// A code this version does not know (sent by a newer relay).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// Every code, in the order of [`ErrorCode::index`].
    pub const ALL: [ErrorCode; 18] = [
        ErrorCode::InvalidJson,
        ErrorCode::UnknownType,
        ErrorCode::InvalidField,
        ErrorCode::BinaryFrame,
        ErrorCode::NotInRoom,
        ErrorCode::TargetNotInRoom,
        ErrorCode::RoomFull,
        ErrorCode::RoomLocked,
        ErrorCode::TooManyRooms,
        ErrorCode::RateLimited,
        ErrorCode::BadPassword,
        ErrorCode::Unauthorized,
        ErrorCode::RoomNotAllowed,
        ErrorCode::ResumeFailed,
        ErrorCode::Unavailable,
        ErrorCode::UserIdTaken,
        ErrorCode::Throttled,
        ErrorCode::Unknown,
    ];

    /// The position of this code in [`ErrorCode::ALL`] (e.g. a counter's slot). An exhaustive
    /// match, so that a new variant fails to compile here until it has its place in `ALL`.
    pub const fn index(self) -> usize {
        match self {
            ErrorCode::InvalidJson => 0,
            ErrorCode::UnknownType => 1,
            ErrorCode::InvalidField => 2,
            ErrorCode::BinaryFrame => 3,
            ErrorCode::NotInRoom => 4,
            ErrorCode::TargetNotInRoom => 5,
            ErrorCode::RoomFull => 6,
            ErrorCode::RoomLocked => 7,
            ErrorCode::TooManyRooms => 8,
            ErrorCode::RateLimited => 9,
            ErrorCode::BadPassword => 10,
            ErrorCode::Unauthorized => 11,
            ErrorCode::RoomNotAllowed => 12,
            ErrorCode::ResumeFailed => 13,
            ErrorCode::Unavailable => 14,
            ErrorCode::UserIdTaken => 15,
            ErrorCode::Throttled => 16,
            ErrorCode::Unknown => 17,
        }
    }

    /// The code as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid-json",
            ErrorCode::UnknownType => "unknown-type",
            ErrorCode::InvalidField => "invalid-field",
            ErrorCode::BinaryFrame => "binary-frame",
            ErrorCode::NotInRoom => "not-in-room",
            ErrorCode::TargetNotInRoom => "target-not-in-room",
            ErrorCode::RoomFull => "room-full",
            ErrorCode::RoomLocked => "room-locked",
            ErrorCode::TooManyRooms => "too-many-rooms",
            ErrorCode::RateLimited => "rate-limited",
            ErrorCode::BadPassword => "bad-password",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::RoomNotAllowed => "room-not-allowed",
            ErrorCode::ResumeFailed => "resume-failed",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::UserIdTaken => "user-id-taken",
            ErrorCode::Throttled => "throttled",
            ErrorCode::Unknown => "unknown",
        }
    }
}

/// A message from the relay to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum ServerMessage {
    /// First message on every connection: the client's id.
    Welcome {
        /// The id the relay assigned to this connection.
        client_id: ClientId,
        /// Extension: the ICE servers to use (STUN/TURN, with per-connection TURN credentials).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ice_servers: Vec<IceServer>,
        /// Extension: a secret to resume this session (same client id and room) after the
        /// socket drops, within the relay's grace period.
        #[serde(skip_serializing_if = "Option::is_none")]
        resume_token: Option<String>,
        /// Extension: true when this connection resumed an earlier session (same client id
        /// and room, the others were not told it left); messages queued meanwhile follow.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        resumed: bool,
        /// Extension: the most the client should send over all its calls together, kbit/s
        /// (the relay's configured ceiling; a page's own lower one still applies).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_send_kbps: Option<u32>,
    },
    /// Answer to `register`.
    Registered {
        /// The user id now in effect.
        user_id: UserId,
    },
    /// Answer to `join`: the room and its other members. The joiner offers to each of them.
    Joined {
        /// The room entered.
        room_id: RoomId,
        /// The other members' client ids, oldest first.
        members: Vec<ClientId>,
        /// Extension: the other members with their user ids, in the same order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        peers: Vec<PeerInfo>,
    },
    /// Someone entered the receiver's room.
    UserJoined {
        /// The newcomer's user id.
        user_id: UserId,
        /// The newcomer's client id.
        client_id: ClientId,
    },
    /// Someone left the receiver's room (by `leave`, by joining another room, or by
    /// disconnecting).
    UserLeft {
        /// The leaver's user id.
        user_id: UserId,
        /// The leaver's client id.
        client_id: ClientId,
    },
    /// Answer to `leave`, and sent before `joined` when a join moves the client out of a room.
    Left {
        /// The room left.
        room_id: RoomId,
    },
    /// A `join` was refused.
    JoinError {
        /// Why, for people.
        error: String,
        /// Extension: the room that was refused.
        #[serde(skip_serializing_if = "Option::is_none")]
        room_id: Option<RoomId>,
        /// Extension: why, for programs.
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<ErrorCode>,
    },
    /// A relayed offer.
    Offer {
        /// The sender's client id, stamped by the relay.
        from_id: ClientId,
        /// The sender's user id, stamped by the relay.
        from_user_id: UserId,
        /// The session description, untouched.
        sdp: Payload,
    },
    /// A relayed answer.
    Answer {
        /// The sender's client id, stamped by the relay.
        from_id: ClientId,
        /// The sender's user id, stamped by the relay.
        from_user_id: UserId,
        /// The session description, untouched.
        sdp: Payload,
    },
    /// A relayed ICE candidate.
    Candidate {
        /// The sender's client id, stamped by the relay.
        from_id: ClientId,
        /// The sender's user id, stamped by the relay.
        from_user_id: UserId,
        /// The candidate, untouched.
        candidate: Payload,
    },
    /// Relayed free-form content.
    Message {
        /// The sender's client id, stamped by the relay.
        from_id: ClientId,
        /// The sender's user id, stamped by the relay.
        from_user_id: UserId,
        /// The content, untouched.
        content: Payload,
    },
    /// Extension: the receiver's room was locked.
    Locked {
        /// The room.
        room_id: RoomId,
        /// Who locked it.
        by_id: ClientId,
    },
    /// Extension: the receiver's room was unlocked.
    Unlocked {
        /// The room.
        room_id: RoomId,
        /// Who unlocked it.
        by_id: ClientId,
    },
    /// Extension: answer to `rooms`.
    Rooms {
        /// The rooms, by id.
        rooms: Vec<RoomInfo>,
        /// True when the list was cut short.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        truncated: bool,
    },
    /// The relay refused a message; the connection stays usable.
    Error {
        /// What was wrong, for people.
        message: String,
        /// Extension: what was wrong, for programs.
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<ErrorCode>,
    },
}

impl ServerMessage {
    /// An `error` reply.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            message: message.into(),
            code: Some(code),
        }
    }

    /// The JSON text of this message.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialize")
    }
}

impl ClientMessage {
    /// The JSON text of this message.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("client messages always serialize")
    }

    /// The wire name of this message's type.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientMessage::Register { .. } => "register",
            ClientMessage::Join { .. } => "join",
            ClientMessage::Leave { .. } => "leave",
            ClientMessage::Offer { .. } => "offer",
            ClientMessage::Answer { .. } => "answer",
            ClientMessage::Candidate { .. } => "candidate",
            ClientMessage::Message { .. } => "message",
            ClientMessage::Lock { .. } => "lock",
            ClientMessage::Unlock { .. } => "unlock",
            ClientMessage::Rooms => "rooms",
            ClientMessage::Auth { .. } => "auth",
        }
    }
}
