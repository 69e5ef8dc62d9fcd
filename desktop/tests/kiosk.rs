//! The wallboard as it runs unattended, through egui_kittest with a controlled clock: pages
//! rotate in the configured order and timing, arrow keys turn them, the stale overlay comes and
//! goes with the connection, and the code screen returns (without buttons) whenever the network
//! thread has to sign in again.

use egui::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use monti_client::follow::Link;
use monti_desktop::App;
use monti_desktop::app::{Clock, Screen};
use monti_desktop::kiosk::Kiosk;
use monti_desktop::net::{CodeScreen, Net, SignIn};
use monti_desktop::sample;
use monti_desktop::settings::Settings;
use monti_protocol::message::{Delta, StatusChange};
use monti_protocol::model::{AgentStatus, StateKind};
use monti_protocol::rest::{PageKind, WallboardConfig, WallboardPage};

const NOW: u64 = 1_800_000_000_000;

fn wallboard(
    local: Option<WallboardConfig>,
    server: Option<WallboardConfig>,
) -> Harness<'static, App> {
    let mut session = sample::live_session(sample::floor(400, 5, NOW), NOW);
    session.wallboard = server;
    wallboard_on(session, local).0
}

/// A wallboard on `session`, and what it asks of the network thread.
fn wallboard_on(
    session: monti_desktop::net::Session,
    local: Option<WallboardConfig>,
) -> (
    Harness<'static, App>,
    tokio::sync::mpsc::UnboundedReceiver<monti_desktop::net::Request>,
) {
    let (net, requests) = Net::detached(session);
    let mut app = App::new(Settings::default(), net);
    app.clock = Clock::Fixed(NOW);
    app.screen = Screen::Wallboard(Kiosk::new(local));
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1920.0, 1080.0))
        .build_eframe(|_| app);
    harness.run();
    (harness, requests)
}

fn at(harness: &mut Harness<'_, App>, ms_later: u64) {
    harness.state_mut().clock = Clock::Fixed(NOW + ms_later);
    harness.run();
}

fn page(harness: &Harness<'_, App>) -> String {
    let pages: Vec<String> = harness
        .query_all_by(|node| {
            node.role() == Role::Pane && node.label().is_some_and(|l| l.starts_with("Page "))
        })
        .filter_map(|node| egui_kittest::kittest::NodeT::accesskit_node(&node).label())
        .collect();
    assert_eq!(pages.len(), 1, "one page at a time: {pages:?}");
    pages[0].trim_start_matches("Page ").to_owned()
}

/// What every tile and row of the page says (their accessible labels).
/// What the not-live overlay says to a screen reader.
fn overlay_label(harness: &Harness<'_, App>) -> String {
    let overlay = harness.get_by_role(Role::Alert);
    egui_kittest::kittest::NodeT::accesskit_node(&overlay)
        .label()
        .unwrap_or_default()
}

fn list_items(harness: &Harness<'_, App>) -> Vec<String> {
    harness
        .query_all_by_role(Role::ListItem)
        .filter_map(|node| egui_kittest::kittest::NodeT::accesskit_node(&node).label())
        .collect()
}

fn rotation() -> WallboardConfig {
    let page = |kind, seconds| WallboardPage { kind, seconds };
    WallboardConfig {
        pages: vec![
            page(PageKind::Attention, 10),
            page(PageKind::Totals, 5),
            page(PageKind::Sites, 5),
        ],
        ..WallboardConfig::default()
    }
}

#[test]
fn pages_rotate_in_the_servers_order_and_timing() {
    let mut harness = wallboard(None, Some(rotation()));
    assert_eq!(page(&harness), "Attention");
    at(&mut harness, 9_900);
    assert_eq!(page(&harness), "Attention");
    at(&mut harness, 10_000);
    assert_eq!(page(&harness), "Floor");
    at(&mut harness, 15_000);
    assert_eq!(page(&harness), "Sites");
    at(&mut harness, 20_000);
    assert_eq!(page(&harness), "Attention", "and round again");

    // Someone at the screen: the arrow keys turn pages at once.
    harness.key_press(egui::Key::ArrowRight);
    harness.run();
    assert_eq!(page(&harness), "Floor");
    harness.key_press(egui::Key::ArrowLeft);
    harness.key_press(egui::Key::ArrowLeft);
    harness.run();
    assert_eq!(page(&harness), "Sites");
}

