//! The live floor: the server's one [`Floor`], the changes waiting for the next tick, and the
//! broadcast of ticks to viewers.
//!
//! Ingest records changes in [`Pending`]; the ticker commits them once per tick, which issues the
//! next sequence number and broadcasts a [`TickFrame`]. Connection tasks subscribe to the
//! broadcast *before* taking their snapshot, under the same lock the ticker commits under, so a
//! viewer never misses a sequence number between its snapshot and its first delta.
//!
//! The broadcast channel is each viewer's bounded outbound queue: a viewer that falls more than
//! its capacity behind sees `Lagged` and is resynced. Memory therefore never grows with a slow
//! viewer.
//!
//! This module does no IO; encoding happens here so that viewers with the same subscription share
//! one encoded frame.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use monti_protocol::codec::{MAX_AGENT_ID, encode_server};
use monti_protocol::floor::{Floor, Unnamed};
use monti_protocol::message::{Detail, ErrorCode, Health, ServerMsg, Subscription};
use monti_protocol::model::{
    AgentId, AgentInfo, AgentStatus, ReasonCode, ReasonId, Site, SiteId, StateKind, Team, TeamId,
};
use monti_protocol::names::shown_name;
use monti_protocol::queue::{Channel, QueueId, QueueInfo, QueueRules};
use monti_protocol::scope::Scope;
use monti_protocol::tick::{Pending, RosterUpdate, Summaries, Tick};
use tokio::sync::{broadcast, watch};

use crate::config::QueuesConfig;
use crate::core::change::{Change, Group};
use crate::core::clock::Zone;
use crate::core::plan::{self, KnownAgent};
use crate::core::queues::{MINUTE_MS, QueueBoard};
use crate::metrics::Metrics;
use crate::store::db::StoredFloor;

/// One committed tick, shared by every viewer, with its encoded deltas cached per subscription.
pub struct TickFrame {
    /// What changed.
    pub tick: Tick,
    /// When the oldest change in the tick reached the server.
    pub oldest_change: Instant,
    /// Encoded deltas by view; viewers with equal views share one encoding.
    encoded: Mutex<HashMap<ViewKey, Bytes>>,
}

impl TickFrame {
    /// The encoded delta for a view, encoding it on first use.
    pub fn delta_frame(&self, key: &ViewKey) -> Bytes {
        // Short critical section without await: a std Mutex is right here.
        if let Some(frame) = lock(&self.encoded).get(key) {
            return frame.clone();
        }
        let delta = self.tick.delta_for(&key.sub, &key.scope);
        let frame = Bytes::from(encode(&ServerMsg::Delta(delta)));
        lock(&self.encoded).insert(key.clone(), frame.clone());
        frame
    }
}

/// A subscription as one viewer may see it: what it asked for (with `known_roster` cleared,
/// since deltas do not depend on it) and its scope. Equal keys share encoded frames.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ViewKey {
    /// The subscription.
    pub sub: Subscription,
    /// What the viewer may see.
    pub scope: Scope,
}

/// Encoded snapshots of one sequence number by view, so that viewers subscribing at once to the
/// same view share one encoding; bounded, since on a quiet floor the sequence number stays and
/// every distinct subscription would otherwise stay cached. Past [`SnapshotCache::MAX_BYTES`]
/// or [`SnapshotCache::MAX_ENTRIES`] the least recently used are dropped (a viewer still
/// sending one keeps its copy alive until it is sent).
#[derive(Default)]
pub struct SnapshotCache {
    seq: u64,
    entries: HashMap<ViewKey, (Arc<[Bytes]>, u64)>,
    bytes: usize,
    uses: u64,
}

impl SnapshotCache {
    /// The most bytes of encoded snapshots kept.
    pub const MAX_BYTES: usize = 64 * 1024 * 1024;
    /// The most views kept.
    pub const MAX_ENTRIES: usize = 512;

    /// Forgets everything when the floor moved on to `seq`.
    pub fn at(&mut self, seq: u64) {
        if self.seq != seq {
            self.entries.clear();
            self.bytes = 0;
            self.seq = seq;
        }
    }

    /// The encoded snapshot of a view, if kept.
    pub fn get(&mut self, key: &ViewKey) -> Option<Arc<[Bytes]>> {
        self.uses += 1;
        let (chunks, used) = self.entries.get_mut(key)?;
        *used = self.uses;
        Some(chunks.clone())
    }

    /// Keeps a view's encoded snapshot, dropping the least recently used beyond the bounds.
    pub fn insert(&mut self, key: ViewKey, chunks: Arc<[Bytes]>) {
        let size: usize = chunks.iter().map(Bytes::len).sum();
        if size > Self::MAX_BYTES {
            return;
        }
        while !self.entries.is_empty()
            && (self.bytes + size > Self::MAX_BYTES || self.entries.len() >= Self::MAX_ENTRIES)
        {
            let Some(oldest) = (self.entries.iter())
                .min_by_key(|(_, (_, used))| *used)
                .map(|(key, _)| key.clone())
            else {
                break;
            };
            if let Some((dropped, _)) = self.entries.remove(&oldest) {
                self.bytes -= dropped.iter().map(Bytes::len).sum::<usize>();
            }
        }
        self.uses += 1;
        self.bytes += size;
        if let Some((old, _)) = self.entries.insert(key, (chunks, self.uses)) {
            self.bytes -= old.iter().map(Bytes::len).sum::<usize>();
        }
    }

