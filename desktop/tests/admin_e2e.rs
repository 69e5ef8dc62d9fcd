//! End to end, the issue's case: an administrator signs in to the desktop app (the device flow
//! at the real test provider), opens Admin, gives a team lead's group a second team and saves;
//! the team lead's viewer, open all along, receives the wider scope. Real server process with
//! OpenID Connect, real network thread, the app driven through egui_kittest.

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, server_binary};
use egui::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use monti_client::follow::{Follower, Link};
use monti_desktop::App;
use monti_desktop::net::{Net, Request, SignIn};
use monti_desktop::settings::Settings;
use monti_protocol::message::Subscription;
use serde_json::Value;

const AUDIENCE: &str = "urn:monti:api";

/// The test provider's URL; `None` (skip) unless it runs, which `MONTI_REQUIRE_SERVICES=1`
/// demands.
fn provider() -> Option<String> {
    match std::env::var("MONTI_TEST_OIDC_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("MONTI_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "MONTI_TEST_OIDC_URL is not set and MONTI_REQUIRE_SERVICES=1"
            );
            None
        }
    }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Does on the provider's pages what a person does for `code`, as `account`.
fn complete_sign_in(issuer: &str, code: &str, account: &str) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/e2e/complete-device-sign-in.py"
    );
    let status = Process::new("python3")
        .args([script, issuer, code, account])
        .status()
        .expect("python3 runs");
    assert!(status.success(), "the device sign-in as {account} finished");
}

