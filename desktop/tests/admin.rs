//! The Admin and Feedback windows as an administrator and a supervisor meet them (egui_kittest):
//! what each may open, what each screen shows from the server's answers, and the requests its
//! buttons send. The network thread is a detached handle: the tests read its commands and write
//! the server's answers into the session, as the thread would.

use egui::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use monti_desktop::App;
use monti_desktop::app::Clock;
use monti_desktop::net::{Method, Net, Request, RestCall, Session};
use monti_desktop::sample;
use monti_desktop::settings::Settings;
use monti_protocol::access::{Role as AccessRole, ViewAs};
use monti_protocol::rest::MeJson;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

const NOW: u64 = 1_800_000_000_000;

fn me(subject: &str, may: &[&str]) -> MeJson {
    MeJson {
        subject: subject.to_owned(),
        roles: Vec::new(),
        may: may.iter().map(|action| (*action).to_owned()).collect(),
        address: None,
        https: None,
        groups: Vec::new(),
        note: None,
    }
}

const ADMIN: &[&str] = &[
    "view_summary",
    "view_agents",
    "subscribe",
    "read_config",
    "change_config",
    "read_audit",
    "manage_access",
    "send_feedback",
    "read_feedback",
];

fn harness(may: &[&str]) -> (Harness<'static, App>, UnboundedReceiver<Request>) {
    let mut session: Session = sample::live_session(sample::floor(300, 42, NOW), NOW);
    session.me = Some(me("admin", may));
    let (net, commands) = Net::detached(session);
    let mut app = App::new(Settings::default(), net);
    app.clock = Clock::Fixed(NOW);
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1500.0, 1000.0))
        .build_eframe(|_| app);
    harness.run();
    (harness, commands)
}

fn drain(commands: &mut UnboundedReceiver<Request>) -> Vec<Request> {
    std::iter::from_fn(|| commands.try_recv().ok()).collect()
}

fn rest_calls(commands: &mut UnboundedReceiver<Request>) -> Vec<RestCall> {
    (drain(commands).into_iter())
        .filter_map(|request| match request {
            Request::Rest(call) => Some(call),
            _ => None,
        })
        .collect()
}

/// Files the server's answer under `key`, as the network thread would, and draws.
fn answer(harness: &mut Harness<'_, App>, key: &'static str, json: Value) {
    harness.state().net().session().reply(key, Ok(json));
    harness.run();
}

fn open_admin(
    harness: &mut Harness<'_, App>,
    commands: &mut UnboundedReceiver<Request>,
) -> Vec<RestCall> {
    harness.get_by_role_and_label(Role::Button, "Admin").click();
    harness.run();
    rest_calls(commands)
}

/// Clicks `ask`, checks nothing is sent before `confirm` is clicked too, and returns the one
/// call that then is.
fn confirmed_call(
    harness: &mut Harness<'_, App>,
    commands: &mut UnboundedReceiver<Request>,
    ask: &str,
    confirm: &str,
) -> RestCall {
    harness.get_by_role_and_label(Role::Button, ask).click();
    harness.run();
    assert!(
        rest_calls(commands).is_empty(),
        "nothing before the confirmation"
    );
    harness.get_by_role_and_label(Role::Button, confirm).click();
    harness.run();
    let calls = rest_calls(commands);
    let [call] = calls.as_slice() else {
        panic!("one call: {calls:?}")
    };
    call.clone()
}

fn bindings_json(bindings: Value) -> Value {
    json!({
        "bindings": bindings,
        "changed_by": "configuration file",
        "changed_at_ms": NOW,
        "rule": "Bindings changed here stand until the configuration file's [[auth.bindings]] change.",
        "file_differs": false,
    })
}

#[test]
fn only_those_who_manage_access_see_admin_and_those_who_may_send_see_feedback() {
    let (lead, _) = harness(&["view_summary", "view_agents", "subscribe", "send_feedback"]);
    assert!(
        lead.query_by_role_and_label(Role::Button, "Admin")
            .is_none()
    );
    assert!(
        lead.query_by_role_and_label(Role::Button, "Feedback")
            .is_some()
    );
    let (wallboard, _) = harness(&["view_summary", "view_agents", "subscribe", "read_config"]);
    assert!(
        wallboard
            .query_by_role_and_label(Role::Button, "Feedback")
            .is_none(),
        "a wallboard role sends none"
    );
    let (admin, _) = harness(ADMIN);
    assert!(
        admin
            .query_by_role_and_label(Role::Button, "Admin")
            .is_some()
    );
}

