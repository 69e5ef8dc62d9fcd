//! A snapshot folded with its deltas equals a fresh snapshot at the same sequence number, for
//! random floors, random changes and random subscriptions; and the incremental aggregates equal
//! a brute-force count.

use std::collections::BTreeMap;

use monti_protocol::codec::{decode_server, encode_server};
use monti_protocol::floor::Floor;
use monti_protocol::message::{Detail, ServerMsg, Subscription};
use monti_protocol::model::*;
use monti_protocol::queue::{Channel, QueueCounts, QueueId, QueueInfo, QueueNow};
use monti_protocol::scope::{Grant, Scope};
use monti_protocol::tick::{Pending, RosterUpdate};
use proptest::prelude::*;

const N_TEAMS: u16 = 4;
const N_SITES: u16 = 3;
const N_QUEUES: u16 = 4;

/// A queue served by the teams whose bits are set in `teams`.
fn queue(queue: u16, teams: u8, target_secs: u32) -> QueueInfo {
    QueueInfo {
        id: QueueId(queue),
        name: format!("Queue {queue}"),
        channel: Channel::Voice,
        target_secs,
        goal_percent: 80,
        teams: (0..N_TEAMS + 2)
            .filter(|team| teams & (1 << team) != 0)
            .map(TeamId)
            .collect(),
    }
}

#[derive(Clone, Debug)]
enum Op {
    Status {
        agent: u32,
        status: AgentStatus,
        back_ms: u64,
    },
    Move {
        agent: u32,
        team: u16,
        site: u16,
    },
    Add {
        agent: u32,
        team: u16,
        site: u16,
    },
    Remove {
        agent: u32,
    },
    /// Adds or renames a team (ids past `N_TEAMS` start out missing).
    NameTeam {
        team: u16,
        name: u8,
    },
    /// Adds or renames a site.
    NameSite {
        site: u16,
        name: u8,
    },
    /// Removes a team, if no agent is in it by the end of the tick.
    RemoveTeam {
        team: u16,
    },
    /// Removes a site, likewise.
    RemoveSite {
        site: u16,
    },
    /// Adds or changes a queue served by the teams in the bit mask.
    Queue {
        queue: u16,
        teams: u8,
        target_secs: u32,
    },
    RemoveQueue {
        queue: u16,
    },
    /// New figures for a queue (dropped when it does not exist).
    QueueFigures {
        queue: u16,
        waiting: u32,
        offered: u64,
        back_ms: u64,
    },
}

fn status() -> impl Strategy<Value = AgentStatus> {
    prop_oneof![
        Just(AgentStatus::Offline),
        Just(AgentStatus::Available),
        Just(AgentStatus::Ringing),
        Just(AgentStatus::OnCall),
        Just(AgentStatus::OnHold),
        Just(AgentStatus::WrapUp),
        proptest::option::of((0u16..3).prop_map(ReasonId)).prop_map(AgentStatus::NotReady),
    ]
}

fn op(n_agents: u32) -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..n_agents, status(), 0u64..300).prop_map(|(agent, status, back_ms)| Op::Status { agent, status, back_ms }),
        1 => (0..n_agents, 0..N_TEAMS + 2, 0..N_SITES + 1).prop_map(|(agent, team, site)| Op::Move { agent, team, site }),
        1 => (0..n_agents + 5, 0..N_TEAMS + 2, 0..N_SITES + 1).prop_map(|(agent, team, site)| Op::Add { agent, team, site }),
        1 => (0..n_agents).prop_map(|agent| Op::Remove { agent }),
        1 => (0..N_TEAMS + 2, any::<u8>()).prop_map(|(team, name)| Op::NameTeam { team, name }),
        1 => (0..N_SITES + 1, any::<u8>()).prop_map(|(site, name)| Op::NameSite { site, name }),
        1 => (0..N_TEAMS + 2).prop_map(|team| Op::RemoveTeam { team }),
        1 => (0..N_SITES + 1).prop_map(|site| Op::RemoveSite { site }),
        1 => (0..N_QUEUES, any::<u8>(), 1u32..4).prop_map(|(queue, teams, target_secs)| Op::Queue { queue, teams, target_secs }),
        1 => (0..N_QUEUES).prop_map(|queue| Op::RemoveQueue { queue }),
        3 => (0..N_QUEUES, 0u32..5, 0u64..50, 0u64..5_000).prop_map(|(queue, waiting, offered, back_ms)| Op::QueueFigures { queue, waiting, offered, back_ms }),
    ]
}

