//! Test harness: starts the real relay on 127.0.0.1:0 and drives it with real WebSocket
//! clients. Every receive has a deadline, so a missing message fails the test instead of
//! hanging it.

#![allow(dead_code)] // Each test binary uses a different part of the harness.

use futures_util::{SinkExt, StreamExt};
use protocol::{ClientId, ServerMessage};
use serde_json::Value;
use server::Config;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any expected message may take.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// A relay running in this process.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    pub handle: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    /// Starts a relay with `config` on a free loopback port.
    pub async fn start(config: Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(server::run(listener, config, async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            stop: Some(stop),
            handle,
        }
    }

    /// Starts a relay with the default configuration.
    pub async fn default() -> Self {
        Self::start(Config::default()).await
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Connects a client and reads its `welcome`.
    pub async fn client(&self) -> Client {
        Client::connect(&self.url()).await
    }

    /// Sends the shutdown signal and returns at once, so a test can watch the relay drain; await
    /// `handle` to see `run` return (`shutdown` must not be called after this).
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Triggers graceful shutdown and waits for `run` to return.
    pub async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), &mut self.handle)
            .await
            .expect("run returns after shutdown")
            .unwrap()
            .unwrap();
    }
}

/// A plain HTTP GET on a fresh connection; the whole response (the relay closes after it).
pub async fn http_get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    s.write_all(request.as_bytes())
        .await
        .expect("send the request");
    let mut out = String::new();
    tokio::time::timeout(DEADLINE, s.read_to_string(&mut out))
        .await
        .expect("a response within the deadline")
        .expect("read the response");
    out
}

/// Config for tests: defaults, with the rate limit off unless a test sets it.
pub fn config() -> Config {
    Config {
        rate_limit: 0,
        ..Config::default()
    }
}

/// A WebSocket client of the relay.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub id: ClientId,
}

impl Client {
    pub async fn connect(url: &str) -> Client {
        Self::connect_with_welcome(url).await.0
    }

    /// Connects and returns the client with its `welcome`, as JSON (for its extension fields).
    pub async fn connect_with_welcome(url: &str) -> (Client, serde_json::Value) {
        let (ws, _) = tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect in time")
            .expect("connect");
        Self::welcomed(ws).await
    }

    /// Reads the `welcome` of a socket just connected: the client, and the welcome as JSON.
    pub async fn welcomed(
        ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    ) -> (Client, serde_json::Value) {
        let mut c = Client {
            ws,
            id: ClientId::new("pending").unwrap(),
        };
        let welcome = c.recv_json().await;
        assert_eq!(
            welcome["type"], "welcome",
            "expected welcome, got {welcome}"
        );
        c.id = ClientId::new(welcome["clientId"].as_str().expect("a clientId")).unwrap();
        (c, welcome)
    }

    pub async fn send(&mut self, text: impl Into<String>) {
        self.ws
            .send(Message::text(text.into()))
            .await
            .expect("send");
    }

    pub async fn send_json(&mut self, v: Value) {
        self.send(v.to_string()).await;
    }

    /// The next text frame, as raw text (pings and pongs are skipped).
    pub async fn recv_text(&mut self) -> String {
        loop {
            let frame = tokio::time::timeout(DEADLINE, self.ws.next())
                .await
                .expect("a message within the deadline")
                .expect("connection open")
                .expect("read ok");
            match frame {
                Message::Text(t) => return t.to_string(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The next message, decoded.
    pub async fn recv(&mut self) -> ServerMessage {
        let text = self.recv_text().await;
        ServerMessage::decode(&text).unwrap_or_else(|e| panic!("undecodable {text}: {e}"))
    }

    /// The next message as JSON.
    pub async fn recv_json(&mut self) -> Value {
        serde_json::from_str(&self.recv_text().await).unwrap()
    }

    /// Reads until the relay closes the connection; returns the Close frame, if any.
    pub async fn recv_close(&mut self) -> Option<CloseFrame> {
        loop {
            let frame = tokio::time::timeout(DEADLINE, self.ws.next())
                .await
                .expect("close within the deadline");
            match frame {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Joins `room` and returns the members listed in `joined`.
    pub async fn join(&mut self, room: &str) -> Vec<ClientId> {
        self.send_json(serde_json::json!({"type": "join", "roomId": room}))
            .await;
        loop {
            match self.recv().await {
                ServerMessage::Joined { members, .. } => return members,
                ServerMessage::Left { .. } => continue,
                other => panic!("expected joined, got {other:?}"),
            }
        }
    }

    /// Expects an `error` reply and returns its JSON.
    pub async fn expect_error(&mut self) -> Value {
        let v = self.recv_json().await;
        assert_eq!(v["type"], "error", "expected an error, got {v}");
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "error message in {v}"
        );
        v
    }

    /// Proves the connection is still usable: a `rooms` request gets its answer.
    pub async fn assert_usable(&mut self) {
        self.send(r#"{"type":"rooms"}"#).await;
        let v = self.recv_json().await;
        assert_eq!(v["type"], "rooms", "connection usable, got {v}");
    }
}

/// Connects `n` clients and joins them all to `room`, draining the join notifications.
pub async fn room_of(server: &TestServer, room: &str, n: usize) -> Vec<Client> {
    let mut clients: Vec<Client> = Vec::new();
    for _ in 0..n {
        let mut c = server.client().await;
        c.join(room).await;
        for other in clients.iter_mut() {
            match other.recv().await {
                ServerMessage::UserJoined { client_id, .. } => assert_eq!(client_id, c.id),
                m => panic!("expected user-joined, got {m:?}"),
            }
        }
        clients.push(c);
    }
    clients
}
