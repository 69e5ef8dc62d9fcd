//! The live stream end to end: a real server on loopback, real WebSocket viewers, SQLite and
//! PostgreSQL.

mod common;

use std::time::{Duration, Instant};

use common::{TestDb, TestServer, test_config};
use monti_client::connection::Connection;
use monti_client::follow::{Follower, Step};
use monti_protocol::floor::Floor;
use monti_protocol::message::{Detail, ErrorCode, ServerMsg, Subscription};
use monti_protocol::model::{Grouping, SiteId, StateKind, StateSet, TeamId};
use monti_protocol::rest::FloorSummaryJson;

/// Follows both viewers until the floor has come to rest (see [`follow_until_quiet`]).
async fn follow_both_until_quiet(a: &mut Follower, b: &mut Follower) {
    let (quiet, limit) = (Duration::from_millis(1500), Duration::from_secs(60));
    tokio::join!(
        follow_until_quiet(a, quiet, limit),
        follow_until_quiet(b, quiet, limit)
    );
}

/// Follows until the floor has been quiet for `quiet` (the simulator has stopped).
async fn follow_until_quiet(follower: &mut Follower, quiet: Duration, limit: Duration) {
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < limit, "the floor never came to rest");
        match tokio::time::timeout(quiet, follower.next()).await {
            Err(_) if follower.floor().is_ready() => return,
            Err(_) => {}
            Ok(result) => {
                if let Step::Lost { reason, .. } = result.expect("no fatal error") {
                    panic!("connection lost while following: {reason}");
                }
            }
        }
    }
}

async fn fresh_view(server: &TestServer, sub: &Subscription) -> Floor {
    let mut follower = Follower::new(&server.url, "test fresh", sub.clone());
    tokio::time::timeout(Duration::from_secs(10), follower.until_live())
        .await
        .expect("snapshot in time")
        .expect("snapshot");
    follower.floor().clone()
}

