//! Pins the wire format of the signaling protocol against literal JSON frames.
//!
//! Every variant of [`ClientMessage`] and [`ServerMessage`] is checked both ways: the literal
//! decodes to the expected value, and the value encodes to exactly the literal (`type` first,
//! then the fields in declaration order, optional extensions omitted when empty). The literals
//! are the reference Node.js protocol plus the documented extensions; changing any of them
//! breaks reference clients.
//!
//! Also pinned: relayed payloads are forwarded byte for byte, `candidate: null` is a present
//! payload, `targetId: null` means broadcast, unknown fields are ignored, frames a reference
//! browser client sends decode, and each refusal carries the right [`ErrorCode`] and names the
//! offending field.

use protocol::{
    ClientId, ClientMessage, DecodeError, ErrorCode, IceServer, MAX_ID_CHARS, Payload, PeerInfo,
    RoomId, RoomInfo, ServerMessage, UserId,
};

fn cid(s: &str) -> ClientId {
    ClientId::new(s).unwrap()
}

fn uid(s: &str) -> UserId {
    UserId::new(s).unwrap()
}

fn rid(s: &str) -> RoomId {
    RoomId::new(s).unwrap()
}

fn payload(json: &str) -> Payload {
    Payload::from_json(json).unwrap()
}

/// `literal` decodes to `expected`, and `expected` encodes to exactly `literal`.
#[track_caller]
fn client_round_trip(literal: &str, expected: ClientMessage) {
    assert_eq!(
        ClientMessage::decode(literal),
        Ok(expected.clone()),
        "decoding {literal}"
    );
    assert_eq!(expected.encode(), literal, "encoding {expected:?}");
    let tag = format!(r#"{{"type":"{}""#, expected.kind());
    assert!(
        literal.starts_with(&tag),
        "kind() of {expected:?} is not the wire type"
    );
}

/// `literal` decodes to `expected`, and `expected` encodes to exactly `literal`.
#[track_caller]
fn server_round_trip(literal: &str, expected: ServerMessage) {
    assert_eq!(
        ServerMessage::decode(literal),
        Ok(expected.clone()),
        "decoding {literal}"
    );
    assert_eq!(expected.encode(), literal, "encoding {expected:?}");
}

/// Decoding `literal` as a client frame fails with `code`, and the message mentions each of
/// `mentions` (the field name in backquotes, the problem).
#[track_caller]
fn client_error(literal: &str, code: ErrorCode, mentions: &[&str]) -> DecodeError {
    let err = match ClientMessage::decode(literal) {
        Ok(m) => panic!("{literal} decoded to {m:?}, expected a {code:?} error"),
        Err(e) => e,
    };
    assert_eq!(err.code, code, "code for {literal}: {err:?}");
    for m in mentions {
        assert!(
            err.message.contains(m),
            "error for {literal} does not mention {m:?}: {err:?}"
        );
    }
    assert_eq!(err.to_string(), err.message);
    err
}

/// Like [`client_error`], for a relay frame.
#[track_caller]
fn server_error(literal: &str, code: ErrorCode, mentions: &[&str]) {
    let err = match ServerMessage::decode(literal) {
        Ok(m) => panic!("{literal} decoded to {m:?}, expected a {code:?} error"),
        Err(e) => e,
    };
    assert_eq!(err.code, code, "code for {literal}: {err:?}");
    for m in mentions {
        assert!(
            err.message.contains(m),
            "error for {literal} does not mention {m:?}: {err:?}"
        );
    }
}

const SDP_OFFER: &str = concat!(
    r#"{"type":"offer","sdp":"v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n"#,
    r#"s=-\r\nt=0 0\r\n"}"#,
);
const SDP_ANSWER: &str = r#"{"type":"answer","sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}"#;
const CANDIDATE: &str = concat!(
    r#"{"candidate":"candidate:842163049 1 udp 1677729535 192.0.2.7 52340 typ srflx "#,
    r#"raddr 0.0.0.0 rport 0 generation 0","sdpMid":"0","sdpMLineIndex":0,"#,
    r#""usernameFragment":"Xq7e"}"#,
);

// ---------------------------------------------------------------------------------------------
// Client -> relay, every variant.
// ---------------------------------------------------------------------------------------------

#[test]
fn client_register() {
    client_round_trip(
        r#"{"type":"register","userId":"alice"}"#,
        ClientMessage::Register {
            user_id: Some(uid("alice")),
        },
    );
    client_round_trip(
        r#"{"type":"register"}"#,
        ClientMessage::Register { user_id: None },
    );
    // `null` is the same as absent: the client id is used.
    assert_eq!(
        ClientMessage::decode(r#"{"type":"register","userId":null}"#),
        Ok(ClientMessage::Register { user_id: None })
    );
}

#[test]
fn client_join() {
    client_round_trip(
        r#"{"type":"join","roomId":"room-1"}"#,
        ClientMessage::Join {
            room_id: rid("room-1"),
            password: None,
        },
    );
}

#[test]
fn client_leave() {
    client_round_trip(
        r#"{"type":"leave","roomId":"room-1"}"#,
        ClientMessage::Leave {
            room_id: Some(rid("room-1")),
        },
    );
    client_round_trip(
        r#"{"type":"leave"}"#,
        ClientMessage::Leave { room_id: None },
    );
    assert_eq!(
        ClientMessage::decode(r#"{"type":"leave","roomId":null}"#),
        Ok(ClientMessage::Leave { room_id: None })
    );
}

#[test]
fn client_offer() {
    client_round_trip(
        &format!(r#"{{"type":"offer","targetId":"abc","sdp":{SDP_OFFER}}}"#),
        ClientMessage::Offer {
            target_id: cid("abc"),
            sdp: payload(SDP_OFFER),
        },
    );
    // A bare SDP string is a payload too.
    client_round_trip(
        r#"{"type":"offer","targetId":"abc","sdp":"v=0\r\n"}"#,
        ClientMessage::Offer {
            target_id: cid("abc"),
            sdp: payload(r#""v=0\r\n""#),
        },
    );
}

#[test]
fn client_answer() {
    client_round_trip(
        &format!(r#"{{"type":"answer","targetId":"xyz","sdp":{SDP_ANSWER}}}"#),
        ClientMessage::Answer {
            target_id: cid("xyz"),
            sdp: payload(SDP_ANSWER),
        },
    );
}

#[test]
fn client_candidate() {
    client_round_trip(
        &format!(r#"{{"type":"candidate","targetId":"abc","candidate":{CANDIDATE}}}"#),
        ClientMessage::Candidate {
            target_id: cid("abc"),
            candidate: payload(CANDIDATE),
        },
    );
}

#[test]
fn client_candidate_null_is_end_of_candidates() {
    let m =
        ClientMessage::decode(r#"{"type":"candidate","targetId":"abc","candidate":null}"#).unwrap();
    let ClientMessage::Candidate { candidate, .. } = &m else {
        panic!("{m:?}")
    };
    assert_eq!(candidate.get(), "null");
    client_round_trip(
        r#"{"type":"candidate","targetId":"abc","candidate":null}"#,
        ClientMessage::Candidate {
            target_id: cid("abc"),
            candidate: payload("null"),
        },
    );
    // Absent is not the same as null.
    client_error(
        r#"{"type":"candidate","targetId":"abc"}"#,
        ErrorCode::InvalidField,
        &["`candidate`", "missing"],
    );
}

#[test]
fn client_message() {
    client_round_trip(
        r#"{"type":"message","targetId":"abc","content":{"text":"hi"}}"#,
        ClientMessage::Message {
            target_id: Some(cid("abc")),
            content: payload(r#"{"text":"hi"}"#),
        },
    );
    client_round_trip(
        r#"{"type":"message","content":"hello room"}"#,
        ClientMessage::Message {
            target_id: None,
            content: payload(r#""hello room""#),
        },
    );
    client_round_trip(
        r#"{"type":"message","content":null}"#,
        ClientMessage::Message {
            target_id: None,
            content: payload("null"),
        },
    );
}

#[test]
fn client_message_null_target_is_broadcast() {
    assert_eq!(
        ClientMessage::decode(r#"{"type":"message","targetId":null,"content":[1,2,3]}"#),
        Ok(ClientMessage::Message {
            target_id: None,
            content: payload("[1,2,3]")
        })
    );
}

#[test]
fn client_lock_unlock() {
    client_round_trip(
        r#"{"type":"lock","roomId":"room-1"}"#,
        ClientMessage::Lock {
            room_id: Some(rid("room-1")),
        },
    );
    client_round_trip(r#"{"type":"lock"}"#, ClientMessage::Lock { room_id: None });
    client_round_trip(
        r#"{"type":"unlock","roomId":"room-1"}"#,
        ClientMessage::Unlock {
            room_id: Some(rid("room-1")),
        },
    );
    client_round_trip(
        r#"{"type":"unlock"}"#,
        ClientMessage::Unlock { room_id: None },
    );
}

#[test]
fn client_rooms() {
    client_round_trip(r#"{"type":"rooms"}"#, ClientMessage::Rooms);
}

// ---------------------------------------------------------------------------------------------
// Relay -> client, every variant.
// ---------------------------------------------------------------------------------------------

#[test]
fn server_welcome() {
    server_round_trip(
        r#"{"type":"welcome","clientId":"c-1"}"#,
        ServerMessage::Welcome {
            client_id: cid("c-1"),
            ice_servers: vec![],
            resume_token: None,
            resumed: false,
            max_send_kbps: None,
        },
    );
}

#[test]
fn server_registered() {
    server_round_trip(
        r#"{"type":"registered","userId":"alice"}"#,
        ServerMessage::Registered {
            user_id: uid("alice"),
        },
    );
}

#[test]
fn server_joined() {
    // The reference format: members always present (even empty), peers omitted when empty.
    server_round_trip(
        r#"{"type":"joined","roomId":"room-1","members":[]}"#,
        ServerMessage::Joined {
            room_id: rid("room-1"),
            members: vec![],
            peers: vec![],
        },
    );
    server_round_trip(
        concat!(
            r#"{"type":"joined","roomId":"room-1","members":["c-1","c-2"],"#,
            r#""peers":[{"clientId":"c-1","userId":"alice"},{"clientId":"c-2","userId":"c-2"}]}"#,
        ),
        ServerMessage::Joined {
            room_id: rid("room-1"),
            members: vec![cid("c-1"), cid("c-2")],
            peers: vec![
                PeerInfo {
                    client_id: cid("c-1"),
                    user_id: uid("alice"),
                },
                PeerInfo {
                    client_id: cid("c-2"),
                    user_id: uid("c-2"),
                },
            ],
        },
    );
}

#[test]
fn server_user_joined_and_left() {
    server_round_trip(
        r#"{"type":"user-joined","userId":"alice","clientId":"c-1"}"#,
        ServerMessage::UserJoined {
            user_id: uid("alice"),
            client_id: cid("c-1"),
        },
    );
    server_round_trip(
        r#"{"type":"user-left","userId":"alice","clientId":"c-1"}"#,
        ServerMessage::UserLeft {
            user_id: uid("alice"),
            client_id: cid("c-1"),
        },
    );
}

#[test]
fn server_left() {
    server_round_trip(
        r#"{"type":"left","roomId":"room-1"}"#,
        ServerMessage::Left {
            room_id: rid("room-1"),
        },
    );
}

#[test]
fn server_join_error() {
    server_round_trip(
        r#"{"type":"join-error","error":"Room is full"}"#,
        ServerMessage::JoinError {
            error: "Room is full".into(),
            room_id: None,
            code: None,
        },
    );
    server_round_trip(
        r#"{"type":"join-error","error":"Room is full","roomId":"room-1","code":"room-full"}"#,
        ServerMessage::JoinError {
            error: "Room is full".into(),
            room_id: Some(rid("room-1")),
            code: Some(ErrorCode::RoomFull),
        },
    );
    server_round_trip(
        r#"{"type":"join-error","error":"Room is locked","code":"room-locked"}"#,
        ServerMessage::JoinError {
            error: "Room is locked".into(),
            room_id: None,
            code: Some(ErrorCode::RoomLocked),
        },
    );
}

#[test]
fn server_offer_answer() {
    server_round_trip(
        &format!(r#"{{"type":"offer","fromId":"c-1","fromUserId":"alice","sdp":{SDP_OFFER}}}"#),
        ServerMessage::Offer {
            from_id: cid("c-1"),
            from_user_id: uid("alice"),
            sdp: payload(SDP_OFFER),
        },
    );
    server_round_trip(
        &format!(r#"{{"type":"answer","fromId":"c-2","fromUserId":"bob","sdp":{SDP_ANSWER}}}"#),
        ServerMessage::Answer {
            from_id: cid("c-2"),
            from_user_id: uid("bob"),
            sdp: payload(SDP_ANSWER),
        },
    );
}

#[test]
fn server_candidate() {
    server_round_trip(
        &format!(
            r#"{{"type":"candidate","fromId":"c-1","fromUserId":"alice","candidate":{CANDIDATE}}}"#
        ),
        ServerMessage::Candidate {
            from_id: cid("c-1"),
            from_user_id: uid("alice"),
            candidate: payload(CANDIDATE),
        },
    );
    server_round_trip(
        r#"{"type":"candidate","fromId":"c-1","fromUserId":"alice","candidate":null}"#,
        ServerMessage::Candidate {
            from_id: cid("c-1"),
            from_user_id: uid("alice"),
            candidate: payload("null"),
        },
    );
}

#[test]
fn server_message() {
    server_round_trip(
        r#"{"type":"message","fromId":"c-1","fromUserId":"alice","content":{"text":"hi"}}"#,
        ServerMessage::Message {
            from_id: cid("c-1"),
            from_user_id: uid("alice"),
            content: payload(r#"{"text":"hi"}"#),
        },
    );
}

#[test]
fn server_locked_unlocked() {
    server_round_trip(
        r#"{"type":"locked","roomId":"room-1","byId":"c-1"}"#,
        ServerMessage::Locked {
            room_id: rid("room-1"),
            by_id: cid("c-1"),
        },
    );
    server_round_trip(
        r#"{"type":"unlocked","roomId":"room-1","byId":"c-1"}"#,
        ServerMessage::Unlocked {
            room_id: rid("room-1"),
            by_id: cid("c-1"),
        },
    );
}

#[test]
fn server_rooms() {
    server_round_trip(
        r#"{"type":"rooms","rooms":[]}"#,
        ServerMessage::Rooms {
            rooms: vec![],
            truncated: false,
        },
    );
    server_round_trip(
        concat!(
            r#"{"type":"rooms","rooms":["#,
            r#"{"id":"a","memberCount":2,"maxMembers":10,"locked":false},"#,
            r#"{"id":"b","memberCount":1,"maxMembers":2,"locked":true}"#,
            r#"],"truncated":true}"#,
        ),
        ServerMessage::Rooms {
            rooms: vec![
                RoomInfo {
                    id: rid("a"),
                    member_count: 2,
                    max_members: 10,
                    locked: false,
                },
                RoomInfo {
                    id: rid("b"),
                    member_count: 1,
                    max_members: 2,
                    locked: true,
                },
            ],
            truncated: true,
        },
    );
    // `truncated: false` is accepted and the same as absent.
    assert_eq!(
        ServerMessage::decode(r#"{"type":"rooms","rooms":[],"truncated":false}"#),
        Ok(ServerMessage::Rooms {
            rooms: vec![],
            truncated: false
        })
    );
}

#[test]
fn server_error_message() {
    server_round_trip(
        r#"{"type":"error","message":"Not in a room"}"#,
        ServerMessage::Error {
            message: "Not in a room".into(),
            code: None,
        },
    );
    server_round_trip(
        r#"{"type":"error","message":"Not in a room","code":"not-in-room"}"#,
        ServerMessage::error(ErrorCode::NotInRoom, "Not in a room"),
    );
}

#[test]
fn error_codes_on_the_wire() {
    let all = [
        (ErrorCode::InvalidJson, "invalid-json"),
        (ErrorCode::UnknownType, "unknown-type"),
        (ErrorCode::InvalidField, "invalid-field"),
        (ErrorCode::BinaryFrame, "binary-frame"),
        (ErrorCode::NotInRoom, "not-in-room"),
        (ErrorCode::TargetNotInRoom, "target-not-in-room"),
        (ErrorCode::RoomFull, "room-full"),
        (ErrorCode::RoomLocked, "room-locked"),
        (ErrorCode::TooManyRooms, "too-many-rooms"),
        (ErrorCode::RateLimited, "rate-limited"),
        (ErrorCode::BadPassword, "bad-password"),
        (ErrorCode::Unauthorized, "unauthorized"),
        (ErrorCode::RoomNotAllowed, "room-not-allowed"),
        (ErrorCode::ResumeFailed, "resume-failed"),
        (ErrorCode::Unavailable, "unavailable"),
        (ErrorCode::UserIdTaken, "user-id-taken"),
        (ErrorCode::Throttled, "throttled"),
        (ErrorCode::Unknown, "unknown"),
    ];
    for (code, wire) in all {
        assert_eq!(code.as_str(), wire);
        server_round_trip(
            &format!(r#"{{"type":"error","message":"m","code":"{wire}"}}"#),
            ServerMessage::error(code, "m"),
        );
    }
    // A code from a newer relay is kept as `Unknown`, not refused.
    assert_eq!(
        ServerMessage::decode(r#"{"type":"error","message":"m","code":"from-the-future"}"#),
        Ok(ServerMessage::error(ErrorCode::Unknown, "m"))
    );
    assert_eq!(
        ServerMessage::decode(r#"{"type":"join-error","error":"e","code":"new-reason"}"#),
        Ok(ServerMessage::JoinError {
            error: "e".into(),
            room_id: None,
            code: Some(ErrorCode::Unknown)
        })
    );
}

#[test]
fn strings_with_escapes_and_unicode() {
    server_round_trip(
        r#"{"type":"error","message":"quote \" backslash \\ newline \n tab \t ctrl \u0001 é 😀"}"#,
        ServerMessage::Error {
            message: "quote \" backslash \\ newline \n tab \t ctrl \u{1} é 😀".into(),
            code: None,
        },
    );
    client_round_trip(
        r#"{"type":"join","roomId":"salle-é-😀"}"#,
        ClientMessage::Join {
            room_id: rid("salle-é-😀"),
            password: None,
        },
    );
    // Escaped input decodes to the same id; encoding writes UTF-8 as is.
    assert_eq!(
        ClientMessage::decode(r#"{"type":"join","roomId":"salle-\u00e9-\ud83d\ude00"}"#),
        Ok(ClientMessage::Join {
            room_id: rid("salle-é-😀"),
            password: None,
        })
    );
    // Escapes in the type name are resolved like anywhere else in JSON.
    assert_eq!(
        ClientMessage::decode(r#"{"type":"jo\u0069n","roomId":"r"}"#),
        Ok(ClientMessage::Join {
            room_id: rid("r"),
            password: None
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Payloads are forwarded byte for byte.
// ---------------------------------------------------------------------------------------------

/// An SDP object as some client might write it: odd spacing, escapes that could be written
/// shorter, unicode both escaped and raw, keys in no particular order, numbers in odd forms.
const ODD_SDP: &str = concat!(
    r#"{ "z" : [1, 2.50 ,-0, 1E3, 1e-7],"sdp" :"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n\u0061\/b","#,
    "\"type\":\t\"offer\" ,\n ",
    r#""é\u00e9":"\ud83d\ude00😀\u2028", "n":{ "a":null ,"b" :[ ] ,"c":{}} }"#,
);

#[test]
fn sdp_forwarded_byte_for_byte() {
    let frame = format!(r#"{{"type":"offer","targetId":"abc","sdp":{ODD_SDP}}}"#);
    let decoded = ClientMessage::decode(&frame).unwrap();
    let ClientMessage::Offer { target_id, sdp } = decoded else {
        panic!("{decoded:?}")
    };
    assert_eq!(target_id, cid("abc"));
    assert_eq!(sdp.get(), ODD_SDP);

    let relayed = ServerMessage::Offer {
        from_id: cid("c-1"),
        from_user_id: uid("alice"),
        sdp,
    };
    let out = relayed.encode();
    assert_eq!(
        out,
        format!(r#"{{"type":"offer","fromId":"c-1","fromUserId":"alice","sdp":{ODD_SDP}}}"#)
    );
    // And the receiving client sees the same text again.
    let ServerMessage::Offer { sdp, .. } = ServerMessage::decode(&out).unwrap() else {
        panic!("not an offer")
    };
    assert_eq!(sdp.get(), ODD_SDP);
}

#[test]
fn candidate_and_content_forwarded_byte_for_byte() {
    for raw in [
        ODD_SDP,
        CANDIDATE,
        "null",
        "  true",
        r#""\u00e9\n""#,
        "-0.0e+00",
        "[ {} , [] ]",
    ] {
        let trimmed = raw.trim();
        let frame = format!(r#"{{"type":"candidate","targetId":"abc","candidate":{raw}}}"#);
        let ClientMessage::Candidate { candidate, .. } = ClientMessage::decode(&frame).unwrap()
        else {
            panic!("not a candidate: {frame}")
        };
        assert_eq!(candidate.get(), trimmed);
        let out = ServerMessage::Candidate {
            from_id: cid("c-1"),
            from_user_id: uid("u"),
            candidate,
        }
        .encode();
        assert_eq!(
            out,
            format!(
                r#"{{"type":"candidate","fromId":"c-1","fromUserId":"u","candidate":{trimmed}}}"#
            )
        );

        let frame = format!(r#"{{"type":"message","content":{raw}}}"#);
        let ClientMessage::Message {
            target_id: None,
            content,
        } = ClientMessage::decode(&frame).unwrap()
        else {
            panic!("not a broadcast message: {frame}")
        };
        assert_eq!(content.get(), trimmed);
        let out = ServerMessage::Message {
            from_id: cid("c-1"),
            from_user_id: uid("u"),
            content,
        }
        .encode();
        assert_eq!(
            out,
            format!(r#"{{"type":"message","fromId":"c-1","fromUserId":"u","content":{trimmed}}}"#)
        );
    }
}

#[test]
fn payload_excludes_surrounding_whitespace_only() {
    // Whitespace around the value belongs to the frame, whitespace inside to the payload.
    let frame =
        "{ \"type\" : \"answer\" ,\n\t\"targetId\":\"abc\", \"sdp\" :  { \"a\" : 1 }  \r\n}";
    assert_eq!(
        ClientMessage::decode(frame),
        Ok(ClientMessage::Answer {
            target_id: cid("abc"),
            sdp: payload(r#"{ "a" : 1 }"#)
        })
    );
    assert_eq!(payload("  [1, 2]\n").get(), "[1, 2]");
    assert!(Payload::from_json("{").is_err());
    assert!(Payload::from_json("1 2").is_err());
}

#[test]
fn payload_equality_is_textual() {
    // The relay never reformats, so `{"a":1}` and `{ "a":1 }` are different payloads.
    assert_ne!(payload(r#"{"a":1}"#), payload(r#"{ "a":1 }"#));
    assert_eq!(payload("[1,2]"), Payload::from_value(&[1, 2]).unwrap());
    assert_eq!(format!("{:?}", payload(r#"{ "a":1 }"#)), r#"{ "a":1 }"#);
    let parsed: Vec<u32> = payload("[1, 2, 3]").parse().unwrap();
    assert_eq!(parsed, [1, 2, 3]);
}

// ---------------------------------------------------------------------------------------------
// Leniency: unknown fields, field order, frames of the reference browser client.
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_fields_are_ignored() {
    assert_eq!(
        ClientMessage::decode(concat!(
            r#"{"type":"join","roomId":"r","extra":1,"nested":{"a":[1,{"b":null}]},"sdp":"x","#,
            r#""userId":42}"#,
        )),
        Ok(ClientMessage::Join {
            room_id: rid("r"),
            password: None
        })
    );
    assert_eq!(
        ClientMessage::decode(r#"{"type":"rooms","roomId":["not","checked"],"content":{}}"#),
        Ok(ClientMessage::Rooms)
    );
    assert_eq!(
        ServerMessage::decode(r#"{"type":"welcome","clientId":"c-1","version":2,"motd":"hi"}"#),
        Ok(ServerMessage::Welcome {
            client_id: cid("c-1"),
            ice_servers: vec![],
            resume_token: None,
            resumed: false,
            max_send_kbps: None,
        })
    );
}

#[test]
fn field_order_does_not_matter_when_decoding() {
    assert_eq!(
        ClientMessage::decode(r#"{"sdp":{"type":"offer"},"targetId":"abc","type":"offer"}"#),
        Ok(ClientMessage::Offer {
            target_id: cid("abc"),
            sdp: payload(r#"{"type":"offer"}"#)
        })
    );
    assert_eq!(
        ServerMessage::decode(r#"{"clientId":"c-1","userId":"alice","type":"user-joined"}"#),
        Ok(ServerMessage::UserJoined {
            user_id: uid("alice"),
            client_id: cid("c-1")
        })
    );
}

/// What `JSON.stringify` produces in a reference browser client.
#[test]
fn reference_js_client_frames_decode() {
    let candidate_frame =
        format!(r#"{{"type":"candidate","targetId":"abc","candidate":{CANDIDATE}}}"#);
    let cases = [
        (
            r#"{"type":"register","userId":"alice"}"#,
            ClientMessage::Register {
                user_id: Some(uid("alice")),
            },
        ),
        (
            r#"{"type":"join","roomId":"lobby"}"#,
            ClientMessage::Join {
                room_id: rid("lobby"),
                password: None,
            },
        ),
        (
            r#"{"type":"leave"}"#,
            ClientMessage::Leave { room_id: None },
        ),
        (
            r#"{"type":"offer","targetId":"abc","sdp":{"type":"offer","sdp":"v=0\r\n..."}}"#,
            ClientMessage::Offer {
                target_id: cid("abc"),
                sdp: payload(r#"{"type":"offer","sdp":"v=0\r\n..."}"#),
            },
        ),
        (
            r#"{"type":"answer","targetId":"abc","sdp":{"type":"answer","sdp":"v=0\r\n..."}}"#,
            ClientMessage::Answer {
                target_id: cid("abc"),
                sdp: payload(r#"{"type":"answer","sdp":"v=0\r\n..."}"#),
            },
        ),
        (
            candidate_frame.as_str(),
            ClientMessage::Candidate {
                target_id: cid("abc"),
                candidate: payload(CANDIDATE),
            },
        ),
        (
            r#"{"type":"candidate","targetId":"abc","candidate":null}"#,
            ClientMessage::Candidate {
                target_id: cid("abc"),
                candidate: payload("null"),
            },
        ),
        // `targetId: undefined` is dropped by JSON.stringify.
        (
            r#"{"type":"message","content":{"chat":"hello"}}"#,
            ClientMessage::Message {
                target_id: None,
                content: payload(r#"{"chat":"hello"}"#),
            },
        ),
        (
            r#"{"type":"message","targetId":"abc","content":"psst"}"#,
            ClientMessage::Message {
                target_id: Some(cid("abc")),
                content: payload(r#""psst""#),
            },
        ),
    ];
    for (frame, expected) in cases {
        assert_eq!(ClientMessage::decode(frame), Ok(expected), "{frame}");
    }
}

// ---------------------------------------------------------------------------------------------
// Refusals: code and message.
// ---------------------------------------------------------------------------------------------

#[test]
fn invalid_json() {
    for frame in [
        "",
        "   ",
        "not json",
        r#"{"type":"join""#,
        r#"{"type":"join","roomId":"r""#,
        r#"{"type":"join","roomId":"r",}"#,
        r#"{'type':'join'}"#,
        r#"{"type":"join","roomId":"r"} trailing"#,
        r#"{"type":"join","roomId":"r"}{"type":"leave"}"#,
    ] {
        client_error(frame, ErrorCode::InvalidJson, &["invalid JSON"]);
    }
}

#[test]
fn not_an_object() {
    for frame in [
        r#"["join","room-1"]"#,
        r#"["rooms"]"#,
        r#"["join",null,"room-1"]"#,
        "[]",
        "42",
        "-1.5",
        r#""join""#,
        "true",
        "null",
    ] {
        client_error(frame, ErrorCode::InvalidJson, &["expected a JSON object"]);
        server_error(frame, ErrorCode::InvalidJson, &["expected a JSON object"]);
    }
    server_error(
        r#"["welcome","c-1"]"#,
        ErrorCode::InvalidJson,
        &["expected a JSON object"],
    );
}

#[test]
fn missing_type() {
    client_error(
        r#"{"roomId":"r"}"#,
        ErrorCode::InvalidField,
        &["`type`", "missing"],
    );
    client_error("{}", ErrorCode::InvalidField, &["`type`", "missing"]);
    client_error(
        r#"{"type":null}"#,
        ErrorCode::InvalidField,
        &["`type`", "missing"],
    );
    server_error(
        r#"{"clientId":"c"}"#,
        ErrorCode::InvalidField,
        &["`type`", "missing"],
    );
}

#[test]
fn type_not_a_string() {
    for (frame, kind) in [
        (r#"{"type":1}"#, "a number"),
        (r#"{"type":-1}"#, "a number"),
        (r#"{"type":1.5}"#, "a number"),
        (r#"{"type":true}"#, "a boolean"),
        (r#"{"type":["join"]}"#, "an array"),
        (r#"{"type":{"name":"join"}}"#, "an object"),
    ] {
        let err = client_error(
            frame,
            ErrorCode::InvalidField,
            &["`type`", "must be a string", kind],
        );
        assert_eq!(
            err.message,
            format!("field `type` must be a string, not {kind}")
        );
    }
}

#[test]
fn unknown_type() {
    for (frame, name) in [
        (r#"{"type":"jump"}"#, "\"jump\""),
        (r#"{"type":""}"#, "\"\""),
        (r#"{"type":"JOIN","roomId":"r"}"#, "\"JOIN\""),
        (r#"{"type":" join","roomId":"r"}"#, "\" join\""),
        // Relay-only types are unknown from a client.
        (r#"{"type":"welcome","clientId":"c"}"#, "\"welcome\""),
        (
            r#"{"type":"joined","roomId":"r","members":[]}"#,
            "\"joined\"",
        ),
    ] {
        client_error(
            frame,
            ErrorCode::UnknownType,
            &["unknown message type", name],
        );
    }
    // And client-only types from the relay.
    server_error(
        r#"{"type":"join","roomId":"r"}"#,
        ErrorCode::UnknownType,
        &["\"join\""],
    );
    server_error(
        r#"{"type":"register"}"#,
        ErrorCode::UnknownType,
        &["\"register\""],
    );
}

#[test]
fn long_unknown_type_is_shortened_in_the_message() {
    let long = "x".repeat(10_000);
    let err = client_error(
        &format!(r#"{{"type":"{long}"}}"#),
        ErrorCode::UnknownType,
        &["x".repeat(64).as_str(), "…"],
    );
    assert!(!err.message.contains(&"x".repeat(65)), "{}", err.message);
    assert!(err.message.len() < 200, "{}", err.message);
    // Multi-byte characters are cut on a character boundary.
    let long = "é".repeat(100);
    let err = client_error(
        &format!(r#"{{"type":"{long}"}}"#),
        ErrorCode::UnknownType,
        &["…"],
    );
    assert!(err.message.contains(&"é".repeat(64)) && !err.message.contains(&"é".repeat(65)));
}

#[test]
fn missing_room_id() {
    let err = client_error(
        r#"{"type":"join"}"#,
        ErrorCode::InvalidField,
        &["`roomId`", "missing"],
    );
    assert_eq!(err.message, "field `roomId` is missing");
    client_error(
        r#"{"type":"join","roomId":null}"#,
        ErrorCode::InvalidField,
        &["`roomId`", "missing"],
    );
    client_error(
        r#"{"type":"join","room":"r"}"#,
        ErrorCode::InvalidField,
        &["`roomId`", "missing"],
    );
    client_error(
        r#"{"type":"join","roomid":"r"}"#,
        ErrorCode::InvalidField,
        &["`roomId`", "missing"],
    );
}

#[test]
fn room_id_of_the_wrong_kind() {
    for (value, kind) in [
        ("1", "a number"),
        ("0.5", "a number"),
        ("-7", "a number"),
        ("true", "a boolean"),
        ("false", "a boolean"),
        (r#"["r"]"#, "an array"),
        ("[]", "an array"),
        (r#"{"id":"r"}"#, "an object"),
        ("{}", "an object"),
    ] {
        for t in ["join", "leave", "lock", "unlock"] {
            let err = client_error(
                &format!(r#"{{"type":"{t}","roomId":{value}}}"#),
                ErrorCode::InvalidField,
                &["`roomId`", "must be a string", kind],
            );
            assert_eq!(
                err.message,
                format!("field `roomId` must be a string, not {kind}")
            );
        }
    }
}

#[test]
fn other_fields_of_the_wrong_kind() {
    client_error(
        r#"{"type":"register","userId":7}"#,
        ErrorCode::InvalidField,
        &["`userId`", "a number"],
    );
    client_error(
        r#"{"type":"offer","targetId":{"id":"abc"},"sdp":{}}"#,
        ErrorCode::InvalidField,
        &["`targetId`", "an object"],
    );
    // Broadcast is `null` or absent, not any other non-string.
    client_error(
        r#"{"type":"message","targetId":false,"content":1}"#,
        ErrorCode::InvalidField,
        &["`targetId`", "a boolean"],
    );
    client_error(
        r#"{"type":"message","targetId":[],"content":1}"#,
        ErrorCode::InvalidField,
        &["`targetId`", "an array"],
    );
}

#[test]
fn empty_ids_are_refused() {
    for (frame, field) in [
        (r#"{"type":"join","roomId":""}"#, "`roomId`"),
        (r#"{"type":"leave","roomId":""}"#, "`roomId`"),
        (r#"{"type":"lock","roomId":""}"#, "`roomId`"),
        (r#"{"type":"register","userId":""}"#, "`userId`"),
        (r#"{"type":"offer","targetId":"","sdp":{}}"#, "`targetId`"),
        (
            r#"{"type":"candidate","targetId":"","candidate":null}"#,
            "`targetId`",
        ),
        (
            r#"{"type":"message","targetId":"","content":1}"#,
            "`targetId`",
        ),
    ] {
        client_error(
            frame,
            ErrorCode::InvalidField,
            &[field, "must not be empty"],
        );
    }
    server_error(
        r#"{"type":"welcome","clientId":""}"#,
        ErrorCode::InvalidField,
        &["`clientId`"],
    );
}

#[test]
fn id_length_limit() {
    assert_eq!(MAX_ID_CHARS, 128);
    for unit in ["a", "é", "😀"] {
        let ok = unit.repeat(128);
        assert_eq!(
            ClientMessage::decode(&format!(r#"{{"type":"join","roomId":"{ok}"}}"#)),
            Ok(ClientMessage::Join {
                room_id: rid(&ok),
                password: None
            })
        );
        client_round_trip(
            &format!(r#"{{"type":"register","userId":"{ok}"}}"#),
            ClientMessage::Register {
                user_id: Some(uid(&ok)),
            },
        );

        let long = unit.repeat(129);
        for (frame, field) in [
            (
                format!(r#"{{"type":"join","roomId":"{long}"}}"#),
                "`roomId`",
            ),
            (
                format!(r#"{{"type":"register","userId":"{long}"}}"#),
                "`userId`",
            ),
            (
                format!(r#"{{"type":"answer","targetId":"{long}","sdp":{{}}}}"#),
                "`targetId`",
            ),
        ] {
            client_error(
                &frame,
                ErrorCode::InvalidField,
                &[field, "at most 128 characters"],
            );
        }
    }
    // Escapes count as the character they stand for.
    let escaped = r"\u0061".repeat(128);
    assert_eq!(
        ClientMessage::decode(&format!(r#"{{"type":"join","roomId":"{escaped}"}}"#)),
        Ok(ClientMessage::Join {
            room_id: rid(&"a".repeat(128)),
            password: None,
        })
    );
}

#[test]
fn missing_payloads_and_targets() {
    for (frame, field) in [
        (r#"{"type":"offer","targetId":"abc"}"#, "`sdp`"),
        (r#"{"type":"answer","targetId":"abc"}"#, "`sdp`"),
        (r#"{"type":"candidate","targetId":"abc"}"#, "`candidate`"),
        (r#"{"type":"message","targetId":"abc"}"#, "`content`"),
        (r#"{"type":"message"}"#, "`content`"),
        (r#"{"type":"offer","sdp":{"type":"offer"}}"#, "`targetId`"),
        (r#"{"type":"answer","sdp":{"type":"answer"}}"#, "`targetId`"),
        (r#"{"type":"candidate","candidate":null}"#, "`targetId`"),
        (r#"{"type":"offer","targetId":null,"sdp":{}}"#, "`targetId`"),
    ] {
        let err = client_error(frame, ErrorCode::InvalidField, &[field, "missing"]);
        assert_eq!(err.message, format!("field {field} is missing"));
    }
    // The payload of the wrong message type does not count.
    client_error(
        r#"{"type":"offer","targetId":"abc","candidate":{}}"#,
        ErrorCode::InvalidField,
        &["`sdp`", "missing"],
    );
}

#[test]
fn duplicate_fields_are_refused() {
    client_error(
        r#"{"type":"join","type":"leave","roomId":"r"}"#,
        ErrorCode::InvalidJson,
        &["duplicate field `type`"],
    );
    client_error(
        r#"{"type":"join","roomId":"a","roomId":"b"}"#,
        ErrorCode::InvalidJson,
        &["duplicate field `roomId`"],
    );
}

#[test]
fn server_frames_missing_fields() {
    server_error(
        r#"{"type":"welcome"}"#,
        ErrorCode::InvalidField,
        &["`clientId`", "missing"],
    );
    server_error(
        r#"{"type":"registered"}"#,
        ErrorCode::InvalidField,
        &["`userId`", "missing"],
    );
    server_error(
        r#"{"type":"joined"}"#,
        ErrorCode::InvalidField,
        &["`roomId`", "missing"],
    );
    server_error(
        r#"{"type":"user-left","userId":"u"}"#,
        ErrorCode::InvalidField,
        &["`clientId`", "missing"],
    );
    server_error(
        r#"{"type":"join-error"}"#,
        ErrorCode::InvalidField,
        &["`error`", "missing"],
    );
    server_error(
        r#"{"type":"offer","fromId":"c","sdp":{}}"#,
        ErrorCode::InvalidField,
        &["`fromUserId`", "missing"],
    );
    server_error(
        r#"{"type":"candidate","fromId":"c","fromUserId":"u"}"#,
        ErrorCode::InvalidField,
        &["`candidate`", "missing"],
    );
    server_error(
        r#"{"type":"locked","roomId":"r"}"#,
        ErrorCode::InvalidField,
        &["`byId`", "missing"],
    );
    server_error(
        r#"{"type":"error"}"#,
        ErrorCode::InvalidField,
        &["`message`", "missing"],
    );
    server_error(
        r#"{"type":"error","message":"m","code":5}"#,
        ErrorCode::InvalidField,
        &["`code`", "a number"],
    );
    server_error(
        r#"{"type":"joined","roomId":"r","members":"c-1"}"#,
        ErrorCode::InvalidField,
        &["`members`"],
    );
    server_error(
        r#"{"type":"rooms","rooms":[{"id":"r"}]}"#,
        ErrorCode::InvalidField,
        &["`rooms`"],
    );
    server_error(
        r#"{"type":"rooms","rooms":[],"truncated":"yes"}"#,
        ErrorCode::InvalidField,
        &["`truncated`"],
    );
}

#[test]
fn server_welcome_with_extensions() {
    server_round_trip(
        r#"{"type":"welcome","clientId":"c-1","iceServers":[{"urls":["stun:s.example:3478"]},{"urls":["turn:t.example:3478?transport=udp"],"username":"1700000000:u","credential":"c2VjcmV0"}],"resumeToken":"r-9","maxSendKbps":800}"#,
        ServerMessage::Welcome {
            client_id: cid("c-1"),
            ice_servers: vec![
                IceServer {
                    urls: vec!["stun:s.example:3478".into()],
                    username: None,
                    credential: None,
                },
                IceServer {
                    urls: vec!["turn:t.example:3478?transport=udp".into()],
                    username: Some("1700000000:u".into()),
                    credential: Some("c2VjcmV0".into()),
                },
            ],
            resume_token: Some("r-9".into()),
            resumed: false,
            max_send_kbps: Some(800),
        },
    );
}

#[test]
fn every_error_code_is_listed_once_at_its_index_with_its_wire_name() {
    let mut names = std::collections::HashSet::new();
    for (i, code) in ErrorCode::ALL.into_iter().enumerate() {
        assert_eq!(code.index(), i, "{code:?}");
        assert!(names.insert(code.as_str()), "{code:?} named twice");
        let wire = serde_json::to_string(&code).unwrap();
        assert_eq!(wire, format!("\"{}\"", code.as_str()));
        assert_eq!(serde_json::from_str::<ErrorCode>(&wire).unwrap(), code);
    }
}

#[test]
fn turn_servers_are_told_by_their_urls() {
    for (url, turn) in [
        ("turn:t.example:3478", true),
        ("TURNS:t.example:5349?transport=tcp", true),
        ("stun:s.example", false),
        ("turnip:x", false),
        ("", false),
    ] {
        assert_eq!(protocol::is_turn_url(url), turn, "{url}");
    }
    let server = |urls: &[&str]| protocol::IceServer {
        urls: urls.iter().map(|u| u.to_string()).collect(),
        username: None,
        credential: None,
    };
    assert!(server(&["stun:s", "turn:t"]).is_turn());
    assert!(!server(&["stun:s"]).is_turn());
}
