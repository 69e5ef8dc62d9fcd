//! Several `monti-server` processes sharing one floor through Redis and one PostgreSQL
//! database: changes cross instances, viewers of a killed instance resync elsewhere, and a
//! Redis restart is ridden out. Needs `MONTI_TEST_POSTGRES_URL`, `MONTI_TEST_REDIS_URL` and
//! the `redis-server` program (for the restart).

mod common;

use std::time::{Duration, Instant};

use common::{ServerProcess, TestDb, floor_rows, free_port};
use monti_client::follow::{Follower, Step};
use monti_protocol::message::Subscription;
use monti_protocol::model::StateKind;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

/// The shared Redis for tests, or `None` (skip) unless services are required.
fn redis_url() -> Option<String> {
    common::service("MONTI_TEST_REDIS_URL")
}

fn unique_stream() -> String {
    format!(
        "monti:test:{}:{}",
        std::process::id(),
        monti_server::core::clock::Clock::system().now_ms()
    )
}

async fn start_server(db_url: &str, redis: &str, stream: &str) -> ServerProcess {
    ServerProcess::start(
        &[
            "--database-url",
            db_url,
            "--simulator-enabled",
            "false",
            "--redis-url",
            redis,
            "--redis-stream",
            stream,
            "--tick-ms",
            "50",
            "--keepalive-secs",
            "1",
        ],
        true,
    )
    .await
}

async fn ingest(server: &ServerProcess, id: &str, name: &str, state: &str) {
    let body = json!({"events": [{
        "event_id": id, "agent": name, "name": name, "team": "Scale", "site": "Loopback",
        "state": state, "since_ms": monti_server::core::clock::Clock::system().now_ms() - 10,
    }]});
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/events", server.url))
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200, "ingest at {}", server.url);
    let result: monti_protocol::ingest::EventBatchResultJson = response.json().await.expect("json");
    assert_eq!(result.applied, 1, "{result:?}");
}

/// Follows until the viewer's floor shows agent `name` in `state`.
async fn until_shown(viewer: &mut Follower, name: &str, state: StateKind) {
    let shown = |viewer: &Follower| {
        viewer.floor().agents().any(|agent| {
            agent.info.name == name && agent.live.is_some_and(|live| live.status.kind() == state)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !shown(viewer) {
        assert!(
            Instant::now() < deadline,
            "{name} never showed as {state:?}"
        );
        let _ = tokio::time::timeout(Duration::from_millis(500), viewer.next()).await;
    }
}

/// Waits until `/readyz` answers `status` with a body starting with `prefix`.
async fn until_ready_says(server: &ServerProcess, status: u16, prefix: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = server.get("/readyz").await;
        let code = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        if code == status && body.starts_with(prefix) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "readyz at {} still says {code} {body:?}",
            server.url
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A load balancer in miniature: each connection goes to the first backend that accepts it.
async fn balancer(backends: Vec<u16>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let backends = backends.clone();
            tokio::spawn(async move {
                for port in backends {
                    if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", port)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        return;
                    }
                }
            });
        }
    });
    port
}

type Row = (String, u16, u16, String, Option<String>, u64);

