//! Amazon Connect agent events delivered the way Amazon Data Firehose delivers them to an HTTP
//! endpoint, against a real server. Records start from a documented-format example
//! (`fixtures/amazon-connect-state-change.json`) and change what each case needs.

mod common;

use std::time::Duration;

use base64::Engine;
use common::{TestDb, TestServer, ingest_config};
use serde_json::{Value, json};

const KEY: &str = "firehose-test-access-key-0123456789";
const LENA: &str = "Lena Hoffmann";

fn iso(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .expect("time")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/amazon-connect-state-change.json"))
        .expect("fixture")
}

/// A record of `event_type` at `at_ms`, with the agent status and contacts given.
fn record(id: &str, event_type: &str, at_ms: u64, status: (&str, &str), contacts: Value) -> Value {
    let mut event = fixture();
    event["EventId"] = json!(id);
    event["EventType"] = json!(event_type);
    event["EventTimestamp"] = json!(iso(at_ms));
    let snapshot = &mut event["CurrentAgentSnapshot"];
    snapshot["AgentStatus"]["Name"] = json!(status.0);
    snapshot["AgentStatus"]["Type"] = json!(status.1);
    snapshot["AgentStatus"]["StartTimestamp"] = json!(iso(at_ms));
    snapshot["Contacts"] = contacts;
    event
}

fn contact(state: &str, since_ms: u64) -> Value {
    json!([{
        "Channel": "VOICE",
        "ContactId": "0a1b2c3d-0000-4000-8000-000000000001",
        "InitialContactId": null,
        "InitiationMethod": "INBOUND",
        "Queue": {"ARN": "arn:aws:connect:eu-central-1:123456789012:instance/x/queue/basic",
                  "Name": "BasicQueue"},
        "QueueTimestamp": iso(since_ms - 5_000),
        "State": state,
        "StateStartTimestamp": iso(since_ms)
    }])
}

fn encode(record: &Value) -> String {
    base64::engine::general_purpose::STANDARD.encode(record.to_string())
}

async fn deliver(server: &TestServer, key: &str, records: &[String]) -> (u16, Value) {
    let request_id = format!("req-{}", records.len());
    let body = json!({
        "requestId": request_id,
        "timestamp": monti_server::core::clock::Clock::system().now_ms(),
        "records": records.iter().map(|data| json!({"data": data})).collect::<Vec<_>>(),
    });
    let response = reqwest::Client::new()
        .post(format!(
            "{}{}",
            server.url,
            monti_server::sources::amazon_connect::PATH
        ))
        .header("X-Amz-Firehose-Protocol-Version", "1.0")
        .header("X-Amz-Firehose-Request-Id", &request_id)
        .header("X-Amz-Firehose-Access-Key", key)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("a Firehose response");
    assert_eq!(body["requestId"], request_id, "{body}");
    assert!(body["timestamp"].as_u64().is_some(), "{body}");
    (status, body)
}

async fn state_of(server: &TestServer, name: &str) -> (String, Option<String>, u64) {
    server.settle().await;
    let agent = server.agent(name).await.expect("the agent is on the floor");
    (agent.state, agent.reason, agent.since_ms)
}

/// A server whose agents do not go stale while a test runs (staleness has a test of its own,
/// on a clock it moves).
async fn start() -> (TestServer, TestDb) {
    let db = TestDb::sqlite();
    (TestServer::start(connect_config(&db, 600)).await, db)
}

