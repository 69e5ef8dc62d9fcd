//! The dashboards and alarms name only metrics the server exports: every `monti_*` name in the
//! Grafana dashboard (`assets/grafana/monti.json`) and in the AWS alarms, dashboard and
//! collector configuration (`terraform/modules/service/monitoring.tf`) is a sample name a
//! running server's `/metrics` declares (a gauge's own name, a counter's `_total`, a
//! histogram's `_bucket`, `_sum` and `_count`, or its family name as CloudWatch's collector
//! writes it). A renamed metric fails here instead of leaving an alarm silent in production.

mod common;

use std::collections::BTreeSet;

use common::{TestDb, TestServer, test_config};

/// The sample names `/metrics` declares, from its `# TYPE` lines (a family with no labelled
/// child yet has no sample line, but is declared).
fn exported(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some("#"), Some("TYPE"), Some(family), Some(kind)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            continue;
        };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            // The bare family too: CloudWatch's collector names a histogram by it.
            "histogram" => &["", "_bucket", "_sum", "_count"],
            _ => &[""],
        };
        names.extend(suffixes.iter().map(|suffix| format!("{family}{suffix}")));
    }
    names
}

/// Every `monti_*` word in `text`.
fn named(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("monti_") {
        let word: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        rest = &rest[at + word.len()..];
        names.insert(word);
    }
    names
}

/// Every query string of a Grafana dashboard (`expr` of each panel's targets, templating
/// queries), found by walking the JSON.
fn queries(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr" | "query", serde_json::Value::String(query)) => out.push(query.clone()),
                    _ => queries(value, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| queries(item, out)),
        _ => {}
    }
}

#[test]
fn names_are_read_as_the_server_declares_them() {
    let text = "# HELP monti_resyncs Snapshots resent.\n# TYPE monti_resyncs counter\n\
                monti_resyncs_total 0\n# TYPE monti_degraded gauge\nmonti_degraded 0\n\
                # TYPE monti_change_to_send_seconds histogram\n";
    let names = exported(text);
    for name in [
        "monti_resyncs_total",
        "monti_degraded",
        "monti_change_to_send_seconds_bucket",
        "monti_change_to_send_seconds_count",
    ] {
        assert!(names.contains(name), "{name}");
    }
    assert!(!names.contains("monti_resyncs"));
    assert_eq!(
        named("sum(rate(monti_a_total{x=\"monti_\"}[1m])) / monti_b"),
        BTreeSet::from(["monti_a_total".into(), "monti_".into(), "monti_b".into()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_grafana_dashboard_uses_is_exported() {
    let db = TestDb::sqlite();
    let server = TestServer::start(test_config(&db)).await;
    let metrics = server.get("/metrics").await.text().await.expect("metrics");
    let exported = exported(&metrics);
    assert!(exported.len() > 20, "{metrics}");

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/grafana/monti.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("the dashboard"))
            .expect("the dashboard is JSON");
    let mut found = Vec::new();
    queries(&dashboard, &mut found);
    let used: BTreeSet<String> = found.iter().flat_map(|query| named(query)).collect();
    assert!(
        used.len() > 20,
        "the dashboard's queries name the metrics: {used:?}"
    );
    let missing: Vec<&String> = used.difference(&exported).collect();
    assert!(missing.is_empty(), "not exported: {missing:?}");

    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../terraform/modules/service/monitoring.tf"
    );
    let terraform = std::fs::read_to_string(path).expect("the AWS monitoring");
    let used = named(&terraform);
    for alarmed in [
        "monti_degraded",
        "monti_redis_up",
        "monti_change_sends_late_total",
        "monti_slow_clients_dropped_total",
        "monti_ingest_failures_total",
        "monti_auth_failures_total",
        "monti_db_connections_idle",
    ] {
        assert!(used.contains(alarmed), "{alarmed} is not alarmed on");
    }
    let missing: Vec<&String> = used.difference(&exported).collect();
    assert!(missing.is_empty(), "not exported: {missing:?}");
    // Every reason a request is refused for has its alarm: each token error's, and the
    // caller's own (no token, no role).
    let reasons = (monti_server::api::token::TokenError::examples().into_iter())
        .map(|err| err.reason())
        .chain(monti_server::api::auth::CALLER_REFUSALS)
        .chain(["firehose_access_key", "eventbridge_key"]);
    for reason in reasons {
        assert!(
            terraform.contains(&format!("\"{reason}\"")),
            "no refusal alarm for {reason}"
        );
    }
    server.stop().await.expect("stops");
    db.drop_database().await;
}
