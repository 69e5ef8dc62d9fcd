//! Administration through the API on the embedded default (every caller the local
//! administrator): role bindings stored in the database and seeded from the file, the audit log
//! filtered by who, what and when, feedback, and the devices that opened the stream. Who else
//! may do these, test access and bindings applied to open connections are in `oidc.rs`.

mod common;

use std::time::Duration;

use common::{TestDb, TestServer, data_client, test_config};
use monti_client::follow::Follower;
use monti_protocol::access::{BindingsJson, DeviceJson, FeedbackJson, GroupBinding, Role};
use monti_protocol::message::Subscription;
use monti_server::config::Config;
use serde_json::{Value, json};

fn config(db: &TestDb, bindings: Value) -> Config {
    let mut config = test_config(db);
    config.simulator.agents = 20;
    config.auth.bindings = serde_json::from_value(bindings).expect("bindings");
    config
}

async fn bindings(server: &TestServer) -> BindingsJson {
    let answer = server.get("/api/v1/access/bindings").await;
    assert_eq!(answer.status(), 200);
    answer.json().await.expect("bindings")
}

/// Waits until the audit log has an event of `kind` whose detail contains `part` (events are
/// written in the background), and returns its detail.
async fn audited(server: &TestServer, kind: &str, part: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let events: Vec<Value> = server
            .get(&format!("/api/v1/audit?kind={kind}&limit=1000"))
            .await
            .json()
            .await
            .expect("audit");
        if let Some(event) = (events.iter()).find(|event| {
            event["detail"]
                .as_str()
                .is_some_and(|detail| detail.contains(part))
        }) {
            return event["detail"].as_str().unwrap_or_default().to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {kind} event saying {part:?} in {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn lead(teams: &[&str]) -> GroupBinding {
    GroupBinding {
        group: "monti-leads".to_owned(),
        role: Role::TeamLead,
        teams: teams.iter().map(|&team| team.to_owned()).collect(),
        sites: Vec::new(),
    }
}

async fn bindings_are_seeded_changed_and_kept_until_the_file_changes(db: TestDb) {
    let file = json!([{"group": "monti-admins", "role": "admin"}]);
    let server = TestServer::start(config(&db, file.clone())).await;
    let seeded = bindings(&server).await;
    assert_eq!(
        seeded.bindings,
        serde_json::from_value::<Vec<_>>(file.clone()).expect("file")
    );
    assert_eq!(seeded.changed_by, "configuration file");
    assert!(!seeded.file_differs);
    assert!(
        seeded.rule.contains("configuration file"),
        "{}",
        seeded.rule
    );
    audited(
        &server,
        "access_change",
        "seeded from the configuration file",
    )
    .await;

    // Changed through the API: stored, audited with before and after.
    let mut wanted = seeded.bindings.clone();
    wanted.push(lead(&["Sales 1"]));
    let (status, answer) = server.put("/api/v1/access/bindings", &json!(wanted)).await;
    assert_eq!(status, 200, "{answer}");
    let changed: BindingsJson = serde_json::from_value(answer).expect("bindings");
    assert_eq!(changed.bindings, wanted);
    assert_eq!(changed.changed_by, "local");
    assert!(changed.file_differs);
    let detail = audited(&server, "access_change", "monti-leads").await;
    assert!(
        detail.contains("before [{\"group\":\"monti-admins\"")
            && detail.contains("after [{\"group\":\"monti-admins\""),
        "{detail}"
    );

    // Refused with the reason, nothing changed.
    let refusals = [
        (json!([{"group": "", "role": "admin"}]), "group is empty"),
        (
            json!([{"group": "g", "role": "emperor"}]),
            "unknown variant",
        ),
        (
            json!([{"group": "g", "role": "admin", "colour": 1}]),
            "unknown field",
        ),
        (
            json!([lead(&["Sales 1"]), lead(&["Sales 1"])]),
            "listed twice",
        ),
        (json!([lead(&["Sales\u{202E}1"])]), "invisible"),
        (json!({"group": "g"}), "sequence"),
    ];
    for (body, why) in refusals {
        let (status, answer) = server.put("/api/v1/access/bindings", &body).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert!(
            answer["message"]
                .as_str()
                .is_some_and(|text| text.contains(why)),
            "{answer} should say {why:?}"
        );
    }
    assert_eq!(bindings(&server).await.bindings, wanted);
    server.stop().await.expect("stops");

    // The same file again: what was set in the app stands.
    let server = TestServer::start(config(&db, file.clone())).await;
    assert_eq!(bindings(&server).await.bindings, wanted);
    server.stop().await.expect("stops");

    // The file changed: it wins, audited.
    let new_file = json!([{"group": "monti-ops", "role": "admin"}]);
    let server = TestServer::start(config(&db, new_file.clone())).await;
    let replaced = bindings(&server).await;
    assert_eq!(
        replaced.bindings,
        serde_json::from_value::<Vec<_>>(new_file).expect("file")
    );
    assert_eq!(replaced.changed_by, "configuration file");
    let detail = audited(&server, "access_change", "which changed").await;
    assert!(
        detail.contains("monti-leads") && detail.contains("monti-ops"),
        "{detail}"
    );
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test]
async fn bindings_are_seeded_changed_and_kept_until_the_file_changes_on_sqlite() {
    bindings_are_seeded_changed_and_kept_until_the_file_changes(TestDb::sqlite()).await;
}

#[tokio::test]
async fn bindings_are_seeded_changed_and_kept_until_the_file_changes_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    bindings_are_seeded_changed_and_kept_until_the_file_changes(db).await;
}

async fn feedback_is_stored_listed_and_refused_with_why(db: TestDb) {
    let server = TestServer::start(config(&db, json!([]))).await;
    // The smallest PNG there is: a signature and nothing a viewer would show; the server keeps
    // the bytes as sent.
    let png = b"\x89PNG\r\n\x1a\n-monti-test-".to_vec();
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&png);
    let sent = [
        json!({"text": "The Break filter forgets my teams", "client": "monti-desktop 0.1.0", "context": "Agents view, teams Sales 1"}),
        json!({"text": "Tiles 50% smaller please_", "screenshot_png_base64": encoded}),
    ];
    for body in &sent {
        let (status, answer) = server.post("/api/v1/feedback", body).await;
        assert_eq!(status, 200, "{answer}");
    }
    let list: Vec<FeedbackJson> = server
        .get("/api/v1/feedback")
        .await
        .json()
        .await
        .expect("feedback");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].text, "Tiles 50% smaller please_", "newest first");
    assert!(list[0].has_screenshot && !list[1].has_screenshot);
    assert_eq!(list[1].context, "Agents view, teams Sales 1");
    assert_eq!(list[1].subject, "local");
    let screenshot = server
        .get(&format!("/api/v1/feedback/{}/screenshot", list[0].id))
        .await;
    assert_eq!(screenshot.status(), 200);
    assert_eq!(
        screenshot.bytes().await.expect("png").as_ref(),
        png.as_slice()
    );
    assert_eq!(
        server
            .get(&format!("/api/v1/feedback/{}/screenshot", list[1].id))
            .await
            .status(),
        404
    );
    let older: Vec<FeedbackJson> = server
        .get(&format!("/api/v1/feedback?before={}", list[0].id))
        .await
        .json()
        .await
        .expect("page");
    assert_eq!(older, list[1..]);
    audited(
        &server,
        "feedback",
        &format!("sent feedback {}", list[0].id),
    )
    .await;

    let refusals = [
        (json!({"text": "  "}), "empty"),
        (json!({"text": "x".repeat(10_001)}), "at most 10000"),
        (
            json!({"text": "a", "screenshot_png_base64": "not base64!"}),
            "not base64",
        ),
        (
            json!({"text": "a", "screenshot_png_base64": base64::engine::general_purpose::STANDARD.encode(b"GIF89a")}),
            "not a PNG",
        ),
        (
            json!({"text": "a", "sender": "someone else"}),
            "unknown field",
        ),
    ];
    for (body, why) in refusals {
        let (status, answer) = server.post("/api/v1/feedback", &body).await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["message"]
                .as_str()
                .is_some_and(|text| text.contains(why)),
            "{answer} should say {why:?}"
        );
    }
    // A screenshot of a 4K window (a few MB) is taken.
    let mut large = png.clone();
    large.resize(3 * 1024 * 1024, 7);
    let body = json!({"text": "on my 4K screen", "screenshot_png_base64": base64::engine::general_purpose::STANDARD.encode(&large)});
    let (status, answer) = server.post("/api/v1/feedback", &body).await;
    assert_eq!(status, 200, "{answer}");
    // A screenshot over the limit is refused before it is stored.
    let mut big = png.clone();
    big.resize(monti_protocol::access::MAX_FEEDBACK_SCREENSHOT + 1, 0);
    let body = json!({"text": "a", "screenshot_png_base64": base64::engine::general_purpose::STANDARD.encode(&big)});
    let (status, answer) = server.post("/api/v1/feedback", &body).await;
    assert!(status == 400 || status == 413, "{status} {answer}");
    let after: Vec<FeedbackJson> = server
        .get("/api/v1/feedback")
        .await
        .json()
        .await
        .expect("feedback");
    assert_eq!(after.len(), 3, "nothing refused was stored");
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test]
async fn feedback_is_stored_listed_and_refused_with_why_on_sqlite() {
    feedback_is_stored_listed_and_refused_with_why(TestDb::sqlite()).await;
}