fn subscription() -> impl Strategy<Value = Subscription> {
    (
        prop_oneof![
            Just(Grouping::Team),
            Just(Grouping::Site),
            Just(Grouping::TeamSite)
        ],
        any::<bool>(),
        proptest::collection::btree_set(0..N_TEAMS, 0..3),
        proptest::collection::btree_set(0..N_SITES, 0..2),
        prop_oneof![Just(StateSet::ALL), (1u8..127).prop_map(StateSet)],
        any::<bool>(),
    )
        .prop_map(
            |(grouping, summary, teams, sites, states, queues)| Subscription {
                grouping,
                detail: if summary {
                    Detail::Summary
                } else {
                    Detail::Agents
                },
                teams: teams.into_iter().map(TeamId).collect(),
                sites: sites.into_iter().map(SiteId).collect(),
                states,
                known_roster: None,
                queues,
            },
        )
}

fn scope() -> impl Strategy<Value = Scope> {
    let grant = (
        proptest::collection::btree_set(0..N_TEAMS, 0..3),
        proptest::collection::btree_set(0..N_SITES, 0..2),
    )
        .prop_map(|(teams, sites)| Grant {
            teams: teams.into_iter().map(TeamId).collect(),
            sites: sites.into_iter().map(SiteId).collect(),
        });
    prop_oneof![
        Just(Scope::Everything),
        proptest::collection::vec(grant, 0..3).prop_map(Scope::Only),
    ]
}

fn info(agent: u32, team: u16, site: u16) -> AgentInfo {
    AgentInfo {
        id: AgentId(agent),
        name: format!("Agent {agent}"),
        team: TeamId(team),
        site: SiteId(site),
    }
}

/// A server floor with `n_agents` agents spread over the teams and sites, committed as seq 1.
fn server_floor(n_agents: u32, start_ms: u64) -> Floor {
    let mut floor = Floor::new();
    let mut pending = Pending::default();
    for team in 0..N_TEAMS {
        pending.roster(RosterUpdate::Team(Team {
            id: TeamId(team),
            name: format!("Team {team}"),
        }));
    }
    for site in 0..N_SITES {
        pending.roster(RosterUpdate::Site(Site {
            id: SiteId(site),
            name: format!("Site {site}"),
        }));
    }
    for reason in 0..3 {
        pending.roster(RosterUpdate::Reason(ReasonCode {
            id: ReasonId(reason),
            code: format!("r{reason}"),
            label: format!("Reason {reason}"),
        }));
    }
    for agent in 0..n_agents {
        pending.roster(RosterUpdate::Agent(info(
            agent,
            (agent % 4) as u16 % N_TEAMS,
            (agent % 3) as u16 % N_SITES,
        )));
        pending.set_status(
            AgentId(agent),
            AgentStatus::Available,
            start_ms - u64::from(agent) * 10,
        );
    }
    pending.roster(RosterUpdate::Queue(queue(0, 0b0011, 20)));
    pending.roster(RosterUpdate::Queue(queue(1, 0b0100, 30)));
    pending.roster(RosterUpdate::Queue(queue(2, 0, 20)));
    pending.commit(&mut floor, start_ms);
    floor
}

fn fold_snapshot(floor: &Floor, sub: &Subscription, scope: &Scope, chunk_agents: usize) -> Floor {
    let mut client = Floor::awaiting_snapshot();
    for chunk in floor.snapshot(sub, scope, chunk_agents) {
        let msg = roundtrip(&ServerMsg::Snapshot(chunk));
        client.apply(&msg).expect("snapshot folds");
    }
    assert!(client.is_ready());
    client
}

/// Whether a viewer limited to `scope` may know of the team and the site, by brute force: the
/// whole floor, a grant that names them, or an agent on the server's floor the scope covers.
fn may_name(scope: &Scope, server: &Floor, team: Option<TeamId>, site: Option<SiteId>) -> bool {
    let Scope::Only(grants) = scope else {
        return true;
    };
    let named = grants.iter().any(|grant| {
        team.is_none_or(|team| grant.teams.contains(&team))
            && site.is_none_or(|site| grant.sites.contains(&site))
    });
    named
        || server.agents().any(|agent| {
            team.is_none_or(|team| agent.info.team == team)
                && site.is_none_or(|site| agent.info.site == site)
                && scope.covers(agent.info.team, agent.info.site)
        })
        || grants
            .iter()
            .any(|grant| grant.teams.is_empty() && grant.sites.is_empty())
}

fn roundtrip(msg: &ServerMsg) -> ServerMsg {
    decode_server(&encode_server(msg).expect("encodes")).expect("decodes")
}

