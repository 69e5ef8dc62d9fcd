//! The JSON bodies of MONTI's ingest API: agent state events, contact events, roster sync and
//! state history.
//!
//! A telephony system or an HR system writes these; `server/openapi.json` (served at `/api/v1/openapi.json`) describes the same
//! shapes for people and code generators. Fields are named as a JSON integration expects them:
//! external ids and names, never the stream's dense ids.

use serde::{Deserialize, Serialize};

use crate::model::StateKind;

/// The longest event id or external (agent) id the API accepts, in bytes. Names, team and site
/// names and reason codes follow [`crate::names`] (at most [`crate::names::MAX_NAME_BYTES`]).
pub const MAX_ID_LEN: usize = 512;

/// `POST /api/v1/events`: a batch of agent state events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBatchJson {
    /// The events, in any order; each is judged on its own.
    pub events: Vec<AgentEventJson>,
}

/// One agent state event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentEventJson {
    /// The source's unique id for this event. A second event with the same id changes nothing.
    pub event_id: String,
    /// The source's id for the agent.
    pub agent: String,
    /// `available`, `ringing`, `on_call`, `on_hold`, `wrap_up`, `not_ready` or `offline`.
    pub state: String,
    /// The not-ready reason code, such as `lunch` (only with `not_ready`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the state began, milliseconds since the Unix epoch.
    pub since_ms: u64,
    /// The agent's display name, used when the agent is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The agent's team; moves the agent when it differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The agent's site; moves the agent when it differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
}

impl AgentEventJson {
    /// The event's state, after checking everything that can be checked without the database.
    /// `since_ms` must lie within `window` around `now_ms`.
    pub fn check(&self, now_ms: u64, window: &EventWindow) -> Result<StateKind, String> {
        check_id("event_id", &self.event_id)?;
        check_id("agent", &self.agent)?;
        for (field, value) in [
            ("reason", &self.reason),
            ("name", &self.name),
            ("team", &self.team),
            ("site", &self.site),
        ] {
            if let Some(value) = value {
                check_name(field, value)?;
            }
        }
        let state = StateKind::from_name(&self.state)
            .filter(|&state| state != StateKind::Stale)
            .ok_or_else(|| {
                format!(
                    "unknown state {:?}; use one of {}",
                    self.state,
                    INGEST_STATES.join(", ")
                )
            })?;
        if self.reason.is_some() && state != StateKind::NotReady {
            return Err("only a not_ready event has a reason".to_owned());
        }
        check_time("since_ms", self.since_ms, now_ms, window)?;
        Ok(state)
    }
}

const DAY_MS: u64 = 24 * 3600 * 1000;

/// `POST /api/v1/contact-events`: a batch of contact events (calls, chats, emails, tasks).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactEventBatchJson {
    /// The events, in any order; each is judged on its own.
    pub events: Vec<ContactEventJson>,
}

/// One step of a contact's life.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactEventJson {
    /// The source's unique id for this event. A second event with the same id changes nothing.
    pub event_id: String,
    /// The source's id for the contact.
    pub contact: String,
    /// `queued`, `offered`, `connected`, `ended` or `transferred`.
    pub kind: String,
    /// When it happened, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The queue (with `queued`): created if new.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// `voice`, `chat`, `email` or `task`: the channel of a queue created by this event
    /// (default `voice`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The agent's external id (with `offered` and `connected`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// What a contact event says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContactEventKind {
    /// The contact entered a queue: it arrived, or was transferred there.
    Queued,
    /// It was offered to an agent (ringing).
    Offered,
    /// An agent answered it.
    Connected,
    /// The customer or the agent ended it (while queued: abandoned).
    Ended,
    /// It went on as another contact (a source that gives a transfer a new id): its stay in
    /// the queue ended transferred, not abandoned, whenever the `ended` came.
    Transferred,
}

impl ContactEventKind {
    /// Every kind, in the order of a contact's life.
    pub const ALL: [ContactEventKind; 5] = [
        ContactEventKind::Queued,
        ContactEventKind::Offered,
        ContactEventKind::Connected,
        ContactEventKind::Ended,
        ContactEventKind::Transferred,
    ];

    /// Its name in JSON and in the database.
    pub fn name(self) -> &'static str {
        match self {
            ContactEventKind::Queued => "queued",
            ContactEventKind::Offered => "offered",
            ContactEventKind::Connected => "connected",
            ContactEventKind::Ended => "ended",
            ContactEventKind::Transferred => "transferred",
        }
    }

    /// The kind called `name`.
    pub fn from_name(name: &str) -> Option<ContactEventKind> {
        ContactEventKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
    }
}

