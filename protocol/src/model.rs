//! The domain nouns every MONTI message speaks of: ids, agent states, roster entries, group keys.
//!
//! These are wire types: their serde shape *is* the postcard encoding, so enum variants are
//! append-only and fields are never reordered. This module has no logic beyond small accessors.

use serde::{Deserialize, Serialize};

/// Dense, server-assigned index of an agent on one server's floor.
///
/// Dense so that both sides can keep agents in a `Vec` and so that the id costs one to three
/// bytes as a varint. It is not the telephony system's agent id (that is the external id in the
/// database and in REST).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AgentId(pub u32);

/// Dense, server-assigned index of a team.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TeamId(pub u16);

/// Dense, server-assigned index of a site (a location: a building or a city).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SiteId(pub u16);

/// Dense, server-assigned index of a not-ready reason code. Reason codes are data (configured per
/// call center), not an enum, so only their ids travel in deltas.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReasonId(pub u16);

/// What an agent is doing right now, as a floor manager distinguishes it.
///
/// Append-only on the wire: a new state gets a new variant at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AgentStatus {
    /// Logged out of the telephony system.
    Offline,
    /// Logged in and waiting for a contact.
    Available,
    /// A contact is being offered and not yet answered.
    Ringing,
    /// Talking to a customer.
    OnCall,
    /// On a call with the customer on hold.
    OnHold,
    /// After-call work (wrap-up).
    WrapUp,
    /// Not ready: on a break, at lunch, in a meeting... with the reason code if one was given.
    NotReady(Option<ReasonId>),
    /// The telephony system stopped reporting on this logged-in agent (no events, no
    /// heartbeats): what the agent is doing is unknown. Set by the server, never ingested.
    Stale,
}

impl AgentStatus {
    /// The state of `kind`, with `reason` when it is not ready (ignored otherwise).
    pub fn of(kind: StateKind, reason: Option<ReasonId>) -> AgentStatus {
        match kind {
            StateKind::Offline => AgentStatus::Offline,
            StateKind::Available => AgentStatus::Available,
            StateKind::Ringing => AgentStatus::Ringing,
            StateKind::OnCall => AgentStatus::OnCall,
            StateKind::OnHold => AgentStatus::OnHold,
            StateKind::WrapUp => AgentStatus::WrapUp,
            StateKind::NotReady => AgentStatus::NotReady(reason),
            StateKind::Stale => AgentStatus::Stale,
        }
    }

    /// The state without its reason, for counting and colouring.
    pub fn kind(self) -> StateKind {
        match self {
            AgentStatus::Offline => StateKind::Offline,
            AgentStatus::Available => StateKind::Available,
            AgentStatus::Ringing => StateKind::Ringing,
            AgentStatus::OnCall => StateKind::OnCall,
            AgentStatus::OnHold => StateKind::OnHold,
            AgentStatus::WrapUp => StateKind::WrapUp,
            AgentStatus::NotReady(_) => StateKind::NotReady,
            AgentStatus::Stale => StateKind::Stale,
        }
    }

    /// The not-ready reason, if this is a not-ready state that has one.
    pub fn reason(self) -> Option<ReasonId> {
        match self {
            AgentStatus::NotReady(reason) => reason,
            _ => None,
        }
    }
}

/// The eight states without reasons: what summaries count and filters select.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum StateKind {
    /// See [`AgentStatus::Offline`].
    Offline,
    /// See [`AgentStatus::Available`].
    Available,
    /// See [`AgentStatus::Ringing`].
    Ringing,
    /// See [`AgentStatus::OnCall`].
    OnCall,
    /// See [`AgentStatus::OnHold`].
    OnHold,
    /// See [`AgentStatus::WrapUp`].
    WrapUp,
    /// See [`AgentStatus::NotReady`].
    NotReady,
    /// See [`AgentStatus::Stale`].
    Stale,
}

impl StateKind {
    /// How many kinds there are; summaries hold one count per kind.
    pub const COUNT: usize = 8;

    /// Every kind, in display order.
    pub const ALL: [StateKind; StateKind::COUNT] = [
        StateKind::Offline,
        StateKind::Available,
        StateKind::Ringing,
        StateKind::OnCall,
        StateKind::OnHold,
        StateKind::WrapUp,
        StateKind::NotReady,
        StateKind::Stale,
    ];

