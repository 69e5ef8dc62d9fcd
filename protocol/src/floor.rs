//! The floor: every agent in a view with its state, and the pure fold of snapshots and deltas.
//!
//! The server keeps one [`Floor`] for the whole call center and cuts snapshots for each
//! subscription from it ([`Floor::snapshot`]); clients keep one for their subscribed view and fold
//! what the server sends into it ([`Floor::apply`]). Because both sides run the same code, a test
//! can check that a snapshot folded with its deltas equals a fresh snapshot at the same sequence
//! number.
//!
//! Aggregation is incremental. Agents are counted per team x site *cell*; team and site summaries
//! add up the few cells of that team or site. Each cell keeps, per state, a list of its agents
//! ordered by when they entered the state, linked through the agents themselves, so that the
//! longest time in state is the list's head and a state change costs O(1): live changes arrive in
//! time order and are appended at the tail. (An out-of-order change walks back from the tail.)
//!
//! No IO, no clock: time is always passed in.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::codec::MAX_AGENT_ID;
use crate::message::{
    AgentLive, Delta, Detail, GroupSummary, RosterChange, ServerMsg, SnapshotChunk, SnapshotHeader,
    StatusChange, Subscription,
};
use crate::model::{
    AgentId, AgentInfo, AgentStatus, GroupKey, Grouping, ReasonCode, ReasonId, Site, SiteId,
    StateKind, StateSet, Team, TeamId,
};
use crate::queue::{QueueId, QueueInfo, QueueLive, QueueNow, QueueRules};
use crate::scope::{Scope, View};

/// Why a message could not be folded into a floor. Every variant means "ask for a new snapshot".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FoldError {
    /// A delta's sequence number did not follow the floor's.
    #[error("sequence gap: expected {expected}, got {got}")]
    Gap {
        /// The sequence number the floor expected.
        expected: u64,
        /// The one that arrived.
        got: u64,
    },
    /// A snapshot chunk arrived out of order or without its first chunk.
    #[error("snapshot chunk {got} arrived, expected {expected}")]
    ChunkOutOfOrder {
        /// The chunk index the floor expected.
        expected: u32,
        /// The one that arrived.
        got: u32,
    },
    /// A delta arrived before any snapshot, or while one was incomplete.
    #[error("delta without a complete snapshot")]
    NoSnapshot,
    /// A message referred to an agent the roster does not have.
    #[error("unknown agent {0:?}")]
    UnknownAgent(AgentId),
    /// An agent id beyond [`MAX_AGENT_ID`].
    #[error("agent id {0:?} out of range")]
    AgentOutOfRange(AgentId),
    /// Figures arrived for a queue the floor does not have.
    #[error("unknown queue {0:?}")]
    UnknownQueue(QueueId),
}

/// A team or site a subscription names that does not exist for its viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unnamed {
    /// No such team (or none the viewer may name).
    #[error("there is no team with id {}", .0.0)]
    Team(TeamId),
    /// No such site (or none the viewer may name).
    #[error("there is no site with id {}", .0.0)]
    Site(SiteId),
}

/// A roster entry with its current state.
#[derive(Clone, Debug)]
pub struct AgentRecord {
    /// Who the agent is.
    pub info: AgentInfo,
    /// The agent's state, when it is in the view's state filter.
    pub live: Option<Live>,
    /// Position in its cell's per-state list; meaningful only while `live` is set.
    link: Link,
}

impl PartialEq for AgentRecord {
    /// The list position is left out: agents that entered a state in the same millisecond may
    /// be listed in either order.
    fn eq(&self, other: &AgentRecord) -> bool {
        self.info == other.info && self.live == other.live
    }
}

impl Eq for AgentRecord {}

/// An agent's state and the moment it began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Live {
    /// The state.
    pub status: AgentStatus,
    /// When it began, milliseconds since the Unix epoch (server clock).
    pub since_ms: u64,
}

/// A queue on a floor: what it is and its figures now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueRecord {
    /// What the queue is.
    pub info: QueueInfo,
    /// Its figures as of the floor's sequence number.
    pub now: QueueNow,
}

/// The agents of a queue's serving teams, as a floor can count them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueAgents {
    /// Logged in (neither offline nor stale).
    pub staffed: u32,
    /// Available for the next contact.
    pub available: u32,
    /// Ringing, on a contact, on hold or in wrap-up.
    pub on_contact: u32,
}

impl QueueAgents {
    fn add(&mut self, counts: &[u32; StateKind::COUNT]) {
        let n = |kind: StateKind| counts[kind.index()];
        self.staffed += counts.iter().sum::<u32>() - n(StateKind::Offline) - n(StateKind::Stale);
        self.available += n(StateKind::Available);
        self.on_contact += n(StateKind::Ringing)
            + n(StateKind::OnCall)
            + n(StateKind::OnHold)
            + n(StateKind::WrapUp);
    }
}

