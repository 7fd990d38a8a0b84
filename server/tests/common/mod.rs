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

    /// Proves the connection is still usable and nothing else is queued for it: a request of
    /// an unknown type gets its `error` answer, next.
    pub async fn assert_usable(&mut self) {
        self.send(r#"{"type":"are-you-there"}"#).await;
        let v = self.recv_json().await;
        assert_eq!(
            (&v["type"], &v["code"]),
            (&Value::from("error"), &Value::from("unknown-type")),
            "connection usable, got {v}"
        );
    }

    /// Connects from the loopback address `source` (any of 127.0.0.0/8: a different client
    /// address for the relay's per-address limits) and reads the `welcome`.
    pub async fn connect_from(source: [u8; 4], url: &str) -> (Client, Value) {
        let ws = Self::try_connect_from(source, url)
            .await
            .unwrap_or_else(|e| panic!("connect from {source:?}: {e}"));
        Self::welcomed(ws).await
    }

    /// Opens a WebSocket from `source`; the relay's refusal as an error.
    pub async fn try_connect_from(
        source: [u8; 4],
        url: &str,
    ) -> Result<WebSocketStream<MaybeTlsStream<TcpStream>>, tokio_tungstenite::tungstenite::Error>
    {
        let addr: SocketAddr = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .and_then(|a| a.parse().ok())
            .expect("a ws://ip:port/ URL");
        let tcp = tcp_from(source, addr).await;
        let (ws, _) = tokio::time::timeout(
            DEADLINE,
            tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp)),
        )
        .await
        .expect("the handshake ends within the deadline")?;
        Ok(ws)
    }

    /// Drops the connection with a TCP reset, as a network failure looks to the relay.
    pub fn lose(self) {
        if let MaybeTlsStream::Plain(tcp) = self.ws.get_ref() {
            #[allow(deprecated)] // Zero linger only makes close() send a reset; it never blocks.
            tcp.set_linger(Some(Duration::ZERO)).unwrap();
        }
        drop(self);
    }
}

/// A TCP connection to `addr` from the loopback address `source`.
pub async fn tcp_from(source: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(SocketAddr::from((source, 0)))
        .unwrap_or_else(|e| panic!("bind {source:?}: {e}"));
    tokio::time::timeout(DEADLINE, socket.connect(addr))
        .await
        .expect("connect within the deadline")
        .expect("connect")
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

/// The HS256 secret of the relays that require tokens.
pub const SECRET: &str = "production test secret";

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A token for `sub` valid for ten minutes, restricted to `rooms` when not empty.
pub fn token(sub: &str, rooms: &[&str]) -> String {
    let rooms: Vec<String> = rooms.iter().map(|r| r.to_string()).collect();
    server::auth::issue_hs256(
        SECRET.as_bytes(),
        sub,
        &rooms,
        600,
        server::auth::now_unix(),
    )
}

/// Test config with HS256 tokens required.
pub fn with_auth() -> Config {
    Config {
        auth_secret: Some(SECRET.into()),
        ..config()
    }
}

pub fn token_url(server: &TestServer, token: &str) -> String {
    format!("{}?token={token}", server.url())
}

/// Opens a WebSocket without reading anything; a refused upgrade gives its HTTP status.
pub async fn open(
    req: impl tokio_tungstenite::tungstenite::client::IntoClientRequest + Unpin,
) -> Result<Ws, tokio_tungstenite::tungstenite::http::StatusCode> {
    let attempt = tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(req))
        .await
        .expect("the upgrade is answered in time");
    match attempt {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status()),
        Err(e) => panic!("the upgrade failed without an HTTP answer: {e}"),
    }
}

/// Retries `attempt` until it gives a value, for a change the relay makes after its last
/// message to us; fails after the deadline.
pub async fn eventually<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = attempt().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A plain HTTP answer: status, lowercased head, body.
pub struct HttpReply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// `GET path` on a fresh connection, parsed.
pub async fn http_reply(addr: SocketAddr, path: &str) -> HttpReply {
    let raw = http_get(addr, path).await;
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {raw:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    HttpReply {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

/// The `/metrics` text.
pub async fn scrape(server: &TestServer) -> String {
    let reply = http_reply(server.addr, "/metrics").await;
    assert_eq!(reply.status, 200, "{}", reply.head);
    reply.body
}

/// The value of the sample written exactly as `series` (name and labels).
pub fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in\n{metrics}"))
        .parse()
        .unwrap()
}

/// Waits until the relay's `/metrics` show `series` at `value`.
pub async fn metric_reaches(server: &TestServer, series: &str, value: f64) {
    eventually(&format!("{series} = {value}"), || async {
        (sample(&scrape(server).await, series) == value).then_some(())
    })
    .await;
}

/// A self-signed certificate for `localhost` in PEM files, and a client that trusts it.
pub struct TlsFixture {
    dir: std::path::PathBuf,
    connector: tokio_rustls::TlsConnector,
}

impl TlsFixture {
    /// Writes the certificate and key into a directory of their own (removed on drop).
    pub fn new(name: &str) -> TlsFixture {
        use tokio_rustls::rustls::{ClientConfig, RootCertStore};
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let dir = std::env::temp_dir().join(format!("relay-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), cert.key_pair.serialize_pem()).unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(cert.cert.der().clone()).unwrap();
        let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsFixture {
            dir,
            connector: tokio_rustls::TlsConnector::from(std::sync::Arc::new(client)),
        }
    }

    /// `config` serving TLS with this certificate.
    pub fn serving(&self, config: Config) -> Config {
        Config {
            tls_cert: Some(self.dir.join("cert.pem")),
            tls_key: Some(self.dir.join("key.pem")),
            ..config
        }
    }

    /// A TLS client handshake for `localhost` over `io`.
    pub async fn connect<IO>(&self, io: IO) -> tokio_rustls::client::TlsStream<IO>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
        tokio::time::timeout(DEADLINE, self.connector.connect(name, io))
            .await
            .expect("TLS handshake in time")
            .expect("TLS handshake")
    }
}

impl Drop for TlsFixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
