//! Ingest: agent state events and roster changes from telephony and HR systems.
//!
//! Everything that changes the floor goes through one writer task ([`Ingest`]), which stores it
//! in the database, commits, and only then applies it to the live floor, shares it with the
//! other servers and answers: an acknowledged event is durable. Concurrent batches are written
//! together in one transaction (group commit), so many small requests cost one commit.
//!
//! The rules an event is judged by are [`crate::core::plan`]'s.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::routing::post;
use monti_protocol::ingest::{
    AgentEventJson, ContactEventJson, EventBatchResultJson, EventResultJson, GroupEntryJson,
    MAX_ID_LEN, Outcome, QueueEntryJson, ReasonEntryJson, RosterSyncJson, RosterSyncResultJson,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use crate::AppState;
use crate::api::auth::{Action, Caller};
use crate::api::error::Error;
use crate::config::IngestConfig;
use crate::core::change::{Change, Group};
use crate::core::clock::Clock;
use crate::core::contact::{self, ContactBatch, ContactEvent, LegOutcome};
use crate::core::plan::{self, EventPlan, RosterSync, StoredState, count_group, id_of};
pub use crate::core::plan::{Batch, Event, EventReason, EventResult, Source};
use crate::core::queues::quarter_of;
use crate::floor::live::{LiveFloor, Writes};
use crate::metrics::{EventLabels, Metrics};
use crate::store::db::{ContactEventRow, Db, Tx};

/// The writer's outbox: hands committed changes to the link to the other servers
/// (`store::share`), which imports this, never the other way. Never blocks the writer.
#[derive(Clone)]
pub struct Publisher {
    queue: mpsc::Sender<Vec<Change>>,
    overflowed: Arc<AtomicBool>,
}

/// What the publishing task reads: made with the [`Publisher`] before the writer starts, handed
/// to `store::share::start` after (the writer publishes; the reader hands other servers'
/// changes to it).
pub struct Published {
    /// Changes in commit order.
    pub changes: mpsc::Receiver<Vec<Change>>,
    /// Set when changes were dropped for a full queue: every server must reload.
    pub overflowed: Arc<AtomicBool>,
}

/// A publisher for the writer and the queue it fills, for `store::share::start`.
pub fn publisher() -> (Publisher, Published) {
    let (queue, changes) = mpsc::channel(4_096);
    let overflowed = Arc::new(AtomicBool::new(false));
    (
        Publisher {
            queue,
            overflowed: overflowed.clone(),
        },
        Published {
            changes,
            overflowed,
        },
    )
}

impl Publisher {
    /// Queues changes for the other servers. When the queue is full (Redis is slow or gone)
    /// they are dropped and every server is told to reload once Redis takes writes again.
    pub fn publish(&self, changes: Vec<Change>) {
        if self.queue.try_send(changes).is_err() {
            self.overflowed.store(true, Ordering::Relaxed);
        }
    }
}

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
        RosterSync,
        oneshot::Sender<Result<RosterSyncResultJson, IngestError>>,
    ),
    Contacts(ContactBatch, Reply),
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
        clock: Clock,
    ) -> (Ingest, tokio::task::JoinHandle<()>) {
        let (jobs, queue) = mpsc::channel(1_024);
        let writer = Writer {
            db,
            live,
            writes,
            publisher,
            config,
            metrics,
            clock,
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
        let answer = self.queue_work(|reply| Work::Events(batch, reply)).await?;
        Ok(async move { answer.await.map_err(|_| IngestError::Closed)? })
    }

    /// Queues work that answers with per-event results; returns where the answer comes.
    async fn queue_work(
        &self,
        work: impl FnOnce(Reply) -> Work,
    ) -> Result<oneshot::Receiver<Result<Vec<EventResult>, IngestError>>, IngestError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(work(reply))
            .await
            .map_err(|_| IngestError::Closed)?;
        Ok(answer)
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

    /// Stores contact events and the legs they make, and returns what became of each event,
    /// in order, once durable.
    pub async fn contacts(&self, batch: ContactBatch) -> Result<Vec<EventResult>, IngestError> {
        self.enqueue_contacts(batch).await?.await
    }

    /// Like [`Ingest::contacts`], returning once queued (the simulator's way, as
    /// [`Ingest::enqueue`]).
    pub async fn enqueue_contacts(
        &self,
        batch: ContactBatch,
    ) -> Result<impl Future<Output = Result<Vec<EventResult>, IngestError>> + use<>, IngestError>
    {
        let answer = self
            .queue_work(|reply| Work::Contacts(batch, reply))
            .await?;
        Ok(async move { answer.await.map_err(|_| IngestError::Closed)? })
    }

    /// Applies a roster sync, all of it or nothing.
    pub async fn roster(&self, sync: RosterSync) -> Result<RosterSyncResultJson, IngestError> {
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
    clock: Clock,
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
                Work::Contacts(batch, reply) => {
                    let stored = self.contacts(&batch).await;
                    match &stored {
                        Ok(results) => {
                            for result in results {
                                self.metrics
                                    .contact_events
                                    .get_or_create(&EventLabels {
                                        source: batch.source.name(),
                                        outcome: result.outcome.name(),
                                    })
                                    .inc();
                            }
                        }
                        Err(_) => {
                            self.metrics.ingest_failures.inc();
                        }
                    }
                    let _ = reply.send(stored.map_err(IngestError::Store));
                }
                Work::Shared(changes) => {
                    self.live.apply(&self.writes, &changes, self.clock.now_ms());
                }
                Work::SweepStale(after_ms) => {
                    self.live
                        .sweep_stale(&self.writes, self.clock.now_ms(), after_ms);
                    self.metrics.stale_sweeps.inc();
                }
                Work::Reload(reply) => {
                    let now = self.clock.now_ms();
                    let short_ms = u64::from(self.live.queue_rules().short_abandon_secs) * 1000;
                    let midnight = self.live.zone().midnight(now);
                    let stored = self.db.load_floor(now, midnight, short_ms);
                    let reloaded = match stored.await {
                        Ok(stored) => {
                            self.live.reload(&self.writes, &stored, self.clock.now_ms());
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
                                for result in &results {
                                    self.metrics
                                        .events
                                        .get_or_create(&EventLabels {
                                            source: batch.source.name(),
                                            outcome: result.outcome.name(),
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

    /// Stores contact events in one transaction: the queues they name, the events not seen
    /// before, and the legs of each contact with a new event, folded again from all of its
    /// events ([`contact::legs`]); then applies and shares what changed for the queues' live
    /// figures: new queues, where each touched contact waits, and the recount of every quarter
    /// hour a replaced or new leg falls in.
    async fn contacts(&self, batch: &ContactBatch) -> anyhow::Result<Vec<EventResult>> {
        let now = self.clock.now_ms() as i64;
        let mut tx = self.db.begin().await?;
        let mut queues: Vec<(&str, &str)> = (batch.events.iter())
            .filter_map(|event| Some((event.queue.as_deref()?, event.channel)))
            .collect();
        queues.sort_unstable();
        queues.dedup_by_key(|(name, _)| *name);
        let (queue_ids, created) = Db::ensure_queues(&mut tx, &queues, now).await?;
        let mut seen = std::collections::HashSet::new();
        let first: Vec<bool> = (batch.events.iter())
            .map(|event| seen.insert(event.event_id.as_str()))
            .collect();
        let rows: Vec<ContactEventRow> = (batch.events.iter().zip(&first))
            .filter(|(_, first)| **first)
            .map(|(event, _)| ContactEventRow {
                event_id: &event.event_id,
                contact: &event.contact,
                kind: event.kind,
                at_ms: event.at_ms as i64,
                queue_id: event
                    .queue
                    .as_ref()
                    .and_then(|name| queue_ids.get(name).copied()),
                agent: event.agent.as_deref(),
            })
            .collect();
        let new = Db::insert_contact_events(&mut tx, &rows, now).await?;
        let mut touched: Vec<&str> = (rows.iter())
            .filter(|row| new.contains(row.event_id))
            .map(|row| row.contact)
            .collect();
        touched.sort_unstable();
        touched.dedup();
        let steps = Db::contact_steps(&mut tx, &touched).await?;
        let legs: Vec<(&str, Vec<contact::Leg>)> = (touched.iter())
            .map(|&id| {
                (
                    id,
                    steps
                        .get(id)
                        .map_or_else(Vec::new, |steps| contact::legs(steps)),
                )
            })
            .collect();
        let replaced = Db::replace_legs(&mut tx, &legs).await?;
        let mut quarters: Vec<(i64, u64)> = (replaced.into_iter())
            .chain(
                (legs.iter())
                    .flat_map(|(_, legs)| legs.iter().map(|leg| (leg.queue_id, leg.queued_ms))),
            )
            .map(|(queue, at)| (queue, quarter_of(at)))
            .collect();
        quarters.sort_unstable();
        quarters.dedup();
        let short_ms = u64::from(self.live.queue_rules().short_abandon_secs) * 1000;
        let quarters = Db::quarter_counts(&mut tx, &quarters, short_ms).await?;
        anyhow::Context::context(tx.commit().await, "cannot commit contact events")?;
        let mut changes: Vec<Change> = (queues.iter())
            .filter(|(name, _)| created.iter().any(|created| created == name))
            .filter_map(|&(name, channel)| {
                Some(Change::Queue {
                    id: *queue_ids.get(name)?,
                    name: name.to_owned(),
                    channel: channel.to_owned(),
                    target_secs: 20,
                    goal_percent: 80,
                    teams: Vec::new(),
                    active: true,
                })
            })
            .collect();
        changes.extend(legs.iter().map(|(contact, legs)| {
            Change::Waiting {
                contact: (*contact).to_owned(),
                waiting: (legs.last())
                    .filter(|leg| matches!(leg.outcome, LegOutcome::Waiting | LegOutcome::Ringing))
                    .map(|leg| (leg.queue_id, leg.queued_ms)),
            }
        }));
        changes.extend((quarters.into_iter()).map(|(queue, quarter_ms, minutes)| {
            Change::QueueQuarter {
                queue,
                quarter_ms,
                minutes,
            }
        }));
        self.publish(changes, now as u64);
        Ok((batch.events.iter().zip(first))
            .map(|(event, first)| {
                EventResult::of(if first && new.contains(&event.event_id) {
                    Outcome::Applied
                } else {
                    Outcome::Duplicate
                })
            })
            .collect())
    }

    /// Stores the events of several batches in one transaction, then applies and shares them.
    /// The rules are [`EventPlan`]'s; this only carries its questions to the database.
    async fn events(&self, batches: &[&Batch]) -> anyhow::Result<Vec<Vec<EventResult>>> {
        let now = self.clock.now_ms();
        let mut plan = self
            .live
            .with_catalog(|catalog| EventPlan::new(batches, catalog, &self.config));
        let mut tx = self.db.begin().await?;
        let mut changes = Vec::new();
        for group in [Group::Team, Group::Site] {
            let missing = plan.missing_groups(group);
            if !missing.is_empty() {
                let (stored, _) = Db::ensure_groups(&mut tx, group, missing, now as i64).await?;
                changes.extend(plan.groups_stored(group, &stored)?);
            }
        }
        if !plan.missing_reasons().is_empty() {
            let created =
                Db::store_reasons(&mut tx, plan.missing_reasons(), false, now as i64).await?;
            changes.extend(plan.reasons_stored(&created));
        }
        let upserts = plan.agents_to_store()?;
        if !upserts.is_empty() {
            let stored = Db::upsert_agents(&mut tx, &upserts, now as i64).await?;
            for agent in &upserts {
                changes.push(agent.change(id_of(&stored, agent.external_id)?));
            }
            plan.agents_stored(stored);
        }
        let new_events = Db::insert_history(&mut tx, plan.history(now)?).await?;
        let states = plan.states(&new_events, now);
        let written = Db::upsert_states(&mut tx, &states).await?;
        changes.extend(
            states
                .iter()
                .filter(|state| written.contains(&state.agent_id))
                .map(StoredState::change),
        );
        if !plan.heard().is_empty() {
            Db::touch_states(&mut tx, plan.heard(), now as i64).await?;
            changes.extend(
                plan.heard()
                    .iter()
                    .map(|&agent| Change::Seen { agent, at_ms: now }),
            );
        }
        tx.commit().await?;
        self.publish(changes, now);
        Ok(plan.outcomes(&written))
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

    /// Stores a roster sync in one transaction, then applies and shares it. What can be judged
    /// without the database is [`plan`]'s; a sync that breaks a rule changes nothing.
    async fn roster(&self, sync: RosterSync) -> Result<RosterSyncResultJson, IngestError> {
        plan::check_roster(&sync.roster).map_err(IngestError::Invalid)?;
        let now = self.clock.now_ms() as i64;
        let mut sync_write = RosterWrite {
            tx: self.db.begin().await?,
            now,
            changes: Vec::new(),
            result: RosterSyncResultJson::default(),
            gone_groups: Vec::new(),
        };
        let roster = &sync.roster;
        for (group, entries) in [(Group::Site, &roster.sites), (Group::Team, &roster.teams)] {
            self.roster_groups(&mut sync_write, group, entries).await?;
        }
        sync_write.reasons(&roster.reasons).await?;
        self.roster_agents(&mut sync_write, &sync).await?;
        sync_write.queues(&roster.queues).await?;
        sync_write.groups_gone().await?;
        let RosterWrite {
            tx,
            mut changes,
            result,
            ..
        } = sync_write;
        tx.commit().await.map_err(anyhow::Error::from)?;
        plan::order_roster_changes(&mut changes);
        self.publish(changes, now as u64);
        Ok(result)
    }

    /// A sync's sites or teams: created, renamed, deactivated (once their agents are gone).
    async fn roster_groups(
        &self,
        sync: &mut RosterWrite,
        group: Group,
        entries: &[GroupEntryJson],
    ) -> Result<(), IngestError> {
        let lookup = |name: &str| self.live.group_id(group, name);
        let wanted: Vec<&str> = entries
            .iter()
            .filter(|entry| entry.active && entry.rename_to.is_none())
            .map(|entry| entry.name.as_str())
            .collect();
        let (ids, created) = Db::ensure_groups(&mut sync.tx, group, &wanted, sync.now).await?;
        for name in &created {
            count_group(&mut sync.result, group);
            sync.changes.push(group.change(id_of(&ids, name)?, name));
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
                sync.rename(group, id, &entry.name, new_name).await?;
            }
            if !entry.active {
                Db::deactivate_group(&mut sync.tx, group, id).await?;
                sync.gone_groups.push((group, id, entry.name.clone()));
            }
        }
        Ok(())
    }

    /// A sync's agents: stored as listed, deactivated as listed or as missing.
    async fn roster_agents(
        &self,
        sync: &mut RosterWrite,
        roster: &RosterSync,
    ) -> Result<(), IngestError> {
        let names = plan::roster_group_names(&roster.roster);
        let site_ids = Db::active_group_ids(&mut sync.tx, Group::Site, &names.sites).await?;
        let team_ids = Db::active_group_ids(&mut sync.tx, Group::Team, &names.teams).await?;
        let agents = self
            .live
            .with_catalog(|catalog| plan::roster_agents(roster, &team_ids, &site_ids, catalog))
            .map_err(IngestError::Invalid)?;
        let stored = Db::upsert_agents(&mut sync.tx, &agents.upserts, sync.now).await?;
        for agent in &agents.upserts {
            sync.result.agents += 1;
            sync.changes
                .push(agent.change(id_of(&stored, agent.external_id)?));
        }
        Db::deactivate_agents(&mut sync.tx, &agents.gone).await?;
        sync.result.agents_deactivated = agents.gone.len();
        sync.changes
            .extend(agents.gone.iter().map(|&id| Change::AgentGone { id }));
        Ok(())
    }
}

/// A roster sync's transaction and what it has done so far.
struct RosterWrite {
    tx: Tx,
    now: i64,
    changes: Vec<Change>,
    result: RosterSyncResultJson,
    /// Sites and teams deactivated, checked for agents left once agents are stored.
    gone_groups: Vec<(Group, i64, String)>,
}

impl RosterWrite {
    /// Renames a site or team, unless a deactivated one has the name already.
    async fn rename(
        &mut self,
        group: Group,
        id: i64,
        name: &str,
        new_name: &str,
    ) -> Result<(), IngestError> {
        if Db::group_named(&mut self.tx, group, new_name)
            .await?
            .is_some()
        {
            return Err(IngestError::Invalid(format!(
                "cannot rename {name:?}: a deactivated {} named {new_name:?} exists \
                 (list it as active to bring it back)",
                group.table()
            )));
        }
        Db::rename_group(&mut self.tx, group, id, new_name).await?;
        count_group(&mut self.result, group);
        self.changes.push(group.change(id, new_name));
        Ok(())
    }

    /// A sync's reason codes, created or relabelled.
    async fn reasons(&mut self, reasons: &[ReasonEntryJson]) -> Result<(), IngestError> {
        let reasons: Vec<(&str, &str)> = reasons
            .iter()
            .map(|reason| (reason.code.as_str(), reason.label.as_str()))
            .collect();
        let ids = Db::store_reasons(&mut self.tx, &reasons, true, self.now).await?;
        for (code, label) in reasons {
            self.result.reasons += 1;
            self.changes.push(Change::Reason {
                id: id_of(&ids, code)?,
                code: code.to_owned(),
                label: label.to_owned(),
            });
        }
        Ok(())
    }

    /// Creates or updates the queues and replaces their serving teams, which must exist by
    /// now (before this sync or in it).
    async fn queues(&mut self, queues: &[QueueEntryJson]) -> Result<(), IngestError> {
        let names: Vec<&str> = (queues.iter())
            .flat_map(|queue| queue.teams.iter().map(String::as_str))
            .collect();
        let ids = Db::team_ids(&mut self.tx, &names).await?;
        for queue in queues {
            let teams = (queue.teams.iter())
                .map(|team| {
                    ids.get(team).copied().ok_or_else(|| {
                        IngestError::Invalid(format!(
                            "queue {:?} is served by team {team:?}, which is not an active team",
                            queue.name
                        ))
                    })
                })
                .collect::<Result<Vec<i64>, IngestError>>()?;
            let id = Db::store_queue(&mut self.tx, queue, &teams, self.now).await?;
            self.result.queues += 1;
            self.changes.push(Change::Queue {
                id,
                name: queue.name.clone(),
                channel: queue.channel.clone(),
                target_secs: queue.target_secs,
                goal_percent: queue.goal_percent,
                teams,
                active: queue.active,
            });
        }
        Ok(())
    }

    /// Refuses the sync if a site or team it deactivates still has active agents.
    async fn groups_gone(&mut self) -> Result<(), IngestError> {
        for (group, id, name) in std::mem::take(&mut self.gone_groups) {
            let left = Db::active_agents_in(&mut self.tx, group, id).await?;
            if left > 0 {
                return Err(IngestError::Invalid(format!(
                    "cannot deactivate {} {name:?}: {left} active agents are still in it; \
                     move or deactivate them in the same sync",
                    group.table()
                )));
            }
            self.result.groups_deactivated += 1;
            self.changes.push(match group {
                Group::Site => Change::SiteGone { id },
                Group::Team => Change::TeamGone { id },
            });
        }
        Ok(())
    }
}

/// The ingest API.
pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/v1/events", post(post_events))
        .route("/api/v1/contact-events", post(post_contact_events))
        .route("/api/v1/roster", post(post_roster))
        .route("/api/v1/openapi.json", axum::routing::get(openapi))
}

/// The ingest API's OpenAPI description, `server/openapi.json`.
pub const OPENAPI: &str = include_str!("../../openapi.json");

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

/// Reads a batch of events to be judged one by one, with the ingest API's limits.
async fn read_batch(
    state: &AppState,
    caller: &Caller,
    headers: &axum::http::HeaderMap,
    body: Body,
) -> Result<Vec<serde_json::Value>, Error> {
    caller.require(Action::Ingest)?;
    require_json(headers)?;
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
    Ok(batch.events)
}

/// Each event's id (as far as it has one) and the event, checked by `check`, or why not.
fn judge<J: serde::de::DeserializeOwned, E>(
    values: Vec<serde_json::Value>,
    check: impl Fn(J) -> Result<E, String>,
) -> (Vec<String>, Vec<Result<E, String>>) {
    values
        .into_iter()
        .map(|value| {
            let id = (value.get("event_id").and_then(|id| id.as_str()))
                .unwrap_or_default()
                .chars()
                .take(MAX_ID_LEN)
                .collect::<String>();
            let checked = serde_json::from_value::<J>(value)
                .map_err(|err| err.to_string())
                .and_then(&check);
            (id, checked)
        })
        .unzip()
}

/// The answer to a batch: the writer's results for the events it took, in order, and the
/// refusals (counted in `refused`) where checking failed.
fn answer<E>(
    ids: Vec<String>,
    checked: Vec<Result<E, String>>,
    stored: Vec<EventResult>,
    refused: &Counter,
) -> EventBatchResultJson {
    let mut stored = stored.into_iter();
    let results = checked
        .into_iter()
        .zip(ids)
        .map(|(checked, event_id)| {
            let EventResult { outcome, reason } = match checked {
                Ok(_) => stored.next().unwrap_or(EventResult {
                    outcome: Outcome::Refused,
                    reason: None,
                }),
                Err(reason) => {
                    refused.inc();
                    EventResult {
                        outcome: Outcome::Refused,
                        reason: Some(reason),
                    }
                }
            };
            EventResultJson {
                event_id,
                outcome,
                reason,
            }
        })
        .collect();
    EventBatchResultJson::new(results)
}

fn refused_counter(family: &Family<EventLabels, Counter>) -> Counter {
    family
        .get_or_create(&EventLabels {
            source: Source::Api.name(),
            outcome: Outcome::Refused.name(),
        })
        .clone()
}

async fn post_events(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<Json<EventBatchResultJson>, Error> {
    let values = read_batch(&state, &caller, &headers, body).await?;
    let (now, window) = (state.clock.now_ms(), state.config.ingest.window());
    let (ids, checked) = judge(values, |json: AgentEventJson| {
        Event::from_json(json, now, &window)
    });
    let events: Vec<Event> = checked.iter().filter_map(|c| c.clone().ok()).collect();
    let stored = state
        .ingest
        .submit(Batch {
            source: Source::Api,
            events,
            heartbeats: Vec::new(),
        })
        .await?;
    let refused = refused_counter(&state.metrics.events);
    Ok(Json(answer(ids, checked, stored, &refused)))
}

async fn post_contact_events(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<Json<EventBatchResultJson>, Error> {
    let values = read_batch(&state, &caller, &headers, body).await?;
    let (now, window) = (state.clock.now_ms(), state.config.ingest.window());
    let (ids, checked) = judge(values, |json: ContactEventJson| {
        ContactEvent::from_json(json, now, &window)
    });
    let events: Vec<ContactEvent> = checked.iter().filter_map(|c| c.clone().ok()).collect();
    let stored = state
        .ingest
        .contacts(ContactBatch {
            source: Source::Api,
            events,
        })
        .await?;
    let refused = refused_counter(&state.metrics.contact_events);
    Ok(Json(answer(ids, checked, stored, &refused)))
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
    let result = state.ingest.roster(sync.into()).await?;
    // A binding that names a team or site still missing (or now removed) says so again.
    if state.config.auth.mode == crate::config::AuthMode::Oidc {
        crate::api::auth_check::log(&crate::api::auth_check::bindings(
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
pub async fn prune_history(
    db: Db,
    days: u64,
    clock: Clock,
    stop: tokio_util::sync::CancellationToken,
) {
    if days == 0 {
        return;
    }
    let mut interval = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = interval.tick() => {
                let before = clock.now_ms().saturating_sub(days * 86_400_000) as i64;
                match db.prune_history(before).await {
                    Ok(0) => {}
                    Ok(rows) => tracing::info!(rows, days, "pruned state history"),
                    Err(err) => tracing::warn!(error = format!("{err:#}"), "cannot prune history"),
                }
            }
        }
    }
}
