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
use monti_protocol::rest::{AgentPage, ErrorJson, SiteJson, TeamJson};
use monti_server::config::{AuthMode, Config};
use monti_server::token::{DiscoveredKeys, Rules, TokenError, Verifier};
use serde_json::Value;

const CLIENT_ID: &str = "monti";
const AUDIENCE: &str = "urn:monti:api";

/// The provider's URL, or `None` (skip) when it is not configured and not required.
fn provider() -> Option<String> {
    match std::env::var("MONTI_TEST_OIDC_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var("MONTI_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("MONTI_TEST_OIDC_URL is not set but MONTI_REQUIRE_SERVICES=1")
        }
        Err(_) => {
            eprintln!("skipping: MONTI_TEST_OIDC_URL is not set");
            None
        }
    }
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
        let (action, fields) = first_form(&page).unwrap_or_else(|| panic!("no form on {page}"));
        let fields: Vec<(String, String)> = fields
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
    assert_eq!(
        verifier(&issuer).verify(&tampered).await,
        Err(TokenError::Signature)
    );
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
    assert_eq!(other.verify(&access).await, Err(TokenError::Issuer));
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
                code: ErrorCode::Forbidden,
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
    let since = monti_server::sim::now_ms() - 1_000;
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
    tokio::time::sleep(Duration::from_millis(200)).await;
    let own = get(&server, "/api/v1/history?agent=s1", Some(&ben)).await;
    assert_eq!(own.status(), 200);
    let other = get(&server, "/api/v1/history?agent=b1", Some(&ben)).await;
    assert_eq!(other.status(), 404);
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
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/oidc/provider.mjs");
        let child = std::process::Command::new("node")
            .arg(script)
            .env("PORT", port.to_string())
            .env("KEY_ID", key_id)
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
                assert!(!matches!(event, monti_client::Event::Lost { .. }), "renewed viewer lost: {event:?}");
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
    let provider = Provider::discover(
        &system(),
        settings.issuer.as_deref().expect("issuer"),
        settings.client_id.as_deref().expect("client id"),
        settings.audience.as_deref().expect("audience"),
    )
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

    let store = TokenStore::new(&provider.issuer, &provider.client_id).expect("keyring");
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

    // Signing out forgets the token.
    store.delete().await.expect("deleted");
    assert!(matches!(
        auth::refresh_stored(&provider, &store).await,
        Err(AuthError::NotSignedIn)
    ));
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
    let mut events: Vec<monti_server::db::AuditEvent> = Vec::new();
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
        && event.detail == "malformed from 127.0.0.1"));
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
        let events: Vec<monti_server::db::AuditEvent> = get(&server, "/api/v1/audit", Some(&admin))
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
