//! The server's time: milliseconds since the Unix epoch, from one place.
//!
//! Everything that stamps or compares times reads [`now_ms`]; the protocol crate never reads a
//! clock (time is passed in), so the pure parts stay testable with any time.

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}
