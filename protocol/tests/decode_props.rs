//! Property tests of decoding: it never panics, whatever the frame; a refusal always carries
//! one of the three decode codes (`invalid-json`, `unknown-type`, `invalid-field`); and every
//! valid message of either direction survives `decode(encode(m)) == m`.
//!
//! Inputs are arbitrary strings, mutations of valid frames, and JSON objects with a `type`
//! drawn mostly from the known names plus random fields (known and unknown names) of random
//! JSON kinds, so that decoding gets past the envelope and into every message's checks.

use proptest::prelude::*;
use protocol::{
    ClientId, ClientMessage, DecodeError, ErrorCode, MAX_ID_CHARS, Payload, PeerInfo, RoomId,
    RoomInfo, ServerMessage, UserId, forbidden_in_id,
};
use serde_json::Value;

const CLIENT_TYPES: &[&str] = &[
    "register",
    "join",
    "leave",
    "offer",
    "answer",
    "candidate",
    "message",
    "lock",
    "unlock",
    "rooms",
];

const SERVER_TYPES: &[&str] = &[
    "welcome",
    "registered",
    "joined",
    "user-joined",
    "user-left",
    "left",
    "join-error",
    "offer",
    "answer",
    "candidate",
    "message",
    "locked",
    "unlocked",
    "rooms",
    "error",
];

/// Every field name either direction knows.
const KNOWN_FIELDS: &[&str] = &[
    "userId",
    "roomId",
    "targetId",
    "clientId",
    "fromId",
    "fromUserId",
    "byId",
    "error",
    "message",
    "code",
    "sdp",
    "candidate",
    "content",
    "members",
    "peers",
    "rooms",
    "truncated",
];

/// Payloads as clients write them: every JSON kind, nested, with odd spacing and escapes.
const PAYLOADS: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-0",
    "1.5e-7",
    "12345678901234567890123",
    r#""""#,
    r#""v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n""#,
    r#""\u00e9\ud83d\ude00😀\"\\\/""#,
    "[]",
    "[1, [2, [3, [null]]]]",
    "{}",
    r#"{"type":"offer","sdp":"v=0\r\n"}"#,
    r#"{ "sdp" : "v=0" , "type":"answer" }"#,
    concat!(
        r#"{"candidate":"candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host","#,
        r#""sdpMid":"0","sdpMLineIndex":0}"#,
    ),
    r#"{"a":{"b":{"c":{"d":[{"e":null},{"f":[true,false]}]}}}}"#,
    "{\"tab\":\t1,\n\"nl\" :\r\n [ ] }",
];

/// An id of 1..=128 characters: mostly short ASCII, sometimes any Unicode up to the limit.
fn id_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9_-]{1,12}",
        2 => prop::collection::vec(any::<char>().prop_filter("allowed", |c| !forbidden_in_id(*c)), 1..=MAX_ID_CHARS)
            .prop_map(String::from_iter),
        1 => prop::sample::select(vec!['a', 'é', '😀', '"', '\\', '\u{200D}', '/']).prop_flat_map(
            |c| (1..=MAX_ID_CHARS).prop_map(move |n| std::iter::repeat_n(c, n).collect())
        ),
    ]
}

fn client_id() -> impl Strategy<Value = ClientId> {
    id_string().prop_map(|s| ClientId::new(s).unwrap())
}

fn user_id() -> impl Strategy<Value = UserId> {
    id_string().prop_map(|s| UserId::new(s).unwrap())
}

fn room_id() -> impl Strategy<Value = RoomId> {
    id_string().prop_map(|s| RoomId::new(s).unwrap())
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        3 => prop::sample::select(PAYLOADS).prop_map(|p| Payload::from_json(p).unwrap()),
        1 => any::<String>().prop_map(|s| Payload::from_value(&s).unwrap()),
    ]
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop::sample::select(&ErrorCode::ALL[..])
}