/// The channels a queue can serve.
pub const CHANNELS: [&str; 4] = ["voice", "chat", "email", "task"];

impl ContactEventJson {
    /// The event's kind, after checking everything that can be checked without the database.
    /// `at_ms` must lie within `window` around `now_ms`.
    pub fn check(&self, now_ms: u64, window: &EventWindow) -> Result<ContactEventKind, String> {
        check_id("event_id", &self.event_id)?;
        check_id("contact", &self.contact)?;
        let kind = ContactEventKind::from_name(&self.kind).ok_or_else(|| {
            let names: Vec<&str> = ContactEventKind::ALL.iter().map(|k| k.name()).collect();
            format!(
                "unknown kind {:?}; use one of {}",
                self.kind,
                names.join(", ")
            )
        })?;
        match (kind, &self.queue) {
            (ContactEventKind::Queued, None) => {
                return Err("a queued event names its queue".to_owned());
            }
            (ContactEventKind::Queued, Some(queue)) => check_name("queue", queue)?,
            (_, Some(_)) => return Err("only a queued event names a queue".to_owned()),
            (_, None) => {}
        }
        if let Some(channel) = &self.channel {
            if kind != ContactEventKind::Queued {
                return Err("only a queued event names a channel".to_owned());
            }
            if !CHANNELS.contains(&channel.as_str()) {
                return Err(format!(
                    "unknown channel {channel:?}; use one of {}",
                    CHANNELS.join(", ")
                ));
            }
        }
        match (kind, &self.agent) {
            (ContactEventKind::Offered | ContactEventKind::Connected, None) => {
                return Err(format!("an {} event names its agent", kind.name()));
            }
            (ContactEventKind::Offered | ContactEventKind::Connected, Some(agent)) => {
                check_id("agent", agent)?
            }
            (_, Some(_)) => {
                return Err("only offered and connected events name an agent".to_owned());
            }
            (_, None) => {}
        }
        check_time("at_ms", self.at_ms, now_ms, window)?;
        Ok(kind)
    }
}

/// A time an event carries: since the epoch, at most `window.max_skew_ms` ahead of `now_ms` and
/// at most `window.max_age_ms` behind it.
fn check_time(field: &str, at_ms: u64, now_ms: u64, window: &EventWindow) -> Result<(), String> {
    if at_ms == 0 {
        return Err(format!("{field} must be milliseconds since the Unix epoch"));
    }
    if at_ms > now_ms.saturating_add(window.max_skew_ms) {
        return Err(format!(
            "{field} {} lies {} s in the future; at most {} s are taken (clock skew)",
            at_ms,
            (at_ms - now_ms) / 1000,
            window.max_skew_ms / 1000
        ));
    }
    if at_ms < now_ms.saturating_sub(window.max_age_ms) {
        return Err(format!(
            "{field} {} lies {} days in the past; events older than {} days are not taken",
            at_ms,
            (now_ms - at_ms) / DAY_MS,
            window.max_age_ms / DAY_MS
        ));
    }
    Ok(())
}

/// One stretch of a contact in one queue, as `GET /api/v1/contacts` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactLegJson {
    /// The source's id for the contact.
    pub contact: String,
    /// The queue.
    pub queue: String,
    /// When it entered the queue, ms since the epoch.
    pub queued_ms: u64,
    /// When it was last offered to an agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered_ms: Option<u64>,
    /// When an agent answered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_ms: Option<u64>,
    /// When it left the queue's hands: ended, abandoned or transferred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<u64>,
    /// The agent it was offered to or answered by (external id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// `waiting`, `ringing`, `connected`, `answered`, `abandoned` or `transferred`.
    pub outcome: String,
}

/// How far from the server's clock an event's `since_ms` may lie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventWindow {
    /// Ahead of the clock (the sources' clock skew).
    pub max_skew_ms: u64,
    /// Behind it (a replayed or mistaken event from long ago is not a state).
    pub max_age_ms: u64,
}

impl Default for EventWindow {
    fn default() -> Self {
        EventWindow {
            max_skew_ms: 5 * 60 * 1000,
            max_age_ms: 7 * DAY_MS,
        }
    }
}

/// The states an event may carry (`stale` is the server's conclusion, never a source's).
pub const INGEST_STATES: [&str; 7] = [
    "available",
    "ringing",
    "on_call",
    "on_hold",
    "wrap_up",
    "not_ready",
    "offline",
];

/// A name, team, site or reason code as [`crate::names`] allows it.
pub fn check_name(field: &str, value: &str) -> Result<(), String> {
    match crate::names::name_problem(value) {
        None => Ok(()),
        Some(problem) => Err(format!("{field} {problem}")),
    }
}

