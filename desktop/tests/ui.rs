//! The app as a user meets it, through egui_kittest: widgets are found by role and label, as a
//! screen reader would find them, and clicked or typed into. The floor is a made-up one and the
//! network thread is replaced by a detached handle whose commands the tests read.

use std::collections::BTreeMap;

use egui::Role;
use egui_kittest::Harness;
use egui_kittest::Node;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use monti_client::follow::Link;
use monti_desktop::App;
use monti_desktop::app::Clock;
use monti_desktop::net::{CodeScreen, Net, Request, Session, SignIn};
use monti_desktop::sample;
use monti_desktop::settings::{Settings, ViewKind};
use monti_protocol::floor::Floor;
use monti_protocol::model::{AgentId, AgentStatus, ReasonId, StateKind, TeamId};
use monti_protocol::rest::Limit;
use tokio::sync::mpsc::UnboundedReceiver;

const NOW: u64 = 1_800_000_000_000;

fn session_for(floor: Floor) -> Session {
    sample::live_session(floor, NOW)
}

fn harness(
    session: Session,
    settings: Settings,
) -> (Harness<'static, App>, UnboundedReceiver<Request>) {
    let (net, commands) = Net::detached(session);
    let mut app = App::new(settings, net);
    app.clock = Clock::Fixed(NOW);
    let harness = Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .build_eframe(|_| app);
    (harness, commands)
}

fn floor_screen(agents: u32) -> (Harness<'static, App>, UnboundedReceiver<Request>, Floor) {
    let floor = sample::floor(agents, 42, NOW);
    let (mut harness, commands) = harness(session_for(floor.clone()), Settings::default());
    harness.run();
    (harness, commands, floor)
}

fn shown(harness: &Harness<'_, App>) -> usize {
    let label = harness
        .query_all_by(|node| node.value().is_some_and(|text| text.ends_with(" shown")))
        .next()
        .expect("the strip's count")
        .accesskit_node()
        .value()
        .expect("a label");
    label.trim_end_matches(" shown").parse().expect("a count")
}

/// What a node says: a text label's text, or another widget's accessible name.
fn label(node: &Node<'_>) -> String {
    let node = node.accesskit_node();
    if node.role() == Role::Label {
        node.value()
    } else {
        node.label()
    }
    .unwrap_or_default()
}

fn drain(commands: &mut UnboundedReceiver<Request>) -> Vec<Request> {
    std::iter::from_fn(|| commands.try_recv().ok()).collect()
}

fn in_team(floor: &Floor, team: &str) -> usize {
    floor
        .agents()
        .filter(|record| floor.team(record.info.team).is_some_and(|t| t.name == team))
        .count()
}

#[test]
fn choosing_a_team_filter_shows_only_that_team_and_subscribes_to_it() {
    let (mut harness, mut commands, floor) = floor_screen(600);
    assert_eq!(shown(&harness), 600);
    harness
        .get_by_role_and_label(Role::CheckBox, "Sales")
        .click();
    harness.run();

    assert_eq!(shown(&harness), in_team(&floor, "Sales"));
    assert_eq!(harness.state().settings.filter.teams.len(), 1);
    assert!(
        harness
            .query_by_role_and_label(Role::Button, "Sales")
            .is_some()
    );
    assert!(
        harness
            .query_by_role_and_label(Role::Button, "Billing")
            .is_none(),
        "other teams' cards are gone"
    );
    let sales = floor
        .teams()
        .find(|team| team.name == "Sales")
        .expect("team")
        .id;
    let sent = drain(&mut commands);
    assert!(
        sent.iter().any(|command| matches!(
            command,
            Request::Subscribe(sub) if sub.teams == vec![sales] && sub.sites.is_empty()
        )),
        "the team filter is a server-side subscription: {sent:?}"
    );
}

#[test]
fn a_state_filter_and_the_strip_agree() {
    let (mut harness, _commands, floor) = floor_screen(600);
    harness
        .get_by(|node| {
            node.role() == Role::Button
                && node
                    .label()
                    .is_some_and(|label| label.starts_with("NR Not ready"))
        })
        .click();
    harness.run();
    let not_ready = floor
        .agents()
        .filter(|record| {
            record
                .live
                .is_some_and(|live| live.status.kind() == StateKind::NotReady)
        })
        .count();
    assert_eq!(shown(&harness), not_ready);
    assert!(
        !harness
            .state()
            .settings
            .filter
            .states
            .contains(StateKind::OnCall)
    );
    assert!(
        harness.query_by_label_contains("Available, ").is_none(),
        "no available agent's tile is shown"
    );
}

#[test]
fn searching_a_name_narrows_the_floor_to_the_matches() {
    let (mut harness, _commands, floor) = floor_screen(600);
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::F);
    harness.run();
    let search = harness.get_by_role(Role::TextInput);
    assert!(search.is_focused(), "Ctrl+F focuses the search box");
    search.type_text("kaya");
    harness.run();
    let matches = floor
        .agents()
        .filter(|record| record.info.name.to_lowercase().contains("kaya"))
        .count();
    assert!(matches > 0 && matches < 600);
    assert_eq!(shown(&harness), matches);
    let tiles: Vec<String> = harness
        .query_all_by_role(Role::ListItem)
        .map(|node| label(&node))
        .collect();
    assert!(!tiles.is_empty());
    assert!(
        tiles.iter().all(|label| label.contains("Kaya")),
        "only matching agents: {tiles:?}"
    );
}

#[test]
fn the_views_switch_and_a_team_header_drills_down() {
    let (mut harness, _commands, floor) = floor_screen(800);
    harness
        .get_by_role_and_label(Role::Button, "Matrix")
        .click();
    harness.run();
    assert_eq!(harness.state().settings.view, ViewKind::Matrix);
    assert!(harness.query_by_label("Team \\ Site").is_some());
    for site in floor.sites() {
        assert!(
            harness
                .query_by_role_and_label(Role::Button, &site.name)
                .is_some()
        );
    }

    harness
        .get_by_role_and_label(Role::Button, "Agents")
        .click();
    harness.run();
    assert!(
        harness
            .query_by_role_and_label(Role::Button, "Name ⏶")
            .is_some()
    );
    // A first click on a time sorts longest first; the second reverses it.
    harness
        .get_by_role_and_label(Role::Button, "Time in state")
        .click();
    harness.run();
    assert!(harness.state().settings.sort.descending);
    harness
        .get_by_role_and_label(Role::Button, "Time in state ⏷")
        .click();
    harness.run();
    assert!(!harness.state().settings.sort.descending);
    harness
        .get_by_role_and_label(Role::Button, "Time in state ⏶")
        .click();
    harness.run();
    assert!(harness.state().settings.sort.descending);

    // Longest in state first: the table shows the agent in state longest, not the newest;
    // offline agents (who went home) come after everyone present.
    let by_start =
        |record: &&monti_protocol::floor::AgentRecord| record.live.map(|live| live.since_ms);
    let present = |record: &&monti_protocol::floor::AgentRecord| {
        record
            .live
            .is_some_and(|live| live.status.kind() != StateKind::Offline)
    };
    let oldest = floor.agents().filter(present).min_by_key(by_start);
    let newest = floor.agents().filter(present).max_by_key(by_start);
    let shows = |name: &str| harness.query_all_by_label(name).next().is_some();
    assert!(shows(&oldest.expect("agents").info.name));
    assert!(!shows(&newest.expect("agents").info.name));

    // Teams view: a click on the first card's header drills into that team.
    harness.get_by_role_and_label(Role::Button, "Teams").click();
    harness.run();
    harness
        .get_by_role_and_label(Role::Button, "Billing")
        .click();
    harness.run();
    assert_eq!(shown(&harness), in_team(&floor, "Billing"));
    assert!(
        harness
            .query_by_role_and_label(Role::Button, "Claims")
            .is_none()
    );

    // Matrix: a click on a team's row drills into it and shows its cards.
    harness
        .get_by_role_and_label(Role::Button, "Clear filters")
        .click();
    harness
        .get_by_role_and_label(Role::Button, "Matrix")
        .click();
    harness.run();
    harness
        .get_by_role_and_label(Role::Button, "Tech Support")
        .click();
    harness.run();
    assert_eq!(harness.state().settings.view, ViewKind::Teams);
    assert_eq!(shown(&harness), in_team(&floor, "Tech Support"));
    assert!(
        harness
            .query_by_role_and_label(Role::Button, "Tech Support")
            .is_some()
    );
}

