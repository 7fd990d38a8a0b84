//! The browser video-call app, in Rust compiled to WebAssembly.
//!
//! - [`core`]: the pure state machine of the call (offerer rule, perfect negotiation, ICE
//!   candidate buffering, teardown, reconnect), tested natively with `cargo test`.

pub mod core;

pub use protocol;