/// An event id or external id: not blank, at most [`MAX_ID_LEN`] bytes, no invisible
/// characters.
pub fn check_id(field: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("{field} is empty"));
    }
    if value.len() > MAX_ID_LEN {
        return Err(format!("{field} is longer than {MAX_ID_LEN} bytes"));
    }
    if let Some(c) = value.chars().find(|&c| crate::names::is_invisible(c)) {
        return Err(format!(
            "{field} contains the invisible character U+{:04X}",
            u32::from(c)
        ));
    }
    Ok(())
}

/// What became of one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Stored, and now the agent's current state.
    Applied,
    /// Stored in the history, but the agent's current state began later, so it stays.
    Older,
    /// An event with this id was stored before; nothing changed.
    Duplicate,
    /// Not stored; `reason` says why.
    Refused,
}

impl Outcome {
    /// The name used in JSON and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Older => "older",
            Outcome::Duplicate => "duplicate",
            Outcome::Refused => "refused",
        }
    }
}

/// The answer to a batch: one result per event, in the order sent, and the totals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventBatchResultJson {
    /// Events now current.
    pub applied: usize,
    /// Events stored as history only.
    pub older: usize,
    /// Events seen before.
    pub duplicates: usize,
    /// Events refused.
    pub refused: usize,
    /// Per event, in the order of the request.
    pub results: Vec<EventResultJson>,
}

impl EventBatchResultJson {
    /// Totals from the per-event results.
    pub fn new(results: Vec<EventResultJson>) -> EventBatchResultJson {
        let count = |outcome| results.iter().filter(|r| r.outcome == outcome).count();
        EventBatchResultJson {
            applied: count(Outcome::Applied),
            older: count(Outcome::Older),
            duplicates: count(Outcome::Duplicate),
            refused: count(Outcome::Refused),
            results,
        }
    }
}

/// What became of one event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventResultJson {
    /// The event's id as sent (empty if it had none).
    pub event_id: String,
    /// What happened.
    pub outcome: Outcome,
    /// Why it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `POST /api/v1/roster`: sites, teams, reason codes and agents to create, update or
/// deactivate, applied all together or not at all.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RosterSyncJson {
    /// Sites by name.
    pub sites: Vec<GroupEntryJson>,
    /// Teams by name.
    pub teams: Vec<GroupEntryJson>,
    /// Reason codes.
    pub reasons: Vec<ReasonEntryJson>,
    /// Agents by external id.
    pub agents: Vec<AgentEntryJson>,
    /// Deactivate every active agent not listed in `agents` (a full sync from an HR system).
    pub deactivate_missing_agents: bool,
    /// Queues by name, with the teams that serve them.
    pub queues: Vec<QueueEntryJson>,
}

/// A queue in a roster sync: created or updated, its serving teams replaced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueEntryJson {
    /// Its name, which identifies it.
    pub name: String,
    /// `voice` (the default), `chat`, `email` or `task`.
    #[serde(default = "voice")]
    pub channel: String,
    /// Service level target: answered within this many seconds (default 20)...
    #[serde(default = "twenty")]
    pub target_secs: u64,
    /// ... this share of the time, percent (default 80).
    #[serde(default = "eighty")]
    pub goal_percent: u8,
    /// The teams that serve it (existing, or in this sync): callers who see one of them see
    /// the queue.
    #[serde(default)]
    pub teams: Vec<String>,
    /// `false` deactivates it.
    #[serde(default = "yes")]
    pub active: bool,
}

fn voice() -> String {
    "voice".to_owned()
}

fn twenty() -> u64 {
    20
}

fn eighty() -> u8 {
    80
}

impl QueueEntryJson {
    /// Checks what can be checked without the database.
    pub fn check(&self) -> Result<(), String> {
        check_name("queue", &self.name)?;
        if !CHANNELS.contains(&self.channel.as_str()) {
            return Err(format!(
                "queue {:?}: unknown channel {:?}; use one of {}",
                self.name,
                self.channel,
                CHANNELS.join(", ")
            ));
        }
        if !(1..=3_600).contains(&self.target_secs) {
            return Err(format!(
                "queue {:?}: target_secs must be 1 to 3600, not {}",
                self.name, self.target_secs
            ));
        }
        if !(1..=100).contains(&self.goal_percent) {
            return Err(format!(
                "queue {:?}: goal_percent must be 1 to 100, not {}",
                self.name, self.goal_percent
            ));
        }
        for team in &self.teams {
            check_name("team", team)?;
        }
        Ok(())
    }
}