fn one_agent_floor(kind: AgentStatus, minutes_ago: u64) -> Floor {
    let mut floor = sample::floor(1, 1, NOW);
    floor
        .set_status(AgentId(0), kind, NOW - minutes_ago * 60_000)
        .expect("agent 0 exists");
    floor
}

/// Every list item's label: agent tiles, then the attention list's entries (`!` or `!!` first).
fn list_items(harness: &Harness<'_, App>) -> Vec<String> {
    harness
        .query_all_by_role(Role::ListItem)
        .map(|node| label(&node))
        .collect()
}

/// The one agent's tile, in `session` for `minutes`, and whether the attention list has it.
fn one_agent_shown(session: AgentStatus, minutes: u64) -> (String, bool) {
    let floor = one_agent_floor(session, minutes);
    let name = floor.agent(AgentId(0)).expect("agent").info.name.clone();
    let (mut harness, _commands) = harness(session_for(floor), Settings::default());
    harness.run();
    let items = list_items(&harness);
    let tile = items
        .iter()
        .find(|item| item.starts_with(&name))
        .expect("the agent's tile")
        .clone();
    (tile, items.iter().any(|item| item.starts_with('!')))
}

#[test]
fn a_threshold_turns_a_tile_amber_then_red_and_lists_it_for_attention() {
    let not_ready = AgentStatus::NotReady(Some(ReasonId(1)));
    for (minutes, level, listed) in [(5, "normal", false), (11, "amber", true), (16, "red", true)] {
        let (tile, attention) = one_agent_shown(not_ready, minutes);
        assert!(tile.contains("Not ready (Lunch)"), "{tile}");
        assert!(tile.ends_with(level), "{minutes} min: {tile}");
        assert_eq!(attention, listed, "{minutes} min in the attention list");
    }

    // A team's own threshold wins over the default.
    let floor = one_agent_floor(not_ready, 5);
    let team = floor.team(TeamId(floor.agent(AgentId(0)).expect("agent").info.team.0));
    let mut session = session_for(floor.clone());
    session.thresholds.teams.insert(
        team.expect("team").name.clone(),
        BTreeMap::from([(
            "not_ready".to_owned(),
            Limit {
                amber_secs: 120,
                red_secs: 240,
            },
        )]),
    );
    let (mut harness, _commands) = harness(session, Settings::default());
    harness.run();
    let items = list_items(&harness);
    assert_eq!(
        items.len(),
        2,
        "the tile and its attention entry: {items:?}"
    );
    assert!(
        items.iter().any(|item| item.ends_with("red"))
            && items.iter().any(|item| item.starts_with("!!")),
        "the tile and the attention entry are red: {items:?}"
    );
    assert!(harness.query_by_label("Attention (1)").is_some());
}

#[test]
fn the_device_flow_screen_shows_the_code_a_qr_code_and_the_time_left() {
    let mut session = session_for(Floor::awaiting_snapshot());
    session.sign_in = SignIn::Code(CodeScreen {
        user_code: "WDJB-MJHT".to_owned(),
        verification_uri: "https://id.example.com/device".to_owned(),
        qr_uri: "https://id.example.com/device?user_code=WDJB-MJHT".to_owned(),
        expires_at_ms: NOW + 299_000,
    });
    let (mut harness, mut commands) = harness(session, Settings::default());
    harness.run();
    assert!(harness.query_by_label("WDJB-MJHT").is_some());
    assert!(
        harness
            .query_by_role_and_label(
                Role::Image,
                "QR code for https://id.example.com/device?user_code=WDJB-MJHT"
            )
            .is_some()
    );
    assert!(
        harness
            .query_by_label("https://id.example.com/device")
            .is_some()
    );
    assert!(harness.query_by_label("The code expires in 4:59").is_some());
    assert!(
        harness
            .query_by_role_and_label(Role::Button, "Open in browser")
            .is_some()
    );
    harness
        .get_by_role_and_label(Role::Button, "Cancel")
        .click();
    harness.run();
    assert_eq!(drain(&mut commands), vec![Request::CancelSignIn]);
}

#[test]
fn a_browser_sign_in_shows_the_page_to_open_and_can_be_cancelled() {
    let url = "https://auth.example.com/oauth2/authorize?client_id=monti&code_challenge=x";
    let mut session = session_for(Floor::awaiting_snapshot());
    session.sign_in = SignIn::Browser {
        url: url.to_owned(),
    };
    let (mut harness, mut commands) = harness(session, Settings::default());
    harness.run();
    assert!(
        harness
            .query_by_label("Sign in in the browser window that opened")
            .is_some()
    );
    assert!(harness.query_by_label(url).is_some());
    assert!(
        harness
            .query_by_role_and_label(Role::Button, "Open in browser")
            .is_some()
    );
    // The server field and the connect button are not in the way while it runs.
    assert!(
        harness
            .query_by_role_and_label(Role::Button, "Connect")
            .is_none()
    );
    harness
        .get_by_role_and_label(Role::Button, "Cancel")
        .click();
    harness.run();
    assert_eq!(drain(&mut commands), vec![Request::CancelSignIn]);
}

#[test]
fn a_sign_in_that_is_needed_offers_a_button_and_says_why() {
    let mut session = session_for(Floor::awaiting_snapshot());
    session.sign_in = SignIn::Needed {
        problem: Some("the stored sign-in was not accepted".to_owned()),
    };
    let (mut harness, mut commands) = harness(session, Settings::default());
    harness.run();
    assert!(
        harness
            .query_by_label("the stored sign-in was not accepted")
            .is_some()
    );
    harness
        .get_by_role_and_label(Role::Button, "Sign in")
        .click();
    harness.run();
    assert_eq!(drain(&mut commands), vec![Request::SignIn]);
}

