//! The ingest API end to end: events, roster sync and history against a real server, on SQLite
//! and PostgreSQL.

mod common;

use common::{TestDb, TestServer, ingest_config};
use monti_protocol::ingest::{EventBatchResultJson, HistoryPageJson, Outcome};
use monti_protocol::rest::TrendJson;
use monti_server::config::UnknownAgents;
use serde_json::{Value, json};

fn now_ms() -> u64 {
    monti_server::core::clock::Clock::system().now_ms()
}

fn event(id: &str, agent: &str, state: &str, since_ms: u64) -> Value {
    json!({"event_id": id, "agent": agent, "state": state, "since_ms": since_ms})
}

async fn send(server: &TestServer, events: Vec<Value>) -> EventBatchResultJson {
    let (status, body) = server
        .post("/api/v1/events", &json!({ "events": events }))
        .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).expect("a batch result")
}

fn outcomes(result: &EventBatchResultJson) -> Vec<Outcome> {
    result.results.iter().map(|r| r.outcome).collect()
}

/// Posts a roster sync that must be refused as a whole, with a message that says `why`.
async fn roster_refused(server: &TestServer, sync: Value, why: &str) {
    let (status, body) = server.post("/api/v1/roster", &sync).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["message"].as_str().unwrap_or_default().contains(why),
        "{body}"
    );
}

