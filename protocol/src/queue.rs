//! Queues on the stream: what a queue is, what its contacts did over a period, and the
//! service-level formulas, shared by the server that counts and the apps that show.
//!
//! Contact centers define service level differently, and a floor manager compares MONTI with the
//! dashboard they know, so the formula is a server setting that travels with the figures and
//! every app names the one used. With `A` answered within the target, `N` answered, `B`
//! abandoned, `S` of those short abandons (within `[queues] short_abandon_secs`) and `O` offered
//! (every leg that entered the queue, including those still waiting and those transferred on):
//! - [`ServiceLevelRule::AnsweredAndAbandoned`]: A / (N + B), every finished contact counts;
//! - [`ServiceLevelRule::IgnoreShortAbandons`] (the default): A / (N + B - S), callers who hung
//!   up within a few seconds (misdials) do not count against the floor;
//! - [`ServiceLevelRule::Offered`]: A / O;
//! - [`ServiceLevelRule::Answered`]: A / N, abandons do not count at all.
//!
//! Wire types: append-only like the rest of the protocol.

use serde::{Deserialize, Serialize};

use crate::model::TeamId;

/// Dense, server-assigned index of a queue.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct QueueId(pub u16);

/// What a queue's contacts are. Append-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Channel {
    /// Phone calls.
    Voice,
    /// Chats.
    Chat,
    /// E-mails.
    Email,
    /// Tasks (back-office work routed like contacts).
    Task,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 4] = [Channel::Voice, Channel::Chat, Channel::Email, Channel::Task];

    /// The stable name used in JSON and the database: `voice`, `chat`, `email`, `task`.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Voice => "voice",
            Channel::Chat => "chat",
            Channel::Email => "email",
            Channel::Task => "task",
        }
    }

    /// Parses [`Channel::name`].
    pub fn from_name(name: &str) -> Option<Channel> {
        Channel::ALL
            .into_iter()
            .find(|channel| channel.name() == name)
    }
}

/// A queue: what it is called, what it serves, its service-level target and who serves it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QueueInfo {
    /// Its dense id.
    pub id: QueueId,
    /// Display name, for example "Billing DE".
    pub name: String,
    /// What its contacts are.
    pub channel: Channel,
    /// Service-level target: answered within this many seconds...
    pub target_secs: u32,
    /// ... this share of the time, percent.
    pub goal_percent: u8,
    /// The teams that serve it. A viewer sees the queue when its scope names one of them.
    pub teams: Vec<TeamId>,
}

/// What the legs that entered a queue in a period did. Counts add up; `longest_wait_ms` is the
/// larger of the two.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QueueCounts {
    /// Legs that entered the queue.
    pub offered: u64,
    /// Of those, answered.
    pub answered: u64,
    /// Of those, answered within the queue's target.
    pub answered_in_target: u64,
    /// Legs abandoned.
    pub abandoned: u64,
    /// Of those, within the short-abandon threshold.
    pub abandoned_short: u64,
    /// Sum of the waits of answered legs, ms.
    pub answered_wait_ms: u64,
    /// The longest wait of an answered or abandoned leg, ms.
    pub longest_wait_ms: u64,
    /// Answered legs that are over.
    pub handled: u64,
    /// Sum of their handle times (connected to ended: talk and hold), ms.
    pub handle_ms: u64,
}

impl QueueCounts {
    /// Adds `other`'s legs to these.
    pub fn add(&mut self, other: &QueueCounts) {
        self.offered += other.offered;
        self.answered += other.answered;
        self.answered_in_target += other.answered_in_target;
        self.abandoned += other.abandoned;
        self.abandoned_short += other.abandoned_short;
        self.answered_wait_ms += other.answered_wait_ms;
        self.longest_wait_ms = self.longest_wait_ms.max(other.longest_wait_ms);
        self.handled += other.handled;
        self.handle_ms += other.handle_ms;
    }

    /// Average speed of answer, seconds; `None` before the first answer.
    pub fn asa_secs(&self) -> Option<f64> {
        (self.answered > 0).then(|| self.answered_wait_ms as f64 / self.answered as f64 / 1000.0)
    }

    /// Average handle time (talk and hold), seconds; `None` before the first contact is over.
    pub fn aht_secs(&self) -> Option<f64> {
        (self.handled > 0).then(|| self.handle_ms as f64 / self.handled as f64 / 1000.0)
    }
}

/// Which service-level formula a server counts by (see the module's description). Append-only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceLevelRule {
    /// Answered within target over answered and abandoned.
    AnsweredAndAbandoned,
    /// Answered within target over answered and abandoned, short abandons left out.
    #[default]
    IgnoreShortAbandons,
    /// Answered within target over offered.
    Offered,
    /// Answered within target over answered.
    Answered,
}

impl ServiceLevelRule {
    /// Every formula.
    pub const ALL: [ServiceLevelRule; 4] = [
        ServiceLevelRule::AnsweredAndAbandoned,
        ServiceLevelRule::IgnoreShortAbandons,
        ServiceLevelRule::Offered,
        ServiceLevelRule::Answered,
    ];