fn client_message() -> impl Strategy<Value = ClientMessage> {
    prop_oneof![
        prop::option::of(user_id()).prop_map(|user_id| ClientMessage::Register { user_id }),
        room_id().prop_map(|room_id| ClientMessage::Join {
            room_id,
            password: None
        }),
        prop::option::of(room_id()).prop_map(|room_id| ClientMessage::Leave { room_id }),
        (client_id(), payload())
            .prop_map(|(target_id, sdp)| ClientMessage::Offer { target_id, sdp }),
        (client_id(), payload())
            .prop_map(|(target_id, sdp)| ClientMessage::Answer { target_id, sdp }),
        (client_id(), payload()).prop_map(|(target_id, candidate)| ClientMessage::Candidate {
            target_id,
            candidate
        }),
        (prop::option::of(client_id()), payload())
            .prop_map(|(target_id, content)| ClientMessage::Message { target_id, content }),
        prop::option::of(room_id()).prop_map(|room_id| ClientMessage::Lock { room_id }),
        prop::option::of(room_id()).prop_map(|room_id| ClientMessage::Unlock { room_id }),
        Just(ClientMessage::Rooms),
    ]
}

fn peer_info() -> impl Strategy<Value = PeerInfo> {
    (client_id(), user_id()).prop_map(|(client_id, user_id)| PeerInfo { client_id, user_id })
}

fn room_info() -> impl Strategy<Value = RoomInfo> {
    (room_id(), any::<usize>(), any::<usize>(), any::<bool>()).prop_map(
        |(id, member_count, max_members, locked)| RoomInfo {
            id,
            member_count,
            max_members,
            locked,
        },
    )
}

fn server_message() -> impl Strategy<Value = ServerMessage> {
    prop_oneof![
        client_id().prop_map(|client_id| ServerMessage::Welcome {
            client_id,
            ice_servers: vec![],
            resume_token: None,
            resumed: false,
            max_send_kbps: None,
        }),
        user_id().prop_map(|user_id| ServerMessage::Registered { user_id }),
        (
            room_id(),
            prop::collection::vec(client_id(), 0..4),
            prop::collection::vec(peer_info(), 0..4)
        )
            .prop_map(|(room_id, members, peers)| ServerMessage::Joined {
                room_id,
                members,
                peers
            }),
        (user_id(), client_id())
            .prop_map(|(user_id, client_id)| ServerMessage::UserJoined { user_id, client_id }),
        (user_id(), client_id())
            .prop_map(|(user_id, client_id)| ServerMessage::UserLeft { user_id, client_id }),
        room_id().prop_map(|room_id| ServerMessage::Left { room_id }),
        (
            any::<String>(),
            prop::option::of(room_id()),
            prop::option::of(error_code())
        )
            .prop_map(|(error, room_id, code)| ServerMessage::JoinError {
                error,
                room_id,
                code
            }),
        (client_id(), user_id(), payload()).prop_map(|(from_id, from_user_id, sdp)| {
            ServerMessage::Offer {
                from_id,
                from_user_id,
                sdp,
            }
        }),
        (client_id(), user_id(), payload()).prop_map(|(from_id, from_user_id, sdp)| {
            ServerMessage::Answer {
                from_id,
                from_user_id,
                sdp,
            }
        }),
        (client_id(), user_id(), payload()).prop_map(|(from_id, from_user_id, candidate)| {
            ServerMessage::Candidate {
                from_id,
                from_user_id,
                candidate,
            }
        }),
        (client_id(), user_id(), payload()).prop_map(|(from_id, from_user_id, content)| {
            ServerMessage::Message {
                from_id,
                from_user_id,
                content,
            }
        }),
        (room_id(), client_id())
            .prop_map(|(room_id, by_id)| ServerMessage::Locked { room_id, by_id }),
        (room_id(), client_id())
            .prop_map(|(room_id, by_id)| ServerMessage::Unlocked { room_id, by_id }),
        (prop::collection::vec(room_info(), 0..4), any::<bool>())
            .prop_map(|(rooms, truncated)| ServerMessage::Rooms { rooms, truncated }),
        (any::<String>(), prop::option::of(error_code()))
            .prop_map(|(message, code)| ServerMessage::Error { message, code }),
    ]
}