/// Counts per team, brute force, for comparison with the incremental aggregates.
fn brute_force(
    floor: &Floor,
    grouping: Grouping,
) -> BTreeMap<GroupKey, ([u32; StateKind::COUNT], [Option<u64>; StateKind::COUNT])> {
    let mut groups: BTreeMap<GroupKey, ([u32; StateKind::COUNT], [Option<u64>; StateKind::COUNT])> =
        BTreeMap::new();
    for record in floor.agents() {
        let Some(live) = record.live else { continue };
        let entry = groups
            .entry(grouping.key(record.info.team, record.info.site))
            .or_default();
        let kind = live.status.kind().index();
        entry.0[kind] += 1;
        entry.1[kind] = Some(entry.1[kind].map_or(live.since_ms, |since| since.min(live.since_ms)));
    }
    groups
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_snapshot_folded_with_its_deltas_equals_a_fresh_snapshot(
        n_agents in 0u32..40,
        ticks in proptest::collection::vec(proptest::collection::vec(op(40), 0..12), 1..12),
        sub in subscription(),
        scope in scope(),
        chunk_agents in 1usize..16,
    ) {
        let start_ms = 1_700_000_000_000;
        let mut server = server_floor(n_agents, start_ms);
        let mut client = fold_snapshot(&server, &sub, &scope, chunk_agents);
        let mut pending = Pending::default();
        let mut now = start_ms;
        for ops in ticks {
            now += 100;
            // As the server does: agents join teams and sites that exist, and only empty teams
            // and sites are removed.
            let placed: Vec<(u16, u16)> = ops
                .iter()
                .filter_map(|op| match *op {
                    Op::Move { team, site, .. } | Op::Add { team, site, .. } => Some((team, site)),
                    _ => None,
                })
                .collect();
            let leaving: std::collections::BTreeSet<u32> = ops
                .iter()
                .filter_map(|op| match *op {
                    Op::Move { agent, .. } | Op::Remove { agent } => Some(agent),
                    _ => None,
                })
                .collect();
            let stays_in = |team: Option<u16>, site: Option<u16>| {
                server.agents().any(|agent| {
                    !leaving.contains(&agent.info.id.0)
                        && team.is_none_or(|team| agent.info.team.0 == team)
                        && site.is_none_or(|site| agent.info.site.0 == site)
                })
            };
            let removable_team = |team: u16| {
                !stays_in(Some(team), None) && placed.iter().all(|&(t, _)| t != team)
            };
            let removable_site = |site: u16| {
                !stays_in(None, Some(site)) && placed.iter().all(|&(_, s)| s != site)
            };
            let mut removals = Vec::new();
            for op in ops {
                match op {
                    Op::Status { agent, status, back_ms } => {
                        if server.agent(AgentId(agent)).is_some() {
                            pending.set_status(AgentId(agent), status, now - back_ms);
                        }
                    }
                    Op::Move { agent, team, site } | Op::Add { agent, team, site } => {
                        if server.team(TeamId(team)).is_some() && server.site(SiteId(site)).is_some() {
                            pending.roster(RosterUpdate::Agent(info(agent, team, site)));
                        }
                    }
                    Op::Remove { agent } => pending.roster(RosterUpdate::RemoveAgent(AgentId(agent))),
                    Op::NameTeam { team, name } => pending.roster(RosterUpdate::Team(Team {
                        id: TeamId(team),
                        name: format!("Team {team}.{name}"),
                    })),
                    Op::NameSite { site, name } => pending.roster(RosterUpdate::Site(Site {
                        id: SiteId(site),
                        name: format!("Site {site}.{name}"),
                    })),
                    Op::RemoveTeam { team } => {
                        if removable_team(team) {
                            removals.push(RosterUpdate::RemoveTeam(TeamId(team)));
                        }
                    }
                    Op::RemoveSite { site } => {
                        if removable_site(site) {
                            removals.push(RosterUpdate::RemoveSite(SiteId(site)));
                        }
                    }
                    Op::Queue { queue: id, teams, target_secs } => {
                        pending.roster(RosterUpdate::Queue(queue(id, teams, target_secs)));
                    }
                    Op::RemoveQueue { queue } => pending.roster(RosterUpdate::RemoveQueue(QueueId(queue))),
                    Op::QueueFigures { queue, waiting, offered, back_ms } => {
                        let counts = QueueCounts { offered, answered: offered / 2, ..QueueCounts::default() };
                        pending.set_queue(QueueId(queue), QueueNow {
                            waiting,
                            oldest_waiting_since_ms: (waiting > 0).then_some(now - back_ms),
                            today: counts,
                            recent: counts,
                        });
                    }
                }
            }
            for removal in removals {
                pending.roster(removal);
            }
            let tick = pending.commit(&mut server, now);
            let delta = roundtrip(&ServerMsg::Delta(tick.delta_for(&sub, &scope)));
            client.apply(&delta).expect("delta folds");
            let fresh = fold_snapshot(&server, &sub, &scope, chunk_agents);
            prop_assert_eq!(&client, &fresh);
            // Nothing outside the scope ever reached the client: no agent, and no name of a
            // team or site that the scope neither grants by name nor sees an agent of.
            prop_assert!(client.agents().all(|agent| scope.covers(agent.info.team, agent.info.site)));
            for team in client.teams() {
                prop_assert!(may_name(&scope, &server, Some(team.id), None), "team {:?}", team);
            }
            for site in client.sites() {
                prop_assert!(may_name(&scope, &server, None, Some(site.id)), "site {:?}", site);
            }
            for stats in client.summaries(sub.grouping) {
                prop_assert!(may_name(&scope, &server, stats.key.team, stats.key.site));
            }
            // Queues only when asked for, and only those served by a team the viewer may name,
            // naming no other team.
            prop_assert!(sub.queues || client.queues().next().is_none());
            for queue in client.queues() {
                prop_assert!(scope == Scope::Everything || !queue.info.teams.is_empty());
                for &team in &queue.info.teams {
                    prop_assert!(may_name(&scope, &server, Some(team), None), "queue {:?}", queue.info);
                }
            }
            if sub.queues {
                let visible = server.queues().filter(|queue| {
                    scope == Scope::Everything
                        || queue.info.teams.iter().any(|&team| may_name(&scope, &server, Some(team), None))
                });
                prop_assert_eq!(visible.count(), client.queues().count());
            }
            // Every agent the client has comes with its team's and site's names.
            for agent in client.agents() {
                prop_assert!(client.team(agent.info.team).is_some());
                prop_assert!(client.site(agent.info.site).is_some());
            }
            for grouping in Grouping::ALL {
                prop_assert_eq!(client.summaries(grouping), fresh.summaries(grouping));
            }
        }
        // The incremental aggregates of the server's floor equal a brute-force count.
        for grouping in Grouping::ALL {
            let incremental: BTreeMap<_, _> = server
                .summaries(grouping)
                .into_iter()
                .map(|stats| (stats.key, (stats.counts, stats.oldest_since_ms)))
                .collect();
            prop_assert_eq!(incremental, brute_force(&server, grouping));
        }
    }

    #[test]
    fn a_known_roster_is_not_sent_again_and_folds_the_same(n_agents in 1u32..40, sub in subscription()) {
        let server = server_floor(n_agents, 1_700_000_000_000);
        let first = fold_snapshot(&server, &sub, &Scope::Everything, 8);
        let again = Subscription { known_roster: Some(first.roster_version()), ..sub.clone() };
        let chunks = server.snapshot(&again, &Scope::Everything, 8);
        prop_assert!(chunks.iter().all(|chunk| chunk.roster.is_empty()));
        let mut client = first.clone();
        for chunk in chunks {
            client.apply(&ServerMsg::Snapshot(chunk)).expect("folds");
        }
        prop_assert_eq!(client, first);
    }
}

