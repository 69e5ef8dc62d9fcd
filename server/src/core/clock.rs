//! The server's time: milliseconds since the Unix epoch, from one [`Clock`] handed to
//! everything that stamps or compares times.
//!
//! The protocol crate never reads a clock (time is passed in), and the server reads only the
//! clock it was given: the system's in production, a [`ManualClock`] in tests that need a time
//! of their own (an event from last week, an agent silent for ten minutes) without waiting for
//! it. Waiting itself (tick intervals, deadlines) stays on tokio's timers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Where the server reads the time. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// `None`: the system's clock.
    manual: Option<Arc<AtomicU64>>,
}

impl Clock {
    /// The system's clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        match &self.manual {
            Some(now) => now.load(Ordering::Relaxed),
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_millis() as u64),
        }
    }
}

/// Midnight of the day `now_ms` falls in, in the server's time zone, ms since the epoch: where
/// "today" starts for the queue figures.
pub fn local_midnight(now_ms: u64) -> u64 {
    use chrono::{Local, TimeZone};
    let day_ms = 24 * 3600 * 1000;
    let Some(now) = Local.timestamp_millis_opt(now_ms as i64).single() else {
        return now_ms - now_ms % day_ms;
    };
    now.date_naive()
        .and_hms_opt(0, 0, 0)
        .and_then(|midnight| Local.from_local_datetime(&midnight).earliest())
        .map_or(now_ms - now_ms % day_ms, |midnight| {
            midnight.timestamp_millis().max(0) as u64
        })
}

/// A clock that moves only when told: hand [`ManualClock::clock`] to the server, keep this.
#[derive(Debug)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock standing at `now_ms`.
    pub fn new(now_ms: u64) -> ManualClock {
        ManualClock(Arc::new(AtomicU64::new(now_ms)))
    }

    /// A clock standing where the system's is now.
    pub fn at_system_time() -> ManualClock {
        ManualClock::new(Clock::system().now_ms())
    }

    /// The clock to hand to the server.
    pub fn clock(&self) -> Clock {
        Clock {
            manual: Some(self.0.clone()),
        }
    }

    /// Moves the time on.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::Relaxed);
    }

    /// The time it stands at.
    pub fn now_ms(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_every_copy_sees_it() {
        let manual = ManualClock::new(1_000);
        let clock = manual.clock();
        let copy = clock.clone();
        assert_eq!(clock.now_ms(), 1_000);
        manual.advance(Duration::from_secs(2));
        assert_eq!((clock.now_ms(), copy.now_ms()), (3_000, 3_000));
    }

    #[test]
    fn the_system_clock_reads_the_time_of_day() {
        // 2020-01-01 in ms: any machine running this is later.
        assert!(Clock::system().now_ms() > 1_577_836_800_000);
    }
}
