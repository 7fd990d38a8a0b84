//! The bounded outbound queue of one connection.
//!
//! The relay pushes encoded messages without waiting ([`Outbound::push`] fails when the queue
//! is full); the connection's task drains them in batches ([`Outbound::recv`]). The relay can
//! also kick the connection (a slow consumer, or a session resumed on another connection),
//! which the task sees on its next `recv`.
//!
//! A `Mutex<VecDeque>` plus a `Notify` rather than a tokio channel: an idle connection then costs
//! a few dozen bytes here instead of a channel's preallocated block, and a handle clone is one
//! reference count (the client id lives inside).

use protocol::ClientId;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// The queue was full: the message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// Why the relay dropped a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// Its queue filled up: the client does not read.
    Slow,
    /// Its session was resumed on another connection.
    Replaced,
    /// Its session was ended: a newer connection's token does not allow its room.
    Ended,
}

/// What [`Outbound::recv`] hands the connection.
#[derive(Debug)]
pub enum Recv {
    /// Messages were moved into the caller's batch.
    Messages,
    /// The relay dropped this connection.
    Kicked(Kick),
}

#[derive(Debug, Default)]
struct State {
    items: VecDeque<Utf8Bytes>,
    kicked: Option<Kick>,
}

/// One connection's outbound queue; shared as [`PeerTx`].
#[derive(Debug)]
pub struct Outbound {
    id: ClientId,
    capacity: usize,
    state: Mutex<State>,
    ready: Notify,
}

/// Clonable handle to a connection's queue.
pub type PeerTx = Arc<Outbound>;

impl Outbound {
    /// A queue for client `id` holding at most `capacity` messages.
    pub fn new(id: ClientId, capacity: usize) -> PeerTx {
        Arc::new(Outbound {
            id,
            capacity: capacity.max(1),
            state: Mutex::new(State::default()),
            ready: Notify::new(),
        })
    }

    /// The client this queue belongs to.
    pub fn id(&self) -> &ClientId {
        &self.id
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `msg`, or fails when the queue is full. A kicked queue swallows messages.
    pub fn push(&self, msg: Utf8Bytes) -> Result<(), Full> {
        let mut state = self.state();
        if state.kicked.is_some() {
            return Ok(());
        }
        if state.items.len() >= self.capacity {
            return Err(Full);
        }
        state.items.push_back(msg);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// Marks the connection as dropped by the relay and wakes its task (the first reason
    /// given stays).
    pub fn kick(&self, why: Kick) {
        let mut state = self.state();
        state.kicked.get_or_insert(why);
        state.items = VecDeque::new();
        drop(state);
        self.ready.notify_one();
    }

    /// Waits for messages and moves all queued ones into `batch` (which must be empty), or
    /// reports a kick. Cancel-safe: nothing is taken out until it returns.
    pub async fn recv(&self, batch: &mut VecDeque<Utf8Bytes>) -> Recv {
        loop {
            {
                let mut state = self.state();
                if let Some(why) = state.kicked {
                    return Recv::Kicked(why);
                }
                if !state.items.is_empty() {
                    // Swapping keeps both buffers' capacity: no allocation per batch.
                    std::mem::swap(&mut state.items, batch);
                    return Recv::Messages;
                }
            }
            // A push between the check and this wait stores a permit, so it is not missed.
            self.ready.notified().await;
        }
    }

    /// Completes when the relay drops this connection (for use while writing a batch; a push
    /// notification it consumes is harmless, since `recv` looks at the queue before waiting).
    pub async fn kicked(&self) -> Kick {
        loop {
            if let Some(why) = self.state().kicked {
                return why;
            }
            self.ready.notified().await;
        }
    }

    /// Takes every queued message out (to move them to a resumed connection's queue).
    pub fn take_all(&self) -> VecDeque<Utf8Bytes> {
        std::mem::take(&mut self.state().items)
    }

    /// Queues `msg` first, ahead of what is queued, whatever the capacity (the `welcome` of a
    /// resumed session, which must precede the messages kept for it).
    pub fn push_front(&self, msg: Utf8Bytes) {
        self.state().items.push_front(msg);
        self.ready.notify_one();
    }

    /// Whether the relay dropped this connection.
    pub fn is_kicked(&self) -> bool {
        self.state().kicked.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(cap: usize) -> PeerTx {
        Outbound::new(ClientId::new("c").unwrap(), cap)
    }

    #[tokio::test]
    async fn delivers_in_order_and_refuses_when_full() {
        let q = q(2);
        q.push("a".into()).unwrap();
        q.push("b".into()).unwrap();
        assert_eq!(q.push("c".into()), Err(Full));
        let mut batch = VecDeque::new();
        assert!(matches!(q.recv(&mut batch).await, Recv::Messages));
        assert_eq!(batch, ["a", "b"].map(Utf8Bytes::from));
        batch.clear();
        q.push("d".into()).unwrap();
        assert!(matches!(q.recv(&mut batch).await, Recv::Messages));
        assert_eq!(batch, ["d"].map(Utf8Bytes::from));
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_on_push_and_on_kick() {
        let q = q(4);
        let waiter = tokio::spawn({
            let q = q.clone();
            async move {
                let mut batch = VecDeque::new();
                let first = q.recv(&mut batch).await;
                batch.clear();
                let second = q.recv(&mut batch).await;
                (first, second)
            }
        });
        tokio::task::yield_now().await;
        q.push("x".into()).unwrap();
        // Wait until the first message was taken, then kick.
        while !q.state().items.is_empty() {
            tokio::task::yield_now().await;
        }
        q.kick(Kick::Replaced);
        q.kick(Kick::Slow);
        let (first, second) = waiter.await.unwrap();
        assert!(matches!(first, Recv::Messages));
        assert!(
            matches!(second, Recv::Kicked(Kick::Replaced)),
            "the first reason stays"
        );
        assert!(q.is_kicked());
        assert_eq!(
            q.push("y".into()),
            Ok(()),
            "a kicked queue swallows messages"
        );
    }
}
