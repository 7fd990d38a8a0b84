//! The byte stream under every connection: a socket (plain or TLS) with read-ahead and a write
//! prefix, so that a call's signaling costs as few system calls as it can.
//!
//! - Read-ahead: tungstenite reads in chunks the size of its read buffer, kept small (1 KiB)
//!   because it lives as long as the connection; a 5 KB offer would then take six reads. Small
//!   reads here go through one large per-thread buffer instead, and what the caller did not
//!   take waits in a per-connection leftover buffer that exists only while it holds bytes. An
//!   idle connection pays nothing for it.
//! - Pushed-back bytes: what was read past the HTTP request head (or the whole head, when the
//!   request goes to the HTTP server instead) is read again first.
//! - Write prefix: the `101 Switching Protocols` response waits here and leaves in one write
//!   with the first WebSocket frames (the `welcome`), or on the first flush.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Size of the per-thread read-ahead buffer: the largest read one system call makes.
const READ_AHEAD: usize = 64 * 1024;
/// Reads asking for at least this much go straight to the socket.
const DIRECT_READ: usize = 16 * 1024;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_AHEAD].into_boxed_slice());
}

/// A stream with read-ahead, pushed-back bytes and a pending write prefix.
#[derive(Debug)]
pub struct ConnIo<S> {
    inner: S,
    /// Bytes read from `inner` and not yet handed out, from `read_pos` on.
    leftover: Vec<u8>,
    read_pos: usize,
    /// Bytes to write before anything else, from `write_pos` on.
    prefix: Vec<u8>,
    write_pos: usize,
}

impl<S> ConnIo<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        ConnIo {
            inner,
            leftover: Vec::new(),
            read_pos: 0,
            prefix: Vec::new(),
            write_pos: 0,
        }
    }

    /// Queues `bytes` to be written before anything else (with the next write or flush).
    pub fn set_prefix(&mut self, bytes: Vec<u8>) {
        self.prefix = bytes;
        self.write_pos = 0;
    }

    /// Puts `bytes` back in front of what is left to read.
    pub fn unread(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut leftover = Vec::with_capacity(bytes.len() + self.leftover.len() - self.read_pos);
        leftover.extend_from_slice(bytes);
        leftover.extend_from_slice(&self.leftover[self.read_pos..]);
        self.leftover = leftover;
        self.read_pos = 0;
    }

    /// Copies leftover bytes into `buf`; frees the leftover buffer once it is empty.
    fn take_leftover(&mut self, buf: &mut ReadBuf<'_>) {
        let available = &self.leftover[self.read_pos..];
        let n = available.len().min(buf.remaining());
        buf.put_slice(&available[..n]);
        self.read_pos += n;
        if self.read_pos == self.leftover.len() {
            self.leftover = Vec::new();
            self.read_pos = 0;
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ConnIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.read_pos < this.leftover.len() {
            this.take_leftover(buf);
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() >= DIRECT_READ {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        SCRATCH.with_borrow_mut(|scratch| {
            let mut ahead = ReadBuf::new(scratch);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut ahead))?;
            let read = ahead.filled();
            let n = read.len().min(buf.remaining());
            buf.put_slice(&read[..n]);
            if n < read.len() {
                this.leftover = read[n..].to_vec();
                this.read_pos = 0;
            }
            Poll::Ready(Ok(()))
        })
    }
}