#[tokio::test]
async fn feedback_is_stored_listed_and_refused_with_why_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    feedback_is_stored_listed_and_refused_with_why(db).await;
}

async fn the_audit_log_is_filtered_by_who_what_and_when(db: TestDb) {
    let server = TestServer::start(config(&db, json!([]))).await;
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_millis() as i64;
    for text in ["first", "second"] {
        let (status, _) = server
            .post("/api/v1/feedback", &json!({"text": text}))
            .await;
        assert_eq!(status, 200);
    }
    let thresholds: Value = server
        .get("/api/v1/config/thresholds")
        .await
        .json()
        .await
        .expect("thresholds");
    let (status, _) = server.put("/api/v1/config/thresholds", &thresholds).await;
    assert_eq!(status, 200);
    audited(&server, "config_change", "thresholds").await;
    audited(&server, "feedback", "sent feedback").await;

    let read = |query: String| {
        let server = &server;
        async move {
            let answer = server.get(&format!("/api/v1/audit?{query}")).await;
            assert_eq!(answer.status(), 200, "{query}");
            answer.json::<Vec<Value>>().await.expect("audit")
        }
    };
    let feedback = read("kind=feedback".to_owned()).await;
    assert_eq!(feedback.len(), 2);
    assert!(feedback.iter().all(|event| event["kind"] == "feedback"));
    let by_local = read("subject=LOC".to_owned()).await;
    assert!(
        by_local.len() >= 3,
        "subjects match ignoring case: {by_local:?}"
    );
    // `%` and `_` are taken literally, not as patterns.
    assert!(read("subject=%25".to_owned()).await.is_empty());
    assert!(read("subject=l_cal".to_owned()).await.is_empty());
    let since = read(format!("from_ms={started}&kind=config_change")).await;
    assert_eq!(since.len(), 1);
    let before = read(format!("before_ms={started}&kind=config_change")).await;
    assert!(before.is_empty());
    for bad in [
        "limit=0",
        "from_ms=soon",
        "subject=".to_owned().as_str(),
        "who=me",
    ] {
        let status = server.get(&format!("/api/v1/audit?{bad}")).await.status();
        if bad == "subject=" {
            assert_eq!(status, 200, "an empty filter is no filter");
        } else {
            assert_eq!(status, 400, "{bad}");
        }
    }
    let long = format!("subject={}", "a".repeat(300));
    assert_eq!(
        server.get(&format!("/api/v1/audit?{long}")).await.status(),
        400
    );
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test]
async fn the_audit_log_is_filtered_by_who_what_and_when_on_sqlite() {
    the_audit_log_is_filtered_by_who_what_and_when(TestDb::sqlite()).await;
}