#[test]
fn a_lost_connection_shows_the_data_as_stale_with_its_age() {
    let mut session = session_for(sample::floor(50, 3, NOW));
    session.link = Link::Connecting;
    session.last_update_ms = NOW - 75_000;
    session.retry_at_ms = Some(NOW + 4_000);
    session.problem = Some("connection failed: IO error: Connection refused (os error 111)".into());
    session.problem_words = Some("server unreachable".to_owned());
    let (mut harness, _commands) = harness(session, Settings::default());
    harness.run();
    assert!(
        harness
            .query_by_label("STALE · data 1:15 old · retry in 4 s")
            .is_some()
    );
    assert!(harness.query_by_label("LIVE").is_none());
    // In plain words, the detail on hover.
    let words = harness.get_by_label("Server unreachable, retrying in 4 seconds");
    words.hover();
    harness.run();
    assert!(
        harness
            .query_by_label("connection failed: IO error: Connection refused (os error 111)")
            .is_some()
    );

    // Why, under the connection bar: a certificate the app refused, in one line that leaves the
    // view buttons where they were.
    let teams_button =
        |harness: &Harness<'_, App>| harness.get_by_role_and_label(Role::Button, "Teams").rect();
    let before = teams_button(&harness);
    let why = "connection failed: floor.example.com:443: the server's certificate was issued by \
               \"CN=Example Corp CA\", which this computer does not trust; install that CA in the \
               system's store or pass it with --ca-file";
    harness
        .state()
        .net()
        .session()
        .set_problem(Some(why.to_owned()));
    harness.run();
    assert!(harness.query_by_label(&format!("C{}", &why[1..])).is_some());
    assert_eq!(teams_button(&harness), before);
}

#[test]
fn a_degraded_server_keeps_the_floor_live_but_says_it_may_be_stale_and_why() {
    let mut session = session_for(sample::floor(50, 3, NOW));
    session.degraded = Some("lost the shared floor (Redis): connection refused".to_owned());
    let (mut harness, _commands) = harness(session, Settings::default());
    harness.run();
    assert!(harness.query_by_label("LIVE · MAY BE STALE").is_some());
    assert!(harness.query_by_label("LIVE").is_none());
    assert!(
        harness
            .query_by_label(
                "The server's data may be incomplete: lost the shared floor (Redis): connection \
                 refused"
            )
            .is_some()
    );

    // The server's all-clear.
    harness.state().net().session().degraded = None;
    harness.run();
    assert!(harness.query_by_label("LIVE").is_some());
    assert!(harness.query_by_label("LIVE · MAY BE STALE").is_none());
}

#[test]
fn an_agent_without_a_signal_shows_as_such_and_asks_for_attention() {
    let (tile, attention) = one_agent_shown(AgentStatus::Stale, 6);
    assert!(tile.contains("No signal"), "{tile}");
    assert!(tile.ends_with("amber"), "{tile}");
    assert!(attention, "in the attention list");
}

#[test]
fn twenty_thousand_agents_lay_out_only_what_is_visible() {
    let (harness, _commands, _floor) = floor_screen(20_000);
    assert_eq!(shown(&harness), 20_000);
    let tiles = harness.query_all_by_role(Role::ListItem).count();
    assert!(
        tiles > 20 && tiles < 400,
        "{tiles} tiles laid out for a 900-point-high window"
    );
}

#[test]
fn tiles_sort_by_time_in_state_longest_first() {
    let (mut harness, _commands, floor) = floor_screen(300);
    harness
        .get_by_role_and_label(Role::ComboBox, "Sort")
        .click();
    harness.run();
    harness.get_by_label("Time in state").click();
    harness.run();
    // Choosing a time sorts longest first at once.
    let sort = harness.state().settings.sort;
    assert_eq!(sort.key, monti_desktop::settings::SortKey::TimeInState);
    assert!(sort.descending);
    // The first tile of the first card (Billing) is its agent longest in state.
    let billing = floor
        .teams()
        .find(|team| team.name == "Billing")
        .expect("team")
        .id;
    let longest = floor
        .agents()
        .filter(|record| {
            record.info.team == billing
                && record
                    .live
                    .is_some_and(|live| live.status.kind() != StateKind::Offline)
        })
        .min_by_key(|record| record.live.map(|live| live.since_ms))
        .expect("an agent");
    let first_tile = harness
        .query_all_by_role(Role::ListItem)
        .map(|node| label(&node))
        .find(|item| !item.starts_with('!'))
        .expect("a tile");
    assert!(
        first_tile.starts_with(&longest.info.name),
        "{first_tile} should be {}",
        longest.info.name
    );
}

#[test]
fn settings_take_a_company_ca_file_and_a_proxy_for_the_next_connection() {
    let (mut harness, mut commands, _floor) = floor_screen(50);
    harness.get_by_label("Settings").click();
    harness.run();
    for (field, text) in [
        (
            "Company CA file (PEM), beside the system's",
            "/etc/monti/company-ca.pem",
        ),
        (
            "Proxy (empty: the system's)",
            "http://desk:pw@proxy.example.com:3128",
        ),
    ] {
        harness.get_by_label(field).focus();
        harness.run();
        harness.get_by_label(field).type_text(text);
        harness.run();
    }
    harness.get_by_label("Connect").click();
    harness.run();
    assert_eq!(
        drain(&mut commands),
        vec![Request::Connect {
            server: monti_desktop::settings::DEFAULT_SERVER.to_owned(),
            transport: monti_client::TransportOptions {
                ca_file: Some("/etc/monti/company-ca.pem".into()),
                proxy: Some("http://desk:pw@proxy.example.com:3128".to_owned()),
            },
        }]
    );
    let settings = &harness.state().settings;
    assert_eq!(settings.ca_file, "/etc/monti/company-ca.pem");
    assert_eq!(settings.proxy, "http://desk:pw@proxy.example.com:3128");
}

#[test]
fn a_refused_certificate_is_explained_where_the_ca_file_can_be_given() {
    let mut session = Session::new("https://floor.example.com");
    let why = "cannot read https://floor.example.com/api/v1/auth: the server's certificate was \
               issued by \"CN=Example Corp CA\", which this computer does not trust; install that \
               CA in the system's store or give it as the company CA file (--ca-file, or the \
               app's Settings)";
    session.problem = Some(why.to_owned());
    let settings = Settings {
        server: "https://floor.example.com".to_owned(),
        ..Settings::default()
    };
    let (mut harness, mut commands) = harness(session, settings);
    harness.run_steps(4);
    assert!(harness.query_by_label(why).is_some());
    harness.get_by_label("Company CA file").focus();
    harness.run_steps(4);
    harness
        .get_by_label("Company CA file")
        .type_text("/etc/monti/example-corp-ca.pem");
    harness.run_steps(4);
    harness.get_by_label("Connect").click();
    harness.run_steps(4);
    assert_eq!(
        drain(&mut commands),
        vec![Request::Connect {
            server: "https://floor.example.com".to_owned(),
            transport: monti_client::TransportOptions {
                ca_file: Some("/etc/monti/example-corp-ca.pem".into()),
                proxy: None,
            },
        }]
    );
}

