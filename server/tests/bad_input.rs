//! Bad input gets a clear refusal, only the offending connection is closed, nothing panics, and
//! a metric counts it; bad REST input gets a 4xx with a JSON body.

mod common;

use std::time::Duration;

use common::{TestDb, TestServer, test_config};
use futures_util::{SinkExt, StreamExt};
use monti_client::follow::{Follower, Step};
use monti_protocol::PROTOCOL_VERSION;
use monti_protocol::codec::encode_client;
use monti_protocol::message::{ClientHello, ClientMsg, ErrorCode, ServerMsg, Subscription};
use monti_protocol::model::TeamId;
use monti_protocol::rest::ErrorJson;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(server: &TestServer) -> Ws {
    let url = format!("ws://{}{}", server.addr, monti_protocol::STREAM_PATH);
    tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrade")
        .0
}

fn hello(version: u16) -> Message {
    let msg = ClientMsg::Hello(ClientHello {
        protocol_version: version,
        client_name: "bad".into(),
    });
    Message::Binary(encode_client(&msg).expect("encodes").into())
}

/// Sends `frames` and returns the error message and close code the server answers with.
async fn refusal(server: &TestServer, frames: Vec<Message>) -> (Option<ErrorCode>, Option<u16>) {
    let mut ws = open(server).await;
    for frame in frames {
        if ws.send(frame).await.is_err() {
            break;
        }
    }
    let mut code = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("answer in time")
        {
            Some(Ok(Message::Binary(frame))) => {
                if let Ok(ServerMsg::Error(error)) = monti_protocol::codec::decode_server(&frame) {
                    code = Some(error.code);
                }
            }
            Some(Ok(Message::Close(frame))) => {
                return (code, frame.map(|frame| u16::from(frame.code)));
            }
            Some(Ok(_)) => {}
            None | Some(Err(_)) => return (code, None),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_frame_closes_only_its_connection_with_a_clear_code() {
    let db = TestDb::sqlite();
    let server = TestServer::start(test_config(&db)).await;
    let mut bystander = Follower::new(&server.url, "bystander", Subscription::default());
    bystander.until_live().await.expect("live");

    let valid_hello = encode_client(&ClientMsg::Hello(ClientHello {
        protocol_version: PROTOCOL_VERSION,
        client_name: "truncated".into(),
    }))
    .expect("encodes");
    let subscribe_unknown_team = encode_client(&ClientMsg::Subscribe(Subscription {
        teams: vec![TeamId(9_999)],
        ..Subscription::default()
    }))
    .expect("encodes");
    let cases: Vec<(&str, Vec<Message>, ErrorCode)> = vec![
        (
            "garbage bytes",
            vec![Message::Binary(
                vec![0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01].into(),
            )],
            ErrorCode::BadFrame,
        ),
        (
            "a truncated frame",
            vec![Message::Binary(
                valid_hello[..valid_hello.len() - 3].to_vec().into(),
            )],
            ErrorCode::BadFrame,
        ),
        (
            "an oversized frame",
            vec![Message::Binary(vec![0u8; 200 * 1024].into())],
            ErrorCode::FrameTooLarge,
        ),
        (
            "an unknown message tag",
            vec![Message::Binary(vec![0x09, 0x00].into())],
            ErrorCode::UnknownMessage,
        ),
        (
            "a wrong protocol version",
            vec![hello(PROTOCOL_VERSION + 1)],
            ErrorCode::VersionMismatch,
        ),
        (
            "subscribe before hello",
            vec![Message::Binary(subscribe_unknown_team.clone().into())],
            ErrorCode::UnexpectedMessage,
        ),
        (
            "a subscribe for an unknown team",
            vec![
                hello(PROTOCOL_VERSION),
                Message::Binary(subscribe_unknown_team.into()),
            ],
            ErrorCode::UnknownTeam,
        ),
        (
            "a text frame",
            vec![Message::Text("hello".into())],
            ErrorCode::UnsupportedFrame,
        ),
    ];
    for (what, frames, expected) in cases {
        let before = refused_count(&server, expected).await;
        let (code, close) = refusal(&server, frames).await;
        assert_eq!(code, Some(expected), "{what}: error message");
        assert_eq!(close, Some(expected.close_code()), "{what}: close code");
        assert_eq!(
            refused_count(&server, expected).await,
            before + 1.0,
            "{what}: metric"
        );
    }

    // The bystander kept receiving deltas throughout and the server still serves.
    let mut deltas = 0;
    while deltas < 5 {
        match bystander.next().await.expect("no fatal error") {
            Step::Delta { .. } => deltas += 1,
            Step::Lost { reason, .. } => panic!("bystander lost its connection: {reason}"),
            _ => {}
        }
    }
    assert!(server.get("/healthz").await.status().is_success());
    server.stop().await.expect("stops");
    db.drop_database().await;
}

/// Refusals so far with `code`; a code never refused yet is not reported, which counts as 0.
async fn refused_count(server: &TestServer, code: ErrorCode) -> f64 {
    server
        .metric_if_reported(&format!("monti_refused_total{{code=\"{code:?}\"}}"))
        .await
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_mismatch_in_the_upgrade_request_gets_426_with_a_reason() {
    let db = TestDb::sqlite();
    let server = TestServer::start(test_config(&db)).await;
    let response = server
        .get(&format!(
            "{}?protocol={}",
            monti_protocol::STREAM_PATH,
            PROTOCOL_VERSION + 1
        ))
        .await;
    assert_eq!(response.status().as_u16(), 426);
    let body: ErrorJson = response.json().await.expect("json body");
    assert_eq!(body.error, "version_mismatch");
    assert!(
        body.message
            .contains(&format!("protocol {PROTOCOL_VERSION}")),
        "{}",
        body.message
    );
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rest_input_gets_a_4xx_with_a_json_body() {
    let db = TestDb::sqlite();
    let server = TestServer::start(test_config(&db)).await;
    let long_name_history = format!(
        "/api/v1/history?name={}&team=Sales%201&site=Berlin",
        "A".repeat(2_000)
    );
    for (path, status) in [
        ("/api/v1/agents?limit=0", 400),
        ("/api/v1/agents?limit=5000", 400),
        ("/api/v1/agents?state=sleeping", 400),
        ("/api/v1/agents?team=abc", 400),
        ("/api/v1/agents?team=9999", 400),
        ("/api/v1/agents?colour=red", 400),
        ("/api/v1/floor/summary?group_by=floor", 400),
        ("/api/v1/nothing-here", 404),
        ("/api/v1/queues/summary?window=forever", 400),
        ("/api/v1/queues/summary?window=15m&colour=red", 400),
        ("/api/v1/intervals?day=yesterday", 400),
        ("/api/v1/intervals?day=2026-02-30", 400),
        ("/api/v1/intervals?interval=7", 400),
        ("/api/v1/intervals?format=xlsx", 400),
        ("/api/v1/contacts?from=20&to=10", 400),
        ("/api/v1/contacts?from=-1", 400),
        ("/api/v1/contacts?limit=lots", 400),
        // History by the names an app shows: half a name, two ways at once, and names no
        // agent has (SQL, a bidirectional override, a NUL, 2,000 characters) are refused or
        // unknown, never an error of the server's.
        ("/api/v1/history?name=Anna&team=Sales%201", 400),
        ("/api/v1/history?name=Anna&site=Berlin", 400),
        (
            "/api/v1/history?agent=a1&name=Anna&team=Sales%201&site=Berlin",
            400,
        ),
        (
            "/api/v1/history?name=x%27%20OR%201%3D1--&team=Sales%201&site=Berlin",
            404,
        ),
        (
            "/api/v1/history?name=%E2%80%AEannA&team=Sales%201&site=Berlin",
            404,
        ),
        (
            "/api/v1/history?name=An%00na&team=Sales%201&site=Berlin",
            404,
        ),
        (&long_name_history, 404),
        // The trend: names as SQL, control characters and encodings that are not UTF-8 are
        // unknown names; numbers past what the period allows are refused.
        ("/api/v1/trend?team=x%27%20OR%201%3D1--", 400),
        ("/api/v1/trend?site=Ber%00lin", 400),
        ("/api/v1/trend?reason=%FF%FE", 400),
        ("/api/v1/trend?from_ms=99999999999999999999999", 400),
        ("/api/v1/trend?step_ms=18446744073709551615", 200),
        ("/api/v1/trend?to_ms=18446744073709551615", 400),
        ("/api/v1/trend?from_ms=1&from_ms=2&to_ms=0", 400),
    ] {
        let response = server.get(path).await;
        assert_eq!(response.status().as_u16(), status, "{path}");
        if status == 200 {
            continue;
        }
        let body: ErrorJson = response
            .json()
            .await
            .unwrap_or_else(|err| panic!("{path}: no JSON error body: {err}"));
        assert!(!body.message.is_empty(), "{path}");
    }
    // And good input works: paging and filters.
    let page: monti_protocol::rest::AgentPage = server
        .get("/api/v1/agents?team=0&limit=5&offset=2")
        .await
        .json()
        .await
        .expect("page");
    assert!(page.total > 5);
    assert_eq!(page.offset, 2);
    assert_eq!(page.agents.len(), 5);
    assert!(page.agents.iter().all(|agent| agent.team == 0));
    let teams: Vec<monti_protocol::rest::TeamJson> = server
        .get("/api/v1/teams")
        .await
        .json()
        .await
        .expect("teams");
    assert_eq!(teams.iter().map(|team| team.n_agents).sum::<u32>(), 300);
    server.stop().await.expect("stops");
    db.drop_database().await;
}

/// Hostile bodies on the contact events API: each refused with a reason, nothing stored, the
/// server still answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_contact_events_get_a_4xx_with_a_json_body() {
    let db = TestDb::sqlite();
    let mut config = test_config(&db);
    config.simulator.enabled = false;
    config.ingest.max_body_bytes = 64 * 1024;
    config.amazon_connect.eventbridge_key = "a-key-of-sixteen-chars".to_owned();
    let server = TestServer::start(config).await;
    let http = reqwest::Client::new();
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let many: Vec<serde_json::Value> = (0..20_000)
        .map(|n| serde_json::json!({"event_id": format!("e{n}"), "contact": "c", "kind": "ended", "at_ms": 1}))
        .collect();
    let too_many = serde_json::json!({ "events": many }).to_string();
    let connect = monti_server::sources::connect_contacts::PATH;
    let cases: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        (
            "/api/v1/contact-events",
            "text/plain",
            b"{\"events\": []}".to_vec(),
            415,
        ),
        (
            "/api/v1/contact-events",
            "application/json",
            b"not json".to_vec(),
            400,
        ),
        (
            "/api/v1/contact-events",
            "application/json",
            vec![0xff, 0xfe, 0x00],
            400,
        ),
        (
            "/api/v1/contact-events",
            "application/json",
            nested.clone().into_bytes(),
            400,
        ),
        (
            "/api/v1/contact-events",
            "application/json",
            b"{\"events\": 5}".to_vec(),
            422,
        ),
        (
            "/api/v1/contact-events",
            "application/json",
            b"{\"events\": [], \"x\": 1}".to_vec(),
            422,
        ),
        (
            "/api/v1/contact-events",
            "application/json",
            too_many.into_bytes(),
            413,
        ),
        (connect, "application/json", b"{}".to_vec(), 400),
        (connect, "application/json", nested.into_bytes(), 400),
        (connect, "application/json", vec![b'x'; 70 * 1024], 400),
    ];
    for (path, content_type, body, status) in cases {
        let response = http
            .post(format!("{}{path}", server.url))
            .header("content-type", content_type)
            .header("x-monti-key", "a-key-of-sixteen-chars")
            .body(body)
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status().as_u16(), status, "{path} {content_type}");
        let body: serde_json::Value = response
            .json()
            .await
            .unwrap_or_else(|err| panic!("{path}: no JSON error body: {err}"));
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|message| !message.is_empty()),
            "{path}: {body}"
        );
    }
    let legs: Vec<serde_json::Value> = server
        .get("/api/v1/contacts?from=0")
        .await
        .json()
        .await
        .expect("legs");
    assert!(legs.is_empty(), "nothing stored: {legs:?}");
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_still_shaking_hands_is_told_about_shutdown() {
    let db = TestDb::sqlite();
    let server = TestServer::start(test_config(&db)).await;
    let mut ws = open(&server).await;
    ws.send(hello(PROTOCOL_VERSION)).await.expect("hello");
    // Wait for the server's hello, then never subscribe.
    match tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("answer")
    {
        Some(Ok(Message::Binary(frame))) => {
            assert!(matches!(
                monti_protocol::codec::decode_server(&frame),
                Ok(ServerMsg::Hello(_))
            ));
        }
        other => panic!("expected the server's hello, got {other:?}"),
    }
    server.cancel();
    let mut code = None;
    while let Ok(Some(Ok(message))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await
    {
        match message {
            Message::Binary(frame) => {
                if let Ok(ServerMsg::Error(error)) = monti_protocol::codec::decode_server(&frame) {
                    code = Some(error.code);
                }
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    assert_eq!(code, Some(ErrorCode::ShuttingDown));
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_are_validated_and_kept() {
    let db = TestDb::sqlite();
    let server = TestServer::start(test_config(&db)).await;
    let url = format!("{}/api/v1/config/thresholds", server.url);
    let http = reqwest::Client::new();
    for (what, body) in [
        (
            "red before amber",
            r#"{"default":{"wrap_up":{"amber_secs":90,"red_secs":60}}}"#,
        ),
        (
            "an unknown state",
            r#"{"default":{"sleeping":{"amber_secs":1,"red_secs":2}}}"#,
        ),
        (
            "a reason without a code",
            r#"{"default":{"not_ready:":{"amber_secs":1,"red_secs":2}}}"#,
        ),
        (
            "a reason code with a control character",
            r#"{"default":{"not_ready:lu\u0007nch":{"amber_secs":1,"red_secs":2}}}"#,
        ),
        ("not JSON", "{"),
        ("an unknown field", r#"{"default":{},"colours":{}}"#),
    ] {
        let response = http
            .put(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("put");
        assert_eq!(response.status().as_u16(), 400, "{what}");
        let error: ErrorJson = response.json().await.expect("json error body");
        assert_eq!(error.error, "bad_request", "{what}");
    }
    // Per state, per reason (lunch longer than any other break) and per team.
    let good = r#"{"default":{"not_ready":{"amber_secs":300,"red_secs":600},"not_ready:lunch":{"amber_secs":1800,"red_secs":2400}},"teams":{"Sales 1":{"ringing":{"amber_secs":5,"red_secs":10},"not_ready:lunch":{"amber_secs":2400,"red_secs":3000}}}}"#;
    let response = http
        .put(&url)
        .header("content-type", "application/json")
        .body(good)
        .send()
        .await
        .expect("put");
    assert_eq!(response.status().as_u16(), 200);
    let stored: serde_json::Value = server
        .get("/api/v1/config/thresholds")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        stored,
        serde_json::from_str::<serde_json::Value>(good).expect("json")
    );
    server.stop().await.expect("stops");
    db.drop_database().await;
}

async fn put_wallboard(server: &TestServer, name: &str, body: &str) -> reqwest::Response {
    reqwest::Client::new()
        .put(format!("{}/api/v1/config/wallboards/{name}", server.url))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("put")
}

async fn read_wallboard(server: &TestServer, name: &str) -> monti_protocol::rest::WallboardConfig {
    let response = server
        .get(&format!("/api/v1/config/wallboards/{name}"))
        .await;
    assert_eq!(response.status().as_u16(), 200, "{name}");
    response.json().await.expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallboard_configs_are_validated_kept_per_name_and_default_for_the_rest() {
    use monti_protocol::rest::{PageKind, WallboardConfig};
    let db = TestDb::sqlite();
    let server = TestServer::start(test_config(&db)).await;
    assert_eq!(
        read_wallboard(&server, "hall-1").await,
        WallboardConfig::default()
    );

    for (what, name, body) in [
        ("no pages", "hall-1", r#"{"pages":[]}"#),
        (
            "a one-second page",
            "hall-1",
            r#"{"pages":[{"kind":"totals","seconds":1}]}"#,
        ),
        (
            "an unknown page",
            "hall-1",
            r#"{"pages":[{"kind":"weather","seconds":10}]}"#,
        ),
        (
            "night hours that are no time",
            "hall-1",
            r#"{"pages":[{"kind":"totals","seconds":10}],"night":{"from":"7pm","to":"06:00","brightness_percent":30}}"#,
        ),
        (
            "a name with a slash-like dot",
            "hall.1",
            r#"{"pages":[{"kind":"totals","seconds":10}]}"#,
        ),
        ("not JSON", "hall-1", "{"),
    ] {
        let response = put_wallboard(&server, name, body).await;
        assert_eq!(response.status().as_u16(), 400, "{what}");
        let error: ErrorJson = response.json().await.expect("json error body");
        assert_eq!(error.error, "bad_request", "{what}");
    }

    let hall = r#"{"pages":[{"kind":"attention","seconds":30},{"kind":"totals","seconds":10}],"teams":["Sales 1"],"sites":[],"night":{"from":"22:00","to":"06:00","brightness_percent":30}}"#;
    assert_eq!(
        put_wallboard(&server, "hall-1", hall)
            .await
            .status()
            .as_u16(),
        200
    );
    let stored = read_wallboard(&server, "hall-1").await;
    assert_eq!(stored.pages[0].kind, PageKind::Attention);
    assert_eq!(stored.teams, vec!["Sales 1".to_owned()]);

    // A board without its own configuration follows `default`.
    let default = r#"{"pages":[{"kind":"sites","seconds":12}]}"#;
    assert_eq!(
        put_wallboard(&server, "default", default)
            .await
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        read_wallboard(&server, "hall-2").await.pages[0].kind,
        PageKind::Sites
    );
    assert_eq!(
        read_wallboard(&server, "hall-1").await,
        stored,
        "its own configuration wins"
    );
    server.stop().await.expect("stops");
    db.drop_database().await;
}
