//! The write side's rules, without IO: what a group of event batches does to the roster, to
//! the state history and to each agent's current state.
//!
//! The writer ([`crate::sources::ingest`]) drives an [`EventPlan`] through one transaction: it asks the
//! plan what to store, stores it, tells the plan what the database answered (ids of what it
//! created, which events it had not seen, which states it kept), and finally asks for each
//! event's outcome. Everything the plan decides is decided here, against a [`Catalog`] of what
//! the floor already knows, so the rules are tested below with a catalog made of maps: no
//! database, no clock, no task.
//!
//! The rules an event is judged by:
//! - an event id seen before in the same group, or stored before, makes the event a duplicate:
//!   a retried batch changes nothing;
//! - an event for an unknown agent (or a deactivated one) creates it or is refused, per
//!   `[ingest] unknown_agents`; a deactivated agent comes back in its old team and site unless
//!   the event names others, a new one goes to the default team and site;
//! - the last event of a group naming an agent's name, team or site wins; a team or site named
//!   for the first time is created, as is a reason code;
//! - an agent's current state becomes its newest new event (by when the state began; among
//!   equals the later event), unless the stored state began later: that event is `older`,
//!   stored as history only;
//! - heartbeats count for active agents only.

use std::collections::{HashMap, HashSet};

use monti_protocol::ingest::{
    AgentEventJson, EventWindow, Outcome, RosterSyncJson, RosterSyncResultJson, check_id,
    check_name,
};
use monti_protocol::model::StateKind;

use crate::config::{IngestConfig, UnknownAgents};
use crate::core::change::{Change, Group};

/// Where events come from; decides whether silence makes an agent stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `POST /api/v1/events`.
    Api,
    /// Amazon Connect through Firehose: sends heartbeats.
    AmazonConnect,
    /// The built-in simulator.
    Simulator,
}

impl Source {
    /// The metrics label.
    pub fn name(self) -> &'static str {
        match self {
            Source::Api => "api",
            Source::AmazonConnect => "amazon_connect",
            Source::Simulator => "simulator",
        }
    }

    /// Whether the source sends heartbeats, so that its silence makes an agent stale.
    fn watched(self) -> bool {
        self == Source::AmazonConnect
    }
}

/// A not-ready reason as an event names it: the stable code, and the label to create it with
/// if the code is new.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventReason {
    /// The stable code.
    pub code: String,
    /// What people read.
    pub label: String,
}

/// One checked event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The source's id for the event.
    pub event_id: String,
    /// The source's id for the agent.
    pub agent: String,
    /// The state.
    pub state: StateKind,
    /// The not-ready reason.
    pub reason: Option<EventReason>,
    /// When the state began.
    pub since_ms: u64,
    /// Display name, team and site, when the source names them.
    pub name: Option<String>,
    /// See [`Event::name`].
    pub team: Option<String>,
    /// See [`Event::name`].
    pub site: Option<String>,
}

impl Event {
    /// Checks a JSON event.
    pub fn from_json(
        json: AgentEventJson,
        now_ms: u64,
        window: &EventWindow,
    ) -> Result<Event, String> {
        let state = json.check(now_ms, window)?;
        Ok(Event {
            event_id: json.event_id,
            agent: json.agent,
            state,
            reason: json.reason.map(|code| EventReason {
                label: code.clone(),
                code,
            }),
            since_ms: json.since_ms,
            name: json.name,
            team: json.team,
            site: json.site,
        })
    }
}

/// Events from one source, and the agents it reported on without a new state (heartbeats,
/// by external id).
#[derive(Clone, Debug)]
pub struct Batch {
    /// Where they come from.
    pub source: Source,
    /// The events.
    pub events: Vec<Event>,
    /// Heartbeats.
    pub heartbeats: Vec<String>,
}

/// What became of one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventResult {
    /// Stored and applied, stored as history only, a duplicate, or refused.
    pub outcome: Outcome,
    /// Why, for a refusal.
    pub reason: Option<String>,
}

impl EventResult {
    /// A result without a reason.
    pub fn of(outcome: Outcome) -> EventResult {
        EventResult {
            outcome,
            reason: None,
        }
    }
}

/// An agent as the write side needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownAgent {
    /// `agent_id`
    pub id: i64,
    /// Display name.
    pub name: String,
    /// `team_id`
    pub team: i64,
    /// `site_id`
    pub site: i64,
    /// Whether the agent is active.
    pub active: bool,
}

/// What the floor already knows, by name: the writer plans against the live floor's catalog,
/// the tests against maps.
pub trait Catalog {
    /// An agent by its external id, active or not.
    fn agent(&self, external_id: &str) -> Option<KnownAgent>;
    /// The database id of an active team or site.
    fn group_id(&self, group: Group, name: &str) -> Option<i64>;
    /// The database id of a reason code.
    fn reason_id(&self, code: &str) -> Option<i64>;
    /// Every active agent: external id and database id.
    fn active_agents(&self) -> Vec<(&str, i64)>;
}

/// An agent to create or update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewAgent<'a> {
    /// The source's id.
    pub external_id: &'a str,
    /// Display name.
    pub name: &'a str,
    /// `team_id`
    pub team_id: i64,
    /// `site_id`
    pub site_id: i64,
}

impl NewAgent<'_> {
    /// The change that stored agent makes.
    pub fn change(&self, id: i64) -> Change {
        Change::Agent {
            id,
            external_id: self.external_id.to_owned(),
            name: self.name.to_owned(),
            team: self.team_id,
            site: self.site_id,
        }
    }
}

/// One row of state history, written in the same transaction as the state it records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryRow {
    /// The source's event id.
    pub event_id: String,
    /// `agent_id`
    pub agent_id: i64,
    /// The state.
    pub state: StateKind,
    /// `reason_code_id` for not-ready states with a reason.
    pub reason_code_id: Option<i64>,
    /// When the state began, ms since the epoch.
    pub started_at: i64,
    /// When the server stored it, ms since the epoch.
    pub created_at: i64,
}