impl<S: AsyncWrite + Unpin> ConnIo<S> {
    /// Writes what is left of the prefix.
    fn poll_write_prefix(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.write_pos < self.prefix.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.prefix[self.write_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.write_pos += n;
        }
        self.prefix = Vec::new();
        self.write_pos = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ConnIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        // The prefix and the first bytes of `buf` in one system call.
        while this.write_pos < this.prefix.len() {
            let pending = this.prefix.len() - this.write_pos;
            let slices = [
                io::IoSlice::new(&this.prefix[this.write_pos..]),
                io::IoSlice::new(buf),
            ];
            let n = ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, &slices))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            if n >= pending {
                this.prefix = Vec::new();
                this.write_pos = 0;
                if n > pending || buf.is_empty() {
                    return Poll::Ready(Ok(n - pending));
                }
            } else {
                this.write_pos += n;
            }
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.write_pos < self.prefix.len() {
            let first = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(&[][..], |b| &**b);
            return self.poll_write(cx, first);
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write_prefix(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write_prefix(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A stream whose next writes can wait for the FIN, so that a connection's last frame and its
/// end leave in one segment (one delivery and one wake-up of the peer instead of two).
pub trait HoldForFin {
    /// Holds back partial segments until the socket is closed (TCP_CORK; best effort).
    fn hold_for_fin(&self) {}
}

impl HoldForFin for tokio::net::TcpStream {
    fn hold_for_fin(&self) {
        // A failure only means the frame and the FIN go out separately.
        #[cfg(target_os = "linux")]
        set_tcp_option(self, libc::TCP_CORK, 1);
    }
}

/// Sets a TCP-level option on a socket (listening or connected); false when the kernel
/// refused it.
#[cfg(target_os = "linux")]
pub(crate) fn set_tcp_option(
    socket: &impl std::os::fd::AsRawFd,
    option: libc::c_int,
    value: libc::c_int,
) -> bool {
    // SAFETY: a valid socket, and a pointer to a c_int of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            option,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

impl HoldForFin for tokio_rustls::server::TlsStream<tokio::net::TcpStream> {
    fn hold_for_fin(&self) {
        self.get_ref().0.hold_for_fin();
    }
}

impl HoldForFin for tokio::io::DuplexStream {}

impl<S: HoldForFin> ConnIo<S> {
    /// See [`HoldForFin`].
    pub fn hold_for_fin(&self) {
        self.inner.hold_for_fin();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    #[tokio::test]
    async fn small_reads_see_every_byte_in_order() {
        let (mut far, near) = duplex(256 * 1024);
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        far.write_all(&data).await.unwrap();
        drop(far);
        let mut io = ConnIo::new(near);
        let mut got = Vec::new();
        let mut chunk = [0u8; 1000];
        let n = io.read(&mut chunk[..10]).await.unwrap();
        assert_eq!(n, 10);
        io.unread(&chunk[4..10]);
        io.unread(b"head");
        loop {
            let n = io.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(&got[..4], b"head");
        assert_eq!(&got[4..], &data[4..]);
        assert!(io.leftover.is_empty() && io.leftover.capacity() == 0);
    }

    #[tokio::test]
    async fn the_prefix_goes_out_first_with_the_next_write_or_flush() {
        let (mut far, near) = duplex(1024);
        let mut io = ConnIo::new(near);
        io.set_prefix(b"HTTP/1.1 101\r\n\r\n".to_vec());
        io.write_all(b"frame").await.unwrap();
        io.set_prefix(b"more".to_vec());
        io.flush().await.unwrap();
        io.write_all(b"!").await.unwrap();
        drop(io);
        let mut got = Vec::new();
        far.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"HTTP/1.1 101\r\n\r\nframemore!");
    }

    #[tokio::test]
    async fn a_prefix_larger_than_the_pipe_is_written_whole() {
        let (mut far, near) = duplex(7);
        let mut io = ConnIo::new(near);
        let prefix: Vec<u8> = (0..100u8).collect();
        io.set_prefix(prefix.clone());
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            far.read_to_end(&mut got).await.unwrap();
            got
        });
        io.write_all(b"tail").await.unwrap();
        io.shutdown().await.unwrap();
        drop(io);
        let mut want = prefix;
        want.extend_from_slice(b"tail");
        assert_eq!(reader.await.unwrap(), want);
    }

    /// One step of a reader: read up to `n` bytes, or push back the last `n` bytes it read.
    #[derive(Debug, Clone)]
    enum Step {
        Read(usize),
        Unread(usize),
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (1usize..20_000).prop_map(Step::Read),
            1 => (0usize..2_000).prop_map(Step::Unread),
        ]
    }

    proptest::proptest! {
        /// Whatever the read sizes (small ones through the read-ahead, large ones straight to
        /// the socket) and the bytes pushed back, the reader sees the stream in order.
        #[test]
        fn reads_and_pushbacks_keep_the_stream_in_order(
            len in 0usize..200_000,
            chunk in 1usize..70_000,
            steps in proptest::collection::vec(step(), 1..60),
        ) {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let got = runtime.block_on(async {
                let (mut far, near) = duplex(chunk);
                let writer = {
                    let data = data.clone();
                    async move {
                        far.write_all(&data).await.unwrap();
                        drop(far);
                    }
                };
                let reader = async {
                    let mut io = ConnIo::new(near);
                    // What the reader holds, as the stream seen so far minus what it pushed back.
                    let mut seen: Vec<u8> = Vec::new();
                    let mut buf = vec![0u8; 20_000];
                    for step in steps.iter().cycle().take(10_000) {
                        match *step {
                            Step::Read(n) => {
                                let got = io.read(&mut buf[..n]).await.unwrap();
                                if got == 0 {
                                    break;
                                }
                                seen.extend_from_slice(&buf[..got]);
                            }
                            Step::Unread(n) => {
                                let n = n.min(seen.len());
                                let back = seen.split_off(seen.len() - n);
                                io.unread(&back);
                            }
                        }
                    }
                    let mut rest = Vec::new();
                    io.read_to_end(&mut rest).await.unwrap();
                    seen.extend_from_slice(&rest);
                    seen
                };
                tokio::join!(writer, reader).1
            });
            proptest::prop_assert_eq!(got, data);
        }

        /// The prefix and every byte written after it arrive once, in order, whatever the
        /// pipe's capacity (partial writes of the prefix, of the data, or of both at once).
        #[test]
        fn the_prefix_and_the_writes_arrive_whole_and_in_order(
            prefix_len in 0usize..3_000,
            writes in proptest::collection::vec(0usize..5_000, 0..8),
            // 0: a pipe exactly the prefix's size (the write that ends right after the prefix).
            pipe in proptest::prop_oneof![1usize..4_096, proptest::strategy::Just(0)],
            flush_first in proptest::bool::ANY,
        ) {
            let pipe = if pipe == 0 { prefix_len.max(1) } else { pipe };
            let prefix: Vec<u8> = (0..prefix_len).map(|i| (i % 13) as u8 + 200).collect();
            let chunks: Vec<Vec<u8>> = writes
                .iter()
                .enumerate()
                .map(|(k, &n)| (0..n).map(|i| ((i + k) % 97) as u8).collect())
                .collect();
            let mut want = prefix.clone();
            for c in &chunks {
                want.extend_from_slice(c);
            }
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let got = runtime.block_on(async {
                let (mut far, near) = duplex(pipe);
                let reader = async move {
                    let mut got = Vec::new();
                    far.read_to_end(&mut got).await.unwrap();
                    got
                };
                let writer = async {
                    let mut io = ConnIo::new(near);
                    io.set_prefix(prefix.clone());
                    if flush_first {
                        io.flush().await.unwrap();
                    }
                    for c in &chunks {
                        io.write_all(c).await.unwrap();
                    }
                    io.shutdown().await.unwrap();
                };
                tokio::join!(reader, writer).0
            });
            proptest::prop_assert_eq!(got, want);
        }
    }
}
