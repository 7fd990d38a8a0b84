//! Wire types of the signaling protocol, shared by the relay (`server/`) and the browser client
//! (`client-wasm/`), so that both sides agree on the format by construction.
//!
//! Every message is one JSON object in one WebSocket text frame, with a `type` field naming it.
//! The format is a superset of the reference Node.js signaling server's:
//!
//! - [`ClientMessage`]: what a client sends (`register`, `join`, `leave`, `offer`, `answer`,
//!   `candidate`, `message`, and the extensions `lock`, `unlock`, `rooms`).
//! - [`ServerMessage`]: what the relay sends (`welcome`, `registered`, `joined`, `user-joined`,
//!   `user-left`, `left`, `join-error`, relayed `offer`/`answer`/`candidate`/`message`, `error`,
//!   and the extensions `locked`, `unlocked`, `rooms`).
//!
//! Extensions only add message types and fields; a client written for the reference protocol
//! ignores them. Unknown fields in incoming messages are ignored for the same reason.
//!
//! Decoding is hand-written ([`ClientMessage::decode`], [`ServerMessage::decode`]) rather than
//! derived, for two reasons: relayed payloads (`sdp`, `candidate`, `content`) are kept as raw
//! JSON and forwarded byte for byte, which serde's internally tagged enums cannot do, and every
//! refusal names the field and the problem ([`DecodeError`]) so the relay can answer clearly.

mod decode;
mod ids;
mod messages;

pub use decode::DecodeError;
pub use ids::{ClientId, IdError, MAX_ID_CHARS, RoomId, UserId, forbidden_in_id};
pub use messages::{
    ClientMessage, ErrorCode, IceServer, Payload, PeerInfo, RoomInfo, ServerMessage, is_turn_url,
};
