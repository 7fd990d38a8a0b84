//! Decoding of both message directions from JSON text, with errors that name the field.
//!
//! The text is read once into an [`Envelope`] that borrows from it: every known field is
//! optional and recorded with its JSON kind, payloads stay raw. The envelope is then checked
//! against the fields the `type` requires. Unknown fields are ignored, as the protocol's
//! extensions rely on.

use crate::ids::{ClientId, IdError, RoomId, UserId};
use crate::messages::{ClientMessage, ErrorCode, Payload, RoomInfo, ServerMessage};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// Why a frame could not be decoded: a code for programs and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// The kind of problem.
    pub code: ErrorCode,
    /// What was wrong, naming the field where there is one.
    pub message: String,
}

impl DecodeError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        DecodeError {
            code,
            message: message.into(),
        }
    }

    fn field(name: &str, problem: impl fmt::Display) -> Self {
        DecodeError::new(ErrorCode::InvalidField, format!("field `{name}` {problem}"))
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DecodeError {}

/// A scalar field as found in the JSON: absent, null, a string, or something else.
#[derive(Default)]
enum Field<'a> {
    #[default]
    Absent,
    Null,
    Str(Cow<'a, str>),
    Other(&'static str),
}

impl<'de: 'a, 'a> Deserialize<'de> for Field<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl<'de> Visitor<'de> for FieldVisitor {
            type Value = Field<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Field::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Field::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Field::Str(Cow::Owned(v)))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Field::Null)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Field::Null)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Field::Other("a boolean"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Field::Other("a number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Field::Other("a number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Field::Other("a number"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Field::Other("an array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Field::Other("an object"))
            }
        }
        d.deserialize_any(FieldVisitor)
    }
}

/// A field kept as raw JSON; `null` is a present value, unlike with `Option`.
#[derive(Default)]
struct Raw<'a>(Option<&'a RawValue>);

impl<'de: 'a, 'a> Deserialize<'de> for Raw<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'a RawValue>::deserialize(d).map(|raw| Raw(Some(raw)))
    }
}

/// Every field either direction uses; see the module doc.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Field<'a>,
    #[serde(borrow, default)]
    user_id: Field<'a>,
    #[serde(borrow, default)]
    room_id: Field<'a>,
    #[serde(borrow, default)]
    target_id: Field<'a>,
    #[serde(borrow, default)]
    client_id: Field<'a>,
    #[serde(borrow, default)]
    from_id: Field<'a>,
    #[serde(borrow, default)]
    from_user_id: Field<'a>,
    #[serde(borrow, default)]
    by_id: Field<'a>,
    #[serde(borrow, default)]
    error: Field<'a>,
    #[serde(borrow, default)]
    message: Field<'a>,
    #[serde(borrow, default)]
    code: Field<'a>,
    #[serde(borrow, default)]
    resume_token: Field<'a>,
    #[serde(borrow, default)]
    password: Field<'a>,
    #[serde(borrow, default)]
    token: Field<'a>,
    #[serde(borrow, default)]
    ice_servers: Raw<'a>,
    #[serde(borrow, default)]
    sdp: Raw<'a>,
    #[serde(borrow, default)]
    candidate: Raw<'a>,
    #[serde(borrow, default)]
    content: Raw<'a>,
    #[serde(borrow, default)]
    members: Raw<'a>,
    #[serde(borrow, default)]
    peers: Raw<'a>,
    #[serde(borrow, default)]
    rooms: Raw<'a>,
    #[serde(borrow, default)]
    truncated: Raw<'a>,
    #[serde(borrow, default)]
    resumed: Raw<'a>,
    #[serde(borrow, default)]
    max_send_kbps: Raw<'a>,
}

/// An [`Envelope`] read from a JSON object only. The derived `Deserialize` of a struct also
/// accepts a JSON array, filling the fields by position (`["join", null, "r"]` would be a
/// `join`), so the object form is enforced here by asking for a map.
struct ObjectEnvelope<'a>(Envelope<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for ObjectEnvelope<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = ObjectEnvelope<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Envelope::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(ObjectEnvelope)
            }
        }
        d.deserialize_map(ObjectVisitor)
    }
}

impl<'a> Envelope<'a> {
    fn parse(text: &'a str) -> Result<(Self, Cow<'a, str>), DecodeError> {
        let ObjectEnvelope(mut env) = serde_json::from_str(text).map_err(|e| {
            let what = if e.is_data() {
                "expected a JSON object"
            } else {
                "invalid JSON"
            };
            DecodeError::new(ErrorCode::InvalidJson, format!("{what}: {e}"))
        })?;
        let kind = match std::mem::take(&mut env.kind) {
            Field::Str(s) => s,
            Field::Absent | Field::Null => {
                return Err(DecodeError::field("type", "is missing"));
            }
            Field::Other(found) => {
                return Err(DecodeError::field(
                    "type",
                    format_args!("must be a string, not {found}"),
                ));
            }
        };
        Ok((env, kind))
    }
}

