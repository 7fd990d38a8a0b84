//! The relay's own WebSocket handshake, spoken over raw TCP: the `101` comes first and the
//! `welcome` right behind it, bytes sent right behind the request head are not lost, a head
//! split over many writes is put back together, refused or malformed upgrades get an HTTP
//! answer, and plain HTTP still reaches the HTTP server.

mod common;

use common::{DEADLINE, TestServer, config, http_get};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// `Sec-WebSocket-Accept` for [`KEY`] (RFC 6455, section 1.3).
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

fn upgrade_request(extra_headers: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra_headers}\r\n"
    )
}

/// A masked client text frame.
fn text_frame(text: &str) -> Vec<u8> {
    let payload = text.as_bytes();
    assert!(payload.len() < 126, "short frames only");
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Appends what the socket has to `buf`; the relay must not have closed.
async fn read_more(s: &mut TcpStream, buf: &mut Vec<u8>) {
    let mut chunk = [0u8; 4096];
    let n = s.read(&mut chunk).await.expect("read");
    assert!(n > 0, "closed early, after {buf:?}");
    buf.extend_from_slice(&chunk[..n]);
}

/// Reads until `buf` holds a complete HTTP head; returns the head and what followed it.
async fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> String {
    timeout(DEADLINE, async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8(buf[..end + 4].to_vec()).expect("a text head");
                buf.drain(..end + 4);
                return head;
            }
            read_more(s, buf).await;
        }
    })
    .await
    .expect("a response head within the deadline")
}

/// Reads one unmasked server text frame (short or 16-bit length) from `buf` and the socket.
async fn read_text_frame(s: &mut TcpStream, buf: &mut Vec<u8>) -> Value {
    timeout(DEADLINE, async {
        loop {
            if buf.len() >= 2 {
                assert_eq!(buf[0], 0x81, "a final text frame");
                let (len, start) = match buf[1] {
                    126 if buf.len() >= 4 => (usize::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
                    126 => (usize::MAX, 0),
                    n => (usize::from(n), 2),
                };
                if len != usize::MAX && buf.len() >= start + len {
                    let text: Vec<u8> = buf.drain(..start + len).skip(start).collect();
                    return serde_json::from_slice(&text).expect("a JSON frame");
                }
            }
            read_more(s, buf).await;
        }
    })
    .await
    .expect("a frame within the deadline")
}

#[tokio::test]
async fn the_101_is_followed_by_the_welcome_and_a_pipelined_frame_is_not_lost() {
    let server = TestServer::start(config()).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    // The request head and a first frame in one write: the frame must not be lost.
    let mut bytes = upgrade_request("").into_bytes();
    bytes.extend(text_frame(r#"{"type":"join","roomId":"pipelined"}"#));
    s.write_all(&bytes).await.unwrap();

    let mut buf = Vec::new();
    let head = read_head(&mut s, &mut buf).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("upgrade: websocket"), "{head}");
    assert!(lower.contains("connection: upgrade"), "{head}");
    assert!(head.contains(&format!(": {ACCEPT}\r\n")), "{head}");
    let welcome = read_text_frame(&mut s, &mut buf).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let joined = read_text_frame(&mut s, &mut buf).await;
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!(joined["roomId"], "pipelined");
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_head_sent_in_pieces_is_put_back_together() {
    let server = TestServer::start(config()).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let request = upgrade_request("Origin: http://localhost\r\n");
    for piece in request.as_bytes().chunks(7) {
        s.write_all(piece).await.unwrap();
        s.flush().await.unwrap();
    }
    let mut buf = Vec::new();
    let head = read_head(&mut s, &mut buf).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    let welcome = read_text_frame(&mut s, &mut buf).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    server.shutdown().await;
}

/// Sends `request` and returns the whole answer (the relay closes after refusing).
async fn answer_to(server: &TestServer, request: &[u8]) -> String {
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    timeout(DEADLINE, s.read_to_end(&mut out))
        .await
        .expect("an answer within the deadline")
        .expect("read the answer");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn malformed_upgrades_get_400_and_the_relay_goes_on() {
    let server = TestServer::start(config()).await;
    let cases = [
        upgrade_request("").replace("Version: 13", "Version: 8"),
        upgrade_request("").replace(&format!("Sec-WebSocket-Key: {KEY}\r\n"), ""),
        upgrade_request("").replace("Connection: Upgrade", "Connection: keep-alive"),
        upgrade_request("").replace("GET /ws", "POST /ws"),
        upgrade_request("").replace("HTTP/1.1", "HTTP/1.0"),
    ];
    for request in cases {
        let answer = answer_to(&server, request.as_bytes()).await;
        assert!(
            answer.starts_with("HTTP/1.1 400 "),
            "{request:?} -> {answer}"
        );
        assert!(answer.contains("content-length: "), "{answer}");
    }
    // A head over the size limit goes to the HTTP server, which refuses it too.
    let huge = upgrade_request(&format!("X-Filler: {}\r\n", "a".repeat(100 * 1024)));
    let answer = answer_to(&server, huge.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert!(!answer.starts_with("HTTP/1.1 101"), "{answer}");

    let mut client = server.client().await;
    client.assert_usable().await;
    server.shutdown().await;
}

#[tokio::test]
async fn plain_http_still_works_beside_upgrades() {
    let server = TestServer::start(config()).await;
    let health = http_get(server.addr, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    // Headers in another case than the relay looks for, and an upgrade to something else.
    let other = answer_to(
        &server,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nUPGRADE: h2c\r\nconnection: upgrade\r\n\r\n",
    )
    .await;
    assert!(other.starts_with("HTTP/1.1 200"), "{other}");
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(
        upgrade_request("")
            .replace("Upgrade: websocket", "UPGRADE: WebSocket")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let head = read_head(&mut s, &mut buf).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    server.shutdown().await;
}