/// A row of `agent_state`: an agent's current state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredState {
    /// `agent_id`
    pub agent_id: i64,
    /// The state.
    pub state: StateKind,
    /// `reason_code_id`
    pub reason_code_id: Option<i64>,
    /// When the state began.
    pub started_at: i64,
    /// When the source last reported on the agent.
    pub seen_at: i64,
    /// Whether the source sends heartbeats.
    pub watched: bool,
}

impl StoredState {
    /// As a change to apply to a floor.
    pub fn change(&self) -> Change {
        Change::State {
            agent: self.agent_id,
            state: self.state,
            reason: self.reason_code_id,
            since_ms: self.started_at.max(0) as u64,
            seen_ms: self.seen_at.max(0) as u64,
            watched: self.watched,
        }
    }
}

/// A database id the transaction just stored or read; its absence is a storage failure, never a
/// panic (the writer task serves every later request too).
pub fn id_of<K, Q>(ids: &HashMap<K, i64>, key: &Q) -> anyhow::Result<i64>
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + std::fmt::Debug + ?Sized,
{
    ids.get(key)
        .copied()
        .ok_or_else(|| anyhow::anyhow!("{key:?} was not stored"))
}

/// One event of a group: its batch, and its place in the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Item {
    batch: usize,
    event: usize,
}

/// The name, team and site the events of a group give an agent, where they name them.
#[derive(Clone, Copy, Debug, Default)]
struct Placement<'a> {
    name: Option<&'a str>,
    team: Option<&'a str>,
    site: Option<&'a str>,
}

/// Teams or sites by name: the ones the catalog knows, and the ones to create.
#[derive(Debug, Default)]
struct Groups<'a> {
    ids: HashMap<&'a str, i64>,
    missing: Vec<&'a str>,
}

impl<'a> Groups<'a> {
    fn resolve(group: Group, mut names: Vec<&'a str>, catalog: &dyn Catalog) -> Groups<'a> {
        names.sort_unstable();
        names.dedup();
        let mut groups = Groups::default();
        for name in names {
            match catalog.group_id(group, name) {
                Some(id) => {
                    groups.ids.insert(name, id);
                }
                None => groups.missing.push(name),
            }
        }
        groups
    }
}

/// What a group of batches does, decided step by step as the transaction answers.
pub struct EventPlan<'a> {
    batches: &'a [&'a Batch],
    config: &'a IngestConfig,
    /// Each event's outcome once decided, by batch and place.
    results: Vec<Vec<Option<EventResult>>>,
    /// The events still in play, in order.
    items: Vec<Item>,
    /// Agents in play the catalog knows (deactivated ones too).
    known: HashMap<&'a str, KnownAgent>,
    placement: HashMap<&'a str, Placement<'a>>,
    teams: Groups<'a>,
    sites: Groups<'a>,
    /// Reason codes by code, and the ones to create.
    reason_ids: HashMap<&'a str, i64>,
    missing_reasons: Vec<(&'a str, &'a str)>,
    /// Agents stored in this transaction (created, moved or renamed).
    stored_agents: HashMap<String, i64>,
    /// Active agents heard from without a new state.
    heard: Vec<i64>,
    /// The history rows, one per item, once agent ids are known.
    rows: Vec<HistoryRow>,
    /// Per agent, the row of its newest new event.
    newest: HashMap<i64, usize>,
}