    /// Position in [`StateKind::ALL`] and in every per-state array.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The stable lowercase name used in JSON, the CLI and the database.
    pub fn name(self) -> &'static str {
        match self {
            StateKind::Offline => "offline",
            StateKind::Available => "available",
            StateKind::Ringing => "ringing",
            StateKind::OnCall => "on_call",
            StateKind::OnHold => "on_hold",
            StateKind::WrapUp => "wrap_up",
            StateKind::NotReady => "not_ready",
            StateKind::Stale => "stale",
        }
    }

    /// Parses [`StateKind::name`].
    pub fn from_name(name: &str) -> Option<StateKind> {
        StateKind::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// A set of [`StateKind`]s as a bitmask; one byte on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StateSet(pub u8);

impl StateSet {
    /// Every state: the default filter.
    pub const ALL: StateSet = StateSet(u8::MAX >> (8 - StateKind::COUNT));

    /// No state: a filter that lets nothing through.
    pub const NONE: StateSet = StateSet(0);

    /// The set with just these kinds.
    pub fn of(kinds: impl IntoIterator<Item = StateKind>) -> StateSet {
        StateSet(
            kinds
                .into_iter()
                .fold(0, |bits, kind| bits | 1 << kind.index()),
        )
    }

    /// Whether `kind` is in the set.
    pub fn contains(self, kind: StateKind) -> bool {
        self.0 & (1 << kind.index()) != 0
    }

    /// Whether the set selects everything (no state filter).
    pub fn is_all(self) -> bool {
        self.0 & StateSet::ALL.0 == StateSet::ALL.0
    }
}

impl Default for StateSet {
    fn default() -> Self {
        StateSet::ALL
    }
}

/// A site (location) of the call center.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Site {
    /// Its dense id.
    pub id: SiteId,
    /// Display name, for example "Berlin".
    pub name: String,
}

/// A team of agents.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Team {
    /// Its dense id.
    pub id: TeamId,
    /// Display name, for example "Billing 2".
    pub name: String,
}

/// A not-ready reason code such as lunch or training.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReasonCode {
    /// Its dense id.
    pub id: ReasonId,
    /// The stable code, for example `lunch`.
    pub code: String,
    /// What a person reads, for example "Lunch".
    pub label: String,
}

/// The roster entry of an agent: who they are and where they belong. Changes rarely.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AgentInfo {
    /// Dense id.
    pub id: AgentId,
    /// Display name.
    pub name: String,
    /// The team the agent belongs to.
    pub team: TeamId,
    /// The site the agent works at.
    pub site: SiteId,
}

/// How summaries are grouped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Grouping {
    /// One group per team.
    Team,
    /// One group per site.
    Site,
    /// One group per team and site pair that has agents (the matrix view).
    TeamSite,
}

impl Grouping {
    /// Every grouping.
    pub const ALL: [Grouping; 3] = [Grouping::Team, Grouping::Site, Grouping::TeamSite];

    /// The stable name used in JSON and the CLI: `team`, `site` or `team_site`.
    pub fn name(self) -> &'static str {
        match self {
            Grouping::Team => "team",
            Grouping::Site => "site",
            Grouping::TeamSite => "team_site",
        }
    }

    /// Parses [`Grouping::name`].
    pub fn from_name(name: &str) -> Option<Grouping> {
        Grouping::ALL
            .into_iter()
            .find(|grouping| grouping.name() == name)
    }

    /// The key of the group an agent of `team` at `site` falls into.
    pub fn key(self, team: TeamId, site: SiteId) -> GroupKey {
        match self {
            Grouping::Team => GroupKey {
                team: Some(team),
                site: None,
            },
            Grouping::Site => GroupKey {
                team: None,
                site: Some(site),
            },
            Grouping::TeamSite => GroupKey {
                team: Some(team),
                site: Some(site),
            },
        }
    }
}

/// Which group a summary describes: a team, a site, or a team at a site.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupKey {
    /// The team, for team and team x site groups.
    pub team: Option<TeamId>,
    /// The site, for site and team x site groups.
    pub site: Option<SiteId>,
}