#[test]
fn the_queues_view_puts_the_worst_queue_first_and_shows_the_agents_who_serve_it() {
    let floor = sample::floor_with_queues(NOW);
    let settings = Settings {
        view: ViewKind::Queues,
        ..Settings::default()
    };
    let (mut harness, _commands) = harness(session_for(floor.clone()), settings);
    harness.run();
    let cards: Vec<String> = harness
        .query_all_by_role(Role::Group)
        .map(|node| label(&node))
        .filter(|label| label.contains("waiting, service level"))
        .collect();
    assert_eq!(
        cards,
        [
            "!!Billing Voice: 7 waiting, service level 75 % / 80 %",
            "!Chat Support: 0 waiting, service level 57 % / 80 %",
            "Sales Voice: 1 waiting, service level 81 % / 80 %",
        ]
    );
    assert!(
        harness
            .query_by_label_contains(
                "answered within target / (answered + abandoned - short abandons)"
            )
            .is_some(),
        "the formula is on screen"
    );
    // The attention list names the queue's problems beside the agents'.
    assert!(
        harness
            .query_by_label("!! Billing Voice: a contact has waited 1:35 (over 0:20)")
            .is_some()
    );
    // The first card's button shows the agents of Billing and Claims, who serve it.
    harness
        .query_all_by_role_and_label(Role::Button, "Show agents")
        .next()
        .expect("a button per card")
        .click();
    harness.run();
    assert_eq!(harness.state().settings.view, ViewKind::Teams);
    assert_eq!(
        harness.state().settings.filter.queue.as_deref(),
        Some("Billing Voice")
    );
    assert_eq!(
        shown(&harness),
        in_team(&floor, "Billing") + in_team(&floor, "Claims")
    );
    // The strip's chip for the queue clears the selection again.
    harness
        .query_all_by_role(Role::Button)
        .find(|node| label(node).starts_with("!!Billing Voice: 7 · 1:35"))
        .expect("the queue's chip")
        .click();
    harness.run();
    assert_eq!(harness.state().settings.filter.queue, None);
    assert_eq!(shown(&harness), floor.n_agents());
}

#[test]
fn the_team_picker_finds_a_team_keeps_the_chosen_first_and_a_clear_can_be_undone() {
    let floor = sample::floor_with_teams(1_500, 66, 42, NOW);
    let (mut harness, _commands) = harness(session_for(floor.clone()), Settings::default());
    harness.run();
    let top = |harness: &Harness<'_, App>, name: &str| {
        harness
            .get_by_role_and_label(Role::CheckBox, name)
            .rect()
            .top()
    };
    // Natural order: Billing 2 before Billing 10.
    assert!(top(&harness, "Billing 2") < top(&harness, "Billing 10"));

    find_teams(&harness).click();
    harness.run();
    find_teams(&harness).type_text("billing 1");
    harness.run();
    let typed = find_teams(&harness).accesskit_node().value();
    assert_eq!(typed.as_deref(), Some("billing 1"));
    for name in ["Billing 1", "Billing 10", "Billing 11"] {
        assert!(
            harness
                .query_by_role_and_label(Role::CheckBox, name)
                .is_some(),
            "{name}"
        );
    }
    for name in ["Billing 2", "Sales 1"] {
        assert!(
            harness
                .query_by_role_and_label(Role::CheckBox, name)
                .is_none(),
            "{name}"
        );
    }
    harness
        .get_by_role_and_label(Role::CheckBox, "Billing 10")
        .click();
    harness.run();
    assert_eq!(shown(&harness), in_team(&floor, "Billing 10"));

    // The chosen team stays in sight, first, whatever the box says.
    find_teams(&harness).click();
    harness.run();
    find_teams(&harness).type_text("xyz");
    harness.run();
    assert!(
        harness
            .query_by_role_and_label(Role::CheckBox, "Billing 10")
            .is_some()
    );
    assert!(
        harness
            .query_by_role_and_label(Role::CheckBox, "Billing 1")
            .is_none()
    );

    // A reason on top: only Billing 10's agents on lunch.
    harness
        .get_by_role_and_label(Role::CheckBox, "Lunch")
        .click();
    harness.run();
    let lunch = floor
        .reasons()
        .find(|reason| reason.label == "Lunch")
        .expect("Lunch")
        .id;
    let on_lunch = floor
        .agents()
        .filter(|record| {
            floor
                .team(record.info.team)
                .is_some_and(|team| team.name == "Billing 10")
                && record
                    .live
                    .is_some_and(|live| live.status.reason() == Some(lunch))
        })
        .count();
    assert!(on_lunch > 0);
    assert_eq!(shown(&harness), on_lunch);

    // Clear, then Undo: both filters are back.
    let before = harness.state().settings.filter.clone();
    harness
        .get_by_role_and_label(Role::Button, "Clear filters")
        .click();
    harness.run();
    assert_eq!(shown(&harness), 1_500);
    harness
        .get_by_role_and_label(Role::Button, "Undo clear")
        .click();
    harness.run();
    assert_eq!(harness.state().settings.filter, before);
    assert_eq!(shown(&harness), on_lunch);
}

#[test]
fn offline_agents_come_last_with_the_clock_time_they_left() {
    // One team of a small floor: every tile is on screen.
    let mut floor = sample::floor(90, 42, NOW);
    let billing: Vec<AgentId> = (floor.agents())
        .filter(|record| {
            floor
                .team(record.info.team)
                .is_some_and(|t| t.name == "Billing")
        })
        .map(|record| record.info.id)
        .take(2)
        .collect();
    for id in billing {
        (floor.set_status(id, AgentStatus::Offline, NOW - 3 * 3_600_000)).expect("an agent");
    }
    floor.advance(2, NOW);
    let mut settings = Settings::default();
    settings.filter.teams.insert("Billing".to_owned());
    let (mut harness, _commands) = harness(session_for(floor.clone()), settings);
    harness.run();
    let tiles: Vec<String> = harness
        .query_all_by_role(Role::ListItem)
        .map(|node| label(&node))
        .collect();
    // The attention list comes first (its entries start with a mark); then the card.
    let card: Vec<&String> = tiles
        .iter()
        .filter(|label| !label.starts_with('!'))
        .collect();
    assert_eq!(card.len(), in_team(&floor, "Billing"), "{tiles:?}");
    let first_offline = (card.iter())
        .position(|label| label.contains(", Offline, "))
        .expect("Billing has offline agents");
    assert!(first_offline > 0);
    assert!(
        card[first_offline..]
            .iter()
            .all(|label| label.contains(", Offline, "))
    );
    assert!(
        card.iter()
            .filter(|label| label.contains(", Offline, "))
            .all(|label| label.contains(", since ")),
        "{card:?}"
    );
}

/// The box that finds a team in the filter panel's team picker: the text box after the
/// top bar's search (its placeholder names it while it is empty).
fn find_teams<'h>(harness: &'h Harness<'_, App>) -> Node<'h> {
    let boxes: Vec<Node<'h>> = harness.query_all_by_role(Role::TextInput).collect();
    assert_eq!(boxes.len(), 2, "the search and the team picker's box");
    let found = boxes.into_iter().nth(1).expect("two boxes");
    let node = found.accesskit_node();
    assert!(
        node.placeholder() == Some("Find teams") || node.value().is_some_and(|v| !v.is_empty())
    );
    found
}