/// Counts and longest time in state of one group, with absolute times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupStats {
    /// Which group.
    pub key: GroupKey,
    /// Agents per state, indexed by [`StateKind::index`].
    pub counts: [u32; StateKind::COUNT],
    /// Per state, when the agent that has been in it longest entered it.
    pub oldest_since_ms: [Option<u64>; StateKind::COUNT],
}

impl GroupStats {
    pub(crate) fn empty(key: GroupKey) -> GroupStats {
        GroupStats {
            key,
            counts: [0; StateKind::COUNT],
            oldest_since_ms: [None; StateKind::COUNT],
        }
    }

    /// All agents in the group, whatever their state.
    pub fn total(&self) -> u32 {
        self.counts.iter().sum()
    }

    pub(crate) fn merge(&mut self, other: &GroupStats) {
        for kind in 0..StateKind::COUNT {
            self.counts[kind] += other.counts[kind];
            self.oldest_since_ms[kind] =
                match (self.oldest_since_ms[kind], other.oldest_since_ms[kind]) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
        }
    }

    /// The same stats with every state outside `states` zeroed.
    pub fn masked(mut self, states: StateSet) -> GroupStats {
        for kind in StateKind::ALL {
            if !states.contains(kind) {
                self.counts[kind.index()] = 0;
                self.oldest_since_ms[kind.index()] = None;
            }
        }
        self
    }

    /// The wire form, with times relative to `time_ms`.
    pub fn to_summary(&self, time_ms: u64) -> GroupSummary {
        GroupSummary {
            key: self.key,
            counts: self.counts,
            longest_ms_ago: self
                .oldest_since_ms
                .map(|since| since.map(|since| time_ms.saturating_sub(since))),
        }
    }

    fn from_summary(summary: &GroupSummary, time_ms: u64) -> GroupStats {
        GroupStats {
            key: summary.key,
            counts: summary.counts,
            oldest_since_ms: summary
                .longest_ms_ago
                .map(|ago| ago.map(|ago| time_ms.saturating_sub(ago))),
        }
    }
}

const NIL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Link {
    prev: u32,
    next: u32,
}

const UNLINKED: Link = Link {
    prev: NIL,
    next: NIL,
};

/// The agents of one team at one site, counted per state, with per-state lists ordered by the
/// moment each agent entered the state (head = longest in state).
#[derive(Clone, Debug)]
struct Cell {
    counts: [u32; StateKind::COUNT],
    head: [u32; StateKind::COUNT],
    tail: [u32; StateKind::COUNT],
}

impl Cell {
    fn new() -> Cell {
        Cell {
            counts: [0; StateKind::COUNT],
            head: [NIL; StateKind::COUNT],
            tail: [NIL; StateKind::COUNT],
        }
    }

    fn is_empty(&self) -> bool {
        self.counts.iter().all(|&count| count == 0)
    }
}

/// One view of the floor: the whole call center on the server, a subscription on a client.
#[derive(Clone, Debug)]
pub struct Floor {
    detail: Detail,
    grouping: Grouping,
    states: StateSet,
    seq: u64,
    time_ms: u64,
    roster_version: u64,
    sites: BTreeMap<SiteId, Site>,
    teams: BTreeMap<TeamId, Team>,
    reasons: BTreeMap<ReasonId, ReasonCode>,
    /// Indexed by [`AgentId`]; `None` for ids not in this view.
    agents: Vec<Option<AgentRecord>>,
    n_agents: usize,
    cells: HashMap<(TeamId, SiteId), Cell>,
    /// Which sites each team has agents at (and the reverse): the cells a summary adds up.
    team_sites: BTreeMap<TeamId, BTreeSet<SiteId>>,
    site_teams: BTreeMap<SiteId, BTreeSet<TeamId>>,
    /// Where the roster places agents, with or without a state: how many of each team at each
    /// site, and the reverse. What a scope may name follows it ([`Floor::names_team`]).
    placed: BTreeMap<TeamId, BTreeMap<SiteId, u32>>,
    placed_by_site: BTreeMap<SiteId, BTreeMap<TeamId, u32>>,
    /// Summary detail only: the groups as the server last described them.
    received_groups: BTreeMap<GroupKey, GroupStats>,
    /// The queues (on a client: those its viewer may see, when it asked for queues).
    queues: BTreeMap<QueueId, QueueRecord>,
    queue_rules: QueueRules,
    /// A snapshot being received; it replaces this floor when its last chunk arrives.
    incoming: Option<Box<Floor>>,
    next_chunk: u32,
    /// Whether a complete snapshot has been applied (always true on the server's floor).
    ready: bool,
}

