//! The connection lifecycle around the protocol: plain HTTP endpoints, the heartbeat that drops
//! silent clients, and graceful shutdown with a Close frame to every client.

mod common;

use common::{TestServer, config, http_get, room_of};
use protocol::ServerMessage;
use server::Config;
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn plain_http_endpoints_answer() {
    let server = TestServer::default().await;
    let root = http_get(server.addr, "/").await;
    assert!(root.starts_with("HTTP/1.1 200"), "{root}");
    assert!(root.contains("text/plain"));
    let health = http_get(server.addr, "/healthz").await;
    assert!(
        health.starts_with("HTTP/1.1 200") && health.ends_with("ok\n"),
        "{health}"
    );
    assert!(
        http_get(server.addr, "/nope")
            .await
            .starts_with("HTTP/1.1 404")
    );
}

#[tokio::test]
async fn a_silent_client_is_dropped_and_its_room_told() {
    let server = TestServer::start(Config {
        ping_interval: Duration::from_millis(50),
        idle_timeout: Duration::from_millis(200),
        // Without resuming, the room is told at once (resume.rs covers the grace period).
        resume_grace: Duration::ZERO,
        ..config()
    })
    .await;
    let mut c = room_of(&server, "r", 2).await;
    // c[1] stops reading, so it never answers pings. c[0] keeps reading, so tungstenite
    // answers its pings and it stays well past the idle timeout.
    let silent = c[1].id.clone();
    // c[1]'s last frame: the idle deadline runs from when the relay got it.
    let started = tokio::time::Instant::now();
    c[1].assert_usable().await;
    match c[0].recv().await {
        ServerMessage::UserLeft { client_id, .. } => assert_eq!(client_id, silent),
        other => panic!("expected user-left, got {other:?}"),
    }
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "dropped before the deadline"
    );
    c[0].assert_usable().await;
    let frame = c[1]
        .recv_close()
        .await
        .expect("the silent client gets a close frame");
    assert_eq!(frame.code, CloseCode::Away);
}

#[tokio::test]
async fn shutdown_closes_every_client_and_returns() {
    let server = TestServer::start(config()).await;
    let url = server.url();
    let mut c = room_of(&server, "r", 2).await;
    let mut lone = server.client().await;
    server.shutdown().await;
    for client in c.iter_mut().chain(std::iter::once(&mut lone)) {
        let frame = client.recv_close().await.expect("a close frame");
        assert_eq!(frame.code, CloseCode::Away);
    }
    assert!(
        tokio_tungstenite::connect_async(url).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn a_client_close_gets_the_close_reply() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    c.ws.send(Message::Close(None)).await.unwrap();
    let reply = tokio::time::timeout(common::DEADLINE, c.ws.next())
        .await
        .unwrap();
    assert!(
        matches!(reply, Some(Ok(Message::Close(_)))),
        "close reply, got {reply:?}"
    );
}

#[tokio::test]
async fn the_built_app_is_served_and_nothing_outside_it() {
    let dir = std::env::temp_dir().join(format!("relay-static-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("index.html"), "<!doctype html><title>app</title>").unwrap();
    std::fs::write(dir.join("app_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(dir.join("sub/x.js"), "export {}").unwrap();
    let server = TestServer::start(Config {
        static_dir: Some(dir.clone()),
        ..config()
    })
    .await;

    let index = http_get(server.addr, "/").await;
    assert!(index.starts_with("HTTP/1.1 200"), "{index}");
    assert!(
        index.contains("text/html") && index.ends_with("<title>app</title>"),
        "{index}"
    );
    let wasm = http_get(server.addr, "/app_bg.wasm").await;
    assert!(wasm.contains("content-type: application/wasm"), "{wasm}");
    assert!(
        http_get(server.addr, "/sub/x.js")
            .await
            .contains("text/javascript")
    );
    for bad in [
        "/../Cargo.toml",
        "/sub/../index.html",
        "/%2e%2e/etc/passwd",
        "/.hidden",
        "/nope",
    ] {
        assert!(
            http_get(server.addr, bad).await.starts_with("HTTP/1.1 404"),
            "{bad}"
        );
    }
    // The WebSocket and the health check still work on the same port.
    assert!(http_get(server.addr, "/healthz").await.ends_with("ok\n"));
    let mut c = server.client().await;
    c.assert_usable().await;
    std::fs::remove_dir_all(dir).unwrap();
}