#[test]
fn a_click_on_a_tile_opens_the_agents_day_from_the_stored_history_kept_live() {
    use monti_desktop::agent::local_midnight;
    use monti_desktop::net::History;
    use monti_protocol::ingest::HistoryEntryJson;

    let mut floor = sample::floor(60, 42, NOW);
    let anna = floor
        .agents()
        .find(|record| {
            record
                .live
                .is_some_and(|live| live.status.kind() == StateKind::OnCall)
        })
        .expect("someone on a call")
        .info
        .clone();
    let (team, site) = (
        floor.team(anna.team).expect("team").name.clone(),
        floor.site(anna.site).expect("site").name.clone(),
    );
    let since = floor
        .agent(anna.id)
        .and_then(|r| r.live)
        .expect("live")
        .since_ms;
    let (mut harness, mut commands) = harness(session_for(floor.clone()), Settings::default());
    harness.run();
    harness
        .get_by(|node| {
            node.role() == Role::ListItem
                && node
                    .label()
                    .is_some_and(|label| label.starts_with(&format!("{}, On call", anna.name)))
        })
        .click();
    harness.run();
    let asked: Vec<Request> = drain(&mut commands)
        .into_iter()
        .filter(|request| matches!(request, Request::History(_)))
        .collect();
    let [Request::History(wanted)] = &asked[..] else {
        panic!("one history request: {asked:?}");
    };
    assert_eq!(
        (&wanted.name, &wanted.team, &wanted.site),
        (&anna.name, &team, &site)
    );
    assert!(wanted.from_ms < local_midnight(NOW), "from the day before");
    assert!(harness.query_by_label("Reading today's history…").is_some());

    // The server's answer: logged in at 08:00 local (or at the day's start), lunch, then the
    // call the floor shows.
    let midnight = local_midnight(NOW);
    let login = (midnight + 8 * 3_600_000).min(since - 3_600_000);
    let entry = |state: &str, reason: Option<&str>, at: u64| HistoryEntryJson {
        agent: "ext".to_owned(),
        name: anna.name.clone(),
        team: team.clone(),
        site: site.clone(),
        state: state.to_owned(),
        reason: reason.map(str::to_owned),
        since_ms: at as i64,
        received_ms: at as i64,
        event_id: None,
    };
    let entries = vec![
        entry("offline", None, midnight - 3_600_000),
        entry("available", None, login),
        entry("not_ready", Some("lunch"), login + 600_000),
        entry("on_call", None, since),
    ];
    harness.state().net().session().history = Some(History {
        wanted: wanted.clone(),
        entries: Ok(entries),
    });
    harness.run();
    let clock = |ms: u64| monti_desktop::agent::clock_text(ms);
    assert!(
        harness
            .query_by_label(&format!("Logged in at {}", clock(login)))
            .is_some()
    );
    assert!(
        harness.query_by_label("    Lunch").is_some(),
        "time per reason"
    );
    assert!(
        harness
            .query_by_label_contains("Timeline of today: 4 changes")
            .is_some()
    );
    // The history names the agent's external id: the panel asks for today's contacts once.
    harness.run();
    let contacts: Vec<Request> = drain(&mut commands)
        .into_iter()
        .filter(|request| matches!(request, Request::Contacts(_)))
        .collect();
    let [Request::Contacts(wanted_contacts)] = &contacts[..] else {
        panic!("one contacts request: {contacts:?}");
    };
    assert_eq!(
        (wanted_contacts.agent.as_str(), wanted_contacts.from_ms),
        ("ext", midnight)
    );
    assert!(
        harness
            .query_by_label("Reading today's contacts…")
            .is_some()
    );
    let leg = |queue: &str, at: u64, outcome: &str| monti_protocol::ingest::ContactLegJson {
        contact: format!("c-{at}"),
        queue: queue.to_owned(),
        queued_ms: at - 5_000,
        offered_ms: Some(at),
        connected_ms: Some(at + 2_000),
        ended_ms: (outcome == "answered").then_some(at + 62_000),
        agent: Some("ext".to_owned()),
        outcome: outcome.to_owned(),
    };
    let legs = vec![
        leg("Billing Voice", login + 60_000, "answered"),
        leg("Sales Voice", since, "connected"),
    ];
    harness.state().net().session().contacts = Some(monti_desktop::net::Contacts {
        wanted: wanted_contacts.clone(),
        legs: Ok(legs.clone()),
    });
    harness.run();
    let lines: Vec<String> = legs
        .iter()
        .rev()
        .map(|leg| monti_desktop::agent::contact_text(leg, NOW))
        .collect();
    let tops: Vec<f32> = lines
        .iter()
        .map(|line| harness.get_by_label(line).rect().top())
        .collect();
    assert!(tops[0] < tops[1], "newest first: {lines:?}");
    assert!(lines[1].ends_with("answered, 1:00 talking"), "{lines:?}");

    // Kept live from the stream: the agent goes on hold, and the panel says so at once.
    floor
        .set_status(anna.id, AgentStatus::OnHold, NOW)
        .expect("known agent");
    floor.advance(floor.seq() + 1, NOW);
    let shared = harness.state().net().session().floor.clone();
    *shared.lock().expect("the floor") = floor;
    harness.run();
    assert!(
        harness
            .query_by_label_contains("Timeline of today: 5 changes")
            .is_some()
    );
    assert!(
        harness
            .query_by_label(&format!("since {} (0:00)", clock(NOW)))
            .is_some()
    );

    // Esc closes it.
    harness.key_press(egui::Key::Escape);
    harness.run();
    assert!(
        harness
            .query_by_label_contains("Timeline of today")
            .is_none()
    );

    // Enter on a tile with the keyboard focus opens it too.
    harness
        .get_by(|node| {
            node.role() == Role::ListItem
                && node
                    .label()
                    .is_some_and(|label| label.starts_with(&anna.name))
        })
        .focus();
    harness.run();
    harness.key_press(egui::Key::Enter);
    harness.run();
    assert!(
        drain(&mut commands)
            .iter()
            .any(|request| matches!(request, Request::History(_)))
    );
    assert!(
        harness
            .query_by_label_contains("Timeline of today")
            .is_some()
    );
}

#[test]
fn the_summary_view_answers_which_site_has_the_fewest_available_in_two_clicks() {
    let (mut harness, _commands, floor) = floor_screen(800);
    harness
        .get_by_role_and_label(Role::Button, "Summary")
        .click();
    harness.run();
    assert!(
        harness.query_by_label("All shown").is_some(),
        "the totals row"
    );
    for site in floor.sites() {
        assert!(
            harness
                .query_by_role_and_label(Role::Button, &site.name)
                .is_some(),
            "{}",
            site.name
        );
    }
    // The second click: Available, fewest first.
    harness
        .get_by(|node| {
            node.role() == Role::Button
                && node.label().is_some_and(|label| {
                    label == "AV Available" || label.starts_with("AV Available ⏷")
                })
        })
        .click();
    harness.run();
    let view = harness.state().settings.summary;
    assert_eq!(
        (view.key, view.descending),
        (
            monti_desktop::settings::SummaryKey::Count(StateKind::Available),
            false
        )
    );
    // The first row is the site with the fewest available agents.
    let fewest = floor
        .sites()
        .min_by_key(|site| {
            floor
                .agents()
                .filter(|record| {
                    record.info.site == site.id
                        && record
                            .live
                            .is_some_and(|live| live.status.kind() == StateKind::Available)
                })
                .count()
        })
        .expect("sites");
    let top = |name: &str| {
        harness
            .get_by_role_and_label(Role::Button, name)
            .rect()
            .top()
    };
    for site in floor.sites().filter(|site| site.id != fewest.id) {
        assert!(
            top(&fewest.name) <= top(&site.name),
            "{} first",
            fewest.name
        );
    }
    // A row drills into its site.
    harness
        .get_by_role_and_label(Role::Button, &fewest.name)
        .click();
    harness.run();
    let settings = &harness.state().settings;
    assert_eq!(settings.view, ViewKind::Teams);
    assert!(settings.filter.sites.contains(&fewest.name));
}

