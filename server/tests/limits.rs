//! Limits: room cap (configured and the reference default of 10), lock, room count, frame size,
//! connection count, message rate, and the slow consumer whose queue fills up.

mod common;

use common::{Client, TestServer, config, room_of};
use futures_util::SinkExt;
use protocol::ServerMessage;
use serde_json::json;
use server::Config;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn a_full_room_answers_join_error() {
    let server = TestServer::start(Config {
        max_members: 2,
        ..config()
    })
    .await;
    let _two = room_of(&server, "r", 2).await;
    let mut third = server.client().await;
    third.send(r#"{"type":"join","roomId":"r"}"#).await;
    let e = third.recv_json().await;
    assert_eq!(e["type"], "join-error");
    assert_eq!(e["code"], "room-full");
    assert_eq!(e["roomId"], "r");
    assert!(e["error"].as_str().unwrap().contains("full"));
    third.assert_usable().await;
}

#[tokio::test]
async fn the_default_cap_is_ten_like_the_reference() {
    let server = TestServer::default().await;
    let _ten = room_of(&server, "big", 10).await;
    let mut eleventh = server.client().await;
    eleventh.send(r#"{"type":"join","roomId":"big"}"#).await;
    assert_eq!(eleventh.recv_json().await["type"], "join-error");
}

#[tokio::test]
async fn a_locked_room_admits_nobody_until_unlocked() {
    let server = TestServer::start(Config {
        room_list: true,
        ..config()
    })
    .await;
    let mut c = room_of(&server, "r", 2).await;
    let locker = c[0].id.clone();
    c[0].send(r#"{"type":"lock","roomId":"r"}"#).await;
    let locked = format!(r#"{{"type":"locked","roomId":"r","byId":"{locker}"}}"#);
    assert_eq!(c[0].recv_text().await, locked);
    assert_eq!(c[1].recv_text().await, locked);

    let mut outsider = server.client().await;
    outsider.send(r#"{"type":"join","roomId":"r"}"#).await;
    let e = outsider.recv_json().await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("join-error"), Some("room-locked"))
    );
    outsider.send(r#"{"type":"rooms"}"#).await;
    assert_eq!(outsider.recv_json().await["rooms"][0]["locked"], true);
    // Only members lock or unlock.
    outsider.send(r#"{"type":"unlock","roomId":"r"}"#).await;
    assert_eq!(outsider.expect_error().await["code"], "not-in-room");

    c[1].send(r#"{"type":"unlock"}"#).await;
    assert_eq!(c[0].recv_json().await["type"], "unlocked");
    assert_eq!(c[1].recv_json().await["type"], "unlocked");
    outsider.join("r").await;
}

#[tokio::test]
async fn the_room_count_is_capped() {
    let server = TestServer::start(Config {
        max_rooms: 2,
        ..config()
    })
    .await;
    let _a = room_of(&server, "a", 1).await;
    let _b = room_of(&server, "b", 1).await;
    let mut c = server.client().await;
    c.send(r#"{"type":"join","roomId":"c"}"#).await;
    assert_eq!(c.recv_json().await["code"], "too-many-rooms");
    // Existing rooms still admit.
    c.join("a").await;
}

#[tokio::test]
async fn an_oversized_frame_closes_with_1009_and_the_server_survives() {
    let server = TestServer::start(Config {
        max_message_size: 1024,
        ..config()
    })
    .await;
    let mut c = room_of(&server, "r", 2).await;
    let big = format!(r#"{{"type":"message","content":"{}"}}"#, "x".repeat(2000));
    c[1].send(big).await;
    let frame = c[1].recv_close().await.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Size);
    // Its room is told, and the relay serves others as before.
    assert!(matches!(c[0].recv().await, ServerMessage::UserLeft { .. }));
    c[0].assert_usable().await;
    let mut fresh = server.client().await;
    fresh.join("r").await;
}

#[tokio::test]
async fn connections_over_the_cap_get_503() {
    let server = TestServer::start(Config {
        max_connections: 2,
        ..config()
    })
    .await;
    let _a = server.client().await;
    let b = server.client().await;
    let err = tokio_tungstenite::connect_async(server.url())
        .await
        .expect_err("over the cap");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(res) => assert_eq!(res.status(), 503),
        other => panic!("expected HTTP 503, got {other:?}"),
    }
    // A slot frees when a client leaves. The relay releases it once the connection's task has
    // ended, which the room-less client cannot observe, so retry until a connection succeeds.
    drop(b);
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    loop {
        if tokio_tungstenite::connect_async(server.url()).await.is_ok() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "slot never freed");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn the_message_rate_is_limited_then_flooders_are_dropped() {
    let server = TestServer::start(Config {
        rate_limit: 1,
        rate_burst: 5,
        ..Config::default()
    })
    .await;
    let mut c = server.client().await;
    // The burst passes.
    for _ in 0..5 {
        c.send(r#"{"type":"register"}"#).await;
    }
    for _ in 0..5 {
        assert_eq!(c.recv_json().await["type"], "registered");
    }
    // The next one is refused with a clear error.
    c.send(r#"{"type":"register"}"#).await;
    assert_eq!(c.expect_error().await["code"], "rate-limited");
    // A client that ignores the refusals is disconnected with 1008.
    for _ in 0..20 {
        if c.ws
            .send(Message::text(r#"{"type":"register"}"#))
            .await
            .is_err()
        {
            break;
        }
    }
    let frame = c.recv_close().await.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Policy);
}

#[tokio::test]
async fn a_slow_consumer_is_dropped_and_the_room_goes_on() {
    let server = TestServer::start(Config {
        queue_size: 8,
        room_list: true,
        ..config()
    })
    .await;
    let mut c = room_of(&server, "r", 3).await;
    let slow = c.pop().unwrap(); // Never read from again.
    let slow_id = slow.id.clone();
    let payload = "x".repeat(32 * 1024);
    let frame =
        json!({"type": "message", "targetId": slow_id.as_str(), "content": payload}).to_string();
    // The relay writes into the socket until the kernel's buffers are full, then queues 8 more:
    // the slow client must be dropped long before this bound (about 64 MiB) is sent.
    let mut sent = 0;
    let dropped = loop {
        assert!(sent < 2000, "slow consumer never dropped");
        c[0].send(frame.clone()).await;
        sent += 1;
        // Once dropped, the relay refuses messages to it; an error means it is gone.
        if sent % 50 == 0 {
            c[0].send(r#"{"type":"rooms"}"#).await;
            loop {
                let v = c[0].recv_json().await;
                match v["type"].as_str() {
                    Some("rooms") => break,
                    Some("user-left") => {
                        assert_eq!(v["clientId"], slow_id.as_str());
                    }
                    Some("error") => assert_eq!(v["code"], "target-not-in-room"),
                    _ => panic!("unexpected {v}"),
                }
            }
            let mut rooms_req = Client::connect(&server.url()).await;
            rooms_req.send(r#"{"type":"rooms"}"#).await;
            let rooms = rooms_req.recv_json().await;
            if rooms["rooms"][0]["memberCount"] == 2 {
                break sent;
            }
        }
    };
    assert!(dropped < 2000);
    // The other member was told and the room keeps working.
    let other = c[1].recv_json().await;
    assert_eq!(
        (other["type"].as_str(), other["clientId"].as_str()),
        (Some("user-left"), Some(slow_id.as_str()))
    );
    c[1].send(r#"{"type":"message","content":"still here"}"#)
        .await;
    loop {
        let v = c[0].recv_json().await;
        if v["type"] == "message" {
            assert_eq!(v["content"], "still here");
            break;
        }
    }
    drop(slow);
}
