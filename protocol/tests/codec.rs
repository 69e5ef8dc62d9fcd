//! Every message survives encode/decode, and no input makes decoding panic or over-allocate.

use monti_protocol::PROTOCOL_VERSION;
use monti_protocol::codec::{
    DecodeError, MAX_CLIENT_FRAME, decode_client, decode_server, encode_client, encode_server,
};
use monti_protocol::message::*;
use monti_protocol::model::*;
use monti_protocol::queue::*;
use proptest::prelude::*;

fn status() -> impl Strategy<Value = AgentStatus> {
    prop_oneof![
        Just(AgentStatus::Offline),
        Just(AgentStatus::Available),
        Just(AgentStatus::Ringing),
        Just(AgentStatus::OnCall),
        Just(AgentStatus::OnHold),
        Just(AgentStatus::WrapUp),
        proptest::option::of(any::<u16>().prop_map(ReasonId)).prop_map(AgentStatus::NotReady),
        Just(AgentStatus::Stale),
    ]
}

fn agent_id() -> impl Strategy<Value = AgentId> {
    (0u32..=monti_protocol::codec::MAX_AGENT_ID).prop_map(AgentId)
}

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z äöü]{0,40}"
}

fn info() -> impl Strategy<Value = AgentInfo> {
    (agent_id(), name(), any::<u16>(), any::<u16>()).prop_map(|(id, name, team, site)| AgentInfo {
        id,
        name,
        team: TeamId(team),
        site: SiteId(site),
    })
}

fn grouping() -> impl Strategy<Value = Grouping> {
    prop_oneof![
        Just(Grouping::Team),
        Just(Grouping::Site),
        Just(Grouping::TeamSite)
    ]
}

fn summary() -> impl Strategy<Value = GroupSummary> {
    (
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u16>()),
        any::<[u32; StateKind::COUNT]>(),
        any::<[Option<u64>; StateKind::COUNT]>(),
    )
        .prop_map(|(team, site, counts, longest_ms_ago)| GroupSummary {
            key: GroupKey {
                team: team.map(TeamId),
                site: site.map(SiteId),
            },
            counts,
            longest_ms_ago,
        })
}

fn queue_info() -> impl Strategy<Value = QueueInfo> {
    (
        any::<u16>(),
        name(),
        0..Channel::ALL.len(),
        any::<u32>(),
        0u8..=100,
        proptest::collection::vec(any::<u16>().prop_map(TeamId), 0..5),
    )
        .prop_map(
            |(id, name, channel, target_secs, goal_percent, teams)| QueueInfo {
                id: QueueId(id),
                name,
                channel: Channel::ALL[channel],
                target_secs,
                goal_percent,
                teams,
            },
        )
}

fn counts() -> impl Strategy<Value = QueueCounts> {
    any::<[u64; 9]>().prop_map(|n| QueueCounts {
        offered: n[0],
        answered: n[1],
        answered_in_target: n[2],
        abandoned: n[3],
        abandoned_short: n[4],
        answered_wait_ms: n[5],
        longest_wait_ms: n[6],
        handled: n[7],
        handle_ms: n[8],
    })
}

fn queue_live() -> impl Strategy<Value = QueueLive> {
    (
        any::<u16>(),
        any::<u32>(),
        proptest::option::of(any::<u64>()),
        counts(),
        counts(),
    )
        .prop_map(
            |(queue, waiting, oldest_waiting_ms_ago, today, recent)| QueueLive {
                queue: QueueId(queue),
                waiting,
                oldest_waiting_ms_ago,
                today,
                recent,
            },
        )
}

