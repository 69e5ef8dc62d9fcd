//! The queues' live figures, kept from what the writer commits, without IO.
//!
//! Two kinds of fact reach a [`QueueBoard`], both absolute so that applying one twice or late
//! changes nothing (the rule for every [`crate::core::change::Change`]):
//! - where a contact waits: in which queue since when, or nowhere (answered, abandoned, gone);
//! - what the legs that entered a queue in one quarter hour did, minute by minute, as the
//!   database counts them after the commit (a quarter replaces what was known of it).
//!
//! From these the board computes each queue's figures: contacts waiting and the oldest of them,
//! today's counts (the quarters since midnight) and the rolling window's (the last
//! `recent_minutes` whole minutes, the current one included). Figures are recomputed for the
//! queues a fact touched, and for every queue when a minute passes (the window moves).
//!
//! Memory: per queue, one total per quarter hour of the day (at most 96) and minute detail only
//! for the last 75 minutes; per contact waiting, one entry.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use monti_protocol::queue::{QueueCounts, QueueNow};

/// One minute, ms.
pub const MINUTE_MS: u64 = 60_000;
/// A quarter hour, ms: the unit the writer recounts and the board keeps.
pub const QUARTER_MS: u64 = 15 * MINUTE_MS;
/// A contact waiting longer than this is taken for a lost `ended` event, not for a caller.
pub const WAITING_AT_MOST_MS: u64 = 24 * 3600 * 1000;
/// Minute detail is kept for quarters that began this recently: the longest rolling window
/// (60 minutes) and the quarter in progress.
const DETAIL_MS: u64 = 75 * MINUTE_MS;

/// The quarter hour `at_ms` falls in (quarters start on the epoch's quarter hours, which are
/// quarter hours in every time zone in use).
pub fn quarter_of(at_ms: u64) -> u64 {
    at_ms - at_ms % QUARTER_MS
}

/// The live figures of every queue, by database id.
#[derive(Debug, Default)]
pub struct QueueBoard {
    /// Where each waiting contact waits: `(queue_id, queued_ms)`.
    waiting: HashMap<String, (i64, u64)>,
    queues: HashMap<i64, Figures>,
    /// Queues touched since the figures were last computed.
    dirty: BTreeSet<i64>,
    /// The minute the figures were last computed in.
    minute: u64,
    recent_minutes: u16,
}

#[derive(Debug, Default)]
struct Figures {
    /// Contacts waiting, by the moment they entered the queue.
    waiting: BTreeMap<u64, u32>,
    quarters: BTreeMap<u64, Quarter>,
}

#[derive(Debug)]
struct Quarter {
    total: QueueCounts,
    /// Per minute, while the quarter is recent enough for a rolling window.
    minutes: Option<Box<[QueueCounts; 15]>>,
}

impl QueueBoard {
    /// An empty board whose rolling window is `recent_minutes` long.
    pub fn new(recent_minutes: u16) -> QueueBoard {
        QueueBoard {
            recent_minutes: recent_minutes.max(1),
            ..QueueBoard::default()
        }
    }

    /// A contact now waits in `queue` since `queued_ms`, or (`None`) waits nowhere.
    pub fn set_waiting(&mut self, contact: &str, waiting: Option<(i64, u64)>) {
        let old = match waiting {
            Some(at) => self.waiting.insert(contact.to_owned(), at),
            None => self.waiting.remove(contact),
        };
        if old == waiting {
            return;
        }
        if let Some((queue, since)) = old {
            let figures = self.queues.entry(queue).or_default();
            if let Some(count) = figures.waiting.get_mut(&since) {
                *count -= 1;
                if *count == 0 {
                    figures.waiting.remove(&since);
                }
            }
            self.dirty.insert(queue);
        }
        if let Some((queue, since)) = waiting {
            *self
                .queues
                .entry(queue)
                .or_default()
                .waiting
                .entry(since)
                .or_default() += 1;
            self.dirty.insert(queue);
        }
    }

    /// Has the queue's figures computed again at the next [`QueueBoard::due`] (a queue the
    /// floor has just learnt of, whose facts may have come first).
    pub fn touch(&mut self, queue: i64) {
        self.dirty.insert(queue);
    }

    /// Exactly these contacts wait (a reload from the database): the others wait nowhere.
    pub fn replace_waiting(&mut self, waiting: &[(String, i64, u64)]) {
        let wanted: HashMap<&str, (i64, u64)> = (waiting.iter())
            .map(|(contact, queue, since)| (contact.as_str(), (*queue, *since)))
            .collect();
        let gone: Vec<String> = (self.waiting.keys())
            .filter(|contact| !wanted.contains_key(contact.as_str()))
            .cloned()
            .collect();
        for contact in gone {
            self.set_waiting(&contact, None);
        }
        for (contact, at) in wanted {
            self.set_waiting(contact, Some(at));
        }
    }

