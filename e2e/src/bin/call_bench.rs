//! `call-bench`: call set-up time in headless Chromium on loopback. (Written below.)
fn main() {}
