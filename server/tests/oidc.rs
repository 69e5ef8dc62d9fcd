//! Tokens from a real OpenID provider: the device authorization grant run against
//! `oidc-provider` (started by scripts/test, its URL in `MONTI_TEST_OIDC_URL`), completed through
//! the provider's own HTML forms as a user would, and the access token checked by the server's
//! token verifier with keys fetched through discovery.

mod common;

use std::time::Duration;

use common::{TestDb, TestServer, test_config};
use monti_client::connection::Connection;
use monti_client::follow::Follower;
use monti_protocol::message::{AuthInfo, ErrorCode, Subscription};
use monti_protocol::model::StateKind;
use monti_protocol::rest::{AgentPage, ErrorJson, SiteJson, TeamJson};
use monti_server::api::token::{DiscoveredKeys, Rules, Verifier};
use monti_server::config::{AuthMode, Config};
use serde_json::{Value, json};

const CLIENT_ID: &str = "monti";
const AUDIENCE: &str = "urn:monti:api";

/// The provider's URL, or `None` (skip) when it is not configured and not required.
fn provider() -> Option<String> {
    common::service("MONTI_TEST_OIDC_URL")
}

/// The first `<form>` of a page: its action and its inputs' names and values.
fn first_form(html: &str) -> Option<(String, Vec<(String, String)>)> {
    let form = &html[html.find("<form")?..];
    let form = &form[..form.find("</form>").unwrap_or(form.len())];
    let action = attribute(&form[..form.find('>')?], "action")?;
    let mut fields = Vec::new();
    for input in form.split("<input").skip(1) {
        let tag = &input[..input.find('>').unwrap_or(input.len())];
        if let Some(name) = attribute(tag, "name") {
            fields.push((name, attribute(tag, "value").unwrap_or_default()));
        }
    }
    Some((action, fields))
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = tag[start..].find('"')? + start;
    Some(tag[start..end].to_owned())
}

/// Does what a person does on the provider's pages: confirm the code, sign in, consent.
async fn complete_verification(
    http: &reqwest::Client,
    issuer: &str,
    verification_uri: &str,
    user_code: &str,
    user: &str,
) {
    let mut page = http
        .get(verification_uri)
        .send()
        .await
        .expect("verification page")
        .text()
        .await
        .expect("html");
    for _ in 0..5 {
        if page.contains("Sign-in Success") {
            break;
        }
        let (url, fields) = filled_form(issuer, &page, user, user_code);
        page = http
            .post(url)
            .form(&fields)
            .send()
            .await
            .expect("form")
            .text()
            .await
            .expect("html");
    }
    assert!(
        page.contains("Sign-in Success"),
        "the device flow did not finish: {page}"
    );
}

/// The first form of a test provider page, filled in as `user` would (any password; the user
/// code where one is asked for): where to post it, and its fields.
fn filled_form(
    issuer: &str,
    page: &str,
    user: &str,
    user_code: &str,
) -> (String, Vec<(String, String)>) {
    let (action, fields) = first_form(page).unwrap_or_else(|| panic!("no form on {page}"));
    let fields = fields
        .into_iter()
        .map(|(name, value)| match name.as_str() {
            "user_code" if value.is_empty() => (name, user_code.to_owned()),
            "login" => (name, user.to_owned()),
            "password" => (name, "any".to_owned()),
            _ => (name, value),
        })
        .collect();
    let url = if action.starts_with("http") {
        action
    } else {
        format!("{issuer}{action}")
    };
    (url, fields)
}

