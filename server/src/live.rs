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
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use monti_protocol::codec::encode_server;
use monti_protocol::floor::Floor;
use monti_protocol::message::{ErrorCode, ServerMsg, Subscription};
use monti_protocol::model::{
    AgentId, AgentInfo, AgentStatus, ReasonCode, ReasonId, Site, SiteId, Team, TeamId,
};
use monti_protocol::scope::Scope;
use monti_protocol::tick::{Pending, RosterUpdate, Tick};
use tokio::sync::{broadcast, mpsc};

use crate::db::{HistoryRow, StoredRoster};
use crate::metrics::Metrics;

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
    history: mpsc::Sender<HistoryRow>,
    metrics: Arc<Metrics>,
}

struct Inner {
    floor: Floor,
    pending: Pending,
    oldest_pending: Option<Instant>,
    /// Database ids by dense id, for history rows.
    agent_db_ids: Vec<i64>,
    reason_db_ids: Vec<i64>,
    /// External ids to dense ids, for ingest.
    agents_by_external_id: HashMap<String, AgentId>,
    reasons_by_code: HashMap<String, ReasonId>,
    /// Encoded snapshots of the current sequence number by (normalised) subscription, so that a
    /// crowd of viewers reconnecting at once costs one snapshot per distinct view.
    snapshots: HashMap<ViewKey, Arc<[Bytes]>>,
    snapshots_seq: u64,
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
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind, still consistent enough to serve
    // (every section below is a handful of assignments); keep serving rather than cascade.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl LiveFloor {
    /// A floor holding the stored roster (every agent offline), committed as sequence number 1.
    pub fn new(
        roster: &StoredRoster,
        queue_ticks: usize,
        history: mpsc::Sender<HistoryRow>,
        metrics: Arc<Metrics>,
        now_ms: u64,
    ) -> anyhow::Result<LiveFloor> {
        let mut pending = Pending::default();
        let site_ids = dense_ids(roster.sites.iter().map(|(id, _)| *id))?;
        let team_ids = dense_ids(roster.teams.iter().map(|(id, _)| *id))?;
        for (dense, (_, name)) in roster.sites.iter().enumerate() {
            pending.roster(RosterUpdate::Site(Site {
                id: SiteId(dense as u16),
                name: name.clone(),
            }));
        }
        for (dense, (_, name)) in roster.teams.iter().enumerate() {
            pending.roster(RosterUpdate::Team(Team {
                id: TeamId(dense as u16),
                name: name.clone(),
            }));
        }
        let mut reasons_by_code = HashMap::new();
        for (dense, (_, code, label)) in roster.reasons.iter().enumerate() {
            let id = ReasonId(
                u16::try_from(dense).map_err(|_| anyhow::anyhow!("too many reason codes"))?,
            );
            reasons_by_code.insert(code.clone(), id);
            pending.roster(RosterUpdate::Reason(ReasonCode {
                id,
                code: code.clone(),
                label: label.clone(),
            }));
        }
        let mut agents_by_external_id = HashMap::with_capacity(roster.agents.len());
        for (dense, agent) in roster.agents.iter().enumerate() {
            let id = AgentId(dense as u32);
            let (Some(&team), Some(&site)) =
                (team_ids.get(&agent.team_id), site_ids.get(&agent.site_id))
            else {
                anyhow::bail!(
                    "agent {} has a team or site that does not exist",
                    agent.external_id
                );
            };
            agents_by_external_id.insert(agent.external_id.clone(), id);
            pending.roster(RosterUpdate::Agent(AgentInfo {
                id,
                name: agent.name.clone(),
                team: TeamId(team),
                site: SiteId(site),
            }));
            pending.set_status(id, AgentStatus::Offline, now_ms);
        }
        let mut floor = Floor::new();
        pending.commit(&mut floor, now_ms);
        metrics.floor_agents.set(floor.n_agents() as i64);
        let (ticks, _) = broadcast::channel(queue_ticks.max(1));
        Ok(LiveFloor {
            instance: now_ms ^ u64::from(std::process::id()).rotate_left(40),
            inner: Mutex::new(Inner {
                floor,
                pending,
                oldest_pending: None,
                agent_db_ids: roster.agents.iter().map(|agent| agent.agent_id).collect(),
                reason_db_ids: roster.reasons.iter().map(|(id, _, _)| *id).collect(),
                agents_by_external_id,
                reasons_by_code,
                snapshots: HashMap::new(),
                snapshots_seq: 0,
            }),
            ticks,
            history,
            metrics,
        })
    }

