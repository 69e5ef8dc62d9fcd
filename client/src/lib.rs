//! The one MONTI client: what the CLI, the desktop app and the tests use to talk to a server.
//!
//! - [`auth`]: signing in with the device flow, token refresh, the refresh token in the keyring.
//! - [`connection`]: one WebSocket connection: URL, handshake, subscribe, receive with limits.
//! - [`follow`]: following a view for as long as it takes: reconnect with backoff and jitter,
//!   resync on any gap, fold into a [`monti_protocol::floor::Floor`].
//! - [`load`]: the load generator behind `monti-cli load`.
//! - [`transport`]: TLS with the system's trust store and an optional CA file, proxies, and
//!   errors that name their cause.
//!
//! Not here: rendering (the CLI's `main.rs`, the desktop crate) and anything of the server.

pub mod auth;
pub mod connection;
pub mod follow;
pub mod load;
pub mod transport;

pub use connection::{ClientError, Connection};
pub use follow::{Follower, Link, Step};
pub use transport::{Transport, TransportOptions};
