//! Several relay instances sharing one real `redis-server` (`--store redis`): clients on
//! different instances call each other exactly as on one instance; room caps hold exactly
//! under concurrent joins spread over instances; a crashed instance's clients leave their rooms
//! within a bounded time; a Redis outage keeps local work going, shows in `/readyz`, and heals
//! when Redis returns.

mod common;

use common::{Client, TestServer, config, http_get};
use protocol::ServerMessage;
use serde_json::json;
use server::Config;
use server::testing::RedisServer;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// An instance TTL short enough for crash tests: heartbeats every 200 ms.
const TTL: Duration = Duration::from_millis(600);

fn instance(redis: &RedisServer, prefix: &str, id: &str) -> Config {
    Config {
        store: "redis".into(),
        redis_url: redis.url(),
        redis_prefix: prefix.into(),
        instance_id: Some(id.into()),
        instance_ttl: TTL,
        ..config()
    }
}

async fn joined_members(c: &mut Client, room: &str) -> Vec<String> {
    c.join(room).await.iter().map(|m| m.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_on_different_instances_call_each_other() {
    let redis = RedisServer::start();
    let one = TestServer::start(instance(&redis, "t1:", "one")).await;
    let two = TestServer::start(instance(&redis, "t1:", "two")).await;
    let three = TestServer::start(instance(&redis, "t1:", "three")).await;
    let mut a = one.client().await;
    let mut b = two.client().await;
    let mut c = three.client().await;
    b.send(r#"{"type":"register","userId":"bob"}"#).await;
    b.recv().await;

    assert!(joined_members(&mut a, "r").await.is_empty());
    let joined = {
        b.send(r#"{"type":"join","roomId":"r"}"#).await;
        b.recv_json().await
    };
    assert_eq!(joined["members"], json!([a.id.as_str()]));
    assert_eq!(
        a.recv_text().await,
        format!(
            r#"{{"type":"user-joined","userId":"bob","clientId":"{}"}}"#,
            b.id
        )
    );

    // Offer, answer and candidates cross instances untouched, stamped with the sender.
    let sdp = r#"{"type":"offer","sdp":"v=0\r\n"}"#;
    b.send(format!(
        r#"{{"type":"offer","targetId":"{}","sdp":{sdp}}}"#,
        a.id
    ))
    .await;
    assert_eq!(
        a.recv_text().await,
        format!(
            r#"{{"type":"offer","fromId":"{}","fromUserId":"bob","sdp":{sdp}}}"#,
            b.id
        )
    );
    a.send(format!(
        r#"{{"type":"answer","targetId":"{}","sdp":"v=0 a"}}"#,
        b.id
    ))
    .await;
    assert_eq!(b.recv_json().await["sdp"], "v=0 a");
    for n in 0..4 {
        b.send_json(json!({"type": "candidate", "targetId": a.id.as_str(), "candidate": {"n": n}}))
            .await;
    }
    for n in 0..4 {
        let got = a.recv_json().await;
        assert_eq!(
            (got["type"].as_str(), got["candidate"]["n"].as_i64()),
            (Some("candidate"), Some(n))
        );
    }

    // A third instance: broadcasts reach everyone else, direct messages only their target.
    c.join("r").await;
    for x in [&mut a, &mut b] {
        assert!(matches!(x.recv().await, ServerMessage::UserJoined { .. }));
    }
    c.send(r#"{"type":"message","content":"hi all"}"#).await;
    assert_eq!(a.recv_json().await["content"], "hi all");
    assert_eq!(b.recv_json().await["content"], "hi all");
    a.send_json(json!({"type": "message", "targetId": c.id.as_str(), "content": "just c"}))
        .await;
    assert_eq!(c.recv_json().await["content"], "just c");
    b.assert_usable().await; // b got nothing more than its own answer.

    // Leaving and disconnecting are told across instances.
    c.send(r#"{"type":"leave"}"#).await;
    assert!(matches!(c.recv().await, ServerMessage::Left { .. }));
    for x in [&mut a, &mut b] {
        assert!(
            matches!(x.recv().await, ServerMessage::UserLeft { client_id, .. } if client_id == c.id)
        );
    }
    let b_id = b.id.clone();
    b.ws.close(None).await.unwrap();
    assert!(
        matches!(a.recv().await, ServerMessage::UserLeft { client_id, .. } if client_id == b_id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_crosses_rooms_across_instances() {
    let redis = RedisServer::start();
    let one = TestServer::start(instance(&redis, "t2:", "one")).await;
    let two = TestServer::start(instance(&redis, "t2:", "two")).await;
    let mut a = one.client().await;
    let mut b = two.client().await;
    a.join("r1").await;
    b.join("r2").await;
    a.send_json(json!({"type": "offer", "targetId": b.id.as_str(), "sdp": "x"}))
        .await;
    assert_eq!(a.expect_error().await["code"], "target-not-in-room");
    b.assert_usable().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_caps_hold_exactly_with_joins_spread_over_instances() {
    let redis = RedisServer::start();
    let mut servers = Vec::new();
    for id in ["one", "two", "three"] {
        servers.push(
            TestServer::start(Config {
                max_members: 5,
                ..instance(&redis, "t3:", id)
            })
            .await,
        );
    }
    let mut clients = Vec::new();
    for i in 0..15 {
        clients.push(servers[i % 3].client().await);
    }
    for c in clients.iter_mut() {
        c.send(r#"{"type":"join","roomId":"crowded"}"#).await;
    }
    let mut joined = 0;
    let mut full = 0;
    for c in clients.iter_mut() {
        // The first answer to each join is `joined` or `join-error` (user-joined may follow).
        loop {
            let v = c.recv_json().await;
            match v["type"].as_str() {
                Some("joined") => {
                    joined += 1;
                    break;
                }
                Some("join-error") => {
                    assert_eq!(v["code"], "room-full");
                    full += 1;
                    break;
                }
                _ => continue,
            }
        }
    }
    assert_eq!((joined, full), (5, 10));
}

/// A relay instance in its own process, to be killed like a crashed machine.
struct Process(tokio::process::Child, std::net::SocketAddr);

async fn spawn_instance(redis: &RedisServer, prefix: &str, id: &str) -> Process {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--store",
            "redis",
            "--redis-url",
            &redis.url(),
        ])
        .args([
            "--redis-prefix",
            prefix,
            "--instance-id",
            id,
            "--instance-ttl",
            "600ms",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut line = String::new();
    let stdout = child.stdout.take().unwrap();
    tokio::time::timeout(
        common::DEADLINE,
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .unwrap()
    .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .parse()
        .unwrap();
    Process(child, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_instance_leaves_its_rooms_within_a_bounded_time() {
    let redis = RedisServer::start();
    let mut doomed = spawn_instance(&redis, "t4:", "doomed").await;
    let survivor = TestServer::start(instance(&redis, "t4:", "survivor")).await;
    let mut a = Client::connect(&format!("ws://{}/ws", doomed.1)).await;
    let mut b = survivor.client().await;
    a.join("r").await;
    b.join("r").await;
    assert!(matches!(a.recv().await, ServerMessage::UserJoined { .. }));

    doomed.0.start_kill().unwrap(); // SIGKILL: no goodbye, no clean-up of its own.
    let killed_at = tokio::time::Instant::now();
    match b.recv().await {
        ServerMessage::UserLeft { client_id, .. } => assert_eq!(client_id, a.id),
        other => panic!("expected user-left, got {other:?}"),
    }
    // Heartbeat TTL plus one maintenance period, with room for a loaded machine.
    assert!(
        killed_at.elapsed() < TTL * 4,
        "told after {:?}",
        killed_at.elapsed()
    );
    // And the room is really free of it: a newcomer sees only b.
    let mut c = survivor.client().await;
    assert_eq!(joined_members(&mut c, "r").await, vec![b.id.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_keeps_local_calls_and_heals() {
    let mut redis = RedisServer::start();
    let one = TestServer::start(instance(&redis, "t5:", "one")).await;
    let two = TestServer::start(instance(&redis, "t5:", "two")).await;
    let mut a = one.client().await;
    let mut a2 = one.client().await;
    let mut b = two.client().await;
    a.join("r").await;
    a2.join("r").await;
    assert!(matches!(a.recv().await, ServerMessage::UserJoined { .. }));
    b.join("r").await;
    for x in [&mut a, &mut a2] {
        assert!(matches!(x.recv().await, ServerMessage::UserJoined { .. }));
    }
    assert!(
        http_get(one.addr, "/readyz")
            .await
            .starts_with("HTTP/1.1 200")
    );

    redis.stop();
    // The instance notices within a maintenance period and says so.
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    while !http_get(one.addr, "/readyz")
        .await
        .starts_with("HTTP/1.1 503")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "readyz never failed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        http_get(one.addr, "/metrics")
            .await
            .contains("relay_ready 0")
    );
    // Local work goes on: two clients of the same instance still reach each other...
    a.send_json(json!({"type": "offer", "targetId": a2.id.as_str(), "sdp": "local"}))
        .await;
    assert_eq!(a2.recv_json().await["sdp"], "local");
    // ...while what needs Redis is refused clearly: a message to the other instance...
    a.send_json(json!({"type": "offer", "targetId": b.id.as_str(), "sdp": "across"}))
        .await;
    assert_eq!(a.expect_error().await["code"], "unavailable");
    // ...and a join.
    let mut late = one.client().await;
    late.send(r#"{"type":"join","roomId":"r"}"#).await;
    let e = late.recv_json().await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("join-error"), Some("unavailable"))
    );

    // Redis comes back empty: the instances register their clients and rooms again.
    redis.restart();
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    for server in [&one, &two] {
        while !http_get(server.addr, "/readyz")
            .await
            .starts_with("HTTP/1.1 200")
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "readyz never recovered"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Cross-instance work again: a newcomer on instance two sees all three.
    let mut c = two.client().await;
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    loop {
        let mut members = joined_members(&mut c, "r").await;
        members.sort();
        let mut want = vec![a.id.to_string(), a2.id.to_string(), b.id.to_string()];
        want.sort();
        if members == want {
            break;
        }
        // Both instances resync on their own maintenance tick; try again until both have.
        assert!(
            tokio::time::Instant::now() < deadline,
            "members after recovery: {members:?}"
        );
        c.send(r#"{"type":"leave"}"#).await;
        let _ = c.recv_json().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.send_json(json!({"type": "offer", "targetId": a.id.as_str(), "sdp": "across"}))
        .await;
    loop {
        let v = a.recv_json().await;
        if v["type"] == "offer" {
            assert_eq!(v["sdp"], "across");
            break;
        }
    }
}

#[tokio::test]
async fn an_unreachable_redis_at_start_is_a_clear_error_and_exit() {
    let closed = server::testing::ClosedPort::hold();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["--addr", "127.0.0.1:0", "--store", "redis"])
        .args([
            "--redis-url",
            &format!("redis://127.0.0.1:{}/", closed.port()),
        ])
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .unwrap()
        .unwrap();
    assert!(!out.status.success(), "exits with an error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot reach Redis"), "{stderr}");
    assert!(out.stdout.is_empty(), "never said it was listening");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remembered_route_does_not_reach_a_target_that_moved_rooms() {
    let redis = RedisServer::start();
    let one = TestServer::start(instance(&redis, "t6:", "one")).await;
    let two = TestServer::start(instance(&redis, "t6:", "two")).await;
    let mut a = one.client().await;
    let mut b = two.client().await;
    a.join("r").await;
    b.join("r").await;
    assert!(matches!(a.recv().await, ServerMessage::UserJoined { .. }));
    // The first offer finds b through Redis; the instance remembers where b is.
    a.send_json(json!({"type": "offer", "targetId": b.id.as_str(), "sdp": "first"}))
        .await;
    assert_eq!(b.recv_json().await["sdp"], "first");
    b.join("elsewhere").await;
    assert!(matches!(a.recv().await, ServerMessage::UserLeft { .. }));
    // Sent on the remembered route: b's instance sees b is no longer in a's room.
    a.send_json(json!({"type": "offer", "targetId": b.id.as_str(), "sdp": "second"}))
        .await;
    a.send_json(json!({"type": "message", "content": "to the room"}))
        .await;
    b.assert_usable().await; // b's next message is its own answer, not the offer.
}