/// A string as a field might hold: mostly id-like, sometimes empty, too long, or anything.
fn json_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9-]{1,8}",
        1 => Just(String::new()),
        1 => (MAX_ID_CHARS - 1..=MAX_ID_CHARS + 2).prop_map(|n| "x".repeat(n)),
        1 => prop::sample::select(&ErrorCode::ALL[..]).prop_map(|c| c.as_str().to_owned()),
        1 => any::<String>(),
    ]
}

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        json_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((json_string(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// The `type` of a generated object: `None` leaves it out.
fn type_value() -> impl Strategy<Value = Option<Value>> {
    let known: Vec<&str> = CLIENT_TYPES.iter().chain(SERVER_TYPES).copied().collect();
    prop_oneof![
        8 => prop::sample::select(known).prop_map(|t| Some(Value::from(t))),
        1 => json_string().prop_map(|t| Some(Value::String(t))),
        1 => json_value().prop_map(Some),
        1 => Just(None),
    ]
}

/// A field name for the extra fields: mostly one the protocol knows.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(KNOWN_FIELDS).prop_map(str::to_owned),
        1 => Just("type".to_owned()),
        1 => "[a-zA-Z]{1,10}",
        1 => any::<String>(),
    ]
}

/// The fields a message type uses, in either direction (`offer` has both `targetId` and
/// `fromId`, so that one object can be valid for the client and the relay decoder alike).
fn fields_of(kind: Option<&Value>) -> &'static [&'static str] {
    match kind.and_then(Value::as_str).unwrap_or("") {
        "register" | "registered" => &["userId"],
        "join" | "leave" | "lock" | "unlock" | "left" => &["roomId"],
        "offer" | "answer" => &["targetId", "fromId", "fromUserId", "sdp"],
        "candidate" => &["targetId", "fromId", "fromUserId", "candidate"],
        "message" => &["targetId", "fromId", "fromUserId", "content"],
        "rooms" => &["rooms", "truncated"],
        "welcome" => &["clientId"],
        "joined" => &["roomId", "members", "peers"],
        "user-joined" | "user-left" => &["userId", "clientId"],
        "join-error" => &["error", "roomId", "code"],
        "locked" | "unlocked" => &["roomId", "byId"],
        "error" => &["message", "code"],
        _ => &[],
    }
}

fn id_value() -> impl Strategy<Value = Value> {
    id_string().prop_map(Value::String)
}

/// A value that the field `name` accepts.
fn good_value(name: &'static str) -> BoxedStrategy<Value> {
    match name {
        "sdp" | "candidate" | "content" => prop::sample::select(PAYLOADS)
            .prop_map(|p| serde_json::from_str(p).unwrap())
            .boxed(),
        "members" => prop::collection::vec(id_value(), 0..4)
            .prop_map(Value::Array)
            .boxed(),
        "peers" => prop::collection::vec((id_value(), id_value()), 0..4)
            .prop_map(|peers| {
                peers
                    .into_iter()
                    .map(|(c, u)| serde_json::json!({ "clientId": c, "userId": u }))
                    .collect()
            })
            .boxed(),
        "rooms" => {
            let room = (id_value(), any::<u32>(), any::<u32>(), any::<bool>()).prop_map(
                |(id, n, max, locked)| {
                    serde_json::json!({
                        "id": id,
                        "memberCount": n,
                        "maxMembers": max,
                        "locked": locked,
                    })
                },
            );
            prop::collection::vec(room, 0..4)
                .prop_map(Value::Array)
                .boxed()
        }
        "truncated" => any::<bool>().prop_map(Value::Bool).boxed(),
        "code" => json_string().prop_map(Value::String).boxed(),
        "error" | "message" => any::<String>().prop_map(Value::String).boxed(),
        _ => id_value().boxed(),
    }
}

/// A value for the field `name`: mostly one it accepts, sometimes any JSON.
fn field_value(name: &'static str) -> impl Strategy<Value = Value> {
    prop_oneof![9 => good_value(name), 1 => json_value()]
}

/// A generated JSON object, written by hand so that keys may repeat.
#[derive(Debug, Clone)]
struct Object {
    kind: Option<Value>,
    fields: Vec<(String, Value)>,
    /// Where `type` goes among the fields.
    type_at: usize,
}