fn roster_change() -> impl Strategy<Value = RosterChange> {
    prop_oneof![
        queue_info().prop_map(RosterChange::QueueUpserted),
        any::<u16>().prop_map(|id| RosterChange::QueueRemoved(QueueId(id))),
        info().prop_map(RosterChange::AgentUpserted),
        agent_id().prop_map(RosterChange::AgentRemoved),
        any::<u16>().prop_map(|id| RosterChange::TeamRemoved(TeamId(id))),
        any::<u16>().prop_map(|id| RosterChange::SiteRemoved(SiteId(id))),
        (any::<u16>(), name()).prop_map(|(id, name)| RosterChange::TeamUpserted(Team {
            id: TeamId(id),
            name
        })),
        (any::<u16>(), name()).prop_map(|(id, name)| RosterChange::SiteUpserted(Site {
            id: SiteId(id),
            name
        })),
        (any::<u16>(), name(), name()).prop_map(|(id, code, label)| {
            RosterChange::ReasonUpserted(ReasonCode {
                id: ReasonId(id),
                code,
                label,
            })
        }),
    ]
}

fn server_msg() -> impl Strategy<Value = ServerMsg> {
    let change = (agent_id(), status(), any::<u64>()).prop_map(|(agent, status, since_ms_ago)| {
        StatusChange {
            agent,
            status,
            since_ms_ago,
        }
    });
    let delta = (
        any::<u64>(),
        any::<u64>(),
        proptest::collection::vec(change, 0..50),
        proptest::collection::vec(roster_change(), 0..5),
        proptest::collection::vec(summary(), 0..5),
        proptest::collection::vec(queue_live(), 0..5),
    )
        .prop_map(|(seq, time_step_ms, changes, roster, groups, queues)| {
            ServerMsg::Delta(Delta {
                seq,
                time_step_ms,
                changes,
                roster,
                groups,
                queues,
            })
        });
    let live =
        (agent_id(), status(), any::<u64>()).prop_map(|(id, status, since_ms_ago)| AgentLive {
            id,
            status,
            since_ms_ago,
        });
    let header = (
        any::<u64>(),
        any::<bool>(),
        grouping(),
        any::<u8>(),
        proptest::collection::vec((any::<u16>(), name()), 0..4),
        proptest::collection::vec(queue_info(), 0..4),
        0..ServiceLevelRule::ALL.len(),
    )
        .prop_map(
            |(roster_version, full_roster, grouping, states, names, queues, rule)| SnapshotHeader {
                roster_version,
                full_roster,
                detail: if full_roster {
                    Detail::Agents
                } else {
                    Detail::Summary
                },
                grouping,
                states: StateSet(states),
                sites: names
                    .iter()
                    .map(|(id, name)| Site {
                        id: SiteId(*id),
                        name: name.clone(),
                    })
                    .collect(),
                teams: names
                    .iter()
                    .map(|(id, name)| Team {
                        id: TeamId(*id),
                        name: name.clone(),
                    })
                    .collect(),
                reasons: names
                    .iter()
                    .map(|(id, name)| ReasonCode {
                        id: ReasonId(*id),
                        code: name.clone(),
                        label: name.clone(),
                    })
                    .collect(),
                queues,
                queue_rules: QueueRules {
                    service_level: ServiceLevelRule::ALL[rule],
                    short_abandon_secs: 5,
                    recent_minutes: 15,
                },
            },
        );
    let chunk = (
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        any::<bool>(),
        proptest::option::of(header),
        proptest::collection::vec(info(), 0..20),
        proptest::collection::vec(live, 0..20),
        proptest::collection::vec(summary(), 0..5),
        proptest::collection::vec(queue_live(), 0..5),
    )
        .prop_map(
            |(seq, time_ms, index, last, header, roster, agents, groups, queues)| {
                ServerMsg::Snapshot(SnapshotChunk {
                    seq,
                    time_ms,
                    index,
                    last,
                    header,
                    roster,
                    agents,
                    groups,
                    queues,
                })
            },
        );
    prop_oneof![
        (
            any::<u16>(),
            any::<u64>(),
            name(),
            any::<u32>(),
            any::<u64>(),
            proptest::option::of(name())
        )
            .prop_map(
                |(
                    protocol_version,
                    server_time_ms,
                    server_name,
                    keepalive_ms,
                    instance,
                    issuer,
                )| {
                    ServerMsg::Hello(ServerHello {
                        protocol_version,
                        server_time_ms,
                        server_name,
                        keepalive_ms,
                        instance,
                        auth: match issuer {
                            None => AuthInfo::None,
                            Some(issuer) => AuthInfo::Oidc {
                                issuer,
                                client_id: "monti".into(),
                                audience: "urn:monti:api".into(),
                            },
                        },
                    })
                }
            ),
        chunk,
        delta,
        (any::<u64>(), any::<u64>()).prop_map(|(seq, server_time_ms)| {
            ServerMsg::Keepalive(Keepalive {
                seq,
                server_time_ms,
            })
        }),
        name().prop_map(|message| ServerMsg::Error(ErrorMsg {
            code: ErrorCode::TooSlow,
            message
        })),
        (any::<bool>(), name(), any::<u64>()).prop_map(|(degraded, reason, since_ms)| {
            ServerMsg::Health(Health {
                degraded,
                reason,
                since_ms,
            })
        }),
    ]
}