#[test]
fn an_administrator_grants_a_group_a_team_and_saves_it() {
    let (mut harness, mut commands) = harness(ADMIN);
    let reads = open_admin(&mut harness, &mut commands);
    let paths: Vec<&str> = reads.iter().map(|call| call.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/api/v1/access/bindings",
            "/api/v1/access/devices",
            "/api/v1/access/keys",
            "/api/v1/config/wallboards",
            "/api/v1/audit",
            "/api/v1/feedback"
        ]
    );
    answer(
        &mut harness,
        "bindings",
        bindings_json(json!([{"group": "monti-admins", "role": "admin"}])),
    );
    assert!(
        harness
            .query_by_label_contains("stand until the configuration file")
            .is_some()
    );
    assert!(
        harness
            .query_all_by(|node| node.value().as_deref() == Some("monti-admins"))
            .count()
            > 0
    );

    harness
        .get_by_role_and_label(Role::Button, "Add binding")
        .click();
    harness.run();
    let group = harness
        .query_all_by_role(Role::TextInput)
        .find(|node| {
            node.accesskit_node().placeholder() == Some("group as the provider names it")
                && node.accesskit_node().value().as_deref() == Some("")
        })
        .expect("the new row's group");
    group.click();
    harness.run();
    harness
        .query_all_by_role(Role::TextInput)
        .find(|node| node.is_focused())
        .expect("focused")
        .type_text("monti-leads");
    harness.run();
    // The new row's teams: a menu of the floor's teams, ticked.
    let menus: Vec<_> = harness
        .query_all_by_role_and_label(Role::Button, "every team")
        .collect();
    menus.last().expect("the new row's teams").click();
    harness.run();
    // The menu's tick, drawn over the filter panel's box of the same name.
    harness
        .query_all_by_role_and_label(Role::CheckBox, "Sales")
        .last()
        .expect("the menu's Sales")
        .click();
    harness.run();
    harness.key_press(egui::Key::Escape);
    harness.run();
    harness.get_by_role_and_label(Role::Button, "Save").click();
    harness.run();
    let saved = rest_calls(&mut commands);
    let [save] = saved.as_slice() else {
        panic!("one save: {saved:?}")
    };
    assert_eq!(
        (save.method, save.path.as_str()),
        (Method::Put, "/api/v1/access/bindings")
    );
    assert_eq!(
        save.body,
        Some(json!([
            {"group": "monti-admins", "role": "admin", "teams": [], "sites": []},
            {"group": "monti-leads", "role": "team_lead", "teams": ["Sales"], "sites": []},
        ]))
    );
    // A refusal is shown as the server words it; the draft stays.
    harness
        .state()
        .net()
        .session()
        .reply("bindings", Err("binding 2 is listed twice".to_owned()));
    harness.run();
    assert!(
        harness
            .query_by_label("binding 2 is listed twice")
            .is_some()
    );
    assert!(
        harness
            .query_by_label_contains("stand until the configuration file")
            .is_some(),
        "what is in force is still said"
    );
    assert!(
        harness
            .query_by_label("Not saved yet. Open viewers get the new scope when you save.")
            .is_some()
    );
    assert!(
        harness
            .query_all_by(|node| node.value().as_deref() == Some("monti-leads"))
            .count()
            > 0
    );
}

#[test]
fn test_access_is_asked_for_from_a_binding_and_marked_until_stopped() {
    let (mut harness, mut commands) = harness(ADMIN);
    open_admin(&mut harness, &mut commands);
    answer(
        &mut harness,
        "bindings",
        bindings_json(json!([{"group": "monti-leads", "role": "team_lead", "teams": ["Sales"]}])),
    );
    harness
        .get_by_role_and_label(Role::Button, "View as")
        .click();
    harness.run();
    let asked = drain(&mut commands);
    let wanted = ViewAs::Binding {
        role: AccessRole::TeamLead,
        teams: vec!["Sales".to_owned()],
        sites: Vec::new(),
    };
    assert!(
        asked.contains(&Request::ViewAs(Some(wanted.clone()))),
        "{asked:?}"
    );
    assert!(
        harness.state().admin.is_none(),
        "the window makes way for the floor"
    );
    // The network thread starts the new session as that binding: the app says so plainly.
    harness.state().net().session().view_as = Some(wanted);
    harness.run();
    assert!(
        harness
            .query_by_label_contains("TEST ACCESS: you see the floor as team_lead of Sales")
            .is_some()
    );
    assert!(
        harness
            .query_by_role_and_label(Role::Button, "Admin")
            .is_none(),
        "the server would answer Admin's calls as the binding: no Admin meanwhile"
    );
    harness
        .get_by_role_and_label(Role::Button, "Stop test access")
        .click();
    harness.run();
    assert!(drain(&mut commands).contains(&Request::ViewAs(None)));
}