fn connect_config(db: &TestDb, stale_after_secs: u64) -> monti_server::config::Config {
    let mut config = ingest_config(db);
    config.amazon_connect.access_key = KEY.to_owned();
    config.amazon_connect.site_level = 1;
    config.amazon_connect.team_level = 2;
    config.ingest.stale_after_secs = stale_after_secs;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_events_map_to_monti_states_team_and_site() {
    let (server, db) = start().await;
    let t = monti_server::core::clock::Clock::system().now_ms() - 600_000;
    let available = ("Available", "ROUTABLE");
    let steps = [
        (
            record("c1", "LOGIN", t, available, json!([])),
            "available",
            None,
        ),
        (
            record(
                "c2",
                "STATE_CHANGE",
                t + 1_000,
                available,
                contact("CONNECTING", t + 1_000),
            ),
            "ringing",
            None,
        ),
        (
            record(
                "c3",
                "STATE_CHANGE",
                t + 2_000,
                available,
                contact("CONNECTED", t + 2_000),
            ),
            "on_call",
            None,
        ),
        (
            record(
                "c4",
                "STATE_CHANGE",
                t + 3_000,
                available,
                contact("CONNECTED_ONHOLD", t + 3_000),
            ),
            "on_hold",
            None,
        ),
        (
            record(
                "c5",
                "STATE_CHANGE",
                t + 4_000,
                available,
                contact("ENDED", t + 4_000),
            ),
            "wrap_up",
            None,
        ),
        (
            record(
                "c6",
                "STATE_CHANGE",
                t + 5_000,
                ("Lunch Break", "CUSTOM"),
                json!([]),
            ),
            "not_ready",
            Some("lunch_break".to_owned()),
        ),
        (
            record("c7", "LOGOUT", t + 6_000, ("Offline", "OFFLINE"), json!([])),
            "offline",
            None,
        ),
    ];
    for (idx, (event, state, reason)) in steps.iter().enumerate() {
        let (status, body) = deliver(&server, KEY, &[encode(event)]).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            state_of(&server, LENA).await,
            (state.to_string(), reason.clone(), t + 1_000 * idx as u64),
            "after {}",
            event["EventId"]
        );
    }
    let reasons: Vec<Value> = server
        .get("/api/v1/reasons")
        .await
        .json()
        .await
        .expect("json");
    assert!(
        reasons
            .iter()
            .any(|r| r["code"] == "lunch_break" && r["label"] == "Lunch Break"),
        "{reasons:?}"
    );
    let agent = server.agent(LENA).await.expect("Lena");
    let teams: Vec<Value> = server
        .get("/api/v1/teams")
        .await
        .json()
        .await
        .expect("json");
    let sites: Vec<Value> = server
        .get("/api/v1/sites")
        .await
        .json()
        .await
        .expect("json");
    let name_of = |list: &[Value], id: u16| {
        list.iter()
            .find(|entry| entry["id"] == u64::from(id))
            .map(|entry| entry["name"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(name_of(&teams, agent.team).as_deref(), Some("Billing 1"));
    assert_eq!(name_of(&sites, agent.site).as_deref(), Some("Berlin"));

    // Firehose retries a delivery it did not see acknowledged: nothing changes twice.
    let (status, _) = deliver(&server, KEY, &[encode(&steps[2].0)]).await;
    assert_eq!(status, 200);
    assert_eq!(state_of(&server, LENA).await.0, "offline");
    let page: monti_protocol::ingest::HistoryPageJson = server
        .get(&format!(
            "/api/v1/history?agent={}",
            common::urlencode(fixture()["AgentARN"].as_str().expect("arn"))
        ))
        .await
        .json()
        .await
        .expect("history");
    assert_eq!(page.entries.len(), 7);
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_records_are_skipped_and_the_rest_is_stored() {
    let (server, db) = start().await;
    let t = monti_server::core::clock::Clock::system().now_ms() - 60_000;
    let good = record("m1", "LOGIN", t, ("Available", "ROUTABLE"), json!([]));
    let mut no_snapshot = record(
        "m2",
        "STATE_CHANGE",
        t,
        ("Available", "ROUTABLE"),
        json!([]),
    );
    no_snapshot
        .as_object_mut()
        .expect("object")
        .remove("CurrentAgentSnapshot");
    let mut bad_time = record(
        "m3",
        "STATE_CHANGE",
        t,
        ("Available", "ROUTABLE"),
        json!([]),
    );
    bad_time["CurrentAgentSnapshot"]["AgentStatus"]["StartTimestamp"] = json!("at eight");
    let records = [
        encode(&good),
        "this is not base64!".to_owned(),
        base64::engine::general_purpose::STANDARD.encode("{not json"),
        encode(&record(
            "m4",
            "DANCE",
            t,
            ("Available", "ROUTABLE"),
            json!([]),
        )),
        encode(&no_snapshot),
        encode(&bad_time),
    ];
    let (status, body) = deliver(&server, KEY, &records).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(state_of(&server, LENA).await.0, "available");
    let refused = server
        .metric(r#"monti_ingest_events_total{source="amazon_connect",outcome="refused"}"#)
        .await;
    assert_eq!(refused, 5.0);

    // A wrong key, a body that is not a delivery, a compressed body.
    let (status, body) = deliver(&server, "wrong-key-wrong-key-wrong", &records).await;
    assert_eq!(status, 401);
    assert!(body["errorMessage"].as_str().is_some());
    let garbage = reqwest::Client::new()
        .post(format!(
            "{}{}",
            server.url,
            monti_server::sources::amazon_connect::PATH
        ))
        .header("X-Amz-Firehose-Request-Id", "r-garbage")
        .header("X-Amz-Firehose-Access-Key", KEY)
        .body("[1, 2")
        .send()
        .await
        .expect("request");
    assert_eq!(garbage.status(), 400);
    let body: Value = garbage.json().await.expect("json");
    assert_eq!(body["requestId"], "r-garbage");
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_whose_heartbeats_stop_is_shown_stale_until_one_arrives() {
    // The server's time stands still until the test moves it: the agent cannot go stale while
    // the test is slow, only when its silence is made to last.
    let time = monti_server::core::clock::ManualClock::at_system_time();
    let db = TestDb::sqlite();
    let server = TestServer::start_with_clock(connect_config(&db, 10), time.clock()).await;
    let t = time.now_ms() - 1_000;
    let (status, _) = deliver(
        &server,
        KEY,
        &[encode(&record(
            "s1",
            "LOGIN",
            t,
            ("Available", "ROUTABLE"),
            json!([]),
        ))],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(state_of(&server, LENA).await.0, "available");
    // Sweeps later (one a second for 10 s of silence), still not stale...
    server.wait_for_sweeps(2).await;
    assert_eq!(state_of(&server, LENA).await.0, "available");
    // ...11 s of silence, and the next sweep marks it stale...
    time.advance(Duration::from_secs(11));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while state_of(&server, LENA).await.0 != "stale" {
        assert!(tokio::time::Instant::now() < deadline, "never stale");
    }
    assert_eq!(server.metric("monti_agents_stale").await, 1.0);
    // ...and a heartbeat brings the last known state back.
    let heartbeat = record(
        "s2",
        "HEART_BEAT",
        t + 3_000,
        ("Available", "ROUTABLE"),
        json!([]),
    );
    let (status, _) = deliver(&server, KEY, &[encode(&heartbeat)]).await;
    assert_eq!(status, 200);
    assert_eq!(state_of(&server, LENA).await, ("available".into(), None, t));
    server.stop().await.expect("stops");
    db.drop_database().await;
}

/// Posts a raw delivery body (GZIP-compressed when `gzip`), as Firehose does.
async fn deliver_raw(
    server: &TestServer,
    request_id: &str,
    body: Vec<u8>,
    gzip: bool,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!(
            "{}{}",
            server.url,
            monti_server::sources::amazon_connect::PATH
        ))
        .header("Content-Type", "application/json")
        .header("X-Amz-Firehose-Protocol-Version", "1.0")
        .header("X-Amz-Firehose-Request-Id", request_id)
        .header("X-Amz-Firehose-Access-Key", KEY);
    let body = if gzip {
        use std::io::Write;
        request = request.header("Content-Encoding", "gzip");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&body).expect("compresses");
        encoder.finish().expect("compressed")
    } else {
        body
    };
    let response = request.body(body).send().await.expect("request");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("a Firehose response");
    assert_eq!(body["requestId"], request_id, "{body}");
    assert!(body["timestamp"].as_u64().is_some(), "{body}");
    (status, body)
}

/// Waits until the agent named `name` shows `state` (REST reads the floor after its tick).
async fn until_state(
    server: &TestServer,
    name: &str,
    state: &str,
) -> monti_protocol::rest::AgentJson {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let agent = server.agent(name).await;
        if let Some(agent) = agent.as_ref().filter(|agent| agent.state == state) {
            return agent.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never showed {state}: {agent:?}"
        );
        tokio::task::yield_now().await;
    }
}

fn ms(iso: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(iso)
        .expect("time")
        .timestamp_millis() as u64
}

/// AWS's own documented samples (fixtures/aws, made valid JSON and nothing else changed),
/// delivered as Firehose delivers them: without `timestamp`, and compressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amazons_documented_samples_show_what_their_documentation_describes() {
    let (server, db) = start().await;
    let entered = include_str!("fixtures/aws/agent-event-acw-entered.json");
    let left = include_str!("fixtures/aws/agent-event-acw-left.json");
    let heartbeat = include_str!("fixtures/aws/agent-event-heartbeat.json");
    let delivery = |id: &str, samples: &[&str]| {
        // Firehose's schema requires only requestId and records.
        serde_json::to_vec(&json!({
            "requestId": id,
            "records": samples.iter().map(|sample| json!({"data": base64::engine::general_purpose::STANDARD.encode(sample)})).collect::<Vec<_>>(),
        }))
        .expect("json")
    };
    // The call ends: after-contact work from the contact's ENDED time.
    let (status, body) = deliver_raw(&server, "aws-1", delivery("aws-1", &[entered]), false).await;
    assert_eq!(status, 200, "{body}");
    let agent = until_state(&server, "(Removed) (Removed)", "wrap_up").await;
    assert_eq!(agent.since_ms, ms("2019-05-25T18:55:27.017Z"));
    // Work ends: the agent is Available (a status without Type), from the event's time, not
    // from when the status was chosen before the call.
    let (status, body) = deliver_raw(&server, "aws-2", delivery("aws-2", &[left]), true).await;
    assert_eq!(status, 200, "{body}");
    let agent = until_state(&server, "(Removed) (Removed)", "available").await;
    assert_eq!(agent.reason, None);
    assert_eq!(agent.since_ms, ms("2019-05-25T18:55:32.022Z"));
    // The heartbeat sample (an agent MONTI has not seen) and an empty record: taken, counted.
    let mut with_empty: Value =
        serde_json::from_slice(&delivery("aws-3", &[heartbeat])).expect("json");
    with_empty["records"]
        .as_array_mut()
        .expect("records")
        .push(json!({"data": ""}));
    let (status, body) = deliver_raw(
        &server,
        "aws-3",
        serde_json::to_vec(&with_empty).expect("json"),
        true,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let empty = server
        .metric(r#"monti_ingest_events_total{source="amazon_connect",outcome="empty"}"#)
        .await;
    assert_eq!(empty, 1.0);
    // Firehose's own request example: two records that are not agent events, skipped.
    let example = include_str!("fixtures/aws/firehose-request.json");
    let (status, body) = deliver_raw(
        &server,
        "ed4acda5-034f-9f42-bba1-f29aea6d7d8f",
        example.as_bytes().to_vec(),
        false,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let refused = server
        .metric(r#"monti_ingest_events_total{source="amazon_connect",outcome="refused"}"#)
        .await;
    assert_eq!(refused, 2.0);
    // Encodings Firehose never sends, and GZIP that is not.
    let mut request = reqwest::Client::new()
        .post(format!(
            "{}{}",
            server.url,
            monti_server::sources::amazon_connect::PATH
        ))
        .header("X-Amz-Firehose-Request-Id", "r-br")
        .header("X-Amz-Firehose-Access-Key", KEY);
    request = request.header("Content-Encoding", "br").body(example);
    let response = request.send().await.expect("request");
    assert_eq!(response.status(), 415);
    let body: Value = response.json().await.expect("json");
    assert!(
        body["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("GZIP")),
        "{body}"
    );
    let response = reqwest::Client::new()
        .post(format!(
            "{}{}",
            server.url,
            monti_server::sources::amazon_connect::PATH
        ))
        .header("X-Amz-Firehose-Request-Id", "r-fake-gzip")
        .header("X-Amz-Firehose-Access-Key", KEY)
        .header("Content-Encoding", "gzip")
        .body(example)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 400);
    server.stop().await.expect("stops");
    db.drop_database().await;
}

/// Every event type x agent status (with and without `Type`) x contact state, as a table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_type_status_and_contact_state_maps_as_the_table_says() {
    let (server, db) = start().await;
    let t = monti_server::core::clock::Clock::system().now_ms() - 3_600_000;
    let statuses: [(&str, Option<&str>, &str, Option<&str>); 7] = [
        ("Available", Some("ROUTABLE"), "available", None),
        ("Available", None, "available", None),
        ("Offline", Some("OFFLINE"), "offline", None),
        ("Offline", None, "offline", None),
        ("Lunch", Some("CUSTOM"), "not_ready", Some("lunch")),
        ("Lunch", None, "not_ready", Some("lunch")),
        ("Training Day", None, "not_ready", Some("training_day")),
    ];
    let contacts: [(Option<&str>, Option<&str>); 9] = [
        (None, None),
        (Some("INCOMING"), Some("ringing")),
        (Some("PENDING"), Some("ringing")),
        (Some("CONNECTING"), Some("ringing")),
        (Some("CONNECTED"), Some("on_call")),
        (Some("CONNECTED_ONHOLD"), Some("on_hold")),
        (Some("ENDED"), Some("wrap_up")),
        (Some("MISSED"), None),
        (Some("ERROR"), None),
    ];
    let mut n = 0u64;
    for event_type in ["LOGIN", "STATE_CHANGE", "LOGOUT"] {
        for (name, kind, status_state, reason) in statuses {
            for (contact_state, contact_shows) in contacts {
                n += 1;
                let at = t + n * 1_000;
                let mut event = record(
                    &format!("table-{n}"),
                    event_type,
                    at,
                    (name, kind.unwrap_or("")),
                    contact_state.map_or(json!([]), |state| contact(state, at)),
                );
                let agent_status = &mut event["CurrentAgentSnapshot"]["AgentStatus"];
                if kind.is_none() {
                    agent_status.as_object_mut().expect("status").remove("Type");
                }
                let (status, body) = deliver(&server, KEY, &[encode(&event)]).await;
                assert_eq!(status, 200, "{body}");
                let (want, want_reason) = match (event_type, contact_shows) {
                    ("LOGOUT", _) => ("offline", None),
                    (_, Some(shows)) => (shows, None),
                    (_, None) => (status_state, reason),
                };
                let agent = until_state(&server, LENA, want).await;
                // The next row must not pass on this one's state: wait for this one's time.
                let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
                let mut agent = agent;
                while agent.since_ms != at {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "{event_type} {name} {kind:?} {contact_state:?}: {agent:?}"
                    );
                    tokio::task::yield_now().await;
                    agent = until_state(&server, LENA, want).await;
                }
                assert_eq!(
                    agent.reason.as_deref(),
                    want_reason,
                    "{event_type} {name} {kind:?} {contact_state:?}"
                );
            }
        }
    }
    server.stop().await.expect("stops");
    db.drop_database().await;
}

/// Rotating the Firehose key without a redeploy: an administrator makes a new key (its secret
/// shown once, only its hash kept), both work while AWS is switched over, the file's is
/// retired, then the new one; every step through the API the Admin window uses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firehose_key_is_rotated_through_the_admin_api() {
    let (server, db) = start().await;
    let t = monti_server::core::clock::Clock::system().now_ms() - 60_000;
    let batch = |n: u64| {
        vec![encode(&record(
            &format!("r{n}"),
            "HEART_BEAT",
            t + n,
            ("Available", "ROUTABLE"),
            json!([]),
        ))]
    };
    let (status, made) = server
        .post(
            "/api/v1/access/keys",
            &json!({"kind": "firehose", "label": "2026-12 rotation"}),
        )
        .await;
    assert_eq!(status, 200, "{made}");
    let secret = made["secret"]
        .as_str()
        .expect("the secret, once")
        .to_owned();
    let id = made["key"]["id"].as_str().expect("id").to_owned();
    assert!(secret.len() >= 40, "32 random bytes: {secret}");
    assert_eq!(
        deliver(&server, &secret, &batch(1)).await.0,
        200,
        "the new key works"
    );
    assert_eq!(
        deliver(&server, KEY, &batch(2)).await.0,
        200,
        "and the file's still does"
    );

    // The list names both and holds no secret.
    let list = server
        .get("/api/v1/access/keys")
        .await
        .text()
        .await
        .expect("list");
    assert!(
        !list.contains(&secret) && !list.contains("sha256"),
        "{list}"
    );
    let keys: Vec<monti_protocol::access::IngestKeyJson> =
        serde_json::from_str(&list).expect("keys");
    let ids: Vec<&str> = keys.iter().map(|key| key.id.as_str()).collect();
    assert_eq!(ids, ["file-firehose", id.as_str()]);

    let (status, _) = server
        .post("/api/v1/access/keys/file-firehose/retire", &Value::Null)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        deliver(&server, KEY, &batch(3)).await.0,
        401,
        "the file's key is retired"
    );
    assert_eq!(deliver(&server, &secret, &batch(4)).await.0, 200);
    assert_eq!(
        server
            .post("/api/v1/access/keys/file-firehose/retire", &Value::Null)
            .await
            .0,
        404,
        "once"
    );
    let (status, _) = server
        .post(&format!("/api/v1/access/keys/{id}/retire"), &Value::Null)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        deliver(&server, &secret, &batch(5)).await.0,
        404,
        "no key left: the endpoint is off"
    );

    // Refused with why.
    for (body, why) in [
        (
            json!({"kind": "firehose", "label": " "}),
            "1 to 100 characters",
        ),
        (
            json!({"kind": "firehose", "label": "x".repeat(101)}),
            "1 to 100 characters",
        ),
        (json!({"kind": "telex", "label": "a"}), "unknown variant"),
        (json!({"kind": "firehose"}), "missing field"),
    ] {
        let (status, answer) = server.post("/api/v1/access/keys", &body).await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["message"]
                .as_str()
                .is_some_and(|text| text.contains(why)),
            "{answer} should say {why:?}"
        );
    }
    // Audited, the secret nowhere in the log.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = server
            .get("/api/v1/audit?kind=access_change")
            .await
            .text()
            .await
            .expect("audit");
        if log.contains("key \\\"2026-12 rotation\\\" retired")
            && log.contains("configuration file's Firehose key retired")
        {
            assert!(!log.contains(&secret));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "audited: {log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await.expect("stops");
    db.drop_database().await;
}