impl PartialEq for Floor {
    /// Equal when they show the same thing. Aggregates and in-flight snapshots are derived or
    /// transient and left out, and so is the roster version: a client's is the last change
    /// *inside its scope*, the server's the last change anywhere (a client whose version lags
    /// merely receives the roster again on its next snapshot).
    fn eq(&self, other: &Floor) -> bool {
        self.detail == other.detail
            && self.grouping == other.grouping
            && self.states == other.states
            && self.seq == other.seq
            && self.time_ms == other.time_ms
            && self.sites == other.sites
            && self.teams == other.teams
            && self.reasons == other.reasons
            && self.n_agents == other.n_agents
            && self.agents().eq(other.agents())
            && self.received_groups == other.received_groups
            && self.queues == other.queues
            && self.queue_rules == other.queue_rules
    }
}

impl Default for Floor {
    fn default() -> Self {
        Floor::new()
    }
}

impl Floor {
    /// An empty floor showing every agent in every state: what the server keeps.
    pub fn new() -> Floor {
        Floor {
            detail: Detail::Agents,
            grouping: Grouping::Team,
            states: StateSet::ALL,
            seq: 0,
            time_ms: 0,
            roster_version: 0,
            sites: BTreeMap::new(),
            teams: BTreeMap::new(),
            reasons: BTreeMap::new(),
            agents: Vec::new(),
            n_agents: 0,
            cells: HashMap::new(),
            team_sites: BTreeMap::new(),
            site_teams: BTreeMap::new(),
            placed: BTreeMap::new(),
            placed_by_site: BTreeMap::new(),
            received_groups: BTreeMap::new(),
            queues: BTreeMap::new(),
            queue_rules: QueueRules::default(),
            incoming: None,
            next_chunk: 0,
            ready: true,
        }
    }

    /// An empty client-side floor that waits for its first snapshot.
    pub fn awaiting_snapshot() -> Floor {
        Floor {
            ready: false,
            ..Floor::new()
        }
    }

    // ---- reading ----

    /// Whether a complete snapshot has been folded in (deltas can be applied).
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// The sequence number of the last snapshot or delta folded in.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Server time of [`Floor::seq`], milliseconds since the Unix epoch.
    pub fn time_ms(&self) -> u64 {
        self.time_ms
    }

    /// The roster version the agents refer to.
    pub fn roster_version(&self) -> u64 {
        self.roster_version
    }

    /// The detail level of this view.
    pub fn detail(&self) -> Detail {
        self.detail
    }

    /// The grouping this view was subscribed with.
    pub fn grouping(&self) -> Grouping {
        self.grouping
    }

    /// The state filter of this view.
    pub fn states(&self) -> StateSet {
        self.states
    }

    /// Sites in the view, by id.
    pub fn sites(&self) -> impl Iterator<Item = &Site> {
        self.sites.values()
    }

    /// Teams in the view, by id.
    pub fn teams(&self) -> impl Iterator<Item = &Team> {
        self.teams.values()
    }

    /// Reason codes, by id.
    pub fn reasons(&self) -> impl Iterator<Item = &ReasonCode> {
        self.reasons.values()
    }

    /// A site by id.
    pub fn site(&self, id: SiteId) -> Option<&Site> {
        self.sites.get(&id)
    }

    /// A team by id.
    pub fn team(&self, id: TeamId) -> Option<&Team> {
        self.teams.get(&id)
    }

    /// A reason code by id.
    pub fn reason(&self, id: ReasonId) -> Option<&ReasonCode> {
        self.reasons.get(&id)
    }

    /// Agents in the roster of this view, by id.
    pub fn agents(&self) -> impl Iterator<Item = &AgentRecord> {
        self.agents.iter().flatten()
    }

    /// One agent.
    pub fn agent(&self, id: AgentId) -> Option<&AgentRecord> {
        self.agents.get(id.0 as usize).and_then(Option::as_ref)
    }

    /// How many agents the roster of this view has.
    pub fn n_agents(&self) -> usize {
        self.n_agents
    }

    /// The queues, by id.
    pub fn queues(&self) -> impl Iterator<Item = &QueueRecord> {
        self.queues.values()
    }

    /// One queue.
    pub fn queue(&self, id: QueueId) -> Option<&QueueRecord> {
        self.queues.get(&id)
    }

    /// How the queue figures are counted.
    pub fn queue_rules(&self) -> QueueRules {
        self.queue_rules
    }

    /// The agents of the queue's serving teams this floor holds: counted from its agents, or,
    /// for a summary view grouped by team (or team and site), from the summaries. `None` when
    /// the floor cannot tell (a summary view grouped by site).
    pub fn queue_agents(&self, id: QueueId) -> Option<QueueAgents> {
        let queue = self.queues.get(&id)?;
        let mut agents = QueueAgents::default();
        match (self.detail, self.grouping) {
            (Detail::Agents, _) => {
                for &team in &queue.info.teams {
                    for &site in self.team_sites.get(&team).into_iter().flatten() {
                        if let Some(cell) = self.cells.get(&(team, site)) {
                            agents.add(&cell.counts);
                        }
                    }
                }
            }
            (Detail::Summary, Grouping::Site) => return None,
            (Detail::Summary, _) => {
                for stats in self.received_groups.values() {
                    if stats
                        .key
                        .team
                        .is_some_and(|team| queue.info.teams.contains(&team))
                    {
                        agents.add(&stats.counts);
                    }
                }
            }
        }
        Some(agents)
    }

