//! The browser video-call app, in Rust compiled to WebAssembly.
//!
//! - [`core`]: the pure state machine of the call (offerer rule, perfect negotiation, ICE
//!   candidate buffering, teardown, reconnect) and the mesh send budget (`core::budget`),
//!   tested natively with `cargo test`.
//! - [`i18n`]: every string the page shows, in English and Simplified Chinese (pure).
//! - [`stats`]: connection quality from WebRTC statistics (pure).
//! - `web` (wasm32 only): the thin web-sys layer that executes the core's commands: signaling
//!   socket, getUserMedia, RTCPeerConnections, the DOM.

pub mod core;
pub mod i18n;
pub mod stats;

#[cfg(target_arch = "wasm32")]
pub mod web;

pub use protocol;