impl<'a> EventPlan<'a> {
    /// Judges what can be judged before the database is asked: duplicates inside the group,
    /// refused agents, where each agent belongs, and which teams, sites and reason codes are new.
    pub fn new(
        batches: &'a [&'a Batch],
        catalog: &dyn Catalog,
        config: &'a IngestConfig,
    ) -> EventPlan<'a> {
        let mut plan = EventPlan {
            batches,
            config,
            results: batches
                .iter()
                .map(|batch| vec![None; batch.events.len()])
                .collect(),
            items: Vec::new(),
            known: HashMap::new(),
            placement: HashMap::new(),
            teams: Groups::default(),
            sites: Groups::default(),
            reason_ids: HashMap::new(),
            missing_reasons: Vec::new(),
            stored_agents: HashMap::new(),
            heard: Vec::new(),
            rows: Vec::new(),
            newest: HashMap::new(),
        };
        plan.drop_duplicates();
        let unknown = plan.look_up_agents(catalog);
        if config.unknown_agents == UnknownAgents::Refuse {
            plan.refuse(&unknown);
        }
        plan.place(catalog);
        plan.resolve_reasons(catalog);
        plan.hear(catalog);
        plan
    }

    fn event(&self, item: Item) -> &'a Event {
        &self.batches[item.batch].events[item.event]
    }

    fn decide(&mut self, item: Item, result: EventResult) {
        self.results[item.batch][item.event] = Some(result);
    }

    /// The first event with an id stays in play; later ones are duplicates.
    fn drop_duplicates(&mut self) {
        let mut ids = HashSet::new();
        for (batch, events) in self.batches.iter().enumerate() {
            for (event, ev) in events.events.iter().enumerate() {
                let item = Item { batch, event };
                if ids.insert(ev.event_id.as_str()) {
                    self.items.push(item);
                } else {
                    self.decide(item, EventResult::of(Outcome::Duplicate));
                }
            }
        }
    }

    /// Fills `known` and returns the agents to create: unknown or deactivated.
    fn look_up_agents(&mut self, catalog: &dyn Catalog) -> HashSet<&'a str> {
        let mut unknown = HashSet::new();
        for index in 0..self.items.len() {
            let agent = self.event(self.items[index]).agent.as_str();
            if self.known.contains_key(agent) || unknown.contains(agent) {
                continue;
            }
            match catalog.agent(agent) {
                Some(found) => {
                    if !found.active {
                        unknown.insert(agent);
                    }
                    self.known.insert(agent, found);
                }
                None => {
                    unknown.insert(agent);
                }
            }
        }
        unknown
    }

    /// Refuses the events of agents this server may not create.
    fn refuse(&mut self, unknown: &HashSet<&'a str>) {
        let items = std::mem::take(&mut self.items);
        for item in items {
            let agent = self.event(item).agent.as_str();
            if unknown.contains(agent) {
                self.decide(
                    item,
                    EventResult {
                        outcome: Outcome::Refused,
                        reason: Some(format!(
                            "unknown agent {agent:?}: add it with POST /api/v1/roster first \
                             (this server refuses events for unknown agents)"
                        )),
                    },
                );
            } else {
                self.items.push(item);
            }
        }
    }

    /// Where each agent in play belongs after this group, and the teams and sites that takes.
    fn place(&mut self, catalog: &dyn Catalog) {
        for &item in &self.items {
            let ev = self.event(item);
            let entry = self.placement.entry(ev.agent.as_str()).or_default();
            entry.name = ev.name.as_deref().or(entry.name);
            entry.team = ev.team.as_deref().or(entry.team);
            entry.site = ev.site.as_deref().or(entry.site);
        }
        let mut team_names = Vec::new();
        let mut site_names = Vec::new();
        for (agent, placement) in &self.placement {
            let new = !self.known.contains_key(agent);
            let default_team = new.then_some(self.config.default_team.as_str());
            let default_site = new.then_some(self.config.default_site.as_str());
            team_names.extend(placement.team.or(default_team));
            site_names.extend(placement.site.or(default_site));
        }
        self.teams = Groups::resolve(Group::Team, team_names, catalog);
        self.sites = Groups::resolve(Group::Site, site_names, catalog);
    }

    /// Reason codes by code; a code new to the catalog is created with the first label (in
    /// sort order) the group gives it.
    fn resolve_reasons(&mut self, catalog: &dyn Catalog) {
        let mut reasons: Vec<(&'a str, &'a str)> = self
            .items
            .iter()
            .filter_map(|&item| {
                let reason = self.event(item).reason.as_ref()?;
                Some((reason.code.as_str(), reason.label.as_str()))
            })
            .collect();
        reasons.sort_unstable();
        reasons.dedup_by(|a, b| a.0 == b.0);
        for (code, label) in reasons {
            match catalog.reason_id(code) {
                Some(id) => {
                    self.reason_ids.insert(code, id);
                }
                None => self.missing_reasons.push((code, label)),
            }
        }
    }

    fn hear(&mut self, catalog: &dyn Catalog) {
        for batch in self.batches {
            for agent in &batch.heartbeats {
                if let Some(found) = catalog.agent(agent).filter(|found| found.active) {
                    self.heard.push(found.id);
                }
            }
        }
        self.heard.sort_unstable();
        self.heard.dedup();
    }

    /// The teams or sites to create.
    pub fn missing_groups(&self, group: Group) -> &[&'a str] {
        match group {
            Group::Team => &self.teams.missing,
            Group::Site => &self.sites.missing,
        }
    }

    /// Takes the ids the database gave the missing teams or sites; returns their changes.
    pub fn groups_stored(
        &mut self,
        group: Group,
        stored: &HashMap<String, i64>,
    ) -> anyhow::Result<Vec<Change>> {
        let groups = match group {
            Group::Team => &mut self.teams,
            Group::Site => &mut self.sites,
        };
        let mut changes = Vec::with_capacity(groups.missing.len());
        for &name in &groups.missing {
            let id = id_of(stored, name)?;
            groups.ids.insert(name, id);
            changes.push(group.change(id, name));
        }
        Ok(changes)
    }

    /// The reason codes to create, with their labels.
    pub fn missing_reasons(&self) -> &[(&'a str, &'a str)] {
        &self.missing_reasons
    }

    /// Takes the ids of the reason codes the database created; returns their changes. A code
    /// another writer created meanwhile is not among them: events name it without an id.
    pub fn reasons_stored(&mut self, created: &HashMap<String, i64>) -> Vec<Change> {
        let mut changes = Vec::new();
        for &(code, label) in &self.missing_reasons {
            if let Some(&id) = created.get(code) {
                self.reason_ids.insert(code, id);
                changes.push(Change::Reason {
                    id,
                    code: code.to_owned(),
                    label: label.to_owned(),
                });
            }
        }
        changes
    }

    /// New agents, and known ones that come back, move or are renamed.
    pub fn agents_to_store(&self) -> anyhow::Result<Vec<NewAgent<'_>>> {
        let mut upserts = Vec::new();
        for (&agent, placement) in &self.placement {
            let current = self.known.get(agent);
            let team_id = match (placement.team, current) {
                (Some(team), _) => id_of(&self.teams.ids, team)?,
                (None, Some(current)) => current.team,
                (None, None) => id_of(&self.teams.ids, self.config.default_team.as_str())?,
            };
            let site_id = match (placement.site, current) {
                (Some(site), _) => id_of(&self.sites.ids, site)?,
                (None, Some(current)) => current.site,
                (None, None) => id_of(&self.sites.ids, self.config.default_site.as_str())?,
            };
            let name = placement
                .name
                .or(current.map(|current| current.name.as_str()))
                .unwrap_or(agent);
            let changed = current.is_none_or(|current| {
                !current.active
                    || current.team != team_id
                    || current.site != site_id
                    || current.name != name
            });
            if changed {
                upserts.push(NewAgent {
                    external_id: agent,
                    name,
                    team_id,
                    site_id,
                });
            }
        }
        Ok(upserts)
    }

    /// Takes the ids of the agents the database stored.
    pub fn agents_stored(&mut self, stored: HashMap<String, i64>) {
        self.stored_agents = stored;
    }

    fn agent_id(&self, agent: &str) -> anyhow::Result<i64> {
        match (self.stored_agents.get(agent), self.known.get(agent)) {
            (Some(&id), _) => Ok(id),
            (None, Some(known)) => Ok(known.id),
            (None, None) => Err(anyhow::anyhow!("{agent:?} was not stored")),
        }
    }

    /// The history rows to insert, one per event in play.
    pub fn history(&mut self, now_ms: u64) -> anyhow::Result<&[HistoryRow]> {
        self.rows = self
            .items
            .iter()
            .map(|&item| {
                let ev = self.event(item);
                Ok(HistoryRow {
                    event_id: ev.event_id.clone(),
                    agent_id: self.agent_id(&ev.agent)?,
                    state: ev.state,
                    reason_code_id: ev
                        .reason
                        .as_ref()
                        .and_then(|reason| self.reason_ids.get(reason.code.as_str()).copied()),
                    started_at: ev.since_ms as i64,
                    created_at: now_ms as i64,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(&self.rows)
    }

    /// Takes the event ids the database had not stored before (the others are duplicates) and
    /// returns each agent's candidate current state: its newest new event.
    pub fn states(&mut self, new_events: &HashSet<String>, now_ms: u64) -> Vec<StoredState> {
        for (row_index, (&item, row)) in self.items.iter().zip(&self.rows).enumerate() {
            if !new_events.contains(&row.event_id) {
                self.results[item.batch][item.event] = Some(EventResult::of(Outcome::Duplicate));
                continue;
            }
            let newest = self.newest.entry(row.agent_id).or_insert(row_index);
            if row.started_at >= self.rows[*newest].started_at {
                *newest = row_index;
            }
        }
        self.newest
            .values()
            .map(|&row_index| {
                let row = &self.rows[row_index];
                let item = self.items[row_index];
                StoredState {
                    agent_id: row.agent_id,
                    state: row.state,
                    reason_code_id: row.reason_code_id,
                    started_at: row.started_at,
                    seen_at: now_ms as i64,
                    watched: self.batches[item.batch].source.watched(),
                }
            })
            .collect()
    }

    /// Active agents heard from without a new state, by database id.
    pub fn heard(&self) -> &[i64] {
        &self.heard
    }

    /// Each event's outcome, by batch, given the agents whose state the database took (the
    /// others had a state that began later).
    pub fn outcomes(mut self, written: &HashSet<i64>) -> Vec<Vec<EventResult>> {
        for (row_index, (&item, row)) in self.items.iter().zip(&self.rows).enumerate() {
            let result = &mut self.results[item.batch][item.event];
            if result.is_some() {
                continue;
            }
            let current = self.newest.get(&row.agent_id) == Some(&row_index);
            *result = Some(EventResult::of(
                if current && written.contains(&row.agent_id) {
                    Outcome::Applied
                } else {
                    Outcome::Older
                },
            ));
        }
        self.results
            .into_iter()
            .map(|results| {
                results
                    .into_iter()
                    .map(|result| result.unwrap_or(EventResult::of(Outcome::Refused)))
                    .collect()
            })
            .collect()
    }
}

/// Checks a roster sync for what can be judged without the database.
pub fn check_roster(sync: &RosterSyncJson) -> Result<(), String> {
    for (what, entries) in [("site", &sync.sites), ("team", &sync.teams)] {
        let mut names = HashSet::new();
        for entry in entries {
            check_name(what, &entry.name)?;
            if let Some(new_name) = &entry.rename_to {
                check_name(what, new_name)?;
            }
            if !names.insert(entry.name.as_str()) {
                return Err(format!("{what} {:?} is listed twice", entry.name));
            }
        }
    }
    let mut codes = HashSet::new();
    for reason in &sync.reasons {
        check_name("reason code", &reason.code)?;
        check_name("reason label", &reason.label)?;
        if !codes.insert(reason.code.as_str()) {
            return Err(format!("reason code {:?} is listed twice", reason.code));
        }
    }
    let mut queues = HashSet::new();
    for queue in &sync.queues {
        queue.check()?;
        if !queues.insert(queue.name.as_str()) {
            return Err(format!("queue {:?} is listed twice", queue.name));
        }
    }
    let mut agents = HashSet::new();
    for agent in &sync.agents {
        check_id("agent", &agent.external_id)?;
        check_name("agent name", &agent.name)?;
        check_name("team", &agent.team)?;
        check_name("site", &agent.site)?;
        if !agents.insert(agent.external_id.as_str()) {
            return Err(format!("agent {:?} is listed twice", agent.external_id));
        }
    }
    Ok(())
}

/// A roster sync as the writer takes it: the roster API's, or the simulator's roster.
#[derive(Clone, Debug)]
pub struct RosterSync {
    /// Groups, reasons and agents, as the roster API takes them.
    pub roster: RosterSyncJson,
    /// The active agents it deactivates because it does not list them.
    pub unlisted: Unlisted,
}

/// See [`RosterSync::unlisted`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unlisted {
    /// None: agents the sync does not list stay as they are.
    Keep,
    /// All of them (`deactivate_missing_agents`).
    Deactivate,
    /// Those whose external id starts with this: the simulator's own, so that a smaller
    /// simulated floor does not keep the agents of a larger earlier one, and agents from other
    /// sources stay.
    DeactivateWithPrefix(String),
}

impl From<RosterSyncJson> for RosterSync {
    fn from(roster: RosterSyncJson) -> RosterSync {
        let unlisted = if roster.deactivate_missing_agents {
            Unlisted::Deactivate
        } else {
            Unlisted::Keep
        };
        RosterSync { roster, unlisted }
    }
}

/// The sites and teams a sync's active agents name, each once (each must be active once the
/// sync's own groups are stored).
pub fn roster_group_names(sync: &RosterSyncJson) -> RosterGroupNames<'_> {
    let active = sync.agents.iter().filter(|agent| agent.active);
    let mut names = RosterGroupNames {
        sites: active.clone().map(|agent| agent.site.as_str()).collect(),
        teams: active.map(|agent| agent.team.as_str()).collect(),
    };
    for names in [&mut names.sites, &mut names.teams] {
        names.sort_unstable();
        names.dedup();
    }
    names
}

/// See [`roster_group_names`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RosterGroupNames<'a> {
    /// Site names.
    pub sites: Vec<&'a str>,
    /// Team names.
    pub teams: Vec<&'a str>,
}

