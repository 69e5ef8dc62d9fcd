//! Ingest: agent state events and roster changes from telephony and HR systems.
//!
//! Everything that changes the floor goes through one writer task ([`Ingest`]), which stores it
//! in the database, commits, and only then applies it to the live floor, shares it with the
//! other servers and answers: an acknowledged event is durable. Concurrent batches are written
//! together in one transaction (group commit), so many small requests cost one commit.
//!
//! The rules an event is judged by:
//! - an event id stored before makes the event a duplicate: a retried batch changes nothing;
//! - an event whose state began before the agent's current state is stored as history only;
//! - an event for an unknown agent creates it or is refused, per `[ingest] unknown_agents`;
//! - a team or site named in an event moves the agent there (creating the team or site).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::routing::post;
use monti_protocol::ingest::{
    AgentEventJson, EventBatchResultJson, EventResultJson, EventWindow, MAX_ID_LEN, Outcome,
    RosterSyncJson, RosterSyncResultJson, check_id, check_name,
};
use monti_protocol::model::StateKind;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use crate::AppState;
use crate::auth::{Action, Caller};
use crate::change::Change;
use crate::config::{IngestConfig, UnknownAgents};
use crate::db::{Db, Group, HistoryRow, NewAgent, StoredState, Tx};
use crate::error::Error;
use crate::live::{KnownAgent, LiveFloor, Writes};
use crate::metrics::{EventLabels, Metrics};
use crate::share::Publisher;

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

    fn watched(self) -> bool {
        self == Source::AmazonConnect
    }
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
    /// Not-ready reason code, and the label to create it with if it is new.
    pub reason: Option<(String, String)>,
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
            reason: json.reason.map(|code| (code.clone(), code)),
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

/// The name, team and site an event names for its agent, where it names them.
type Placement<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>);

/// What became of one event.
pub type EventResult = (Outcome, Option<String>);

/// Why something was not stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The request contradicts itself or the roster; nothing was stored.
    #[error("{0}")]
    Invalid(String),
    /// The database failed; nothing was stored, the caller should retry.
    #[error("not stored, send it again: {0:#}")]
    Store(anyhow::Error),
    /// The server is shutting down.
    #[error("the server is shutting down; send it again")]
    Closed,
}

impl From<anyhow::Error> for IngestError {
    fn from(err: anyhow::Error) -> IngestError {
        IngestError::Store(err)
    }
}

impl From<IngestError> for Error {
    fn from(err: IngestError) -> Error {
        match err {
            IngestError::Invalid(message) => Error::Unprocessable(message),
            IngestError::Store(err) => {
                tracing::warn!(error = format!("{err:#}"), "ingest not stored");
                Error::Unavailable("the events were not stored; send them again".to_owned())
            }
            IngestError::Closed => Error::Unavailable(err.to_string()),
        }
    }
}

enum Work {
    Events(
        Batch,
        oneshot::Sender<Result<Vec<EventResult>, IngestError>>,
    ),
    Roster(
        RosterSyncJson,
        oneshot::Sender<Result<RosterSyncResultJson, IngestError>>,
    ),
    Reload(oneshot::Sender<Result<(), IngestError>>),
    /// Changes other servers committed (they are in the database already).
    Shared(Vec<Change>),
    /// Marks agents stale whose source has been silent this long.
    SweepStale(u64),
}

/// The handle to the writer task; cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    jobs: mpsc::Sender<Work>,
}

/// Batches written in one transaction hold at most about this many events.
const GROUP_EVENTS: usize = 20_000;

impl Ingest {
    /// Starts the writer. It ends when every handle is dropped, after the work queued.
    pub fn start(
        db: Db,
        live: Arc<LiveFloor>,
        writes: Writes,
        publisher: Option<Publisher>,
        config: IngestConfig,
        metrics: Arc<Metrics>,
    ) -> (Ingest, tokio::task::JoinHandle<()>) {
        let (jobs, queue) = mpsc::channel(1_024);
        let writer = Writer {
            db,
            live,
            writes,
            publisher,
            config,
            metrics,
        };
        (Ingest { jobs }, tokio::spawn(writer.run(queue)))
    }