    /// The queue as a viewer limited to `scope` sees it: naming only the serving teams it may
    /// name; `None` when the queue is not in its view.
    pub fn queue_for(&self, scope: &Scope, id: QueueId) -> Option<QueueInfo> {
        let info = &self.queues.get(&id)?.info;
        let teams = scope.queue_teams(&info.teams, |team, site| self.places(team, site))?;
        Some(QueueInfo {
            teams,
            ..info.clone()
        })
    }

    /// Whether the roster has agents of `team` at `site` (with or without a state).
    pub fn places(&self, team: TeamId, site: SiteId) -> bool {
        self.placed
            .get(&team)
            .is_some_and(|sites| sites.contains_key(&site))
    }

    /// The sites where the roster has agents of `team`.
    pub fn sites_of_team(&self, team: TeamId) -> Vec<SiteId> {
        self.placed
            .get(&team)
            .map(|sites| sites.keys().copied().collect())
            .unwrap_or_default()
    }

    /// The teams the roster has agents of at `site`.
    pub fn teams_at_site(&self, site: SiteId) -> Vec<TeamId> {
        self.placed_by_site
            .get(&site)
            .map(|teams| teams.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Whether `view` may name the team: it exists, and the view names it where its agents are.
    pub fn names_team(&self, view: View<'_>, team: TeamId) -> bool {
        self.teams.contains_key(&team) && view.names_team(team, |site| self.places(team, site))
    }

    /// Whether `view` may name the site; see [`Floor::names_team`].
    pub fn names_site(&self, view: View<'_>, site: SiteId) -> bool {
        self.sites.contains_key(&site) && view.names_site(site, |team| self.places(team, site))
    }

    /// Whether a viewer limited to `scope` may name the team at all (whatever it subscribes to).
    pub fn scope_names_team(&self, scope: &Scope, team: TeamId) -> bool {
        self.names_team(View::new(&Subscription::default(), scope), team)
    }

    /// Whether a viewer limited to `scope` may name the site at all.
    pub fn scope_names_site(&self, scope: &Scope, site: SiteId) -> bool {
        self.names_site(View::new(&Subscription::default(), scope), site)
    }

    /// Checks that every team and site a subscription names exists and may be named by a viewer
    /// limited to `scope`. Both failures give the same answer, so that a viewer cannot tell a
    /// team it may not see from one that does not exist.
    pub fn check_names(&self, sub: &Subscription, scope: &Scope) -> Result<(), Unnamed> {
        if let Some(&team) = (sub.teams.iter()).find(|&&team| !self.scope_names_team(scope, team)) {
            return Err(Unnamed::Team(team));
        }
        if let Some(&site) = (sub.sites.iter()).find(|&&site| !self.scope_names_site(scope, site)) {
            return Err(Unnamed::Site(site));
        }
        Ok(())
    }

    /// Every (team, site) cell that holds agents, in no particular order.
    pub fn cell_keys(&self) -> impl Iterator<Item = (TeamId, SiteId)> + '_ {
        self.cells.keys().copied()
    }

    /// The summary of every non-empty group under `grouping`, ordered by key.
    ///
    /// For an agents view the summaries come from the local aggregates; for a summary view they
    /// are what the server sent (only for the subscribed grouping).
    pub fn summaries(&self, grouping: Grouping) -> Vec<GroupStats> {
        if self.detail == Detail::Summary {
            return self.received_groups.values().cloned().collect();
        }
        let keys: Vec<GroupKey> = match grouping {
            Grouping::Team => self
                .team_sites
                .keys()
                .map(|&team| GroupKey {
                    team: Some(team),
                    site: None,
                })
                .collect(),
            Grouping::Site => self
                .site_teams
                .keys()
                .map(|&site| GroupKey {
                    team: None,
                    site: Some(site),
                })
                .collect(),
            Grouping::TeamSite => {
                let mut keys: Vec<GroupKey> = self
                    .cells
                    .keys()
                    .map(|&(team, site)| GroupKey {
                        team: Some(team),
                        site: Some(site),
                    })
                    .collect();
                keys.sort();
                keys
            }
        };
        keys.into_iter()
            .filter_map(|key| self.group_stats(key, None))
            .collect()
    }

    /// The summary of one group, counting only cells whose team and site pass `view` (all
    /// cells when `None`). `None` when the group has no agents.
    ///
    /// Costs one step per site of the team (or team of the site), never one per agent.
    pub fn group_stats(&self, key: GroupKey, view: Option<View<'_>>) -> Option<GroupStats> {
        let mut stats = GroupStats::empty(key);
        let mut add_cell = |team: TeamId, site: SiteId| {
            if view.is_some_and(|view| !view.covers(team, site)) {
                return;
            }
            if let Some(cell) = self.cells.get(&(team, site)) {
                stats.merge(&self.cell_stats(key, cell));
            }
        };
        match (key.team, key.site) {
            (Some(team), Some(site)) => add_cell(team, site),
            (Some(team), None) => {
                for &site in self.team_sites.get(&team).into_iter().flatten() {
                    add_cell(team, site);
                }
            }
            (None, Some(site)) => {
                for &team in self.site_teams.get(&site).into_iter().flatten() {
                    add_cell(team, site);
                }
            }
            (None, None) => {
                for &(team, site) in self.cells.keys() {
                    add_cell(team, site);
                }
            }
        }
        (stats.total() > 0).then_some(stats)
    }

    fn cell_stats(&self, key: GroupKey, cell: &Cell) -> GroupStats {
        GroupStats {
            key,
            counts: cell.counts,
            oldest_since_ms: cell
                .head
                .map(|head| (head != NIL).then(|| self.since_of(head))),
        }
    }

    fn since_of(&self, idx: u32) -> u64 {
        self.agents[idx as usize]
            .as_ref()
            .and_then(|record| record.live)
            .map_or(0, |live| live.since_ms)
    }

    // ---- changing (the server's floor, and the fold) ----

    /// Sets the floor's sequence number and time; the server does this once per tick.
    pub fn advance(&mut self, seq: u64, time_ms: u64) {
        self.seq = seq;
        self.time_ms = time_ms;
    }

    /// Marks the roster as changed at `seq`.
    pub fn set_roster_version(&mut self, version: u64) {
        self.roster_version = version;
    }

    /// Adds or renames a site.
    pub fn upsert_site(&mut self, site: Site) {
        self.sites.insert(site.id, site);
    }

    /// Adds or renames a team.
    pub fn upsert_team(&mut self, team: Team) {
        self.teams.insert(team.id, team);
    }

    /// Removes a team. Its agents must have been removed or moved first; any left keep their
    /// now unnamed team id.
    pub fn remove_team(&mut self, id: TeamId) {
        self.teams.remove(&id);
    }

    /// Removes a site; see [`Floor::remove_team`].
    pub fn remove_site(&mut self, id: SiteId) {
        self.sites.remove(&id);
    }

    /// Adds or relabels a reason code.
    pub fn upsert_reason(&mut self, reason: ReasonCode) {
        self.reasons.insert(reason.id, reason);
    }

    /// Sets how queue figures are counted (the server's configuration).
    pub fn set_queue_rules(&mut self, rules: QueueRules) {
        self.queue_rules = rules;
    }

    /// Adds a queue or changes it; its figures are kept.
    pub fn upsert_queue(&mut self, info: QueueInfo) {
        match self.queues.get_mut(&info.id) {
            Some(record) => record.info = info,
            None => {
                let now = QueueNow::default();
                self.queues.insert(info.id, QueueRecord { info, now });
            }
        }
    }

    /// Removes a queue.
    pub fn remove_queue(&mut self, id: QueueId) {
        self.queues.remove(&id);
    }

    /// Sets a queue's figures.
    pub fn set_queue_now(&mut self, id: QueueId, now: QueueNow) -> Result<(), FoldError> {
        let record = self
            .queues
            .get_mut(&id)
            .ok_or(FoldError::UnknownQueue(id))?;
        record.now = now;
        Ok(())
    }

    /// Adds an agent to the roster or changes its name, team or site; its state is kept.
    /// Returns the previous roster entry.
    pub fn upsert_agent(&mut self, info: AgentInfo) -> Result<Option<AgentInfo>, FoldError> {
        let idx = slot(info.id)?;
        if self.agents.len() <= idx {
            self.agents.resize(idx + 1, None);
        }
        let Some(record) = self.agents[idx].as_mut() else {
            self.place(info.team, info.site);
            self.agents[idx] = Some(AgentRecord {
                info,
                live: None,
                link: UNLINKED,
            });
            self.n_agents += 1;
            return Ok(None);
        };
        if record.info.team == info.team && record.info.site == info.site {
            return Ok(Some(std::mem::replace(&mut record.info, info)));
        }
        // Moving cells: take the agent out of its old cell and put it into the new one.
        let (old_team, old_site) = (record.info.team, record.info.site);
        self.unplace(old_team, old_site);
        self.place(info.team, info.site);
        let live = self.unlink(info.id);
        let old = self.agents[idx]
            .as_mut()
            .map(|record| std::mem::replace(&mut record.info, info));
        if let Some(live) = live {
            self.link(idx as u32, live);
        }
        Ok(old)
    }

    /// Removes an agent from the roster. Returns its last entry.
    pub fn remove_agent(&mut self, id: AgentId) -> Option<AgentRecord> {
        self.agents.get(id.0 as usize)?.as_ref()?;
        self.unlink(id);
        let record = self.agents[id.0 as usize].take();
        if let Some(record) = &record {
            self.unplace(record.info.team, record.info.site);
        }
        self.n_agents -= 1;
        record
    }

    fn place(&mut self, team: TeamId, site: SiteId) {
        *self
            .placed
            .entry(team)
            .or_default()
            .entry(site)
            .or_default() += 1;
        *self
            .placed_by_site
            .entry(site)
            .or_default()
            .entry(team)
            .or_default() += 1;
    }

    fn unplace(&mut self, team: TeamId, site: SiteId) {
        fn forget<K: Ord, V: Ord>(index: &mut BTreeMap<K, BTreeMap<V, u32>>, key: K, value: V) {
            let Some(values) = index.get_mut(&key) else {
                return;
            };
            if let Some(count) = values.get_mut(&value) {
                *count -= 1;
                if *count == 0 {
                    values.remove(&value);
                }
            }
            if values.is_empty() {
                index.remove(&key);
            }
        }
        forget(&mut self.placed, team, site);
        forget(&mut self.placed_by_site, site, team);
    }

    /// Sets an agent's state. A state outside the view's filter drops the agent from the view.
    /// Returns the previous state (if it was in the view).
    pub fn set_status(
        &mut self,
        id: AgentId,
        status: AgentStatus,
        since_ms: u64,
    ) -> Result<Option<Live>, FoldError> {
        if self.agent(id).is_none() {
            return Err(FoldError::UnknownAgent(id));
        }
        let old = self.unlink(id);
        if self.states.contains(status.kind()) {
            self.link(id.0, Live { status, since_ms });
        }
        Ok(old)
    }

    /// Takes the agent out of its cell list and clears its state; returns that state.
    fn unlink(&mut self, id: AgentId) -> Option<Live> {
        let idx = id.0 as usize;
        let record = self.agents.get_mut(idx)?.as_mut()?;
        let live = record.live.take()?;
        let Link { prev, next } = std::mem::replace(&mut record.link, UNLINKED);
        let key = (record.info.team, record.info.site);
        let kind = live.status.kind().index();
        if prev != NIL
            && let Some(prev_record) = self.agents[prev as usize].as_mut()
        {
            prev_record.link.next = next;
        }
        if next != NIL
            && let Some(next_record) = self.agents[next as usize].as_mut()
        {
            next_record.link.prev = prev;
        }
        if let Some(cell) = self.cells.get_mut(&key) {
            if cell.head[kind] == id.0 {
                cell.head[kind] = next;
            }
            if cell.tail[kind] == id.0 {
                cell.tail[kind] = prev;
            }
            cell.counts[kind] -= 1;
            if cell.is_empty() {
                self.cells.remove(&key);
                remove_from_index(&mut self.team_sites, key.0, &key.1);
                remove_from_index(&mut self.site_teams, key.1, &key.0);
            }
        }
        Some(live)
    }

    /// Puts the agent (which must be unlinked) into its cell list for `live`'s state, keeping
    /// the list ordered by `since_ms`.
    fn link(&mut self, idx: u32, live: Live) {
        let Some(record) = self.agents[idx as usize].as_ref() else {
            return;
        };
        let key = (record.info.team, record.info.site);
        let kind = live.status.kind().index();
        if let std::collections::hash_map::Entry::Vacant(entry) = self.cells.entry(key) {
            entry.insert(Cell::new());
            self.team_sites.entry(key.0).or_default().insert(key.1);
            self.site_teams.entry(key.1).or_default().insert(key.0);
        }
        // Find the last agent that entered the state no later than this one; usually the tail.
        let mut prev = self.cells[&key].tail[kind];
        while prev != NIL && self.since_of(prev) > live.since_ms {
            prev = self.agents[prev as usize]
                .as_ref()
                .map_or(NIL, |record| record.link.prev);
        }
        let Some(cell) = self.cells.get_mut(&key) else {
            return;
        };
        let next = if prev == NIL {
            std::mem::replace(&mut cell.head[kind], idx)
        } else {
            let prev_record = self.agents[prev as usize].as_mut();
            prev_record.map_or(NIL, |record| std::mem::replace(&mut record.link.next, idx))
        };
        if next == NIL {
            cell.tail[kind] = idx;
        } else if let Some(next_record) = self.agents[next as usize].as_mut() {
            next_record.link.prev = idx;
        }
        cell.counts[kind] += 1;
        if let Some(record) = self.agents[idx as usize].as_mut() {
            record.live = Some(live);
            record.link = Link { prev, next };
        }
    }

    // ---- snapshots ----

    /// Cuts a snapshot of this floor for `sub` as seen by a viewer limited to `scope`, in chunks
    /// of at most `chunk_agents` agents.
    ///
    /// Only agents, teams and sites inside both the subscription's filter and the scope are
    /// included: a viewer limited to some teams never receives a byte about the others.
    pub fn snapshot(
        &self,
        sub: &Subscription,
        scope: &Scope,
        chunk_agents: usize,
    ) -> Vec<SnapshotChunk> {
        let view = View::new(sub, scope);
        let chunk_agents = chunk_agents.max(1);
        let full_roster = sub.known_roster != Some(self.roster_version);
        let header = SnapshotHeader {
            roster_version: self.roster_version,
            full_roster,
            detail: sub.detail,
            grouping: sub.grouping,
            states: sub.states,
            sites: (self.sites.values())
                .filter(|site| self.names_site(view, site.id))
                .cloned()
                .collect(),
            teams: (self.teams.values())
                .filter(|team| self.names_team(view, team.id))
                .cloned()
                .collect(),
            reasons: self.reasons.values().cloned().collect(),
            queues: match sub.queues {
                true => (self.queues.keys())
                    .filter_map(|&id| self.queue_for(scope, id))
                    .collect(),
                false => Vec::new(),
            },
            queue_rules: self.queue_rules,
        };
        let queues: Vec<QueueLive> = (header.queues.iter())
            .filter_map(|info| {
                Some(
                    self.queues
                        .get(&info.id)?
                        .now
                        .to_live(info.id, self.time_ms),
                )
            })
            .collect();
        let mut chunks = vec![self.empty_chunk(0, Some(header))];
        if sub.detail == Detail::Agents {
            let in_scope = self
                .agents()
                .filter(|record| view.covers(record.info.team, record.info.site));
            let mut n_in_chunk = 0;
            for record in in_scope {
                if n_in_chunk == chunk_agents {
                    let index = chunks.len() as u32;
                    chunks.push(self.empty_chunk(index, None));
                    n_in_chunk = 0;
                }
                n_in_chunk += 1;
                let Some(chunk) = chunks.last_mut() else {
                    break;
                };
                if full_roster {
                    chunk.roster.push(record.info.clone());
                }
                if let Some(live) = record
                    .live
                    .filter(|live| sub.states.contains(live.status.kind()))
                {
                    chunk.agents.push(AgentLive {
                        id: record.info.id,
                        status: live.status,
                        since_ms_ago: self.time_ms.saturating_sub(live.since_ms),
                    });
                }
            }
        }
        if let Some(last) = chunks.last_mut() {
            last.last = true;
            if sub.detail == Detail::Summary {
                last.groups = self.scoped_summaries(view);
            }
            last.queues = queues;
        }
        chunks
    }

    fn empty_chunk(&self, index: u32, header: Option<SnapshotHeader>) -> SnapshotChunk {
        SnapshotChunk {
            seq: self.seq,
            time_ms: self.time_ms,
            index,
            last: false,
            header,
            roster: Vec::new(),
            agents: Vec::new(),
            groups: Vec::new(),
            queues: Vec::new(),
        }
    }

    /// Every non-empty group of the view's grouping, counting only its scope and state filter.
    pub fn scoped_summaries(&self, view: View<'_>) -> Vec<GroupSummary> {
        let mut keys: BTreeSet<GroupKey> = BTreeSet::new();
        for &(team, site) in self.cells.keys() {
            if view.covers(team, site) {
                keys.insert(view.sub.grouping.key(team, site));
            }
        }
        keys.into_iter()
            .filter_map(|key| self.scoped_summary(view, key))
            // A group with nothing in the state filter is absent, as a client folds it.
            .filter(|summary| summary.counts.iter().any(|&count| count > 0))
            .collect()
    }

    /// One group's summary for the view: only its scope and state filter; all zero when the
    /// group has nothing left in the view (which tells the client to drop it).
    pub fn scoped_summary(&self, view: View<'_>, key: GroupKey) -> Option<GroupSummary> {
        if !view.sub.covers_group(key) {
            return None;
        }
        let stats = self
            .group_stats(key, Some(view))
            .unwrap_or_else(|| GroupStats::empty(key))
            .masked(view.sub.states);
        Some(stats.to_summary(self.time_ms))
    }

    // ---- the fold ----

    /// Folds one server message into the floor. Messages other than snapshots and deltas are
    /// ignored. An error means the floor can no longer be trusted: subscribe again.
    pub fn apply(&mut self, msg: &ServerMsg) -> Result<(), FoldError> {
        match msg {
            ServerMsg::Snapshot(chunk) => self.apply_chunk(chunk),
            ServerMsg::Delta(delta) => self.apply_delta(delta),
            ServerMsg::Hello(_)
            | ServerMsg::Keepalive(_)
            | ServerMsg::Error(_)
            | ServerMsg::Health(_) => Ok(()),
        }
    }

    /// Folds one snapshot chunk. The floor keeps showing its previous state until the last chunk
    /// arrives, then shows the snapshot.
    pub fn apply_chunk(&mut self, chunk: &SnapshotChunk) -> Result<(), FoldError> {
        if let Some(header) = &chunk.header {
            let mut next = Floor {
                detail: header.detail,
                grouping: header.grouping,
                states: header.states,
                seq: chunk.seq,
                time_ms: chunk.time_ms,
                roster_version: header.roster_version,
                ..Floor::new()
            };
            for site in &header.sites {
                next.upsert_site(site.clone());
            }
            for team in &header.teams {
                next.upsert_team(team.clone());
            }
            for reason in &header.reasons {
                next.upsert_reason(reason.clone());
            }
            for queue in &header.queues {
                next.upsert_queue(queue.clone());
            }
            next.queue_rules = header.queue_rules;
            if !header.full_roster {
                for record in self
                    .agents()
                    .chain(self.incoming.iter().flat_map(|f| f.agents()))
                {
                    next.upsert_agent(record.info.clone())?;
                }
            }
            self.incoming = Some(Box::new(next));
            self.next_chunk = 0;
        }
        let expected = self.next_chunk;
        let Some(next) = self.incoming.as_mut().filter(|_| chunk.index == expected) else {
            self.incoming = None;
            return Err(FoldError::ChunkOutOfOrder {
                expected,
                got: chunk.index,
            });
        };
        for info in &chunk.roster {
            next.upsert_agent(info.clone())?;
        }
        for live in &chunk.agents {
            let since_ms = chunk.time_ms.saturating_sub(live.since_ms_ago);
            next.set_status(live.id, live.status, since_ms)?;
        }
        for summary in &chunk.groups {
            next.received_groups.insert(
                summary.key,
                GroupStats::from_summary(summary, chunk.time_ms),
            );
        }
        for live in &chunk.queues {
            next.set_queue_now(live.queue, QueueNow::from_live(live, chunk.time_ms))?;
        }
        self.next_chunk += 1;
        if chunk.last
            && let Some(next) = self.incoming.take()
        {
            *self = *next;
        }
        Ok(())
    }

    /// Folds one delta; it must follow the floor's sequence number exactly.
    pub fn apply_delta(&mut self, delta: &Delta) -> Result<(), FoldError> {
        if !self.ready || self.incoming.is_some() {
            return Err(FoldError::NoSnapshot);
        }
        if delta.seq != self.seq + 1 {
            return Err(FoldError::Gap {
                expected: self.seq + 1,
                got: delta.seq,
            });
        }
        let time_ms = self.time_ms.saturating_add(delta.time_step_ms);
        for change in &delta.roster {
            match change {
                RosterChange::AgentUpserted(info) => {
                    self.upsert_agent(info.clone())?;
                }
                RosterChange::AgentRemoved(id) => {
                    self.remove_agent(*id);
                }
                RosterChange::TeamUpserted(team) => self.upsert_team(team.clone()),
                RosterChange::SiteUpserted(site) => self.upsert_site(site.clone()),
                RosterChange::ReasonUpserted(reason) => self.upsert_reason(reason.clone()),
                RosterChange::TeamRemoved(team) => self.remove_team(*team),
                RosterChange::SiteRemoved(site) => self.remove_site(*site),
                RosterChange::QueueUpserted(queue) => self.upsert_queue(queue.clone()),
                RosterChange::QueueRemoved(queue) => self.remove_queue(*queue),
            }
        }
        if !delta.roster.is_empty() {
            self.roster_version = delta.seq;
        }
        for &StatusChange {
            agent,
            status,
            since_ms_ago,
        } in &delta.changes
        {
            self.set_status(agent, status, time_ms.saturating_sub(since_ms_ago))?;
        }
        for live in &delta.queues {
            self.set_queue_now(live.queue, QueueNow::from_live(live, time_ms))?;
        }
        for summary in &delta.groups {
            if summary.counts.iter().all(|&count| count == 0) {
                self.received_groups.remove(&summary.key);
            } else {
                self.received_groups
                    .insert(summary.key, GroupStats::from_summary(summary, time_ms));
            }
        }
        self.advance(delta.seq, time_ms);
        Ok(())
    }
}

fn slot(id: AgentId) -> Result<usize, FoldError> {
    if id.0 > MAX_AGENT_ID {
        return Err(FoldError::AgentOutOfRange(id));
    }
    Ok(id.0 as usize)
}

fn remove_from_index<K: Ord, V: Ord>(index: &mut BTreeMap<K, BTreeSet<V>>, key: K, value: &V) {
    if let Some(values) = index.get_mut(&key) {
        values.remove(value);
        if values.is_empty() {
            index.remove(&key);
        }
    }
}