/// A site or team in a roster sync.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupEntryJson {
    /// Its name, which identifies it.
    pub name: String,
    /// A new name for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rename_to: Option<String>,
    /// `false` deactivates it; it must have no active agents by the end of the sync.
    #[serde(default = "yes")]
    pub active: bool,
}

/// A reason code in a roster sync.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonEntryJson {
    /// The stable code, such as `lunch`.
    pub code: String,
    /// What people read, such as "Lunch".
    pub label: String,
}

/// An agent in a roster sync.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentEntryJson {
    /// The source's id for the agent.
    pub external_id: String,
    /// Display name.
    pub name: String,
    /// Team name (existing, or in this sync).
    pub team: String,
    /// Site name (existing, or in this sync).
    pub site: String,
    /// `false` deactivates the agent: it leaves the floor.
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// What a roster sync changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterSyncResultJson {
    /// Sites created or renamed or reactivated.
    pub sites: usize,
    /// Teams created or renamed or reactivated.
    pub teams: usize,
    /// Reason codes created or relabelled.
    pub reasons: usize,
    /// Agents created or changed.
    pub agents: usize,
    /// Agents deactivated.
    pub agents_deactivated: usize,
    /// Teams and sites deactivated.
    pub groups_deactivated: usize,
    /// Queues created or updated.
    #[serde(default)]
    pub queues: usize,
}

/// A page of `GET /api/v1/history`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPageJson {
    /// Oldest first.
    pub entries: Vec<HistoryEntryJson>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<i64>,
}

/// One stored state change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntryJson {
    /// The agent's external id.
    pub agent: String,
    /// The agent's display name.
    pub name: String,
    /// The agent's team now.
    pub team: String,
    /// The agent's site now.
    pub site: String,
    /// The state name.
    pub state: String,
    /// The not-ready reason code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the state began, milliseconds since the epoch.
    pub since_ms: i64,
    /// When MONTI stored it.
    pub received_ms: i64,
    /// The source's event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(state: &str) -> AgentEventJson {
        AgentEventJson {
            event_id: "e1".into(),
            agent: "a1".into(),
            state: state.into(),
            reason: None,
            since_ms: 1_000,
            name: None,
            team: None,
            site: None,
        }
    }

    #[test]
    fn checks_say_what_is_wrong() {
        // An event from one second ago, judged a second later.
        let now = 1_800_000_000_000;
        let w = EventWindow::default();
        let at = |state: &str| AgentEventJson {
            since_ms: now - 1_000,
            ..event(state)
        };
        assert_eq!(at("on_call").check(now, &w), Ok(StateKind::OnCall));
        let stale = at("stale")
            .check(now, &w)
            .expect_err("stale is not ingested");
        assert!(stale.contains("unknown state"), "{stale}");
        let mut lunch = at("available");
        lunch.reason = Some("lunch".into());
        assert!(lunch.check(now, &w).is_err());
        lunch.state = "not_ready".into();
        assert_eq!(lunch.check(now, &w), Ok(StateKind::NotReady));
        let mut future = at("available");
        future.since_ms = now + w.max_skew_ms + 1_000;
        let why = future.check(now, &w).expect_err("future");
        assert!(
            why.contains("301 s in the future") && why.contains("at most 300 s"),
            "{why}"
        );
        // 1970 (or anything over a week old) is not a state anyone is in.
        let ancient = event("available");
        let why = ancient.check(now, &w).expect_err("1970");
        assert!(
            why.contains("days in the past") && why.contains("older than 7 days"),
            "{why}"
        );
        let mut week = at("available");
        week.since_ms = now - w.max_age_ms + 60_000;
        assert!(week.check(now, &w).is_ok());
        let mut blank = at("available");
        blank.agent = " ".into();
        assert_eq!(blank.check(now, &w), Err("agent is empty".to_owned()));
        let mut long = at("available");
        long.event_id = "x".repeat(MAX_ID_LEN + 1);
        assert!(long.check(now, &w).is_err());
    }

    #[test]
    fn totals_count_the_results() {
        let result = |outcome| EventResultJson {
            event_id: "e".into(),
            outcome,
            reason: None,
        };
        let batch = EventBatchResultJson::new(vec![
            result(Outcome::Applied),
            result(Outcome::Applied),
            result(Outcome::Duplicate),
            result(Outcome::Refused),
        ]);
        assert_eq!(
            (batch.applied, batch.older, batch.duplicates, batch.refused),
            (2, 0, 1, 1)
        );
        let json = serde_json::to_value(&batch.results[2]).expect("json");
        assert_eq!(json["outcome"], "duplicate");
    }
}