    /// Bytes kept now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Views kept now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Encodes a server message. Messages MONTI builds always encode; should one ever not, the
/// error is logged and an empty frame sent, which the client rejects and resyncs from.
pub fn encode(msg: &ServerMsg) -> Vec<u8> {
    encode_server(msg).unwrap_or_else(|err| {
        tracing::error!(%err, "cannot encode a server message");
        Vec::new()
    })
}

/// The server's floor and everything around it that the stream needs.
pub struct LiveFloor {
    /// See `ServerHello::instance`.
    pub instance: u64,
    inner: Mutex<Inner>,
    ticks: broadcast::Sender<Arc<TickFrame>>,
    health: watch::Sender<Health>,
    metrics: Arc<Metrics>,
    /// Viewers following summaries now (see [`SummaryViewer`]).
    summary_viewers: Arc<AtomicUsize>,
}

struct Inner {
    floor: Floor,
    pending: Pending,
    oldest_pending: Option<Instant>,
    catalog: Catalog,
    /// Encoded snapshots of the current sequence number by (normalised) subscription, so that a
    /// crowd of viewers reconnecting at once costs one snapshot per distinct view.
    snapshots: SnapshotCache,
    /// Where the queues' figures come from.
    board: QueueBoard,
    /// The time zone the queues' days are counted in.
    zone: Zone,
    /// The minute the day's start was last worked out in, and that midnight.
    midnight: (u64, u64),
}

/// Database ids and names to the floor's dense ids, and each agent's current state.
///
/// Dense ids are handed out in the order things are first seen and never reused, so a
/// deactivated agent that comes back gets its old id.
#[derive(Default)]
struct Catalog {
    sites: Index<SiteId>,
    teams: Index<TeamId>,
    /// Reason codes by code.
    reasons: Index<ReasonId>,
    agents: HashMap<i64, AgentId>,
    agent_ids: HashMap<String, i64>,
    /// Queues by database id (dense ids are never reused).
    queues: HashMap<i64, QueueId>,
    /// By dense id.
    entries: Vec<AgentEntry>,
}

/// Sites, teams or reason codes: database ids to the floor's dense ids, and the current name
/// of each to its database id.
struct Index<D> {
    dense: HashMap<i64, D>,
    by_name: HashMap<String, i64>,
    names: HashMap<i64, String>,
}

impl<D> Default for Index<D> {
    fn default() -> Self {
        Index {
            dense: HashMap::new(),
            by_name: HashMap::new(),
            names: HashMap::new(),
        }
    }
}

impl<D: Copy> Index<D> {
    /// The floor's id of a database id.
    fn dense(&self, id: i64) -> Option<D> {
        self.dense.get(&id).copied()
    }

    /// The database id of a name in use.
    fn id(&self, name: &str) -> Option<i64> {
        self.by_name.get(name).copied()
    }

    /// Records a database id under its (new) name; a new id gets the next dense id.
    fn upsert(&mut self, id: i64, name: &str, what: &str, make: fn(u16) -> D) -> anyhow::Result<D> {
        let next = make(dense_u16(self.dense.len(), what)?);
        let dense = *self.dense.entry(id).or_insert(next);
        self.forget_name(id);
        self.names.insert(id, name.to_owned());
        self.by_name.insert(name.to_owned(), id);
        Ok(dense)
    }

    /// Frees the name of a deactivated id; its dense id stays, never reused.
    fn forget_name(&mut self, id: i64) {
        if let Some(old) = self.names.remove(&id)
            && self.by_name.get(&old) == Some(&id)
        {
            self.by_name.remove(&old);
        }
    }

    /// The database ids whose floor ids are among `wanted`, sorted.
    fn ids_of(&self, wanted: &[D]) -> Vec<i64>
    where
        D: PartialEq,
    {
        let mut ids: Vec<i64> = (self.dense.iter())
            .filter(|(_, dense)| wanted.contains(dense))
            .map(|(&id, _)| id)
            .collect();
        ids.sort_unstable();
        ids
    }
}

impl plan::Catalog for Catalog {
    fn agent(&self, external_id: &str) -> Option<KnownAgent> {
        let db_id = *self.agent_ids.get(external_id)?;
        let dense = *self.agents.get(&db_id)?;
        let entry = &self.entries[dense.0 as usize];
        Some(KnownAgent {
            id: entry.db_id,
            name: entry.name.clone(),
            team: entry.team,
            site: entry.site,
            active: entry.active,
        })
    }

    fn group_id(&self, group: Group, name: &str) -> Option<i64> {
        match group {
            Group::Team => self.teams.id(name),
            Group::Site => self.sites.id(name),
        }
    }

    fn reason_id(&self, code: &str) -> Option<i64> {
        self.reasons.id(code)
    }