/// Waits (a few ticks at most) until every server's REST floor is the same; returns it.
async fn until_same_floor(servers: &[&ServerProcess]) -> Vec<(String, String, u64)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut floors = Vec::new();
        for server in servers {
            floors.push(rest_rows(floor_rows(&server.url).await));
        }
        if floors.windows(2).all(|pair| pair[0] == pair[1]) {
            return floors.swap_remove(0);
        }
        assert!(Instant::now() < deadline, "the floors differ: {floors:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A viewer's floor in the shape of [`floor_rows`], with names instead of nothing missing.
fn viewer_rows(viewer: &Follower) -> Vec<(String, String, u64)> {
    let floor = viewer.floor();
    let mut rows: Vec<(String, String, u64)> = floor
        .agents()
        .filter_map(|agent| {
            let live = agent.live?;
            Some((
                agent.info.name.clone(),
                live.status.kind().name().to_owned(),
                live.since_ms,
            ))
        })
        .collect();
    rows.sort();
    rows
}

fn rest_rows(rows: Vec<Row>) -> Vec<(String, String, u64)> {
    let mut rows: Vec<(String, String, u64)> =
        rows.into_iter().map(|row| (row.0, row.3, row.5)).collect();
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_share_one_floor_and_viewers_survive_losing_one() {
    let Some(redis) = redis_url() else { return };
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let stream = unique_stream();
    let a = start_server(&db.url(), &redis, &stream).await;
    let b = start_server(&db.url(), &redis, &stream).await;
    let c = start_server(&db.url(), &redis, &stream).await;

    // Ingested at A, seen by a viewer of C; so is a contact waiting in a queue.
    let with_queues = Subscription {
        queues: true,
        ..Subscription::default()
    };
    let mut on_c = Follower::new(&c.url, "viewer on C", with_queues);
    on_c.until_live().await.expect("live on C");
    ingest(&a, "x-1", "Xavier", "on_call").await;
    until_shown(&mut on_c, "Xavier", StateKind::OnCall).await;
    let queued_at = monti_server::core::clock::Clock::system().now_ms() - 3_000;
    let contact = json!({"events": [{
        "event_id": "k-1", "contact": "k", "kind": "queued", "at_ms": queued_at,
        "queue": "Scale Voice",
    }]});
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/contact-events", a.url))
        .json(&contact)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting = (on_c.floor().queues())
            .find(|queue| queue.info.name == "Scale Voice")
            .map(|queue| (queue.now.waiting, queue.now.oldest_waiting_since_ms));
        if waiting == Some((1, Some(queued_at))) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "C never showed the contact: {waiting:?}"
        );
        let _ = tokio::time::timeout(Duration::from_millis(500), on_c.next()).await;
    }

    // A viewer behind the balancer lands on B; B dies; it resyncs through C.
    let front = balancer(vec![b.port, c.port]).await;
    let mut behind = Follower::new(
        &format!("http://127.0.0.1:{front}"),
        "viewer behind the balancer",
        Subscription::default(),
    );
    behind
        .until_live()
        .await
        .expect("live through the balancer");
    until_shown(&mut behind, "Xavier", StateKind::OnCall).await;
    b.kill().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut lost = false;
    loop {
        assert!(Instant::now() < deadline, "the viewer never resynced");
        match tokio::time::timeout(Duration::from_millis(500), behind.next()).await {
            Ok(Ok(Step::Lost { .. })) => lost = true,
            Ok(Ok(Step::Snapshot { .. })) if lost => break,
            Ok(Err(err)) => panic!("fatal: {err}"),
            _ => {}
        }
    }
    ingest(&a, "y-1", "Yara", "wrap_up").await;
    until_shown(&mut behind, "Yara", StateKind::WrapUp).await;
    until_shown(&mut on_c, "Yara", StateKind::WrapUp).await;
    // Every instance left holds the same floor, and the viewers hold it too.
    let on_a = until_same_floor(&[&a, &c]).await;
    assert_eq!(on_a.len(), 2);
    assert_eq!(viewer_rows(&behind), on_a);
    assert_eq!(viewer_rows(&on_c), on_a);

    a.kill().await;
    c.kill().await;
    db.drop_database().await;
}

/// A private `redis-server` the test may kill and restart.
struct PrivateRedis {
    port: u16,
    child: Option<tokio::process::Child>,
}

impl PrivateRedis {
    fn start(port: u16) -> Option<PrivateRedis> {
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn();
        match child {
            Ok(child) => Some(PrivateRedis {
                port,
                child: Some(child),
            }),
            Err(err) => {
                common::missing_service(&format!("cannot start redis-server: {err}"));
                None
            }
        }
    }

