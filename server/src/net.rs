//! Connections.
//!
//! - [`listen`]: accepting connections (plain or TLS) with header deadlines and per-address caps.
//! - [`tls`]: serving https and wss directly, with certificate reload.
//! - [`peer`]: the client's address and scheme, forwarded only by trusted proxies.

pub mod listen;
pub mod peer;
pub mod tls;