    fn active_agents(&self) -> Vec<(&str, i64)> {
        self.entries
            .iter()
            .filter(|entry| entry.active)
            .map(|entry| (entry.external_id.as_str(), entry.db_id))
            .collect()
    }
}

struct AgentEntry {
    db_id: i64,
    external_id: String,
    name: String,
    team: i64,
    site: i64,
    active: bool,
    current: Current,
}

/// What the source last said about an agent; the floor shows it unless `stale`.
#[derive(Clone, Copy, Debug)]
struct Current {
    status: AgentStatus,
    since_ms: u64,
    seen_ms: u64,
    watched: bool,
    stale: bool,
}

/// What a viewer gets when it subscribes.
pub struct Subscribed {
    /// The view, for looking up its deltas.
    pub key: ViewKey,
    /// The encoded snapshot chunks.
    pub chunks: Arc<[Bytes]>,
    /// The sequence number the snapshot shows; deltas up to it are to be skipped.
    pub seq: u64,
    /// The ticks after the snapshot.
    pub ticks: broadcast::Receiver<Arc<TickFrame>>,
    /// For a summary subscription: held while it is followed, so that ticks carry summaries.
    pub summaries: Option<SummaryViewer>,
}

/// A viewer following summaries, counted while it lives: the live floor computes the cell stats
/// summary deltas need only while there is one (see `Pending::commit_for`).
#[derive(Debug)]
pub struct SummaryViewer(Arc<AtomicUsize>);

impl SummaryViewer {
    /// Counts one more; called under the floor's lock, before the snapshot is taken, so that
    /// every tick after the snapshot carries summaries.
    fn new(count: &Arc<AtomicUsize>) -> SummaryViewer {
        count.fetch_add(1, Ordering::SeqCst);
        SummaryViewer(count.clone())
    }
}

impl Drop for SummaryViewer {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The right to change the floor: [`LiveFloor::new`] hands out the only one, and the server gives
/// it to the ingest writer, so every change to the floor (committed events and roster syncs,
/// other servers' changes, reloads, the stale sweep) goes through that one task, in order. Its
/// field is private: no other code can make one.
pub struct Writes(());

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind, still consistent enough to serve
    // (every section below is a handful of assignments); keep serving rather than cascade.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl LiveFloor {
    /// A floor holding the stored roster and states, committed as sequence number 1. Agents
    /// without a stored state are offline.
    pub fn new(
        stored: &StoredFloor,
        queue_ticks: usize,
        queues: &QueuesConfig,
        metrics: Arc<Metrics>,
        now_ms: u64,
    ) -> anyhow::Result<(LiveFloor, Writes)> {
        let mut inner = Inner {
            floor: Floor::new(),
            pending: Pending::default(),
            oldest_pending: None,
            catalog: Catalog::default(),
            snapshots: SnapshotCache::default(),
            board: QueueBoard::new(queues.recent_minutes),
            zone: queues.zone(),
            midnight: (u64::MAX, 0),
        };
        inner.floor.set_queue_rules(queues.rules());
        inner.apply(&stored.changes(), now_ms);
        inner.board.replace_waiting(&stored.waiting);
        inner.queue_figures(now_ms);
        inner.pending.commit(&mut inner.floor, now_ms);
        metrics.floor_agents.set(inner.floor.n_agents() as i64);
        let (ticks, _) = broadcast::channel(queue_ticks.max(1));
        let (health, _) = watch::channel(Health {
            degraded: false,
            reason: String::new(),
            since_ms: now_ms,
        });
        let live = LiveFloor {
            instance: now_ms ^ u64::from(std::process::id()).rotate_left(40),
            inner: Mutex::new(inner),
            ticks,
            health,
            metrics,
            summary_viewers: Arc::default(),
        };
        Ok((live, Writes(())))
    }

    /// An agent by its external id, active or not.
    pub fn agent(&self, external_id: &str) -> Option<KnownAgent> {
        plan::Catalog::agent(&lock(&self.inner).catalog, external_id)
    }

    /// The database ids of the agents called `name` in the team `team` at the site `site` that
    /// `scope` covers: how an app names an agent, since the floor's dense ids are each server's
    /// own and an app's REST request may reach another server than its stream.
    pub fn agents_named(&self, name: &str, team: &str, site: &str, scope: &Scope) -> Vec<i64> {
        let inner = lock(&self.inner);
        let floor = &inner.floor;
        (floor.agents())
            .filter(|record| {
                let info = &record.info;
                info.name == name
                    && scope.covers(info.team, info.site)
                    && floor
                        .team(info.team)
                        .is_some_and(|found| found.name == team)
                    && floor
                        .site(info.site)
                        .is_some_and(|found| found.name == site)
            })
            .filter_map(|record| inner.catalog.entries.get(record.info.id.0 as usize))
            .map(|entry| entry.db_id)
            .collect()
    }

    /// Runs `f` against the catalog under one lock (a plan looks up many names at once).
    pub fn with_catalog<R>(&self, f: impl FnOnce(&dyn plan::Catalog) -> R) -> R {
        f(&lock(&self.inner).catalog)
    }

    /// The database ids of a team, a site and a reason code by name, where known.
    pub fn team_id(&self, name: &str) -> Option<i64> {
        lock(&self.inner).catalog.teams.id(name)
    }

    /// See [`LiveFloor::team_id`].
    pub fn site_id(&self, name: &str) -> Option<i64> {
        lock(&self.inner).catalog.sites.id(name)
    }

    /// [`LiveFloor::team_id`] or [`LiveFloor::site_id`].
    pub fn group_id(&self, group: Group, name: &str) -> Option<i64> {
        match group {
            Group::Team => self.team_id(name),
            Group::Site => self.site_id(name),
        }
    }

    /// The dense team and site of a database team and site (for checking a caller's scope).
    pub fn dense_team_site(&self, team: i64, site: i64) -> Option<(TeamId, SiteId)> {
        let inner = lock(&self.inner);
        Some((
            inner.catalog.teams.dense(team)?,
            inner.catalog.sites.dense(site)?,
        ))
    }

    /// The floor's id of a team, by database id.
    pub fn dense_team(&self, team: i64) -> Option<TeamId> {
        lock(&self.inner).catalog.teams.dense(team)
    }

    /// A scope in database ids, for reading stored rows with the same cut as the floor: `None`
    /// for everything, otherwise one (teams, sites) pair per grant (an empty list: any).
    pub fn db_scope(&self, scope: &Scope) -> Option<Vec<crate::store::db::DbGrant>> {
        let Scope::Only(grants) = scope else {
            return None;
        };
        let inner = lock(&self.inner);
        let catalog = &inner.catalog;
        Some(
            grants
                .iter()
                .filter_map(|grant| {
                    let teams = catalog.teams.ids_of(&grant.teams);
                    let sites = catalog.sites.ids_of(&grant.sites);
                    // A grant whose names no longer resolve covers nothing (never everything).
                    let lost = (!grant.teams.is_empty() && teams.is_empty())
                        || (!grant.sites.is_empty() && sites.is_empty());
                    (!lost).then_some(crate::store::db::DbGrant { teams, sites })
                })
                .collect(),
        )
    }

    /// How the queue figures are counted.
    pub fn queue_rules(&self) -> QueueRules {
        self.read(Floor::queue_rules)
    }

    /// The time zone the queues' days are counted in.
    pub fn zone(&self) -> Zone {
        lock(&self.inner).zone
    }