/// Reads an optional string field (absent and `null` are both `None`).
fn opt_str<'a>(field: Field<'a>, name: &str) -> Result<Option<Cow<'a, str>>, DecodeError> {
    match field {
        Field::Absent | Field::Null => Ok(None),
        Field::Str(s) => Ok(Some(s)),
        Field::Other(found) => Err(DecodeError::field(
            name,
            format_args!("must be a string, not {found}"),
        )),
    }
}

fn req_str<'a>(field: Field<'a>, name: &str) -> Result<Cow<'a, str>, DecodeError> {
    opt_str(field, name)?.ok_or_else(|| DecodeError::field(name, "is missing"))
}

fn opt_id<T>(
    field: Field<'_>,
    name: &str,
    make: fn(String) -> Result<T, IdError>,
) -> Result<Option<T>, DecodeError> {
    match opt_str(field, name)? {
        None => Ok(None),
        Some(s) => make(s.into_owned())
            .map(Some)
            .map_err(|e| DecodeError::field(name, e)),
    }
}

fn req_id<T>(
    field: Field<'_>,
    name: &str,
    make: fn(String) -> Result<T, IdError>,
) -> Result<T, DecodeError> {
    opt_id(field, name, make)?.ok_or_else(|| DecodeError::field(name, "is missing"))
}

fn req_payload(raw: Raw<'_>, name: &str) -> Result<Payload, DecodeError> {
    raw.0
        .map(|r| Payload::from(r.to_owned()))
        .ok_or_else(|| DecodeError::field(name, "is missing"))
}

fn parse_raw<'a, T: Deserialize<'a>>(raw: Raw<'a>, name: &str) -> Result<Option<T>, DecodeError> {
    raw.0
        .map(|r| serde_json::from_str(r.get()).map_err(|e| DecodeError::field(name, e)))
        .transpose()
}

/// Longest room password accepted, in characters.
pub const MAX_PASSWORD_CHARS: usize = 256;

fn password(field: Field<'_>) -> Result<Option<String>, DecodeError> {
    match opt_str(field, "password")? {
        None => Ok(None),
        Some(p) if p.is_empty() => Err(DecodeError::field("password", "must not be empty")),
        Some(p) if p.chars().count() > MAX_PASSWORD_CHARS => Err(DecodeError::field(
            "password",
            format_args!("must be at most {MAX_PASSWORD_CHARS} characters"),
        )),
        Some(p) => Ok(Some(p.into_owned())),
    }
}

/// Longest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 8192;

fn token(field: Field<'_>) -> Result<String, DecodeError> {
    let t = req_str(field, "token")?;
    if t.is_empty() || t.len() > MAX_TOKEN_BYTES {
        return Err(DecodeError::field(
            "token",
            format_args!("must be 1 to {MAX_TOKEN_BYTES} bytes"),
        ));
    }
    Ok(t.into_owned())
}

fn unknown_type(kind: &str) -> DecodeError {
    let mut shown: String = kind.chars().take(64).collect();
    if shown.len() < kind.len() {
        shown.push('…');
    }
    DecodeError::new(
        ErrorCode::UnknownType,
        format!("unknown message type {shown:?}"),
    )
}

impl ClientMessage {
    /// Decodes one client frame. The error names the offending field.
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        let (e, kind) = Envelope::parse(text)?;
        Ok(match &*kind {
            "register" => ClientMessage::Register {
                user_id: opt_id(e.user_id, "userId", UserId::new)?,
            },
            "join" => ClientMessage::Join {
                room_id: req_id(e.room_id, "roomId", RoomId::new)?,
                password: password(e.password)?,
            },
            "leave" => ClientMessage::Leave {
                room_id: opt_id(e.room_id, "roomId", RoomId::new)?,
            },
            "offer" => ClientMessage::Offer {
                target_id: req_id(e.target_id, "targetId", ClientId::new)?,
                sdp: req_payload(e.sdp, "sdp")?,
            },
            "answer" => ClientMessage::Answer {
                target_id: req_id(e.target_id, "targetId", ClientId::new)?,
                sdp: req_payload(e.sdp, "sdp")?,
            },
            "candidate" => ClientMessage::Candidate {
                target_id: req_id(e.target_id, "targetId", ClientId::new)?,
                candidate: req_payload(e.candidate, "candidate")?,
            },
            "message" => ClientMessage::Message {
                target_id: opt_id(e.target_id, "targetId", ClientId::new)?,
                content: req_payload(e.content, "content")?,
            },
            "lock" => ClientMessage::Lock {
                room_id: opt_id(e.room_id, "roomId", RoomId::new)?,
            },
            "unlock" => ClientMessage::Unlock {
                room_id: opt_id(e.room_id, "roomId", RoomId::new)?,
            },
            "rooms" => ClientMessage::Rooms,
            "auth" => ClientMessage::Auth {
                token: token(e.token)?,
            },
            other => return Err(unknown_type(other)),
        })
    }
}

