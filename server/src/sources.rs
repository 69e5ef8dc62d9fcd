//! Where changes come from, and the one writer they all go through.
//!
//! - [`ingest`]: the one writer task (a transaction per group of batches, driving a plan), the
//!   event and roster APIs, the stale sweep, history retention and reconciles.
//! - [`amazon_connect`]: Amazon Connect agent events delivered by Firehose.
//! - [`connect_contacts`]: Amazon Connect contact events delivered by an EventBridge API
//!   destination.
//! - [`sim`]: the simulated call center (a pure model of queues, contacts and agents) that feeds
//!   the live floor through the ingest path.

pub mod amazon_connect;
pub mod connect_contacts;
pub mod ingest;
pub mod sim;
