//! Regression tests of the holes found by attacking the relay, one or more per finding: each
//! reproduces the attack against the real relay and checks that it now fails, and that
//! legitimate clients (other addresses, resumed sessions) are not caught by the fix.
//!
//! Several tests connect from other loopback addresses (127.0.0.2, ...): Linux routes the whole
//! 127.0.0.0/8 to `lo`, so each is a distinct client address for the per-address limits.

mod common;

use common::{
    Client, DEADLINE, SECRET, TestServer, TlsFixture, config, eventually, metric_reaches, open,
    room_of, sample, scrape, tcp_from, token, token_url, with_auth,
};
use protocol::ServerMessage;
use serde_json::{Value, json};
use server::Config;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn join(room: &str, password: &str) -> Value {
    json!({"type": "join", "roomId": room, "password": password})
}

/// Sends `bytes` on `s` and reads until the relay closes it; what it answered, as text.
async fn send_and_read_all(s: &mut TcpStream, bytes: &[u8]) -> String {
    s.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    timeout(DEADLINE, s.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// Whether the relay ends `s` without answering (EOF or reset) within the deadline.
async fn closed_without_answer(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match timeout(DEADLINE, s.read(&mut buf)).await {
        Ok(Ok(0) | Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

mod password_guessing {
    use super::*;

    /// Finding 1: one open connection guessed a 4-digit password at ~75 guesses/s, because the
    /// address's block was only checked when a connection was admitted.
    #[tokio::test]
    async fn a_blocked_address_cannot_go_on_guessing_on_connections_already_open() {
        let server = TestServer::start(Config {
            auth_failures_per_ip: 5,
            ..config()
        })
        .await;
        let (mut owner, _) = Client::connect_from([127, 0, 0, 2], &server.url()).await;
        owner.send_json(join("vault", "4711")).await;
        assert_eq!(owner.recv_json().await["type"], "joined");

        // The guesser's two connections are open before its first failure.
        let mut guesser = server.client().await;
        let mut second = server.client().await;
        for guess in 0..5 {
            guesser.send_json(join("vault", &guess.to_string())).await;
            let v = guesser.recv_json().await;
            assert_eq!(v["code"], "bad-password", "guess {guess}: {v}");
        }
        // The connection that reached the limit is closed...
        let close = guesser.recv_close().await.expect("a Close frame");
        assert_eq!(close.code, CloseCode::Policy, "{close}");
        assert!(close.reason.contains("failed"), "{close}");
        // ...and the other one may not guess either, not even rightly.
        second.send_json(join("vault", "4711")).await;
        let v = second.recv_json().await;
        assert_eq!(
            (v["type"].as_str(), v["code"].as_str()),
            (Some("join-error"), Some("throttled")),
            "{v}"
        );
        // It keeps its connection for everything else.
        second.assert_usable().await;
        // Other addresses are not affected, and nobody got in.
        let (mut friend, _) = Client::connect_from([127, 0, 0, 3], &server.url()).await;
        friend.send_json(join("vault", "4711")).await;
        assert_eq!(friend.recv_json().await["type"], "joined");
        assert!(matches!(
            owner.recv().await,
            ServerMessage::UserJoined { client_id, .. } if client_id == friend.id
        ));
    }
}

mod ghost_sessions {
    use super::*;

    fn resumable(cap_per_ip: usize, cap: usize, grace: Duration) -> Config {
        Config {
            max_connections_per_ip: cap_per_ip,
            max_connections: cap,
            resume_grace: grace,
            ..config()
        }
    }

    /// Connects from `source`, joins a room of its own, and loses the connection: a session
    /// kept for resuming. Returns its resume token.
    async fn ghost(server: &TestServer, source: [u8; 4], room: &str) -> String {
        let (mut c, welcome) = Client::connect_from(source, &server.url()).await;
        c.join(room).await;
        c.lose();
        welcome["resumeToken"].as_str().expect("a token").to_owned()
    }

    /// Finding 2: connect, join, reset: the session stayed for the resume grace while its
    /// connection slot and its address's ticket were given back, so one address could hold
    /// any number of sessions (and rooms).
    #[tokio::test]
    async fn lost_sessions_count_against_their_address_and_resuming_reuses_the_slot() {
        let server = TestServer::start(resumable(3, 100, Duration::from_secs(30))).await;
        let mut tokens = Vec::new();
        for i in 0..3 {
            tokens.push(ghost(&server, [127, 0, 0, 5], &format!("ghost{i}")).await);
        }
        metric_reaches(&server, "relay_connections", 0.0).await;
        metric_reaches(&server, "relay_detached_sessions", 3.0).await;
        let refused = Client::try_connect_from([127, 0, 0, 5], &server.url()).await;
        match refused {
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                assert_eq!(res.status().as_u16(), 429)
            }
            other => panic!("a fourth session from one address got in: {other:?}"),
        }
        assert_eq!(sample(&scrape(&server).await, "relay_rooms"), 3.0);
        // Coming back with its token takes the session's own slot, at the cap.
        let url = format!("{}?resume={}", server.url(), tokens[0]);
        let (_back, welcome) = Client::connect_from([127, 0, 0, 5], &url).await;
        assert_eq!(welcome["resumed"], true, "{welcome}");
        metric_reaches(&server, "relay_detached_sessions", 2.0).await;
        // Other addresses are not affected.
        Client::connect_from([127, 0, 0, 6], &server.url()).await;
    }

    #[tokio::test]
    async fn lost_sessions_count_against_the_relay_until_their_grace_ends() {
        let grace = Duration::from_secs(2);
        let server = TestServer::start(resumable(0, 2, grace)).await;
        ghost(&server, [127, 0, 0, 7], "g1").await;
        ghost(&server, [127, 0, 0, 7], "g2").await;
        metric_reaches(&server, "relay_connections", 0.0).await;
        let refused = Client::try_connect_from([127, 0, 0, 8], &server.url()).await;
        match refused {
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                assert_eq!(res.status().as_u16(), 503)
            }
            other => panic!("a third session got in past the cap of two: {other:?}"),
        }
        // When the grace period ends, the sessions end and give their slots back.
        let wait = Instant::now();
        metric_reaches(&server, "relay_detached_sessions", 0.0).await;
        assert!(wait.elapsed() <= grace + Duration::from_secs(1));
        Client::connect_from([127, 0, 0, 8], &server.url()).await;
    }

    /// Finding 2, second part: a connection that broke the protocol was kept as resumable.
    #[tokio::test]
    async fn a_protocol_error_ends_the_session_instead_of_keeping_it() {
        let server = TestServer::start(resumable(0, 100, Duration::from_secs(30))).await;
        let mut a = room_of(&server, "r", 1).await.remove(0);
        let (mut b, welcome) = Client::connect_with_welcome(&server.url()).await;
        b.join("r").await;
        assert!(matches!(a.recv().await, ServerMessage::UserJoined { .. }));
        // An unmasked frame: clients must mask theirs (RFC 6455, 5.1).
        let MaybeTlsStream::Plain(tcp) = b.ws.get_mut() else {
            panic!("plain TCP");
        };
        tcp.write_all(&[0x81, 0x02, b'h', b'i']).await.unwrap();
        let close = b.recv_close().await.expect("a Close frame");
        assert_eq!(close.code, CloseCode::Protocol, "{close}");
        // The room is told at once, and the token is worth nothing.
        assert!(matches!(
            a.recv().await,
            ServerMessage::UserLeft { client_id, .. } if client_id == b.id
        ));
        let token = welcome["resumeToken"].as_str().unwrap();
        let url = format!("{}?resume={token}", server.url());
        let (mut again, welcome) = Client::connect_with_welcome(&url).await;
        assert_ne!(welcome["resumed"], true, "{welcome}");
        assert_eq!(again.expect_error().await["code"], "resume-failed");
    }
}

mod request_heads {
    use super::*;

    /// A connection from `source` that sent a head without its end.
    async fn unfinished_head(source: [u8; 4], server: &TestServer) -> TcpStream {
        let mut s = tcp_from(source, server.addr).await;
        s.write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
            .await
            .unwrap();
        s
    }

    /// Finding 3: 2,000 sockets of one address, each with an unfinished 300 KB request head,
    /// took the relay to 700 MiB: no per-address cap applied before the upgrade.
    #[tokio::test]
    async fn unfinished_heads_are_capped_per_address() {
        let server = TestServer::start(Config {
            max_pending_per_ip: 4,
            ..config()
        })
        .await;
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(unfinished_head([127, 0, 0, 9], &server).await);
        }
        metric_reaches(&server, "relay_pending_heads", 4.0).await;
        let mut fifth = tcp_from([127, 0, 0, 9], server.addr).await;
        fifth.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        assert!(
            closed_without_answer(&mut fifth).await,
            "a fifth unfinished head from one address is not held"
        );
        // Another address is served meanwhile.
        let mut other = tcp_from([127, 0, 0, 10], server.addr).await;
        let answer =
            send_and_read_all(&mut other, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        // Finishing a held head frees its place for another unfinished one.
        let answer = send_and_read_all(&mut held[0], b"1\r\nHost: x\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        metric_reaches(&server, "relay_pending_heads", 3.0).await;
        let mut next = unfinished_head([127, 0, 0, 9], &server).await;
        metric_reaches(&server, "relay_pending_heads", 4.0).await;
        let answer = send_and_read_all(&mut next, b"1\r\nHost: x\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    /// Unfinished heads from many addresses are bounded by the relay-wide cap.
    #[tokio::test]
    async fn unfinished_heads_are_capped_over_all_addresses() {
        let server = TestServer::start(Config {
            max_pending: 3,
            ..config()
        })
        .await;
        let mut held = Vec::new();
        for source in 11..14 {
            held.push(unfinished_head([127, 0, 0, source], &server).await);
        }
        metric_reaches(&server, "relay_pending_heads", 3.0).await;
        let mut fourth = tcp_from([127, 0, 0, 14], server.addr).await;
        fourth
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        assert!(closed_without_answer(&mut fourth).await);
        // A head that arrives whole is not held back by the cap.
        let mut whole = tcp_from([127, 0, 0, 15], server.addr).await;
        let answer =
            send_and_read_all(&mut whole, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    /// Finding 3: a head the relay gave up on at 64 KiB went to hyper, which buffered up to
    /// ~400 KB more for another full timeout.
    #[tokio::test]
    async fn a_head_that_reaches_64_kib_is_refused_at_once() {
        let server = TestServer::start(config()).await;
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        let mut head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
        head.resize(64 * 1024, b'a');
        let answer = send_and_read_all(&mut s, &head).await;
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    }

    /// One deadline for the TLS handshake and the head: a slow handshake leaves the head less
    /// time (each had its own 10 s before).
    #[tokio::test]
    async fn a_slow_tls_handshake_and_a_trickled_head_share_one_deadline() {
        let fixture = TlsFixture::new("slow-tls");
        let deadline = Duration::from_millis(1000);
        let server = TestServer::start(fixture.serving(Config {
            header_timeout: deadline,
            ..config()
        }))
        .await;
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        let started = Instant::now();
        // Between the client and the relay: the ClientHello's last byte waits 600 ms.
        let (client_side, mut pump_side) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let mut hello = vec![0u8; 16 * 1024];
            let n = pump_side.read(&mut hello).await.unwrap();
            tcp.write_all(&hello[..n - 1]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(600)).await;
            tcp.write_all(&hello[n - 1..n]).await.unwrap();
            let _ = tokio::io::copy_bidirectional(&mut pump_side, &mut tcp).await;
        });
        let tls = fixture.connect(client_side).await;
        let (mut reader, mut writer) = tokio::io::split(tls);
        writer
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        writer.flush().await.unwrap();
        let trickle = async {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let more = async {
                    writer.write_all(b"X-A: b\r\n").await?;
                    writer.flush().await
                };
                if more.await.is_err() {
                    break;
                }
            }
        };
        let closed = async {
            let mut buf = [0u8; 64];
            let _ = reader.read(&mut buf).await;
        };
        timeout(DEADLINE, async {
            tokio::select! {
                () = trickle => {}
                () = closed => {}
            }
        })
        .await
        .expect("closed within the deadline");
        let took = started.elapsed();
        assert!(
            took >= deadline && took < deadline + Duration::from_millis(400),
            "closed after {took:?}"
        );
    }

    /// One deadline for the whole head: bytes that trickle in do not extend it.
    #[tokio::test]
    async fn a_trickled_head_ends_at_one_deadline() {
        let timeout_after = Duration::from_millis(800);
        let server = TestServer::start(Config {
            header_timeout: timeout_after,
            ..config()
        })
        .await;
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        let started = Instant::now();
        s.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        let trickle = async {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if s.write_all(b"X-A: b\r\n").await.is_err() {
                    return;
                }
            }
        };
        let _ = timeout(DEADLINE, trickle).await;
        let took = started.elapsed();
        assert!(
            took >= timeout_after && took < timeout_after + Duration::from_secs(1),
            "closed after {took:?}"
        );
    }
}

mod room_list {
    use super::*;

    fn listing(c: Config) -> Config {
        Config {
            room_list: true,
            ..c
        }
    }

    async fn rooms(c: &mut Client) -> Value {
        c.send(r#"{"type":"rooms"}"#).await;
        let v = c.recv_json().await;
        assert_eq!(v["type"], "rooms", "{v}");
        v
    }

    fn ids(list: &Value) -> Vec<&str> {
        list["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn listing_is_off_unless_configured() {
        let server = TestServer::start(Config::default()).await;
        let mut c = server.client().await;
        c.send(r#"{"type":"rooms"}"#).await;
        let v = c.expect_error().await;
        assert_eq!(v["code"], "unknown-type", "{v}");
    }

    /// Finding 4: the list named password-protected rooms and ignored the token's rooms.
    #[tokio::test]
    async fn the_list_hides_password_rooms_and_rooms_outside_the_token() {
        let server = TestServer::start(listing(with_auth())).await;
        let mut members = Vec::new();
        for (user, room, password) in [
            ("a", "open1", None),
            ("b", "open2", None),
            ("c", "secret", Some("pw")),
        ] {
            let mut c = Client::connect(&token_url(&server, &token(user, &[]))).await;
            c.send_json(json!({"type": "join", "roomId": room, "password": password}))
                .await;
            assert_eq!(c.recv_json().await["type"], "joined");
            members.push(c);
        }
        let mut any = Client::connect(&token_url(&server, &token("d", &[]))).await;
        assert_eq!(ids(&rooms(&mut any).await), ["open1", "open2"]);
        let limited = token("e", &["open2", "secret", "absent"]);
        let mut limited = Client::connect(&token_url(&server, &limited)).await;
        assert_eq!(ids(&rooms(&mut limited).await), ["open2"]);
    }

    /// Finding 4: 1,000 rooms with long escaped ids made a 16-byte request into an 813 KB
    /// answer; answers are bounded in bytes now, and cost their size in rate tokens.
    #[tokio::test]
    async fn answers_are_bounded_in_bytes_and_charged_by_size() {
        let server = TestServer::start(listing(Config {
            rate_limit: 50,
            max_connections_per_ip: 0,
            ..config()
        }))
        .await;
        let mut members = Vec::new();
        for i in 0..200 {
            let mut c = server.client().await;
            c.join(&format!("{i:03}{}", "😀".repeat(125))).await;
            members.push(c);
        }
        let mut c = server.client().await;
        c.send(r#"{"type":"rooms"}"#).await;
        let text = c.recv_text().await;
        assert!(text.len() <= 64 * 1024, "{} bytes", text.len());
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["truncated"], true);
        assert!(ids(&v).len() >= 50, "{} rooms listed", ids(&v).len());
        // A few more lists use the connection's whole burst of 200 messages' worth.
        let mut limited = false;
        for _ in 0..5 {
            c.send(r#"{"type":"rooms"}"#).await;
            let v = c.recv_json().await;
            limited |= v["code"] == "rate-limited";
        }
        assert!(limited, "six 64 KiB answers in a row were not limited");
    }
}

mod resume {
    use super::*;

    /// Finding 5: a session in room A resumed with a token limited to room B stayed in A.
    #[tokio::test]
    async fn resuming_checks_the_new_tokens_rooms() {
        let server = TestServer::start(Config {
            resume_grace: Duration::from_secs(30),
            ..with_auth()
        })
        .await;
        let mut m = Client::connect(&token_url(&server, &token("m", &["a"]))).await;
        m.join("a").await;
        let url = token_url(&server, &token("alice", &["a"]));
        let (mut alice, welcome) = Client::connect_with_welcome(&url).await;
        alice.join("a").await;
        assert!(matches!(m.recv().await, ServerMessage::UserJoined { .. }));
        let resume_token = welcome["resumeToken"].as_str().unwrap().to_owned();
        let alice_id = alice.id.clone();
        alice.lose();
        let url = format!(
            "{}&resume={resume_token}",
            token_url(&server, &token("alice", &["b"]))
        );
        let (mut back, welcome) = Client::connect_with_welcome(&url).await;
        assert_ne!(welcome["resumed"], true, "{welcome}");
        let e = back.expect_error().await;
        assert_eq!(e["code"], "resume-failed", "{e}");
        // The old session is over: the room is told now, not at the end of the grace.
        assert!(matches!(
            m.recv().await,
            ServerMessage::UserLeft { client_id, .. } if client_id == alice_id
        ));
    }

    /// A resume token seen by someone else (a proxy's log) does not let another user end, or
    /// take, the session.
    #[tokio::test]
    async fn another_users_token_cannot_resume_or_end_a_session() {
        let server = TestServer::start(Config {
            resume_grace: Duration::from_secs(30),
            ..with_auth()
        })
        .await;
        let mut m = Client::connect(&token_url(&server, &token("m", &[]))).await;
        m.join("a").await;
        let url = token_url(&server, &token("alice", &[]));
        let (mut alice, welcome) = Client::connect_with_welcome(&url).await;
        alice.join("a").await;
        assert!(matches!(m.recv().await, ServerMessage::UserJoined { .. }));
        let resume_token = welcome["resumeToken"].as_str().unwrap();
        let url = format!(
            "{}&resume={resume_token}",
            token_url(&server, &token("mallory", &[]))
        );
        let mut ws = open(url).await.expect("upgraded");
        let first = next_json(&mut ws).await;
        assert_eq!(first["code"], "resume-failed", "{first}");
        // Alice's session goes on, untouched.
        alice
            .send(r#"{"type":"message","content":"still here"}"#)
            .await;
        assert_eq!(m.recv_json().await["content"], "still here");
    }

    /// A connection that comes to resume a detached session takes its slot; when it then fails
    /// to authenticate, the slot goes back and the session can still be resumed.
    #[tokio::test]
    async fn a_resume_that_fails_to_authenticate_leaves_the_session_resumable() {
        let server = TestServer::start(Config {
            resume_grace: Duration::from_secs(30),
            max_connections_per_ip: 1,
            ..with_auth()
        })
        .await;
        let url = token_url(&server, &token("alice", &[]));
        let (mut alice, welcome) = Client::connect_with_welcome(&url).await;
        alice.join("a").await;
        let resume_token = welcome["resumeToken"].as_str().unwrap().to_owned();
        alice.lose();
        metric_reaches(&server, "relay_detached_sessions", 1.0).await;
        metric_reaches(&server, "relay_connections", 0.0).await;
        let bad = format!("{}?resume={resume_token}&token=garbage", server.url());
        let mut ws = open(bad).await.expect("upgraded with the session's slot");
        assert_eq!(next_json(&mut ws).await["code"], "unauthorized");
        let url = format!(
            "{}&resume={resume_token}",
            token_url(&server, &token("alice", &[]))
        );
        // The refused connection gives the slot back as it ends, just after its answer.
        let ws = eventually("the slot given back", || async {
            Client::try_connect_from([127, 0, 0, 1], &url).await.ok()
        })
        .await;
        let (_back, welcome) = Client::welcomed(ws).await;
        assert_eq!(welcome["resumed"], true, "{welcome}");
    }

    /// Finding 5, second part: resuming a live session dropped its connection without a word.
    #[tokio::test]
    async fn the_connection_a_resume_takes_over_is_told_why_it_ends() {
        let server = TestServer::start(Config {
            resume_grace: Duration::from_secs(30),
            ..config()
        })
        .await;
        let (mut first, welcome) = Client::connect_with_welcome(&server.url()).await;
        let url = format!(
            "{}?resume={}",
            server.url(),
            welcome["resumeToken"].as_str().unwrap()
        );
        let (_second, welcome) = Client::connect_with_welcome(&url).await;
        assert_eq!(welcome["resumed"], true);
        let close = first.recv_close().await.expect("a Close frame");
        assert_eq!(u16::from(close.code), 4000, "{close}");
        assert!(close.reason.contains("resumed"), "{close}");
    }
}

mod identity {
    use super::*;

    /// Finding 6: `register` accepted another member's client id or user id.
    #[tokio::test]
    async fn members_cannot_take_each_others_ids() {
        let server = TestServer::start(config()).await;
        let mut c = room_of(&server, "r", 2).await;
        c[0].send(r#"{"type":"register","userId":"alice"}"#).await;
        assert_eq!(c[0].recv_json().await["userId"], "alice");
        let a_id = c[0].id.to_string();
        for taken in ["alice", a_id.as_str()] {
            c[1].send_json(json!({"type": "register", "userId": taken}))
                .await;
            let e = c[1].expect_error().await;
            assert_eq!(e["code"], "user-id-taken", "{e}");
        }
        // A joiner named like a member is refused, and the room is not told.
        let mut late = server.client().await;
        late.send(r#"{"type":"register","userId":"alice"}"#).await;
        assert_eq!(late.recv_json().await["userId"], "alice");
        late.send(r#"{"type":"join","roomId":"r"}"#).await;
        let v = late.recv_json().await;
        assert_eq!(
            (v["type"].as_str(), v["code"].as_str()),
            (Some("join-error"), Some("user-id-taken"))
        );
        c[0].assert_usable().await;
        c[1].assert_usable().await;
    }

    /// With tokens the user id is the token's: one user may be in a room from two devices.
    #[tokio::test]
    async fn one_token_user_may_join_a_room_twice() {
        let server = TestServer::start(with_auth()).await;
        let url = token_url(&server, &token("ann", &[]));
        let mut laptop = Client::connect(&url).await;
        let mut phone = Client::connect(&url).await;
        laptop.join("r").await;
        assert_eq!(phone.join("r").await, vec![laptop.id.clone()]);
    }

    /// Finding 6: ids with NUL, other control characters or bidi overrides were accepted.
    #[tokio::test]
    async fn ids_with_control_or_bidi_characters_are_refused() {
        let server = TestServer::start(config()).await;
        let mut c = server.client().await;
        for bad in [
            r#"{"type":"register","userId":"evil\u202etxt.exe"}"#,
            r#"{"type":"register","userId":"nul\u0000"}"#,
            r#"{"type":"join","roomId":"line\nbreak"}"#,
            r#"{"type":"join","roomId":"\u001b[31mred"}"#,
        ] {
            c.send(bad).await;
            let e = c.expect_error().await;
            assert_eq!(e["code"], "invalid-field", "{bad}: {e}");
        }
        c.assert_usable().await;
    }

    #[tokio::test]
    async fn a_token_whose_sub_has_control_characters_is_refused() {
        let server = TestServer::start(with_auth()).await;
        let bad = token("al\u{0}ice", &[]);
        let mut ws = open(token_url(&server, &bad)).await.expect("upgraded");
        let first = super::next_json(&mut ws).await;
        assert_eq!(first["code"], "unauthorized", "{first}");
    }
}

/// The next text frame as JSON.
async fn next_json(ws: &mut common::Ws) -> Value {
    use futures_util::StreamExt;
    loop {
        match timeout(DEADLINE, ws.next()).await.expect("in time") {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => {
                return serde_json::from_str(&t).unwrap();
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

mod tokens {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    /// An HS256 token with this exact header and claims text.
    fn signed(header: &str, claims: &str) -> String {
        use hmac::Mac;
        let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);
        let input = format!("{}.{}", b64(header), b64(claims));
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{input}.{sig}")
    }

    async fn refused(server: &TestServer, token: &str) -> String {
        let mut ws = open(token_url(server, token)).await.expect("upgraded");
        let first = next_json(&mut ws).await;
        assert_eq!(first["code"], "unauthorized", "{token}: {first}");
        first["message"].as_str().unwrap().to_owned()
    }

    /// Finding 7: an `exp` of 1e308, 2^70 or u64::MAX meant "never expires".
    #[tokio::test]
    async fn tokens_that_expire_too_far_ahead_are_refused() {
        let server = TestServer::start(with_auth()).await;
        let header = r#"{"alg":"HS256","typ":"JWT"}"#;
        let two_years = server::auth::now_unix() + 2 * 366 * 24 * 3600;
        for exp in [
            "1e308".to_owned(),
            "1180591620717411303424".to_owned(),
            u64::MAX.to_string(),
            two_years.to_string(),
        ] {
            let token = signed(header, &format!(r#"{{"sub":"alice","exp":{exp}}}"#));
            let message = refused(&server, &token).await;
            assert!(message.contains("exp"), "{exp}: {message}");
        }
        // Within a year ahead is fine.
        let in_300_days = server::auth::now_unix() + 300 * 24 * 3600;
        let ok = signed(header, &format!(r#"{{"sub":"alice","exp":{in_300_days}}}"#));
        Client::connect(&token_url(&server, &ok)).await;
    }

    /// Finding 7: duplicate keys in a token's header or claims were read "last one wins".
    #[tokio::test]
    async fn tokens_with_duplicate_keys_are_refused() {
        let server = TestServer::start(with_auth()).await;
        let exp = server::auth::now_unix() + 600;
        let header = r#"{"alg":"HS256","typ":"JWT"}"#;
        let twice_sub = format!(r#"{{"sub":"alice","sub":"admin","exp":{exp}}}"#);
        let message = refused(&server, &signed(header, &twice_sub)).await;
        assert!(message.contains("duplicate"), "{message}");
        let twice_alg = r#"{"alg":"HS256","alg":"HS256"}"#;
        let claims = format!(r#"{{"sub":"alice","exp":{exp}}}"#);
        let message = refused(&server, &signed(twice_alg, &claims)).await;
        assert!(message.contains("duplicate"), "{message}");
    }
}

mod upgrade {
    use super::*;

    async fn status_of(server: &TestServer, request: &str) -> String {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut answer = vec![0u8; 4096];
        let n = timeout(DEADLINE, s.read(&mut answer))
            .await
            .expect("an answer in time")
            .unwrap();
        String::from_utf8_lossy(&answer[..n])
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    fn request(headers: &str) -> String {
        format!(
            "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\n{headers}\r\n"
        )
    }

    const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

    /// Finding 8: an empty or junk key, a body on the upgrade, two `Origin`s all got a 101.
    #[tokio::test]
    async fn malformed_upgrades_are_refused() {
        let server = TestServer::start(Config {
            allowed_origins: vec!["https://good.example".into()],
            ..config()
        })
        .await;
        let origin = "Origin: https://good.example\r\n";
        for (what, headers, status) in [
            (
                "empty key",
                format!("Sec-WebSocket-Key: \r\n{origin}"),
                "400",
            ),
            (
                "junk key",
                format!("Sec-WebSocket-Key: not base64 at all\r\n{origin}"),
                "400",
            ),
            (
                "15-byte key",
                format!("Sec-WebSocket-Key: MTIzNDU2Nzg5MDEyMzQ1\r\n{origin}"),
                "400",
            ),
            ("two keys", format!("{KEY}{KEY}{origin}"), "400"),
            (
                "a body",
                format!("{KEY}{origin}Content-Length: 5\r\n"),
                "400",
            ),
            (
                "chunked body",
                format!("{KEY}{origin}Transfer-Encoding: chunked\r\n"),
                "400",
            ),
            (
                "two origins",
                format!("{KEY}{origin}Origin: https://evil.example\r\n"),
                "400",
            ),
        ] {
            let line = status_of(&server, &request(&headers)).await;
            assert!(line.contains(&format!(" {status} ")), "{what}: {line}");
        }
        let line = status_of(&server, &request(&format!("{KEY}{origin}"))).await;
        assert!(line.contains(" 101 "), "the well-formed upgrade: {line}");
    }
}