async fn events_are_judged_one_by_one(db: TestDb) {
    let server = TestServer::start(ingest_config(&db)).await;
    let t = now_ms() - 60_000;
    let mut anna = event("e1", "ext-anna", "on_call", t);
    anna["name"] = json!("Anna Weber");
    anna["team"] = json!("Billing 1");
    anna["site"] = json!("Berlin");
    let mut lunch = event("e2", "ext-ben", "not_ready", t + 1_000);
    lunch["reason"] = json!("lunch");
    lunch["name"] = json!("Ben Koch");
    let first = send(&server, vec![anna.clone(), lunch.clone()]).await;
    assert_eq!(outcomes(&first), [Outcome::Applied, Outcome::Applied]);
    server.settle().await;
    let anna_now = server.agent("Anna Weber").await.expect("Anna was created");
    assert_eq!((anna_now.state.as_str(), anna_now.since_ms), ("on_call", t));
    let ben = server.agent("Ben Koch").await.expect("Ben was created");
    assert_eq!(
        (ben.state.as_str(), ben.reason.as_deref()),
        ("not_ready", Some("lunch"))
    );
    let teams: Vec<Value> = server
        .get("/api/v1/teams")
        .await
        .json()
        .await
        .expect("teams");
    let names: Vec<&str> = teams.iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(
        names.contains(&"Billing 1") && names.contains(&"Unassigned"),
        "{names:?}"
    );

    // The same batch again changes nothing.
    let again = send(&server, vec![anna, lunch]).await;
    assert_eq!(outcomes(&again), [Outcome::Duplicate, Outcome::Duplicate]);
    assert_eq!(again.duplicates, 2);

    // An older event is history only; a newer one wins; bad events are refused with a reason
    // while the good ones in the same batch are stored.
    let mut wrong_reason = event("e6", "ext-anna", "available", t + 3_000);
    wrong_reason["reason"] = json!("lunch");
    let mixed = send(
        &server,
        vec![
            event("e3", "ext-anna", "available", t - 10_000),
            event("e4", "ext-anna", "wrap_up", t + 2_000),
            event("e5", "ext-anna", "dancing", t + 3_000),
            wrong_reason,
            json!({"event_id": "e7", "agent": "ext-anna"}),
            event("e8", "ext-anna", "on_call", now_ms() + 3_600_000),
            event("e4", "ext-anna", "on_hold", t + 4_000),
        ],
    )
    .await;
    assert_eq!(
        outcomes(&mixed),
        [
            Outcome::Older,
            Outcome::Applied,
            Outcome::Refused,
            Outcome::Refused,
            Outcome::Refused,
            Outcome::Refused,
            Outcome::Duplicate,
        ]
    );
    let reasons: Vec<String> = mixed
        .results
        .iter()
        .filter_map(|r| r.reason.clone())
        .collect();
    assert!(
        reasons[0].contains("unknown state \"dancing\""),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("only a not_ready event has a reason"));
    assert!(reasons[2].contains("missing field"), "{reasons:?}");
    assert!(reasons[3].contains("future"));
    assert_eq!(mixed.results[4].event_id, "e7");
    server.settle().await;
    let anna_now = server.agent("Anna Weber").await.expect("Anna");
    assert_eq!(
        (anna_now.state.as_str(), anna_now.since_ms),
        ("wrap_up", t + 2_000)
    );

    // A team named in an event moves the agent.
    let mut moved = event("e9", "ext-ben", "available", t + 5_000);
    moved["team"] = json!("Sales 2");
    assert_eq!(
        outcomes(&send(&server, vec![moved]).await),
        [Outcome::Applied]
    );
    server.settle().await;
    let ben = server.agent("Ben Koch").await.expect("Ben");
    let teams: Vec<Value> = server
        .get("/api/v1/teams")
        .await
        .json()
        .await
        .expect("teams");
    let sales = teams
        .iter()
        .find(|t| t["name"] == "Sales 2")
        .expect("Sales 2");
    assert_eq!(u64::from(ben.team), sales["id"].as_u64().expect("id"));

    // History: both of Anna's stored events and the older one, oldest first by arrival.
    let page: HistoryPageJson = server
        .get("/api/v1/history?agent=ext-anna")
        .await
        .json()
        .await
        .expect("history");
    let states: Vec<&str> = page.entries.iter().map(|e| e.state.as_str()).collect();
    assert_eq!(states, ["on_call", "available", "wrap_up"]);
    assert_eq!(page.entries[0].event_id.as_deref(), Some("e1"));
    let team: HistoryPageJson = server
        .get("/api/v1/history?team=Sales%202&limit=10")
        .await
        .json()
        .await
        .expect("team history");
    // Ben's history, listed under the team he is in now.
    assert_eq!(team.entries.len(), 2);
    assert!(team.entries.iter().all(|e| e.agent == "ext-ben"));
    // The same history by the names an app shows.
    let by_name: HistoryPageJson = server
        .get("/api/v1/history?name=Anna%20Weber&team=Billing%201&site=Berlin")
        .await
        .json()
        .await
        .expect("history by name");
    assert_eq!(by_name, page);
    for (query, status) in [
        ("name=Anna%20Weber&team=Billing%201&site=Lisbon", 404),
        ("name=Anna%20Weber&team=Sales%202&site=Berlin", 404),
        ("name=Anna%20Weber&team=Billing%201", 400),
        (
            "agent=ext-anna&name=Anna%20Weber&team=Billing%201&site=Berlin",
            400,
        ),
    ] {
        let answer = server.get(&format!("/api/v1/history?{query}")).await;
        assert_eq!(answer.status(), status, "{query}");
    }
    // Namesakes in one team and site: refused with why, never one of them at random.
    let mut namesake = event("e-twin", "ext-anna-2", "available", t + 9_000);
    namesake["name"] = json!("Anna Weber");
    namesake["team"] = json!("Billing 1");
    namesake["site"] = json!("Berlin");
    send(&server, vec![namesake]).await;
    server.settle().await;
    let twins = server
        .get("/api/v1/history?name=Anna%20Weber&team=Billing%201&site=Berlin")
        .await;
    assert_eq!(twins.status(), 400);
    let why: Value = twins.json().await.expect("a JSON error");
    let message = why["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("2 agents are called \"Anna Weber\""),
        "{why}"
    );
    let unknown = server.get("/api/v1/history?agent=nobody").await;
    assert_eq!(unknown.status(), 404);
    let neither = server.get("/api/v1/history").await;
    assert_eq!(neither.status(), 400);

    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_judged_one_by_one_on_sqlite() {
    events_are_judged_one_by_one(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_judged_one_by_one_on_postgres() {
    if let Some(db) = TestDb::postgres().await {
        events_are_judged_one_by_one(db).await;
    }
}

/// The trend counts each agent in the state it had entered last at each point, from the stored
/// history: the baseline before the period, changes exactly on a point, reasons and filters.
async fn the_trend_counts_states_at_each_point(db: TestDb) {
    let server = TestServer::start(ingest_config(&db)).await;
    let minute = 60_000;
    let t0 = now_ms() / minute * minute - 50 * minute;
    let placed = |id: &str, agent: &str, state: &str, at: u64, team: &str| {
        let mut event = event(id, agent, state, at);
        event["name"] = json!(agent.to_uppercase());
        event["team"] = json!(team);
        event["site"] = json!(if team == "Billing 1" {
            "Berlin"
        } else {
            "Lisbon"
        });
        event
    };
    let not_ready = |id: &str, at: u64, reason: &str| {
        let mut event = placed(id, "p3", "not_ready", at, "Billing 1");
        event["reason"] = json!(reason);
        event
    };
    let breaks = not_ready("t5", t0 + 10 * minute, "break");
    let lunch = not_ready("t7", t0 + 30 * minute, "lunch");
    let result = send(
        &server,
        vec![
            placed("t1", "p1", "available", t0 - 10 * minute, "Billing 1"),
            placed("t2", "p2", "on_call", t0 - 5 * minute, "Billing 1"),
            placed("t3", "p4", "available", t0 - minute, "Sales 2"),
            // Outside the period: the points after it do not see it.
            placed("t8", "p4", "wrap_up", t0 + 45 * minute, "Sales 2"),
            placed("t4", "p1", "on_call", t0 + 15 * minute, "Billing 1"),
            breaks,
            placed("t6", "p2", "offline", t0 + 25 * minute, "Billing 1"),
            lunch,
        ],
    )
    .await;
    // Events older than an agent's current state are stored as history all the same.
    assert_eq!(result.applied + result.older, 8, "{result:?}");
    server.settle().await;
    let trend = async |query: &str| -> TrendJson {
        let path = format!(
            "/api/v1/trend?from_ms={t0}&to_ms={}&step_ms={}{query}",
            t0 + 40 * minute,
            10 * minute
        );
        let answer = server.get(&path).await;
        assert_eq!(answer.status(), 200, "{path}");
        answer.json().await.expect("a trend")
    };
    let floor = trend("").await;
    assert_eq!(
        (floor.from_ms, floor.step_ms, floor.len()),
        (t0, 10 * minute, 5)
    );
    assert_eq!(floor.states["available"], [2, 2, 1, 1, 1]);
    assert_eq!(floor.states["on_call"], [1, 1, 2, 1, 1]);
    assert_eq!(floor.states["offline"], [0, 0, 0, 1, 1]);
    // A change exactly on a point counts at that point.
    assert_eq!(floor.states["not_ready"], [0, 1, 1, 1, 1]);
    assert_eq!(floor.states["wrap_up"], [0; 5]);
    let billing = trend("&team=Billing+1").await;
    assert_eq!(billing.states["available"], [1, 1, 0, 0, 0]);
    let lisbon = trend("&site=Lisbon").await;
    assert_eq!(lisbon.states["available"], [1; 5]);
    assert_eq!(lisbon.states["on_call"], [0; 5]);
    let both = trend("&team=Billing+1&team=Sales+2").await;
    assert_eq!(both, floor);
    let on_break = trend("&reason=break").await;
    assert_eq!(on_break.states["not_ready"], [0, 1, 1, 0, 0]);
    assert_eq!(on_break.states["available"], [0; 5]);
    let not_ready = trend("&reason=break&reason=lunch").await;
    assert_eq!(not_ready.states["not_ready"], floor.states["not_ready"]);
    // Ten minutes on, after another change: the server extends what it read (the changes
    // since) and answers as a whole read would.
    send(
        &server,
        vec![placed(
            "t9",
            "p1",
            "available",
            t0 + 42 * minute,
            "Billing 1",
        )],
    )
    .await;
    server.settle().await;
    let path = format!(
        "/api/v1/trend?from_ms={t0}&to_ms={}&step_ms={}",
        t0 + 50 * minute,
        10 * minute
    );
    let later: TrendJson = server.get(&path).await.json().await.expect("a trend");
    for (state, now) in [
        ("available", 1),
        ("on_call", 0),
        ("offline", 1),
        ("not_ready", 1),
        ("wrap_up", 1),
    ] {
        let mut expected = floor.states[state].clone();
        expected.push(now);
        assert_eq!(later.states[state], expected, "{state}");
    }
    // By default the last four hours, by the minute, ending now: everyone counted at the end.
    let recent: TrendJson = server
        .get("/api/v1/trend")
        .await
        .json()
        .await
        .expect("a trend");
    assert_eq!((recent.step_ms, recent.len()), (minute, 241));
    let last = recent.len() - 1;
    let agents: u32 = (monti_protocol::model::StateKind::ALL.iter())
        .map(|kind| recent.count(*kind, last))
        .sum();
    assert_eq!(agents, 4);
    assert_eq!(
        recent.count(monti_protocol::model::StateKind::WrapUp, last),
        1
    );
    for (query, why) in [
        ("team=Nobody", "is unknown"),
        ("site=Atlantis", "is unknown"),
        ("reason=naps", "is unknown"),
        ("step_ms=1000", "at least"),
        ("from_ms=5&to_ms=5", "before"),
        ("from_ms=0", "at most 7 days"),
        (
            "from_ms=0&to_ms=86400000&step_ms=10000",
            "8641 points asked for, at most 1441",
        ),
        ("agent=p1", "unknown parameter"),
    ] {
        let answer = server.get(&format!("/api/v1/trend?{query}")).await;
        assert_eq!(answer.status(), 400, "{query}");
        let body: Value = answer.json().await.expect("a JSON error");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(why), "{query}: {body}");
    }
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trend_counts_states_on_sqlite() {
    the_trend_counts_states_at_each_point(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trend_counts_states_on_postgres() {
    if let Some(db) = TestDb::postgres().await {
        the_trend_counts_states_at_each_point(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_agents_are_refused_when_configured() {
    let db = TestDb::sqlite();
    let mut config = ingest_config(&db);
    config.ingest.unknown_agents = UnknownAgents::Refuse;
    let server = TestServer::start(config).await;
    let t = now_ms() - 1_000;
    let refused = send(&server, vec![event("u1", "stranger", "available", t)]).await;
    assert_eq!(outcomes(&refused), [Outcome::Refused]);
    let reason = refused.results[0].reason.clone().unwrap_or_default();
    assert!(reason.contains("/api/v1/roster"), "{reason}");
    // Once the roster has the agent, its events are taken.
    let (status, body) = server
        .post(
            "/api/v1/roster",
            &json!({"agents": [{"external_id": "stranger", "name": "Sam Stranger",
                "team": "Claims", "site": "Dublin"}],
                "teams": [{"name": "Claims"}], "sites": [{"name": "Dublin"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let taken = send(&server, vec![event("u1", "stranger", "available", t)]).await;
    assert_eq!(outcomes(&taken), [Outcome::Applied]);
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_malformed_bodies_get_clear_errors() {
    let db = TestDb::sqlite();
    let mut config = ingest_config(&db);
    config.ingest.max_events = 3;
    config.ingest.max_body_bytes = 4_096;
    let server = TestServer::start(config).await;
    let t = now_ms() - 1_000;
    let client = reqwest::Client::new();
    let post_raw = |body: String| {
        client
            .post(format!("{}/api/v1/events", server.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let big = post_raw(format!(
        "{{\"events\": [], \"pad\": \"{}\"}}",
        "x".repeat(5_000)
    ))
    .await
    .expect("request");
    assert_eq!(big.status(), 413);
    let body: Value = big.json().await.expect("json error");
    assert_eq!(body["error"], "too_large");

    let four: Vec<Value> = (0..4)
        .map(|n| event(&format!("l{n}"), "a", "available", t))
        .collect();
    let (status, body) = server
        .post("/api/v1/events", &json!({ "events": four }))
        .await;
    assert_eq!(status, 422);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("at most 3 events")
    );

    let broken = post_raw("{\"events\": [".to_owned())
        .await
        .expect("request");
    assert_eq!(broken.status(), 400);
    let shape = post_raw("{\"events\": 5}".to_owned())
        .await
        .expect("request");
    assert_eq!(shape.status(), 422);
    let extra = post_raw("{\"events\": [], \"extra\": 1}".to_owned())
        .await
        .expect("request");
    assert_eq!(extra.status(), 422);

    // Nothing of the refused requests reached the floor.
    assert_eq!(server.metric("monti_floor_agents").await, 0.0);
    server.stop().await.expect("stops");
    db.drop_database().await;
}

async fn roster_sync_creates_moves_and_deactivates(db: TestDb) {
    let server = TestServer::start(ingest_config(&db)).await;
    let sync = json!({
        "sites": [{"name": "Berlin"}, {"name": "Lisbon"}],
        "teams": [{"name": "Billing"}, {"name": "Sales"}],
        "reasons": [{"code": "lunch", "label": "Lunch"}],
        "agents": [
            {"external_id": "h1", "name": "Hanna One", "team": "Billing", "site": "Berlin"},
            {"external_id": "h2", "name": "Hugo Two", "team": "Sales", "site": "Lisbon"},
            {"external_id": "h3", "name": "Hedy Three", "team": "Sales", "site": "Berlin"}
        ]
    });
    let (status, body) = server.post("/api/v1/roster", &sync).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["agents"], 3);
    server.settle().await;
    assert_eq!(server.metric("monti_floor_agents").await, 3.0);

    // An agent naming a team that does not exist: nothing of the sync is applied.
    roster_refused(
        &server,
        json!({"agents": [
            {"external_id": "h4", "name": "Hal Four", "team": "Billing", "site": "Berlin"},
            {"external_id": "h5", "name": "Hal Five", "team": "Nowhere", "site": "Berlin"}]}),
        "Nowhere",
    )
    .await;
    // A team with agents cannot be deactivated.
    roster_refused(
        &server,
        json!({"teams": [{"name": "Sales", "active": false}]}),
        "2 active agents",
    )
    .await;
    server.settle().await;
    assert!(server.agent("Hal Four").await.is_none());

    // A full sync: Hugo moves to Billing and is renamed, the rest are deactivated, Sales goes,
    // Billing is renamed.
    let (status, body) = server
        .post(
            "/api/v1/roster",
            &json!({
                "agents": [{"external_id": "h2", "name": "Hugo Zwei", "team": "Billing",
                            "site": "Lisbon"}],
                "deactivate_missing_agents": true,
                "teams": [{"name": "Sales", "active": false},
                          {"name": "Billing", "rename_to": "Billing & Claims"}]
            }),
        )
        .await;
    assert_eq!(status, 422, "renamed away in the same sync: {body}");
    let (status, body) = server
        .post(
            "/api/v1/roster",
            &json!({
                "agents": [{"external_id": "h2", "name": "Hugo Zwei", "team": "Billing",
                            "site": "Lisbon"}],
                "deactivate_missing_agents": true,
                "teams": [{"name": "Sales", "active": false}]
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["agents_deactivated"], 2);
    assert_eq!(body["groups_deactivated"], 1);
    let (status, body) = server
        .post(
            "/api/v1/roster",
            &json!({"teams": [{"name": "Billing", "rename_to": "Billing & Claims"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    server.settle().await;
    let page: monti_protocol::rest::AgentPage = server
        .get("/api/v1/agents")
        .await
        .json()
        .await
        .expect("agents");
    assert_eq!(page.total, 1);
    assert_eq!(page.agents[0].name, "Hugo Zwei");
    let teams: Vec<Value> = server
        .get("/api/v1/teams")
        .await
        .json()
        .await
        .expect("teams");
    let names: Vec<&str> = teams.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["Billing & Claims"]);
    // A deactivated team keeps its name: renaming onto it is refused, not a storage failure.
    roster_refused(
        &server,
        json!({"teams": [{"name": "Billing & Claims", "rename_to": "Sales"}]}),
        "a deactivated team named \"Sales\"",
    )
    .await;
    server.stop().await.expect("stops");

    // A restart builds the same roster from the database.
    let server = TestServer::start(ingest_config(&db)).await;
    let page: monti_protocol::rest::AgentPage = server
        .get("/api/v1/agents")
        .await
        .json()
        .await
        .expect("agents");
    assert_eq!(page.total, 1);
    let teams: Vec<Value> = server
        .get("/api/v1/teams")
        .await
        .json()
        .await
        .expect("teams");
    assert_eq!(teams.len(), 1);
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roster_sync_on_sqlite() {
    roster_sync_creates_moves_and_deactivates(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roster_sync_on_postgres() {
    if let Some(db) = TestDb::postgres().await {
        roster_sync_creates_moves_and_deactivates(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_beyond_the_retention_is_pruned_and_current_states_stay() {
    let db = TestDb::sqlite();
    let server = TestServer::start(ingest_config(&db)).await;
    let day = 86_400_000;
    let now = now_ms();
    send(
        &server,
        vec![
            event("old", "p1", "available", now - 3 * day),
            event("new", "p2", "on_call", now - 1_000),
        ],
    )
    .await;
    let url = server.config.database.url.clone();
    server.stop().await.expect("stops");
    let stored = monti_server::store::db::Db::connect(&monti_server::config::DatabaseConfig {
        url,
        ..Default::default()
    })
    .await
    .expect("open");
    assert_eq!(stored.count_history().await.expect("count"), 2);
    let pruned = stored
        .prune_history((now - 2 * day) as i64)
        .await
        .expect("prune");
    assert_eq!(pruned, 1);
    assert_eq!(stored.count_history().await.expect("count"), 1);
    // p1's state is kept though its history went.
    let floor = stored.load_floor(0, 0, 0).await.expect("floor");
    assert_eq!(floor.states.len(), 2);
    stored.close().await;
    db.drop_database().await;
}

/// `server/openapi.json` describes what the server does: it is served, every ingest route is in
/// it, and its event and roster schemas name exactly the fields the server reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_api() {
    let db = TestDb::sqlite();
    let server = TestServer::start(ingest_config(&db)).await;
    let served: Value = server
        .get("/api/v1/openapi.json")
        .await
        .json()
        .await
        .expect("served as JSON");
    let file: Value =
        serde_json::from_str(monti_server::sources::ingest::OPENAPI).expect("valid JSON");
    assert_eq!(served, file);
    for path in [
        "/api/v1/events",
        "/api/v1/contact-events",
        "/api/v1/contacts",
        "/api/v1/queues",
        "/api/v1/queues/summary",
        "/api/v1/intervals",
        "/api/v1/roster",
        "/api/v1/history",
        "/api/v1/trend",
        monti_server::sources::amazon_connect::PATH,
        monti_server::sources::connect_contacts::PATH,
        monti_server::sources::connect_contacts::FIREHOSE_PATH,
    ] {
        assert!(file["paths"][path].is_object(), "{path} is not documented");
    }
    let schema_fields = |name: &str| -> Vec<String> {
        let mut fields: Vec<String> = file["components"]["schemas"][name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("schema {name}"))
            .keys()
            .cloned()
            .collect();
        fields.sort();
        fields
    };
    let code_fields = |value: Value| -> Vec<String> {
        let mut fields: Vec<String> = value.as_object().expect("object").keys().cloned().collect();
        fields.sort();
        fields
    };
    let full_event = monti_protocol::ingest::AgentEventJson {
        event_id: "e".into(),
        agent: "a".into(),
        state: "available".into(),
        reason: Some("r".into()),
        since_ms: 1,
        name: Some("n".into()),
        team: Some("t".into()),
        site: Some("s".into()),
    };
    assert_eq!(
        schema_fields("AgentEvent"),
        code_fields(serde_json::to_value(full_event).expect("json"))
    );
    let full_contact_event = monti_protocol::ingest::ContactEventJson {
        event_id: "e".into(),
        contact: "c".into(),
        kind: "queued".into(),
        at_ms: 1,
        queue: Some("q".into()),
        channel: Some("voice".into()),
        agent: Some("a".into()),
    };
    assert_eq!(
        schema_fields("ContactEvent"),
        code_fields(serde_json::to_value(full_contact_event).expect("json"))
    );
    let full_leg = monti_protocol::ingest::ContactLegJson {
        contact: "c".into(),
        queue: "q".into(),
        queued_ms: 1,
        offered_ms: Some(2),
        connected_ms: Some(3),
        ended_ms: Some(4),
        agent: Some("a".into()),
        outcome: "answered".into(),
    };
    assert_eq!(
        schema_fields("ContactLeg"),
        code_fields(serde_json::to_value(full_leg).expect("json"))
    );
    let kinds: Vec<&str> =
        file["components"]["schemas"]["ContactEvent"]["properties"]["kind"]["enum"]
            .as_array()
            .expect("enum")
            .iter()
            .filter_map(Value::as_str)
            .collect();
    let names: Vec<&str> = (monti_protocol::ingest::ContactEventKind::ALL.iter())
        .map(|kind| kind.name())
        .collect();
    assert_eq!(kinds, names);
    assert_eq!(
        schema_fields("RosterSync"),
        code_fields(
            serde_json::to_value(monti_protocol::ingest::RosterSyncJson::default()).expect("json")
        )
    );
    let states: Vec<&str> =
        file["components"]["schemas"]["AgentEvent"]["properties"]["state"]["enum"]
            .as_array()
            .expect("enum")
            .iter()
            .filter_map(Value::as_str)
            .collect();
    let mut expected = monti_protocol::ingest::INGEST_STATES.to_vec();
    let mut documented = states.clone();
    expected.sort_unstable();
    documented.sort_unstable();
    assert_eq!(documented, expected);
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_agent_comes_back_in_its_old_team_or_is_refused() {
    let db = TestDb::sqlite();
    let server = TestServer::start(ingest_config(&db)).await;
    let (status, body) = server
        .post(
            "/api/v1/roster",
            &json!({"teams": [{"name": "Claims"}], "sites": [{"name": "Dublin"}],
                    "agents": [{"external_id": "z1", "name": "Zoe Zed", "team": "Claims",
                                "site": "Dublin"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server
        .post(
            "/api/v1/roster",
            &json!({"agents": [{"external_id": "z1", "name": "Zoe Zed", "team": "Claims",
                                "site": "Dublin", "active": false}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    server.settle().await;
    assert!(server.agent("Zoe Zed").await.is_none());
    let back = send(
        &server,
        vec![event("z-1", "z1", "available", now_ms() - 1_000)],
    )
    .await;
    assert_eq!(outcomes(&back), [Outcome::Applied]);
    server.settle().await;
    let zoe = server.agent("Zoe Zed").await.expect("back on the floor");
    let teams: Vec<Value> = server
        .get("/api/v1/teams")
        .await
        .json()
        .await
        .expect("teams");
    let claims = teams
        .iter()
        .find(|t| t["name"] == "Claims")
        .expect("Claims");
    assert_eq!(u64::from(zoe.team), claims["id"].as_u64().expect("id"));
    assert_eq!(zoe.state, "available");
    server.stop().await.expect("stops");
    db.drop_database().await;
}
