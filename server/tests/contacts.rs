//! Contact events end to end: stored once, folded into legs per queue whatever order they came
//! in, kept across a restart, refused with reasons; on SQLite and PostgreSQL.

mod common;

use common::{TestDb, TestServer, ingest_config, test_config};
use monti_client::follow::Follower;
use monti_protocol::ingest::{ContactLegJson, EventBatchResultJson, Outcome};
use monti_protocol::message::Subscription;
use monti_protocol::queue::QueueNow;
use serde_json::{Value, json};

fn now_ms() -> u64 {
    monti_server::core::clock::Clock::system().now_ms()
}

fn contact(id: &str, contact: &str, kind: &str, at_ms: u64) -> Value {
    json!({"event_id": id, "contact": contact, "kind": kind, "at_ms": at_ms})
}

fn queued(id: &str, contact_id: &str, at_ms: u64, queue: &str) -> Value {
    let mut event = contact(id, contact_id, "queued", at_ms);
    event["queue"] = json!(queue);
    event
}

fn by(id: &str, contact_id: &str, kind: &str, at_ms: u64, agent: &str) -> Value {
    let mut event = contact(id, contact_id, kind, at_ms);
    event["agent"] = json!(agent);
    event
}

async fn send(server: &TestServer, events: Vec<Value>) -> EventBatchResultJson {
    let (status, body) = server
        .post("/api/v1/contact-events", &json!({ "events": events }))
        .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).expect("a batch result")
}

async fn legs(server: &TestServer, query: &str) -> Vec<ContactLegJson> {
    let response = server.get(&format!("/api/v1/contacts?{query}")).await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("legs")
}

/// Each leg as (contact, queue, outcome, wait until answered).
fn summary(legs: &[ContactLegJson]) -> Vec<(&str, &str, &str, Option<u64>)> {
    legs.iter()
        .map(|leg| {
            (
                leg.contact.as_str(),
                leg.queue.as_str(),
                leg.outcome.as_str(),
                leg.connected_ms.map(|ms| ms - leg.queued_ms),
            )
        })
        .collect()
}

/// Follows the stream until the queue named `name` satisfies `wanted`; its figures then.
async fn until_queue(
    viewer: &mut Follower,
    name: &str,
    wanted: impl Fn(&QueueNow) -> bool,
) -> QueueNow {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let seen = {
            let floor = viewer.floor();
            (floor.queues())
                .find(|queue| queue.info.name == name)
                .map(|queue| queue.now)
        };
        if let Some(now) = seen.filter(|now| wanted(now)) {
            return now;
        }
        tokio::time::timeout_at(deadline, viewer.next())
            .await
            .unwrap_or_else(|_| panic!("queue {name} never got there; last seen {seen:?}"))
            .expect("the stream goes on");
    }
}

fn queue_viewer(server: &TestServer) -> Follower {
    let sub = Subscription {
        queues: true,
        ..Subscription::default()
    };
    Follower::new(&server.url, "queue viewer", sub)
}

fn outcomes(result: &EventBatchResultJson) -> Vec<Outcome> {
    result.results.iter().map(|r| r.outcome).collect()
}