/// An access token for `account` through the device flow.
async fn access_token(issuer: &str, account: &str) -> String {
    let http = reqwest::Client::new();
    let device: Value = http
        .post(format!("{issuer}/device/auth"))
        .form(&[
            ("client_id", "monti"),
            ("scope", "openid offline_access monti"),
            ("resource", AUDIENCE),
        ])
        .send()
        .await
        .expect("device authorization")
        .json()
        .await
        .expect("json");
    let code = device["user_code"].as_str().expect("code").to_owned();
    let issuer_owned = issuer.to_owned();
    let account_owned = account.to_owned();
    tokio::task::spawn_blocking(move || complete_sign_in(&issuer_owned, &code, &account_owned))
        .await
        .expect("joins");
    let tokens: Value = http
        .post(format!("{issuer}/token"))
        .form(&[
            ("client_id", "monti"),
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
        .expect("json");
    tokens["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

fn team_names(viewer: &Follower) -> BTreeSet<String> {
    let floor = viewer.floor();
    (floor.agents())
        .filter_map(|agent| floor.team(agent.info.team).map(|team| team.name.clone()))
        .collect()
}

/// Draws frames, letting the network thread work between them, until `done` or 20 s.
async fn until(
    harness: &mut Harness<'_, App>,
    what: &str,
    done: impl Fn(&Harness<'_, App>) -> bool,
) {
    let started = Instant::now();
    loop {
        harness.step();
        if done(harness) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_grants_a_team_in_the_app_and_the_team_leads_open_viewer_follows() {
    let Some(issuer) = provider() else { return };
    let data = std::env::temp_dir().join(format!("monti-admin-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&data).expect("data dir");
    let port = free_port();
    let bindings = r#"[{"group":"monti-admins","role":"admin"},{"group":"monti-team-sales","role":"team_lead","teams":["Sales 1"]}]"#;
    let _server = Server(
        Process::new(server_binary())
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args([
                "--database-url",
                &format!("sqlite://{}/monti.db", data.display()),
            ])
            .args(["--simulator-agents", "300", "--simulator-speed", "60"])
            .args(["--auth-mode", "oidc", "--auth-issuer", &issuer])
            .args(["--auth-audience", AUDIENCE, "--auth-client-id", "monti"])
            .args(["--auth-bindings", bindings])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("the server starts"),
    );
    let url = format!("http://127.0.0.1:{port}");

    // Ben, team lead of Sales 1, follows the floor.
    let ben = access_token(&issuer, "ben").await;
    let mut ben_view = Follower::new(&url, "ben", Subscription::default()).with_token(&ben);
    let started = Instant::now();
    while ben_view.until_live().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "Ben's viewer never went live"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(team_names(&ben_view), ["Sales 1".to_owned()].into());

    // The administrator signs in to the app.
    let net = Net::start(
        &url,
        Default::default(),
        Subscription::default(),
        None,
        || {},
    )
    .expect("network thread");
    let app = App::new(Settings::default(), net);
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1500.0, 1000.0))
        .build_eframe(|_| app);
    until(&mut harness, "the sign-in to be asked for", |harness| {
        matches!(
            harness.state().net().session().sign_in,
            SignIn::Needed { .. } | SignIn::Code(_)
        )
    })
    .await;
    // Without a keyring the app first says the sign-in will not be kept; go ahead anyway.
    if matches!(
        harness.state().net().session().sign_in,
        SignIn::Needed { .. }
    ) {
        harness.state().net().send(Request::SignIn);
    }
    until(&mut harness, "the device code", |harness| {
        matches!(harness.state().net().session().sign_in, SignIn::Code(_))
    })
    .await;
    let SignIn::Code(code) = harness.state().net().session().sign_in.clone() else {
        unreachable!("checked above")
    };
    let issuer_owned = issuer.clone();
    tokio::task::spawn_blocking(move || complete_sign_in(&issuer_owned, &code.user_code, "admin"))
        .await
        .expect("joins");
    until(&mut harness, "the administrator's live floor", |harness| {
        let session = harness.state().net().session();
        session.link == Link::Live
            && session
                .me
                .as_ref()
                .is_some_and(|me| me.may.iter().any(|may| may == "manage_access"))
            && !session.teams.is_empty()
    })
    .await;
    let other = (harness.state().net().session().teams.iter())
        .map(|team| team.name.clone())
        .find(|name| name != "Sales 1")
        .expect("another team");

    // Admin, the Sales group's teams, tick the other team, Save.
    // The session may have changed after the last frame was drawn: wait for the button.
    until(&mut harness, "the Admin button", |harness| {
        harness
            .query_by_role_and_label(Role::Button, "Admin")
            .is_some()
    })
    .await;
    harness.get_by_role_and_label(Role::Button, "Admin").click();
    until(&mut harness, "the bindings", |harness| {
        harness
            .query_by_role_and_label(Role::Button, "Add binding")
            .is_some()
    })
    .await;
    harness
        .query_all_by_role_and_label(Role::Button, "Sales 1")
        .last()
        .expect("the Sales group's teams")
        .click();
    // The menu's tick joins the filter panel's box of the same name.
    until(&mut harness, "the teams menu", |harness| {
        (harness.query_all_by_role_and_label(Role::CheckBox, &other)).count() >= 2
    })
    .await;
    harness
        .query_all_by_role_and_label(Role::CheckBox, &other)
        .last()
        .expect("the other team in the menu")
        .click();
    harness.step();
    harness.key_press(egui::Key::Escape);
    harness.step();
    harness.get_by_role_and_label(Role::Button, "Save").click();
    until(&mut harness, "the saved bindings", |harness| {
        harness
            .state()
            .net()
            .session()
            .replies
            .get("bindings")
            .is_some_and(|reply| {
                reply
                    .answer
                    .as_ref()
                    .is_ok_and(|json| json["changed_by"] == "admin")
            })
    })
    .await;

    // Ben's viewer, never reconnected, now has both teams.
    let wider: BTreeSet<String> = ["Sales 1".to_owned(), other.clone()].into();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while team_names(&ben_view) != wider {
        let step = tokio::time::timeout_at(deadline, ben_view.next()).await;
        let step =
            step.unwrap_or_else(|_| panic!("Ben never saw {other}: {:?}", team_names(&ben_view)));
        step.expect("Ben's viewer stays open");
    }
    let _ = std::fs::remove_dir_all(&data);
}
