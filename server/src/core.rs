//! The write side's pure core: no IO, no async, no clock of its own.
//!
//! - [`change`]: a committed fact in database terms, as stored, applied and shared.
//! - [`clock`]: the server's time, one [`clock::Clock`] handed to everything that reads it.
//! - [`contact`]: a contact's legs in queues, folded from its events in any order.
//! - [`queues`]: the queues' live figures, kept from what the writer commits: the contacts
//!   waiting, and minute by minute what the contacts that entered each queue did.
//! - [`plan`]: the rules: what a group of events or a roster sync stores and changes, decided
//!   against a [`plan::Catalog`] of what the floor knows.

pub mod change;
pub mod clock;
pub mod contact;
pub mod plan;
pub mod queues;