    /// What the legs that entered `queue` in the quarter starting at `quarter_ms` did, minute
    /// by minute (`(minute in the quarter, counts)`; minutes not listed had none).
    pub fn set_quarter(
        &mut self,
        queue: i64,
        quarter_ms: u64,
        minutes: &[(u8, QueueCounts)],
        now_ms: u64,
    ) {
        let mut detail = Box::new([QueueCounts::default(); 15]);
        let mut total = QueueCounts::default();
        for (minute, counts) in minutes {
            if let Some(slot) = detail.get_mut(usize::from(*minute)) {
                slot.add(counts);
                total.add(counts);
            }
        }
        let recent = quarter_ms + DETAIL_MS > now_ms;
        let quarters = &mut self.queues.entry(queue).or_default().quarters;
        quarters.insert(
            quarter_ms,
            Quarter {
                total,
                minutes: recent.then_some(detail),
            },
        );
        self.dirty.insert(queue);
    }

    /// The figures of the queues that changed since the last call: those touched, and every
    /// queue once a minute (the rolling window moves, and the day at midnight).
    pub fn due(&mut self, now_ms: u64, midnight_ms: u64) -> Vec<(i64, QueueNow)> {
        let minute = now_ms / MINUTE_MS;
        if minute != self.minute {
            self.minute = minute;
            let lost: Vec<String> = (self.waiting.iter())
                .filter(|(_, (_, since))| since + WAITING_AT_MOST_MS < now_ms)
                .map(|(contact, _)| contact.clone())
                .collect();
            for contact in lost {
                self.set_waiting(&contact, None);
            }
            for figures in self.queues.values_mut() {
                figures.prune(now_ms, midnight_ms);
            }
            self.dirty.extend(self.queues.keys().copied());
        }
        let window_ms = (minute + 1).saturating_sub(u64::from(self.recent_minutes)) * MINUTE_MS;
        (std::mem::take(&mut self.dirty).into_iter())
            .map(|queue| {
                let now = (self.queues.get(&queue))
                    .map(|figures| figures.now(now_ms, midnight_ms, window_ms))
                    .unwrap_or_default();
                (queue, now)
            })
            .collect()
    }
}

impl Figures {
    /// Drops the quarters before midnight and the minute detail of old quarters.
    fn prune(&mut self, now_ms: u64, midnight_ms: u64) {
        self.quarters
            .retain(|&quarter, _| quarter + QUARTER_MS > midnight_ms);
        for (&quarter, kept) in &mut self.quarters {
            if quarter + DETAIL_MS <= now_ms {
                kept.minutes = None;
            }
        }
    }