/// What a roster sync does to agents.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RosterAgents<'a> {
    /// Agents to create or update, as listed.
    pub upserts: Vec<NewAgent<'a>>,
    /// Active agents to deactivate, by database id, sorted.
    pub gone: Vec<i64>,
}

/// The agents a sync stores and the ones it deactivates: listed as inactive, or not listed
/// at all (per [`RosterSync::unlisted`]). `team_ids` and `site_ids` are the active teams and
/// sites by name after the sync's own groups were stored.
pub fn roster_agents<'a>(
    sync: &'a RosterSync,
    team_ids: &HashMap<String, i64>,
    site_ids: &HashMap<String, i64>,
    catalog: &dyn Catalog,
) -> Result<RosterAgents<'a>, String> {
    let RosterSync {
        roster: sync,
        unlisted,
    } = sync;
    let mut agents = RosterAgents::default();
    for agent in &sync.agents {
        if !agent.active {
            if let Some(found) = catalog.agent(&agent.external_id)
                && found.active
            {
                agents.gone.push(found.id);
            }
            continue;
        }
        let (Some(&team_id), Some(&site_id)) =
            (team_ids.get(&agent.team), site_ids.get(&agent.site))
        else {
            return Err(format!(
                "agent {:?} names team {:?} and site {:?}; both must be active teams and \
                 sites or be created in the same sync",
                agent.external_id, agent.team, agent.site
            ));
        };
        agents.upserts.push(NewAgent {
            external_id: &agent.external_id,
            name: &agent.name,
            team_id,
            site_id,
        });
    }
    let prefix = match unlisted {
        Unlisted::Keep => None,
        Unlisted::Deactivate => Some(""),
        Unlisted::DeactivateWithPrefix(prefix) => Some(prefix.as_str()),
    };
    if let Some(prefix) = prefix {
        let listed: HashSet<&str> = sync
            .agents
            .iter()
            .map(|agent| agent.external_id.as_str())
            .collect();
        agents.gone.extend(
            catalog
                .active_agents()
                .into_iter()
                .filter(|(external_id, _)| {
                    external_id.starts_with(prefix) && !listed.contains(external_id)
                })
                .map(|(_, id)| id),
        );
    }
    agents.gone.sort_unstable();
    agents.gone.dedup();
    Ok(agents)
}