#[test]
fn a_local_file_wins_over_the_server_and_without_either_every_page_shows() {
    let local = WallboardConfig {
        pages: vec![WallboardPage {
            kind: PageKind::Teams,
            seconds: 30,
        }],
        ..WallboardConfig::default()
    };
    let mut harness = wallboard(Some(local), Some(rotation()));
    assert_eq!(page(&harness), "Teams");
    at(&mut harness, 31_000);
    assert_eq!(page(&harness), "Teams");

    // Every page but the queues', which a floor without queues leaves out.
    let mut harness = wallboard(None, None);
    let mut seen = Vec::new();
    let mut ms = 0;
    let pages = WallboardConfig::default().pages;
    for entry in pages.iter().filter(|page| page.kind != PageKind::Queues) {
        seen.push(page(&harness));
        ms += u64::from(entry.seconds) * 1000;
        at(&mut harness, ms);
    }
    assert_eq!(seen, ["Floor", "Sites", "Teams", "Attention"]);
}

#[test]
fn the_stale_overlay_shows_since_when_and_goes_after_the_resync() {
    let mut harness = wallboard(None, None);
    assert!(harness.query_by_role(Role::Alert).is_none());
    assert!(harness.query_by_label("LIVE").is_some());
    {
        let mut session = harness.state().net().session();
        session.link = Link::Connecting;
        session.last_update_ms = NOW - 75_000;
    }
    harness.run();
    let label = overlay_label(&harness);
    assert!(
        label.starts_with("Data not live: last update at "),
        "{label}"
    );
    assert!(label.ends_with(", 1:15 ago"), "{label}");
    assert!(harness.query_by_label("NOT LIVE").is_some());

    // Why it is not live, for whoever walks past: here a certificate the wallboard refused.
    let why = "connection failed: floor.example.com:443: the server's certificate for \
               floor.example.com expired on 2026-11-29 00:00 UTC";
    harness.state().net().session().problem = Some(why.to_owned());
    harness.run();
    let label = overlay_label(&harness);
    assert!(label.ends_with(&format!("1:15 ago. {why}")), "{label}");

    // An app older than the server supports says so instead, with where the new one is.
    harness.state().net().session().update = Some(monti_desktop::net::Update {
        version: "9.9.9".to_owned(),
        download_url: Some("https://monti.example.com/download".to_owned()),
    });
    harness.run();
    let label = overlay_label(&harness);
    assert!(
        label.ends_with("https://monti.example.com/download"),
        "{label}"
    );
    assert!(label.contains("Update MONTI to 9.9.9"), "{label}");
    harness.state().net().session().update = None;

    // Reconnected, the snapshot on its way: the last live view stays without the overlay.
    harness.state().net().session().link = Link::Syncing;
    harness.run();
    assert!(harness.query_by_role(Role::Alert).is_none());

    // Resynced.
    {
        let mut session = harness.state().net().session();
        session.link = Link::Live;
        session.last_update_ms = NOW;
    }
    harness.run();
    assert!(harness.query_by_role(Role::Alert).is_none());
    assert!(harness.query_by_label("LIVE").is_some());
}

#[test]
fn a_degraded_server_shows_may_be_stale_without_hiding_the_floor() {
    let mut harness = wallboard(None, None);
    harness.state().net().session().degraded = Some("lost the shared floor (Redis)".to_owned());
    harness.run();
    assert!(harness.query_by_label("MAY BE STALE").is_some());
    assert!(harness.query_by_label("LIVE").is_none());
    assert!(
        harness.query_by_role(Role::Alert).is_none(),
        "the server still streams: no not-live overlay"
    );
    assert_eq!(page(&harness), "Floor");

    harness.state().net().session().degraded = None;
    harness.run();
    assert!(harness.query_by_label("LIVE").is_some());
    assert!(harness.query_by_label("MAY BE STALE").is_none());
}

#[test]
fn the_no_signal_tile_shows_only_while_an_agent_has_no_signal() {
    let mut harness = wallboard(None, None);
    assert!(
        !list_items(&harness)
            .iter()
            .any(|t| t.starts_with("No signal")),
        "{:?}",
        list_items(&harness)
    );
    {
        let session = harness.state().net().session();
        let mut floor = session.floor.lock().expect("floor");
        let agent = floor
            .agents()
            .find(|record| {
                record
                    .live
                    .is_some_and(|live| live.status.kind() != StateKind::Offline)
            })
            .expect("an agent signed in")
            .info
            .id;
        let delta = Delta {
            seq: floor.seq() + 1,
            time_step_ms: 0,
            changes: vec![StatusChange {
                agent,
                status: AgentStatus::Stale,
                since_ms_ago: 400_000,
            }],
            roster: Vec::new(),
            groups: Vec::new(),
            queues: Vec::new(),
        };
        floor.apply_delta(&delta).expect("folds");
    }
    harness.run();
    assert!(
        list_items(&harness).contains(&"No signal: 1, longest 6:40, amber".to_owned()),
        "{:?}",
        list_items(&harness)
    );
}