#[tokio::test]
async fn the_audit_log_is_filtered_by_who_what_and_when_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    the_audit_log_is_filtered_by_who_what_and_when(db).await;
}

async fn wallboard_names(server: &TestServer) -> Vec<String> {
    let answer = server.get("/api/v1/config/wallboards").await;
    answer.json().await.expect("names")
}

#[tokio::test]
async fn wallboards_with_a_configuration_are_listed_by_name() {
    let db = TestDb::sqlite();
    let server = TestServer::start(config(&db, json!([]))).await;
    assert!(wallboard_names(&server).await.is_empty());
    let page = json!({"pages": [{"kind": "totals", "seconds": 20}], "teams": [], "sites": []});
    for name in ["hall-2", "default", "hall-1"] {
        let (status, answer) = server
            .put(&format!("/api/v1/config/wallboards/{name}"), &page)
            .await;
        assert_eq!(status, 200, "{answer}");
    }
    // Other settings (thresholds, bindings) are not wallboards.
    let thresholds: Value = server
        .get("/api/v1/config/thresholds")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        server.put("/api/v1/config/thresholds", &thresholds).await.0,
        200
    );
    assert_eq!(
        wallboard_names(&server).await,
        ["default", "hall-1", "hall-2"]
    );
    server.stop().await.expect("stops");
}

