//! Every refused input gets an `error` reply that names the problem, and the connection stays
//! usable: malformed frames, unknown types, bad fields, binary frames, and messages aimed
//! outside the sender's room (which must never be delivered).

mod common;

use common::{TestServer, config, room_of};
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// Sends `frame` and expects an error with `code` whose message contains `needle`.
async fn refused(c: &mut common::Client, frame: &str, code: &str, needle: &str) {
    c.send(frame).await;
    let e = c.expect_error().await;
    assert_eq!(e["code"], code, "code for {frame}: {e}");
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains(needle),
        "message for {frame} should mention {needle:?}: {msg}"
    );
    c.assert_usable().await;
}

#[tokio::test]
async fn malformed_frames_are_refused_and_the_connection_survives() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    refused(&mut c, "{not json", "invalid-json", "invalid JSON").await;
    refused(&mut c, "", "invalid-json", "JSON").await;
    refused(&mut c, "[1,2]", "invalid-json", "object").await;
    refused(&mut c, "42", "invalid-json", "object").await;
    refused(
        &mut c,
        r#"{"roomId":"r"}"#,
        "invalid-field",
        "`type` is missing",
    )
    .await;
    refused(
        &mut c,
        r#"{"type":7}"#,
        "invalid-field",
        "`type` must be a string",
    )
    .await;
    refused(&mut c, r#"{"type":"teleport"}"#, "unknown-type", "teleport").await;
}

#[tokio::test]
async fn bad_fields_are_named() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    refused(
        &mut c,
        r#"{"type":"join"}"#,
        "invalid-field",
        "`roomId` is missing",
    )
    .await;
    refused(
        &mut c,
        r#"{"type":"join","roomId":5}"#,
        "invalid-field",
        "`roomId` must be a string",
    )
    .await;
    refused(
        &mut c,
        r#"{"type":"join","roomId":{"a":1}}"#,
        "invalid-field",
        "an object",
    )
    .await;
    refused(
        &mut c,
        r#"{"type":"join","roomId":""}"#,
        "invalid-field",
        "must not be empty",
    )
    .await;
    let long = "x".repeat(129);
    refused(
        &mut c,
        &format!(r#"{{"type":"join","roomId":"{long}"}}"#),
        "invalid-field",
        "128",
    )
    .await;
    refused(
        &mut c,
        r#"{"type":"register","userId":false}"#,
        "invalid-field",
        "`userId`",
    )
    .await;
    refused(
        &mut c,
        r#"{"type":"offer","sdp":"v=0"}"#,
        "invalid-field",
        "`targetId` is missing",
    )
    .await;
    refused(
        &mut c,
        r#"{"type":"offer","targetId":"x"}"#,
        "invalid-field",
        "`sdp` is missing",
    )
    .await;
    refused(
        &mut c,
        r#"{"type":"candidate","targetId":"x"}"#,
        "invalid-field",
        "`candidate`",
    )
    .await;
    refused(
        &mut c,
        r#"{"type":"message","targetId":"x"}"#,
        "invalid-field",
        "`content`",
    )
    .await;
    // A 128-character id is fine.
    c.join(&"y".repeat(128)).await;
}

#[tokio::test]
async fn binary_frames_are_refused() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    c.ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    let e = c.expect_error().await;
    assert_eq!(e["code"], "binary-frame");
    c.assert_usable().await;
}

#[tokio::test]
async fn nothing_crosses_rooms() {
    let server = TestServer::start(config()).await;
    let mut r1 = room_of(&server, "r1", 2).await;
    let mut r2 = room_of(&server, "r2", 2).await;
    let outsider = r2[0].id.clone();

    for frame in [
        json!({"type": "offer", "targetId": outsider.as_str(), "sdp": "v=0"}),
        json!({"type": "answer", "targetId": outsider.as_str(), "sdp": "v=0"}),
        json!({"type": "candidate", "targetId": outsider.as_str(), "candidate": null}),
        json!({"type": "message", "targetId": outsider.as_str(), "content": "hi"}),
    ] {
        r1[0].send_json(frame).await;
        let e = r1[0].expect_error().await;
        assert_eq!(e["code"], "target-not-in-room", "{e}");
        assert!(e["message"].as_str().unwrap().contains(outsider.as_str()));
    }
    refused(
        &mut r1[0],
        r#"{"type":"offer","targetId":"nobody","sdp":1}"#,
        "target-not-in-room",
        "nobody",
    )
    .await;

    // A broadcast in r1 reaches r1 only.
    r1[0]
        .send(r#"{"type":"message","content":"r1 only"}"#)
        .await;
    assert_eq!(r1[1].recv_json().await["content"], "r1 only");
    // r2's members got none of it: the first thing they receive is r2's own message.
    let r2_sender = r2[1].id.clone();
    r2[1].send(r#"{"type":"message","content":"r2"}"#).await;
    let got = r2[0].recv_json().await;
    assert_eq!(
        (got["fromId"].as_str(), got["content"].as_str()),
        (Some(r2_sender.as_str()), Some("r2"))
    );
}

#[tokio::test]
async fn room_requests_need_a_room() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    let mut d = server.client().await;
    let d_id = d.id.clone();
    refused(
        &mut c,
        &format!(r#"{{"type":"offer","targetId":"{d_id}","sdp":"x"}}"#),
        "not-in-room",
        "not in a room",
    )
    .await;
    refused(
        &mut c,
        r#"{"type":"message","content":"x"}"#,
        "not-in-room",
        "not in a room",
    )
    .await;
    refused(
        &mut c,
        r#"{"type":"leave","roomId":"r"}"#,
        "not-in-room",
        "not in a room",
    )
    .await;
    refused(&mut c, r#"{"type":"lock"}"#, "not-in-room", "not in a room").await;
    c.join("a").await;
    refused(
        &mut c,
        r#"{"type":"leave","roomId":"b"}"#,
        "not-in-room",
        "not in room b",
    )
    .await;
    // d, never in a room, received nothing.
    d.assert_usable().await;
}