impl Object {
    fn text(&self) -> String {
        let mut entries: Vec<String> = self
            .fields
            .iter()
            .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), v))
            .collect();
        if let Some(kind) = &self.kind {
            entries.insert(self.type_at.min(entries.len()), format!(r#""type":{kind}"#));
        }
        format!("{{{}}}", entries.join(","))
    }

    fn has_duplicate_keys(&self) -> bool {
        let mut keys: Vec<&str> = self.fields.iter().map(|(k, _)| k.as_str()).collect();
        if self.kind.is_some() {
            keys.push("type");
        }
        keys.sort_unstable();
        keys.windows(2).any(|w| w[0] == w[1])
    }

    /// The `type` as the decoder sees it; `None` when absent or null.
    fn type_value(&self) -> Option<&Value> {
        let from_fields = self
            .fields
            .iter()
            .find(|(k, _)| k == "type")
            .map(|(_, v)| v);
        self.kind.as_ref().or(from_fields).filter(|v| !v.is_null())
    }
}

/// An object with a `type` (usually), most of the fields that type uses (usually valid), a few
/// extra fields of any name and kind, and repeated keys in about one object out of ten.
fn object() -> impl Strategy<Value = Object> {
    type_value().prop_flat_map(|kind| {
        let own: Vec<_> = fields_of(kind.as_ref())
            .iter()
            .map(|&name| {
                prop::option::weighted(0.85, field_value(name)).prop_map(move |v| (name, v))
            })
            .collect();
        let extra = prop::collection::vec((field_name(), json_value()), 0..3);
        (Just(kind), own, extra, 0..6usize, prop::bool::weighted(0.1)).prop_map(
            |(kind, own, extra, type_at, allow_duplicates)| {
                let mut fields: Vec<(String, Value)> = own
                    .into_iter()
                    .filter_map(|(name, v)| Some((name.to_owned(), v?)))
                    .chain(extra)
                    .collect();
                if !allow_duplicates {
                    let mut seen = std::collections::HashSet::new();
                    if kind.is_some() {
                        seen.insert("type".to_owned());
                    }
                    fields.retain(|(k, _)| seen.insert(k.clone()));
                }
                Object {
                    kind,
                    fields,
                    type_at,
                }
            },
        )
    })
}

/// Checks the contract of a refusal (property (c)): one of the three decode codes, and a
/// message that says what is wrong.
fn check_error(err: &DecodeError, input: &str) -> Result<(), TestCaseError> {
    match err.code {
        ErrorCode::InvalidJson => {
            prop_assert!(
                err.message.starts_with("invalid JSON: ")
                    || err.message.starts_with("expected a JSON object: "),
                "{err:?} for {input:?}"
            );
        }
        ErrorCode::UnknownType => {
            prop_assert!(err.message.starts_with("unknown message type "), "{err:?}");
        }
        ErrorCode::InvalidField => {
            prop_assert!(err.message.starts_with("field `"), "{err:?} for {input:?}");
        }
        other => prop_assert!(
            false,
            "decode error with code {other:?}: {err:?} for {input:?}"
        ),
    }
    prop_assert_eq!(err.to_string(), err.message.clone());
    Ok(())
}

/// Decodes `input` both ways; each result either re-encodes stably or is a proper refusal.
fn check_decode_any(input: &str) -> Result<(), TestCaseError> {
    match ClientMessage::decode(input) {
        Ok(m) => prop_assert_eq!(ClientMessage::decode(&m.encode()), Ok(m)),
        Err(e) => check_error(&e, input)?,
    }
    match ServerMessage::decode(input) {
        Ok(m) => prop_assert_eq!(ServerMessage::decode(&m.encode()), Ok(m)),
        Err(e) => check_error(&e, input)?,
    }
    Ok(())
}