/// The Floor page's longest times take the thresholds' colour and mark, as the desktop's tiles
/// do (the longest break past its red limit is what the board is for).
#[test]
fn the_floor_pages_longest_times_are_coloured_by_the_thresholds() {
    let harness = wallboard(None, None);
    let items = list_items(&harness);
    let not_ready = (items.iter())
        .find(|item| item.starts_with("Not ready: "))
        .expect("a Not ready tile");
    assert!(not_ready.ends_with(", red"), "{items:?}");
    let available = (items.iter())
        .find(|item| item.starts_with("Available: "))
        .expect("an Available tile");
    assert!(available.ends_with(", normal"), "{items:?}");
}

#[test]
fn the_code_screen_returns_by_itself_and_has_no_buttons() {
    let mut harness = wallboard(None, None);
    assert_eq!(page(&harness), "Floor");
    {
        // What the network thread shows when the refresh token is no longer accepted.
        let mut session = harness.state().net().session();
        session.sign_in = SignIn::Code(CodeScreen {
            user_code: "QKMV-MBLJ".to_owned(),
            verification_uri: "https://id.example.com/device".to_owned(),
            qr_uri: "https://id.example.com/device?user_code=QKMV-MBLJ".to_owned(),
            expires_at_ms: NOW + 600_000,
        });
    }
    harness.run();
    assert!(harness.query_by_label("QKMV-MBLJ").is_some());
    assert!(
        harness
            .query_by_role_and_label(
                Role::Image,
                "QR code for https://id.example.com/device?user_code=QKMV-MBLJ"
            )
            .is_some()
    );
    assert!(
        harness.query_all_by_role(Role::Button).next().is_none(),
        "nothing to press"
    );
    {
        harness.state().net().session().sign_in = SignIn::SignedIn;
    }
    harness.run();
    assert_eq!(page(&harness), "Floor");
}

#[test]
fn a_wallboard_whose_provider_has_no_device_flow_says_where_to_sign_in() {
    let mut harness = wallboard(None, None);
    let url = "https://auth.example.com/oauth2/authorize?client_id=monti";
    {
        harness.state().net().session().sign_in = SignIn::Browser {
            url: url.to_owned(),
        };
    }
    harness.run();
    assert!(
        harness
            .query_by_label("This wallboard needs to be signed in")
            .is_some()
    );
    assert!(harness.query_by_label(url).is_some());
    assert!(
        harness.query_all_by_role(Role::Button).next().is_none(),
        "nothing to press"
    );
}

/// A wallboard configured only for teams this device may not see shows nothing (not every
/// team it may see) and says why.
#[test]
fn a_wallboard_cut_to_nothing_shows_no_agents() {
    let config = WallboardConfig {
        teams: Vec::new(),
        hidden_teams: true,
        ..WallboardConfig::default()
    };
    let harness = wallboard(None, Some(config));
    let items = list_items(&harness);
    let counted: Vec<&String> = items
        .iter()
        .filter(|item| item.contains(", longest ") && !item.contains(": 0,"))
        .collect();
    assert!(counted.is_empty(), "agents counted: {counted:?}");
    let everyone = wallboard(None, None);
    assert!(
        list_items(&everyone)
            .iter()
            .any(|item| item.starts_with("On call: ") && !item.starts_with("On call: 0")),
        "the same floor uncut counts agents"
    );
}