#[test]
fn the_matrix_keeps_its_header_and_totals_in_place_while_teams_scroll() {
    let floor = sample::floor_with_teams(2_000, 66, 42, NOW);
    let settings = Settings {
        view: ViewKind::Matrix,
        show_attention: false,
        ..Settings::default()
    };
    let (mut harness, _commands) = harness(session_for(floor.clone()), settings);
    harness.run();
    let site = floor.sites().next().expect("a site").name.clone();
    let before = harness.get_by_role_and_label(Role::Button, &site).rect();
    assert!(harness.query_by_label("Total").is_some());
    assert!(harness.query_by_label("Team \\ Site").is_some());
    assert!(
        harness
            .query_by_role_and_label(Role::Button, "Billing 1")
            .is_some()
    );
    harness.hover_at(egui::pos2(700.0, 500.0));
    for _ in 0..20 {
        harness.event(egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Page,
            delta: egui::vec2(0.0, -1.0),
            modifiers: egui::Modifiers::NONE,
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Wheel,
        });
        // The two tables follow each other a frame apart.
        harness.run_steps(8);
    }
    assert!(
        harness
            .query_by_role_and_label(Role::Button, "Billing 1")
            .is_none(),
        "the first team scrolled away"
    );
    assert_eq!(
        harness.get_by_role_and_label(Role::Button, &site).rect(),
        before,
        "the site's header stayed"
    );
    // Both tables scrolled together: the team in the name column's first visible row is
    // drawn at the height of the first visible row of counts.
    let first_team = harness
        .query_all_by_role(Role::Button)
        .filter(|node| {
            let rect = node.rect();
            // In the central panel, left of the sites, under the header.
            rect.left() > 195.0 && rect.left() < before.left() && rect.top() > before.bottom()
        })
        .map(|node| node.rect().top())
        .fold(f32::MAX, f32::min);
    let first_cell = harness
        .query_all_by_role(Role::Label)
        .filter(|node| {
            node.rect().left() >= before.left() && node.rect().top() > before.bottom() + 20.0
        })
        .map(|node| node.rect().top())
        .fold(f32::MAX, f32::min);
    assert!(
        (first_team - first_cell).abs() < 6.0,
        "rows line up: {first_team} and {first_cell}"
    );
}

#[test]
fn in_a_narrow_window_the_matrix_keeps_the_team_names_while_sites_scroll_sideways() {
    let floor = sample::floor_with_teams(400, 12, 42, NOW);
    let settings = Settings {
        view: ViewKind::Matrix,
        show_attention: false,
        ..Settings::default()
    };
    let (mut harness, _commands) = harness(session_for(floor.clone()), settings);
    harness.set_size(egui::vec2(640.0, 700.0));
    harness.run();
    let team = harness
        .get_by_role_and_label(Role::Button, "Billing 1")
        .rect();
    let last_site = floor
        .sites()
        .map(|site| site.name.clone())
        .max_by(|a, b| monti_protocol::names::natural_cmp(a, b));
    let last_site = last_site.expect("sites");
    let hidden = harness.query_by_role_and_label(Role::Button, &last_site);
    assert!(
        hidden.is_none_or(|node| node.rect().left() > 640.0),
        "the last site is off to the right"
    );
    harness.hover_at(egui::pos2(600.0, 400.0));
    for _ in 0..10 {
        harness.event(egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Page,
            delta: egui::vec2(-1.0, 0.0),
            modifiers: egui::Modifiers::NONE,
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Wheel,
        });
        harness.run_steps(8);
    }
    let shown = harness
        .get_by_role_and_label(Role::Button, &last_site)
        .rect();
    assert!(
        shown.right() <= 641.0,
        "the last site scrolled in: {shown:?}"
    );
    assert_eq!(
        harness
            .get_by_role_and_label(Role::Button, "Billing 1")
            .rect(),
        team,
        "the team names stayed"
    );
}

fn me(may: &[&str]) -> monti_protocol::rest::MeJson {
    monti_protocol::rest::MeJson {
        subject: "anna".to_owned(),
        roles: vec!["supervisor".to_owned()],
        may: may.iter().map(|action| (*action).to_owned()).collect(),
        address: None,
        https: None,
        groups: Vec::new(),
        note: None,
    }
}

#[test]
fn a_supervisor_reads_the_thresholds_and_cannot_change_them() {
    let mut session = session_for(sample::floor(200, 42, NOW));
    session.me = Some(me(&["view_summary", "view_agents", "subscribe"]));
    let (mut harness, _commands) = harness(session, Settings::default());
    harness.run();
    harness
        .get_by_role_and_label(Role::Button, "Thresholds")
        .click();
    harness.run();
    assert!(
        harness
            .query_by_label("Read only: an administrator changes them.")
            .is_some()
    );
    // The not-ready row: its name beside the strip's checkbox, its amber and red times.
    assert!(harness.query_all_by_label("Not ready").count() >= 2);
    assert!(
        harness.query_by_label("10:00").is_some(),
        "not ready's amber"
    );
    assert!(
        harness.query_all_by_label("15:00").count() >= 1,
        "not ready's red"
    );
    assert!(
        harness
            .query_by_role_and_label(Role::Button, "Save")
            .is_none()
    );
    assert!(
        harness
            .query_by_role_and_label(Role::Button, "Remove")
            .is_none()
    );
}