    /// Whether the floor knows the queue (by database id).
    pub fn knows_queue(&self, queue: i64) -> bool {
        lock(&self.inner).catalog.queues.contains_key(&queue)
    }

    /// How many active agents a team or site has, by database id.
    pub fn active_in(&self, team: Option<i64>, site: Option<i64>) -> usize {
        let inner = lock(&self.inner);
        inner
            .catalog
            .entries
            .iter()
            .filter(|entry| {
                entry.active
                    && team.is_none_or(|team| entry.team == team)
                    && site.is_none_or(|site| entry.site == site)
            })
            .count()
    }

    /// Records committed changes for the next tick.
    pub fn apply(&self, _: &Writes, changes: &[Change], now_ms: u64) {
        if changes.is_empty() {
            return;
        }
        let mut inner = lock(&self.inner);
        let states = inner.apply(changes, now_ms);
        self.metrics.state_changes.inc_by(states);
        if !inner.pending.is_empty() && inner.oldest_pending.is_none() {
            inner.oldest_pending = Some(Instant::now());
        }
        self.metrics.floor_pending.set(inner.pending.len() as i64);
    }

    /// Brings the floor in line with the database after changes may have been missed: applies
    /// everything stored and drops what is deactivated there. Unchanged agents cost nothing;
    /// a state older than the floor's is ignored, and only what the database says is inactive
    /// is dropped (not what it merely lacked when read), so a reload racing a newer change
    /// never undoes it.
    pub fn reload(&self, writes: &Writes, stored: &StoredFloor, now_ms: u64) {
        let mut changes = stored.changes();
        let inactive = &stored.inactive;
        changes.extend(inactive.agents.iter().map(|&id| Change::AgentGone { id }));
        changes.extend(inactive.teams.iter().map(|&id| Change::TeamGone { id }));
        changes.extend(inactive.sites.iter().map(|&id| Change::SiteGone { id }));
        self.apply(writes, &changes, now_ms);
        lock(&self.inner).board.replace_waiting(&stored.waiting);
    }

    /// Marks agents whose source sends heartbeats and has said nothing for `after_ms` as stale.
    /// Returns how many agents are stale now.
    pub fn sweep_stale(&self, _: &Writes, now_ms: u64, after_ms: u64) -> usize {
        let mut inner = lock(&self.inner);
        let inner = &mut *inner;
        let mut stale = 0;
        for (dense, entry) in inner.catalog.entries.iter_mut().enumerate() {
            let current = &mut entry.current;
            if !entry.active || !current.watched || current.status == AgentStatus::Offline {
                continue;
            }
            if !current.stale && now_ms.saturating_sub(current.seen_ms) > after_ms {
                current.stale = true;
                inner.pending.set_status(
                    AgentId(dense as u32),
                    AgentStatus::Stale,
                    current.seen_ms,
                );
                if inner.oldest_pending.is_none() {
                    inner.oldest_pending = Some(Instant::now());
                }
            }
            stale += usize::from(current.stale);
        }
        self.metrics.agents_stale.set(stale as i64);
        self.metrics.floor_pending.set(inner.pending.len() as i64);
        stale
    }

    /// Whether the floor is complete, and the receiver viewers watch it on.
    pub fn health(&self) -> watch::Receiver<Health> {
        self.health.subscribe()
    }

    /// Marks the floor as possibly out of date (or not); viewers are told when it changes.
    pub fn set_degraded(&self, reason: Option<String>, now_ms: u64) {
        self.health.send_if_modified(|health| {
            let degraded = reason.is_some();
            if health.degraded == degraded && reason.as_deref().is_none_or(|r| r == health.reason) {
                return false;
            }
            *health = Health {
                degraded,
                reason: reason.unwrap_or_default(),
                since_ms: now_ms,
            };
            true
        });
        self.metrics
            .degraded
            .set(i64::from(self.health.borrow().degraded));
    }

    /// Commits the changes since the last tick as the next sequence number and broadcasts them.
    /// Does nothing when nothing changed.
    pub fn tick(&self, now_ms: u64) -> Option<u64> {
        let mut inner = lock(&self.inner);
        inner.queue_figures(now_ms);
        if inner.pending.is_empty() {
            return None;
        }
        let inner = &mut *inner;
        let summary_viewers = self.summary_viewers.load(Ordering::SeqCst);
        self.metrics.summary_viewers.set(summary_viewers as i64);
        let summaries = match summary_viewers {
            0 => Summaries::NotWanted,
            _ => Summaries::Wanted,
        };
        let tick = (inner.pending).commit_for(&mut inner.floor, now_ms, summaries);
        let seq = tick.seq;
        let frame = Arc::new(TickFrame {
            tick,
            oldest_change: inner.oldest_pending.take().unwrap_or_else(Instant::now),
            encoded: Mutex::new(HashMap::new()),
        });
        // Sent under the lock: a viewer subscribing concurrently either sees this tick in its
        // snapshot or receives it from the channel, never neither. No receivers is fine.
        let _ = self.ticks.send(frame);
        self.metrics.ticks.inc();
        self.metrics.floor_agents.set(inner.floor.n_agents() as i64);
        self.metrics.floor_pending.set(0);
        Some(seq)
    }