#[test]
fn a_device_is_signed_out_after_a_second_click() {
    let (mut harness, mut commands) = harness(ADMIN);
    open_admin(&mut harness, &mut commands);
    harness
        .get_by_role_and_label(Role::Button, "Devices")
        .click();
    harness.run();
    answer(
        &mut harness,
        "devices",
        json!([
            {"subject": "wall hall/1", "wallboard": "hall-1", "client": "monti-desktop 0.1.0", "address": "10.1.2.3",
             "first_seen_ms": NOW - 86_400_000, "last_seen_ms": NOW, "connected": 1, "signed_out_ms": null},
            {"subject": "admin", "wallboard": null, "client": "monti-desktop 0.1.0", "address": "10.1.2.4",
             "first_seen_ms": NOW, "last_seen_ms": NOW, "connected": 1, "signed_out_ms": null},
        ]),
    );
    for text in [
        "wall hall/1",
        "hall-1",
        "monti-desktop 0.1.0",
        "10.1.2.3",
        "connected",
    ] {
        assert!(harness.query_all_by_label(text).count() > 0, "{text} shown");
    }
    // One's own device is not signed out here: one Sign out button, the wallboard's.
    assert!(harness.query_by_label("you").is_some());
    let call = confirmed_call(&mut harness, &mut commands, "Sign out", "Confirm sign-out");
    assert_eq!(
        (call.method, call.path.as_str(), call.body.as_ref()),
        (
            Method::Post,
            "/api/v1/access/devices/wall%20hall%2F1/sign-out",
            None
        )
    );
}

#[test]
fn the_audit_log_is_filtered_and_exported_as_csv() {
    let (mut harness, mut commands) = harness(ADMIN);
    let export = std::env::temp_dir().join(format!("monti-admin-export-{}", std::process::id()));
    std::fs::create_dir_all(&export).expect("dir");
    open_admin(&mut harness, &mut commands);
    harness
        .state_mut()
        .admin
        .as_mut()
        .expect("open")
        .export_to(export.clone());
    harness
        .get_by_role_and_label(Role::Button, "Audit log")
        .click();
    harness.run();
    answer(
        &mut harness,
        "audit",
        json!([
            {"created_at": NOW, "subject": "admin", "kind": "access_change", "detail": "bindings changed: before [] after [{\"group\":\"x\"}]"},
            {"created_at": NOW - 1000, "subject": null, "kind": "refused", "detail": "=cmd|' /C calc'!A0"},
        ]),
    );
    assert!(harness.query_by_label("access_change").is_some());
    let who = harness
        .query_all_by_role(Role::TextInput)
        .find(|node| node.accesskit_node().placeholder() == Some("anyone"))
        .expect("who");
    who.click();
    harness.run();
    harness
        .query_all_by_role(Role::TextInput)
        .find(|node| node.is_focused())
        .expect("focused")
        .type_text("adm");
    harness.run();
    harness.get_by_role_and_label(Role::Button, "Show").click();
    harness.run();
    let calls = rest_calls(&mut commands);
    let [call] = calls.as_slice() else {
        panic!("{calls:?}")
    };
    assert_eq!(call.path, "/api/v1/audit");
    assert!(
        call.query
            .contains(&("subject".to_owned(), "adm".to_owned())),
        "{:?}",
        call.query
    );
    assert!(
        call.query.iter().any(|(key, _)| key == "from_ms"),
        "the last day by default"
    );

    harness
        .get_by_role_and_label(Role::Button, "Export CSV")
        .click();
    harness.run();
    let written: Vec<_> = std::fs::read_dir(&export).expect("dir").flatten().collect();
    let [file] = written.as_slice() else {
        panic!("one file: {written:?}")
    };
    let text = std::fs::read_to_string(file.path()).expect("csv");
    assert!(
        text.starts_with("\"when\",\"who\",\"what\",\"detail\"\r\n"),
        "{text}"
    );
    assert!(text.contains("\"admin\",\"access_change\",\"bindings changed: before [] after [{\"\"group\"\":\"\"x\"\"}]\""), "{text}");
    assert!(
        text.contains("\"'=cmd|' /C calc'!A0\""),
        "a formula is defused: {text}"
    );
    assert!(harness.query_by_label_contains("Saved ").is_some());
    let _ = std::fs::remove_dir_all(&export);
}