    /// The dense id of an agent by its external id.
    pub fn agent_id(&self, external_id: &str) -> Option<AgentId> {
        lock(&self.inner)
            .agents_by_external_id
            .get(external_id)
            .copied()
    }

    /// The dense id of a reason code.
    pub fn reason_id(&self, code: &str) -> Option<ReasonId> {
        lock(&self.inner).reasons_by_code.get(code).copied()
    }

    /// Records agent state changes for the next tick and queues them for history. Changes for
    /// unknown agents are skipped; returns how many were accepted.
    pub fn record(&self, changes: &[(AgentId, AgentStatus, u64)], now_ms: u64) -> usize {
        let mut inner = lock(&self.inner);
        let inner = &mut *inner;
        let mut accepted = 0;
        for &(agent, status, since_ms) in changes {
            let Some(&agent_db_id) = inner.agent_db_ids.get(agent.0 as usize) else {
                continue;
            };
            if inner.floor.agent(agent).is_none() {
                continue;
            }
            inner.pending.set_status(agent, status, since_ms);
            accepted += 1;
            let row = HistoryRow {
                agent_id: agent_db_id,
                state: status.kind().name(),
                reason_code_id: status
                    .reason()
                    .and_then(|reason| inner.reason_db_ids.get(reason.0 as usize).copied()),
                started_at: since_ms as i64,
                created_at: now_ms as i64,
            };
            if self.history.try_send(row).is_err() {
                self.metrics.history_dropped.inc();
            }
        }
        if accepted > 0 && inner.oldest_pending.is_none() {
            inner.oldest_pending = Some(Instant::now());
        }
        self.metrics.state_changes.inc_by(accepted as u64);
        accepted
    }

    /// Commits the changes since the last tick as the next sequence number and broadcasts them.
    /// Does nothing when nothing changed.
    pub fn tick(&self, now_ms: u64) -> Option<u64> {
        let mut inner = lock(&self.inner);
        if inner.pending.is_empty() {
            return None;
        }
        let inner = &mut *inner;
        let tick = inner.pending.commit(&mut inner.floor, now_ms);
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
        if !scope.admits(sub) {
            return Err((
                ErrorCode::Forbidden,
                "the subscription names teams or sites outside what you may see".to_owned(),
            ));
        }
        let mut inner = lock(&self.inner);
        let inner = &mut *inner;
        if let Some(team) = sub
            .teams
            .iter()
            .find(|&&team| inner.floor.team(team).is_none())
        {
            return Err((
                ErrorCode::UnknownTeam,
                format!("there is no team with id {}", team.0),
            ));
        }
        if let Some(site) = sub
            .sites
            .iter()
            .find(|&&site| inner.floor.site(site).is_none())
        {
            return Err((
                ErrorCode::UnknownSite,
                format!("there is no site with id {}", site.0),
            ));
        }
        let seq = inner.floor.seq();
        if inner.snapshots_seq != seq {
            inner.snapshots.clear();
            inner.snapshots_seq = seq;
        }
        // Snapshots differ by whether the roster is included; deltas do not.
        let mut snapshot_key = ViewKey {
            sub: sub.clone(),
            scope: scope.clone(),
        };
        if snapshot_key.sub.known_roster != Some(inner.floor.roster_version()) {
            snapshot_key.sub.known_roster = None;
        }
        let chunks = match inner.snapshots.get(&snapshot_key) {
            Some(chunks) => chunks.clone(),
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

/// Maps database ids, in order, to dense u16 ids.
fn dense_ids(db_ids: impl Iterator<Item = i64>) -> anyhow::Result<HashMap<i64, u16>> {
    db_ids
        .enumerate()
        .map(|(dense, db_id)| {
            let dense = u16::try_from(dense)
                .map_err(|_| anyhow::anyhow!("more than 65535 teams or sites"))?;
            Ok((db_id, dense))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::StoredAgent;
    use monti_protocol::codec::decode_server;
    use monti_protocol::scope::Grant;

    fn floor_of_two_teams() -> LiveFloor {
        let roster = StoredRoster {
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
        };
        let (history, _rows) = mpsc::channel(100);
        LiveFloor::new(&roster, 8, history, Arc::new(Metrics::new()), 1_000).expect("floor")
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
        let refused = live
            .subscribe(&sales, &billing, 100)
            .err()
            .map(|(code, _)| code);
        assert_eq!(refused, Some(ErrorCode::Forbidden));
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
        live.record(&[(AgentId(1), AgentStatus::OnCall, 1_050)], 1_050);
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