    /// The formula in words, for the apps to show.
    pub fn formula(self) -> &'static str {
        match self {
            ServiceLevelRule::AnsweredAndAbandoned => {
                "answered within target / (answered + abandoned)"
            }
            ServiceLevelRule::IgnoreShortAbandons => {
                "answered within target / (answered + abandoned - short abandons)"
            }
            ServiceLevelRule::Offered => "answered within target / offered",
            ServiceLevelRule::Answered => "answered within target / answered",
        }
    }

    /// The service level of `counts`, 0 to 1; `None` when nothing counts yet.
    pub fn of(self, counts: &QueueCounts) -> Option<f64> {
        let base = match self {
            ServiceLevelRule::AnsweredAndAbandoned => counts.answered + counts.abandoned,
            ServiceLevelRule::IgnoreShortAbandons => {
                (counts.answered + counts.abandoned).saturating_sub(counts.abandoned_short)
            }
            ServiceLevelRule::Offered => counts.offered,
            ServiceLevelRule::Answered => counts.answered,
        };
        (base > 0).then(|| counts.answered_in_target as f64 / base as f64)
    }
}

/// How the server counts queue figures on the stream: sent in every snapshot header of a
/// subscription with queues.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QueueRules {
    /// The service-level formula.
    pub service_level: ServiceLevelRule,
    /// An abandon within this many seconds is short.
    pub short_abandon_secs: u32,
    /// The length of the rolling window of [`QueueLive::recent`], whole minutes up to now.
    pub recent_minutes: u16,
}

/// A queue right now, as the stream carries it: whole, whenever any of it changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueLive {
    /// Which queue.
    pub queue: QueueId,
    /// Contacts waiting (queued or ringing, not yet answered).
    pub waiting: u32,
    /// How long before the message's time the oldest of them entered the queue.
    pub oldest_waiting_ms_ago: Option<u64>,
    /// Since midnight in the server's `[queues] time_zone`.
    pub today: QueueCounts,
    /// Over the last [`QueueRules::recent_minutes`].
    pub recent: QueueCounts,
}

/// [`QueueLive`] with absolute times, as a floor keeps it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueNow {
    /// Contacts waiting.
    pub waiting: u32,
    /// When the oldest of them entered the queue, ms since the epoch.
    pub oldest_waiting_since_ms: Option<u64>,
    /// Since midnight.
    pub today: QueueCounts,
    /// Over the rolling window.
    pub recent: QueueCounts,
}

impl QueueNow {
    /// The wire form for `queue`, with times relative to `time_ms`.
    pub fn to_live(&self, queue: QueueId, time_ms: u64) -> QueueLive {
        QueueLive {
            queue,
            waiting: self.waiting,
            oldest_waiting_ms_ago: (self.oldest_waiting_since_ms)
                .map(|since| time_ms.saturating_sub(since)),
            today: self.today,
            recent: self.recent,
        }
    }

    /// Read from the wire, relative to `time_ms`.
    pub fn from_live(live: &QueueLive, time_ms: u64) -> QueueNow {
        QueueNow {
            waiting: live.waiting,
            oldest_waiting_since_ms: (live.oldest_waiting_ms_ago)
                .map(|ago| time_ms.saturating_sub(ago)),
            today: live.today,
            recent: live.recent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_formula_counts_what_it_says() {
        let counts = QueueCounts {
            offered: 110,
            answered: 80,
            answered_in_target: 60,
            abandoned: 20,
            abandoned_short: 10,
            answered_wait_ms: 80 * 12_000,
            longest_wait_ms: 95_000,
            handled: 75,
            handle_ms: 75 * 240_000,
        };
        let cases = [
            (ServiceLevelRule::AnsweredAndAbandoned, 60.0 / 100.0),
            (ServiceLevelRule::IgnoreShortAbandons, 60.0 / 90.0),
            (ServiceLevelRule::Offered, 60.0 / 110.0),
            (ServiceLevelRule::Answered, 60.0 / 80.0),
        ];
        for (formula, expected) in cases {
            let got = formula.of(&counts).expect("counted");
            assert!((got - expected).abs() < 1e-12, "{formula:?}: {got}");
        }
        assert_eq!(counts.asa_secs(), Some(12.0));
        assert_eq!(counts.aht_secs(), Some(240.0));
    }

    #[test]
    fn nothing_counted_is_no_figure_not_zero() {
        let empty = QueueCounts::default();
        for formula in ServiceLevelRule::ALL {
            assert_eq!(formula.of(&empty), None);
        }
        assert_eq!(empty.asa_secs(), None);
        assert_eq!(empty.aht_secs(), None);
        // Only short abandons: no one the floor could have served.
        let misdials = QueueCounts {
            offered: 3,
            abandoned: 3,
            abandoned_short: 3,
            ..QueueCounts::default()
        };
        assert_eq!(ServiceLevelRule::IgnoreShortAbandons.of(&misdials), None);
        assert_eq!(
            ServiceLevelRule::AnsweredAndAbandoned.of(&misdials),
            Some(0.0)
        );
    }

    #[test]
    fn counts_add_up_and_the_longest_wait_is_the_longer() {
        let mut sum = QueueCounts {
            offered: 2,
            longest_wait_ms: 30_000,
            ..QueueCounts::default()
        };
        sum.add(&QueueCounts {
            offered: 3,
            answered: 1,
            longest_wait_ms: 10_000,
            ..QueueCounts::default()
        });
        assert_eq!(
            (sum.offered, sum.answered, sum.longest_wait_ms),
            (5, 1, 30_000)
        );
    }

    #[test]
    fn channel_names_round_trip() {
        for channel in Channel::ALL {
            assert_eq!(Channel::from_name(channel.name()), Some(channel));
        }
        assert_eq!(Channel::from_name("fax"), None);
    }
}