#[test]
fn a_gap_in_sequence_numbers_is_reported() {
    let server = server_floor(3, 1_700_000_000_000);
    let mut client = fold_snapshot(&server, &Subscription::default(), &Scope::Everything, 8);
    let delta = monti_protocol::message::Delta {
        seq: client.seq() + 2,
        time_step_ms: 100,
        changes: vec![],
        roster: vec![],
        groups: vec![],
        queues: vec![],
    };
    assert_eq!(
        client.apply_delta(&delta),
        Err(monti_protocol::floor::FoldError::Gap {
            expected: client.seq() + 1,
            got: client.seq() + 2
        })
    );
}

#[test]
fn a_scoped_snapshot_names_nothing_outside_its_scope() {
    let server = server_floor(30, 1_700_000_000_000);
    let sub = Subscription {
        teams: vec![TeamId(1)],
        ..Subscription::default()
    };
    for chunk in server.snapshot(&sub, &Scope::Everything, 8) {
        assert!(chunk.roster.iter().all(|agent| agent.team == TeamId(1)));
        if let Some(header) = &chunk.header {
            assert_eq!(
                header.teams.iter().map(|team| team.id).collect::<Vec<_>>(),
                vec![TeamId(1)]
            );
        }
        for live in &chunk.agents {
            assert_eq!(
                server.agent(live.id).map(|record| record.info.team),
                Some(TeamId(1))
            );
        }
    }
}

#[test]
fn a_live_snapshot_of_two_thousand_agents_fits_in_32_kb() {
    let server = server_floor(2_000, 1_700_000_000_000);
    let known = Subscription {
        known_roster: Some(server.roster_version()),
        ..Subscription::default()
    };
    let live_bytes: usize = server
        .snapshot(&known, &Scope::Everything, 4096)
        .into_iter()
        .map(|chunk| {
            encode_server(&ServerMsg::Snapshot(chunk))
                .expect("encodes")
                .len()
        })
        .sum();
    assert!(live_bytes <= 32 * 1024, "{live_bytes} bytes");
}
