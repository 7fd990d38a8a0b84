//! WebSocket client side of the signaling protocol, as the modes need it: connect and read the
//! `welcome`, join a room, wait for a message of a given type, close politely. Every wait is
//! bounded by a timeout.

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

/// A client's WebSocket connection to the relay (plain `ws://`, no TLS).
pub type Ws = WebSocketStream<TcpStream>;

/// Longest wait for the TCP connection, and again for the WebSocket handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for an expected message.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the relay to answer our Close frame and close the TCP connection.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the relay listens: its URL and the `host:port` to open a TCP connection to.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The `ws://` URL, sent in the handshake.
    pub url: String,
    /// `host:port` of the URL.
    addr: String,
}

impl Endpoint {
    /// `host:port` of the URL.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Parses a `ws://host[:port][/path]` URL.
    pub fn parse(url: &str) -> Result<Endpoint> {
        let rest = url
            .strip_prefix("ws://")
            .with_context(|| format!("`{url}` is not a ws:// URL (TLS is not supported)"))?;
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        if authority.is_empty() {
            bail!("`{url}` has no host");
        }
        let has_port = match authority.strip_prefix('[') {
            Some(v6) => v6.contains("]:"),
            None => authority.contains(':'),
        };
        let addr = if has_port {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Endpoint {
            url: url.to_owned(),
            addr,
        })
    }
}

/// Opens a WebSocket connection with Nagle's algorithm off (small signaling frames must not wait
/// for the previous one's ACK).
pub async fn connect(endpoint: &Endpoint, config: WebSocketConfig) -> Result<Ws> {
    let tcp = timeout(CONNECT_TIMEOUT, TcpStream::connect(endpoint.addr.as_str()))
        .await
        .with_context(|| format!("TCP connect to {} timed out", endpoint.addr))?
        .with_context(|| format!("cannot connect to {}", endpoint.addr))?;
    tcp.set_nodelay(true).context("cannot set TCP_NODELAY")?;
    let handshake = client_async_with_config(endpoint.url.as_str(), tcp, Some(config));
    let (ws, _response) = timeout(CONNECT_TIMEOUT, handshake)
        .await
        .context("WebSocket handshake timed out")?
        .context("WebSocket handshake failed")?;
    Ok(ws)
}

/// A connected client that has received its `welcome`.
pub struct Client {
    /// The connection.
    pub ws: Ws,
    /// The client id the relay assigned in `welcome`.
    pub id: String,
}

impl Client {
    /// Connects and waits for the `welcome` that carries the client id.
    pub async fn connect(endpoint: &Endpoint, config: WebSocketConfig) -> Result<Client> {
        let mut ws = connect(endpoint, config).await?;
        let welcome = expect(&mut ws, "welcome").await?;
        let id = str_field(&welcome, "clientId")?.to_owned();
        Ok(Client { ws, id })
    }

    /// Sends `message` as one JSON text frame and flushes it.
    pub async fn send(&mut self, message: &Value) -> Result<()> {
        send_text(&mut self.ws, message.to_string()).await
    }

    /// Joins `room` and returns the `joined` answer.
    pub async fn join(&mut self, room: &str) -> Result<Value> {
        self.send(&json!({"type": "join", "roomId": room})).await?;
        let joined = self.expect("joined").await?;
        let got = str_field(&joined, "roomId")?;
        if got != room {
            bail!("joined room `{got}` instead of `{room}`");
        }
        Ok(joined)
    }

    /// Waits for the next message of type `kind`; see [`expect`].
    pub async fn expect(&mut self, kind: &str) -> Result<Value> {
        expect(&mut self.ws, kind).await
    }

    /// Closes the connection; see [`close`].
    pub async fn close(self) -> Result<()> {
        close(self.ws).await
    }
}

/// Sends one text frame and flushes it, within [`RECV_TIMEOUT`].
pub async fn send_text(ws: &mut Ws, text: String) -> Result<()> {
    timeout(RECV_TIMEOUT, ws.send(Message::text(text)))
        .await
        .context("sending timed out")?
        .context("cannot send")
}

/// Waits up to [`RECV_TIMEOUT`] for a message of type `kind` and returns it parsed.
///
/// Other notifications on the way are skipped; an `error` or `join-error` fails the wait, with
/// the relay's message.
pub async fn expect(ws: &mut Ws, kind: &str) -> Result<Value> {
    let wait = async {
        loop {
            let text = next_text(ws).await?;
            let message: Value = serde_json::from_str(&text)
                .with_context(|| format!("the relay sent invalid JSON: {}", preview(&text)))?;
            match message.get("type").and_then(Value::as_str) {
                Some(t) if t == kind => return Ok(message),
                Some("error" | "join-error") => {
                    bail!("waiting for `{kind}`, the relay sent {}", preview(&text))
                }
                _ => {}
            }
        }
    };
    timeout(RECV_TIMEOUT, wait)
        .await
        .with_context(|| format!("no `{kind}` within {RECV_TIMEOUT:?}"))?
}

/// The next text frame, skipping pings and pongs (tungstenite answers pings by itself).
pub async fn next_text(ws: &mut Ws) -> Result<Utf8Bytes> {
    loop {
        match ws.next().await {
            None => bail!("the relay closed the connection"),
            Some(Err(e)) => return Err(e).context("WebSocket error"),
            Some(Ok(Message::Text(text))) => return Ok(text),
            Some(Ok(Message::Close(frame))) => bail!("the relay closed the connection: {frame:?}"),
            Some(Ok(Message::Binary(_))) => bail!("the relay sent a binary frame"),
            Some(Ok(_)) => {}
        }
    }
}

/// Sends a Close frame and reads until the relay closes the TCP connection, within
/// [`CLOSE_TIMEOUT`].
///
/// Waiting for the relay to close first keeps the TIME_WAIT state on the relay's side, so the
/// bench's ephemeral ports are free for the next connections.
pub async fn close(mut ws: Ws) -> Result<()> {
    let handshake = async {
        ws.close(None).await.context("cannot send Close")?;
        while let Some(message) = ws.next().await {
            message.context("WebSocket error while closing")?;
        }
        anyhow::Ok(())
    };
    timeout(CLOSE_TIMEOUT, handshake).await.with_context(|| {
        format!("the relay did not close the connection within {CLOSE_TIMEOUT:?}")
    })?
}

/// The string field `name` of `message`.
pub fn str_field<'a>(message: &'a Value, name: &str) -> Result<&'a str> {
    message
        .get(name)
        .and_then(Value::as_str)
        .with_context(|| format!("no string `{name}` in {}", preview(&message.to_string())))
}

/// The start of `text`, for error messages.
pub fn preview(text: &str) -> String {
    const MAX: usize = 200;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_addresses() {
        let e = Endpoint::parse("ws://127.0.0.1:4000/ws").unwrap();
        assert_eq!(
            (e.url.as_str(), e.addr.as_str()),
            ("ws://127.0.0.1:4000/ws", "127.0.0.1:4000")
        );
        assert_eq!(
            Endpoint::parse("ws://localhost").unwrap().addr,
            "localhost:80"
        );
        assert_eq!(Endpoint::parse("ws://[::1]:9/x?y").unwrap().addr, "[::1]:9");
        assert_eq!(Endpoint::parse("ws://[::1]/").unwrap().addr, "[::1]:80");
        assert!(Endpoint::parse("wss://example.org").is_err());
        assert!(Endpoint::parse("ws:///ws").is_err());
    }

    #[test]
    fn preview_cuts_long_text() {
        assert_eq!(preview("short"), "short");
        assert_eq!(preview(&"é".repeat(300)).chars().count(), 203);
    }
}
