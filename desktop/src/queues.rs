//! The queues as the floor manager sees them, computed without any UI: each queue's figures
//! with what needs attention (more waiting than its threshold, a contact waiting too long,
//! service level below its goal), worst first; and which of those became new since the last
//! look, for the operating-system notifications.

use std::collections::{BTreeMap, BTreeSet};

use monti_protocol::floor::{Floor, QueueAgents};
use monti_protocol::queue::{QueueCounts, QueueId, QueueRules};

use crate::model::{Level, duration_text};
use crate::settings::{QueueNotify, QueueThresholds};

/// What is wrong with a queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Problem {
    /// A contact has waited longer than the threshold (red).
    Oldest,
    /// More contacts wait than the threshold (amber).
    Waiting,
    /// Today's service level is below the goal (amber).
    ServiceLevel,
}

impl Problem {
    /// How bad it is.
    pub fn level(self) -> Level {
        match self {
            Problem::Oldest => Level::Red,
            Problem::Waiting | Problem::ServiceLevel => Level::Amber,
        }
    }

    /// Whether the floor manager asked to be notified of it.
    pub fn notifies(self, notify: &QueueNotify) -> bool {
        match self {
            Problem::Oldest => notify.oldest,
            Problem::Waiting => notify.waiting,
            Problem::ServiceLevel => notify.service_level,
        }
    }
}

/// One queue as shown.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueRow {
    /// Which queue.
    pub id: QueueId,
    /// Its name.
    pub name: String,
    /// `voice`, `chat`, ...
    pub channel: &'static str,
    /// Service-level target, seconds.
    pub target_secs: u32,
    /// Service-level goal, percent.
    pub goal_percent: u8,
    /// Contacts waiting.
    pub waiting: u32,
    /// When the oldest of them entered the queue (server ms).
    pub oldest_since_ms: Option<u64>,
    /// Since midnight.
    pub today: QueueCounts,
    /// Over the rolling window.
    pub recent: QueueCounts,
    /// Today's service level, 0 to 1.
    pub service_level: Option<f64>,
    /// The serving teams' agents this app holds, when it can count them.
    pub agents: Option<QueueAgents>,
    /// What needs attention, worst first.
    pub problems: Vec<Problem>,
    /// The thresholds it was judged by.
    pub thresholds: QueueThresholds,
}

impl QueueRow {
    /// The worst of its problems.
    pub fn level(&self) -> Level {
        (self.problems.iter())
            .map(|problem| problem.level())
            .max()
            .unwrap_or(Level::Normal)
    }

    /// The threshold for the oldest wait, seconds (the target unless set).
    pub fn oldest_limit_secs(&self) -> u32 {
        self.thresholds
            .oldest_above_secs
            .unwrap_or(self.target_secs)
    }

    /// A problem in words, for the attention list and notifications.
    pub fn describe(&self, problem: Problem, now_ms: u64) -> String {
        match problem {
            Problem::Oldest => format!(
                "{}: a contact has waited {} (over {})",
                self.name,
                duration_text(now_ms.saturating_sub(self.oldest_since_ms.unwrap_or(now_ms))),
                duration_text(u64::from(self.oldest_limit_secs()) * 1000)
            ),
            Problem::Waiting => format!(
                "{}: {} waiting (over {})",
                self.name,
                self.waiting,
                self.thresholds.waiting_above.unwrap_or(0)
            ),
            Problem::ServiceLevel => format!(
                "{}: service level {:.0} % (goal {} %)",
                self.name,
                self.service_level.unwrap_or(0.0) * 100.0,
                self.goal_percent
            ),
        }
    }
}

/// Every queue on the floor, those needing attention first (red, then amber, then by name).
pub fn rows(
    floor: &Floor,
    thresholds: &BTreeMap<String, QueueThresholds>,
    now_ms: u64,
) -> Vec<QueueRow> {
    let rules: QueueRules = floor.queue_rules();
    let mut rows: Vec<QueueRow> = (floor.queues())
        .map(|queue| {
            let info = &queue.info;
            let now = &queue.now;
            let thresholds = thresholds.get(&info.name).copied().unwrap_or_default();
            let service_level = rules.service_level.of(&now.today);
            let mut row = QueueRow {
                id: info.id,
                name: info.name.clone(),
                channel: info.channel.name(),
                target_secs: info.target_secs,
                goal_percent: info.goal_percent,
                waiting: now.waiting,
                oldest_since_ms: now.oldest_waiting_since_ms,
                today: now.today,
                recent: now.recent,
                service_level,
                agents: floor.queue_agents(info.id),
                problems: Vec::new(),
                thresholds,
            };
            row.problems = problems(&row, now_ms);
            row
        })
        .collect();
    rows.sort_by(|a, b| {
        (b.level().cmp(&a.level())).then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
    });
    rows
}