    /// Checks a subscription against the floor and the viewer's scope and, if it is valid,
    /// returns its snapshot and the ticks that follow it.
    pub fn subscribe(
        &self,
        sub: &Subscription,
        scope: &Scope,
        chunk_agents: usize,
    ) -> Result<Subscribed, (ErrorCode, String)> {
        let mut inner = lock(&self.inner);
        let inner = &mut *inner;
        // A team or site outside the scope is refused exactly like one that does not exist.
        inner.floor.check_names(sub, scope).map_err(|unnamed| {
            let code = match unnamed {
                Unnamed::Team(_) => ErrorCode::UnknownTeam,
                Unnamed::Site(_) => ErrorCode::UnknownSite,
            };
            (code, unnamed.to_string())
        })?;
        let summaries =
            (sub.detail == Detail::Summary).then(|| SummaryViewer::new(&self.summary_viewers));
        let seq = inner.floor.seq();
        inner.snapshots.at(seq);
        // Snapshots differ by whether the roster is included; deltas do not.
        let mut snapshot_key = ViewKey {
            sub: sub.clone(),
            scope: scope.clone(),
        };
        if snapshot_key.sub.known_roster != Some(inner.floor.roster_version()) {
            snapshot_key.sub.known_roster = None;
        }
        let chunks = match inner.snapshots.get(&snapshot_key) {
            Some(chunks) => chunks,
            None => {
                let chunks: Arc<[Bytes]> = inner
                    .floor
                    .snapshot(&snapshot_key.sub, scope, chunk_agents)
                    .into_iter()
                    .map(|chunk| Bytes::from(encode(&ServerMsg::Snapshot(chunk))))
                    .collect();
                inner.snapshots.insert(snapshot_key, chunks.clone());
                chunks
            }
        };
        Ok(Subscribed {
            key: ViewKey {
                sub: Subscription {
                    known_roster: None,
                    ..sub.clone()
                },
                scope: scope.clone(),
            },
            chunks,
            seq,
            ticks: self.ticks.subscribe(),
            summaries,
        })
    }

    /// Runs `read` on the floor under the lock; keep it short (REST reads, tests).
    pub fn read<T>(&self, read: impl FnOnce(&Floor) -> T) -> T {
        read(&lock(&self.inner).floor)
    }

    /// The current sequence number.
    pub fn seq(&self) -> u64 {
        self.read(Floor::seq)
    }
}

impl Inner {
    /// Records the new figures of the queues whose figures changed for the next commit.
    fn queue_figures(&mut self, now_ms: u64) {
        let minute = now_ms / MINUTE_MS;
        if self.midnight.0 != minute {
            self.midnight = (minute, self.zone.midnight(now_ms));
        }
        for (queue, now) in self.board.due(now_ms, self.midnight.1) {
            if let Some(&dense) = self.catalog.queues.get(&queue) {
                self.pending.set_queue(dense, now);
                if self.oldest_pending.is_none() {
                    self.oldest_pending = Some(Instant::now());
                }
            }
        }
    }

    /// A queue as stored: on the floor while active, with the serving teams the floor knows.
    fn apply_queue(&mut self, change: &Change) -> anyhow::Result<()> {
        let Change::Queue {
            id,
            name,
            channel,
            target_secs,
            goal_percent,
            teams,
            active,
        } = change
        else {
            return Ok(());
        };
        let next = QueueId(dense_u16(self.catalog.queues.len(), "queues")?);
        let dense = *self.catalog.queues.entry(*id).or_insert(next);
        if self.floor.queue(dense).is_none() {
            // Its contacts may have reached the board first (another server's commit).
            self.board.touch(*id);
        }
        if !active {
            if self.floor.queue(dense).is_some() {
                self.pending.roster(RosterUpdate::RemoveQueue(dense));
            }
            return Ok(());
        }
        let mut teams: Vec<TeamId> = (teams.iter())
            .filter_map(|&team| self.catalog.teams.dense(team))
            .collect();
        teams.sort_unstable();
        let info = QueueInfo {
            id: dense,
            name: shown_name(name),
            channel: Channel::from_name(channel).unwrap_or(Channel::Voice),
            target_secs: u32::try_from(*target_secs).unwrap_or(u32::MAX),
            goal_percent: (*goal_percent).min(100),
            teams,
        };
        if self
            .floor
            .queue(dense)
            .is_none_or(|queue| queue.info != info)
        {
            self.pending.roster(RosterUpdate::Queue(info));
        }
        Ok(())
    }

    /// Turns changes into pending floor updates; returns how many agents' states changed. See
    /// [`LiveFloor::apply`].
    /// Changes that refer to something the floor lacks are skipped and logged: a consistent
    /// database cannot produce them, and the next reload repairs whatever caused one.
    fn apply(&mut self, changes: &[Change], now_ms: u64) -> u64 {
        let mut states = 0;
        for change in changes {
            match self.apply_one(change, now_ms) {
                Ok(changed) => states += u64::from(changed),
                Err(err) => tracing::warn!(%err, "a change does not fit the floor"),
            }
        }
        states
    }