#[test]
fn a_wallboard_is_edited_with_a_live_preview_and_saved() {
    let (mut harness, mut commands) = harness(ADMIN);
    open_admin(&mut harness, &mut commands);
    harness
        .get_by_role_and_label(Role::Button, "Wallboards")
        .click();
    harness.run();
    answer(&mut harness, "wallboards", json!(["default", "hall-1"]));
    harness
        .get_by_role_and_label(Role::Button, "hall-1")
        .click();
    harness.run();
    let calls = rest_calls(&mut commands);
    assert!(
        calls
            .iter()
            .any(|call| call.path == "/api/v1/config/wallboards/hall-1"),
        "{calls:?}"
    );
    answer(
        &mut harness,
        "wallboard",
        json!({"pages": [{"kind": "totals", "seconds": 20}, {"kind": "teams", "seconds": 15}], "teams": ["Sales"], "sites": [], "night": null}),
    );
    assert_eq!(
        harness
            .query_all_by_role_and_label(Role::Button, "Remove")
            .count(),
        2
    );
    // The preview draws the wallboard's page from this app's floor.
    // The preview draws the wallboard's page from this app's floor: its title as the
    // wallboard writes it, beside the page picker's button of the same name, and the teams'
    // counts of the page picked.
    let titles = harness.query_all_by_label("Floor");
    assert!(
        titles
            .into_iter()
            .any(|node| node.accesskit_node().role() == Role::Label),
        "the preview's page title"
    );
    harness
        .query_all_by_role_and_label(Role::Button, "Teams")
        .last()
        .expect("the preview's Teams page")
        .click();
    harness.run();
    let rows: Vec<String> = harness
        .query_all_by_role(Role::ListItem)
        .filter_map(|node| node.accesskit_node().label())
        .collect();
    assert!(
        rows.iter().any(|row| row.starts_with("Sales: ")),
        "the Teams page has the wallboard's team: {rows:?}"
    );
    assert!(
        !rows.iter().any(|row| row.starts_with("Billing: ")),
        "and no other: {rows:?}"
    );
    harness
        .get_by_role_and_label(Role::Button, "Add page")
        .click();
    harness.run();
    harness.get_by_role_and_label(Role::Button, "Save").click();
    harness.run();
    let calls = rest_calls(&mut commands);
    let save = calls
        .iter()
        .find(|call| call.method == Method::Put)
        .expect("saved");
    assert_eq!(save.path, "/api/v1/config/wallboards/hall-1");
    let body = save.body.as_ref().expect("body");
    assert_eq!(body["pages"].as_array().map(Vec::len), Some(3));
    assert_eq!(body["teams"], json!(["Sales"]));
}

#[test]
fn feedback_is_listed_for_administrators() {
    let (mut harness, mut commands) = harness(ADMIN);
    open_admin(&mut harness, &mut commands);
    harness
        .get_by_role_and_label(Role::Button, "Feedback received")
        .click();
    harness.run();
    answer(
        &mut harness,
        "feedback",
        json!([{"id": 7, "created_ms": NOW, "subject": "anna", "text": "The Break filter forgets my teams",
                "client": "monti-desktop 0.1.0", "context": "Agents view; teams Sales", "has_screenshot": true}]),
    );
    assert!(
        harness
            .query_by_label("The Break filter forgets my teams")
            .is_some()
    );
    assert!(harness.query_by_label("#7 anna").is_some());
    harness
        .get_by_role_and_label(Role::Button, "Save screenshot")
        .click();
    harness.run();
    let calls = rest_calls(&mut commands);
    let [call] = calls.as_slice() else {
        panic!("{calls:?}")
    };
    assert_eq!(call.path, "/api/v1/feedback/7/screenshot");
    assert!(
        call.save_to
            .as_ref()
            .is_some_and(|path| path.ends_with("monti-feedback-7.png"))
    );
}