/// Signs `user` in with the device flow and returns the token response.
async fn device_flow(issuer: &str, user: &str) -> Value {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let device: Value = http
        .post(format!("{issuer}/device/auth"))
        .form(&[
            ("client_id", CLIENT_ID),
            ("scope", "openid offline_access monti"),
            ("resource", AUDIENCE),
        ])
        .send()
        .await
        .expect("device authorization")
        .json()
        .await
        .expect("json");
    let user_code = device["user_code"].as_str().expect("user code");
    let verification_uri = device["verification_uri"]
        .as_str()
        .expect("verification uri");
    complete_verification(&http, issuer, verification_uri, user_code, user).await;
    http.post(format!("{issuer}/token"))
        .form(&[
            ("client_id", CLIENT_ID),
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            (
                "device_code",
                device["device_code"].as_str().expect("device code"),
            ),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json")
}

fn verifier(issuer: &str) -> Verifier<DiscoveredKeys> {
    let rules = Rules {
        issuer: issuer.to_owned(),
        audience: AUDIENCE.to_owned(),
        groups_claim: "groups".to_owned(),
        leeway_secs: 30,
    };
    Verifier::new(
        rules,
        DiscoveredKeys::new(issuer).expect("keys"),
        Duration::from_secs(30),
    )
}

#[tokio::test]
async fn a_device_flow_token_from_the_real_provider_names_the_user_and_groups() {
    let Some(issuer) = provider() else { return };
    let tokens = device_flow(&issuer, "anna").await;
    assert!(
        tokens["refresh_token"].is_string(),
        "offline_access yields a refresh token: {tokens}"
    );
    let access = tokens["access_token"].as_str().expect("access token");
    let identity = verifier(&issuer)
        .verify(access)
        .await
        .expect("the server accepts it");
    assert_eq!(identity.subject, "anna");
    assert_eq!(identity.groups, ["monti-sup-berlin"]);
}

#[tokio::test]
async fn a_tampered_token_or_one_for_another_issuer_is_refused() {
    let Some(issuer) = provider() else { return };
    let tokens = device_flow(&issuer, "ben").await;
    let access = tokens["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();
    // Flip one character of the signature.
    let mut tampered = access.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let refused = verifier(&issuer)
        .verify(&tampered)
        .await
        .expect_err("tampered");
    assert_eq!(refused.reason(), "signature", "{refused}");
    // The same provider's keys, but MONTI configured for another issuer.
    let rules = Rules {
        issuer: "https://elsewhere.example".to_owned(),
        audience: AUDIENCE.to_owned(),
        groups_claim: "groups".to_owned(),
        leeway_secs: 30,
    };
    let other = Verifier::new(
        rules,
        DiscoveredKeys::new(&issuer).expect("keys"),
        Duration::from_secs(30),
    );
    let refused = other.verify(&access).await.expect_err("another issuer");
    assert_eq!(refused.reason(), "issuer", "{refused}");
}

/// A server signing callers in through the test provider, with one binding per test group.
fn oidc_config(db: &TestDb, issuer: &str) -> Config {
    let mut config = test_config(db);
    config.auth.mode = AuthMode::Oidc;
    config.auth.issuer = issuer.to_owned();
    config.auth.audience = AUDIENCE.to_owned();
    config.auth.client_id = CLIENT_ID.to_owned();
    config.auth.bindings = serde_json::from_value(serde_json::json!([
        {"group": "monti-admins", "role": "admin"},
        {"group": "monti-sup-berlin", "role": "supervisor", "sites": ["Berlin"]},
        {"group": "monti-team-sales", "role": "team_lead", "teams": ["Sales 1"]},
        {"group": "monti-wallboard", "role": "wallboard"},
        {"group": "monti-ingest", "role": "ingest"},
    ]))
    .expect("bindings");
    config
}

async fn access_token(issuer: &str, user: &str) -> String {
    device_flow(issuer, user).await["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

async fn get(server: &TestServer, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!("{}{path}", server.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_supervisors_of_different_scopes_each_see_only_their_own() {
    let Some(issuer) = provider() else { return };
    let db = TestDb::sqlite();
    let server = TestServer::start(oidc_config(&db, &issuer)).await;
    let admin = access_token(&issuer, "admin").await;
    let sites: Vec<SiteJson> = get(&server, "/api/v1/sites", Some(&admin))
        .await
        .json()
        .await
        .expect("sites");
    let teams: Vec<TeamJson> = get(&server, "/api/v1/teams", Some(&admin))
        .await
        .json()
        .await
        .expect("teams");
    let berlin = sites
        .iter()
        .find(|site| site.name == "Berlin")
        .expect("Berlin")
        .id;
    let sales = teams
        .iter()
        .find(|team| team.name == "Sales 1")
        .expect("Sales 1")
        .id;

    let anna = access_token(&issuer, "anna").await;
    let ben = access_token(&issuer, "ben").await;
    let agents_of = |token: String| {
        let server = &server;
        async move {
            let page: AgentPage = get(server, "/api/v1/agents?limit=1000", Some(&token))
                .await
                .json()
                .await
                .expect("agents");
            assert!(page.total > 0);
            page.agents
        }
    };
    assert!(
        agents_of(anna.clone())
            .await
            .iter()
            .all(|agent| agent.site == berlin),
        "anna saw beyond Berlin"
    );
    assert!(
        agents_of(ben.clone())
            .await
            .iter()
            .all(|agent| agent.team == sales),
        "ben saw beyond Sales 1"
    );
    let ben_teams: Vec<TeamJson> = get(&server, "/api/v1/teams", Some(&ben))
        .await
        .json()
        .await
        .expect("teams");
    assert_eq!(
        ben_teams
            .iter()
            .map(|team| team.name.as_str())
            .collect::<Vec<_>>(),
        ["Sales 1"]
    );

    // The stream is cut the same way, snapshot and deltas.
    let mut anna_view =
        Follower::new(&server.url, "anna", Subscription::default()).with_token(&anna);
    let mut ben_view = Follower::new(&server.url, "ben", Subscription::default()).with_token(&ben);
    anna_view.until_live().await.expect("anna live");
    ben_view.until_live().await.expect("ben live");
    for _ in 0..20 {
        anna_view.next().await.expect("anna follows");
        ben_view.next().await.expect("ben follows");
    }
    assert!(anna_view.floor().n_agents() > 0 && ben_view.floor().n_agents() > 0);
    assert!(
        anna_view
            .floor()
            .agents()
            .all(|agent| agent.info.site.0 == berlin)
    );
    assert!(
        ben_view
            .floor()
            .agents()
            .all(|agent| agent.info.team.0 == sales)
    );
    assert_eq!(
        ben_view
            .floor()
            .teams()
            .map(|team| team.name.as_str())
            .collect::<Vec<_>>(),
        ["Sales 1"]
    );

    // A subscription naming another team is refused.
    let other_team = Subscription {
        teams: vec![monti_protocol::model::TeamId(if sales == 0 {
            1
        } else {
            0
        })],
        ..Subscription::default()
    };
    let mut refused = Follower::new(&server.url, "ben", other_team).with_token(&ben);
    let err = refused.until_live().await.expect_err("refused");
    assert!(
        matches!(
            err,
            monti_client::ClientError::Refused {
                code: ErrorCode::UnknownTeam,
                ..
            }
        ),
        "{err}"
    );
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_bad_tokens_get_401_and_roles_limit_what_a_caller_may_do() {
    let Some(issuer) = provider() else { return };
    let db = TestDb::sqlite();
    let server = TestServer::start(oidc_config(&db, &issuer)).await;
    let nobody = access_token(&issuer, "nobody").await;
    let ingest = access_token(&issuer, "ingest").await;
    let wall = access_token(&issuer, "wall").await;
    for (what, token, status) in [
        ("no token", None, 401),
        ("garbage", Some("not-a-token"), 401),
        ("groups that map to no role", Some(nobody.as_str()), 403),
        (
            "the ingest role reading the floor",
            Some(ingest.as_str()),
            403,
        ),
        ("a wallboard reading the floor", Some(wall.as_str()), 200),
    ] {
        let response = get(&server, "/api/v1/floor/summary", token).await;
        assert_eq!(response.status().as_u16(), status, "{what}");
        if status != 200 {
            let body: ErrorJson = response.json().await.expect("the same JSON error body");
            assert!(
                ["unauthorized", "forbidden"].contains(&body.error.as_str()),
                "{what}"
            );
        }
    }
    // The stream refuses before upgrading, and announces the provider to those it lets in.
    let refused = Connection::connect(&server.url, "anonymous").await;
    assert!(matches!(
        refused,
        Err(monti_client::ClientError::Refused {
            code: ErrorCode::Unauthorized,
            ..
        })
    ));
    // A role that may not stream is refused before the upgrade too (403, not 101 then a close).
    let upgrade = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/stream?protocol={}",
            server.url,
            monti_protocol::PROTOCOL_VERSION
        ))
        .header("authorization", format!("Bearer {ingest}"))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .expect("answered");
    assert_eq!(upgrade.status().as_u16(), 403);
    let body: ErrorJson = upgrade.json().await.expect("a JSON body");
    assert_eq!(body.error, "forbidden");
    // Authorization schemes are case-insensitive.
    let lower = reqwest::Client::new()
        .get(format!("{}/api/v1/floor/summary", server.url))
        .header("authorization", format!("bearer {wall}"))
        .send()
        .await
        .expect("answered");
    assert_eq!(lower.status().as_u16(), 200);
    let connection = Connection::connect_with(&system(), &server.url, "wallboard", Some(&wall))
        .await
        .expect("connects");
    assert_eq!(
        connection.hello().auth,
        AuthInfo::Oidc {
            issuer: issuer.clone(),
            client_id: CLIENT_ID.to_owned(),
            audience: AUDIENCE.to_owned()
        }
    );
    assert!(
        server
            .metric("monti_auth_failures_total{code=\"missing\"}")
            .await
            >= 2.0
    );
    server.stop().await.expect("stops");
    db.drop_database().await;
}

/// Events and roster syncs need the ingest role: a wallboard or a team lead is refused, an
/// ingest token stores them, and history answers within the reader's scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_ingest_role_feeds_events_and_history_stays_in_scope() {
    let Some(issuer) = provider() else { return };
    let db = TestDb::sqlite();
    let mut config = oidc_config(&db, &issuer);
    config.simulator.enabled = false;
    let server = TestServer::start(config).await;
    let ingest = access_token(&issuer, "ingest").await;
    let wall = access_token(&issuer, "wall").await;
    let ben = access_token(&issuer, "ben").await;
    let since = monti_server::core::clock::Clock::system().now_ms() - 1_000;
    let batch = serde_json::json!({"events": [
        {"event_id": "o-1", "agent": "s1", "name": "Sam Sales", "team": "Sales 1",
         "site": "Berlin", "state": "on_call", "since_ms": since},
        {"event_id": "o-2", "agent": "b1", "name": "Bea Billing", "team": "Billing 1",
         "site": "Berlin", "state": "available", "since_ms": since},
    ]});
    let post = |token: Option<String>| {
        let mut request = reqwest::Client::new()
            .post(format!("{}/api/v1/events", server.url))
            .json(&batch);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(post(None).await.expect("request").status(), 401);
    assert_eq!(
        post(Some(wall.clone())).await.expect("request").status(),
        403
    );
    assert_eq!(
        post(Some(ben.clone())).await.expect("request").status(),
        403
    );
    let stored = post(Some(ingest.clone())).await.expect("request");
    assert_eq!(stored.status(), 200);
    let result: monti_protocol::ingest::EventBatchResultJson = stored.json().await.expect("json");
    assert_eq!(result.applied, 2);
    let roster = reqwest::Client::new()
        .post(format!("{}/api/v1/roster", server.url))
        .bearer_auth(&wall)
        .json(&serde_json::json!({"teams": [{"name": "Sneaky"}]}))
        .send()
        .await
        .expect("request");
    assert_eq!(roster.status(), 403);
    // Ben leads Sales 1 (which exists once the next tick has committed it): he reads Sam's
    // history, not Bea's, and the ingest role reads neither.
    server.settle().await;
    let own = get(&server, "/api/v1/history?agent=s1", Some(&ben)).await;
    assert_eq!(own.status(), 200);
    let other = get(&server, "/api/v1/history?agent=b1", Some(&ben)).await;
    assert_eq!(other.status(), 404);
    // By name, the same cut.
    let own = "/api/v1/history?name=Sam%20Sales&team=Sales%201&site=Berlin";
    assert_eq!(get(&server, own, Some(&ben)).await.status(), 200);
    let other = "/api/v1/history?name=Bea%20Billing&team=Billing%201&site=Berlin";
    assert_eq!(get(&server, other, Some(&ben)).await.status(), 404);
    // Another team's history is as unknown as a team that does not exist: same status, same
    // body, and no cursor that would count its rows.
    let team = get(&server, "/api/v1/history?team=Billing%201", Some(&ben)).await;
    let missing = get(&server, "/api/v1/history?team=No%20Such%20Team", Some(&ben)).await;
    assert_eq!(team.status(), 404);
    assert_eq!(missing.status(), 404);
    assert_eq!(
        team.text().await.expect("body"),
        missing.text().await.expect("body")
    );
    // And so is its id in the agent list (Sales 1 and Billing 1 are teams 0 and 1, in the order
    // they were stored).
    let teams: Vec<monti_protocol::rest::TeamJson> = get(&server, "/api/v1/teams", Some(&wall))
        .await
        .json()
        .await
        .expect("teams");
    let billing = teams
        .iter()
        .find(|team| team.name == "Billing 1")
        .expect("Billing 1")
        .id;
    let hidden = get(
        &server,
        &format!("/api/v1/agents?team={billing}"),
        Some(&ben),
    )
    .await;
    let unknown = get(&server, "/api/v1/agents?team=999", Some(&ben)).await;
    assert_eq!(hidden.status(), 400);
    assert_eq!(unknown.status(), 400);
    let hidden: ErrorJson = hidden.json().await.expect("json");
    let unknown: ErrorJson = unknown.json().await.expect("json");
    assert_eq!(hidden.error, unknown.error);
    assert_eq!(
        hidden.message.replace(&billing.to_string(), "N"),
        unknown.message.replace("999", "N")
    );
    let by_ingest = get(&server, "/api/v1/history?agent=s1", Some(&ingest)).await;
    assert_eq!(by_ingest.status(), 403);
    // The trend counts only agents in the reader's scope: Ben's team has Sam on a call; the
    // wallboard sees the whole floor.
    let now_counts = async |token: &str| {
        let trend: monti_protocol::rest::TrendJson = get(&server, "/api/v1/trend", Some(token))
            .await
            .json()
            .await
            .expect("a trend");
        let last = trend.len() - 1;
        [StateKind::OnCall, StateKind::Available].map(|kind| trend.count(kind, last))
    };
    assert_eq!(now_counts(&ben).await, [1, 0]);
    assert_eq!(now_counts(&wall).await, [1, 1]);
    let by_ingest = get(&server, "/api/v1/trend", Some(&ingest)).await;
    assert_eq!(by_ingest.status(), 403);
    server.stop().await.expect("stops");
    db.drop_database().await;
}

/// A provider of our own for one test, on its own port, stopped when dropped.
struct OwnProvider {
    child: std::process::Child,
    url: String,
}

impl OwnProvider {
    /// Starts `tests/oidc/provider.mjs` (its packages are installed by scripts/test).
    async fn start(port: u16, key_id: &str, token_ttl_secs: u32) -> OwnProvider {
        OwnProvider::start_shaped(port, key_id, token_ttl_secs, "").await
    }

    /// A provider whose access tokens have the shape of a commercial provider (`SHAPE`).
    async fn start_shaped(
        port: u16,
        key_id: &str,
        token_ttl_secs: u32,
        shape: &str,
    ) -> OwnProvider {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/oidc/provider.mjs");
        let child = std::process::Command::new("node")
            .arg(script)
            .env("PORT", port.to_string())
            .env("KEY_ID", key_id)
            .env("SHAPE", shape)
            .env("ACCESS_TOKEN_TTL", token_ttl_secs.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("node runs the provider");
        let provider = OwnProvider {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..100 {
            let discovery = format!("{}/.well-known/openid-configuration", provider.url);
            if reqwest::get(discovery).await.is_ok() {
                return provider;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        drop(provider);
        panic!("the provider on port {port} did not start");
    }
}

impl Drop for OwnProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_closes_the_stream_unless_it_was_renewed() {
    // Needs node and the provider's packages, like the shared provider; skip with it.
    if provider().is_none() {
        return;
    }
    let provider = OwnProvider::start(9411, "short-lived", 6).await;
    let db = TestDb::sqlite();
    let mut config = oidc_config(&db, &provider.url);
    config.auth.leeway_secs = 0;
    let server = TestServer::start(config).await;

    let mut lapsing = Follower::new(&server.url, "lapsing", Subscription::default())
        .with_token(&access_token(&provider.url, "wall").await);
    let mut renewing = Follower::new(&server.url, "renewing", Subscription::default())
        .with_token(&access_token(&provider.url, "wall").await);
    lapsing.until_live().await.expect("live");
    renewing.until_live().await.expect("live");

    // Renew every two seconds (tokens live six, leaving room for a slow machine), and follow
    // well past the first expiry.
    let started = std::time::Instant::now();
    let mut next_renewal = Duration::from_secs(2);
    let mut lapsed = None;
    while started.elapsed() < Duration::from_secs(9) {
        if started.elapsed() > next_renewal {
            let fresh = access_token(&provider.url, "wall").await;
            renewing.renew_token(&fresh).await.expect("renews");
            next_renewal += Duration::from_secs(2);
        }
        tokio::select! {
            event = lapsing.next(), if lapsed.is_none() => {
                if let Err(err) = event {
                    lapsed = Some(err);
                }
            }
            event = renewing.next() => {
                let event = event.expect("the renewed connection stays open");
                assert!(!matches!(event, monti_client::Step::Lost { .. }), "renewed viewer lost: {event:?}");
            }
        }
    }
    let lapsed = lapsed.expect("the lapsing viewer was closed");
    assert!(
        matches!(
            lapsed,
            monti_client::ClientError::Refused {
                code: ErrorCode::Unauthorized,
                ..
            }
        ),
        "{lapsed}"
    );
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_at_the_provider_is_picked_up_without_a_restart() {
    if provider().is_none() {
        return;
    }
    let db = TestDb::sqlite();
    let first = OwnProvider::start(9412, "key-one", 600).await;
    let mut config = oidc_config(&db, &first.url);
    config.auth.keys_refetch_secs = 0;
    let server = TestServer::start(config).await;
    let token = access_token(&first.url, "admin").await;
    assert_eq!(
        get(&server, "/api/v1/teams", Some(&token))
            .await
            .status()
            .as_u16(),
        200
    );

    // The provider comes back with a new signing key under a new key id.
    drop(first);
    let second = OwnProvider::start(9412, "key-two", 600).await;
    let rotated = access_token(&second.url, "admin").await;
    assert_eq!(
        get(&server, "/api/v1/teams", Some(&rotated))
            .await
            .status()
            .as_u16(),
        200
    );
    // Tokens signed by the retired key are no longer accepted.
    assert_eq!(
        get(&server, "/api/v1/teams", Some(&token))
            .await
            .status()
            .as_u16(),
        401
    );
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_signs_in_with_the_device_flow_keeps_the_token_and_sees_only_its_scope() {
    use monti_client::auth::{self, AuthError, Provider, TokenStore};
    let Some(issuer) = provider() else { return };
    // The keyring crate's own in-memory backend; the code that stores and loads is the same.
    keyring::set_default_credential_builder(keyring::mock::default_credential_builder());
    let db = TestDb::sqlite();
    let server = TestServer::start(oidc_config(&db, &issuer)).await;

    // The app learns where to sign in from the server, without a token.
    let settings = auth::server_auth(&system(), &server.url)
        .await
        .expect("settings");
    assert_eq!(settings.mode, "oidc");
    let settings = auth::SignInSettings::from_server(settings).expect("oidc settings");
    assert_eq!(settings.scopes, "openid offline_access");
    assert_eq!(settings.resource.as_deref(), Some(AUDIENCE));
    let provider = Provider::discover(&system(), &settings)
        .await
        .expect("discovery");
    let code = provider.start().await.expect("a code to show");
    assert!(!code.user_code.is_empty());
    // The app polls while the person signs in elsewhere: the first polls are still pending.
    let polling = tokio::spawn({
        let provider = provider.clone();
        let code = code.clone();
        async move { provider.poll(&code).await }
    });
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    complete_verification(
        &browser,
        &issuer,
        &code.verification_uri,
        &code.user_code,
        "ben",
    )
    .await;
    let tokens = polling.await.expect("joins").expect("signed in");
    let refresh = tokens.refresh_token.expect("a refresh token");

    let store = TokenStore::new(&server.url, &settings).expect("keyring");
    store.probe().await.expect("a usable keyring");
    store.save(&refresh).await.expect("saved");
    let fresh = auth::refresh_stored(&provider, &store)
        .await
        .expect("refreshed");
    let rotated = fresh.refresh_token.clone().expect("rotated refresh token");
    assert_ne!(rotated, refresh, "the provider rotates refresh tokens");
    assert_eq!(
        store.load().await.expect("loads"),
        Some(rotated),
        "the rotated token is what is kept"
    );

    let teams: Vec<TeamJson> = get(&server, "/api/v1/teams", Some(&fresh.access_token))
        .await
        .json()
        .await
        .expect("teams");
    let sales = teams
        .into_iter()
        .find(|team| team.name == "Sales 1")
        .expect("Sales 1")
        .id;
    let mut view = Follower::new(&server.url, "ben's app", Subscription::default())
        .with_token(&fresh.access_token);
    view.until_live().await.expect("live");
    assert!(view.floor().n_agents() > 0);
    assert!(
        view.floor()
            .agents()
            .all(|agent| agent.info.team.0 == sales)
    );

    // Signing out forgets the token here and ends it at the provider (RFC 7009): the provider
    // refuses it from then on, and the client says the sign-in ended.
    let stored = store.load().await.expect("loads").expect("stored");
    store.delete().await.expect("deleted");
    assert!(matches!(
        auth::refresh_stored(&provider, &store).await,
        Err(AuthError::NotSignedIn)
    ));
    assert!(
        provider.revoke(&stored).await.expect("revoked"),
        "the provider revokes"
    );
    let ended = provider.refresh(&stored).await.expect_err("revoked");
    assert!(matches!(ended, AuthError::SignInEnded(_)), "{ended}");
    assert!(
        ended
            .to_string()
            .contains("sign in again (monti-cli login)"),
        "{ended}"
    );
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_records_sign_ins_once_a_day_and_refusals_and_only_admins_read_it() {
    let Some(issuer) = provider() else { return };
    let db = TestDb::sqlite();
    let server = TestServer::start(oidc_config(&db, &issuer)).await;
    let admin = access_token(&issuer, "admin").await;
    let anna = access_token(&issuer, "anna").await;
    let nobody = access_token(&issuer, "nobody").await;
    for _ in 0..3 {
        assert_eq!(
            get(&server, "/api/v1/teams", Some(&anna))
                .await
                .status()
                .as_u16(),
            200
        );
    }
    assert_eq!(
        get(&server, "/api/v1/teams", Some("forged"))
            .await
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        get(&server, "/api/v1/teams", Some(&nobody))
            .await
            .status()
            .as_u16(),
        403
    );
    // A supervisor may not read the audit log.
    assert_eq!(
        get(&server, "/api/v1/audit", Some(&anna))
            .await
            .status()
            .as_u16(),
        403
    );

    // Events are written in the background; wait until the last one is there.
    let mut events: Vec<monti_server::store::db::AuditEvent> = Vec::new();
    for _ in 0..50 {
        events = get(&server, "/api/v1/audit?limit=100", Some(&admin))
            .await
            .json()
            .await
            .expect("audit");
        let has = |kind: &str, subject: &str| {
            (events.iter())
                .any(|event| event.kind == kind && event.subject.as_deref() == Some(subject))
        };
        if has("refused", "nobody") && has("sign_in", "admin") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sign_ins: Vec<&str> = events
        .iter()
        .filter(|event| event.kind == "sign_in")
        .filter_map(|event| event.subject.as_deref())
        .collect();
    assert_eq!(
        sign_ins
            .iter()
            .filter(|&&subject| subject == "anna")
            .count(),
        1,
        "{events:?}"
    );
    let dropped = server.metric("monti_audit_events_dropped_total").await;
    assert!(sign_ins.contains(&"admin"), "dropped {dropped}: {events:?}");
    // Each entry names where the request came from.
    assert!(events.iter().any(|event| event.kind == "refused"
        && event.subject.is_none()
        && event.detail == "malformed: the token is not a JWT from 127.0.0.1"));
    assert!(
        (events.iter())
            .filter(|event| event.kind == "sign_in")
            .all(|event| event.detail.ends_with(" from 127.0.0.1")),
        "{events:?}"
    );
    assert!(
        events
            .windows(2)
            .all(|pair| pair[0].created_at >= pair[1].created_at),
        "newest first"
    );
    assert!(
        events.iter().all(|event| !event.detail.contains(&anna)),
        "no token in the log"
    );
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_names_the_caller_and_its_roles_and_every_floor_viewer_reads_thresholds() {
    let Some(issuer) = provider() else { return };
    let db = TestDb::sqlite();
    let server = TestServer::start(oidc_config(&db, &issuer)).await;
    for (user, role) in [
        ("ben", "team_lead"),
        ("anna", "supervisor"),
        ("wall", "wallboard"),
    ] {
        let token = access_token(&issuer, user).await;
        let me: monti_protocol::rest::MeJson = get(&server, "/api/v1/me", Some(&token))
            .await
            .json()
            .await
            .expect("me");
        assert_eq!(me.subject, user);
        assert_eq!(me.roles, vec![role.to_owned()]);
        // What the caller may do, as `can` decides it: the apps offer no more.
        use monti_server::api::auth::Action;
        use monti_server::config::Role;
        let role = Role::ALL
            .into_iter()
            .find(|r| r.name() == role)
            .expect("a role");
        let may: Vec<&str> = (Action::ALL.into_iter())
            .filter(|&action| monti_server::api::auth::permits(role, action))
            .map(Action::name)
            .collect();
        assert_eq!(me.may, may, "{user}");
        assert!(
            !me.may.iter().any(|action| action == "change_config"),
            "{user}"
        );
        let thresholds = get(&server, "/api/v1/config/thresholds", Some(&token)).await;
        assert_eq!(thresholds.status().as_u16(), 200, "{user} reads thresholds");
    }
    // A wallboard reads its page configuration; a team lead does not read configuration.
    let wall = access_token(&issuer, "wall").await;
    let board = get(&server, "/api/v1/config/wallboards/hall-1", Some(&wall)).await;
    assert_eq!(board.status().as_u16(), 200);
    let ben = access_token(&issuer, "ben").await;
    let board = get(&server, "/api/v1/config/wallboards/hall-1", Some(&ben)).await;
    assert_eq!(board.status().as_u16(), 403);
    let ingest = access_token(&issuer, "ingest").await;
    let refused = get(&server, "/api/v1/config/thresholds", Some(&ingest)).await;
    assert_eq!(refused.status().as_u16(), 403, "ingest sees nothing");
    assert_eq!(
        get(&server, "/api/v1/me", None).await.status().as_u16(),
        401
    );
    server.stop().await.expect("stops");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallboard_reads_thresholds_but_only_an_admin_changes_them_and_that_is_audited() {
    let Some(issuer) = provider() else { return };
    let db = TestDb::sqlite();
    let server = TestServer::start(oidc_config(&db, &issuer)).await;
    let admin = access_token(&issuer, "admin").await;
    let wall = access_token(&issuer, "wall").await;
    let url = format!("{}/api/v1/config/thresholds", server.url);
    let http = reqwest::Client::new();
    let current: monti_protocol::rest::Thresholds =
        get(&server, "/api/v1/config/thresholds", Some(&wall))
            .await
            .json()
            .await
            .expect("the wallboard reads its thresholds");
    let mut changed = current.clone();
    changed.default.insert(
        "wrap_up".into(),
        monti_protocol::rest::Limit {
            amber_secs: 30,
            red_secs: 45,
        },
    );
    let refused = http
        .put(&url)
        .bearer_auth(&wall)
        .json(&changed)
        .send()
        .await
        .expect("put");
    assert_eq!(
        refused.status().as_u16(),
        403,
        "a wallboard cannot change configuration"
    );
    let accepted = http
        .put(&url)
        .bearer_auth(&admin)
        .json(&changed)
        .send()
        .await
        .expect("put");
    assert_eq!(accepted.status().as_u16(), 200);
    let now: monti_protocol::rest::Thresholds =
        get(&server, "/api/v1/config/thresholds", Some(&wall))
            .await
            .json()
            .await
            .expect("json");
    assert_eq!(now, changed);
    let mut audited = false;
    for _ in 0..50 {
        let events: Vec<monti_server::store::db::AuditEvent> =
            get(&server, "/api/v1/audit", Some(&admin))
                .await
                .json()
                .await
                .expect("audit");
        audited = events.iter().any(|event| {
            event.kind == "config_change" && event.subject.as_deref() == Some("admin")
        });
        if audited {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(audited, "the change is in the audit log");
    server.stop().await.expect("stops");
    db.drop_database().await;
}

/// The client's transport with the system's trust store and proxy settings.
fn system() -> monti_client::Transport {
    monti_client::Transport::system().expect("transport")
}

/// A stream as its bytes arrive: every frame is searched for names the viewer must never
/// receive, then folded so the test can wait for what it must receive.
struct RawView {
    who: &'static str,
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    floor: monti_protocol::floor::Floor,
    forbidden: &'static [&'static str],
    frames: usize,
}

impl RawView {
    async fn open(
        server: &TestServer,
        who: &'static str,
        token: &str,
        sub: Subscription,
        forbidden: &'static [&'static str],
    ) -> RawView {
        use futures_util::SinkExt;
        use monti_protocol::message::{ClientHello, ClientMsg};
        use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
        let url = format!(
            "ws://{}{}?protocol={}",
            server.addr,
            monti_protocol::STREAM_PATH,
            monti_protocol::PROTOCOL_VERSION
        );
        let mut request = url.into_client_request().expect("request");
        (request.headers_mut()).insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("upgrade");
        let hello = ClientMsg::Hello(ClientHello {
            protocol_version: monti_protocol::PROTOCOL_VERSION,
            client_name: who.into(),
        });
        for msg in [hello, ClientMsg::Subscribe(sub)] {
            let frame = monti_protocol::codec::encode_client(&msg).expect("encodes");
            ws.send(Message::Binary(frame.into())).await.expect("send");
        }
        RawView {
            who,
            ws,
            floor: monti_protocol::floor::Floor::awaiting_snapshot(),
            forbidden,
            frames: 0,
        }
    }

    /// Reads frames until `done` holds for the folded floor.
    async fn until(&mut self, what: &str, done: impl Fn(&monti_protocol::floor::Floor) -> bool) {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !(self.floor.is_ready() && done(&self.floor)) {
            let frame = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Ok(Some(Ok(Message::Binary(frame)))) => frame,
                Ok(Some(Ok(_))) => continue,
                other => panic!("{}: no {what} before the stream ended: {other:?}", self.who),
            };
            self.frames += 1;
            assert_no_name(self.who, "the stream", &frame, self.forbidden);
            let msg = monti_protocol::codec::decode_server(&frame).expect("decodes");
            if let monti_protocol::message::ServerMsg::Error(error) = &msg {
                panic!("{}: {error:?}", self.who);
            }
            self.floor.apply(&msg).expect("folds");
        }
    }
}

fn assert_no_name(who: &str, answer: &str, bytes: &[u8], forbidden: &[&str]) {
    for name in forbidden {
        assert!(
            !bytes
                .windows(name.len())
                .any(|window| window == name.as_bytes()),
            "{who} received {name:?} in {answer}: {}",
            String::from_utf8_lossy(bytes)
        );
    }
}

fn names_team(floor: &monti_protocol::floor::Floor, name: &str) -> bool {
    floor.teams().any(|team| team.name == name)
}

/// Every answer a scoped caller gets, REST and stream, searched byte by byte for the names of
/// teams, sites and agents outside its scope, over a run in which teams are created, renamed and
/// emptied and agents move in and out of the scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_caller_never_receives_a_name_outside_its_scope() {
    use monti_protocol::message::Detail;
    use monti_protocol::model::Grouping;
    use serde_json::json;
    let Some(issuer) = provider() else { return };
    let db = TestDb::sqlite();
    let mut config = oidc_config(&db, &issuer);
    config.simulator.enabled = false;
    let server = TestServer::start(config).await;
    let admin = access_token(&issuer, "admin").await;
    let anna = access_token(&issuer, "anna").await; // supervisor, Berlin
    let ben = access_token(&issuer, "ben").await; // team lead, Sales 1
    let http = reqwest::Client::new();
    let send = |method: reqwest::Method, path: &str, body: Value| {
        http.request(method, format!("{}{path}", server.url))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let sync = |body: Value| send(reqwest::Method::POST, "/api/v1/roster", body);
    let agent = |id: &str, name: &str, team: &str, site: &str| json!({"external_id": id, "name": name, "team": team, "site": site});
    let response = sync(json!({
        "sites": [{"name": "Berlin"}, {"name": "Lisbon Secret"}],
        "teams": [{"name": "Sales 1"}, {"name": "Inside Team"}, {"name": "Secret Team"},
                  {"name": "Moving Team"}],
        "reasons": [{"code": "lunch", "label": "Lunch"}],
        "agents": [
            agent("a1", "Sara Sales", "Sales 1", "Berlin"),
            agent("a2", "Yuri Inside", "Inside Team", "Berlin"),
            agent("a3", "Xenia Secret", "Secret Team", "Lisbon Secret"),
            agent("a4", "Mona Moving", "Moving Team", "Lisbon Secret"),
            agent("a6", "Ivo Hidden", "Inside Team", "Lisbon Secret"),
        ],
    }))
    .await
    .expect("roster");
    assert_eq!(
        response.status(),
        200,
        "{}",
        response.text().await.unwrap_or_default()
    );
    let mut event_id = 0;
    let mut events = |agents: &[&str], state: &str| {
        let events: Vec<Value> = agents
            .iter()
            .map(|agent| {
                event_id += 1;
                let mut event = json!({"event_id": format!("e{event_id}"), "agent": agent,
                    "state": state, "since_ms": monti_server::core::clock::Clock::system().now_ms()});
                if state == "not_ready" {
                    event["reason"] = json!("lunch");
                }
                event
            })
            .collect();
        send(
            reqwest::Method::POST,
            "/api/v1/events",
            json!({ "events": events }),
        )
    };
    let everyone = ["a1", "a2", "a3", "a4", "a6"];
    assert_eq!(
        events(&everyone, "available")
            .await
            .expect("events")
            .status(),
        200
    );
    // Bindings name sites and teams, resolved on the floor: wait until it holds them.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while get(&server, "/api/v1/agents", Some(&admin))
        .await
        .json::<AgentPage>()
        .await
        .expect("agents")
        .total
        < 5
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the roster never reached the floor"
        );
        tokio::task::yield_now().await;
    }

    const ANNA_MUST_NOT: &[&str] = &[
        "Lisbon Secret",
        "Secret Team",
        "Secret Renamed",
        "Secret New",
        "Xenia Secret",
        "Zed Secret",
        "Ivo Hidden",
        "a3",
        "a6",
        "a7",
    ];
    const BEN_MUST_NOT: &[&str] = &[
        "Lisbon Secret",
        "Inside Team",
        "Secret Team",
        "Secret Renamed",
        "Secret New",
        "Moving Team",
        "Xenia Secret",
        "Zed Secret",
        "Ivo Hidden",
        "Yuri Inside",
        "Mona Moving",
    ];
    let summary = Subscription {
        detail: Detail::Summary,
        grouping: Grouping::TeamSite,
        ..Subscription::default()
    };
    let mut views = [
        RawView::open(
            &server,
            "anna",
            &anna,
            Subscription::default(),
            ANNA_MUST_NOT,
        )
        .await,
        RawView::open(
            &server,
            "anna's wallboard",
            &anna,
            summary.clone(),
            ANNA_MUST_NOT,
        )
        .await,
        RawView::open(&server, "ben", &ben, Subscription::default(), BEN_MUST_NOT).await,
        RawView::open(&server, "ben's wallboard", &ben, summary, BEN_MUST_NOT).await,
    ];
    for view in &mut views {
        view.until("snapshot", |_| true).await;
    }
    assert!(names_team(&views[0].floor, "Inside Team"));
    assert!(!names_team(&views[0].floor, "Moving Team"));
    assert_eq!(views[2].floor.n_agents(), 1);

    // A team created at the other site, a team renamed there, states changing everywhere.
    let response = sync(json!({
        "sites": [], "reasons": [],
        "teams": [{"name": "Secret New"}, {"name": "Secret Team", "rename_to": "Secret Renamed"}],
        "agents": [agent("a7", "Zed Secret", "Secret New", "Lisbon Secret")],
    }))
    .await
    .expect("roster");
    assert_eq!(
        response.status(),
        200,
        "{}",
        response.text().await.unwrap_or_default()
    );
    assert_eq!(
        events(&["a3", "a6", "a7", "a1"], "not_ready")
            .await
            .expect("events")
            .status(),
        200
    );
    // Moving Team's agent comes to Berlin: Anna may now name the team, and sees it go again.
    let moving = |site: &str| {
        sync(json!({"sites": [], "teams": [], "reasons": [],
            "agents": [agent("a4", "Mona Moving", "Moving Team", site)]}))
    };
    assert_eq!(moving("Berlin").await.expect("move").status(), 200);
    views[0]
        .until("Moving Team named", |floor| {
            names_team(floor, "Moving Team")
        })
        .await;
    views[1]
        .until("Moving Team named", |floor| {
            names_team(floor, "Moving Team")
        })
        .await;
    assert_eq!(moving("Lisbon Secret").await.expect("move").status(), 200);
    for view in &mut views[..2] {
        view.until("Moving Team dropped", |floor| {
            !names_team(floor, "Moving Team")
        })
        .await;
    }
    assert_eq!(
        events(&everyone, "on_call").await.expect("events").status(),
        200
    );
    let on_call = monti_protocol::model::StateKind::OnCall;
    for view in &mut views {
        view.until("every change", |floor| {
            let groups = floor.summaries(floor.grouping());
            !groups.is_empty()
                && groups
                    .iter()
                    .all(|group| group.total() == group.counts[on_call.index()])
        })
        .await;
    }

    // Configuration naming both sides.
    let thresholds = json!({
        "default": {"ringing": {"amber_secs": 15, "red_secs": 20}},
        "teams": {"Secret Renamed": {"ringing": {"amber_secs": 5, "red_secs": 9}},
                  "Inside Team": {"ringing": {"amber_secs": 6, "red_secs": 9}}},
    });
    let put = send(
        reqwest::Method::PUT,
        "/api/v1/config/thresholds",
        thresholds,
    )
    .await;
    assert_eq!(put.expect("thresholds").status(), 200);
    let wallboard = json!({
        "pages": [{"kind": "totals", "seconds": 20}],
        "teams": ["Secret Renamed", "Inside Team", "Future Team"],
        "sites": ["Lisbon Secret"],
        "hidden_sites": true,
    });
    let put = send(
        reqwest::Method::PUT,
        "/api/v1/config/wallboards/default",
        wallboard,
    )
    .await;
    assert_eq!(put.expect("wallboard").status(), 200);

    // Every REST route, with the other side's names and ids where a route takes them.
    let admin_teams: Vec<TeamJson> = get(&server, "/api/v1/teams", Some(&admin))
        .await
        .json()
        .await
        .expect("teams");
    let id_of = |name: &str| {
        (admin_teams.iter())
            .find(|team| team.name == name)
            .map(|team| team.id)
            .expect(name)
    };
    let secret = id_of("Secret Renamed");
    let inside = id_of("Inside Team");
    let mut n_answers = 0;
    for (who, token, forbidden) in [("anna", &anna, ANNA_MUST_NOT), ("ben", &ben, BEN_MUST_NOT)] {
        let mut read = async |path: String| {
            let response = get(&server, &path, Some(token)).await;
            let status = response.status().as_u16();
            let body = response.bytes().await.expect("body");
            assert_no_name(who, &path, &body, forbidden);
            n_answers += 1;
            (status, String::from_utf8_lossy(&body).into_owned())
        };
        for path in [
            "/api/v1/sites",
            "/api/v1/teams",
            "/api/v1/reasons",
            "/api/v1/agents?limit=1000",
            "/api/v1/floor/summary?group_by=team",
            "/api/v1/floor/summary?group_by=site",
            "/api/v1/floor/summary?group_by=team_site",
            "/api/v1/me",
            "/api/v1/auth",
            "/api/v1/audit",
            "/api/v1/config/thresholds",
            "/api/v1/config/wallboards/default",
            "/api/v1/config/wallboards/lobby",
            "/api/v1/history?agent=a1",
            "/api/v1/history?team=Sales%201",
            "/api/v1/trend",
            "/api/v1/trend?team=Sales%201",
        ] {
            read(path.to_owned()).await;
        }
        // A team or agent outside the scope answers exactly like one that does not exist.
        let unknown = secret + 1000;
        for (hidden, missing, id) in [
            (
                "/api/v1/history?team=Secret%20Renamed".to_owned(),
                "/api/v1/history?team=No%20Such%20Team".to_owned(),
                None,
            ),
            (
                "/api/v1/trend?team=Secret%20Renamed".to_owned(),
                "/api/v1/trend?team=No%20Such%20Team".to_owned(),
                None,
            ),
            (
                "/api/v1/history?agent=a3".to_owned(),
                "/api/v1/history?agent=nobody-here".to_owned(),
                None,
            ),
            (
                "/api/v1/contacts?agent=a3".to_owned(),
                "/api/v1/contacts?agent=nobody-here".to_owned(),
                None,
            ),
            (
                format!("/api/v1/agents?team={secret}"),
                format!("/api/v1/agents?team={unknown}"),
                Some((secret, unknown)),
            ),
        ] {
            let (status, body) = read(hidden.clone()).await;
            let (missing_status, mut missing_body) = read(missing).await;
            if let Some((secret, unknown)) = id {
                missing_body = missing_body.replace(&unknown.to_string(), &secret.to_string());
            }
            assert_eq!(
                (status, body),
                (missing_status, missing_body),
                "{who}: {hidden}"
            );
        }
    }
    // History pages hold only rows the caller is shown: a cursor never steps over hidden ones.
    let mut after = 0;
    let mut rows = 0;
    loop {
        let path = format!("/api/v1/history?team=Inside%20Team&limit=1&after={after}");
        let body = get(&server, &path, Some(&anna))
            .await
            .bytes()
            .await
            .expect("body");
        assert_no_name("anna", &path, &body, ANNA_MUST_NOT);
        let page: monti_protocol::ingest::HistoryPageJson =
            serde_json::from_slice(&body).expect("a history page");
        assert!(
            page.entries.iter().all(|entry| entry.agent == "a2"),
            "{page:?}"
        );
        rows += page.entries.len();
        match page.next_after {
            Some(next) => {
                assert_eq!(page.entries.len(), 1, "a full page for every cursor");
                after = next;
            }
            None => break,
        }
    }
    assert_eq!(
        rows, 2,
        "Yuri was available, then on a call: one row per page"
    );
    // Configuration: another team's thresholds are left out; a wallboard configured for
    // teams and sites beyond the scope keeps what the caller may name and shows nothing.
    let thresholds: monti_protocol::rest::Thresholds =
        get(&server, "/api/v1/config/thresholds", Some(&anna))
            .await
            .json()
            .await
            .expect("json");
    assert_eq!(thresholds.teams.keys().collect::<Vec<_>>(), ["Inside Team"]);
    let wallboard: monti_protocol::rest::WallboardConfig =
        get(&server, "/api/v1/config/wallboards/default", Some(&anna))
            .await
            .json()
            .await
            .expect("json");
    assert_eq!(wallboard.teams, ["Inside Team"]);
    assert!(wallboard.sites.is_empty() && wallboard.hidden_sites && wallboard.shows_nothing());
    // The administrator reads what was stored (a team not created yet included), and the
    // hidden flags, which only answers carry, were not stored.
    let stored: monti_protocol::rest::WallboardConfig =
        get(&server, "/api/v1/config/wallboards/default", Some(&admin))
            .await
            .json()
            .await
            .expect("json");
    assert_eq!(
        stored.teams,
        ["Secret Renamed", "Inside Team", "Future Team"]
    );
    assert_eq!(stored.sites, ["Lisbon Secret"]);
    assert!(!stored.hidden_teams && !stored.hidden_sites);
    // A subscription naming a team outside the scope is refused like one naming no team.
    let hidden = Subscription {
        teams: vec![monti_protocol::model::TeamId(inside)],
        ..Subscription::default()
    };
    let err = Follower::new(&server.url, "ben", hidden)
        .with_token(&ben)
        .until_live()
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, monti_client::ClientError::Refused { code: ErrorCode::UnknownTeam, message }
            if message == &format!("there is no team with id {inside}")),
        "{err}"
    );
    let frames: usize = views.iter().map(|view| view.frames).sum();
    println!("searched {frames} stream frames and {n_answers} REST answers");
    // Each view had its hello, its snapshot and deltas searched.
    assert!(views.iter().all(|view| view.frames >= 3) && n_answers > 30);
    server.stop().await.expect("stops");
    db.drop_database().await;
}

/// The refusal table: each way a provider and MONTI can be configured apart, with a real token
/// from the test provider, answers with the status, the RFC 6750 challenge and a message that
/// names what to fix; `/api/v1/me` answers any valid token with what the provider sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_misconfiguration_is_refused_with_its_reason() {
    let Some(issuer) = provider() else { return };
    let anna = access_token(&issuer, "anna").await; // groups: monti-sup-berlin
    let nobody = access_token(&issuer, "nobody").await; // no groups
    struct Case {
        what: &'static str,
        configure: Box<dyn Fn(&mut Config)>,
        token: Option<String>,
        status: u16,
        challenge: Option<&'static str>,
        words: &'static [&'static str],
    }
    let trailing = issuer.clone() + "/";
    let cases = vec![
        Case {
            what: "no token",
            configure: Box::new(|_| {}),
            token: None,
            status: 401,
            challenge: Some("Bearer realm=\"monti\""),
            words: &["send Authorization: Bearer"],
        },
        Case {
            what: "garbage",
            configure: Box::new(|_| {}),
            token: Some("not-a-token".into()),
            status: 401,
            challenge: Some("error=\"invalid_token\""),
            words: &["not a JWT"],
        },
        Case {
            what: "the issuer configured with a trailing slash",
            configure: Box::new(move |config| config.auth.issuer = trailing.clone()),
            token: Some(anna.clone()),
            status: 401,
            challenge: Some("error_description=\"the token was issued by"),
            words: &["trailing slash"],
        },
        Case {
            what: "another audience",
            configure: Box::new(|config| config.auth.audience = "api://monti".into()),
            token: Some(anna.clone()),
            status: 401,
            challenge: Some("error=\"invalid_token\""),
            words: &["MONTI expects \"api://monti\"", "[auth] audience"],
        },
        Case {
            what: "the groups claim under another name",
            configure: Box::new(|config| config.auth.groups_claim = "roles".into()),
            token: Some(anna.clone()),
            status: 403,
            challenge: None,
            words: &["no claim \"roles\"", "groups", "GET /api/v1/me"],
        },
        Case {
            what: "a binding naming a site that does not exist",
            configure: Box::new(|config| {
                config.auth.bindings = serde_json::from_value(serde_json::json!([
                    {"group": "monti-sup-berlin", "role": "supervisor", "sites": ["Atlantis"]},
                ]))
                .expect("bindings")
            }),
            token: Some(anna.clone()),
            status: 403,
            challenge: None,
            words: &["monti-sup-berlin", "do not exist"],
        },
        Case {
            what: "no groups at all",
            configure: Box::new(|_| {}),
            token: Some(nobody.clone()),
            status: 403,
            challenge: None,
            words: &[
                "signed in as \"nobody\"",
                "no [[auth.bindings]] gives them a role",
            ],
        },
    ];
    for case in cases {
        let db = TestDb::sqlite();
        let mut config = oidc_config(&db, &issuer);
        (case.configure)(&mut config);
        let server = TestServer::start(config).await;
        let response = get(&server, "/api/v1/floor/summary", case.token.as_deref()).await;
        assert_eq!(response.status().as_u16(), case.status, "{}", case.what);
        let challenge = (response.headers().get("www-authenticate"))
            .map(|value| value.to_str().expect("ascii").to_owned());
        match case.challenge {
            Some(expected) => {
                let challenge = challenge.unwrap_or_default();
                assert!(challenge.contains(expected), "{}: {challenge}", case.what);
            }
            None => assert_eq!(challenge, None, "{}", case.what),
        }
        let body: ErrorJson = response.json().await.expect("a JSON body");
        for words in case.words {
            assert!(
                body.message.contains(words),
                "{}: {}",
                case.what,
                body.message
            );
        }
        // Whoever holds a valid token may ask who they are, role or not.
        if case.status == 403 {
            let me: monti_protocol::rest::MeJson =
                get(&server, "/api/v1/me", case.token.as_deref())
                    .await
                    .json()
                    .await
                    .expect("me answers a valid token");
            assert!(me.roles.is_empty(), "{}", case.what);
            assert!(
                me.note
                    .as_deref()
                    .is_some_and(|note| note.contains("no [[auth.bindings]]")),
                "{}: {me:?}",
                case.what
            );
        }
        server.stop().await.expect("stops");
        db.drop_database().await;
    }
}

/// `monti-server --check-auth` against the real provider: every step printed, a configuration
/// that cannot work fails with the reason, and a token is checked rule by rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_auth_prints_each_step_and_fails_on_what_cannot_work() {
    let Some(issuer) = provider() else { return };
    let nobody = access_token(&issuer, "nobody").await;
    let admin = access_token(&issuer, "admin").await;
    let data = common::temp_dir("check-auth");
    let run = |issuer: &str, token: Option<&str>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_monti-server"));
        command
            .arg("--check-auth")
            .env("MONTI_AUTH_MODE", "oidc")
            .env("MONTI_AUTH_ISSUER", issuer)
            .env("MONTI_AUTH_AUDIENCE", AUDIENCE)
            .env("MONTI_AUTH_CLIENT_ID", CLIENT_ID)
            .env(
                "MONTI_AUTH_BINDINGS",
                r#"[{"group": "monti-admins", "role": "admin"},
                    {"group": "monti-sup-berlin", "role": "supervisor", "sites": ["Atlantis"]}]"#,
            )
            .env(
                "MONTI_DATABASE_URL",
                format!("sqlite://{}/monti.db", data.display()),
            );
        if let Some(token) = token {
            command.arg("--token").arg(token);
        }
        let output = command.output().expect("monti-server runs");
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.success(), text)
    };
    let (ok, text) = run(&issuer, Some(&admin));
    assert!(ok, "{text}");
    assert!(
        text.contains("2 bindings in force, from the configuration file (nothing stored yet)"),
        "{text}"
    );
    for words in [
        "ok   discovery document",
        "as configured",
        "signing keys at",
        "device flow",
    ] {
        assert!(text.contains(words), "{words}: {text}");
    }
    assert!(!text.contains("FAIL"), "{text}");
    assert!(
        text.contains("warn the binding of group \"monti-sup-berlin\"")
            && text.contains("site \"Atlantis\""),
        "{text}"
    );
    assert!(text.contains("roles: admin via \"monti-admins\""), "{text}");
    let (ok, text) = run(&format!("{issuer}/"), None);
    assert!(!ok, "{text}");
    assert!(
        text.contains("FAIL") && text.contains("trailing slash"),
        "{text}"
    );
    let (ok, text) = run(&issuer, Some(&nobody));
    assert!(!ok, "{text}");
    assert!(
        text.contains("no [[auth.bindings]] gives them a role"),
        "{text}"
    );

    // Bindings changed in the Admin window are the ones checked, and said to be.
    let mut config = test_config(&TestDb::sqlite());
    config.database.url = format!("sqlite://{}/monti.db", data.display());
    config.auth.bindings = serde_json::from_value(json!([
        {"group": "monti-admins", "role": "admin"},
        {"group": "monti-sup-berlin", "role": "supervisor", "sites": ["Atlantis"]}
    ]))
    .expect("bindings");
    let server = TestServer::start(config).await;
    let wider = json!([
        {"group": "monti-admins", "role": "admin"},
        {"group": "monti-sup-berlin", "role": "supervisor", "sites": ["Atlantis"]},
        {"group": "nobody-group", "role": "team_lead"}
    ]);
    let answer = reqwest::Client::new()
        .put(format!("{}/api/v1/access/bindings", server.url))
        .json(&wider)
        .send()
        .await
        .expect("request");
    assert_eq!(answer.status(), 200);
    server.stop().await.expect("stops");
    let (ok, text) = run(&issuer, Some(&admin));
    assert!(ok, "{text}");
    assert!(
        text.contains("3 bindings in force, from the database (last changed by local"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(data);
}

/// Each provider's token shape as its vendor documents it (tests/oidc/provider.mjs, SHAPE), with
/// MONTI configured the way docs/AUTH.md says for that provider: the app signs in with the
/// device flow using the scopes and resource the server announces, and the token gives the
/// role its groups are bound to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_provider_shape_signs_in_end_to_end() {
    use monti_client::auth::{self, Provider};
    if provider().is_none() {
        return;
    }
    type Configure = fn(&mut Config);
    let shapes: [(&str, Configure, &[&str], &[&str]); 5] = [
        ("", |_| {}, &["groups", "aud"], &[]),
        (
            "entra",
            |config| {
                config.auth.audience = "api://monti-api".into();
                config.auth.groups_claim = "roles".into();
                config.auth.scopes = "openid offline_access api://monti-api/.default".into();
                config.auth.resource_indicator = false;
            },
            &["roles", "scp", "tid", "ver"],
            &["groups"],
        ),
        (
            "okta",
            |config| {
                config.auth.audience = "api://default".into();
                config.auth.resource_indicator = false;
            },
            &["groups", "scp", "cid", "uid"],
            &[],
        ),
        (
            "keycloak",
            |config| {
                config.auth.audience = "monti-api".into();
                config.auth.groups_claim = "realm_access.roles".into();
                config.auth.resource_indicator = false;
            },
            &["realm_access", "azp"],
            &["groups"],
        ),
        (
            "cognito",
            |config| {
                config.auth.audience = CLIENT_ID.into();
                config.auth.groups_claim = "cognito:groups".into();
                config.auth.resource_indicator = false;
            },
            &["cognito:groups", "client_id", "token_use"],
            &["aud", "groups"],
        ),
    ];
    for (shape, configure, present, absent) in shapes {
        let own = OwnProvider::start_shaped(common::free_port(), "shaped-key", 600, shape).await;
        let db = TestDb::sqlite();
        let mut config = oidc_config(&db, &own.url);
        configure(&mut config);
        let server = TestServer::start(config).await;
        let settings = auth::SignInSettings::from_server(
            auth::server_auth(&system(), &server.url)
                .await
                .expect("settings"),
        )
        .expect("oidc");
        let provider = Provider::discover(&system(), &settings)
            .await
            .expect("discovery");
        let code = provider
            .start()
            .await
            .unwrap_or_else(|err| panic!("{shape}: {err}"));
        let polling = tokio::spawn({
            let provider = provider.clone();
            let code = code.clone();
            async move { provider.poll(&code).await }
        });
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .expect("client");
        complete_verification(
            &browser,
            &own.url,
            &code.verification_uri,
            &code.user_code,
            "admin",
        )
        .await;
        let tokens = polling
            .await
            .expect("joins")
            .unwrap_or_else(|err| panic!("{shape}: {err}"));
        // The token has the vendor's shape.
        let payload = tokens.access_token.split('.').nth(1).expect("a JWT");
        let claims: Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .expect("base64"),
        )
        .expect("claims");
        for claim in present {
            assert!(
                claims.get(claim).is_some(),
                "{shape}: no {claim} in {claims}"
            );
        }
        for claim in absent {
            assert!(claims.get(claim).is_none(), "{shape}: {claim} in {claims}");
        }
        // MONTI, configured for that provider, takes it.
        let me = get(&server, "/api/v1/me", Some(&tokens.access_token)).await;
        assert_eq!(me.status().as_u16(), 200, "{shape}");
        let me: monti_protocol::rest::MeJson = me.json().await.expect("me");
        assert_eq!(me.roles, ["admin"], "{shape}: {me:?}");
        let summary = get(&server, "/api/v1/floor/summary", Some(&tokens.access_token)).await;
        assert_eq!(summary.status().as_u16(), 200, "{shape}");
        // And the refresh asks the same way.
        let refreshed = provider
            .refresh(tokens.refresh_token.as_deref().expect("a refresh token"))
            .await
            .unwrap_or_else(|err| panic!("{shape}: refresh: {err}"));
        let again = get(&server, "/api/v1/me", Some(&refreshed.access_token)).await;
        assert_eq!(again.status().as_u16(), 200, "{shape}: refreshed token");
        server.stop().await.expect("stops");
        db.drop_database().await;
        drop(own);
    }
}

/// Follows a browser sign-in at the test provider as a person would: its login and consent
/// forms, then the redirect to the app's loopback port; returns that page.
async fn complete_browser_sign_in(issuer: &str, url: &str, user: &str) -> String {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let mut response = browser.get(url).send().await.expect("sign-in page");
    for _ in 0..5 {
        let at = response.url().clone();
        let page = response.text().await.expect("html");
        if at.host_str() == Some("127.0.0.1") && at.path() == "/callback" {
            return page;
        }
        let (action, fields) = filled_form(issuer, &page, user, "");
        response = browser
            .post(action)
            .form(&fields)
            .send()
            .await
            .expect("form");
    }
    panic!("the browser sign-in did not come back to the app");
}

/// A provider without the device flow (as Amazon Cognito): the app signs in through the browser
/// with the authorization code flow, PKCE and a loopback redirect, and gets a refresh token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_device_flow_the_app_signs_in_through_the_browser() {
    use monti_client::auth::{self, AuthError, Provider};
    if provider().is_none() {
        return;
    }
    let port = common::free_port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/oidc/provider.mjs");
    let child = std::process::Command::new("node")
        .arg(script)
        .env("PORT", port.to_string())
        .env("DEVICE_FLOW", "off")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("node runs the provider");
    let own = OwnProvider {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let discovery = format!("{}/.well-known/openid-configuration", own.url);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while reqwest::get(&discovery).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the provider did not start"
        );
        tokio::task::yield_now().await;
    }
    let db = TestDb::sqlite();
    let server = TestServer::start(oidc_config(&db, &own.url)).await;
    let settings = auth::SignInSettings::from_server(
        auth::server_auth(&system(), &server.url)
            .await
            .expect("settings"),
    )
    .expect("oidc");
    let provider = Provider::discover(&system(), &settings)
        .await
        .expect("discovery");
    assert!(!provider.has_device_flow());
    assert!(matches!(provider.start().await, Err(AuthError::Http(_))));

    let attempt = provider.browser_sign_in().await.expect("a sign-in page");
    assert!(
        attempt.url.contains("code_challenge_method=S256"),
        "{}",
        attempt.url
    );
    let url = attempt.url.clone();
    let finished = tokio::spawn(attempt.finish(Duration::from_secs(60)));
    // A browser's preconnect: a connection to the app's port that never sends a request.
    let redirect = reqwest::Url::parse(&url)
        .expect("url")
        .query_pairs()
        .find(|(key, _)| key == "redirect_uri")
        .map(|(_, value)| value.into_owned())
        .expect("redirect_uri");
    let port = reqwest::Url::parse(&redirect)
        .expect("uri")
        .port()
        .expect("port");
    let _idle = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connects");
    let page = complete_browser_sign_in(&own.url, &url, "admin").await;
    assert!(page.contains("Signed in to MONTI"), "{page}");
    let tokens = finished.await.expect("joins").expect("tokens");
    let me = get(&server, "/api/v1/me", Some(&tokens.access_token)).await;
    let me: monti_protocol::rest::MeJson = me.json().await.expect("me");
    assert_eq!(me.roles, ["admin"]);
    let refreshed = provider
        .refresh(tokens.refresh_token.as_deref().expect("a refresh token"))
        .await
        .expect("refreshes");
    assert!(!refreshed.access_token.is_empty());

    // A page that comes back for another attempt is refused.
    let attempt = provider.browser_sign_in().await.expect("a sign-in page");
    let forged = attempt.url.clone();
    let redirect = reqwest::Url::parse(&forged)
        .expect("url")
        .query_pairs()
        .find(|(key, _)| key == "redirect_uri")
        .map(|(_, value)| value.into_owned())
        .expect("redirect_uri");
    let finished = tokio::spawn(attempt.finish(Duration::from_secs(60)));
    let page = reqwest::get(format!("{redirect}?code=stolen&state=not-mine"))
        .await
        .expect("answered")
        .text()
        .await
        .expect("page");
    assert!(page.contains("not started here"), "{page}");
    assert!(finished.await.expect("joins").is_err());
    server.stop().await.expect("stops");
    db.drop_database().await;

    // A provider that matches callbacks exactly (Amazon Cognito): the server names a fixed
    // loopback callback, and the app listens there and sends exactly that.
    let fixed = format!("http://127.0.0.1:{}/callback", common::free_port());
    let db = TestDb::sqlite();
    let mut config = oidc_config(&db, &own.url);
    config.auth.redirect_uri = fixed.clone();
    let server = TestServer::start(config).await;
    let settings = auth::SignInSettings::from_server(
        auth::server_auth(&system(), &server.url)
            .await
            .expect("settings"),
    )
    .expect("oidc");
    assert_eq!(settings.redirect_uri.as_deref(), Some(fixed.as_str()));
    let provider = Provider::discover(&system(), &settings)
        .await
        .expect("discovery");
    let attempt = provider.browser_sign_in().await.expect("a sign-in page");
    let sent = reqwest::Url::parse(&attempt.url)
        .expect("url")
        .query_pairs()
        .find(|(key, _)| key == "redirect_uri")
        .map(|(_, value)| value.into_owned());
    assert_eq!(sent.as_deref(), Some(fixed.as_str()));
    let url = attempt.url.clone();
    let finished = tokio::spawn(attempt.finish(Duration::from_secs(60)));
    let page = complete_browser_sign_in(&own.url, &url, "admin").await;
    assert!(page.contains("Signed in to MONTI"), "{page}");
    assert!(finished.await.expect("joins").is_ok());
    server.stop().await.expect("stops");
}

/// Queues are seen through the teams that serve them: a team lead sees its team's queues, a
/// site's supervisor those served by a team with agents at the site, and neither reads the name
/// or the contacts of any other queue, in figures, intervals or contacts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_caller_sees_only_the_queues_its_teams_serve() {
    use serde_json::json;
    let Some(issuer) = provider() else { return };
    let db = TestDb::sqlite();
    let mut config = oidc_config(&db, &issuer);
    config.simulator.enabled = false;
    let server = TestServer::start(config).await;
    let admin = access_token(&issuer, "admin").await;
    let anna = access_token(&issuer, "anna").await; // supervisor, Berlin
    let ben = access_token(&issuer, "ben").await; // team lead, Sales 1
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{}{path}", server.url))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let agent = |id: &str, name: &str, team: &str, site: &str| json!({"external_id": id, "name": name, "team": team, "site": site});
    let response = post(
        "/api/v1/roster",
        json!({
            "sites": [{"name": "Berlin"}, {"name": "Lisbon Secret"}],
            "teams": [{"name": "Sales 1"}, {"name": "Secret Team"}],
            "agents": [
                agent("a1", "Sara Sales", "Sales 1", "Berlin"),
                agent("a3", "Xenia Secret", "Secret Team", "Lisbon Secret"),
            ],
            "queues": [
                {"name": "Sales Voice", "teams": ["Sales 1"]},
                {"name": "Secret Voice", "channel": "chat", "teams": ["Secret Team"]},
                {"name": "Orphan Secret Queue"},
            ],
        }),
    )
    .await
    .expect("roster");
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        (status.as_u16(), &body["queues"]),
        (200, &json!(3)),
        "{body}"
    );
    let now = monti_server::core::clock::Clock::system().now_ms();
    let response = post(
        "/api/v1/events",
        json!({"events": [
            {"event_id": "e1", "agent": "a1", "state": "available", "since_ms": now},
            {"event_id": "e3", "agent": "a3", "state": "available", "since_ms": now},
        ]}),
    )
    .await
    .expect("events");
    assert_eq!(response.status(), 200);
    let response = post(
        "/api/v1/contact-events",
        json!({"events": [
            {"event_id": "c1", "contact": "call-sales", "kind": "queued", "at_ms": now,
             "queue": "Sales Voice"},
            {"event_id": "c2", "contact": "call-secret", "kind": "queued", "at_ms": now,
             "queue": "Secret Voice"},
            {"event_id": "c3", "contact": "call-orphan", "kind": "queued", "at_ms": now,
             "queue": "Orphan Secret Queue"},
        ]}),
    )
    .await
    .expect("contacts");
    assert_eq!(response.status(), 200);
    // Scopes name teams on the floor: wait until it holds both agents.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while get(&server, "/api/v1/agents", Some(&admin))
        .await
        .json::<AgentPage>()
        .await
        .expect("agents")
        .total
        < 2
    {
        assert!(tokio::time::Instant::now() < deadline, "no floor");
        tokio::task::yield_now().await;
    }
    let names = |queues: Vec<monti_protocol::rest::QueueJson>| -> Vec<String> {
        queues.into_iter().map(|queue| queue.name).collect()
    };
    let all: Vec<monti_protocol::rest::QueueJson> = get(&server, "/api/v1/queues", Some(&admin))
        .await
        .json()
        .await
        .expect("queues");
    assert_eq!(all.len(), 3);
    for token in [&ben, &anna] {
        let queues = get(&server, "/api/v1/queues", Some(token))
            .await
            .json()
            .await
            .expect("queues");
        assert_eq!(names(queues), ["Sales Voice"]);
        for path in [
            "/api/v1/queues",
            "/api/v1/queues/summary",
            "/api/v1/intervals",
            "/api/v1/intervals?format=csv",
            "/api/v1/contacts",
        ] {
            let response = get(&server, path, Some(token)).await;
            assert_eq!(response.status(), 200, "{path}");
            let text = response.text().await.expect("body");
            assert!(!text.contains("Secret"), "{path}: {text}");
            assert!(!text.contains("call-secret"), "{path}: {text}");
        }
        let contacts: Vec<monti_protocol::ingest::ContactLegJson> =
            get(&server, "/api/v1/contacts", Some(token))
                .await
                .json()
                .await
                .expect("contacts");
        assert_eq!(contacts.len(), 1);
        assert_eq!(contacts[0].contact, "call-sales");
    }
    // On the stream: the same queues, with their waiting contact, and not a byte naming the
    // others, for a team lead and a site's supervisor alike; the administrator sees all three.
    let with_queues = Subscription {
        queues: true,
        ..Subscription::default()
    };
    const SECRETS: &[&str] = &["Secret", "Orphan"];
    for (who, token) in [("ben", &ben), ("anna", &anna)] {
        let mut view = RawView::open(&server, who, token, with_queues.clone(), SECRETS).await;
        view.until("the Sales Voice queue with its waiting contact", |floor| {
            floor
                .queues()
                .any(|queue| queue.info.name == "Sales Voice" && queue.now.waiting == 1)
        })
        .await;
        let shown: Vec<&str> = (view.floor.queues())
            .map(|queue| queue.info.name.as_str())
            .collect();
        assert_eq!(shown, ["Sales Voice"], "{who}");
    }
    let mut view = RawView::open(&server, "admin", &admin, with_queues, &[]).await;
    view.until("every queue", |floor| floor.queues().count() == 3)
        .await;
    server.stop().await.expect("stops");
    db.drop_database().await;
}

async fn send(request: reqwest::RequestBuilder, token: &str, body: Option<&Value>) -> (u16, Value) {
    let mut request = request.bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    let answer = request.send().await.expect("request");
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

/// Waits until the audit log's events that `query` selects satisfy `done` (events are written
/// in the background), or fails after 10 s; returns their details.
async fn until_audited(
    server: &TestServer,
    token: &str,
    query: &str,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let events: Value = get(server, &format!("/api/v1/audit?{query}"), Some(token))
            .await
            .json()
            .await
            .expect("audit");
        let details: Vec<String> = (events.as_array().into_iter().flatten())
            .filter_map(|event| event["detail"].as_str().map(str::to_owned))
            .collect();
        if done(&details) {
            return details;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not audited as expected: {details:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The team names of a floor a viewer follows.
fn team_names(viewer: &Follower) -> std::collections::BTreeSet<String> {
    let floor = viewer.floor();
    (floor.agents())
        .filter_map(|agent| floor.team(agent.info.team).map(|team| team.name.clone()))
        .collect()
}

/// Follows `viewer` until `done` holds for its floor, or fails after 10 s; returns the error
/// that closed it, if one did.
async fn follow_until(
    viewer: &mut Follower,
    what: &str,
    done: impl Fn(&Follower) -> bool,
) -> Option<monti_client::ClientError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done(viewer) {
        match tokio::time::timeout_at(deadline, viewer.next()).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => return Some(err),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
    None
}

/// The issue's end-to-end case through the API (the desktop's Admin screen sends the same
/// requests; its kittests check that): an administrator grants and widens bindings at run time,
/// open viewers get the new scope at once, one whose access is gone is closed with the reason,
/// and every change is audited. Nobody else may.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_changes_who_sees_what_and_open_viewers_follow() {
    let Some(issuer) = provider() else { return };
    let db = TestDb::sqlite();
    let server = TestServer::start(oidc_config(&db, &issuer)).await;
    let url = |path: &str| format!("{}{path}", server.url);
    let http = reqwest::Client::new();
    let admin = access_token(&issuer, "admin").await;
    let anna = access_token(&issuer, "anna").await;
    let ben = access_token(&issuer, "ben").await;
    let lead = access_token(&issuer, "lead").await;
    let teams: Vec<TeamJson> = get(&server, "/api/v1/teams", Some(&admin))
        .await
        .json()
        .await
        .expect("teams");
    let other = (teams.iter())
        .map(|team| team.name.clone())
        .find(|name| name != "Sales 1")
        .expect("another team");

    // Only administrators manage access; a supervisor may send feedback, not read it.
    for (method, path) in [
        (reqwest::Method::GET, "/api/v1/access/bindings"),
        (reqwest::Method::PUT, "/api/v1/access/bindings"),
        (reqwest::Method::GET, "/api/v1/access/devices"),
        (reqwest::Method::POST, "/api/v1/access/devices/ben/sign-out"),
        (reqwest::Method::GET, "/api/v1/access/keys"),
        (reqwest::Method::POST, "/api/v1/access/keys"),
        (
            reqwest::Method::POST,
            "/api/v1/access/keys/file-firehose/retire",
        ),
        (reqwest::Method::GET, "/api/v1/feedback"),
        (reqwest::Method::GET, "/api/v1/audit"),
    ] {
        let (status, _) = send(
            http.request(method.clone(), url(path)),
            &anna,
            Some(&json!([])),
        )
        .await;
        assert_eq!(status, 403, "{method} {path}");
    }
    let (status, _) = send(
        http.post(url("/api/v1/feedback")),
        &anna,
        Some(&json!({"text": "hello"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, answer) = send(http.get(url("/api/v1/agents")), &lead, None).await;
    assert_eq!(status, 403, "monti-leads is bound to nothing yet: {answer}");

    // Ben, team lead of Sales 1, is watching.
    let mut ben_view = Follower::new(&server.url, "ben", Subscription::default()).with_token(&ben);
    ben_view.until_live().await.expect("live");
    assert_eq!(team_names(&ben_view), ["Sales 1".to_owned()].into());

    // The administrator widens Ben's group to a second team and grants monti-leads a team.
    let (status, current) = send(http.get(url("/api/v1/access/bindings")), &admin, None).await;
    assert_eq!(status, 200);
    let mut bindings: Vec<Value> =
        serde_json::from_value(current["bindings"].clone()).expect("list");
    for binding in &mut bindings {
        if binding["group"] == "monti-team-sales" {
            binding["teams"] = json!(["Sales 1", other]);
        }
    }
    bindings.push(json!({"group": "monti-leads", "role": "team_lead", "teams": [other]}));
    let (status, answer) = send(
        http.put(url("/api/v1/access/bindings")),
        &admin,
        Some(&json!(bindings)),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let wider: std::collections::BTreeSet<String> = ["Sales 1".to_owned(), other.clone()].into();
    let closed = follow_until(&mut ben_view, "Ben's wider scope", |view| {
        team_names(view) == wider
    })
    .await;
    assert!(closed.is_none(), "Ben's viewer was closed: {closed:?}");
    let page: AgentPage = get(&server, "/api/v1/agents?limit=1000", Some(&lead))
        .await
        .json()
        .await
        .expect("the lead sees agents now");
    assert!(page.total > 0);
    let other_id = teams
        .iter()
        .find(|team| team.name == other)
        .expect("team")
        .id;
    assert!(page.agents.iter().all(|agent| agent.team == other_id));

    // Ben's group loses its binding: his open viewer is closed with the reason.
    bindings.retain(|binding| binding["group"] != "monti-team-sales");
    let (status, _) = send(
        http.put(url("/api/v1/access/bindings")),
        &admin,
        Some(&json!(bindings)),
    )
    .await;
    assert_eq!(status, 200);
    let closed = follow_until(&mut ben_view, "Ben's viewer to close", |_| false).await;
    match closed {
        Some(monti_client::ClientError::Refused {
            code: ErrorCode::Forbidden,
            message,
        }) => {
            assert!(message.contains("administrator changed"), "{message}")
        }
        other => panic!("Ben's viewer should be closed as forbidden: {other:?}"),
    }
    let (status, _) = send(http.get(url("/api/v1/agents")), &ben, None).await;
    assert_eq!(status, 403);

    // Both changes are in the audit log with before and after, by the administrator.
    let details = until_audited(
        &server,
        &admin,
        "kind=access_change&subject=admin",
        |details| details.len() >= 2,
    )
    .await;
    assert!(
        details
            .iter()
            .all(|detail| detail.contains("before") && detail.contains("after")),
        "{details:?}"
    );
    server.stop().await.expect("stops");
    db.drop_database().await;
}

/// Test access: the floor as a group or a binding would see it, computed by the server; for
/// administrators only, audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_sees_the_floor_as_a_binding_would() {
    use monti_protocol::access::{Role, ViewAs};
    let Some(issuer) = provider() else { return };
    let db = TestDb::sqlite();
    let server = TestServer::start(oidc_config(&db, &issuer)).await;
    let admin = access_token(&issuer, "admin").await;
    let anna = access_token(&issuer, "anna").await;
    let ben = access_token(&issuer, "ben").await;

    // As Ben's group: exactly what Ben sees.
    let mut ben_view = Follower::new(&server.url, "ben", Subscription::default()).with_token(&ben);
    let mut as_group = Follower::new(&server.url, "admin", Subscription::default())
        .with_token(&admin)
        .with_view_as(Some(ViewAs::Group("monti-team-sales".to_owned())));
    ben_view.until_live().await.expect("live");
    as_group.until_live().await.expect("live");
    let ids = |view: &Follower| -> Vec<u32> {
        let mut ids: Vec<u32> = view.floor().agents().map(|agent| agent.info.id.0).collect();
        ids.sort_unstable();
        ids
    };
    assert!(!ids(&ben_view).is_empty());
    assert_eq!(team_names(&as_group), team_names(&ben_view));
    assert_eq!(ids(&as_group).len(), ids(&ben_view).len());

    // As a binding nobody holds yet: a team lead of Berlin's site.
    let mut as_binding = Follower::new(&server.url, "admin", Subscription::default())
        .with_token(&admin)
        .with_view_as(Some(ViewAs::Binding {
            role: Role::TeamLead,
            teams: Vec::new(),
            sites: vec!["Berlin".to_owned()],
        }));
    as_binding.until_live().await.expect("live");
    let sites: std::collections::BTreeSet<String> = {
        let floor = as_binding.floor();
        (floor.agents())
            .filter_map(|agent| floor.site(agent.info.site).map(|site| site.name.clone()))
            .collect()
    };
    assert_eq!(sites, ["Berlin".to_owned()].into());

    // REST answers the same way with the header (the panels the stream does not feed).
    let header = monti_protocol::access::VIEW_AS_HEADER;
    let teams_as = |token: &str, value: &str| {
        let request = reqwest::Client::new()
            .get(format!("{}/api/v1/teams", server.url))
            .bearer_auth(token)
            .header(header, value);
        async move {
            let answer = request.send().await.expect("request");
            let status = answer.status().as_u16();
            (status, answer.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, teams) = teams_as(&admin, "as_group=monti-team-sales").await;
    assert_eq!(status, 200, "{teams}");
    let names: Vec<&str> = (teams.as_array().into_iter().flatten())
        .filter_map(|team| team["name"].as_str())
        .collect();
    assert_eq!(names, ["Sales 1"]);
    assert_eq!(teams_as(&anna, "as_group=monti-team-sales").await.0, 403);
    assert_eq!(teams_as(&admin, "as_role=emperor").await.0, 400);
    assert_eq!(teams_as(&admin, "protocol=3").await.0, 400);

    // Refused with why: not an administrator, a group that grants nothing, a role that sees
    // nothing, a confused request.
    let upgrade = |query: &str, token: &str| {
        let url = format!("{}/api/v1/stream?{query}", server.url);
        let token = token.to_owned();
        async move {
            let answer = reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .header("connection", "upgrade")
                .header("upgrade", "websocket")
                .header("sec-websocket-version", "13")
                .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
                .send()
                .await
                .expect("request");
            let status = answer.status().as_u16();
            (status, answer.text().await.unwrap_or_default())
        }
    };
    let cases = [
        (
            "as_group=monti-team-sales",
            anna.as_str(),
            403,
            "for administrators",
        ),
        (
            "as_group=monti-nobody",
            admin.as_str(),
            403,
            "would see nothing",
        ),
        (
            "as_role=ingest",
            admin.as_str(),
            403,
            "may not see the floor",
        ),
        (
            "as_role=team_lead&as_team=No%20such%20team",
            admin.as_str(),
            403,
            "would see nothing",
        ),
        ("as_group=a&as_role=admin", admin.as_str(), 400, "not both"),
        ("as_role=emperor", admin.as_str(), 400, "not a role"),
    ];
    for (query, token, status, why) in cases {
        let (got, body) = upgrade(query, token).await;
        assert_eq!(got, status, "{query}: {body}");
        assert!(body.contains(why), "{query}: {body} should say {why:?}");
    }

    // Audited.
    until_audited(&server, &admin, "kind=test_access", |details| {
        let said = |part: &str| details.iter().any(|detail| detail.contains(part));
        said("group monti-team-sales") && said("team_lead at Berlin")
    })
    .await;
    server.stop().await.expect("stops");
    db.drop_database().await;
}

/// A wallboard PC signed out from the server: its open stream closes with the reason, its
/// token and the tokens its refresh token yields are refused; a new sign-in works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_signed_out_by_an_administrator_must_sign_in_again() {
    use monti_protocol::access::DeviceJson;
    let Some(issuer) = provider() else { return };
    let db = TestDb::sqlite();
    let server = TestServer::start(oidc_config(&db, &issuer)).await;
    let admin = access_token(&issuer, "admin").await;
    let signed_in = device_flow(&issuer, "wall").await;
    let wall = signed_in["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let refresh = signed_in["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let mut board = Follower::new(&server.url, "monti-desktop 1.2.3", Subscription::default())
        .with_token(&wall);
    board.until_live().await.expect("live");
    assert_eq!(
        get(&server, "/api/v1/config/wallboards/hall-1", Some(&wall))
            .await
            .status(),
        200
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let device = loop {
        let devices: Vec<DeviceJson> = get(&server, "/api/v1/access/devices", Some(&admin))
            .await
            .json()
            .await
            .expect("devices");
        if let Some(device) = devices.into_iter().find(|device| {
            device.subject == "wall" && device.wallboard.is_some() && !device.client.is_empty()
        }) {
            break device;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the wallboard was never noted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(device.wallboard.as_deref(), Some("hall-1"));
    assert_eq!(device.client, "monti-desktop 1.2.3");
    assert_eq!(device.connected, 1);

    // Signed out at the next second: tokens carry their sign-in time in whole seconds.
    let http = reqwest::Client::new();
    let (status, answer) = send(
        http.post(format!(
            "{}/api/v1/access/devices/wall/sign-out",
            server.url
        )),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let closed = follow_until(&mut board, "the board to close", |_| false).await;
    match closed {
        Some(monti_client::ClientError::Refused {
            code: ErrorCode::Unauthorized,
            message,
        }) => {
            assert!(message.contains("signed this device out"), "{message}")
        }
        other => panic!("the board should be closed as unauthorized: {other:?}"),
    }
    let refused = get(&server, "/api/v1/teams", Some(&wall)).await;
    assert_eq!(refused.status(), 401);
    let body: ErrorJson = refused.json().await.expect("error");
    assert!(
        body.message.contains("signed this device out"),
        "{}",
        body.message
    );
    // Its refresh token still works at the provider; MONTI refuses what it yields, because the
    // sign-in behind it (auth_time) is older than the sign-out.
    let refreshed: Value = http
        .post(format!("{issuer}/token"))
        .form(&[
            ("client_id", CLIENT_ID),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
        ])
        .send()
        .await
        .expect("refresh")
        .json()
        .await
        .expect("json");
    let refreshed = refreshed["access_token"]
        .as_str()
        .expect("a refreshed token");
    assert_eq!(
        get(&server, "/api/v1/teams", Some(refreshed))
            .await
            .status(),
        401
    );
    // A new sign-in, a second or more after the sign-out, is let in.
    let signed_out_ms = answer
        .as_array()
        .and_then(|devices| devices.iter().find(|device| device["subject"] == "wall"))
        .and_then(|device| device["signed_out_ms"].as_u64())
        .expect("signed out");
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_millis() as u64
        / 1000
        <= signed_out_ms / 1000
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = access_token(&issuer, "wall").await;
    assert_eq!(
        get(&server, "/api/v1/teams", Some(&again)).await.status(),
        200
    );
    server.stop().await.expect("stops");
    db.drop_database().await;
}