#[test]
fn an_administrator_gives_lunch_its_own_threshold_and_the_tiles_follow_it() {
    use monti_protocol::rest::{Limit, Thresholds};

    let mut floor = sample::floor(200, 42, NOW);
    let lunch = floor
        .reasons()
        .find(|reason| reason.code == "lunch")
        .expect("lunch")
        .id;
    let anna = floor.agents().next().expect("an agent").info.clone();
    // Twelve minutes at lunch: amber by the not-ready default (10 and 15 minutes).
    floor
        .set_status(
            anna.id,
            AgentStatus::NotReady(Some(lunch)),
            NOW - 12 * 60_000,
        )
        .expect("known");
    floor.advance(floor.seq() + 1, NOW);
    let mut session = session_for(floor);
    session.me = Some(me(&["view_summary", "view_agents", "change_config"]));
    let (mut harness, mut commands) = harness(session, Settings::default());
    harness.run();
    let tile = |harness: &Harness<'_, App>| {
        harness
            .query_all_by_role(Role::ListItem)
            .map(|node| label(&node))
            .find(|label| label.starts_with(&format!("{}, Not ready (Lunch)", anna.name)))
            .expect("Anna's tile")
    };
    assert!(tile(&harness).ends_with(", amber"), "{}", tile(&harness));

    harness
        .get_by_role_and_label(Role::Button, "Thresholds")
        .click();
    harness.run();
    harness
        .get_by(|node| {
            node.role() == Role::ComboBox && node.value().as_deref() == Some("Not ready")
        })
        .click();
    harness.run();
    harness.get_by_label("Not ready: Lunch").click();
    harness.run();
    harness.get_by_role_and_label(Role::Button, "Add").click();
    harness.run();
    harness.get_by_role_and_label(Role::Button, "Save").click();
    harness.run();
    let saved: Vec<Thresholds> = drain(&mut commands)
        .into_iter()
        .filter_map(|request| match request {
            Request::SetThresholds(thresholds) => Some(thresholds),
            _ => None,
        })
        .collect();
    let [saved] = &saved[..] else {
        panic!("one save: {saved:?}");
    };
    let added = Limit {
        amber_secs: 300,
        red_secs: 600,
    };
    assert_eq!(saved.default.get("not_ready:lunch"), Some(&added));
    assert_eq!(
        saved.default.get("not_ready"),
        Thresholds::default().default.get("not_ready"),
        "the rest as it was"
    );

    // The server's answer: saved. Anna's tile follows the lunch limit (red after 10 minutes).
    {
        let mut session = harness.state().net().session();
        session.thresholds = saved.clone();
        session.thresholds_saved = Some(Ok(()));
    }
    harness.run();
    assert!(
        harness
            .query_by_label("Saved; every app colours by them within a minute.")
            .is_some()
    );
    assert!(tile(&harness).ends_with(", red"), "{}", tile(&harness));
}

#[test]
fn alerts_are_chosen_per_threshold_and_muted_for_the_shift() {
    let (mut harness, _commands, _floor) = floor_screen(200);
    harness
        .get_by_role_and_label(Role::Button, "Thresholds")
        .click();
    harness.run();
    // One Notify box per threshold key (the defaults: ringing, on hold, wrap-up, not ready
    // and no signal), all off.
    let boxes: Vec<_> = harness
        .query_all_by_role_and_label(Role::CheckBox, "Notify")
        .collect();
    assert_eq!(boxes.len(), 5, "one per default threshold");
    drop(boxes);
    harness
        .query_all_by_role_and_label(Role::CheckBox, "Notify")
        .next()
        .expect("a box")
        .click();
    harness.run();
    let alerts = &harness.state().settings.alerts;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts.values().all(|choice| choice.notify && !choice.sound));

    harness
        .get_by_role_and_label(Role::Button, "Mute alerts for the shift")
        .click();
    harness.run();
    assert_eq!(harness.state().settings.muted_until_ms, NOW + 8 * 3_600_000);
    let until = monti_desktop::agent::clock_text(NOW + 8 * 3_600_000);
    assert!(
        harness
            .query_by_label(&format!("Alerts muted until {until}"))
            .is_some()
    );
    harness
        .get_by_role_and_label(Role::Button, "Unmute")
        .click();
    harness.run();
    assert_eq!(harness.state().settings.muted_until_ms, 0);
}

#[test]
fn a_named_view_is_saved_shown_again_and_the_default_opens_the_app() {
    let (mut harness, _commands, floor) = floor_screen(600);
    harness
        .get_by_role_and_label(Role::CheckBox, "Sales")
        .click();
    harness.run();
    harness
        .get_by_role_and_label(Role::Button, "Summary")
        .click();
    harness.run();
    harness.get_by_role_and_label(Role::Button, "Views").click();
    harness.run();
    harness
        .get_by(|node| node.role() == Role::TextInput && node.placeholder() == Some("My teams"))
        .click();
    harness.run();
    harness
        .get_by(|node| node.role() == Role::TextInput && node.placeholder() == Some("My teams"))
        .type_text("Sales");
    harness.run();
    harness.get_by_role_and_label(Role::Button, "Save").click();
    harness.run();
    assert_eq!(harness.state().settings.views.len(), 1);

    // Somewhere else, then back in one click.
    harness.state_mut().settings.filter = Default::default();
    harness.state_mut().settings.view = ViewKind::Teams;
    harness.run();
    assert_eq!(shown(&harness), 600);
    harness.get_by_role_and_label(Role::Button, "Sales").click();
    harness.run();
    assert_eq!(harness.state().settings.view, ViewKind::Summary);
    assert_eq!(shown(&harness), in_team(&floor, "Sales"));

    // Marked default, it is where the next start opens.
    harness.get_by_role_and_label(Role::Button, "Views").click();
    harness.run();
    harness.get_by_label("default").click();
    harness.run();
    let mut settings = harness.state().settings.clone();
    assert_eq!(settings.default_view.as_deref(), Some("Sales"));
    settings.filter = Default::default();
    settings.view = ViewKind::Agents;
    let (mut next, _commands) = self::harness(session_for(floor.clone()), settings);
    next.run();
    assert_eq!(next.state().settings.view, ViewKind::Summary);
    assert_eq!(shown(&next), in_team(&floor, "Sales"));
}

#[test]
fn in_a_narrow_window_the_top_bar_wraps_instead_of_drawing_over_itself() {
    let mut session = session_for(sample::floor(100, 42, NOW));
    session.me = Some(me(&["view_agents"]));
    let (net, _commands) = Net::detached(session);
    let mut app = App::new(Settings::default(), net);
    app.clock = Clock::Fixed(NOW);
    let mut harness = Harness::builder()
        .with_size(egui::vec2(720.0, 700.0))
        .build_eframe(|_| app);
    harness.run();
    let right: Vec<egui::Rect> = ["Settings", "Views", "Thresholds"]
        .into_iter()
        .map(|name| harness.get_by_role_and_label(Role::Button, name).rect())
        .chain([harness.get_by_label("anna · supervisor").rect()])
        .collect();
    let left: Vec<egui::Rect> = [
        harness.get_by_role_and_label(Role::Button, "Agents").rect(),
        harness
            .get_by_role_and_label(Role::Button, "Descending")
            .rect(),
        harness.get_by_role(Role::TextInput).rect(),
        harness.get_by_role(Role::ComboBox).rect(),
    ]
    .into();
    for a in &right {
        for b in &left {
            assert!(!a.intersects(*b), "drawn over each other: {a:?} {b:?}");
        }
    }
}

