//! The floor in memory and its viewers.
//!
//! - [`live`]: the live floor, pending changes, ticks and their broadcast.
//! - [`stream`]: the WebSocket stream, one task per viewer.

pub mod live;
pub mod stream;
