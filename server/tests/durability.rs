//! No acknowledged event is lost: `monti-server` processes are killed with SIGKILL while events
//! stream in, and the restarted server's floor holds every acknowledged event, applied once; the
//! same for contact events and the legs they make.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{ServerProcess, TestDb, floor_rows};
use monti_protocol::ingest::{EventBatchResultJson, Outcome};
use serde_json::{Value, json};

const AGENTS: usize = 200;
const STATES: [&str; 5] = ["available", "ringing", "on_call", "wrap_up", "on_hold"];

/// One event sent: its agent, state and start.
#[derive(Clone, Debug)]
struct Sent {
    id: String,
    agent: usize,
    state: &'static str,
    since_ms: u64,
}

fn batch_of(seq: usize, base_ms: u64) -> Vec<Sent> {
    (0..50)
        .map(|i| {
            let n = seq * 50 + i;
            Sent {
                id: format!("d-{n}"),
                agent: n % AGENTS,
                state: STATES[n % STATES.len()],
                since_ms: base_ms + n as u64,
            }
        })
        .collect()
}

fn body(batch: &[Sent]) -> Value {
    let events: Vec<Value> = batch
        .iter()
        .map(|sent| {
            json!({
                "event_id": sent.id,
                "agent": format!("dur-{}", sent.agent),
                "name": format!("Durable {:03}", sent.agent),
                "team": format!("Team {}", sent.agent % 7),
                "site": format!("Site {}", sent.agent % 3),
                "state": sent.state,
                "since_ms": sent.since_ms,
            })
        })
        .collect();
    json!({ "events": events })
}

async fn post(url: &str, body: &Value) -> Option<EventBatchResultJson> {
    post_to(url, "/api/v1/events", body).await
}