/// Puts a sync's changes in an order a floor can apply: agents leave before their team or
/// site does.
pub fn order_roster_changes(changes: &mut [Change]) {
    changes
        .sort_by_key(|change| matches!(change, Change::SiteGone { .. } | Change::TeamGone { .. }));
}

/// Counts a site or team a sync created or renamed.
pub fn count_group(result: &mut RosterSyncResultJson, group: Group) {
    match group {
        Group::Site => result.sites += 1,
        Group::Team => result.teams += 1,
    }
}

#[cfg(test)]
mod tests {
    //! Every rule of the module's header, one table row each, with a catalog made of maps and a
    //! store that answers as the database would: no IO.

    use monti_protocol::ingest::{AgentEntryJson, GroupEntryJson, ReasonEntryJson};

    use super::*;

    /// What the floor knows before the group.
    #[derive(Default)]
    struct Maps {
        agents: HashMap<String, KnownAgent>,
        teams: HashMap<String, i64>,
        sites: HashMap<String, i64>,
        reasons: HashMap<String, i64>,
    }

    impl Catalog for Maps {
        fn agent(&self, external_id: &str) -> Option<KnownAgent> {
            self.agents.get(external_id).cloned()
        }
        fn group_id(&self, group: Group, name: &str) -> Option<i64> {
            match group {
                Group::Team => self.teams.get(name).copied(),
                Group::Site => self.sites.get(name).copied(),
            }
        }
        fn reason_id(&self, code: &str) -> Option<i64> {
            self.reasons.get(code).copied()
        }
        fn active_agents(&self) -> Vec<(&str, i64)> {
            let mut active: Vec<(&str, i64)> = self
                .agents
                .iter()
                .filter(|(_, agent)| agent.active)
                .map(|(external_id, agent)| (external_id.as_str(), agent.id))
                .collect();
            active.sort_unstable();
            active
        }
    }

    /// A floor with team Sales (1) and site Lisbon (10), agent a1 active there since 1,000 and
    /// agent gone (deactivated) in team 2 / site 20; reason `lunch` is 100.
    fn floor() -> Maps {
        let mut maps = Maps::default();
        maps.teams.insert("Sales".into(), 1);
        maps.sites.insert("Lisbon".into(), 10);
        maps.reasons.insert("lunch".into(), 100);
        maps.agents.insert(
            "a1".into(),
            KnownAgent {
                id: 7,
                name: "Ana".into(),
                team: 1,
                site: 10,
                active: true,
            },
        );
        maps.agents.insert(
            "gone".into(),
            KnownAgent {
                id: 8,
                name: "Gil".into(),
                team: 2,
                site: 20,
                active: false,
            },
        );
        maps
    }

    /// What the database holds that the catalog does not show: event ids stored before, and
    /// each agent's stored state's start.
    #[derive(Default)]
    struct Stored {
        events: HashSet<String>,
        started: HashMap<i64, i64>,
    }

    /// What a group did: outcomes, changes, agents stored, history rows.
    struct Done {
        outcomes: Vec<Vec<EventResult>>,
        changes: Vec<Change>,
        upserts: Vec<(String, String, i64, i64)>,
        rows: Vec<HistoryRow>,
    }

    const NOW: u64 = 50_000;

