//! The reference protocol flow against the real relay: welcome, register, join, relay of
//! offer/answer/candidate/message, leave, moving rooms, disconnect. Messages are written and
//! checked as literal JSON, the way a client of the reference server writes and reads them.

mod common;

use common::{TestServer, room_of};
use protocol::ServerMessage;
use serde_json::json;

#[tokio::test]
async fn welcome_gives_distinct_ids_and_register_sets_the_user_id() {
    let server = TestServer::default().await;
    let mut a = server.client().await;
    let b = server.client().await;
    assert_ne!(a.id, b.id);

    a.send(r#"{"type":"register","userId":"alice"}"#).await;
    assert_eq!(
        a.recv_text().await,
        r#"{"type":"registered","userId":"alice"}"#
    );
    a.send(r#"{"type":"register"}"#).await;
    assert_eq!(
        a.recv_json().await,
        json!({"type": "registered", "userId": a.id.as_str()})
    );
}

#[tokio::test]
async fn join_lists_the_others_and_announces_the_newcomer() {
    let server = TestServer::default().await;
    let mut a = server.client().await;
    let mut b = server.client().await;
    a.send(r#"{"type":"register","userId":"alice"}"#).await;
    a.recv().await;
    b.send(r#"{"type":"register","userId":"bob"}"#).await;
    b.recv().await;

    a.send(r#"{"type":"join","roomId":"r1"}"#).await;
    assert_eq!(
        a.recv_text().await,
        r#"{"type":"joined","roomId":"r1","members":[]}"#
    );
    b.send(r#"{"type":"join","roomId":"r1"}"#).await;
    let joined = b.recv_json().await;
    assert_eq!(joined["type"], "joined");
    assert_eq!(joined["roomId"], "r1");
    assert_eq!(joined["members"], json!([a.id.as_str()]));
    assert_eq!(
        joined["peers"],
        json!([{"clientId": a.id.as_str(), "userId": "alice"}])
    );
    assert_eq!(
        a.recv_text().await,
        format!(
            r#"{{"type":"user-joined","userId":"bob","clientId":"{}"}}"#,
            b.id
        )
    );
}

#[tokio::test]
async fn offer_answer_candidate_are_forwarded_untouched_with_the_sender_stamped() {
    let server = TestServer::default().await;
    let mut c = room_of(&server, "call", 2).await;
    let (a_id, b_id) = (c[0].id.clone(), c[1].id.clone());

    // An sdp object the way a browser client sends it, with odd spacing and escapes kept.
    let sdp = r#"{ "type":"offer", "sdp":"v=0\r\no=- 46117 2 IN IP4 127.0.0.1\r\ns=-\r\n\u00e9" }"#;
    // `fromId` in the request is ignored: the relay stamps the real sender.
    c[1].send(format!(
        r#"{{"type":"offer","targetId":"{a_id}","fromId":"forged","sdp":{sdp}}}"#
    ))
    .await;
    assert_eq!(
        c[0].recv_text().await,
        format!(r#"{{"type":"offer","fromId":"{b_id}","fromUserId":"{b_id}","sdp":{sdp}}}"#)
    );

    c[0].send(format!(
        r#"{{"type":"answer","targetId":"{b_id}","sdp":"v=0 answer"}}"#
    ))
    .await;
    assert_eq!(
        c[1].recv_text().await,
        format!(
            r#"{{"type":"answer","fromId":"{a_id}","fromUserId":"{a_id}","sdp":"v=0 answer"}}"#
        )
    );

    let cand = r#"{"candidate":"candidate:1 1 udp 2122260223 10.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}"#;
    c[1].send(format!(
        r#"{{"type":"candidate","targetId":"{a_id}","candidate":{cand}}}"#
    ))
    .await;
    assert_eq!(
        c[0].recv_text().await,
        format!(
            r#"{{"type":"candidate","fromId":"{b_id}","fromUserId":"{b_id}","candidate":{cand}}}"#
        )
    );
    // A null candidate (end of candidates) is relayed too.
    c[1].send(format!(
        r#"{{"type":"candidate","targetId":"{a_id}","candidate":null}}"#
    ))
    .await;
    assert_eq!(
        c[0].recv_text().await,
        format!(
            r#"{{"type":"candidate","fromId":"{b_id}","fromUserId":"{b_id}","candidate":null}}"#
        )
    );
}

#[tokio::test]
async fn messages_go_to_one_member_or_to_all_the_others() {
    let server = TestServer::default().await;
    let mut c = room_of(&server, "chat", 3).await;
    let sender = c[0].id.clone();
    c[0].send(r#"{"type":"register","userId":"ann"}"#).await;
    c[0].recv().await;

    let target = c[2].id.clone();
    c[0].send(format!(
        r#"{{"type":"message","targetId":"{target}","content":{{"text":"psst"}}}}"#
    ))
    .await;
    assert_eq!(
        c[2].recv_text().await,
        format!(
            r#"{{"type":"message","fromId":"{sender}","fromUserId":"ann","content":{{"text":"psst"}}}}"#
        )
    );

    c[0].send(r#"{"type":"message","targetId":null,"content":"hello all"}"#)
        .await;
    let expected = format!(
        r#"{{"type":"message","fromId":"{sender}","fromUserId":"ann","content":"hello all"}}"#
    );
    // The direct message did not reach c[1]: its first message is the broadcast.
    assert_eq!(c[1].recv_text().await, expected);
    assert_eq!(c[2].recv_text().await, expected);
    // The sender does not get its own broadcast: its next message is the answer to `rooms`.
    c[0].assert_usable().await;
}

#[tokio::test]
async fn leave_moving_and_disconnect_tell_the_room() {
    let server = TestServer::start(server::Config {
        room_list: true,
        ..server::Config::default()
    })
    .await;
    let mut c = room_of(&server, "r", 3).await;
    let ids: Vec<_> = c.iter().map(|c| c.id.clone()).collect();

    c[2].send(r#"{"type":"leave","roomId":"r"}"#).await;
    assert_eq!(c[2].recv_text().await, r#"{"type":"left","roomId":"r"}"#);
    let left = format!(
        r#"{{"type":"user-left","userId":"{0}","clientId":"{0}"}}"#,
        ids[2]
    );
    for member in &mut c[..2] {
        assert_eq!(member.recv_text().await, left);
    }

    // Joining another room leaves the current one first.
    c[1].send(r#"{"type":"join","roomId":"other"}"#).await;
    assert_eq!(c[1].recv_text().await, r#"{"type":"left","roomId":"r"}"#);
    assert_eq!(
        c[1].recv_text().await,
        r#"{"type":"joined","roomId":"other","members":[]}"#
    );
    assert!(
        matches!(c[0].recv().await, ServerMessage::UserLeft { client_id, .. } if client_id == ids[1])
    );

    // Disconnecting tells the room too.
    c[2].join("other").await;
    assert!(matches!(
        c[1].recv().await,
        ServerMessage::UserJoined { .. }
    ));
    let gone = c.remove(2);
    drop(gone);
    assert!(
        matches!(c[1].recv().await, ServerMessage::UserLeft { client_id, .. } if client_id == ids[2])
    );

    // Rooms are listed while they have members and deleted when empty.
    c[0].send(r#"{"type":"leave"}"#).await;
    assert!(matches!(c[0].recv().await, ServerMessage::Left { .. }));
    c[0].send(r#"{"type":"rooms"}"#).await;
    assert_eq!(
        c[0].recv_text().await,
        r#"{"type":"rooms","rooms":[{"id":"other","memberCount":1,"maxMembers":10,"locked":false}]}"#
    );
}

#[tokio::test]
async fn joining_the_same_room_again_repeats_the_answer_only() {
    let server = TestServer::default().await;
    let mut c = room_of(&server, "r", 2).await;
    c[1].send(r#"{"type":"join","roomId":"r"}"#).await;
    assert_eq!(c[1].recv_json().await["members"], json!([c[0].id.as_str()]));
    // Nobody was told anything: c[0]'s next message is its own answer.
    c[0].assert_usable().await;
}
