//! Names from outside, against a real server and real viewers: whatever ingest accepts, every
//! viewer decodes; what a viewer could not decode (too long, invisible characters) is refused at
//! the API with the reason, cut to fit from Amazon Connect, and cut for viewers when an older
//! server stored it.

mod common;

use std::time::Duration;

use base64::Engine;
use common::{TestDb, TestServer, ingest_config};
use monti_client::connection::Connection;
use monti_client::follow::{Follower, Step};
use monti_protocol::floor::Floor;
use monti_protocol::message::{ServerMsg, Subscription};
use monti_protocol::names::{CUT_MARK, MAX_NAME_BYTES};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

fn now_ms() -> u64 {
    monti_server::core::clock::Clock::system().now_ms()
}

fn event(id: &str, agent: &str, name: &str, team: &str, site: &str, reason: &str) -> Value {
    json!({
        "event_id": id, "agent": agent, "state": "not_ready", "reason": reason,
        "since_ms": now_ms(), "name": name, "team": team, "site": site,
    })
}

/// A fresh snapshot of the whole floor, as a new viewer decodes it.
async fn fresh_floor(url: &str) -> Floor {
    let mut follower = Follower::new(url, "names test", Subscription::default());
    loop {
        match tokio::time::timeout(Duration::from_secs(30), follower.next())
            .await
            .expect("a snapshot within 30 s")
            .expect("follows")
        {
            Step::Snapshot { .. } => return follower.floor().clone(),
            Step::Lost { reason, .. } => panic!("a new viewer lost the stream: {reason}"),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_a_viewer_could_not_show_are_refused_with_the_reason() {
    let db = TestDb::sqlite();
    let server = TestServer::start(ingest_config(&db)).await;
    let long = "L".repeat(MAX_NAME_BYTES + 1);
    let cases = [
        (
            "long name",
            event("e1", "a1", &long, "T", "S", "lunch"),
            "name is 257 bytes long",
        ),
        (
            "long team",
            event("e2", "a2", "Anna", &long, "S", "lunch"),
            "team is 257 bytes",
        ),
        (
            "long reason",
            event("e3", "a3", "Anna", "T", "S", &long),
            "reason is 257 bytes",
        ),
        (
            "bidi override",
            event("e4", "a4", "Anna\u{202E}greB", "T", "S", "lunch"),
            "U+202E",
        ),
        (
            "zero width",
            event("e5", "a5", "Anna", "T\u{200B}", "S", "lunch"),
            "U+200B",
        ),
        (
            "bidi in the agent id",
            event("e6", "a\u{2066}6", "Anna", "T", "S", "lunch"),
            "U+2066",
        ),
    ];
    let events: Vec<Value> = cases.iter().map(|(_, event, _)| event.clone()).collect();
    let (status, body) = server
        .post("/api/v1/events", &json!({ "events": events }))
        .await;
    assert_eq!(status, 200, "{body}");
    for (index, (what, _, why)) in cases.iter().enumerate() {
        let result = &body["results"][index];
        assert_eq!(result["outcome"], "refused", "{what}: {result}");
        let reason = result["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(why), "{what}: {reason}");
    }
    // The roster API, all or nothing.
    let (status, body) = server
        .post(
            "/api/v1/roster",
            &json!({ "teams": [{ "name": format!("Sales\u{202E}") }] }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("U+202E"),
        "{body}"
    );
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatever_ingest_accepts_every_viewer_decodes() {
    let db = TestDb::sqlite();
    let server = TestServer::start(ingest_config(&db)).await;
    // A viewer that follows throughout: it must never lose the stream to a frame it cannot read.
    let mut watcher = Follower::new(&server.url, "watcher", Subscription::default());
    loop {
        if let Step::Snapshot { .. } = watcher.next().await.expect("follows") {
            break;
        }
    }
    // Names of any characters and lengths around the limit, including the invisible ones.
    let name = proptest::prop_oneof![
        6 => "[a-zA-Z0-9äöüß王 .'-]{1,40}",
        1 => "[äöü王]{80,90}", // 160 to 270 bytes: some over the limit
        1 => ".{1,300}",
        1 => "[a-z]{1,5}[\u{202E}\u{200B}\u{0007}\u{FEFF}\u{2066}][a-z]{1,5}",
    ];
    let mut runner = TestRunner::deterministic();
    let mut accepted = 0;
    for round in 0..40 {
        let mut draw = || name.new_tree(&mut runner).expect("value").current();
        let events: Vec<Value> = (0..5)
            .map(|i| {
                event(
                    &format!("p{round}-{i}"),
                    &format!("agent-{round}-{i}"),
                    &draw(),
                    &draw(),
                    &draw(),
                    &draw(),
                )
            })
            .collect();
        let (status, body) = server
            .post("/api/v1/events", &json!({ "events": events }))
            .await;
        assert_eq!(status, 200, "{body}");
        accepted += body["results"]
            .as_array()
            .expect("results")
            .iter()
            .filter(|result| result["outcome"] == "applied")
            .count();
    }
    assert!(
        accepted > 10,
        "the strategy should produce acceptable names too: {accepted}"
    );
    // Acknowledged events reach the floor at the next tick: a new viewer then sees them all.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut expected = fresh_floor(&server.url).await;
    while expected.n_agents() < accepted {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the floor never held every agent"
        );
        expected = fresh_floor(&server.url).await;
    }
    // The watcher folds everything up to that sequence number without losing the stream.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while watcher.floor().seq() < expected.seq() {
        let event = tokio::time::timeout_at(deadline, watcher.next())
            .await
            .expect("the watcher catches up")
            .expect("follows");
        assert!(
            !matches!(event, Step::Lost { .. }),
            "the watcher lost the stream: {event:?}"
        );
    }
    assert_eq!(expected.n_agents(), accepted);
    assert!(
        expected
            .agents()
            .all(|record| record.info.name.len() <= MAX_NAME_BYTES)
    );
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amazon_connect_status_name_of_100_kb_is_cut_to_fit() {
    let db = TestDb::sqlite();
    let mut config = ingest_config(&db);
    let key = "firehose-test-access-key-0123456789";
    config.amazon_connect.access_key = key.to_owned();
    let server = TestServer::start(config).await;
    let mut record: Value =
        serde_json::from_str(include_str!("fixtures/amazon-connect-state-change.json"))
            .expect("fixture");
    let status_name = format!("Break{}", "\u{202E}x".repeat(50_000));
    record["CurrentAgentSnapshot"]["AgentStatus"]["Name"] = json!(status_name);
    record["CurrentAgentSnapshot"]["AgentStatus"]["Type"] = json!("NOT_ROUTABLE");
    record["CurrentAgentSnapshot"]["Contacts"] = json!([]);
    let data = base64::engine::general_purpose::STANDARD.encode(record.to_string());
    let response = reqwest::Client::new()
        .post(format!(
            "{}{}",
            server.url,
            monti_server::sources::amazon_connect::PATH
        ))
        .header("X-Amz-Firehose-Access-Key", key)
        .json(&json!({
            "requestId": "r1", "timestamp": now_ms(), "records": [{ "data": data }],
        }))
        .send()
        .await
        .expect("delivered");
    assert_eq!(response.status(), 200);
    // Acknowledged means stored; the floor has it from the next tick on.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut floor = fresh_floor(&server.url).await;
    while floor.reasons().next().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the status never became a reason"
        );
        floor = fresh_floor(&server.url).await;
    }
    let reason = floor.reasons().next().expect("the status became a reason");
    assert!(
        reason.label.len() <= MAX_NAME_BYTES,
        "{}",
        reason.label.len()
    );
    assert!(reason.label.starts_with("Breakxxx") && reason.label.ends_with(CUT_MARK));
    assert!(reason.code.len() <= MAX_NAME_BYTES);
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_name_stored_before_the_limit_is_cut_for_viewers() {
    let db = TestDb::sqlite();
    let server = TestServer::start(ingest_config(&db)).await;
    let (status, body) = server
        .post(
            "/api/v1/events",
            &json!({ "events": [event("e1", "a1", "Anna", "Sales", "Berlin", "lunch")] }),
        )
        .await;
    assert_eq!(body["results"][0]["outcome"], "applied", "{status} {body}");
    server.stop().await.expect("stops");
    // An older server took names of up to 512 bytes (and Amazon Connect's of any length).
    let pool = sqlx::SqlitePool::connect(&db.url())
        .await
        .expect("database");
    let poison = "P".repeat(5_000);
    sqlx::query("update team set name = ?")
        .bind(&poison)
        .execute(&pool)
        .await
        .expect("poisoned");
    sqlx::query("update agent set display_name = ?")
        .bind(format!("{poison}\u{202E}"))
        .execute(&pool)
        .await
        .expect("poisoned");
    pool.close().await;

    let server = TestServer::start(ingest_config(&db)).await;
    let mut viewer = Connection::connect(&server.url, "old data")
        .await
        .expect("connects");
    viewer
        .subscribe(&Subscription::default())
        .await
        .expect("subscribes");
    let ServerMsg::Snapshot(chunk) = viewer.recv().await.expect("the snapshot decodes") else {
        panic!("a snapshot first");
    };
    let header = chunk.header.expect("a header");
    let team = &header.teams[0].name;
    assert!(
        team.len() <= MAX_NAME_BYTES && team.ends_with(CUT_MARK),
        "{team}"
    );
    let agent = &chunk.roster[0].name;
    assert!(agent.len() <= MAX_NAME_BYTES && !agent.contains('\u{202E}'));
    server.stop().await.expect("stops");
    db.drop_database().await;
}