#[test]
fn the_pages_count_only_the_wallboards_teams() {
    let config = WallboardConfig {
        pages: vec![
            WallboardPage {
                kind: PageKind::Totals,
                seconds: 10,
            },
            WallboardPage {
                kind: PageKind::Sites,
                seconds: 10,
            },
        ],
        teams: vec!["Billing".to_owned()],
        ..WallboardConfig::default()
    };
    let floor = sample::floor(400, 5, NOW);
    let billing = floor
        .teams()
        .find(|team| team.name == "Billing")
        .expect("team")
        .id;
    let in_billing = |kind: monti_protocol::model::StateKind| {
        floor
            .agents()
            .filter(|record| {
                record.info.team == billing
                    && record.live.is_some_and(|live| live.status.kind() == kind)
            })
            .count()
    };
    let mut harness = wallboard(None, Some(config));
    let items = list_items(&harness);
    let on_call = in_billing(monti_protocol::model::StateKind::OnCall);
    assert!(on_call > 0);
    let tile = |prefix: String| {
        items
            .iter()
            .any(|item| item.starts_with(&format!("{prefix}, longest ")))
    };
    assert!(tile(format!("On call: {on_call}")), "{items:?}");
    let not_ready = in_billing(monti_protocol::model::StateKind::NotReady);
    assert!(tile(format!("Not ready: {not_ready}")), "{items:?}");

    at(&mut harness, 10_000);
    assert_eq!(page(&harness), "Sites");
    let rows = list_items(&harness);
    let on_call_by_site: usize = rows
        .iter()
        .map(|row| {
            let on = row.split("ON ").nth(1).expect("an on-call count");
            on.split(',')
                .next()
                .expect("a number")
                .parse::<usize>()
                .expect("a number")
        })
        .sum();
    assert_eq!(
        on_call_by_site, on_call,
        "the site rows add up to the team's agents"
    );
}

/// eframe's storage, in memory.
#[derive(Default)]
struct Memory(std::collections::HashMap<String, String>);

impl eframe::Storage for Memory {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }
    fn flush(&mut self) {}
}

#[test]
fn the_wallboard_follows_its_own_scope_and_leaves_the_desktops_settings_alone() {
    let config = WallboardConfig {
        teams: vec!["Billing".to_owned()],
        ..WallboardConfig::default()
    };
    let mut session = sample::live_session(sample::floor(400, 5, NOW), NOW);
    session.wallboard = Some(config);
    let billing = session
        .teams
        .iter()
        .find(|team| team.name == "Billing")
        .map(|team| monti_protocol::model::TeamId(team.id))
        .expect("the sample floor has a Billing team");
    let (mut harness, mut requests) = wallboard_on(session, None);
    let mut subscribed = Vec::new();
    while let Ok(request) = requests.try_recv() {
        if let monti_desktop::net::Request::Subscribe(subscription) = request {
            subscribed.push(subscription.teams);
        }
    }
    assert_eq!(subscribed.last(), Some(&vec![billing]), "{subscribed:?}");
    assert_eq!(
        harness.state().settings,
        Settings::default(),
        "never borrowed"
    );
    let mut storage = Memory::default();
    eframe::App::save(harness.state_mut(), &mut storage);
    assert_eq!(App::stored_settings(Some(&storage)), Settings::default());
}

#[test]
fn the_queue_page_shows_each_queue_worst_first_and_only_on_a_floor_with_queues() {
    let session = sample::live_session(sample::floor_with_queues(NOW), NOW);
    let (mut harness, _) = wallboard_on(session, None);
    assert_eq!(page(&harness), "Floor");
    at(&mut harness, 20_000);
    assert_eq!(page(&harness), "Queues");
    let rows: Vec<String> = list_items(&harness)
        .into_iter()
        .filter(|item| item.contains("waiting, longest"))
        .collect();
    // Twenty seconds on, the waits have grown: Sales Voice's caller is now past its 20 s
    // target too.
    assert_eq!(
        rows,
        [
            "!!Billing Voice: 7 waiting, longest 1:55, service level 75% (goal 80 %), 380 answered, 32 abandoned today",
            "!!Sales Voice: 1 waiting, longest 0:26, service level 81% (goal 80 %), 229 answered, 4 abandoned today",
            "!Chat Support: 0 waiting, longest –, service level 57% (goal 80 %), 84 answered, 12 abandoned today",
        ]
    );
    // A wallboard for one team shows only the queues that team serves.
    let mut session = sample::live_session(sample::floor_with_queues(NOW), NOW);
    session.wallboard = Some(WallboardConfig {
        pages: vec![WallboardPage {
            kind: PageKind::Queues,
            seconds: 20,
        }],
        teams: vec!["Sales".to_owned()],
        ..WallboardConfig::default()
    });
    let (harness, _) = wallboard_on(session, None);
    let names: Vec<String> = list_items(&harness)
        .into_iter()
        .filter(|item| item.contains("waiting, longest"))
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].starts_with("Sales Voice:"));
}