impl ServerMessage {
    /// Decodes one relay frame (used by clients).
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        let (e, kind) = Envelope::parse(text)?;
        let cid = |f: Field<'_>, n: &str| -> Result<ClientId, DecodeError> {
            req_id(f, n, ClientId::new)
        };
        let uid =
            |f: Field<'_>, n: &str| -> Result<UserId, DecodeError> { req_id(f, n, UserId::new) };
        let rid =
            |f: Field<'_>, n: &str| -> Result<RoomId, DecodeError> { req_id(f, n, RoomId::new) };
        let code = |f: Field<'_>| -> Result<Option<ErrorCode>, DecodeError> {
            Ok(opt_str(f, "code")?.map(|c| {
                ErrorCode::deserialize(de::value::StrDeserializer::<de::value::Error>::new(&c))
                    .unwrap_or(ErrorCode::Unknown)
            }))
        };
        Ok(match &*kind {
            "welcome" => ServerMessage::Welcome {
                client_id: cid(e.client_id, "clientId")?,
                ice_servers: parse_raw(e.ice_servers, "iceServers")?.unwrap_or_default(),
                resume_token: opt_str(e.resume_token, "resumeToken")?.map(Cow::into_owned),
                resumed: parse_raw(e.resumed, "resumed")?.unwrap_or(false),
                max_send_kbps: parse_raw(e.max_send_kbps, "maxSendKbps")?,
            },
            "registered" => ServerMessage::Registered {
                user_id: uid(e.user_id, "userId")?,
            },
            "joined" => ServerMessage::Joined {
                room_id: rid(e.room_id, "roomId")?,
                members: parse_raw(e.members, "members")?.unwrap_or_default(),
                peers: parse_raw(e.peers, "peers")?.unwrap_or_default(),
            },
            "user-joined" => ServerMessage::UserJoined {
                user_id: uid(e.user_id, "userId")?,
                client_id: cid(e.client_id, "clientId")?,
            },
            "user-left" => ServerMessage::UserLeft {
                user_id: uid(e.user_id, "userId")?,
                client_id: cid(e.client_id, "clientId")?,
            },
            "left" => ServerMessage::Left {
                room_id: rid(e.room_id, "roomId")?,
            },
            "join-error" => ServerMessage::JoinError {
                error: req_str(e.error, "error")?.into_owned(),
                room_id: opt_id(e.room_id, "roomId", RoomId::new)?,
                code: code(e.code)?,
            },
            "offer" => ServerMessage::Offer {
                from_id: cid(e.from_id, "fromId")?,
                from_user_id: uid(e.from_user_id, "fromUserId")?,
                sdp: req_payload(e.sdp, "sdp")?,
            },
            "answer" => ServerMessage::Answer {
                from_id: cid(e.from_id, "fromId")?,
                from_user_id: uid(e.from_user_id, "fromUserId")?,
                sdp: req_payload(e.sdp, "sdp")?,
            },
            "candidate" => ServerMessage::Candidate {
                from_id: cid(e.from_id, "fromId")?,
                from_user_id: uid(e.from_user_id, "fromUserId")?,
                candidate: req_payload(e.candidate, "candidate")?,
            },
            "message" => ServerMessage::Message {
                from_id: cid(e.from_id, "fromId")?,
                from_user_id: uid(e.from_user_id, "fromUserId")?,
                content: req_payload(e.content, "content")?,
            },
            "locked" => ServerMessage::Locked {
                room_id: rid(e.room_id, "roomId")?,
                by_id: cid(e.by_id, "byId")?,
            },
            "unlocked" => ServerMessage::Unlocked {
                room_id: rid(e.room_id, "roomId")?,
                by_id: cid(e.by_id, "byId")?,
            },
            "rooms" => ServerMessage::Rooms {
                rooms: parse_raw::<Vec<RoomInfo>>(e.rooms, "rooms")?.unwrap_or_default(),
                truncated: parse_raw(e.truncated, "truncated")?.unwrap_or(false),
            },
            "error" => ServerMessage::Error {
                message: req_str(e.message, "message")?.into_owned(),
                code: code(e.code)?,
            },
            other => return Err(unknown_type(other)),
        })
    }
}