    /// Drives a plan as the writer does, the store answering as the database would: new
    /// groups, reasons and agents get ids from 1,000 on.
    fn run(batches: &[Batch], catalog: &Maps, config: &IngestConfig, stored: &Stored) -> Done {
        let batches: Vec<&Batch> = batches.iter().collect();
        let mut plan = EventPlan::new(&batches, catalog, config);
        let mut next_id = 1_000;
        let mut new_id = || {
            next_id += 1;
            next_id
        };
        let mut changes = Vec::new();
        for group in [Group::Team, Group::Site] {
            let ids: HashMap<String, i64> = plan
                .missing_groups(group)
                .iter()
                .map(|name| (name.to_string(), new_id()))
                .collect();
            changes.extend(plan.groups_stored(group, &ids).expect("every group stored"));
        }
        let ids: HashMap<String, i64> = plan
            .missing_reasons()
            .iter()
            .map(|(code, _)| (code.to_string(), new_id()))
            .collect();
        changes.extend(plan.reasons_stored(&ids));
        let agents = plan.agents_to_store().expect("every group stored");
        let mut upserts: Vec<(String, String, i64, i64)> = agents
            .iter()
            .map(|agent| {
                (
                    agent.external_id.to_owned(),
                    agent.name.to_owned(),
                    agent.team_id,
                    agent.site_id,
                )
            })
            .collect();
        upserts.sort();
        let ids: HashMap<String, i64> = agents
            .iter()
            .map(|agent| {
                let id = catalog
                    .agents
                    .get(agent.external_id)
                    .map_or_else(&mut new_id, |known| known.id);
                (agent.external_id.to_owned(), id)
            })
            .collect();
        plan.agents_stored(ids);
        let rows = plan.history(NOW).expect("every agent stored").to_vec();
        let new_events = rows
            .iter()
            .map(|row| row.event_id.clone())
            .filter(|id| !stored.events.contains(id))
            .collect();
        let states = plan.states(&new_events, NOW);
        let written: HashSet<i64> = states
            .iter()
            .filter(|state| {
                stored
                    .started
                    .get(&state.agent_id)
                    .is_none_or(|&started| state.started_at >= started)
            })
            .map(|state| state.agent_id)
            .collect();
        changes.extend(
            states
                .iter()
                .filter(|state| written.contains(&state.agent_id))
                .map(StoredState::change),
        );
        changes.extend(
            plan.heard()
                .iter()
                .map(|&agent| Change::Seen { agent, at_ms: NOW }),
        );
        Done {
            outcomes: plan.outcomes(&written),
            changes,
            upserts,
            rows,
        }
    }

    fn event(id: &str, agent: &str, state: StateKind, since_ms: u64) -> Event {
        Event {
            event_id: id.into(),
            agent: agent.into(),
            state,
            reason: None,
            since_ms,
            name: None,
            team: None,
            site: None,
        }
    }

    fn batch(events: Vec<Event>) -> Batch {
        Batch {
            source: Source::Api,
            events,
            heartbeats: Vec::new(),
        }
    }

    fn outcomes(done: &Done) -> Vec<Vec<Outcome>> {
        done.outcomes
            .iter()
            .map(|batch| batch.iter().map(|result| result.outcome).collect())
            .collect()
    }

    use Outcome::{Applied, Duplicate, Older, Refused};
    use StateKind::{Available, NotReady, OnCall};

    #[test]
    fn each_event_is_judged_by_the_rules() {
        struct Row {
            rule: &'static str,
            batches: Vec<Batch>,
            stored: Stored,
            expected: Vec<Vec<Outcome>>,
        }
        let rows = vec![
            Row {
                rule: "a new state of a known agent is applied",
                batches: vec![batch(vec![event("e1", "a1", OnCall, 2_000)])],
                stored: Stored::default(),
                expected: vec![vec![Applied]],
            },
            Row {
                rule: "an id seen before in the group is a duplicate, across batches too",
                batches: vec![
                    batch(vec![
                        event("e1", "a1", OnCall, 2_000),
                        event("e1", "a1", Available, 3_000),
                    ]),
                    batch(vec![event("e1", "a1", Available, 4_000)]),
                ],
                stored: Stored::default(),
                expected: vec![vec![Applied, Duplicate], vec![Duplicate]],
            },
            Row {
                rule: "an id stored before is a duplicate",
                batches: vec![batch(vec![event("old", "a1", OnCall, 2_000)])],
                stored: Stored {
                    events: HashSet::from(["old".to_owned()]),
                    ..Stored::default()
                },
                expected: vec![vec![Duplicate]],
            },
            Row {
                rule: "the newest event of an agent wins; the others are history",
                batches: vec![batch(vec![
                    event("e1", "a1", OnCall, 3_000),
                    event("e2", "a1", Available, 2_000),
                    event("e3", "a1", NotReady, 2_500),
                ])],
                stored: Stored::default(),
                expected: vec![vec![Applied, Older, Older]],
            },
            Row {
                rule: "among events that began together, the later one wins",
                batches: vec![
                    batch(vec![event("e1", "a1", OnCall, 3_000)]),
                    batch(vec![event("e2", "a1", Available, 3_000)]),
                ],
                stored: Stored::default(),
                expected: vec![vec![Older], vec![Applied]],
            },
            Row {
                rule: "a state that began before the stored one is history only",
                batches: vec![batch(vec![event("e1", "a1", OnCall, 900)])],
                stored: Stored {
                    started: HashMap::from([(7, 1_000)]),
                    ..Stored::default()
                },
                expected: vec![vec![Older]],
            },
            Row {
                rule: "a duplicate does not hide a new event of the same agent",
                batches: vec![batch(vec![
                    event("old", "a1", OnCall, 9_000),
                    event("e2", "a1", Available, 2_000),
                ])],
                stored: Stored {
                    events: HashSet::from(["old".to_owned()]),
                    ..Stored::default()
                },
                expected: vec![vec![Duplicate, Applied]],
            },
            Row {
                rule: "an unknown agent is created",
                batches: vec![batch(vec![event("e1", "new", OnCall, 2_000)])],
                stored: Stored::default(),
                expected: vec![vec![Applied]],
            },
        ];
        for row in rows {
            let done = run(
                &row.batches,
                &floor(),
                &IngestConfig::default(),
                &row.stored,
            );
            assert_eq!(outcomes(&done), row.expected, "{}", row.rule);
        }
    }

