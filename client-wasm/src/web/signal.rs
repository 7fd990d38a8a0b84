//! The signaling socket (gloo-net): one task reads frames and turns them into core events, one
//! task writes what the app sends. Each socket has a generation number so that events of a
//! socket that was replaced are ignored.

use super::error::WebError;
use super::{AppEvent, Events};
use crate::core::Event;
use futures_channel::mpsc;
use futures_util::{SinkExt, StreamExt};
use gloo_net::websocket::Message;
use gloo_net::websocket::futures::WebSocket;
use protocol::{ClientMessage, ServerMessage};

/// Sends messages on one signaling socket. Dropping it closes the socket.
pub struct SignalTx {
    tx: mpsc::UnboundedSender<String>,
}

impl SignalTx {
    /// Queues a message for the relay.
    pub fn send(&self, msg: &ClientMessage) {
        // A closed socket reports itself through the reader; nothing to do here.
        let _ = self.tx.unbounded_send(msg.encode());
    }
}

/// Opens a socket to `url`; its events arrive as `AppEvent::Signal(generation, _)`.
pub fn open(url: &str, generation: u32, events: &Events) -> Result<SignalTx, WebError> {
    let ws = WebSocket::open(url).map_err(|e| WebError::new("WebSocket", e.to_string()))?;
    let (mut sink, mut stream) = ws.split();
    // Unbounded because the app's loop cannot wait; what it queues is bounded by the call's
    // own signaling (a few messages per peer and candidate).
    let (tx, mut rx) = mpsc::unbounded::<String>();
    wasm_bindgen_futures::spawn_local(async move {
        while let Some(text) = rx.next().await {
            if sink.send(Message::Text(text)).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let events = events.clone();
    wasm_bindgen_futures::spawn_local(async move {
        let mut opened = false;
        while let Some(frame) = stream.next().await {
            let text = match frame {
                Ok(Message::Text(text)) => text,
                Ok(Message::Bytes(_)) => continue,
                Err(_) => break,
            };
            if !opened {
                // The first frame (welcome) proves the socket is open.
                opened = true;
                events.send(AppEvent::Signal(generation, Event::SignalOpen));
            }
            match ServerMessage::decode(&text) {
                Ok(msg) => events.send(AppEvent::Signal(generation, Event::Signal(msg))),
                Err(e) => events.send(AppEvent::Error(WebError::new("relay message", e.message))),
            }
        }
        events.send(AppEvent::Signal(generation, Event::SignalClosed));
    });
    Ok(SignalTx { tx })
}
