//! The browser video-call app (WebAssembly). Its pure core and web-sys glue are built under the
//! issue "The browser app in Rust/WebAssembly"; for now the crate only pins that the protocol
//! crate compiles for the client.

pub use protocol;