    /// Returns whether the change set a new state (not a roster change, not staleness).
    fn apply_one(&mut self, change: &Change, now_ms: u64) -> anyhow::Result<bool> {
        match change {
            Change::Site { id, name } => {
                let dense = self.catalog.sites.upsert(*id, name, "sites", SiteId)?;
                let name = shown_name(name);
                if self.floor.site(dense).is_none_or(|site| site.name != name) {
                    self.pending
                        .roster(RosterUpdate::Site(Site { id: dense, name }));
                }
            }
            Change::Team { id, name } => {
                let dense = self.catalog.teams.upsert(*id, name, "teams", TeamId)?;
                let name = shown_name(name);
                if self.floor.team(dense).is_none_or(|team| team.name != name) {
                    self.pending
                        .roster(RosterUpdate::Team(Team { id: dense, name }));
                }
            }
            &Change::SiteGone { id } => {
                self.catalog.sites.forget_name(id);
                if let Some(dense) = self.catalog.sites.dense(id)
                    && self.floor.site(dense).is_some()
                {
                    self.pending.roster(RosterUpdate::RemoveSite(dense));
                }
            }
            &Change::TeamGone { id } => {
                self.catalog.teams.forget_name(id);
                if let Some(dense) = self.catalog.teams.dense(id)
                    && self.floor.team(dense).is_some()
                {
                    self.pending.roster(RosterUpdate::RemoveTeam(dense));
                }
            }
            Change::Reason { id, code, label } => self.apply_reason(*id, code, label)?,
            Change::Agent {
                id,
                external_id,
                name,
                team,
                site,
            } => self.apply_agent(*id, external_id, name, (*team, *site), now_ms)?,
            &Change::AgentGone { id } => {
                if let Some(&dense) = self.catalog.agents.get(&id) {
                    let entry = &mut self.catalog.entries[dense.0 as usize];
                    if entry.active {
                        entry.active = false;
                        self.pending.roster(RosterUpdate::RemoveAgent(dense));
                    }
                }
            }
            &Change::State {
                agent,
                state,
                reason,
                since_ms,
                seen_ms,
                watched,
            } => {
                anyhow::ensure!(state != StateKind::Stale, "a stored state cannot be stale");
                let reason = reason.and_then(|reason| self.catalog.reasons.dense(reason));
                let report = Current {
                    status: AgentStatus::of(state, reason),
                    since_ms,
                    seen_ms,
                    watched,
                    stale: false,
                };
                return self.apply_state(agent, report);
            }
            &Change::Seen { agent, at_ms } => self.apply_seen(agent, at_ms)?,
            Change::Queue { .. } => self.apply_queue(change)?,
            Change::Waiting { contact, waiting } => self.board.set_waiting(contact, *waiting),
            Change::QueueQuarter {
                queue,
                quarter_ms,
                minutes,
            } => self.board.set_quarter(*queue, *quarter_ms, minutes, now_ms),
        }
        Ok(false)
    }

    fn apply_reason(&mut self, id: i64, code: &str, label: &str) -> anyhow::Result<()> {
        let dense = self
            .catalog
            .reasons
            .upsert(id, code, "reason codes", ReasonId)?;
        let (code, label) = (shown_name(code), shown_name(label));
        if self
            .floor
            .reason(dense)
            .is_none_or(|reason| reason.code != code || reason.label != label)
        {
            self.pending.roster(RosterUpdate::Reason(ReasonCode {
                id: dense,
                code,
                label,
            }));
        }
        Ok(())
    }

    /// An agent active with this name, team and site (by database ids); a new one is shown
    /// offline since now until a state says otherwise.
    fn apply_agent(
        &mut self,
        id: i64,
        external_id: &str,
        name: &str,
        (team, site): (i64, i64),
        now_ms: u64,
    ) -> anyhow::Result<()> {
        let catalog = &mut self.catalog;
        let (Some(team_dense), Some(site_dense)) =
            (catalog.teams.dense(team), catalog.sites.dense(site))
        else {
            anyhow::bail!("agent {external_id} names a team or site the floor lacks");
        };
        let dense = match catalog.agents.get(&id) {
            Some(&dense) => dense,
            None => {
                let dense = AgentId(catalog.entries.len() as u32);
                anyhow::ensure!(dense.0 <= MAX_AGENT_ID, "too many agents");
                catalog.agents.insert(id, dense);
                catalog.entries.push(AgentEntry {
                    db_id: id,
                    external_id: external_id.to_owned(),
                    name: name.to_owned(),
                    team,
                    site,
                    active: false,
                    // Nothing known yet: any state wins (0); shown offline since now.
                    current: Current {
                        status: AgentStatus::Offline,
                        since_ms: 0,
                        seen_ms: now_ms,
                        watched: false,
                        stale: false,
                    },
                });
                dense
            }
        };
        let entry = &mut catalog.entries[dense.0 as usize];
        if entry.external_id != external_id {
            catalog.agent_ids.remove(&entry.external_id);
            entry.external_id = external_id.to_owned();
        }
        catalog.agent_ids.insert(external_id.to_owned(), id);
        entry.team = team;
        entry.site = site;
        name.clone_into(&mut entry.name);
        let info = AgentInfo {
            id: dense,
            name: shown_name(name),
            team: team_dense,
            site: site_dense,
        };
        if self
            .floor
            .agent(dense)
            .is_none_or(|record| record.info != info)
        {
            self.pending.roster(RosterUpdate::Agent(info));
        }
        if !entry.active {
            entry.active = true;
            let current = entry.current;
            self.pending
                .set_status(dense, shown(current), shown_since(current));
        }
        Ok(())
    }

    /// A source's report of an agent's state; whether it became the current one.
    fn apply_state(&mut self, agent: i64, report: Current) -> anyhow::Result<bool> {
        let Some(&dense) = self.catalog.agents.get(&agent) else {
            anyhow::bail!("a state for agent {agent}, which the floor lacks");
        };
        let entry = &mut self.catalog.entries[dense.0 as usize];
        let current = &mut entry.current;
        // Only fresh news ends staleness; a reload repeating the stored state does not.
        let was_stale = current.stale && report.seen_ms > current.seen_ms;
        if was_stale {
            current.stale = false;
        }
        current.seen_ms = current.seen_ms.max(report.seen_ms);
        current.watched = report.watched;
        // Newer wins; at the same moment, the later report wins.
        let newer = report.since_ms > current.since_ms
            || (report.since_ms == current.since_ms && report.status != current.status);
        if newer {
            current.status = report.status;
            current.since_ms = report.since_ms;
        }
        if (newer || was_stale) && entry.active {
            self.pending
                .set_status(dense, shown(*current), shown_since(*current));
        }
        Ok(newer)
    }