fn problems(row: &QueueRow, now_ms: u64) -> Vec<Problem> {
    let mut problems = Vec::new();
    let waited_ms = row
        .oldest_since_ms
        .map(|since| now_ms.saturating_sub(since));
    if waited_ms.is_some_and(|ms| ms > u64::from(row.oldest_limit_secs()) * 1000) {
        problems.push(Problem::Oldest);
    }
    if row
        .thresholds
        .waiting_above
        .is_some_and(|above| row.waiting > above)
    {
        problems.push(Problem::Waiting);
    }
    let goal = f64::from(row.goal_percent) / 100.0;
    if row.thresholds.below_goal && row.service_level.is_some_and(|level| level < goal) {
        problems.push(Problem::ServiceLevel);
    }
    problems
}

/// The problems a floor manager has been told of, so each is notified once when it appears and
/// again only after it cleared.
#[derive(Clone, Debug, Default)]
pub struct Notified {
    active: BTreeSet<(String, Problem)>,
}

impl Notified {
    /// The problems that appeared since the last call and ask for a notification, in words;
    /// forgets those that cleared.
    pub fn news(&mut self, rows: &[QueueRow], notify: &QueueNotify, now_ms: u64) -> Vec<String> {
        let now: BTreeSet<(String, Problem)> = (rows.iter())
            .flat_map(|row| (row.problems.iter()).map(|problem| (row.name.clone(), *problem)))
            .collect();
        let mut news = Vec::new();
        for (name, problem) in now.difference(&self.active) {
            if problem.notifies(notify)
                && let Some(row) = rows.iter().find(|row| &row.name == name)
            {
                news.push(row.describe(*problem, now_ms));
            }
        }
        self.active = now;
        news
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample;

    #[test]
    fn queues_needing_attention_come_first_with_what_is_wrong() {
        let now = sample::NOW_MS;
        let floor = sample::floor_with_queues(now);
        let rows = rows(&floor, &BTreeMap::new(), now);
        let names: Vec<&str> = rows.iter().map(|row| row.name.as_str()).collect();
        // Billing: a contact waiting 95 s against a 20 s target (red), 7 waiting and 75 % today
        // (amber); Sales: 81 % against 80 % (fine); Chat: nothing waiting, 57 % against 80 %.
        assert_eq!(names, ["Billing Voice", "Chat Support", "Sales Voice"]);
        assert_eq!(
            rows[0].problems,
            [Problem::Oldest, Problem::Waiting, Problem::ServiceLevel]
        );
        assert_eq!(rows[0].level(), Level::Red);
        assert_eq!(rows[1].problems, [Problem::ServiceLevel]);
        assert!(rows[2].problems.is_empty());
        assert_eq!(
            rows[0].describe(Problem::Oldest, now),
            "Billing Voice: a contact has waited 1:35 (over 0:20)"
        );
    }

    #[test]
    fn thresholds_per_queue_replace_the_defaults() {
        let now = sample::NOW_MS;
        let floor = sample::floor_with_queues(now);
        let relaxed = QueueThresholds {
            waiting_above: Some(10),
            oldest_above_secs: Some(120),
            below_goal: false,
        };
        let thresholds = BTreeMap::from([
            ("Billing Voice".to_owned(), relaxed),
            ("Chat Support".to_owned(), relaxed),
        ]);
        let rows = rows(&floor, &thresholds, now);
        assert!(rows.iter().all(|row| row.problems.is_empty()), "{rows:?}");
    }

    #[test]
    fn a_problem_is_notified_once_when_it_appears_and_only_if_asked() {
        let now = sample::NOW_MS;
        let floor = sample::floor_with_queues(now);
        let rows = rows(&floor, &BTreeMap::new(), now);
        let mut notified = Notified::default();
        assert!(
            notified
                .news(&rows, &QueueNotify::default(), now)
                .is_empty()
        );
        let mut notified = Notified::default();
        let ask = QueueNotify {
            oldest: true,
            ..QueueNotify::default()
        };
        assert_eq!(
            notified.news(&rows, &ask, now),
            ["Billing Voice: a contact has waited 1:35 (over 0:20)"]
        );
        assert!(notified.news(&rows, &ask, now).is_empty(), "told once");
        // Cleared, then back: told again.
        assert!(notified.news(&[], &ask, now).is_empty());
        assert_eq!(notified.news(&rows, &ask, now).len(), 1);
    }
}