/// A simulated hour at 600x speed: a viewer that followed all of it holds exactly what a fresh
/// snapshot and the REST summary say, for an agents view and a scoped summary view.
async fn a_viewer_that_follows_a_simulated_hour_ends_with_the_servers_state(db: TestDb) {
    let mut config = test_config(&db);
    config.simulator.speed = 600.0;
    config.simulator.duration_minutes = 60;
    let server = TestServer::start(config).await;
    // The simulator's contacts make the queues' figures move with the agents.
    let everything = Subscription {
        queues: true,
        ..Subscription::default()
    };
    let scoped_summary = Subscription {
        grouping: Grouping::TeamSite,
        detail: Detail::Summary,
        sites: vec![SiteId(0)],
        states: StateSet::of([StateKind::OnCall, StateKind::NotReady, StateKind::Available]),
        queues: true,
        ..Subscription::default()
    };
    let mut viewer = Follower::new(&server.url, "test viewer", everything.clone());
    let mut summary_viewer = Follower::new(&server.url, "test summary", scoped_summary.clone());
    let started_seq;
    {
        viewer.until_live().await.expect("live");
        summary_viewer.until_live().await.expect("live");
        started_seq = viewer.floor().seq();
    }
    follow_both_until_quiet(&mut viewer, &mut summary_viewer).await;
    let followed = viewer.floor().clone();
    assert!(
        followed.seq() > started_seq + 50,
        "the hour produced only {} ticks",
        followed.seq() - started_seq
    );
    assert_eq!(followed.n_agents(), 300);
    assert!(
        followed.queues().any(|queue| queue.now.today.answered > 0),
        "the simulated contacts reached the queues"
    );
    assert_eq!(followed, fresh_view(&server, &everything).await);
    let summarised = summary_viewer.floor().clone();
    assert_eq!(summarised, fresh_view(&server, &scoped_summary).await);
    assert!(
        !summary_viewer
            .floor()
            .summaries(Grouping::TeamSite)
            .is_empty()
    );

    let rest: FloorSummaryJson = server
        .get("/api/v1/floor/summary?group_by=site")
        .await
        .json()
        .await
        .expect("json");
    let local = FloorSummaryJson::from_floor(
        &followed,
        Grouping::Site,
        &monti_protocol::scope::Scope::Everything,
    );
    // Through JSON like the server's answer, so that both figures went through the same
    // float parsing.
    let local: FloorSummaryJson =
        serde_json::from_str(&serde_json::to_string(&local).expect("json")).expect("json");
    assert_eq!(rest, local);

    // The simulated hour went to the database as history.
    let changes = server.metric("monti_agent_state_changes_total").await;
    assert!(
        changes > 1_000.0,
        "{changes} changes in a simulated hour of 300 agents"
    );
    let applied = server
        .metric(r#"monti_ingest_events_total{source="simulator",outcome="applied"}"#)
        .await;
    // Reported from the first such event; none at all is a count of zero.
    let older = server
        .metric_if_reported(r#"monti_ingest_events_total{source="simulator",outcome="older"}"#)
        .await
        .unwrap_or(0.0);
    let url = server.config.database.url.clone();
    server.stop().await.expect("clean shutdown");
    let db_after = monti_server::store::db::Db::connect(&monti_server::config::DatabaseConfig {
        url,
        ..Default::default()
    })
    .await
    .expect("reopen");
    // Every applied event changed the floor; events that lost to a later one for the same
    // agent in the same batch are history only.
    assert_eq!(
        changes, applied,
        "every applied event reached the floor once"
    );
    assert_eq!(
        db_after.count_history().await.expect("count") as f64,
        applied + older,
        "every stored event is in the history"
    );
    db_after.close().await;
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_follows_a_simulated_hour_on_sqlite() {
    a_viewer_that_follows_a_simulated_hour_ends_with_the_servers_state(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_follows_a_simulated_hour_on_postgres() {
    if let Some(db) = TestDb::postgres().await {
        a_viewer_that_follows_a_simulated_hour_ends_with_the_servers_state(db).await;
    }
}

/// Ticks carry what summary deltas are made of only while someone follows summaries. A summary
/// viewer that joins a floor whose ticks were committed without them, leaves, and joins again
/// follows every tick after its snapshot exactly (checked against a fresh snapshot), while an
/// agents viewer follows all along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summaries_are_computed_from_the_tick_a_summary_viewer_joins() {
    let db = TestDb::sqlite();
    let mut config = test_config(&db);
    config.simulator.speed = 600.0;
    config.simulator.duration_minutes = 40;
    let server = TestServer::start(config).await;
    let agents = Subscription::default();
    let summaries = Subscription {
        grouping: Grouping::Site,
        detail: Detail::Summary,
        ..Subscription::default()
    };
    let mut viewer = Follower::new(&server.url, "test agents", agents.clone());
    viewer.until_live().await.expect("live");
    // Ticks without summaries go by before each summary viewer joins.
    for round in 0..2 {
        let joined_at = viewer.floor().seq();
        while viewer.floor().seq() < joined_at + 20 {
            let step = tokio::time::timeout(Duration::from_secs(10), viewer.next())
                .await
                .expect("ticks keep coming")
                .expect("no fatal error");
            assert!(!matches!(step, Step::Lost { .. }), "lost: {step:?}");
        }
        let mut summary_viewer = Follower::new(&server.url, "test summaries", summaries.clone());
        summary_viewer.until_live().await.expect("live");
        let from = summary_viewer.floor().seq();
        let last_round = round == 1;
        if last_round {
            follow_both_until_quiet(&mut viewer, &mut summary_viewer).await;
        } else {
            while summary_viewer.floor().seq() < from + 20 {
                let (summary_step, step) = tokio::join!(
                    tokio::time::timeout(Duration::from_secs(10), summary_viewer.next()),
                    tokio::time::timeout(Duration::from_secs(10), viewer.next()),
                );
                let summary_step = summary_step.expect("ticks").expect("no fatal error");
                let step = step.expect("ticks").expect("no fatal error");
                assert!(
                    !matches!(summary_step, Step::Lost { .. }),
                    "{summary_step:?}"
                );
                assert!(!matches!(step, Step::Lost { .. }), "{step:?}");
            }
        }
        assert!(
            summary_viewer.floor().seq() > from,
            "the summary viewer saw ticks"
        );
        if last_round {
            // At rest: what the viewer folded is what a fresh snapshot says.
            let fresh = fresh_view(&server, &summaries).await;
            assert_eq!(*summary_viewer.floor(), fresh);
        }
        // The viewer leaves; the ticks that follow are committed without summaries again.
        drop(summary_viewer);
    }
    let fresh = fresh_view(&server, &agents).await;
    assert_eq!(*viewer.floor(), fresh);
    server.stop().await.expect("clean shutdown");
}

/// Polls the server's `name` metric until `wanted` holds for it (every 50 ms, the metric being
/// readable only over HTTP), or fails after ten seconds saying what it stayed at.
async fn until_metric(server: &TestServer, name: &str, what: &str, wanted: impl Fn(f64) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = server.metric(name).await;
        if wanted(now) {
            return;
        }
        assert!(Instant::now() < deadline, "{name} stayed {now}, not {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Summary viewers that vanish without a close (the socket simply dropped) or whose
/// subscription is refused leave nothing counted: the ticks go back to leaving summaries out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_viewers_that_vanish_or_are_refused_are_not_counted() {
    let db = TestDb::sqlite();
    let mut config = test_config(&db);
    config.simulator.speed = 60.0;
    let server = TestServer::start(config).await;
    let summaries = Subscription {
        detail: Detail::Summary,
        ..Subscription::default()
    };
    let mut viewers = Vec::new();
    for n in 0..10 {
        let mut viewer = Connection::connect(&server.url, &format!("test {n}"))
            .await
            .expect("connect");
        viewer.subscribe(&summaries).await.expect("subscribe");
        assert!(matches!(
            viewer.recv().await.expect("snapshot"),
            ServerMsg::Snapshot(_)
        ));
        viewers.push(viewer);
    }
    let counted = "monti_summary_viewers";
    until_metric(&server, counted, "10", |now| now == 10.0).await;
    // Gone without a word: the sockets are dropped, no close frame.
    drop(viewers);
    until_metric(&server, counted, "0", |now| now == 0.0).await;
    // A summary of a team that does not exist is refused, and not counted.
    let mut refused = Connection::connect(&server.url, "test refused")
        .await
        .expect("connect");
    let unknown = Subscription {
        teams: vec![TeamId(60_000)],
        ..summaries.clone()
    };
    refused.subscribe(&unknown).await.expect("subscribe sent");
    match refused.recv().await {
        Ok(ServerMsg::Error(error)) => assert_eq!(error.code, ErrorCode::UnknownTeam),
        Err(monti_client::connection::ClientError::Refused { code, .. }) => {
            assert_eq!(code, ErrorCode::UnknownTeam)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Three more ticks, each of which sets the count.
    let ticks = server.metric("monti_ticks_total").await;
    let three_more = |now| now >= ticks + 3.0;
    until_metric(&server, "monti_ticks_total", "3 ticks more", three_more).await;
    assert_eq!(server.metric(counted).await, 0.0);
    server.stop().await.expect("clean shutdown");
}

/// Opens a WebSocket whose receive buffer is tiny, so the server's sends block as soon as the
/// viewer stops reading.
async fn tiny_buffer_socket(
    server: &TestServer,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let stream = socket.connect(server.addr).await.expect("connect");
    let url = format!("ws://{}{}", server.addr, monti_protocol::STREAM_PATH);
    let (ws, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .expect("upgrade");
    ws
}

async fn send(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    msg: &monti_protocol::message::ClientMsg,
) {
    use futures_util::SinkExt;
    let frame = monti_protocol::codec::encode_client(msg).expect("encodes");
    ws.send(tokio_tungstenite::tungstenite::Message::Binary(
        frame.into(),
    ))
    .await
    .expect("send");
}

async fn hello_and_subscribe(ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) {
    use monti_protocol::message::{ClientHello, ClientMsg};
    send(
        ws,
        &ClientMsg::Hello(ClientHello {
            protocol_version: monti_protocol::PROTOCOL_VERSION,
            client_name: "slow".into(),
        }),
    )
    .await;
    send(ws, &ClientMsg::Subscribe(Subscription::default())).await;
}

/// Reads until `until` and returns the server messages (and the close frame, if any).
async fn drain(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    until: Duration,
) -> (Vec<ServerMsg>, Option<u16>) {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + until;
    let mut messages = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) | Ok(None) | Ok(Some(Err(_))) => return (messages, None),
            Ok(Some(Ok(Message::Binary(frame)))) => {
                messages.push(monti_protocol::codec::decode_server(&frame).expect("valid frame"));
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                return (messages, frame.map(|frame| u16::from(frame.code)));
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Waits until the simulated floor ticks steadily: every simulated change is committed before it
/// reaches the floor, and the first commits (the whole roster's first states) take a while in a
/// debug build on a busy machine.
async fn until_ticking(server: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let start = server.metric("monti_ticks_total").await;
    while server.metric("monti_ticks_total").await < start + 20.0 {
        assert!(
            Instant::now() < deadline,
            "the simulated floor never got going"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn busy_config(db: &TestDb) -> monti_server::config::Config {
    let mut config = test_config(db);
    // About 1,200 simulated changes a second: enough for a tick of changes every 20 ms, and
    // within what a debug build's ingest writer stores on a busy machine.
    config.simulator.agents = 2_000;
    config.simulator.speed = 20.0;
    config.server.tick_ms = 20;
    config.server.queue_ticks = 4;
    config.server.socket_send_buffer = 4096;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_viewer_is_resynced_while_a_fast_one_is_undisturbed() {
    let db = TestDb::sqlite_in_ram();
    let mut config = busy_config(&db);
    config.server.max_resyncs_per_minute = 1_000;
    let server = TestServer::start(config).await;
    until_ticking(&server).await;
    let mut fast = Follower::new(&server.url, "fast", Subscription::default());
    fast.until_live().await.expect("live");
    let mut slow = tiny_buffer_socket(&server).await;
    hello_and_subscribe(&mut slow).await;

    // The slow viewer stops reading for three seconds while the fast one follows.
    let fast_run = async {
        let mut snapshots = 0;
        let mut deltas = 0;
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            match fast.next().await.expect("no fatal error") {
                Step::Snapshot { .. } => snapshots += 1,
                Step::Delta { .. } => deltas += 1,
                Step::Lost { reason, .. } => panic!("fast viewer lost its connection: {reason}"),
                _ => {}
            }
        }
        (snapshots, deltas)
    };
    let (snapshots, deltas) = fast_run.await;
    assert_eq!(snapshots, 0, "the fast viewer was resynced");
    assert!(
        deltas > 20,
        "the fast viewer got only {deltas} deltas in 3 s"
    );

    let (messages, close) = drain(&mut slow, Duration::from_secs(3)).await;
    assert_eq!(close, None, "the slow viewer was closed");
    let complete_snapshots = messages
        .iter()
        .filter(|msg| matches!(msg, ServerMsg::Snapshot(chunk) if chunk.last))
        .count();
    assert!(
        complete_snapshots >= 2,
        "the slow viewer got {complete_snapshots} snapshots, expected a resync"
    );
    assert!(server.metric("monti_resyncs_total").await >= 1.0);

    // What the slow viewer received still folds into the server's floor, gap-free.
    let mut floor = Floor::awaiting_snapshot();
    for msg in &messages {
        floor.apply(msg).expect("folds without a gap");
    }
    drop(slow);
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_cannot_keep_up_is_disconnected_with_a_reason() {
    let db = TestDb::sqlite_in_ram();
    let mut config = busy_config(&db);
    config.server.max_resyncs_per_minute = 0;
    config.server.send_timeout_secs = 2;
    let server = TestServer::start(config).await;
    until_ticking(&server).await;
    let mut slow = tiny_buffer_socket(&server).await;
    hello_and_subscribe(&mut slow).await;
    // Not reading: the server's sends block until it gives up on this viewer.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while server
        .metric_if_reported("monti_slow_clients_dropped_total")
        .await
        .is_none_or(|dropped| dropped < 1.0)
    {
        assert!(tokio::time::Instant::now() < deadline, "never dropped");
        tokio::task::yield_now().await;
    }
    let (messages, close) = drain(&mut slow, Duration::from_secs(5)).await;
    assert_eq!(close, Some(ErrorCode::TooSlow.close_code()));
    assert!(
        matches!(messages.last(), Some(ServerMsg::Error(error)) if error.code == ErrorCode::TooSlow)
    );
    assert!(server.metric("monti_slow_clients_dropped_total").await >= 1.0);
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_tells_viewers_and_flushes_history() {
    let db = TestDb::sqlite();
    let server = TestServer::start(test_config(&db)).await;
    let mut viewer = Connection::connect(&server.url, "test")
        .await
        .expect("connects");
    viewer
        .subscribe(&Subscription::default())
        .await
        .expect("subscribes");
    let url = server.config.database.url.clone();
    // Shut down once the simulator's opening states (one per agent) are stored.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while server
        .metric_if_reported(r#"monti_ingest_events_total{source="simulator",outcome="applied"}"#)
        .await
        .is_none_or(|applied| applied < 300.0)
    {
        assert!(tokio::time::Instant::now() < deadline, "no opening states");
        tokio::task::yield_now().await;
    }
    server.cancel();
    let reason = loop {
        match viewer.recv().await {
            Ok(_) => continue,
            Err(err) => break err,
        }
    };
    assert!(
        matches!(
            reason,
            monti_client::ClientError::Refused {
                code: ErrorCode::ShuttingDown,
                ..
            }
        ),
        "{reason}"
    );
    server.stop().await.expect("clean shutdown");
    let db_after = monti_server::store::db::Db::connect(&monti_server::config::DatabaseConfig {
        url,
        ..Default::default()
    })
    .await
    .expect("reopen");
    assert!(
        db_after.count_history().await.expect("count") >= 300,
        "initial states are in the history"
    );
    db_after.close().await;
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_refused_with_503() {
    let db = TestDb::sqlite();
    let mut config = test_config(&db);
    config.server.max_connections = 2;
    let server = TestServer::start(config).await;
    let _first = Connection::connect(&server.url, "one")
        .await
        .expect("first");
    let _second = Connection::connect(&server.url, "two")
        .await
        .expect("second");
    let third = Connection::connect(&server.url, "three").await;
    assert!(
        matches!(
            third,
            Err(monti_client::ClientError::Refused {
                code: ErrorCode::TooManyConnections,
                ..
            })
        ),
        "{:?}",
        third.err()
    );
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_floor_still_sends_keepalives() {
    let db = TestDb::sqlite();
    let mut config = test_config(&db);
    config.simulator.enabled = false;
    config.server.keepalive_secs = 1;
    let server = TestServer::start(config).await;
    let mut viewer = Connection::connect(&server.url, "quiet")
        .await
        .expect("connects");
    viewer
        .subscribe(&Subscription::default())
        .await
        .expect("subscribes");
    let started = Instant::now();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), viewer.recv())
            .await
            .expect("a message")
            .expect("ok");
        if let ServerMsg::Keepalive(keepalive) = msg {
            assert_eq!(keepalive.seq, 1);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_scoped_viewer_receives_only_its_team() {
    let db = TestDb::sqlite();
    let server = TestServer::start(test_config(&db)).await;
    let sub = Subscription {
        teams: vec![TeamId(2)],
        ..Subscription::default()
    };
    let mut viewer = Follower::new(&server.url, "scoped", sub);
    viewer.until_live().await.expect("live");
    for _ in 0..40 {
        viewer.next().await.expect("ok");
    }
    let floor = viewer.floor().clone();
    assert!(floor.n_agents() > 0);
    assert!(floor.agents().all(|agent| agent.info.team == TeamId(2)));
    assert_eq!(
        floor.teams().map(|team| team.id).collect::<Vec<_>>(),
        vec![TeamId(2)]
    );
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_reconnects_and_resyncs_after_the_server_restarts() {
    let db = TestDb::sqlite();
    let config = test_config(&db);
    let server = TestServer::start(config.clone()).await;
    let addr = server.addr;
    let mut viewer = Follower::new(&server.url, "survivor", Subscription::default());
    viewer.until_live().await.expect("live");
    assert_eq!(viewer.floor().n_agents(), 300);
    server.stop().await.expect("stops");

    // The viewer notices, then keeps retrying while the server is down.
    let mut losses = 0;
    while losses < 2 {
        if let Step::Lost { .. } = viewer.next().await.expect("not fatal") {
            losses += 1;
        }
    }
    assert!(
        viewer.floor().is_ready(),
        "the last floor stays visible while reconnecting"
    );

    // The server comes back with a smaller floor: same roster version number, other roster.
    let mut smaller = config.clone();
    smaller.simulator.agents = 250;
    let server = TestServer::start_at(addr, smaller).await;
    let resynced = async {
        loop {
            if let Step::Snapshot { .. } = viewer.next().await.expect("not fatal") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), resynced)
        .await
        .expect("resynced in time");
    assert_eq!(viewer.floor().n_agents(), 250);
    let fresh = fresh_view(&server, &Subscription::default()).await;
    assert_eq!(viewer.floor().agents().count(), fresh.agents().count());
    assert!(
        viewer
            .floor()
            .agents()
            .zip(fresh.agents())
            .all(|(a, b)| a.info == b.info)
    );
    server.stop().await.expect("stops");
    db.drop_database().await;
}