    /// Stores a batch and returns what became of each event, in order. Returns only after the
    /// stored events are durable.
    pub async fn submit(&self, batch: Batch) -> Result<Vec<EventResult>, IngestError> {
        self.enqueue(batch).await?.await
    }

    /// Queues a batch behind those queued before it and returns, without waiting for it to be
    /// stored; the returned future says what became of it. For a source that must not wait a
    /// commit between batches (the simulator): queued batches are stored in order, several to
    /// a transaction.
    pub async fn enqueue(
        &self,
        batch: Batch,
    ) -> Result<impl Future<Output = Result<Vec<EventResult>, IngestError>> + use<>, IngestError>
    {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Work::Events(batch, reply))
            .await
            .map_err(|_| IngestError::Closed)?;
        Ok(async move { answer.await.map_err(|_| IngestError::Closed)? })
    }

    /// Brings the floor in line with the database, between two of this server's commits (so it
    /// never races one). Catches what reached the database without reaching this floor: a
    /// commit of a killed server that landed after this one loaded, a change another server
    /// could not share.
    pub async fn reload(&self) -> Result<(), IngestError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Work::Reload(reply))
            .await
            .map_err(|_| IngestError::Closed)?;
        answer.await.map_err(|_| IngestError::Closed)?
    }

    /// Applies changes another server committed, in order with this server's own.
    pub async fn shared(&self, changes: Vec<Change>) -> Result<(), IngestError> {
        self.jobs
            .send(Work::Shared(changes))
            .await
            .map_err(|_| IngestError::Closed)
    }

    /// Marks agents stale whose source has said nothing for `after_ms`.
    pub async fn sweep_stale(&self, after_ms: u64) -> Result<(), IngestError> {
        self.jobs
            .send(Work::SweepStale(after_ms))
            .await
            .map_err(|_| IngestError::Closed)
    }

    /// Applies a roster sync, all of it or nothing.
    pub async fn roster(&self, sync: RosterSyncJson) -> Result<RosterSyncResultJson, IngestError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Work::Roster(sync, reply))
            .await
            .map_err(|_| IngestError::Closed)?;
        answer.await.map_err(|_| IngestError::Closed)?
    }
}

struct Writer {
    db: Db,
    live: Arc<LiveFloor>,
    /// The only right to change the floor.
    writes: Writes,
    publisher: Option<Publisher>,
    config: IngestConfig,
    metrics: Arc<Metrics>,
}

type Reply = oneshot::Sender<Result<Vec<EventResult>, IngestError>>;