#[test]
fn a_supervisor_sends_feedback_with_the_view_attached() {
    let (mut harness, mut commands) =
        harness(&["view_summary", "view_agents", "subscribe", "send_feedback"]);
    harness
        .get_by_role_and_label(Role::Button, "Feedback")
        .click();
    harness.run();
    let text = harness
        .query_all_by_role(Role::MultilineTextInput)
        .next()
        .expect("the feedback box");
    text.click();
    harness.run();
    harness
        .query_all_by_role(Role::MultilineTextInput)
        .next()
        .expect("the feedback box")
        .type_text("Tiles could be larger");
    harness.run();
    harness.get_by_role_and_label(Role::Button, "Send").click();
    harness.run();
    let calls = rest_calls(&mut commands);
    let [call] = calls.as_slice() else {
        panic!("{calls:?}")
    };
    assert_eq!(
        (call.method, call.path.as_str()),
        (Method::Post, "/api/v1/feedback")
    );
    let body = call.body.as_ref().expect("body");
    assert_eq!(body["text"], "Tiles could be larger");
    assert!(
        body["client"]
            .as_str()
            .is_some_and(|client| client.starts_with("monti-desktop "))
    );
    assert!(
        body["context"]
            .as_str()
            .is_some_and(|context| context.contains("view")),
        "{body}"
    );
    assert!(body.get("screenshot_png_base64").is_none());
    assert!(harness.query_by_label("Sending…").is_some());
    answer(&mut harness, "feedback_sent", json!({"id": 1}));
    assert!(harness.query_by_label("Sent. Thank you.").is_some());
    // The thanks stays while nothing else happens, and the box is empty for the next message.
    for _ in 0..5 {
        harness.step();
    }
    assert!(harness.query_by_label("Sent. Thank you.").is_some());
    let feedback = harness.state().feedback.as_ref().expect("open");
    assert!(feedback.text.is_empty());
}

#[test]
fn a_firehose_key_is_made_shown_once_and_the_old_one_retired() {
    let (mut harness, mut commands) = harness(ADMIN);
    open_admin(&mut harness, &mut commands);
    harness
        .get_by_role_and_label(Role::Button, "Ingest keys")
        .click();
    harness.run();
    answer(
        &mut harness,
        "keys",
        json!([{"id": "file-firehose", "kind": "firehose", "label": "from the configuration file",
                "created_by": "configuration file", "created_ms": 0, "retired_ms": null}]),
    );
    let label = harness
        .query_all_by_role(Role::TextInput)
        .find(|node| node.accesskit_node().placeholder() == Some("label, e.g. 2026-12 rotation"))
        .expect("the label box");
    label.click();
    harness.run();
    harness
        .query_all_by_role(Role::TextInput)
        .find(|node| node.is_focused())
        .expect("focused")
        .type_text("2026-12 rotation");
    harness.run();
    harness
        .get_by_role_and_label(Role::Button, "Make key")
        .click();
    harness.run();
    let calls = rest_calls(&mut commands);
    let [make] = calls.as_slice() else {
        panic!("{calls:?}")
    };
    assert_eq!(
        (make.method, make.path.as_str()),
        (Method::Post, "/api/v1/access/keys")
    );
    assert_eq!(
        make.body,
        Some(json!({"kind": "firehose", "label": "2026-12 rotation"}))
    );
    answer(
        &mut harness,
        "key_made",
        json!({"key": {"id": "ab12cd34ef56", "kind": "firehose", "label": "2026-12 rotation",
                       "created_by": "admin", "created_ms": NOW, "retired_ms": null},
               "secret": "s3cr3t-shown-once"}),
    );
    assert!(
        harness
            .query_all_by(|node| node.value().as_deref() == Some("s3cr3t-shown-once"))
            .count()
            > 0,
        "the secret is shown to copy"
    );
    assert!(
        harness
            .query_by_label_contains("cannot show it again")
            .is_some()
    );
    let refreshed = rest_calls(&mut commands);
    assert!(
        refreshed
            .iter()
            .any(|call| call.path == "/api/v1/access/keys" && call.method == Method::Get),
        "the list is read again: {refreshed:?}"
    );
    let retire = confirmed_call(&mut harness, &mut commands, "Retire", "Confirm retire");
    assert_eq!(
        (retire.method, retire.path.as_str()),
        (Method::Post, "/api/v1/access/keys/file-firehose/retire")
    );
}
