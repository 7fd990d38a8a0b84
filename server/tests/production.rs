//! The production features against the real relay: token authentication (URL token, `auth`
//! message, room claims, HS256 and EdDSA), room passwords, the origin allow-list, per-address
//! limits and throttling, TURN credentials in `welcome`, `/metrics`, readiness and draining on
//! shutdown, TLS, and the `server token` command.
//!
//! Refusals are checked the way a client sees them: an HTTP status on the upgrade, or an
//! `error`/`join-error` followed (for authentication) by a Close frame.

mod common;

use common::{
    Client, DEADLINE, SECRET, TestServer, Ws, config, eventually, http_reply, open, sample, scrape,
    token, token_url, with_auth,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use server::Config;
use server::auth::{self, issue_hs256, now_unix};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Alice's genuine signature under claims that say "admin".
fn forged_token() -> String {
    let genuine = token("alice", &[]);
    let admin = token("admin", &[]);
    let (_, signature) = genuine.rsplit_once('.').unwrap();
    let (claims, _) = admin.rsplit_once('.').unwrap();
    format!("{claims}.{signature}")
}

/// The next frame other than ping/pong; `None` when the connection ended.
async fn next_frame<S>(ws: &mut WebSocketStream<S>) -> Option<Message>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let frame = timeout(DEADLINE, ws.next())
            .await
            .expect("a frame, or the end, within the deadline");
        match frame {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(m)) => return Some(m),
            Some(Err(_)) | None => return None,
        }
    }
}