#[test]
fn the_trend_answers_what_happened_in_the_last_half_hour_in_two_clicks() {
    use monti_desktop::net::Trend;
    use monti_protocol::rest::TrendJson;

    let (mut harness, mut commands, floor) = floor_screen(300);
    let trend_requests = |commands: &mut UnboundedReceiver<Request>| -> Vec<_> {
        drain(commands)
            .into_iter()
            .filter_map(|request| match request {
                Request::Trend(wanted) => Some(wanted),
                _ => None,
            })
            .collect()
    };
    harness.get_by_role_and_label(Role::Button, "Trend").click();
    harness.run();
    let [two_hours] = &trend_requests(&mut commands)[..] else {
        panic!("one trend request");
    };
    assert!(two_hours.teams.is_empty() && two_hours.sites.is_empty());
    assert_eq!(two_hours.to_ms, NOW);
    assert!((2 * 3_600_000..2 * 3_600_000 + 60_000).contains(&(NOW - two_hours.from_ms)));
    assert!(harness.query_by_label("Reading the trend…").is_some());
    assert!(harness.query_by_label("The whole floor").is_some());

    // The second click: the last 30 minutes.
    harness
        .get_by_role_and_label(Role::Button, "30 min")
        .click();
    harness.run();
    let [half_hour] = &trend_requests(&mut commands)[..] else {
        panic!("one trend request for the new period");
    };
    assert!((1_800_000..1_810_000).contains(&(NOW - half_hour.from_ms)));
    // An answer for the old period is not shown as the new one.
    let answer = |wanted: &monti_desktop::net::TrendWanted, available: Vec<u32>| Trend {
        wanted: wanted.clone(),
        counts: Ok(TrendJson {
            from_ms: wanted.from_ms,
            step_ms: 10_000,
            states: BTreeMap::from([
                ("available".to_owned(), available.clone()),
                (
                    "on_call".to_owned(),
                    available.iter().map(|n| n * 2).collect(),
                ),
            ]),
        }),
    };
    harness.state().net().session().trend = Some(answer(two_hours, vec![1; 5]));
    harness.run();
    assert!(harness.query_by_label("Reading the trend…").is_some());
    harness.state().net().session().trend = Some(answer(half_hour, vec![4, 5, 6, 40, 7]));
    harness.run();
    // The chart ends with the floor now; the legend counts it per state.
    let live = |kind: StateKind| {
        (floor.agents())
            .filter(|record| record.live.is_some_and(|live| live.status.kind() == kind))
            .count()
    };
    let drawn: usize = StateKind::ALL
        .into_iter()
        .filter(|kind| *kind != StateKind::Offline)
        .map(live)
        .sum();
    let chart = format!(
        "Agents per state from {} to {}: {drawn} agents now",
        monti_desktop::agent::clock_text(NOW - 1_800_000),
        monti_desktop::agent::clock_text(NOW)
    );
    assert!(harness.query_by_label(&chart).is_some(), "{chart}");
    let available = format!("Available {}", live(StateKind::Available));
    assert!(harness.query_by_label(&available).is_some(), "{available}");
    assert!(
        harness
            .query_by_label_contains("offline, not drawn")
            .is_some()
    );
    // The pointer names the time and the counts under it.
    harness.get_by_label(&chart).hover();
    harness.run();
    assert!(
        harness.query_by_label_contains("On call: ").is_some(),
        "the hover names the counts"
    );

    // A team and site chosen in the filter are asked for by name.
    let team = floor.teams().next().expect("a team").name.clone();
    let site = floor.sites().next().expect("a site").name.clone();
    let filter = &mut harness.state_mut().settings.filter;
    filter.teams = [team.clone()].into();
    filter.sites = [site.clone()].into();
    harness.run();
    let [narrowed] = &trend_requests(&mut commands)[..] else {
        panic!("one trend request for the team");
    };
    assert_eq!(
        (&narrowed.teams, &narrowed.sites),
        (&vec![team.clone()], &vec![site.clone()])
    );
    let counted = format!("{team} at {site}");
    assert!(harness.query_by_label(&counted).is_some(), "{counted}");
    harness.state().net().session().trend = Some(Trend {
        wanted: narrowed.clone(),
        counts: Err("you may not do this".to_owned()),
    });
    harness.run();
    assert!(
        harness
            .query_by_label("No trend: you may not do this")
            .is_some()
    );
}

#[test]
fn the_tables_columns_are_chosen_and_kept_in_a_saved_view() {
    let settings = Settings {
        view: ViewKind::Agents,
        ..Settings::default()
    };
    let floor = sample::floor(80, 42, NOW);
    let (mut harness, _commands) = harness(session_for(floor), settings);
    harness.run();
    let header = |harness: &Harness<'_, App>, title: &str| {
        harness
            .query_by(|node| {
                node.role() == Role::Button
                    && node.label().is_some_and(|label| {
                        label == title || label.starts_with(&format!("{title} "))
                    })
            })
            .is_some()
    };
    assert!(header(&harness, "Site") && !header(&harness, "Since"));
    harness
        .get_by_role_and_label(Role::Button, "Columns")
        .click();
    harness.run();
    harness
        .get_by_role_and_label(Role::CheckBox, "Site")
        .click();
    harness.run();
    harness
        .get_by_role_and_label(Role::CheckBox, "Since")
        .click();
    harness.run();
    harness.key_press(egui::Key::Escape);
    harness.run();
    assert!(!header(&harness, "Site") && header(&harness, "Since"));
    let first = harness.state().settings.columns.clone();
    harness.state_mut().settings.save_view("Mine");
    harness.state_mut().settings.columns = Default::default();
    harness.run();
    assert!(header(&harness, "Site"));
    assert!(harness.state_mut().settings.apply_view("Mine"));
    harness.run();
    assert_eq!(harness.state().settings.columns, first);
    assert!(!header(&harness, "Site") && header(&harness, "Since"));
}

#[test]
fn an_app_older_than_the_server_supports_says_update_monti_with_the_link() {
    let mut session = session_for(sample::floor(40, 42, NOW));
    session.server_name = Some("monti-server 9.9.9".to_owned());
    session.update = Some(monti_desktop::net::Update {
        version: "9.9.9".to_owned(),
        download_url: Some("https://monti.example.com/download".to_owned()),
    });
    let (mut harness, _commands) = harness(session, Settings::default());
    harness.run();
    let text = format!(
        "Update MONTI to 9.9.9 (this is {})",
        env!("CARGO_PKG_VERSION")
    );
    assert!(harness.query_by_label(&text).is_some(), "{text}");
    assert!(harness.query_by_label("Download").is_some(), "the link");
    // The protocol error such an app meets is not what it says.
    {
        let mut session = harness.state().net().session();
        session.link = Link::Connecting;
        session.set_problem(Some("refused: VersionMismatch".to_owned()));
        session.problem_words = Some("this app and the server differ in version".to_owned());
    }
    harness.run();
    assert!(
        harness
            .query_by_label_contains("differ in version")
            .is_none()
    );
    assert!(harness.query_by_label(&text).is_some());
    harness.state().net().session().link = Link::Live;
    harness.run();
    // Settings name both versions.
    harness
        .get_by_role_and_label(Role::Button, "Settings")
        .click();
    harness.run();
    let versions = format!(
        "This app: monti-desktop {}; the server: monti-server 9.9.9",
        env!("CARGO_PKG_VERSION")
    );
    assert!(harness.query_by_label(&versions).is_some(), "{versions}");
    // Without a newer version named, nothing is said.
    harness.state().net().session().update = None;
    harness.key_press(egui::Key::Escape);
    harness.run();
    assert!(harness.query_by_label(&text).is_none());
}