impl Writer {
    async fn run(self, mut queue: mpsc::Receiver<Work>) {
        let mut next = None;
        loop {
            let work = match next.take() {
                Some(work) => work,
                None => match queue.recv().await {
                    Some(work) => work,
                    None => break,
                },
            };
            match work {
                Work::Roster(sync, reply) => {
                    let _ = reply.send(self.roster(sync).await);
                }
                Work::Shared(changes) => {
                    self.live
                        .apply(&self.writes, &changes, crate::clock::now_ms());
                }
                Work::SweepStale(after_ms) => {
                    self.live
                        .sweep_stale(&self.writes, crate::clock::now_ms(), after_ms);
                }
                Work::Reload(reply) => {
                    let reloaded = match self.db.load_floor().await {
                        Ok(stored) => {
                            self.live
                                .reload(&self.writes, &stored, crate::clock::now_ms());
                            self.metrics.floor_reloads.inc();
                            Ok(())
                        }
                        Err(err) => Err(IngestError::Store(err)),
                    };
                    let _ = reply.send(reloaded);
                }
                Work::Events(batch, reply) => {
                    let mut group: Vec<(Batch, Reply)> = vec![(batch, reply)];
                    let mut n_events = group[0].0.events.len();
                    while n_events < GROUP_EVENTS {
                        match queue.try_recv() {
                            Ok(Work::Events(batch, reply)) => {
                                n_events += batch.events.len();
                                group.push((batch, reply));
                            }
                            Ok(roster) => {
                                next = Some(roster);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    let started = Instant::now();
                    let batches: Vec<&Batch> = group.iter().map(|(batch, _)| batch).collect();
                    match self.events(&batches).await {
                        Ok(results) => {
                            self.metrics
                                .ingest_commit_seconds
                                .observe(started.elapsed().as_secs_f64());
                            for ((batch, reply), results) in group.into_iter().zip(results) {
                                for (outcome, _) in &results {
                                    self.metrics
                                        .events
                                        .get_or_create(&EventLabels {
                                            source: batch.source.name(),
                                            outcome: outcome.name(),
                                        })
                                        .inc();
                                }
                                let _ = reply.send(Ok(results));
                            }
                        }
                        Err(err) => {
                            self.metrics.ingest_failures.inc();
                            let message = format!("{err:#}");
                            for (_, reply) in group {
                                let _ = reply
                                    .send(Err(IngestError::Store(anyhow::anyhow!("{message}"))));
                            }
                        }
                    }
                }
            }
        }
    }

    /// Stores the events of several batches in one transaction, then applies and shares them.
    async fn events(&self, batches: &[&Batch]) -> anyhow::Result<Vec<Vec<EventResult>>> {
        let now = crate::clock::now_ms();
        let mut results: Vec<Vec<Option<EventResult>>> = batches
            .iter()
            .map(|batch| vec![None; batch.events.len()])
            .collect();
        let event = |(b, e): (usize, usize)| &batches[b].events[e];

        // Duplicates inside the group, then agents that may not be created.
        let mut ids = HashSet::new();
        let mut items = Vec::new();
        for (b, batch) in batches.iter().enumerate() {
            for (e, ev) in batch.events.iter().enumerate() {
                if ids.insert(ev.event_id.as_str()) {
                    items.push((b, e));
                } else {
                    results[b][e] = Some((Outcome::Duplicate, None));
                }
            }
        }
        let mut known: HashMap<&str, KnownAgent> = HashMap::new();
        let mut unknown: HashSet<&str> = HashSet::new();
        for &item in &items {
            let agent = event(item).agent.as_str();
            if known.contains_key(agent) || unknown.contains(agent) {
                continue;
            }
            // A deactivated agent counts as unknown: created again (in its old team and site
            // unless the event names others) or refused, like a new one.
            match self.live.agent(agent) {
                Some(found) => {
                    if !found.active {
                        unknown.insert(agent);
                    }
                    known.insert(agent, found);
                }
                None => {
                    unknown.insert(agent);
                }
            }
        }
        if self.config.unknown_agents == UnknownAgents::Refuse {
            items.retain(|&(b, e)| {
                let agent = batches[b].events[e].agent.as_str();
                if unknown.contains(agent) {
                    results[b][e] = Some((
                        Outcome::Refused,
                        Some(format!(
                            "unknown agent {agent:?}: add it with POST /api/v1/roster first \
                             (this server refuses events for unknown agents)"
                        )),
                    ));
                    false
                } else {
                    true
                }
            });
            unknown.clear();
        }

        // Where each agent in play belongs after this group: the last event naming a team,
        // site or name wins; new agents without one go to the defaults.
        let mut placement: HashMap<&str, Placement<'_>> = HashMap::new();
        for &item in &items {
            let ev = event(item);
            let entry = placement.entry(ev.agent.as_str()).or_default();
            entry.0 = ev.name.as_deref().or(entry.0);
            entry.1 = ev.team.as_deref().or(entry.1);
            entry.2 = ev.site.as_deref().or(entry.2);
        }
        let mut team_names: Vec<&str> = Vec::new();
        let mut site_names: Vec<&str> = Vec::new();
        for (agent, (_, team, site)) in &placement {
            let new = !known.contains_key(agent);
            if let Some(team) = team.or(new.then_some(self.config.default_team.as_str())) {
                team_names.push(team);
            }
            if let Some(site) = site.or(new.then_some(self.config.default_site.as_str())) {
                site_names.push(site);
            }
        }
        team_names.sort_unstable();
        team_names.dedup();
        site_names.sort_unstable();
        site_names.dedup();
        let mut reasons: Vec<(&str, &str)> = items
            .iter()
            .filter_map(|&item| {
                let (code, label) = event(item).reason.as_ref()?;
                Some((code.as_str(), label.as_str()))
            })
            .collect();
        reasons.sort_unstable();
        reasons.dedup_by(|a, b| a.0 == b.0);

        let mut tx = self.db.begin().await?;
        let mut changes = Vec::new();
        let teams = self
            .groups(&mut tx, Group::Team, &team_names, now, &mut changes)
            .await?;
        let sites = self
            .groups(&mut tx, Group::Site, &site_names, now, &mut changes)
            .await?;
        let missing: Vec<(&str, &str)> = reasons
            .iter()
            .copied()
            .filter(|(code, _)| self.live.reason_id(code).is_none())
            .collect();
        let mut reason_ids: HashMap<String, i64> = reasons
            .iter()
            .filter_map(|(code, _)| Some((code.to_string(), self.live.reason_id(code)?)))
            .collect();
        if !missing.is_empty() {
            let created = Db::store_reasons(&mut tx, &missing, false, now as i64).await?;
            for (code, label) in &missing {
                if let Some(&id) = created.get(*code) {
                    reason_ids.insert(code.to_string(), id);
                    changes.push(Change::Reason {
                        id,
                        code: code.to_string(),
                        label: label.to_string(),
                    });
                }
            }
        }

        // New agents, and known ones that moved or were renamed.
        let mut upserts: Vec<NewAgent<'_>> = Vec::new();
        for (&agent, &(name, team, site)) in &placement {
            let current = known.get(agent);
            let team_id = match (team, current) {
                (Some(team), _) => id_of(&teams, team)?,
                (None, Some(current)) => current.team,
                (None, None) => id_of(&teams, self.config.default_team.as_str())?,
            };
            let site_id = match (site, current) {
                (Some(site), _) => id_of(&sites, site)?,
                (None, Some(current)) => current.site,
                (None, None) => id_of(&sites, self.config.default_site.as_str())?,
            };
            let name = name
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
        let mut agent_ids: HashMap<&str, i64> = known
            .iter()
            .map(|(&agent, found)| (agent, found.id))
            .collect();
        if !upserts.is_empty() {
            let stored = Db::upsert_agents(&mut tx, &upserts, now as i64).await?;
            for agent in &upserts {
                let id = id_of(&stored, agent.external_id)?;
                agent_ids.insert(agent.external_id, id);
                changes.push(Change::Agent {
                    id,
                    external_id: agent.external_id.to_owned(),
                    name: agent.name.to_owned(),
                    team: agent.team_id,
                    site: agent.site_id,
                });
            }
        }

        // History, then the current state of each agent: its newest new event, unless the
        // stored one began later.
        let rows: Vec<HistoryRow> = items
            .iter()
            .map(|&item| {
                let ev = event(item);
                Ok(HistoryRow {
                    event_id: ev.event_id.clone(),
                    agent_id: id_of(&agent_ids, ev.agent.as_str())?,
                    state: ev.state,
                    reason_code_id: ev
                        .reason
                        .as_ref()
                        .and_then(|(code, _)| reason_ids.get(code).copied()),
                    started_at: ev.since_ms as i64,
                    created_at: now as i64,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let new_events = Db::insert_history(&mut tx, &rows).await?;
        let mut newest: HashMap<i64, (usize, usize, usize)> = HashMap::new();
        for (row_idx, (&(b, e), row)) in items.iter().zip(&rows).enumerate() {
            if !new_events.contains(&row.event_id) {
                results[b][e] = Some((Outcome::Duplicate, None));
                continue;
            }
            let entry = newest.entry(row.agent_id).or_insert((b, e, row_idx));
            if row.started_at >= rows[entry.2].started_at {
                *entry = (b, e, row_idx);
            }
        }
        let states: Vec<StoredState> = newest
            .values()
            .map(|&(b, _, row_idx)| {
                let row = &rows[row_idx];
                StoredState {
                    agent_id: row.agent_id,
                    state: row.state,
                    reason_code_id: row.reason_code_id,
                    started_at: row.started_at,
                    seen_at: now as i64,
                    watched: batches[b].source.watched(),
                }
            })
            .collect();
        let written = Db::upsert_states(&mut tx, &states).await?;
        for state in &states {
            if written.contains(&state.agent_id) {
                changes.push(state.change());
            }
        }
        for (&(b, e), row) in items.iter().zip(&rows) {
            if results[b][e].is_some() {
                continue;
            }
            let current = newest
                .get(&row.agent_id)
                .is_some_and(|&(nb, ne, _)| (nb, ne) == (b, e));
            results[b][e] = Some(if current && written.contains(&row.agent_id) {
                (Outcome::Applied, None)
            } else {
                (Outcome::Older, None)
            });
        }

        // Heartbeats of known agents.
        let mut heard: Vec<i64> = Vec::new();
        for batch in batches {
            for agent in &batch.heartbeats {
                if let Some(found) = self.live.agent(agent).filter(|found| found.active) {
                    heard.push(found.id);
                }
            }
        }
        heard.sort_unstable();
        heard.dedup();
        if !heard.is_empty() {
            Db::touch_states(&mut tx, &heard, now as i64).await?;
            changes.extend(
                heard
                    .iter()
                    .map(|&agent| Change::Seen { agent, at_ms: now }),
            );
        }
        tx.commit().await?;
        self.publish(changes, now);
        Ok(results
            .into_iter()
            .map(|results| {
                results
                    .into_iter()
                    .map(|result| result.unwrap_or((Outcome::Refused, None)))
                    .collect()
            })
            .collect())
    }

    /// Ids of active sites or teams by name, creating (or reactivating) the missing ones.
    async fn groups<'a>(
        &self,
        tx: &mut Tx,
        group: Group,
        names: &[&'a str],
        now: u64,
        changes: &mut Vec<Change>,
    ) -> anyhow::Result<HashMap<&'a str, i64>> {
        let mut ids = HashMap::with_capacity(names.len());
        let mut missing = Vec::new();
        for &name in names {
            match self.live.group_id(group, name) {
                Some(id) => {
                    ids.insert(name, id);
                }
                None => missing.push(name),
            }
        }
        if missing.is_empty() {
            return Ok(ids);
        }
        let (stored, _) = Db::ensure_groups(tx, group, &missing, now as i64).await?;
        for name in missing {
            let id = *stored
                .get(name)
                .ok_or_else(|| anyhow::anyhow!("{name} was not stored"))?;
            ids.insert(name, id);
            changes.push(group_change(group, id, name));
        }
        Ok(ids)
    }

    /// Applies committed changes to this server's floor and shares them with the others.
    fn publish(&self, changes: Vec<Change>, now: u64) {
        if changes.is_empty() {
            return;
        }
        self.live.apply(&self.writes, &changes, now);
        if let Some(publisher) = &self.publisher {
            publisher.publish(changes);
        }
    }

    async fn roster(&self, sync: RosterSyncJson) -> Result<RosterSyncResultJson, IngestError> {
        check_roster(&sync).map_err(IngestError::Invalid)?;
        let now = crate::clock::now_ms();
        let mut tx = self.db.begin().await?;
        let mut changes = Vec::new();
        let mut result = RosterSyncResultJson::default();
        let mut gone_groups = Vec::new();
        for (group, entries) in [(Group::Site, &sync.sites), (Group::Team, &sync.teams)] {
            let lookup = |name: &str| self.live.group_id(group, name);
            let wanted: Vec<&str> = entries
                .iter()
                .filter(|entry| entry.active && entry.rename_to.is_none())
                .map(|entry| entry.name.as_str())
                .collect();
            let (ids, created) = Db::ensure_groups(&mut tx, group, &wanted, now as i64).await?;
            for name in &created {
                count_group(&mut result, group);
                changes.push(group_change(group, id_of(&ids, name)?, name));
            }
            for entry in entries {
                let Some(id) = lookup(&entry.name).or_else(|| ids.get(&entry.name).copied()) else {
                    if !entry.active {
                        continue;
                    }
                    return Err(IngestError::Invalid(format!(
                        "there is no active {} named {:?} to rename",
                        group.table(),
                        entry.name
                    )));
                };
                if let Some(new_name) = &entry.rename_to {
                    if lookup(new_name).is_some() {
                        return Err(IngestError::Invalid(format!(
                            "cannot rename {:?}: a {} named {new_name:?} exists",
                            entry.name,
                            group.table()
                        )));
                    }
                    if Db::group_named(&mut tx, group, new_name).await?.is_some() {
                        return Err(IngestError::Invalid(format!(
                            "cannot rename {:?}: a deactivated {} named {new_name:?} exists \
                             (list it as active to bring it back)",
                            entry.name,
                            group.table()
                        )));
                    }
                    Db::rename_group(&mut tx, group, id, new_name).await?;
                    count_group(&mut result, group);
                    changes.push(group_change(group, id, new_name));
                }
                if !entry.active {
                    Db::deactivate_group(&mut tx, group, id).await?;
                    gone_groups.push((group, id, entry.name.clone()));
                }
            }
        }
        let reasons: Vec<(&str, &str)> = sync
            .reasons
            .iter()
            .map(|reason| (reason.code.as_str(), reason.label.as_str()))
            .collect();
        let reason_ids = Db::store_reasons(&mut tx, &reasons, true, now as i64).await?;
        for (code, label) in &reasons {
            result.reasons += 1;
            changes.push(Change::Reason {
                id: id_of(&reason_ids, *code)?,
                code: code.to_string(),
                label: label.to_string(),
            });
        }

        // Agents: every name they use must be an active team or site by now.
        let mut names: [Vec<&str>; 2] = [Vec::new(), Vec::new()];
        for agent in sync.agents.iter().filter(|agent| agent.active) {
            names[0].push(&agent.site);
            names[1].push(&agent.team);
        }
        let site_ids = Db::active_group_ids(&mut tx, Group::Site, &names[0]).await?;
        let team_ids = Db::active_group_ids(&mut tx, Group::Team, &names[1]).await?;
        let mut upserts = Vec::new();
        let mut gone = Vec::new();
        for agent in &sync.agents {
            if !agent.active {
                if let Some(found) = self.live.agent(&agent.external_id)
                    && found.active
                {
                    gone.push(found.id);
                }
                continue;
            }
            let (Some(&team_id), Some(&site_id)) =
                (team_ids.get(&agent.team), site_ids.get(&agent.site))
            else {
                return Err(IngestError::Invalid(format!(
                    "agent {:?} names team {:?} and site {:?}; both must be active teams and \
                     sites or be created in the same sync",
                    agent.external_id, agent.team, agent.site
                )));
            };
            upserts.push(NewAgent {
                external_id: &agent.external_id,
                name: &agent.name,
                team_id,
                site_id,
            });
        }
        if sync.deactivate_missing_agents {
            let listed: HashSet<&str> = sync
                .agents
                .iter()
                .map(|agent| agent.external_id.as_str())
                .collect();
            gone.extend(
                self.live
                    .active_agents()
                    .into_iter()
                    .filter(|(external_id, _)| !listed.contains(external_id.as_str()))
                    .map(|(_, id)| id),
            );
        }
        let stored = Db::upsert_agents(&mut tx, &upserts, now as i64).await?;
        for agent in &upserts {
            result.agents += 1;
            changes.push(Change::Agent {
                id: id_of(&stored, agent.external_id)?,
                external_id: agent.external_id.to_owned(),
                name: agent.name.to_owned(),
                team: agent.team_id,
                site: agent.site_id,
            });
        }
        gone.sort_unstable();
        gone.dedup();
        Db::deactivate_agents(&mut tx, &gone).await?;
        result.agents_deactivated = gone.len();
        changes.extend(gone.iter().map(|&id| Change::AgentGone { id }));
        for (group, id, name) in gone_groups {
            let left = Db::active_agents_in(&mut tx, group, id).await?;
            if left > 0 {
                return Err(IngestError::Invalid(format!(
                    "cannot deactivate {} {name:?}: {left} active agents are still in it; \
                     move or deactivate them in the same sync",
                    group.table()
                )));
            }
            result.groups_deactivated += 1;
            changes.push(match group {
                Group::Site => Change::SiteGone { id },
                Group::Team => Change::TeamGone { id },
            });
        }
        tx.commit().await.map_err(anyhow::Error::from)?;
        // Agents leave before their team does.
        changes.sort_by_key(|change| {
            matches!(change, Change::SiteGone { .. } | Change::TeamGone { .. })
        });
        self.publish(changes, now);
        Ok(result)
    }
}

/// A database id the transaction just stored or read; its absence is a storage failure, never a
/// panic (the writer task serves every later request too).
fn id_of<K, Q>(ids: &HashMap<K, i64>, key: &Q) -> anyhow::Result<i64>
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + std::fmt::Debug + ?Sized,
{
    ids.get(key)
        .copied()
        .ok_or_else(|| anyhow::anyhow!("{key:?} was not stored"))
}

fn group_change(group: Group, id: i64, name: &str) -> Change {
    match group {
        Group::Site => Change::Site {
            id,
            name: name.to_owned(),
        },
        Group::Team => Change::Team {
            id,
            name: name.to_owned(),
        },
    }
}

/// Counts a site or team a sync created or renamed.
fn count_group(result: &mut RosterSyncResultJson, group: Group) {
    match group {
        Group::Site => result.sites += 1,
        Group::Team => result.teams += 1,
    }
}

/// Checks a roster sync for what can be judged without the database.
fn check_roster(sync: &RosterSyncJson) -> Result<(), String> {
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

/// The ingest API.
pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/v1/events", post(post_events))
        .route("/api/v1/roster", post(post_roster))
        .route("/api/v1/openapi.json", axum::routing::get(openapi))
}

/// The ingest API's OpenAPI description, `server/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

/// Refuses a body that does not say it is JSON (415). Without this a web page could post events
/// as `text/plain` with no CORS preflight.
pub fn require_json(headers: &axum::http::HeaderMap) -> Result<(), Error> {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(Error::UnsupportedMediaType(format!(
            "send the body as Content-Type: application/json (not {:?})",
            content_type
        )))
    }
}

/// Reads a request body up to `limit` bytes; beyond it, 413.
pub async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes, Error> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        Error::TooLarge(format!(
            "the request body is larger than {limit} bytes; send smaller batches"
        ))
    })
}

/// Parses a JSON body: not JSON is 400, JSON of the wrong shape 422, both with serde's words.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|err| match err.classify() {
        serde_json::error::Category::Data => Error::Unprocessable(err.to_string()),
        _ => Error::BadRequest(format!("the body is not JSON: {err}")),
    })
}