/// The next frame, which must be a JSON text message.
async fn next_json<S>(ws: &mut WebSocketStream<S>) -> Value
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match next_frame(ws).await {
        Some(Message::Text(t)) => {
            serde_json::from_str(&t).unwrap_or_else(|e| panic!("not JSON: {t}: {e}"))
        }
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// Expects the refusal of a failed authentication and nothing else: an `unauthorized` error
/// (not a `welcome`), then Close 1008, then the end. Returns the error's message.
async fn expect_unauthorized(ws: &mut Ws) -> String {
    let e = next_json(ws).await;
    assert_eq!(
        e["type"], "error",
        "expected the unauthorized error, got {e}"
    );
    assert_eq!(e["code"], "unauthorized", "{e}");
    let message = e["message"].as_str().unwrap_or_default().to_owned();
    assert!(!message.is_empty(), "an explanation in {e}");
    match next_frame(ws).await {
        Some(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Policy, "{frame}"),
        other => panic!("expected Close 1008 after {e}, got {other:?}"),
    }
    assert!(next_frame(ws).await.is_none(), "nothing after the Close");
    message
}

mod tokens {
    use super::*;

    #[tokio::test]
    async fn the_token_fixes_the_user_id_that_the_relay_stamps() {
        let server = TestServer::start(with_auth()).await;
        let mut alice = Client::connect(&token_url(&server, &token("alice", &[]))).await;
        let mut bob = Client::connect(&token_url(&server, &token("bob", &[]))).await;

        // `register` cannot change the token's user.
        alice
            .send(r#"{"type":"register","userId":"mallory"}"#)
            .await;
        assert_eq!(
            alice.recv_json().await,
            json!({"type": "registered", "userId": "alice"})
        );

        alice.join("r").await;
        bob.send(r#"{"type":"join","roomId":"r"}"#).await;
        let joined = bob.recv_json().await;
        assert_eq!(
            joined["peers"],
            json!([{"clientId": alice.id.as_str(), "userId": "alice"}]),
            "{joined}"
        );
        assert_eq!(
            alice.recv_json().await,
            json!({"type": "user-joined", "userId": "bob", "clientId": bob.id.as_str()})
        );

        bob.send(r#"{"type":"register","userId":"alice"}"#).await;
        assert_eq!(bob.recv_json().await["userId"], "bob");
        let offer = json!({"type": "offer", "targetId": alice.id.as_str(),
                           "fromUserId": "alice", "sdp": "v=0"});
        bob.send_json(offer).await;
        let got = alice.recv_json().await;
        assert_eq!(
            (
                got["type"].as_str(),
                got["fromId"].as_str(),
                got["fromUserId"].as_str()
            ),
            (Some("offer"), Some(bob.id.as_str()), Some("bob")),
            "{got}"
        );
        bob.send(r#"{"type":"message","content":"hi"}"#).await;
        assert_eq!(alice.recv_json().await["fromUserId"], "bob");
    }

    #[tokio::test]
    async fn bad_tokens_get_unauthorized_and_close_1008_without_welcome() {
        let server = TestServer::start(with_auth()).await;
        let now = now_unix();
        let expired = issue_hs256(SECRET.as_bytes(), "alice", &[], 60, now - 600);
        let forged = forged_token();
        let wrong_secret = issue_hs256(b"another secret", "alice", &[], 600, now);

        for (what, bad, needle) in [
            ("expired", expired.as_str(), "expired"),
            ("forged", forged.as_str(), "signature"),
            ("wrong secret", wrong_secret.as_str(), "signature"),
            ("garbage", "not-a-token", "malformed"),
        ] {
            let mut ws = open(token_url(&server, bad))
                .await
                .unwrap_or_else(|s| panic!("{what}: the upgrade is refused with {s}"));
            let message = expect_unauthorized(&mut ws).await;
            assert!(message.contains(needle), "{what}: {message}");
        }

        let m = scrape(&server).await;
        assert_eq!(
            sample(&m, r#"relay_auth_failures_total{reason="expired-token"}"#),
            1.0
        );
        assert_eq!(
            sample(&m, r#"relay_auth_failures_total{reason="invalid-token"}"#),
            3.0
        );
        assert_eq!(
            sample(&m, r#"relay_messages_refused_total{reason="unauthorized"}"#),
            4.0
        );
        assert_eq!(sample(&m, "relay_connections_total"), 0.0, "none got in");
        // A genuine token still works.
        let mut alice = Client::connect(&token_url(&server, &token("alice", &[]))).await;
        alice.assert_usable().await;
    }

    #[tokio::test]
    async fn without_a_url_token_the_first_message_must_be_auth() {
        let server = TestServer::start(with_auth()).await;

        let mut ws = open(server.url()).await.unwrap();
        ws.send(Message::text(
            json!({"type": "auth", "token": token("dave", &[])}).to_string(),
        ))
        .await
        .unwrap();
        let (mut dave, _) = Client::welcomed(ws).await;
        dave.send(r#"{"type":"register","userId":"eve"}"#).await;
        assert_eq!(dave.recv_json().await["userId"], "dave");
        // A second `auth` is refused but harmless.
        dave.send_json(json!({"type": "auth", "token": token("eve", &[])}))
            .await;
        dave.expect_error().await;
        dave.assert_usable().await;

        // Anything else first: refused before any welcome.
        for first in [
            r#"{"type":"join","roomId":"r"}"#,
            r#"{"type":"rooms"}"#,
            "{oops",
        ] {
            let mut ws = open(server.url()).await.unwrap();
            ws.send(Message::text(first)).await.unwrap();
            let message = expect_unauthorized(&mut ws).await;
            assert!(message.contains("auth"), "{first}: {message}");
        }

        // An `auth` message with a bad token.
        let mut ws = open(server.url()).await.unwrap();
        let bad = issue_hs256(b"another secret", "dave", &[], 600, now_unix());
        ws.send(Message::text(
            json!({"type": "auth", "token": bad}).to_string(),
        ))
        .await
        .unwrap();
        let message = expect_unauthorized(&mut ws).await;
        assert!(message.contains("signature"), "{message}");
    }

    #[tokio::test]
    async fn a_binary_first_message_is_refused_like_any_other() {
        let server = TestServer::start(with_auth()).await;
        let mut ws = open(server.url()).await.unwrap();
        ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
        expect_unauthorized(&mut ws).await;
    }

    #[tokio::test]
    async fn a_rooms_claim_limits_which_rooms_can_be_joined() {
        let server = TestServer::start(Config {
            room_list: true,
            ..with_auth()
        })
        .await;
        let url = token_url(&server, &token("erin", &["allowed"]));
        let mut erin = Client::connect(&url).await;
        let refuse = async |erin: &mut Client| {
            erin.send(r#"{"type":"join","roomId":"elsewhere"}"#).await;
            let e = erin.recv_json().await;
            assert_eq!(
                (e["type"].as_str(), e["code"].as_str(), e["roomId"].as_str()),
                (
                    Some("join-error"),
                    Some("room-not-allowed"),
                    Some("elsewhere")
                ),
                "{e}"
            );
            assert!(
                e["error"].as_str().is_some_and(|m| m.contains("elsewhere")),
                "{e}"
            );
        };
        refuse(&mut erin).await;
        assert!(erin.join("allowed").await.is_empty());
        refuse(&mut erin).await;
        // The refused join left erin where it was.
        erin.send(r#"{"type":"rooms"}"#).await;
        assert_eq!(
            erin.recv_json().await["rooms"],
            json!([{"id": "allowed", "memberCount": 1, "maxMembers": 10, "locked": false}])
        );
        let m = scrape(&server).await;
        assert_eq!(
            sample(
                &m,
                r#"relay_auth_failures_total{reason="room-not-allowed"}"#
            ),
            2.0
        );
    }

    #[tokio::test]
    async fn eddsa_tokens_verify_with_the_configured_public_key() {
        use base64::Engine;
        use ed25519_dalek::SigningKey;
        let key = SigningKey::from_bytes(&[42; 32]);
        let public =
            base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_bytes());
        let server = TestServer::start(Config {
            auth_public_key: Some(public),
            ..config()
        })
        .await;

        let good = auth::issue_eddsa(&key, "carol", &[], 600, now_unix());
        let mut carol = Client::connect(&token_url(&server, &good)).await;
        carol.send(r#"{"type":"register"}"#).await;
        assert_eq!(carol.recv_json().await["userId"], "carol");

        let other = SigningKey::from_bytes(&[7; 32]);
        let foreign = auth::issue_eddsa(&other, "carol", &[], 600, now_unix());
        let mut ws = open(token_url(&server, &foreign)).await.unwrap();
        assert!(expect_unauthorized(&mut ws).await.contains("signature"));
        // No HS256 secret is configured, so no HS256 token passes.
        let mut ws = open(token_url(&server, &token("carol", &[])))
            .await
            .unwrap();
        assert!(expect_unauthorized(&mut ws).await.contains("HS256"));
    }

    #[tokio::test]
    async fn a_connection_waiting_to_authenticate_is_closed_on_shutdown() {
        let mut server = TestServer::start(Config {
            // Far longer than the deadline: `run` must not need it.
            shutdown_timeout: Duration::from_secs(60),
            ..with_auth()
        })
        .await;
        let mut ws = open(server.url()).await.unwrap();
        server.begin_shutdown();
        match next_frame(&mut ws).await {
            Some(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Away),
            other => panic!("expected Close 1001, got {other:?}"),
        }
        timeout(DEADLINE, &mut server.handle)
            .await
            .expect("run returns without waiting for the unauthenticated client")
            .unwrap()
            .unwrap();
    }
}

mod passwords {
    use super::*;

    #[tokio::test]
    async fn a_room_password_is_required_checked_and_never_echoed() {
        const PASSWORD: &str = "correct horse 7";
        let server = TestServer::start(Config {
            room_list: true,
            ..config()
        })
        .await;
        let mut owner = server.client().await;
        let mut guest = server.client().await;
        let mut seen = Vec::new();

        owner
            .send_json(json!({"type": "join", "roomId": "r", "password": PASSWORD}))
            .await;
        seen.push(owner.recv_text().await);
        assert_eq!(seen[0], r#"{"type":"joined","roomId":"r","members":[]}"#);

        for (password, needle) in [(None, "required"), (Some("guess"), "wrong password")] {
            let mut join = json!({"type": "join", "roomId": "r"});
            if let Some(p) = password {
                join["password"] = p.into();
            }
            guest.send_json(join).await;
            let text = guest.recv_text().await;
            let e: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                (e["type"].as_str(), e["code"].as_str(), e["roomId"].as_str()),
                (Some("join-error"), Some("bad-password"), Some("r")),
                "{e}"
            );
            assert!(e["error"].as_str().unwrap().contains(needle), "{e}");
            seen.push(text);
        }

        guest
            .send_json(json!({"type": "join", "roomId": "r", "password": PASSWORD}))
            .await;
        let text = guest.recv_text().await;
        let joined: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(joined["type"], "joined", "{joined}");
        assert_eq!(joined["members"], json!([owner.id.as_str()]));
        seen.push(text);
        seen.push(owner.recv_text().await); // user-joined
        // A room with a password is not listed.
        let mut watcher = server.client().await;
        watcher.send(r#"{"type":"rooms"}"#).await;
        let rooms = watcher.recv_text().await;
        assert_eq!(rooms, r#"{"type":"rooms","rooms":[]}"#);
        owner.send(r#"{"type":"message","content":"hello"}"#).await;
        seen.push(guest.recv_text().await);

        for text in &seen {
            assert!(!text.contains("horse"), "the password leaked: {text}");
        }
        let m = scrape(&server).await;
        assert_eq!(
            sample(&m, r#"relay_auth_failures_total{reason="bad-password"}"#),
            2.0
        );
    }
}

mod origins {
    use super::*;

    #[tokio::test]
    async fn only_allowed_origins_may_open_websockets() {
        let server = TestServer::start(Config {
            allowed_origins: vec!["https://ok.example".into()],
            ..config()
        })
        .await;
        let request = |origin: Option<&'static str>| {
            let mut req = server.url().into_client_request().unwrap();
            if let Some(origin) = origin {
                req.headers_mut().insert("origin", origin.parse().unwrap());
            }
            req
        };
        for origin in [
            Some("https://evil.example"),
            Some("https://ok.example.evil.example"),
            Some("http://ok.example"),
            None,
        ] {
            assert_eq!(
                open(request(origin)).await.err(),
                Some(StatusCode::FORBIDDEN),
                "{origin:?}"
            );
        }
        let (mut ok, _) =
            Client::welcomed(open(request(Some("https://ok.example"))).await.unwrap()).await;
        ok.assert_usable().await;
        let m = scrape(&server).await;
        assert_eq!(
            sample(&m, r#"relay_auth_failures_total{reason="origin"}"#),
            4.0
        );
        assert_eq!(sample(&m, "relay_connections_total"), 1.0);
    }
}

mod per_ip {
    use super::*;

    #[tokio::test]
    async fn connections_per_address_are_capped_and_given_back() {
        let server = TestServer::start(Config {
            max_connections_per_ip: 2,
            ..config()
        })
        .await;
        let mut first = server.client().await;
        let mut second = server.client().await;
        assert_eq!(
            open(server.url()).await.err(),
            Some(StatusCode::TOO_MANY_REQUESTS)
        );
        second.assert_usable().await;

        first.ws.close(None).await.unwrap();
        assert!(
            first
                .recv_close()
                .await
                .is_none_or(|f| f.code == CloseCode::Normal)
        );
        // The slot comes back once the relay has ended the connection.
        let url = server.url();
        let ws = eventually("a freed connection slot", || {
            let url = url.clone();
            async move { open(url).await.ok() }
        })
        .await;
        let (mut third, _) = Client::welcomed(ws).await;
        third.assert_usable().await;
    }

    #[tokio::test]
    async fn repeated_bad_tokens_throttle_the_address() {
        let server = TestServer::start(Config {
            auth_failures_per_ip: 3,
            ..with_auth()
        })
        .await;
        let bad = issue_hs256(b"not the relay's secret", "mallory", &[], 600, now_unix());
        for _ in 0..2 {
            let mut ws = open(token_url(&server, &bad)).await.unwrap();
            expect_unauthorized(&mut ws).await;
        }
        // Below the limit, a good token still gets in.
        let mut alice = Client::connect(&token_url(&server, &token("alice", &[]))).await;
        let mut ws = open(token_url(&server, &bad)).await.unwrap();
        expect_unauthorized(&mut ws).await;

        assert_eq!(
            open(token_url(&server, &token("alice", &[]))).await.err(),
            Some(StatusCode::TOO_MANY_REQUESTS),
            "even a valid token is refused now"
        );
        // Connections already open are not cut.
        alice.assert_usable().await;
        let m = scrape(&server).await;
        assert_eq!(
            sample(&m, r#"relay_auth_failures_total{reason="throttled"}"#),
            1.0
        );
        assert_eq!(
            sample(&m, r#"relay_auth_failures_total{reason="invalid-token"}"#),
            3.0
        );
    }

    #[tokio::test]
    async fn repeated_wrong_room_passwords_throttle_the_address() {
        let server = TestServer::start(Config {
            auth_failures_per_ip: 3,
            ..config()
        })
        .await;
        let mut owner = server.client().await;
        owner
            .send(r#"{"type":"join","roomId":"vault","password":"right"}"#)
            .await;
        assert_eq!(owner.recv_json().await["type"], "joined");
        let mut guesser = server.client().await;
        for n in 1..=3 {
            if n == 3 {
                // Below the limit, new connections are still admitted.
                server.client().await.assert_usable().await;
            }
            guesser
                .send_json(
                    json!({"type": "join", "roomId": "vault", "password": format!("guess {n}")}),
                )
                .await;
            let e = guesser.recv_json().await;
            assert_eq!(e["code"], "bad-password", "{e}");
        }
        // The failure that blocks the address also ends the guesser's connection.
        let close = guesser.recv_close().await.expect("a Close frame");
        assert_eq!(close.code, CloseCode::Policy, "{close}");
        assert_eq!(
            open(server.url()).await.err(),
            Some(StatusCode::TOO_MANY_REQUESTS)
        );
        owner.assert_usable().await;
    }

    #[tokio::test]
    async fn the_message_rate_is_shared_by_the_connections_of_an_address() {
        const RATE: usize = 5;
        const BURST: usize = 2 * RATE;
        const EACH: usize = 15;
        let server = TestServer::start(Config {
            ip_rate_limit: RATE as u32,
            ..config()
        })
        .await;
        let mut clients = [server.client().await, server.client().await];

        let started = Instant::now();
        // Each message gets an answer: `not-in-room`, or `rate-limited` when over the rate.
        for _ in 0..EACH {
            for c in clients.iter_mut() {
                c.send(r#"{"type":"leave"}"#).await;
            }
        }
        let (mut accepted, mut limited) = (0, 0);
        for c in clients.iter_mut() {
            for _ in 0..EACH {
                let v = c.recv_json().await;
                match v["code"].as_str() {
                    Some("not-in-room") => accepted += 1,
                    Some(_) => {
                        assert_eq!(v["code"], "rate-limited", "{v}");
                        assert!(v["message"].as_str().unwrap().contains("address"), "{v}");
                        limited += 1;
                    }
                    _ => panic!("unexpected {v}"),
                }
            }
        }
        // The address's bucket starts full with BURST tokens and refills at RATE per second
        // (so at most this much more while the test ran); separate per-connection buckets would
        // have let 2 × BURST through.
        let refill = (started.elapsed().as_secs_f64() * RATE as f64).ceil() as usize;
        assert!(
            (BURST..=BURST + refill).contains(&accepted),
            "{accepted} accepted, {limited} limited, refill {refill}"
        );
        assert_eq!(accepted + limited, 2 * EACH);
        let m = scrape(&server).await;
        assert_eq!(
            sample(&m, r#"relay_messages_refused_total{reason="rate-limited"}"#),
            limited as f64
        );
    }
}

mod turn {
    use super::*;
    use base64::Engine;
    use hmac::{Hmac, Mac};

    const TURN_SECRET: &str = "coturn static-auth-secret";
    const TTL: u64 = 3600;

    fn turn_config() -> Config {
        Config {
            stun_urls: vec!["stun:stun.example:3478".into()],
            turn_urls: vec![
                "turn:turn.example:3478?transport=udp".into(),
                "turns:turn.example:5349?transport=tcp".into(),
            ],
            turn_secret: Some(TURN_SECRET.into()),
            turn_ttl: Duration::from_secs(TTL),
            ..config()
        }
    }

    /// base64(HMAC-SHA1(secret, username)), as coturn's `use-auth-secret` checks it.
    fn turn_password(username: &str) -> String {
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(TURN_SECRET.as_bytes()).unwrap();
        mac.update(username.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    /// Connects to `url` and checks the welcome's ICE servers; returns the TURN user part.
    async fn check_ice_servers(url: String) -> (Client, String) {
        let before = now_unix();
        let (client, welcome) = Client::welcomed(open(url).await.unwrap()).await;
        let after = now_unix();
        let servers = welcome["iceServers"]
            .as_array()
            .unwrap_or_else(|| panic!("iceServers in {welcome}"));
        assert_eq!(servers.len(), 2, "{welcome}");
        assert_eq!(servers[0], json!({"urls": ["stun:stun.example:3478"]}));
        assert_eq!(
            servers[1]["urls"],
            json!([
                "turn:turn.example:3478?transport=udp",
                "turns:turn.example:5349?transport=tcp"
            ])
        );
        let username = servers[1]["username"].as_str().expect("a TURN username");
        let (expiry, user) = username.split_once(':').expect("<expiry>:<user>");
        let expiry: u64 = expiry.parse().unwrap();
        assert!(
            (before + TTL..=after + TTL).contains(&expiry),
            "expiry {expiry}, now {before}..{after}"
        );
        assert_eq!(
            servers[1]["credential"],
            turn_password(username),
            "{welcome}"
        );
        (client, user.to_owned())
    }

    #[tokio::test]
    async fn welcome_carries_stun_and_fresh_turn_credentials() {
        let server = TestServer::start(turn_config()).await;
        let (client, user) = check_ice_servers(server.url()).await;
        assert_eq!(
            user,
            client.id.as_str(),
            "without a token the user is the client id"
        );

        let server = TestServer::start(Config {
            auth_secret: Some(SECRET.into()),
            ..turn_config()
        })
        .await;
        let (_, user) = check_ice_servers(token_url(&server, &token("alice", &[]))).await;
        assert_eq!(user, "alice", "with a token the user is its subject");
    }

    #[tokio::test]
    async fn without_ice_configuration_welcome_has_no_ice_servers() {
        let server = TestServer::start(config()).await;
        let (_, welcome) = Client::welcomed(open(server.url()).await.unwrap()).await;
        assert!(welcome.get("iceServers").is_none(), "{welcome}");
    }
}

mod send_ceiling {
    use super::*;

    #[tokio::test]
    async fn welcome_tells_the_configured_send_ceiling_and_nothing_without_one() {
        let server = TestServer::start(Config {
            max_send_kbps: Some(800),
            ..config()
        })
        .await;
        let (_, welcome) = Client::welcomed(open(server.url()).await.unwrap()).await;
        assert_eq!(welcome["maxSendKbps"], 800, "{welcome}");
        for unset in [None, Some(0)] {
            let server = TestServer::start(Config {
                max_send_kbps: unset,
                ..config()
            })
            .await;
            let (_, welcome) = Client::welcomed(open(server.url()).await.unwrap()).await;
            assert!(welcome.get("maxSendKbps").is_none(), "{welcome}");
        }
    }
}

mod metrics {
    use super::*;

    #[tokio::test]
    async fn metrics_count_connections_rooms_relays_refusals_and_auth_failures() {
        let server = TestServer::start(with_auth()).await;
        let mut a = Client::connect(&token_url(&server, &token("ann", &[]))).await;
        let mut b = Client::connect(&token_url(&server, &token("ben", &[]))).await;
        a.join("m").await;
        b.join("m").await;
        assert_eq!(a.recv_json().await["type"], "user-joined");
        a.send_json(json!({"type": "offer", "targetId": b.id.as_str(), "sdp": "v=0"}))
            .await;
        assert_eq!(b.recv_json().await["type"], "offer");
        a.send("{not json").await;
        assert_eq!(a.expect_error().await["code"], "invalid-json");
        let mut ws = open(token_url(&server, &forged_token())).await.unwrap();
        expect_unauthorized(&mut ws).await;

        let reply = http_reply(server.addr, "/metrics").await;
        assert_eq!(reply.status, 200);
        assert!(
            reply
                .head
                .contains("content-type: text/plain; version=0.0.4"),
            "{}",
            reply.head
        );
        let m = &reply.body;
        for (series, want) in [
            ("relay_connections", 2.0),
            ("relay_connections_total", 2.0),
            ("relay_rooms", 1.0),
            ("relay_room_members", 2.0),
            ("relay_ready", 1.0),
            (r#"relay_messages_relayed_total{type="offer"}"#, 1.0),
            (r#"relay_messages_relayed_total{type="answer"}"#, 0.0),
            (
                r#"relay_messages_refused_total{reason="invalid-json"}"#,
                1.0,
            ),
            (r#"relay_auth_failures_total{reason="invalid-token"}"#, 1.0),
        ] {
            assert_eq!(sample(m, series), want, "{series} in\n{m}");
        }
        let relayed: f64 = ["offer", "answer", "candidate", "message", "other"]
            .iter()
            .map(|t| sample(m, &format!(r#"relay_messages_relayed_total{{type="{t}"}}"#)))
            .sum();
        let count = sample(m, "relay_latency_seconds_count");
        assert!(
            count >= relayed,
            "latency count {count} < relayed {relayed}"
        );
        assert_eq!(
            sample(m, r#"relay_latency_seconds_bucket{le="+Inf"}"#),
            count
        );

        // The room gauges follow the room state.
        drop(b);
        assert_eq!(a.recv_json().await["type"], "user-left");
        let m = scrape(&server).await;
        assert_eq!(sample(&m, "relay_room_members"), 1.0);
        assert_eq!(sample(&m, "relay_rooms"), 1.0);
    }
}

mod drain {
    use super::*;

    #[tokio::test]
    async fn shutdown_drains_with_readyz_failing_then_closes_with_1001() {
        let drain_time = Duration::from_millis(1500);
        let mut server = TestServer::start(Config {
            drain_time,
            ..config()
        })
        .await;
        let ready = http_reply(server.addr, "/readyz").await;
        assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));
        let mut c = server.client().await;
        c.join("r").await;

        let asked = Instant::now();
        server.begin_shutdown();
        let addr = server.addr;
        let draining = eventually("/readyz to fail", move || async move {
            let r = http_reply(addr, "/readyz").await;
            (r.status != 200).then_some(r)
        })
        .await;
        assert_eq!(
            (draining.status, draining.body.as_str()),
            (503, "draining\n")
        );
        // Existing clients are served; new ones are sent elsewhere.
        c.assert_usable().await;
        assert_eq!(
            open(server.url()).await.err(),
            Some(StatusCode::SERVICE_UNAVAILABLE)
        );
        assert_eq!(sample(&scrape(&server).await, "relay_ready"), 0.0);
        assert!(
            asked.elapsed() < drain_time,
            "the checks above must run during the drain"
        );

        let frame = c.recv_close().await.expect("a Close frame");
        assert_eq!(frame.code, CloseCode::Away);
        assert!(
            asked.elapsed() >= drain_time,
            "closed before the drain ended"
        );
        timeout(DEADLINE, &mut server.handle)
            .await
            .expect("run returns after the drain")
            .unwrap()
            .unwrap();
    }
}

mod tls {
    use super::*;
    use common::TlsFixture;

    #[tokio::test]
    async fn wss_works_with_the_configured_certificate_and_plain_ws_does_not() {
        let fixture = TlsFixture::new("tls");
        let server = TestServer::start(fixture.serving(config())).await;
        let tcp = TcpStream::connect(server.addr).await.unwrap();
        let tls = fixture.connect(tcp).await;
        let url = format!("wss://localhost:{}/ws", server.addr.port());
        let (mut ws, _) = timeout(DEADLINE, tokio_tungstenite::client_async(url, tls))
            .await
            .expect("upgrade in time")
            .expect("upgrade over TLS");
        assert_eq!(next_json(&mut ws).await["type"], "welcome");
        ws.send(Message::text(r#"{"type":"register","userId":"tls"}"#))
            .await
            .unwrap();
        assert_eq!(next_json(&mut ws).await["type"], "registered");

        let plain = timeout(
            DEADLINE,
            tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr)),
        )
        .await
        .expect("the plain attempt ends in time");
        assert!(plain.is_err(), "plain ws:// must not work on the TLS port");
    }
}

mod cli {
    use super::*;
    use server::auth::{AuthConfig, AuthError};
    use std::process::{Command, Output};

    fn server_cli(args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_server"))
            .args(args)
            .env_remove("SIGNAL_AUTH_SECRET")
            .output()
            .expect("run the server binary")
    }

    #[tokio::test]
    async fn the_token_command_prints_a_token_the_relay_accepts() {
        let before = now_unix();
        let args = [
            "token", "--user", "alice", "--room", "r1", "--ttl", "10m", "--secret", "s3cret",
        ];
        let out = tokio::task::spawn_blocking(move || server_cli(&args))
            .await
            .unwrap();
        let after = now_unix();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(stdout.lines().count(), 1, "{stdout:?}");
        let printed = stdout.trim();

        let cfg = AuthConfig {
            hs256_secret: Some(b"s3cret".to_vec()),
            ed25519_public_key: None,
            leeway_secs: 0,
            max_lifetime_secs: auth::DEFAULT_MAX_LIFETIME_SECS,
        };
        let claims = auth::verify(printed, &cfg, after).expect("a valid token");
        assert_eq!(claims.sub.as_str(), "alice");
        assert_eq!(claims.rooms, Some(vec!["r1".to_owned()]));
        assert!(
            (before + 600..=after + 600).contains(&claims.exp),
            "exp {} for now {before}..{after}",
            claims.exp
        );
        let wrong = AuthConfig {
            hs256_secret: Some(b"s3cre7".to_vec()),
            ..cfg
        };
        assert_eq!(
            auth::verify(printed, &wrong, after),
            Err(AuthError::BadSignature)
        );

        // A relay with that secret admits it, to room r1 only.
        let server = TestServer::start(Config {
            auth_secret: Some("s3cret".into()),
            ..config()
        })
        .await;
        let mut alice = Client::connect(&token_url(&server, printed)).await;
        alice.join("r1").await;
        alice.send(r#"{"type":"join","roomId":"r2"}"#).await;
        assert_eq!(alice.recv_json().await["code"], "room-not-allowed");

        let bad =
            tokio::task::spawn_blocking(|| server_cli(&["token", "--user", "", "--secret", "s"]))
                .await
                .unwrap();
        assert!(!bad.status.success(), "an empty user is refused");
    }
}
