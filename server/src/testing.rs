//! Support for tests of this crate and of the end-to-end suite: a real `redis-server` started
//! on a free loopback port without persistence, killed on drop. Found on `PATH`
//! (`scripts/test.sh` installs it); a missing one fails the test with a message saying so.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` child process on a loopback port, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

/// A loopback port held bound but not listening while this lives: connecting to it is refused,
/// and neither another test's server nor an outgoing connection can take it meanwhile (a port
/// from [`free_port`] can be taken by a parallel test between the check and the use).
pub struct ClosedPort {
    socket: tokio::net::TcpSocket,
}

impl ClosedPort {
    pub fn hold() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
        socket
            .bind((std::net::Ipv4Addr::LOCALHOST, 0).into())
            .expect("bind a loopback port");
        ClosedPort { socket }
    }

    pub fn port(&self) -> u16 {
        self.socket.local_addr().expect("local address").port()
    }
}

/// The process id of the Redis answering on `port`, if one does (`INFO server`). Checking the
/// id, not just an answer, tells our server from another test's that took the port first.
fn server_pid(port: u16) -> Option<u32> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    stream.write_all(b"INFO server\r\n").ok()?;
    let mut reader = BufReader::new(stream);
    let mut header = String::new();
    reader.read_line(&mut header).ok()?;
    let len: usize = header.strip_prefix('$')?.trim().parse().ok()?;
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    String::from_utf8(body)
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("process_id:")?.trim().parse().ok())
}

impl RedisServer {
    /// Starts a server on a free port (another one if that port was taken meanwhile).
    pub fn start() -> Self {
        for _ in 0..5 {
            let port = free_port();
            if let Some(child) = Self::spawn(port) {
                return RedisServer {
                    child: Some(child),
                    port,
                };
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// Starts `redis-server` on `port`; `None` when it exits (the port was taken).
    fn spawn(port: u16) -> Option<Child> {
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-server ({e}): these tests need it on PATH; \
                     install it with `apt-get install redis-server` (scripts/test.sh does)"
                )
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if server_pid(port) == Some(child.id()) {
                return Some(child);
            }
            if let Ok(Some(_)) = child.try_wait() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server on port {port} did not answer within 10 s");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a fresh (empty) server on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.child = Some(Self::spawn(self.port).expect("redis-server restarts on its port"));
    }

    /// A plain connection, to look at or tamper with keys directly.
    pub async fn raw(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