    #[test]
    fn unknown_and_deactivated_agents_are_refused_when_configured() {
        let config = IngestConfig {
            unknown_agents: UnknownAgents::Refuse,
            ..IngestConfig::default()
        };
        let batches = [batch(vec![
            event("e1", "new", OnCall, 2_000),
            event("e2", "gone", OnCall, 2_000),
            event("e3", "a1", OnCall, 2_000),
        ])];
        let done = run(&batches, &floor(), &config, &Stored::default());
        assert_eq!(outcomes(&done), vec![vec![Refused, Refused, Applied]]);
        let reason = done.outcomes[0][0]
            .reason
            .as_deref()
            .expect("a refusal says why");
        assert!(reason.contains("unknown agent \"new\""), "{reason}");
        assert!(reason.contains("POST /api/v1/roster"), "{reason}");
        assert!(done.upserts.is_empty(), "{:?}", done.upserts);
        assert_eq!(done.rows.len(), 1, "refused events are not history");
    }

    #[test]
    fn new_agents_go_to_the_default_team_and_site_which_are_created() {
        let done = run(
            &[batch(vec![event("e1", "new", OnCall, 2_000)])],
            &floor(),
            &IngestConfig::default(),
            &Stored::default(),
        );
        // Unassigned team 1001, Unassigned site 1002, agent 1003.
        assert_eq!(done.upserts, vec![("new".into(), "new".into(), 1001, 1002)]);
        assert!(done.changes.contains(&Change::Team {
            id: 1001,
            name: "Unassigned".into()
        }));
        assert!(done.changes.contains(&Change::Site {
            id: 1002,
            name: "Unassigned".into()
        }));
        assert_eq!(done.rows[0].agent_id, 1003);
    }

    #[test]
    fn a_deactivated_agent_comes_back_where_it_was_unless_the_event_says_otherwise() {
        let back = run(
            &[batch(vec![event("e1", "gone", OnCall, 2_000)])],
            &floor(),
            &IngestConfig::default(),
            &Stored::default(),
        );
        assert_eq!(back.upserts, vec![("gone".into(), "Gil".into(), 2, 20)]);
        assert_eq!(back.rows[0].agent_id, 8, "it keeps its id");

        let mut moved = event("e1", "gone", OnCall, 2_000);
        moved.team = Some("Sales".into());
        let moved = run(
            &[batch(vec![moved])],
            &floor(),
            &IngestConfig::default(),
            &Stored::default(),
        );
        assert_eq!(moved.upserts, vec![("gone".into(), "Gil".into(), 1, 20)]);
    }

    #[test]
    fn the_last_event_naming_a_team_site_or_name_wins_and_only_that_team_is_created() {
        let mut first = event("e1", "a1", OnCall, 2_000);
        first.team = Some("Support".into());
        first.name = Some("Ana Lima".into());
        let mut second = event("e2", "a1", Available, 3_000);
        second.team = Some("Retention".into());
        second.site = Some("Lisbon".into());
        let done = run(
            &[batch(vec![first, second])],
            &floor(),
            &IngestConfig::default(),
            &Stored::default(),
        );
        // The agent ends in the last team named (created: Retention 1001; Support, named
        // before, is not), keeps the name the first event gave, and its known site.
        assert_eq!(
            done.upserts,
            vec![("a1".into(), "Ana Lima".into(), 1001, 10)]
        );
        let teams: Vec<&Change> = done
            .changes
            .iter()
            .filter(|change| matches!(change, Change::Team { .. }))
            .collect();
        assert_eq!(
            teams,
            vec![&Change::Team {
                id: 1001,
                name: "Retention".into()
            }]
        );
        assert!(
            !done
                .changes
                .iter()
                .any(|change| matches!(change, Change::Site { .. }))
        );
    }

    #[test]
    fn a_known_agent_in_place_is_not_stored_again() {
        let mut same = event("e1", "a1", OnCall, 2_000);
        same.team = Some("Sales".into());
        same.name = Some("Ana".into());
        let done = run(
            &[batch(vec![same])],
            &floor(),
            &IngestConfig::default(),
            &Stored::default(),
        );
        assert!(done.upserts.is_empty(), "{:?}", done.upserts);
        assert!(
            !done
                .changes
                .iter()
                .any(|change| matches!(change, Change::Agent { .. } | Change::Team { .. })),
            "{:?}",
            done.changes
        );
    }

    #[test]
    fn reason_codes_are_looked_up_or_created_with_their_first_label() {
        let reason = |code: &str, label: &str| {
            Some(EventReason {
                code: code.into(),
                label: label.into(),
            })
        };
        let mut known = event("e1", "a1", NotReady, 2_000);
        known.reason = reason("lunch", "Lunch");
        let mut new_b = event("e2", "a1", NotReady, 3_000);
        new_b.reason = reason("coaching", "Coaching (team)");
        let mut new_a = event("e3", "a1", NotReady, 4_000);
        new_a.reason = reason("coaching", "Coaching");
        let done = run(
            &[batch(vec![known, new_b, new_a])],
            &floor(),
            &IngestConfig::default(),
            &Stored::default(),
        );
        let codes: Vec<Option<i64>> = done.rows.iter().map(|row| row.reason_code_id).collect();
        assert_eq!(codes, vec![Some(100), Some(1001), Some(1001)]);
        let created: Vec<&Change> = done
            .changes
            .iter()
            .filter(|change| matches!(change, Change::Reason { .. }))
            .collect();
        assert_eq!(
            created,
            vec![&Change::Reason {
                id: 1001,
                code: "coaching".into(),
                label: "Coaching".into()
            }]
        );
    }