/// A valid frame with one character removed, replaced or inserted, or cut short.
fn mutated_frame() -> impl Strategy<Value = String> {
    let frame = prop_oneof![
        client_message().prop_map(|m| m.encode()),
        server_message().prop_map(|m| m.encode()),
    ];
    let junk = prop::sample::select(vec!['{', '}', '[', ']', '"', ',', ':', '\\', ' ', 'x', '1']);
    (frame, any::<prop::sample::Index>(), 0..4u8, junk).prop_map(|(frame, at, how, c)| {
        let mut out: Vec<char> = frame.chars().collect();
        let i = at.index(out.len());
        match how {
            0 => {
                out.remove(i);
            }
            1 => out[i] = c,
            2 => out.insert(i, c),
            _ => out.truncate(i),
        }
        out.into_iter().collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    // (a) No input makes decoding panic; (c) refusals use the decode codes only.

    #[test]
    fn decode_arbitrary_strings(input in any::<String>()) {
        check_decode_any(&input)?;
    }

    #[test]
    fn decode_json_like_strings(input in r#"[{}\[\]",:\\ tnulrefasy0-9.eE+-]{0,48}"#) {
        check_decode_any(&input)?;
    }

    #[test]
    fn decode_mutated_frames(input in mutated_frame()) {
        check_decode_any(&input)?;
    }

    #[test]
    fn decode_arbitrary_json_values(value in json_value()) {
        let input = value.to_string();
        check_decode_any(&input)?;
        if !value.is_object() {
            let err = ClientMessage::decode(&input).unwrap_err();
            prop_assert_eq!(err.code, ErrorCode::InvalidJson, "{}", input);
        }
    }

    #[test]
    fn decode_json_like_objects(obj in object()) {
        let input = obj.text();
        check_decode_any(&input)?;

        let duplicates = obj.has_duplicate_keys();
        for (result, known) in [
            (ClientMessage::decode(&input).map(|m| m.kind().to_owned()), CLIENT_TYPES),
            (ServerMessage::decode(&input).map(|_| String::new()), SERVER_TYPES),
        ] {
            match (&result, obj.type_value()) {
                // A well-formed object is never refused as invalid JSON.
                (Err(e), _) if e.code == ErrorCode::InvalidJson => {
                    prop_assert!(duplicates, "{:?} for {}", e, input);
                    prop_assert!(e.message.contains("duplicate field"), "{:?}", e);
                }
                _ if duplicates => {}
                (_, None) => {
                    let err = result.unwrap_err();
                    prop_assert_eq!(err.message, "field `type` is missing", "{}", input);
                }
                (_, Some(Value::String(t))) if !known.contains(&t.as_str()) => {
                    let err = result.unwrap_err();
                    prop_assert_eq!(err.code, ErrorCode::UnknownType, "{}", input);
                }
                (_, Some(Value::String(t))) => match &result {
                    Ok(kind) => {
                        prop_assert!(kind.is_empty() || kind == t, "{} for {}", kind, input);
                    }
                    Err(e) => prop_assert_eq!(e.code, ErrorCode::InvalidField, "{}", input),
                },
                (_, Some(_)) => {
                    let err = result.unwrap_err();
                    let expected = "field `type` must be a string";
                    prop_assert!(err.message.starts_with(expected), "{:?} for {}", err, input);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    // (b) Every valid message survives a round trip, both directions.

    #[test]
    fn client_messages_round_trip(m in client_message()) {
        let text = m.encode();
        prop_assert_eq!(ClientMessage::decode(&text), Ok(m.clone()), "{}", text);
        let tag = format!(r#"{{"type":"{}""#, m.kind());
        prop_assert!(text.starts_with(&tag), "{}", text);
    }

    #[test]
    fn server_messages_round_trip(m in server_message()) {
        let text = m.encode();
        prop_assert_eq!(ServerMessage::decode(&text), Ok(m), "{}", text);
        prop_assert!(text.starts_with(r#"{"type":""#), "{}", text);
    }

    /// An id is accepted exactly when it has 1..=128 characters and none of them is
    /// forbidden (control, line-separator or bidirectional-formatting characters).
    #[test]
    fn id_length_and_characters_decide(id in prop::collection::vec(any::<char>(), 0..=MAX_ID_CHARS + 8)) {
        let id: String = id.into_iter().collect();
        let frame = format!(r#"{{"type":"join","roomId":{}}}"#, Value::from(id.as_str()));
        let chars = id.chars().count();
        let clean = !id.chars().any(forbidden_in_id);
        match ClientMessage::decode(&frame) {
            Ok(ClientMessage::Join { room_id, password: None }) => {
                prop_assert!((1..=MAX_ID_CHARS).contains(&chars) && clean);
                prop_assert_eq!(room_id.as_str(), id.as_str());
            }
            Ok(other) => prop_assert!(false, "{:?}", other),
            Err(e) => {
                prop_assert!(chars == 0 || chars > MAX_ID_CHARS || !clean, "{:?}", e);
                prop_assert_eq!(e.code, ErrorCode::InvalidField);
                prop_assert!(e.message.starts_with("field `roomId` must"), "{:?}", e);
            }
        }
    }
}