/// A batch whose events are judged one by one: a malformed event is refused, not the batch.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LooseBatch {
    events: Vec<serde_json::Value>,
}

async fn post_events(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<Json<EventBatchResultJson>, Error> {
    caller.require(Action::Ingest)?;
    require_json(&headers)?;
    let config = &state.config.ingest;
    let body = read_body(body, config.max_body_bytes).await?;
    let batch: LooseBatch = parse_json(&body)?;
    if batch.events.len() > config.max_events {
        return Err(Error::Unprocessable(format!(
            "a batch holds at most {} events; this one has {}",
            config.max_events,
            batch.events.len()
        )));
    }
    let now = crate::clock::now_ms();
    let mut ids = Vec::with_capacity(batch.events.len());
    let mut checked: Vec<Result<Event, String>> = Vec::with_capacity(batch.events.len());
    for value in batch.events {
        ids.push(
            value
                .get("event_id")
                .and_then(|id| id.as_str())
                .unwrap_or_default()
                .chars()
                .take(MAX_ID_LEN)
                .collect::<String>(),
        );
        checked.push(
            serde_json::from_value::<AgentEventJson>(value)
                .map_err(|err| err.to_string())
                .and_then(|json| Event::from_json(json, now, &config.window())),
        );
    }
    let events: Vec<Event> = checked.iter().filter_map(|c| c.clone().ok()).collect();
    let mut stored = state
        .ingest
        .submit(Batch {
            source: Source::Api,
            events,
            heartbeats: Vec::new(),
        })
        .await?
        .into_iter();
    let results = checked
        .into_iter()
        .zip(ids)
        .map(|(checked, event_id)| {
            let (outcome, reason) = match checked {
                Ok(_) => stored.next().unwrap_or((Outcome::Refused, None)),
                Err(reason) => {
                    state
                        .metrics
                        .events
                        .get_or_create(&EventLabels {
                            source: Source::Api.name(),
                            outcome: Outcome::Refused.name(),
                        })
                        .inc();
                    (Outcome::Refused, Some(reason))
                }
            };
            EventResultJson {
                event_id,
                outcome,
                reason,
            }
        })
        .collect();
    Ok(Json(EventBatchResultJson::new(results)))
}

async fn post_roster(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<Json<RosterSyncResultJson>, Error> {
    caller.require(Action::Ingest)?;
    require_json(&headers)?;
    let body = read_body(body, state.config.ingest.max_body_bytes).await?;
    let sync: RosterSyncJson = parse_json(&body)?;
    let result = state.ingest.roster(sync).await?;
    // A binding that names a team or site still missing (or now removed) says so again.
    if state.config.auth.mode == crate::config::AuthMode::Oidc {
        crate::auth_check::log(&crate::auth_check::bindings(
            &state.config.auth,
            |team| state.live.team_id(team).is_some(),
            |site| state.live.site_id(site).is_some(),
        ));
    }
    Ok(Json(result))
}

/// Marks agents stale whose source stopped reporting on them, until `stop`.
pub async fn watch_stale(
    ingest: Ingest,
    after: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let every = (after / 10).clamp(Duration::from_millis(200), Duration::from_secs(10));
    let mut interval = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = interval.tick() => {
                if ingest.sweep_stale(after.as_millis() as u64).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// Reloads the floor from the database a few seconds after start (a killed predecessor's last
/// commit can land after this server loaded), then every `every`, until `stop`.
pub async fn reconcile(ingest: Ingest, every: Duration, stop: tokio_util::sync::CancellationToken) {
    let mut next = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(next) => {}
        }
        if let Err(err) = ingest.reload().await {
            tracing::warn!(%err, "cannot reload the floor from the database");
        }
        next = tokio::time::Instant::now() + every;
    }
}

/// Deletes history older than the retention, hourly, until `stop`.
pub async fn prune_history(db: Db, days: u64, stop: tokio_util::sync::CancellationToken) {
    if days == 0 {
        return;
    }
    let mut interval = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = interval.tick() => {
                let before = crate::clock::now_ms().saturating_sub(days * 86_400_000) as i64;
                match db.prune_history(before).await {
                    Ok(0) => {}
                    Ok(rows) => tracing::info!(rows, days, "pruned state history"),
                    Err(err) => tracing::warn!(error = format!("{err:#}"), "cannot prune history"),
                }
            }
        }
    }
}
