//! Resuming a session: a client whose connection is lost (reset, not a clean close) comes back
//! within the grace period with its `resumeToken`, keeps its client id and room, and gets the
//! messages sent to it meanwhile; the room is never told it left. After the grace period, or
//! after a clean close, resuming fails cleanly with a fresh session.

mod common;

use common::{Client, TestServer, config, room_of};
use protocol::ServerMessage;
use serde_json::json;
use server::Config;
use std::time::Duration;

/// A connected client and the resume token of its welcome.
async fn client_with_token(server: &TestServer) -> (Client, String) {
    let (c, welcome) = Client::connect_with_welcome(&server.url()).await;
    (
        c,
        welcome["resumeToken"]
            .as_str()
            .expect("a resume token")
            .to_owned(),
    )
}

async fn resume(server: &TestServer, token: &str) -> (Client, serde_json::Value) {
    Client::connect_with_welcome(&format!("{}?resume={token}", server.url())).await
}

fn grace(d: Duration) -> Config {
    Config {
        resume_grace: d,
        ..config()
    }
}

#[tokio::test]
async fn a_lost_client_resumes_its_session_with_the_messages_sent_meanwhile() {
    let server = TestServer::start(grace(Duration::from_secs(10))).await;
    let mut a = room_of(&server, "r", 1).await.remove(0);
    let (mut b, token) = client_with_token(&server).await;
    b.join("r").await;
    assert!(matches!(a.recv().await, ServerMessage::UserJoined { .. }));
    let b_id = b.id.clone();

    b.lose();
    // Sent while b is away: kept for it, not refused.
    a.send_json(json!({"type": "message", "targetId": b_id.as_str(), "content": "while away"}))
        .await;
    a.send_json(json!({"type": "message", "targetId": b_id.as_str(), "content": "second"}))
        .await;

    let (mut b2, welcome) = resume(&server, &token).await;
    assert_eq!(welcome["clientId"], b_id.as_str(), "same client id");
    assert_eq!(welcome["resumed"], true);
    let new_token = welcome["resumeToken"].as_str().unwrap();
    assert_ne!(new_token, token, "the token is rotated");
    assert_eq!(b2.recv_json().await["content"], "while away");
    assert_eq!(b2.recv_json().await["content"], "second");

    // Still in the room: a broadcast reaches a, and a never heard that b left.
    b2.send(r#"{"type":"message","content":"back"}"#).await;
    let got = a.recv_json().await;
    assert_eq!(
        (got["type"].as_str(), got["content"].as_str()),
        (Some("message"), Some("back"))
    );
    // The old token is spent.
    let (_c, fresh) = resume(&server, &token).await;
    assert_ne!(fresh["clientId"], b_id.as_str());
}

#[tokio::test]
async fn after_the_grace_period_the_room_is_told_and_resuming_fails_cleanly() {
    let server = TestServer::start(grace(Duration::from_millis(200))).await;
    let mut a = room_of(&server, "r", 1).await.remove(0);
    let (mut b, token) = client_with_token(&server).await;
    b.join("r").await;
    assert!(matches!(a.recv().await, ServerMessage::UserJoined { .. }));
    let b_id = b.id.clone();
    let lost_at = tokio::time::Instant::now();
    b.lose();
    match a.recv().await {
        ServerMessage::UserLeft { client_id, .. } => assert_eq!(client_id, b_id),
        other => panic!("expected user-left, got {other:?}"),
    }
    assert!(
        lost_at.elapsed() >= Duration::from_millis(200),
        "told only after the grace period"
    );

    let (mut late, welcome) = resume(&server, &token).await;
    assert_ne!(welcome["clientId"], b_id.as_str(), "a new session");
    assert!(welcome.get("resumed").is_none());
    let e = late.expect_error().await;
    assert_eq!(e["code"], "resume-failed");
    late.assert_usable().await;
}

#[tokio::test]
async fn a_clean_close_ends_the_session_at_once() {
    let server = TestServer::start(grace(Duration::from_secs(10))).await;
    let mut a = room_of(&server, "r", 1).await.remove(0);
    let (mut b, token) = client_with_token(&server).await;
    b.join("r").await;
    assert!(matches!(a.recv().await, ServerMessage::UserJoined { .. }));
    b.ws.close(None).await.unwrap();
    assert!(matches!(a.recv().await, ServerMessage::UserLeft { .. }));
    let (mut c, _) = resume(&server, &token).await;
    assert_eq!(c.expect_error().await["code"], "resume-failed");
}

#[tokio::test]
async fn resuming_while_the_old_connection_lingers_takes_the_session_over() {
    let server = TestServer::start(grace(Duration::from_secs(10))).await;
    let mut a = room_of(&server, "r", 1).await.remove(0);
    let (mut b, token) = client_with_token(&server).await;
    b.join("r").await;
    assert!(matches!(a.recv().await, ServerMessage::UserJoined { .. }));
    let (mut b2, welcome) = resume(&server, &token).await;
    assert_eq!(
        (welcome["clientId"].as_str(), welcome["resumed"].as_bool()),
        (Some(b.id.as_str()), Some(true))
    );
    // The old connection is closed by the relay, saying why...
    let close = b.recv_close().await.expect("a Close frame");
    assert_eq!(u16::from(close.code), 4000, "{close}");
    // ...and the room goes on with the new one, without a user-left.
    b2.send(r#"{"type":"message","content":"moved"}"#).await;
    assert_eq!(a.recv_json().await["content"], "moved");
}

#[tokio::test]
async fn without_a_grace_period_there_is_no_token() {
    let server = TestServer::start(grace(Duration::ZERO)).await;
    let (_c, welcome) = Client::connect_with_welcome(&server.url()).await;
    assert!(welcome.get("resumeToken").is_none(), "{welcome}");
}