    async fn until_up(&self) {
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start");
    }

    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("kill redis");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_ride_out_a_redis_restart() {
    let port = free_port();
    let Some(mut redis) = PrivateRedis::start(port) else {
        return;
    };
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    redis.until_up().await;
    let url = format!("redis://127.0.0.1:{port}");
    let stream = unique_stream();
    let a = start_server(&db.url(), &url, &stream).await;
    let b = start_server(&db.url(), &url, &stream).await;
    let mut on_b = Follower::new(&b.url, "viewer on B", Subscription::default());
    on_b.until_live().await.expect("live on B");
    ingest(&a, "r-1", "Rosa", "available").await;
    until_shown(&mut on_b, "Rosa", StateKind::Available).await;

    // Redis goes away: both keep serving, say they are degraded, and tell their viewers.
    redis.kill().await;
    until_ready_says(&b, 200, "degraded").await;
    until_ready_says(&a, 200, "degraded").await;
    let metrics = b.get("/metrics").await.text().await.expect("metrics");
    assert!(metrics.contains("monti_degraded 1"), "{metrics}");
    assert!(metrics.contains("monti_redis_up 0"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while on_b.degraded().is_none() {
        assert!(Instant::now() < deadline, "the viewer was never told");
        let _ = tokio::time::timeout(Duration::from_millis(500), on_b.next()).await;
    }
    assert!(
        !floor_rows(&b.url).await.is_empty(),
        "B still serves its floor"
    );
    // Ingest still works where it lands; the others cannot hear of it yet.
    ingest(&a, "r-2", "Rosa", "on_call").await;
    ingest(&a, "s-1", "Sven", "ringing").await;

    // Redis is back (empty: no persistence): both recover without a restart of their own.
    let mut redis = PrivateRedis::start(port).expect("restart redis");
    redis.until_up().await;
    until_ready_says(&b, 200, "ready").await;
    until_ready_says(&a, 200, "ready").await;
    until_shown(&mut on_b, "Rosa", StateKind::OnCall).await;
    until_shown(&mut on_b, "Sven", StateKind::Ringing).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while on_b.degraded().is_some() {
        assert!(
            Instant::now() < deadline,
            "the viewer was never told it is over"
        );
        let _ = tokio::time::timeout(Duration::from_millis(500), on_b.next()).await;
    }
    // And changes flow again.
    ingest(&a, "t-1", "Tariq", "on_hold").await;
    until_shown(&mut on_b, "Tariq", StateKind::OnHold).await;
    assert_eq!(until_same_floor(&[&a, &b]).await.len(), 3);
    let metrics = b.get("/metrics").await.text().await.expect("metrics");
    assert!(metrics.contains("monti_degraded 0"), "{metrics}");

    a.kill().await;
    b.kill().await;
    redis.kill().await;
    db.drop_database().await;
}

/// An entry a server cannot read (another version during a rolling upgrade, or damaged) is
/// counted and answered with a reload from the database, never skipped: skipping would leave
/// that server's floor apart from the others until the next reconcile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_shared_entry_makes_a_server_reload_not_skip() {
    let Some(redis_url) = redis_url() else { return };
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let stream = unique_stream();
    let server = start_server(&db.url(), &redis_url, &stream).await;
    let metric = |name: &'static str| {
        let url = server.url.clone();
        async move {
            let text = reqwest::get(format!("{url}/metrics"))
                .await
                .expect("metrics")
                .text()
                .await
                .expect("text");
            text.lines()
                .find_map(|line| {
                    line.strip_prefix(name)?
                        .strip_prefix(' ')?
                        .parse::<f64>()
                        .ok()
                })
                .unwrap_or_else(|| panic!("no metric {name}"))
        }
    };
    let reloads = metric("monti_floor_reloads_total").await;
    assert_eq!(metric("monti_shared_entries_unreadable_total").await, 0.0);
    // What an older server wrote (JSON, no version), then a damaged entry of this version.
    let client = redis::Client::open(redis_url.as_str()).expect("redis");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    for fields in [
        vec![("from", b"older".to_vec()), ("changes", b"[]".to_vec())],
        vec![
            ("from", b"damaged".to_vec()),
            (
                "v",
                monti_server::store::share::SHARED_VERSION
                    .as_bytes()
                    .to_vec(),
            ),
            ("changes", vec![0xff; 9]),
        ],
    ] {
        let _: String = redis::AsyncCommands::xadd(&mut conn, &stream, "*", &fields)
            .await
            .expect("XADD");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric("monti_shared_entries_unreadable_total").await < 2.0 {
        assert!(Instant::now() < deadline, "the entries were not read");
        tokio::task::yield_now().await;
    }
    // An unreadable entry is followed by a reload.
    while metric("monti_floor_reloads_total").await <= reloads {
        assert!(
            Instant::now() < deadline,
            "no reload after unreadable entries"
        );
        tokio::task::yield_now().await;
    }
    drop(server);
    drop(db);
}