    fn now(&self, now_ms: u64, midnight_ms: u64, window_ms: u64) -> QueueNow {
        let since = now_ms.saturating_sub(WAITING_AT_MOST_MS);
        let waiting = self.waiting.range(since..);
        let mut today = QueueCounts::default();
        for quarter in self
            .quarters
            .range(quarter_of(midnight_ms)..)
            .map(|(_, q)| q)
        {
            today.add(&quarter.total);
        }
        let mut recent = QueueCounts::default();
        for (&start, quarter) in self.quarters.range(quarter_of(window_ms)..) {
            for (minute, counts) in quarter.minutes.iter().flat_map(|m| m.iter().enumerate()) {
                let at = start + minute as u64 * MINUTE_MS;
                if at >= window_ms && at <= now_ms {
                    recent.add(counts);
                }
            }
        }
        QueueNow {
            waiting: waiting.clone().map(|(_, n)| *n).sum(),
            oldest_waiting_since_ms: waiting.map(|(since, _)| *since).next(),
            today,
            recent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIDNIGHT: u64 = 1_764_460_800_000; // a quarter-hour boundary
    const HOUR: u64 = 60 * MINUTE_MS;

    fn offered(n: u64) -> QueueCounts {
        QueueCounts {
            offered: n,
            ..QueueCounts::default()
        }
    }

    #[test]
    fn waiting_contacts_count_and_the_oldest_ticks_from_its_queueing() {
        let mut board = QueueBoard::new(15);
        let now = MIDNIGHT + 9 * HOUR;
        board.set_waiting("a", Some((1, now - 40_000)));
        board.set_waiting("b", Some((1, now - 10_000)));
        board.set_waiting("c", Some((2, now - 5_000)));
        // Repeated facts change nothing; the oldest answered leaves the younger one oldest.
        board.set_waiting("b", Some((1, now - 10_000)));
        let figures: BTreeMap<i64, QueueNow> = board.due(now, MIDNIGHT).into_iter().collect();
        assert_eq!(figures[&1].waiting, 2);
        assert_eq!(figures[&1].oldest_waiting_since_ms, Some(now - 40_000));
        board.set_waiting("a", None);
        board.set_waiting("a", None);
        let figures: BTreeMap<i64, QueueNow> = board.due(now, MIDNIGHT).into_iter().collect();
        assert_eq!(figures.keys().copied().collect::<Vec<_>>(), vec![1]);
        assert_eq!(figures[&1].waiting, 1);
        assert_eq!(figures[&1].oldest_waiting_since_ms, Some(now - 10_000));
        // Moved to another queue (a transfer).
        board.set_waiting("b", Some((2, now)));
        let figures: BTreeMap<i64, QueueNow> = board.due(now, MIDNIGHT).into_iter().collect();
        assert_eq!(figures[&1].waiting, 0);
        assert_eq!(figures[&2].waiting, 2);
    }

    #[test]
    fn a_reload_leaves_exactly_the_stored_waiting_contacts() {
        let mut board = QueueBoard::new(15);
        let now = MIDNIGHT + HOUR;
        board.set_waiting("gone", Some((1, now - 1_000)));
        board.set_waiting("kept", Some((1, now - 2_000)));
        board.replace_waiting(&[("kept".into(), 1, now - 2_000), ("new".into(), 2, now)]);
        let figures: BTreeMap<i64, QueueNow> = board.due(now, MIDNIGHT).into_iter().collect();
        assert_eq!(figures[&1].waiting, 1);
        assert_eq!(figures[&1].oldest_waiting_since_ms, Some(now - 2_000));
        assert_eq!(figures[&2].waiting, 1);
    }

    #[test]
    fn today_adds_the_quarters_since_midnight_and_the_window_its_last_minutes() {
        let mut board = QueueBoard::new(15);
        let now = MIDNIGHT + 10 * HOUR + 7 * MINUTE_MS + 30_000; // 10:07:30
        // Yesterday's last quarter, a morning quarter, and the quarters around now.
        board.set_quarter(1, MIDNIGHT - QUARTER_MS, &[(0, offered(100))], now);
        board.set_quarter(1, MIDNIGHT + 8 * HOUR, &[(3, offered(10))], now);
        let q945 = MIDNIGHT + 9 * HOUR + 3 * QUARTER_MS;
        board.set_quarter(
            1,
            q945,
            &[(0, offered(1)), (7, offered(2)), (14, offered(4))],
            now,
        );
        let q1000 = MIDNIGHT + 10 * HOUR;
        board.set_quarter(1, q1000, &[(0, offered(8)), (7, offered(16))], now);
        let figures = board.due(now, MIDNIGHT);
        let (_, queue) = figures[0];
        assert_eq!(queue.today.offered, 10 + 1 + 2 + 4 + 8 + 16);
        // 15 whole minutes up to now, the current one included: 09:53 to 10:07.
        assert_eq!(queue.recent.offered, 4 + 8 + 16);
        // A recount replaces the quarter: the same fact twice is the same figures.
        board.set_quarter(1, q1000, &[(0, offered(8)), (7, offered(16))], now);
        assert_eq!(board.due(now, MIDNIGHT), figures);
    }

    #[test]
    fn every_queue_is_recomputed_when_a_minute_passes_and_only_then() {
        let mut board = QueueBoard::new(1);
        let now = MIDNIGHT + 10 * HOUR;
        board.set_quarter(1, now, &[(0, offered(3))], now);
        board.set_waiting("a", Some((2, now)));
        assert_eq!(board.due(now, MIDNIGHT).len(), 2);
        assert!(board.due(now + 30_000, MIDNIGHT).is_empty());
        let next_minute = board.due(now + MINUTE_MS, MIDNIGHT);
        assert_eq!(next_minute.len(), 2);
        // The one-minute window moved past the minute with the three contacts.
        let one = next_minute
            .iter()
            .find(|(queue, _)| *queue == 1)
            .expect("queue 1");
        assert_eq!((one.1.today.offered, one.1.recent.offered), (3, 0));
    }

    #[test]
    fn the_day_starts_again_at_midnight_and_lost_contacts_stop_waiting() {
        let mut board = QueueBoard::new(15);
        let evening = MIDNIGHT + 23 * HOUR + 50 * MINUTE_MS;
        board.set_quarter(1, quarter_of(evening), &[(0, offered(5))], evening);
        board.set_waiting("lost", Some((1, evening - WAITING_AT_MOST_MS + MINUTE_MS)));
        let (_, before) = board.due(evening, MIDNIGHT)[0];
        assert_eq!((before.today.offered, before.waiting), (5, 1));
        let morning = MIDNIGHT + 24 * HOUR + 5 * MINUTE_MS;
        let (_, after) = board.due(morning, MIDNIGHT + 24 * HOUR)[0];
        assert_eq!((after.today.offered, after.waiting), (0, 0));
        assert_eq!(after.oldest_waiting_since_ms, None);
        assert!(board.waiting.is_empty(), "the lost contact is forgotten");
    }
}