    #[test]
    fn heartbeats_count_for_active_agents_only_and_watched_sources_mark_states() {
        let batches = [Batch {
            source: Source::AmazonConnect,
            events: vec![event("e1", "a1", OnCall, 2_000)],
            heartbeats: vec!["a1".into(), "gone".into(), "nobody".into(), "a1".into()],
        }];
        let done = run(
            &batches,
            &floor(),
            &IngestConfig::default(),
            &Stored::default(),
        );
        let seen: Vec<&Change> = done
            .changes
            .iter()
            .filter(|change| matches!(change, Change::Seen { .. }))
            .collect();
        assert_eq!(
            seen,
            vec![&Change::Seen {
                agent: 7,
                at_ms: NOW
            }]
        );
        assert!(done.changes.contains(&Change::State {
            agent: 7,
            state: OnCall,
            reason: None,
            since_ms: 2_000,
            seen_ms: NOW,
            watched: true,
        }));
    }

    fn agent_entry(id: &str, team: &str, site: &str, active: bool) -> AgentEntryJson {
        AgentEntryJson {
            external_id: id.into(),
            name: id.to_uppercase(),
            team: team.into(),
            site: site.into(),
            active,
        }
    }

    fn group_entry(name: &str) -> GroupEntryJson {
        GroupEntryJson {
            name: name.into(),
            rename_to: None,
            active: true,
        }
    }

    #[test]
    fn a_roster_sync_is_checked_before_the_database_is_asked() {
        let cases: Vec<(&str, RosterSyncJson, &str)> = vec![
            (
                "a site listed twice",
                RosterSyncJson {
                    sites: vec![group_entry("Lisbon"), group_entry("Lisbon")],
                    ..RosterSyncJson::default()
                },
                "site \"Lisbon\" is listed twice",
            ),
            (
                "a reason code listed twice",
                RosterSyncJson {
                    reasons: vec![
                        ReasonEntryJson {
                            code: "lunch".into(),
                            label: "Lunch".into(),
                        },
                        ReasonEntryJson {
                            code: "lunch".into(),
                            label: "Dinner".into(),
                        },
                    ],
                    ..RosterSyncJson::default()
                },
                "reason code \"lunch\" is listed twice",
            ),
            (
                "an agent listed twice",
                RosterSyncJson {
                    agents: vec![
                        agent_entry("a1", "Sales", "Lisbon", true),
                        agent_entry("a1", "Sales", "Lisbon", false),
                    ],
                    ..RosterSyncJson::default()
                },
                "agent \"a1\" is listed twice",
            ),
            (
                "a team name too long to show",
                RosterSyncJson {
                    teams: vec![group_entry(&"T".repeat(1_000))],
                    ..RosterSyncJson::default()
                },
                "team",
            ),
        ];
        for (case, sync, expected) in cases {
            let refused = check_roster(&sync).expect_err(case);
            assert!(refused.contains(expected), "{case}: {refused}");
        }
        let fine = RosterSyncJson {
            sites: vec![group_entry("Lisbon")],
            agents: vec![agent_entry("a1", "Sales", "Lisbon", true)],
            ..RosterSyncJson::default()
        };
        assert_eq!(check_roster(&fine), Ok(()));
    }

    #[test]
    fn a_roster_sync_stores_listed_agents_and_deactivates_the_rest_when_asked() {
        let mut catalog = floor();
        for (external_id, id) in [("a2", 9), ("sim-000001", 11), ("sim-000002", 12)] {
            catalog.agents.insert(
                external_id.into(),
                KnownAgent {
                    id,
                    name: external_id.into(),
                    team: 1,
                    site: 10,
                    active: true,
                },
            );
        }
        let teams = HashMap::from([("Sales".to_owned(), 1)]);
        let sites = HashMap::from([("Lisbon".to_owned(), 10)]);
        let mut sync = RosterSync::from(RosterSyncJson {
            agents: vec![
                agent_entry("a1", "Sales", "Lisbon", true),
                agent_entry("gone", "Sales", "Lisbon", false),
                agent_entry("a4", "Sales", "Lisbon", true),
            ],
            ..RosterSyncJson::default()
        });
        let names = roster_group_names(&sync.roster);
        assert_eq!(names.teams, vec!["Sales"], "each name once");
        assert_eq!(names.sites, vec!["Lisbon"]);
        let gone = |sync: &RosterSync| {
            roster_agents(sync, &teams, &sites, &catalog)
                .expect("a valid sync")
                .gone
        };
        let kept = roster_agents(&sync, &teams, &sites, &catalog).expect("a valid sync");
        assert_eq!(
            kept.upserts.first(),
            Some(&NewAgent {
                external_id: "a1",
                name: "A1",
                team_id: 1,
                site_id: 10
            })
        );
        assert_eq!(kept.upserts.len(), 2);
        assert!(kept.gone.is_empty(), "an inactive agent listed inactive");

        sync.roster.agents[1] = agent_entry("a2", "Sales", "Lisbon", false);
        assert_eq!(gone(&sync), vec![9], "listed as inactive");

        sync.roster.agents.remove(1);
        sync.unlisted = Unlisted::Deactivate;
        assert_eq!(
            gone(&sync),
            vec![9, 11, 12],
            "every active agent not listed"
        );

        sync.unlisted = Unlisted::DeactivateWithPrefix("sim-".into());
        sync.roster
            .agents
            .push(agent_entry("sim-000001", "Sales", "Lisbon", true));
        assert_eq!(
            gone(&sync),
            vec![12],
            "the simulator's unlisted agents only"
        );

        sync.roster.agents = vec![agent_entry("a3", "Support", "Lisbon", true)];
        let refused = roster_agents(&sync, &teams, &sites, &catalog).expect_err("an unknown team");
        assert!(refused.contains("names team \"Support\""), "{refused}");
    }

    #[test]
    fn agents_leave_before_their_groups() {
        let mut changes = vec![
            Change::TeamGone { id: 1 },
            Change::AgentGone { id: 7 },
            Change::SiteGone { id: 10 },
            Change::Team {
                id: 2,
                name: "New".into(),
            },
        ];
        order_roster_changes(&mut changes);
        assert_eq!(
            changes,
            vec![
                Change::AgentGone { id: 7 },
                Change::Team {
                    id: 2,
                    name: "New".into()
                },
                Change::TeamGone { id: 1 },
                Change::SiteGone { id: 10 },
            ]
        );
    }
}