fn client_msg() -> impl Strategy<Value = ClientMsg> {
    let sub = (
        grouping(),
        any::<bool>(),
        proptest::collection::vec(any::<u16>().prop_map(TeamId), 0..10),
        proptest::collection::vec(any::<u16>().prop_map(SiteId), 0..10),
        any::<u8>(),
        proptest::option::of(any::<u64>()),
        any::<bool>(),
    )
        .prop_map(
            |(grouping, summary, teams, sites, states, known_roster, queues)| {
                ClientMsg::Subscribe(Subscription {
                    grouping,
                    detail: if summary {
                        Detail::Summary
                    } else {
                        Detail::Agents
                    },
                    teams,
                    sites,
                    states: StateSet(states),
                    known_roster,
                    queues,
                })
            },
        );
    prop_oneof![
        "[A-Za-z0-9._-]{0,300}".prop_map(ClientMsg::RenewToken),
        (any::<u16>(), name()).prop_map(|(protocol_version, client_name)| {
            ClientMsg::Hello(ClientHello {
                protocol_version,
                client_name,
            })
        }),
        sub,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_server_message_round_trips(msg in server_msg()) {
        let frame = encode_server(&msg).expect("encodes");
        prop_assert_eq!(decode_server(&frame), Ok(msg));
    }

    /// A reader that only peeks at a frame's first byte tells its kind as a full decode would.
    #[test]
    fn the_kind_of_every_server_frame_is_read_without_decoding(msg in server_msg()) {
        let frame = encode_server(&msg).expect("encodes");
        prop_assert_eq!(
            monti_protocol::codec::server_msg_kind(&frame),
            Some(monti_protocol::codec::ServerMsgKind::of(&msg))
        );
    }

    #[test]
    fn every_client_message_round_trips(msg in client_msg()) {
        let frame = encode_client(&msg).expect("encodes");
        prop_assert_eq!(decode_client(&frame), Ok(msg));
    }

    #[test]
    fn a_truncated_frame_is_an_error_not_a_panic(msg in server_msg(), cut in any::<prop::sample::Index>()) {
        let frame = encode_server(&msg).expect("encodes");
        let len = cut.index(frame.len().max(1));
        prop_assert!(decode_server(&frame[..len]).is_err());
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_server(&bytes);
        let _ = decode_client(&bytes);
    }
}

#[test]
fn trailing_bytes_are_refused() {
    let mut frame = encode_client(&ClientMsg::Hello(ClientHello {
        protocol_version: PROTOCOL_VERSION,
        client_name: "test".into(),
    }))
    .expect("encodes");
    frame.push(0);
    assert_eq!(decode_client(&frame), Err(DecodeError::TrailingBytes(1)));
}

#[test]
fn an_unknown_message_tag_is_reported_as_such() {
    let err = decode_client(&[0x7f, 1, 2, 3]).expect_err("tag 127 is not a message");
    assert_eq!(err, DecodeError::UnknownTag);
    assert_eq!(err.code(), ErrorCode::UnknownMessage);
}

#[test]
fn an_oversized_frame_is_refused_before_decoding() {
    let frame = vec![0u8; MAX_CLIENT_FRAME + 1];
    assert!(matches!(
        decode_client(&frame),
        Err(DecodeError::TooLarge { .. })
    ));
}

#[test]
fn a_huge_collection_length_does_not_allocate() {
    // A Subscribe whose team list claims u32::MAX entries: postcard reads the varint, serde
    // caps its pre-allocation, and the frame runs out long before.
    let frame = [1u8, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
    assert!(decode_client(&frame).is_err());
}

#[test]
fn an_overlong_name_is_refused() {
    let frame = encode_client(&ClientMsg::Hello(ClientHello {
        protocol_version: PROTOCOL_VERSION,
        client_name: "x".repeat(1000),
    }))
    .expect("encodes");
    assert!(matches!(
        decode_client(&frame),
        Err(DecodeError::LimitExceeded(_))
    ));
}

#[test]
fn a_state_change_costs_at_most_eight_bytes_in_a_delta() {
    // Encode a delta with 1 and with 101 changes of agents with realistic ids and timings; the
    // difference divided by 100 is the marginal cost of one change.
    let delta = |n: u32| Delta {
        seq: 40_000,
        time_step_ms: 100,
        changes: (0..n)
            .map(|i| StatusChange {
                agent: AgentId(1_000 + i * 7),
                status: if i % 5 == 0 {
                    AgentStatus::NotReady(Some(ReasonId(3)))
                } else {
                    AgentStatus::OnCall
                },
                since_ms_ago: u64::from(i % 100),
            })
            .collect(),
        roster: vec![],
        groups: vec![],
        queues: vec![],
    };
    let one = encode_server(&ServerMsg::Delta(delta(1)))
        .expect("encodes")
        .len();
    let many = encode_server(&ServerMsg::Delta(delta(101)))
        .expect("encodes")
        .len();
    let per_change = (many - one) as f64 / 100.0;
    assert!(per_change <= 8.0, "{per_change} bytes per change");
    // A not-ready change with a reason for agent 99,999 is the worst realistic case.
    let worst = StatusChange {
        agent: AgentId(99_999),
        status: AgentStatus::NotReady(Some(ReasonId(200))),
        since_ms_ago: 16_000,
    };
    assert!(postcard::to_allocvec(&worst).expect("encodes").len() <= 9);
}

#[test]
fn a_queue_change_costs_under_sixty_bytes_in_a_delta() {
    // A busy queue in mid-afternoon: 9 waiting, the oldest for 48 s, 1,200 offered today and
    // 70 in the last 15 minutes. The figures travel whole, so this is the cost of any change.
    let counts = |offered: u64| QueueCounts {
        offered,
        answered: offered * 9 / 10,
        answered_in_target: offered * 8 / 10,
        abandoned: offered / 12,
        abandoned_short: offered / 40,
        answered_wait_ms: offered * 9 / 10 * 14_000,
        longest_wait_ms: 212_000,
        handled: offered * 9 / 10,
        handle_ms: offered * 9 / 10 * 290_000,
    };
    let delta = |n: u16| Delta {
        seq: 40_000,
        time_step_ms: 100,
        changes: vec![],
        roster: vec![],
        groups: vec![],
        queues: (0..n)
            .map(|i| QueueLive {
                queue: QueueId(i * 7),
                waiting: 9,
                oldest_waiting_ms_ago: Some(48_000),
                today: counts(1_200),
                recent: counts(70),
            })
            .collect(),
    };
    let size = |n: u16| {
        encode_server(&ServerMsg::Delta(delta(n)))
            .expect("encodes")
            .len()
    };
    let per_queue = (size(101) - size(1)) as f64 / 100.0;
    println!("one queue's figures: {per_queue} bytes");
    assert!(per_queue < 60.0, "{per_queue} bytes per queue change");
}