#[tokio::test]
async fn devices_that_opened_the_stream_are_listed_with_their_app_and_address() {
    let db = TestDb::sqlite();
    let server = TestServer::start(config(&db, json!([]))).await;
    let mut viewer = Follower::new(&server.url, "monti-desktop 9.9.9", Subscription::default());
    viewer.until_live().await.expect("live");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let device = loop {
        let devices: Vec<DeviceJson> = server
            .get("/api/v1/access/devices")
            .await
            .json()
            .await
            .expect("devices");
        if let Some(device) = devices.into_iter().find(|device| device.subject == "local") {
            break device;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the viewer was never noted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(device.client, "monti-desktop 9.9.9");
    assert_eq!(device.address.as_deref(), Some("127.0.0.1"));
    assert_eq!(device.connected, 1);
    assert!(device.signed_out_ms.is_none());
    // Nobody signs themselves out here (everyone is `local` on the embedded default).
    let answer = data_client()
        .post(format!(
            "{}/api/v1/access/devices/local/sign-out",
            server.url
        ))
        .send()
        .await
        .expect("request");
    assert_eq!(answer.status(), 400);
    let answer = data_client()
        .post(format!(
            "{}/api/v1/access/devices/nobody/sign-out",
            server.url
        ))
        .send()
        .await
        .expect("request");
    assert_eq!(answer.status(), 404);
    drop(viewer);
    server.stop().await.expect("stops");
}

/// `monti-cli` beside this test's binary (cargo builds it for the workspace's tests); built
/// here when it is missing.
fn monti_cli() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test path");
    let dir = (exe.parent().and_then(std::path::Path::parent)).expect("target/<profile>/deps");
    let binary = dir.join("monti-cli");
    if !binary.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = std::process::Command::new(cargo)
            .args(["build", "-p", "monti-client", "--bin", "monti-cli"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "monti-cli builds");
    }
    binary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monti_cli_lists_feedback_as_plain_text() {
    let db = TestDb::sqlite();
    let server = TestServer::start(config(&db, json!([]))).await;
    let hostile = "Red \u{1b}[31mALERT\u{1b}[0m\nsecond line";
    let (status, _) = server
        .post(
            "/api/v1/feedback",
            &json!({"text": hostile, "client": "monti-desktop 0.1.0", "context": "Teams view"}),
        )
        .await;
    assert_eq!(status, 200);
    let cli = monti_cli();
    let url = server.url.clone();
    let run = move |extra: &'static [&'static str]| {
        let (cli, url) = (cli.clone(), url.clone());
        tokio::task::spawn_blocking(move || {
            let output = std::process::Command::new(cli)
                .args(["feedback", "list", "--server", &url])
                .args(extra)
                .output()
                .expect("monti-cli runs");
            assert!(output.status.success(), "{output:?}");
            String::from_utf8(output.stdout).expect("utf-8")
        })
    };
    let text = run(&[]).await.expect("joins");
    assert!(
        text.contains("#1 ") && text.contains("local (monti-desktop 0.1.0; Teams view)"),
        "{text}"
    );
    assert!(
        text.contains("    second line"),
        "each line indented: {text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "no escape sequence reaches the terminal: {text:?}"
    );
    let json = run(&["--json"]).await.expect("joins");
    let list: Vec<FeedbackJson> = serde_json::from_str(json.trim()).expect("the server's JSON");
    assert_eq!(list[0].text, hostile, "stored as sent");
    server.stop().await.expect("stops");
}