async fn contacts_fold_into_legs(db: TestDb) {
    let config = ingest_config(&db);
    let server = TestServer::start(config.clone()).await;
    let t = now_ms() - 600_000;
    // c1: answered in Billing Voice after 12 s. Sent out of order: the end first.
    let first = send(
        &server,
        vec![
            contact("c1-4", "c1", "ended", t + 300_000),
            queued("c1-1", "c1", t, "Billing Voice"),
            by("c1-3", "c1", "connected", t + 12_000, "ext-anna"),
            by("c1-2", "c1", "offered", t + 8_000, "ext-anna"),
        ],
    )
    .await;
    assert_eq!(outcomes(&first), [Outcome::Applied; 4]);
    // c2: abandoned after 40 s in a chat queue that the event creates; c3: overflows from
    // Billing Voice to Sales Voice and is answered there, its events over two batches. A
    // retried batch is all duplicates, and an event repeated inside a batch counts once.
    let mut chat = queued("c2-1", "c2", t + 1_000, "Billing Chat");
    chat["channel"] = json!("chat");
    let second = send(
        &server,
        vec![
            chat,
            contact("c2-2", "c2", "ended", t + 41_000),
            queued("c3-1", "c3", t + 2_000, "Billing Voice"),
            queued("c3-1", "c3", t + 2_000, "Billing Voice"),
        ],
    )
    .await;
    assert_eq!(
        outcomes(&second),
        [
            Outcome::Applied,
            Outcome::Applied,
            Outcome::Applied,
            Outcome::Duplicate
        ]
    );
    let third = send(
        &server,
        vec![
            by("c3-3", "c3", "connected", t + 70_000, "ext-ben"),
            queued("c3-2", "c3", t + 60_000, "Sales Voice"),
            contact("c1-4", "c1", "ended", t + 300_000),
        ],
    )
    .await;
    assert_eq!(
        outcomes(&third),
        [Outcome::Applied, Outcome::Applied, Outcome::Duplicate]
    );
    let check = |legs: &[ContactLegJson]| {
        assert_eq!(
            summary(legs),
            [
                ("c1", "Billing Voice", "answered", Some(12_000)),
                ("c2", "Billing Chat", "abandoned", None),
                ("c3", "Billing Voice", "transferred", None),
                ("c3", "Sales Voice", "connected", Some(10_000)),
            ]
        );
    };
    let all = legs(&server, &format!("from={}", t - 1)).await;
    check(&all);
    assert_eq!(all[0].agent.as_deref(), Some("ext-anna"));
    assert_eq!(all[1].ended_ms, Some(t + 41_000));
    let sales = legs(&server, &format!("from={}&queue=Sales%20Voice", t - 1)).await;
    assert_eq!(sales.len(), 1);
    // One agent's contacts (the agent panel's last contacts), once the floor knows the agent;
    // an agent it does not know is not found rather than an empty list.
    let (status, body) = server
        .post(
            "/api/v1/events",
            &json!({"events": [{"event_id": "s-anna", "agent": "ext-anna", "state": "available",
                                "since_ms": t + 300_000}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    server.settle().await;
    let anna = legs(&server, &format!("from={}&agent=ext-anna", t - 1)).await;
    assert_eq!(
        summary(&anna),
        [("c1", "Billing Voice", "answered", Some(12_000))]
    );
    let unknown = server
        .get(&format!("/api/v1/contacts?from={}&agent=ext-ben", t - 1))
        .await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        server
            .metric(r#"monti_ingest_contact_events_total{source="api",outcome="applied"}"#)
            .await,
        9.0
    );
    // Stored, not kept in memory: a restarted server answers the same.
    server.stop().await.expect("stops");
    let server = TestServer::start(config).await;
    check(&legs(&server, &format!("from={}", t - 1)).await);
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_fold_into_legs_on_sqlite() {
    contacts_fold_into_legs(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_fold_into_legs_on_postgres() {
    if let Some(db) = TestDb::postgres().await {
        contacts_fold_into_legs(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_contact_events_are_refused_one_by_one_with_reasons() {
    let db = TestDb::sqlite();
    let server = TestServer::start(ingest_config(&db)).await;
    let t = now_ms() - 1_000;
    let mut wrong_channel = queued("x4", "c", t, "Q");
    wrong_channel["channel"] = json!("fax");
    let result = send(
        &server,
        vec![
            contact("x1", "c", "queued", t),
            contact("x2", "c", "connected", t),
            contact("x3", "c", "teleported", t),
            wrong_channel,
            queued("x5", "c", t + 24 * 3_600_000, "Q"),
            json!({"event_id": "x6", "contact": "c"}),
            queued("ok", "c", t, "Q"),
        ],
    )
    .await;
    let reasons: Vec<(Outcome, String)> = result
        .results
        .iter()
        .map(|r| (r.outcome, r.reason.clone().unwrap_or_default()))
        .collect();
    for (idx, words) in [
        "names its queue",
        "names its agent",
        "unknown kind \"teleported\"",
        "unknown channel \"fax\"",
        "in the future",
        "missing field",
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(reasons[idx].0, Outcome::Refused, "{reasons:?}");
        assert!(reasons[idx].1.contains(words), "{idx}: {reasons:?}");
    }
    assert_eq!(reasons[6].0, Outcome::Applied);
    assert_eq!(result.refused, 6);
    assert_eq!(
        server
            .metric(r#"monti_ingest_contact_events_total{source="api",outcome="refused"}"#)
            .await,
        6.0
    );
    let (status, body) = server
        .post("/api/v1/contact-events", &json!({"events": 1}))
        .await;
    assert_eq!(status, 422, "{body}");
    server.stop().await.expect("stops");
    db.drop_database().await;
}

/// The simulator's contacts go the same way: a simulated half hour at 600x stores contacts in
/// the simulated queues, answered by simulated agents or abandoned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulators_contacts_are_stored() {
    let db = TestDb::sqlite();
    let mut config = test_config(&db);
    config.simulator.speed = 600.0;
    config.simulator.duration_minutes = 30;
    let layout = monti_server::sources::sim::layout(&config.simulator);
    let server = TestServer::start(config).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let legs = loop {
        let legs = legs(&server, "").await;
        let ended = |outcome: &str| legs.iter().any(|leg| leg.outcome == outcome);
        if ended("answered") && ended("abandoned") {
            break legs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no answered and abandoned contacts yet: {legs:?}"
        );
        tokio::task::yield_now().await;
    };
    let queues: Vec<&str> = layout
        .queues
        .iter()
        .map(|queue| queue.name.as_str())
        .collect();
    for leg in &legs {
        assert!(queues.contains(&leg.queue.as_str()), "{leg:?}");
        if leg.outcome == "answered" {
            let agent = leg.agent.as_deref().unwrap_or_default();
            assert!(agent.starts_with("sim-"), "{leg:?}");
            assert!(leg.connected_ms >= Some(leg.queued_ms), "{leg:?}");
        }
    }
    assert!(
        server
            .metric(r#"monti_ingest_contact_events_total{source="simulator",outcome="applied"}"#)
            .await
            > 100.0
    );
    server.stop().await.expect("stops");
    db.drop_database().await;
}

const EVENTBRIDGE_KEY: &str = "eventbridge-key-for-tests";

async fn deliver(server: &TestServer, key: &str, body: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!(
            "{}{}",
            server.url,
            monti_server::sources::connect_contacts::PATH
        ))
        .header("content-type", "application/json")
        .header("x-monti-key", key)
        .body(body.to_owned())
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn aws_sample(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/aws/contact-event-{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).expect("the sample is there")
}

/// AWS's own sample contact events, as an EventBridge API destination posts them: stored as
/// legs, the same facts twice stored once, other event types acknowledged and skipped, a wrong
/// key refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amazon_connect_contact_events_from_eventbridge() {
    let db = TestDb::sqlite();
    let mut config = ingest_config(&db);
    let off = TestServer::start(config.clone()).await;
    let (status, _) = deliver(&off, "", &aws_sample("connected")).await;
    assert_eq!(status, 404, "off without a key");
    off.stop().await.expect("stops");
    config.amazon_connect.eventbridge_key = EVENTBRIDGE_KEY.to_owned();
    config.amazon_connect.queue_names.insert(
        "12345678-1234-1234-1234-123456789012".to_owned(),
        "Billing Voice".to_owned(),
    );
    let server = TestServer::start(config).await;
    let (status, body) = deliver(&server, "wrong-key-wrong-key", &aws_sample("connected")).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("x-monti-key")
    );
    for name in ["connected", "routing-criteria"] {
        let (status, body) = deliver(&server, EVENTBRIDGE_KEY, &aws_sample(name)).await;
        assert_eq!(
            (status, &body["stored"]),
            (200, &json!(2)),
            "{name}: {body}"
        );
    }
    // EventBridge retries: the same event again changes nothing.
    let (status, _) = deliver(&server, EVENTBRIDGE_KEY, &aws_sample("connected")).await;
    assert_eq!(status, 200);
    let (status, body) = deliver(
        &server,
        EVENTBRIDGE_KEY,
        &aws_sample("routing-step-expired"),
    )
    .await;
    assert_eq!(
        (status, &body["skipped"]),
        (200, &json!("CONTACT_DATA_UPDATED"))
    );
    let (status, body) = deliver(&server, EVENTBRIDGE_KEY, "{\"detail-type\": ").await;
    assert_eq!(status, 400, "{body}");
    let legs = legs(&server, "from=0").await;
    assert_eq!(
        summary(&legs),
        [
            (
                "11111111-1111-1111-1111-111111111111",
                "Billing Voice",
                "connected",
                Some(5_000)
            ),
            (
                "12345678-1234-1234-1234-123456789012",
                "Billing Voice",
                "connected",
                Some(5_000)
            ),
        ]
    );
    let metric = |outcome: &str| {
        format!(
            r#"monti_ingest_contact_events_total{{source="amazon_connect",outcome="{outcome}"}}"#
        )
    };
    assert_eq!(server.metric(&metric("applied")).await, 4.0);
    assert_eq!(server.metric(&metric("duplicate")).await, 2.0);
    assert_eq!(server.metric(&metric("skipped")).await, 1.0);
    server.stop().await.expect("stops");
    db.drop_database().await;
}

/// Queue figures over a window and per interval, from known contacts: the service level by the
/// configured formula (the default leaves short abandons out), speed of answer, waiting now,
/// and the intervals as JSON and CSV; the same figures live on the stream, kept across a
/// restart, and a contact answered reaches a viewer in the next tick.
async fn queue_figures_count_what_the_contacts_did(db: TestDb) {
    let config = ingest_config(&db);
    let server = TestServer::start(config.clone()).await;
    let mut viewer = queue_viewer(&server);
    viewer.until_live().await.expect("live");
    let t = now_ms() - 20 * 60_000;
    let q = "Billing Voice";
    let result = send(
        &server,
        vec![
            queued("1a", "c1", t, q),
            by("1b", "c1", "connected", t + 12_000, "a"),
            contact("1c", "c1", "ended", t + 200_000),
            queued("2a", "c2", t + 1_000, q),
            by("2b", "c2", "connected", t + 41_000, "b"),
            queued("3a", "c3", t + 2_000, q),
            contact("3b", "c3", "ended", t + 4_000),
            queued("4a", "c4", t + 3_000, q),
            contact("4b", "c4", "ended", t + 63_000),
            queued("5a", "c5", t + 5_000, q),
        ],
    )
    .await;
    assert_eq!(result.applied, 10);
    let response = server.get("/api/v1/queues/summary?window=60m").await;
    assert_eq!(response.status(), 200);
    let raw: Value = response.json().await.expect("json");
    // The counts sit beside the queue in the JSON, as the apps and scripts read them.
    assert_eq!(raw["queues"][0]["offered"], json!(5), "{raw}");
    let summary: monti_protocol::rest::QueueSummaryJson =
        serde_json::from_value(raw).expect("a summary");
    assert_eq!(
        summary.service_level_formula,
        "answered within target / (answered + abandoned - short abandons)"
    );
    let [billing] = summary.queues.as_slice() else {
        panic!("{summary:?}");
    };
    assert_eq!(
        (
            billing.counts.offered,
            billing.counts.answered,
            billing.counts.answered_in_target,
            billing.counts.abandoned,
            billing.counts.abandoned_short,
            billing.waiting,
        ),
        (5, 2, 1, 2, 1, 1)
    );
    assert_eq!(billing.counts.service_level, Some(1.0 / 3.0));
    assert_eq!(billing.counts.asa_secs, Some(26.0));
    assert_eq!(billing.counts.longest_wait_secs, 60.0);
    assert_eq!(billing.oldest_waiting_since_ms, Some(t + 5_000));
    assert_eq!(billing.queue.target_secs, 20);
    // Nothing in the last 15 minutes but the one still waiting.
    let recent: monti_protocol::rest::QueueSummaryJson = server
        .get("/api/v1/queues/summary?window=15m")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        (recent.queues[0].counts.offered, recent.queues[0].waiting),
        (0, 1)
    );
    assert_eq!(
        recent.queues[0].counts.service_level, None,
        "no figure, not 0 %"
    );
    let bad = server.get("/api/v1/queues/summary?window=2h").await;
    assert_eq!(bad.status(), 400);
    // Intervals of the day the contacts came in, in the server's own time zone (the default).
    use chrono::TimeZone;
    let day = chrono::Local
        .timestamp_millis_opt(t as i64)
        .single()
        .expect("a time")
        .format("%Y-%m-%d")
        .to_string();
    let rows: Vec<monti_protocol::rest::IntervalJson> = server
        .get(&format!("/api/v1/intervals?day={day}&interval=30"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(rows.iter().map(|row| row.counts.offered).sum::<u64>(), 5);
    assert!(
        rows.iter()
            .all(|row| row.from_ms % (30 * 60_000) == 0 || row.from_ms <= t)
    );
    let csv = server
        .get(&format!(
            "/api/v1/intervals?day={day}&format=csv&queue=Billing%20Voice"
        ))
        .await;
    assert_eq!(
        csv.headers()["content-type"].to_str().unwrap_or_default(),
        "text/csv; charset=utf-8"
    );
    let text = csv.text().await.expect("text");
    let mut lines = text.lines();
    assert!(
        lines
            .next()
            .unwrap_or_default()
            .starts_with("queue,interval_start,offered,answered,answered_in_target,abandoned,")
    );
    let total: u64 = lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields[0], "Billing Voice", "{line}");
            fields[2].parse::<u64>().expect("offered")
        })
        .sum();
    assert_eq!(total, 5);
    let queues: Vec<monti_protocol::rest::QueueJson> = server
        .get("/api/v1/queues")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(queues.len(), 1);

    // The stream says what REST says, counted since midnight like `window=today`.
    let today: monti_protocol::rest::QueueSummaryJson = server
        .get("/api/v1/queues/summary?window=today")
        .await
        .json()
        .await
        .expect("json");
    let counted = today.queues[0].counts.offered;
    let live = until_queue(&mut viewer, q, |now| {
        now.waiting == 1 && now.today.offered == counted
    })
    .await;
    assert_eq!(live.oldest_waiting_since_ms, Some(t + 5_000));
    let rules = viewer.floor().queue_rules();
    let streamed = monti_protocol::rest::QueueCountsJson::of(&live.today, rules.service_level);
    assert_eq!(streamed, today.queues[0].counts);
    assert_eq!(rules.recent_minutes, 15);
    assert_eq!(
        live.recent.offered, 0,
        "nothing entered in the last 15 minutes"
    );
    // A restart rebuilds the figures from the database.
    server.stop().await.expect("stops");
    let server = TestServer::start(config).await;
    let mut viewer = queue_viewer(&server);
    viewer.until_live().await.expect("live");
    let rebuilt = until_queue(&mut viewer, q, |_| true).await;
    assert_eq!(rebuilt, live);
    // The waiting contact is answered: the next tick says so.
    let answered_at = now_ms();
    send(&server, vec![by("5b", "c5", "connected", answered_at, "a")]).await;
    let after = until_queue(&mut viewer, q, |now| now.waiting == 0).await;
    assert_eq!(after.oldest_waiting_since_ms, None);
    // (Counted on the day it entered the queue: twenty minutes ago may be yesterday.)
    if monti_server::core::clock::Zone::Local.midnight(answered_at) <= t + 5_000 {
        assert_eq!(after.today.answered, live.today.answered + 1);
    }
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_figures_on_sqlite() {
    queue_figures_count_what_the_contacts_did(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_figures_on_postgres() {
    if let Some(db) = TestDb::postgres().await {
        queue_figures_count_what_the_contacts_did(db).await;
    }
}

/// The same samples through Amazon Data Firehose (an EventBridge rule whose target is a
/// Firehose stream, as the Terraform stack makes it): one event per record, the stream's access
/// key, Firehose's answers; a record that cannot be read is skipped, not the delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amazon_connect_contact_events_through_firehose() {
    use base64::Engine;
    let db = TestDb::sqlite();
    let mut config = ingest_config(&db);
    config.amazon_connect.access_key = "firehose-key-for-contact-tests".to_owned();
    config.amazon_connect.queue_names.insert(
        "12345678-1234-1234-1234-123456789012".to_owned(),
        "Billing Voice".to_owned(),
    );
    let server = TestServer::start(config).await;
    let record =
        |text: &str| json!({"data": base64::engine::general_purpose::STANDARD.encode(text)});
    let delivery = json!({
        "requestId": "req-1",
        "timestamp": now_ms(),
        "records": [
            record(&aws_sample("connected")),
            record(&aws_sample("routing-criteria")),
            record(&aws_sample("routing-step-expired")),
            {"data": "not base64 at all!"},
        ],
    });
    let post = |key: &'static str| {
        reqwest::Client::new()
            .post(format!(
                "{}{}",
                server.url,
                monti_server::sources::connect_contacts::FIREHOSE_PATH
            ))
            .header("x-amz-firehose-access-key", key)
            .header("x-amz-firehose-request-id", "req-1")
            .json(&delivery)
            .send()
    };
    let refused = post("wrong-key-wrong-key-wrong").await.expect("request");
    assert_eq!(refused.status(), 401);
    let answer = post("firehose-key-for-contact-tests")
        .await
        .expect("request");
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.expect("json");
    assert_eq!(body["requestId"], "req-1");
    assert!(body.get("errorMessage").is_none(), "{body}");
    let legs = legs(&server, "from=0").await;
    assert_eq!(legs.len(), 2, "{legs:?}");
    assert!(legs.iter().all(|leg| leg.queue == "Billing Voice"));
    let skipped = server
        .metric(r#"monti_ingest_contact_events_total{source="amazon_connect",outcome="skipped"}"#)
        .await;
    let refused = server
        .metric(r#"monti_ingest_contact_events_total{source="amazon_connect",outcome="refused"}"#)
        .await;
    assert_eq!((skipped, refused), (1.0, 1.0));
    server.stop().await.expect("stops");
}