/// Posts a batch; `None` when the server did not answer it with success.
async fn post_to(url: &str, path: &str, body: &Value) -> Option<EventBatchResultJson> {
    let response = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .json(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

/// Waits for the server's first check of its floor against the database (3 s after start):
/// the killed server's last commit may land in PostgreSQL after the new one has loaded.
async fn until_reconciled(server: &ServerProcess) {
    for _ in 0..200 {
        let metrics = server.get("/metrics").await.text().await.expect("metrics");
        let reloads = metrics
            .lines()
            .find_map(|line| line.strip_prefix("monti_floor_reloads_total "))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if reloads >= 1.0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server never checked its floor against the database");
}

async fn acknowledged_events_survive_a_kill(db: TestDb) {
    let db_url = db.url();
    let args = ["--database-url", &db_url, "--simulator-enabled", "false"];
    let server = ServerProcess::start(&args, true).await;
    let base_ms = monti_server::core::clock::Clock::system().now_ms() - 3_600_000;

    // Two senders stream batches until the server dies under them.
    let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let acked: Arc<Mutex<Vec<Vec<Sent>>>> = Arc::default();
    let mut senders = Vec::new();
    for sender in 0..2 {
        let (url, sent, acked) = (server.url.clone(), sent.clone(), acked.clone());
        senders.push(tokio::spawn(async move {
            for round in 0.. {
                let batch = batch_of(round * 2 + sender, base_ms);
                sent.lock().expect("lock").extend(batch.iter().cloned());
                match post(&url, &body(&batch)).await {
                    Some(result) => {
                        assert!(
                            result
                                .results
                                .iter()
                                .all(|r| matches!(r.outcome, Outcome::Applied | Outcome::Older)),
                            "fresh events were refused: {result:?}"
                        );
                        acked.lock().expect("lock").push(batch);
                    }
                    None => break,
                }
            }
        }));
    }
    while acked.lock().expect("lock").len() < 100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill().await;
    for sender in senders {
        sender.await.expect("sender");
    }
    let acked: Vec<Vec<Sent>> = acked.lock().expect("lock").clone();
    let sent: Vec<Sent> = sent.lock().expect("lock").clone();
    assert!(acked.len() >= 100);

    // Restarted on the same database: every acknowledged event is reflected. An agent's state
    // is its newest stored event, at least as new as its newest acknowledged one (an event
    // stored just before the kill may not have been acknowledged yet).
    let server = ServerProcess::start(&args, true).await;
    until_reconciled(&server).await;
    let floor = floor_rows(&server.url).await;
    let by_name: HashMap<&str, (&str, u64)> = floor
        .iter()
        .map(|row| (row.0.as_str(), (row.3.as_str(), row.5)))
        .collect();
    let mut newest_acked: HashMap<usize, u64> = HashMap::new();
    for sent in acked.iter().flatten() {
        let newest = newest_acked.entry(sent.agent).or_default();
        *newest = (*newest).max(sent.since_ms);
    }
    let sent_at: HashMap<(usize, u64), &str> = sent
        .iter()
        .map(|sent| ((sent.agent, sent.since_ms), sent.state))
        .collect();
    for (&agent, &newest) in &newest_acked {
        let name = format!("Durable {agent:03}");
        let &(state, since_ms) = by_name
            .get(name.as_str())
            .unwrap_or_else(|| panic!("{name} is missing after the restart"));
        assert!(
            since_ms >= newest,
            "{name} shows {since_ms}, older than its acknowledged {newest}"
        );
        assert_eq!(
            sent_at.get(&(agent, since_ms)).copied(),
            Some(state),
            "{name}'s state is not the event that began at {since_ms}"
        );
    }

    // Nothing twice: sending every acknowledged batch again stores nothing.
    for batch in &acked {
        let result = post(&server.url, &body(batch)).await.expect("accepted");
        assert_eq!(
            result.duplicates,
            batch.len(),
            "a retried batch changed something"
        );
    }
    assert_eq!(
        floor_rows(&server.url).await,
        floor,
        "retries changed the floor"
    );

    // A quiet floor survives a kill exactly.
    server.kill().await;
    let server = ServerProcess::start(&args, true).await;
    until_reconciled(&server).await;
    assert_eq!(floor_rows(&server.url).await, floor);
    server.kill().await;

    let stored = monti_server::store::db::Db::connect(&monti_server::config::DatabaseConfig {
        url: db_url.clone(),
        ..Default::default()
    })
    .await
    .expect("open");
    let acked_ids: usize = acked.iter().map(Vec::len).sum();
    let history = stored.count_history().await.expect("count") as usize;
    assert!(
        history >= acked_ids && history <= sent.len(),
        "{history} history rows for {acked_ids} acknowledged and {} sent events",
        sent.len()
    );
    stored.close().await;
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_a_kill_on_sqlite() {
    acknowledged_events_survive_a_kill(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_a_kill_on_postgres() {
    if let Some(db) = TestDb::postgres().await {
        acknowledged_events_survive_a_kill(db).await;
    }
}

/// A batch of contact events and the contacts it holds.
type ContactBatch = (Vec<String>, Value);

/// Twenty contacts, each queued, answered and ended, in one batch: a batch is stored whole or
/// not at all.
fn contact_batch(seq: usize, base_ms: u64) -> ContactBatch {
    let mut contacts = Vec::new();
    let mut events = Vec::new();
    for i in 0..20 {
        let contact = format!("k-{seq}-{i}");
        let at = base_ms + (seq * 20 + i) as u64 * 10;
        events.push(
            json!({"event_id": format!("{contact}-q"), "contact": contact,
            "kind": "queued", "at_ms": at, "queue": format!("Queue {}", i % 3)}),
        );
        events.push(
            json!({"event_id": format!("{contact}-c"), "contact": contact,
            "kind": "connected", "at_ms": at + 5_000, "agent": format!("agent-{i}")}),
        );
        events.push(
            json!({"event_id": format!("{contact}-e"), "contact": contact,
            "kind": "ended", "at_ms": at + 60_000}),
        );
        contacts.push(contact);
    }
    (contacts, json!({ "events": events }))
}

async fn post_contacts(url: &str, body: &Value) -> Option<EventBatchResultJson> {
    post_to(url, "/api/v1/contact-events", body).await
}

/// Contacts acknowledged before a SIGKILL are all there after the restart, each exactly once
/// and whole (a batch's contacts are answered legs, never half of one), and retrying every
/// acknowledged batch changes nothing.
async fn acknowledged_contacts_survive_a_kill(db: TestDb) {
    let db_url = db.url();
    let args = ["--database-url", &db_url, "--simulator-enabled", "false"];
    let server = ServerProcess::start(&args, true).await;
    let base_ms = monti_server::core::clock::Clock::system().now_ms() - 3_600_000;
    let acked: Arc<Mutex<Vec<ContactBatch>>> = Arc::default();
    let sender = {
        let (url, acked) = (server.url.clone(), acked.clone());
        tokio::spawn(async move {
            for seq in 0.. {
                let (contacts, body) = contact_batch(seq, base_ms);
                match post_contacts(&url, &body).await {
                    Some(result) => {
                        assert_eq!(result.applied, 60, "{result:?}");
                        acked.lock().expect("lock").push((contacts, body));
                    }
                    None => break,
                }
            }
        })
    };
    while acked.lock().expect("lock").len() < 30 {
        tokio::task::yield_now().await;
    }
    server.kill().await;
    sender.await.expect("sender");
    let acked = acked.lock().expect("lock").clone();

    let server = ServerProcess::start(&args, true).await;
    let legs: Vec<monti_protocol::ingest::ContactLegJson> = server
        .get(&format!(
            "/api/v1/contacts?from={}&limit=10000",
            base_ms - 1
        ))
        .await
        .json()
        .await
        .expect("legs");
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for leg in &legs {
        *seen.entry(leg.contact.as_str()).or_default() += 1;
        assert_eq!(leg.outcome, "answered", "a contact stored in part: {leg:?}");
    }
    assert!(seen.values().all(|&n| n == 1), "a contact twice");
    for (contacts, _) in &acked {
        for contact in contacts {
            assert!(seen.contains_key(contact.as_str()), "{contact} was lost");
        }
    }
    for (_, body) in &acked {
        let result = post_contacts(&server.url, body).await.expect("accepted");
        assert_eq!(result.duplicates, 60, "a retried batch changed something");
    }
    server.kill().await;
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_contacts_survive_a_kill_on_sqlite() {
    acknowledged_contacts_survive_a_kill(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_contacts_survive_a_kill_on_postgres() {
    if let Some(db) = TestDb::postgres().await {
        acknowledged_contacts_survive_a_kill(db).await;
    }
}
