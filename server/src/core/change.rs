//! [`Change`]: what the write side commits, in the database's terms. The writer stores it, the
//! live floor applies it, other servers receive it; nothing here depends on any of them.

use monti_protocol::model::StateKind;
use monti_protocol::queue::QueueCounts;

/// A fact about the floor in the database's terms (database ids, names), as the ingest path
/// commits it and as servers share it with each other. The live floor (`LiveFloor::apply`)
/// turns these into the floor's dense ids. Applying a change twice, or late, is harmless:
/// roster changes are upserts and a state older than the agent's current one is ignored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Change {
    /// A site exists (or was renamed).
    Site {
        /// `site_id`
        id: i64,
        /// Its name.
        name: String,
    },
    /// A team exists (or was renamed).
    Team {
        /// `team_id`
        id: i64,
        /// Its name.
        name: String,
    },
    /// A site was deactivated; it has no active agents.
    SiteGone {
        /// `site_id`
        id: i64,
    },
    /// A team was deactivated; it has no active agents.
    TeamGone {
        /// `team_id`
        id: i64,
    },
    /// A reason code exists (or was relabelled).
    Reason {
        /// `reason_code_id`
        id: i64,
        /// The stable code.
        code: String,
        /// What people read.
        label: String,
    },
    /// An agent is active with this name, team and site.
    Agent {
        /// `agent_id`
        id: i64,
        /// The source's id for the agent.
        external_id: String,
        /// Display name.
        name: String,
        /// `team_id`
        team: i64,
        /// `site_id`
        site: i64,
    },
    /// An agent was deactivated.
    AgentGone {
        /// `agent_id`
        id: i64,
    },
    /// An agent's state, as stored in `agent_state`.
    State {
        /// `agent_id`
        agent: i64,
        /// The state (never [`StateKind::Stale`], which only the floor derives).
        state: StateKind,
        /// `reason_code_id` of a not-ready state.
        reason: Option<i64>,
        /// When the state began.
        since_ms: u64,
        /// When the source last reported on the agent.
        seen_ms: u64,
        /// Whether the source sends heartbeats (so that silence marks the agent stale).
        watched: bool,
    },
    /// The source reported on an agent without a new state (a heartbeat).
    Seen {
        /// `agent_id`
        agent: i64,
        /// When.
        at_ms: u64,
    },
    /// A queue exists with this name, channel, target and serving teams, or was deactivated.
    Queue {
        /// `queue_id`
        id: i64,
        /// Its name.
        name: String,
        /// `voice`, `chat`, `email` or `task`.
        channel: String,
        /// Service-level target, seconds.
        target_secs: u64,
        /// Service-level goal, percent.
        goal_percent: u8,
        /// `team_id`s of the teams that serve it.
        teams: Vec<i64>,
        /// Whether it is active.
        active: bool,
    },
    /// Where a contact waits (not yet answered): `(queue_id, queued_ms)`, or nowhere.
    Waiting {
        /// The source's id for the contact.
        contact: String,
        /// Its queue and since when, or `None`.
        waiting: Option<(i64, u64)>,
    },
    /// What the legs that entered a queue in one quarter hour did, minute by minute, as the
    /// database counts them (the whole quarter: it replaces what was known of it).
    QueueQuarter {
        /// `queue_id`
        queue: i64,
        /// The quarter's start, ms since the epoch.
        quarter_ms: u64,
        /// `(minute in the quarter, counts)` of the minutes with any leg.
        minutes: Vec<(u8, QueueCounts)>,
    },
}

/// Sites or teams: the two kinds of group, stored alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// The `site` table.
    Site,
    /// The `team` table.
    Team,
}

impl Group {
    /// `site` or `team`: the table's name, and the word for people.
    pub fn table(self) -> &'static str {
        match self {
            Group::Site => "site",
            Group::Team => "team",
        }
    }

    /// The change a site or team with this id and name makes (created or renamed).
    pub fn change(self, id: i64, name: &str) -> Change {
        let name = name.to_owned();
        match self {
            Group::Site => Change::Site { id, name },
            Group::Team => Change::Team { id, name },
        }
    }
}