    /// A heartbeat: the agent's source is alive, which ends staleness.
    fn apply_seen(&mut self, agent: i64, at_ms: u64) -> anyhow::Result<()> {
        let Some(&dense) = self.catalog.agents.get(&agent) else {
            anyhow::bail!("a heartbeat for agent {agent}, which the floor lacks");
        };
        let entry = &mut self.catalog.entries[dense.0 as usize];
        let current = &mut entry.current;
        current.seen_ms = current.seen_ms.max(at_ms);
        current.watched = true;
        if current.stale {
            current.stale = false;
            if entry.active {
                self.pending
                    .set_status(dense, current.status, current.since_ms);
            }
        }
        Ok(())
    }
}

/// What the floor shows for an agent, and since when.
fn shown(current: Current) -> AgentStatus {
    if current.stale {
        AgentStatus::Stale
    } else {
        current.status
    }
}

fn shown_since(current: Current) -> u64 {
    if current.stale || current.since_ms == 0 {
        current.seen_ms
    } else {
        current.since_ms
    }
}

fn dense_u16(len: usize, what: &str) -> anyhow::Result<u16> {
    u16::try_from(len).map_err(|_| anyhow::anyhow!("more than 65535 {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(n: u8) -> ViewKey {
        ViewKey {
            sub: Subscription {
                states: monti_protocol::model::StateSet(n),
                ..Subscription::default()
            },
            scope: Scope::Everything,
        }
    }

    #[test]
    fn the_snapshot_cache_keeps_within_its_bounds_and_drops_the_least_recently_used() {
        let mut cache = SnapshotCache::default();
        cache.at(7);
        let chunk =
            |kib: usize| -> Arc<[Bytes]> { Arc::from(vec![Bytes::from(vec![0u8; kib * 1024])]) };
        // Far more distinct views than it keeps, on a quiet floor (the same seq throughout).
        for n in 0..=255u8 {
            cache.insert(view(n), chunk(600));
            assert!(cache.bytes() <= SnapshotCache::MAX_BYTES);
            assert!(cache.len() <= SnapshotCache::MAX_ENTRIES);
        }
        let kept = cache.len();
        assert!((100..256).contains(&kept), "{kept}");
        // The newest are kept; the oldest kept one, used again, survives the next evictions
        // while the one inserted after it goes.
        assert!(cache.get(&view(0)).is_none());
        let oldest = (256 - kept) as u8;
        assert!(cache.get(&view(oldest)).is_some());
        for n in 0..20u8 {
            cache.insert(view(n), chunk(600));
        }
        assert!(cache.get(&view(oldest)).is_some());
        assert!(cache.get(&view(oldest + 1)).is_none());
        // A new sequence number forgets everything.
        cache.at(8);
        assert!(cache.is_empty());
        assert_eq!(cache.bytes(), 0);
        // A snapshot larger than the whole budget is not kept at all.
        cache.insert(view(1), chunk(SnapshotCache::MAX_BYTES / 1024 + 1));
        assert!(cache.is_empty());
    }
    use crate::store::db::StoredAgent;
    use monti_protocol::codec::decode_server;
    use monti_protocol::scope::Grant;

    fn stored_two_teams() -> StoredFloor {
        StoredFloor {
            sites: vec![(10, "Berlin".into()), (11, "Lisbon".into())],
            teams: vec![(20, "Billing".into()), (21, "Sales".into())],
            reasons: vec![(30, "lunch".into(), "Lunch".into())],
            agents: (0..8)
                .map(|idx| StoredAgent {
                    agent_id: 100 + idx,
                    external_id: format!("a{idx}"),
                    name: format!("Agent {idx}"),
                    team_id: 20 + idx % 2,
                    site_id: 10 + (idx / 4),
                })
                .collect(),
            states: Vec::new(),
            ..StoredFloor::default()
        }
    }

    fn floor_of_two_teams() -> LiveFloor {
        LiveFloor::new(
            &stored_two_teams(),
            8,
            &QueuesConfig::default(),
            Arc::new(Metrics::new()),
            1_000,
        )
        .expect("floor")
        .0
    }

    /// The tests' own right to change the floor.
    const W: &Writes = &Writes(());

    fn state(agent: i64, state: StateKind, since_ms: u64, seen_ms: u64, watched: bool) -> Change {
        Change::State {
            agent,
            state,
            reason: None,
            since_ms,
            seen_ms,
            watched,
        }
    }

    fn shown_status(live: &LiveFloor, agent: u32) -> Option<(AgentStatus, u64)> {
        live.read(|floor| {
            floor
                .agent(AgentId(agent))
                .and_then(|record| record.live)
                .map(|live| (live.status, live.since_ms))
        })
    }

    #[test]
    fn an_older_state_does_not_override_a_newer_one() {
        let live = floor_of_two_teams();
        live.apply(
            W,
            &[state(101, StateKind::OnCall, 5_000, 5_000, false)],
            5_000,
        );
        live.apply(
            W,
            &[state(101, StateKind::Available, 4_000, 6_000, false)],
            6_000,
        );
        live.tick(6_000);
        assert_eq!(shown_status(&live, 1), Some((AgentStatus::OnCall, 5_000)));
        live.apply(
            W,
            &[state(101, StateKind::WrapUp, 7_000, 7_000, false)],
            7_000,
        );
        live.tick(7_000);
        assert_eq!(shown_status(&live, 1), Some((AgentStatus::WrapUp, 7_000)));
    }

    #[test]
    fn a_queues_contacts_count_even_when_they_reach_the_floor_before_the_queue() {
        let live = floor_of_two_teams();
        let now = 1_764_500_000_000;
        // Another server's commit: the contact came through Redis before its new queue.
        live.apply(
            W,
            &[Change::Waiting {
                contact: "c-1".into(),
                waiting: Some((7, now - 30_000)),
            }],
            now,
        );
        live.tick(now);
        let billing = |active| Change::Queue {
            id: 7,
            name: "Billing Voice".into(),
            channel: "voice".into(),
            target_secs: 20,
            goal_percent: 80,
            teams: vec![20],
            active,
        };
        live.apply(W, &[billing(true)], now + 100);
        live.tick(now + 100);
        let figures = live.read(|floor| {
            let queue = floor.queues().next().expect("the queue");
            (
                queue.info.teams.clone(),
                queue.now.waiting,
                queue.now.oldest_waiting_since_ms,
            )
        });
        assert_eq!(figures, (vec![TeamId(0)], 1, Some(now - 30_000)));
        // Deactivated, it leaves the floor.
        live.apply(W, &[billing(false)], now + 200);
        live.tick(now + 200);
        assert_eq!(live.read(|floor| floor.queues().count()), 0);
    }

    #[test]
    fn a_silent_watched_agent_turns_stale_and_fresh_news_brings_it_back() {
        let live = floor_of_two_teams();
        live.apply(
            W,
            &[state(100, StateKind::Available, 1_000, 1_000, true)],
            1_000,
        );
        live.apply(
            W,
            &[state(102, StateKind::Offline, 1_000, 1_000, true)],
            1_000,
        );
        live.apply(
            W,
            &[state(104, StateKind::Available, 1_000, 1_000, false)],
            1_000,
        );
        live.tick(1_000);
        assert_eq!(live.sweep_stale(W, 5_000, 10_000), 0);
        // Watched and logged in: stale. Offline or unwatched: not.
        assert_eq!(live.sweep_stale(W, 12_000, 10_000), 1);
        live.tick(12_000);
        assert_eq!(shown_status(&live, 0), Some((AgentStatus::Stale, 1_000)));
        assert_eq!(
            shown_status(&live, 4),
            Some((AgentStatus::Available, 1_000))
        );
        // A reload repeating what is stored does not end staleness; a heartbeat does.
        let mut stored = stored_two_teams();
        stored.states.push(crate::store::db::StoredState {
            agent_id: 100,
            state: StateKind::Available,
            reason_code_id: None,
            started_at: 1_000,
            seen_at: 1_000,
            watched: true,
        });
        live.reload(W, &stored, 13_000);
        live.tick(13_000);
        assert_eq!(shown_status(&live, 0), Some((AgentStatus::Stale, 1_000)));
        live.apply(
            W,
            &[Change::Seen {
                agent: 100,
                at_ms: 14_000,
            }],
            14_000,
        );
        live.tick(14_000);
        assert_eq!(
            shown_status(&live, 0),
            Some((AgentStatus::Available, 1_000))
        );
        assert_eq!(live.sweep_stale(W, 15_000, 10_000), 0);
    }

    #[test]
    fn a_reload_removes_what_the_database_deactivated_and_adds_what_it_has() {
        let live = floor_of_two_teams();
        let mut stored = stored_two_teams();
        stored.agents.retain(|agent| agent.agent_id != 107);
        stored.inactive.agents.push(107);
        stored.teams.push((22, "Claims".into()));
        stored.agents.push(StoredAgent {
            agent_id: 108,
            external_id: "a8".into(),
            name: "Agent 8".into(),
            team_id: 22,
            site_id: 10,
        });
        live.reload(W, &stored, 2_000);
        live.tick(2_000);
        assert_eq!(live.read(Floor::n_agents), 8);
        assert!(live.agent("a7").is_some_and(|agent| !agent.active));
        assert_eq!(live.agent("a8").map(|agent| agent.team), Some(22));
        assert_eq!(live.team_id("Claims"), Some(22));
    }

    #[test]
    fn a_scoped_viewer_gets_only_its_team_and_a_subscription_beyond_it_is_forbidden() {
        let live = floor_of_two_teams();
        let billing = Scope::Only(vec![Grant {
            teams: vec![TeamId(0)],
            sites: vec![],
        }]);
        let subscribed = live
            .subscribe(&Subscription::default(), &billing, 100)
            .expect("admitted");
        let mut floor = Floor::awaiting_snapshot();
        for chunk in subscribed.chunks.iter() {
            floor
                .apply(&decode_server(chunk).expect("decodes"))
                .expect("folds");
        }
        assert_eq!(floor.n_agents(), 4);
        assert!(floor.agents().all(|agent| agent.info.team == TeamId(0)));
        assert_eq!(
            floor
                .teams()
                .map(|team| team.name.as_str())
                .collect::<Vec<_>>(),
            ["Billing"]
        );

        let sales = Subscription {
            teams: vec![TeamId(1)],
            ..Subscription::default()
        };
        let refused = live.subscribe(&sales, &billing, 100).err();
        let missing = Subscription {
            teams: vec![TeamId(7)],
            ..Subscription::default()
        };
        let unknown = live.subscribe(&missing, &billing, 100).err();
        assert_eq!(
            refused,
            Some((ErrorCode::UnknownTeam, "there is no team with id 1".into())),
            "a team outside the scope is refused as if it did not exist"
        );
        assert_eq!(
            unknown,
            Some((ErrorCode::UnknownTeam, "there is no team with id 7".into()))
        );
    }

    #[test]
    fn viewers_with_different_scopes_never_share_a_delta() {
        let live = floor_of_two_teams();
        let billing = Scope::Only(vec![Grant {
            teams: vec![TeamId(0)],
            sites: vec![],
        }]);
        let everything = live
            .subscribe(&Subscription::default(), &Scope::Everything, 100)
            .expect("admitted");
        let scoped = live
            .subscribe(&Subscription::default(), &billing, 100)
            .expect("admitted");
        let mut ticks = everything.ticks;
        // A Sales agent (odd index) changes state.
        live.apply(
            W,
            &[state(101, StateKind::OnCall, 1_050, 1_050, false)],
            1_050,
        );
        live.tick(1_100);
        let frame = ticks.try_recv().expect("a tick");
        let decode = |key: &ViewKey| match decode_server(&frame.delta_frame(key)).expect("decodes")
        {
            ServerMsg::Delta(delta) => delta,
            other => panic!("not a delta: {other:?}"),
        };
        assert_eq!(decode(&everything.key).changes.len(), 1);
        assert!(
            decode(&scoped.key).changes.is_empty(),
            "a Sales change reached a Billing viewer"
        );
    }
}
