//! MONTI's shared protocol: what the server and every client agree on, and nothing else.
//!
//! - [`model`]: ids, agent states, roster entries and group keys.
//! - [`message`]: the stream's messages in both directions.
//! - [`codec`]: encoding and decoding of frames, with size limits (postcard inside).
//! - [`floor`]: the floor of agents and the pure fold of snapshots and deltas into it.
//! - [`tick`]: collecting changes, committing them once per tick, and cutting per-viewer deltas.
//! - [`queue`]: queues, their counts and the service-level formulas.
//! - [`scope`]: what a viewer may see, applied where snapshots and deltas are cut.
//! - [`rest`]: the JSON bodies of the REST API.
//! - [`ingest`]: the JSON bodies of the ingest API (events, roster sync, history).
//! - [`access`]: roles, group bindings, test access and feedback.
//!
//! This crate has no async runtime, no network and no file access (an architecture invariant:
//! see `ARCHITECTURE.md`), so everything in it is tested with plain unit and property tests.

pub mod access;
pub mod codec;
pub mod floor;
pub mod ingest;
pub mod message;
pub mod model;
pub mod names;
pub mod queue;
pub mod rest;
pub mod scope;
pub mod tick;

/// The version of the stream protocol. Client and server must agree exactly; the server refuses
/// any other version with [`message::ErrorCode::VersionMismatch`] and a readable reason.
///
/// Bump it whenever a message's encoding changes in a way an older peer would misread.
pub const PROTOCOL_VERSION: u16 = 3;

/// The path of the stream endpoint on a server.
pub const STREAM_PATH: &str = "/api/v1/stream";
