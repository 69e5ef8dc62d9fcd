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

use chrono::TimeZone;

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

/// The time zone the queue figures' days and intervals are counted in: the server's own, or
/// one named in `[queues] time_zone` (compiled in, so a container without a zone database
/// counts the same days).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Zone {
    /// The server's local time zone (`TZ`, `/etc/localtime`).
    #[default]
    Local,
    /// An IANA zone such as `Europe/Berlin`.
    Named(chrono_tz::Tz),
}

impl Zone {
    /// `""` for the server's own, else an IANA name.
    pub fn parse(name: &str) -> Result<Zone, String> {
        if name.trim().is_empty() {
            return Ok(Zone::Local);
        }
        name.trim()
            .parse::<chrono_tz::Tz>()
            .map(Zone::Named)
            .map_err(|_| format!("{name:?} is not an IANA time zone such as Europe/Berlin"))
    }

    /// Midnight of the day `now_ms` falls in, ms since the epoch: where "today" starts.
    pub fn midnight(self, now_ms: u64) -> u64 {
        let day_ms = 24 * 3600 * 1000;
        let date = match self {
            Zone::Local => chrono::Local
                .timestamp_millis_opt(now_ms as i64)
                .single()
                .map(|at| at.date_naive()),
            Zone::Named(zone) => zone
                .timestamp_millis_opt(now_ms as i64)
                .single()
                .map(|at| at.date_naive()),
        };
        date.and_then(|date| self.midnight_of(date))
            .unwrap_or(now_ms - now_ms % day_ms)
    }

    /// The first moment of `date`, ms since the epoch (`None` for a date without one).
    pub fn midnight_of(self, date: chrono::NaiveDate) -> Option<u64> {
        let midnight = date.and_hms_opt(0, 0, 0)?;
        let at = match self {
            Zone::Local => chrono::Local
                .from_local_datetime(&midnight)
                .earliest()?
                .timestamp_millis(),
            Zone::Named(zone) => zone
                .from_local_datetime(&midnight)
                .earliest()?
                .timestamp_millis(),
        };
        Some(at.max(0) as u64)
    }

    /// `at_ms` as RFC 3339 in this zone, with its offset.
    pub fn rfc3339(self, at_ms: u64) -> String {
        let at = at_ms as i64;
        match self {
            Zone::Local => {
                (chrono::Local.timestamp_millis_opt(at).single()).map(|at| at.to_rfc3339())
            }
            Zone::Named(zone) => (zone.timestamp_millis_opt(at).single()).map(|at| at.to_rfc3339()),
        }
        .unwrap_or_default()
    }
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
mod zone_tests {
    use super::*;

    #[test]
    fn a_named_zone_counts_its_own_days_across_daylight_saving() {
        let berlin = Zone::parse("Europe/Berlin").expect("a zone");
        // 2026-03-29 02:00 CET becomes 03:00 CEST: the day after starts 23 hours later.
        let day = |d: u32| chrono::NaiveDate::from_ymd_opt(2026, 3, d).expect("a date");
        let (start, next) = (berlin.midnight_of(day(29)), berlin.midnight_of(day(30)));
        let (start, next) = (start.expect("midnight"), next.expect("midnight"));
        assert_eq!(next - start, 23 * 3600 * 1000);
        // 2026-03-28T23:30:00Z is already the 29th in Berlin, whose midnight was 23:00 UTC.
        let late = 1_774_740_600_000;
        assert_eq!(berlin.midnight(late), 1_774_738_800_000);
        assert_eq!(
            berlin.rfc3339(1_774_738_800_000),
            "2026-03-29T00:00:00+01:00"
        );
        assert_eq!(Zone::parse(""), Ok(Zone::Local));
        assert!(Zone::parse("Mars/Olympus").is_err());
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
