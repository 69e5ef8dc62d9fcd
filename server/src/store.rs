//! Where committed changes live and travel.
//!
//! - [`db`]: the SQL adapter (SQLite or PostgreSQL): master data and state history.
//! - [`share`]: the Redis stream that carries committed changes between servers.

pub mod db;
pub mod share;
