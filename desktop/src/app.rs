//! The app: one of two top-level screens ([`Screen`]) over one [`Feed`]. The floor manager's
//! screen is the top bar, the strip of counts, the filter and attention panels and one view, or
//! the sign-in screen while signing in; the wallboard's is in [`crate::kiosk`].
//!
//! The frame reads the network thread's session and the floor under short locks and never waits
//! for the network. Everything costly (filtering, sorting, grouping) is cached and recomputed
//! only when the floor's sequence number or the settings change.

use std::collections::BTreeSet;

use egui::{Align, Color32, Key, Layout, Modifiers, RichText, Ui};
use monti_client::connection::now_ms;
use monti_client::follow::Link;
use monti_protocol::floor::Floor;
use monti_protocol::message::{Detail, Subscription};
use monti_protocol::model::{AgentId, Grouping, SiteId, StateKind, StateSet, TeamId};
use monti_protocol::names::natural_cmp;

use crate::admin::AdminWindow;
use crate::agent::AgentPanel;
use crate::feedback::FeedbackWindow;
use crate::kiosk::Kiosk;
use crate::model::{self, Alert, Card, Levels, Matrix, Ranks, Selection, Summary};
use crate::net::{Net, Request, Session, SignIn, TrendWanted, lock};
use crate::queues::{self, Notified, QueueRow};
use crate::repaint::{DataRepaint, until_next_second};
use crate::settings::{Filter, STORAGE_KEY, Settings, Sort, SortKey, SummaryView, Theme, ViewKind};
use crate::thresholds::{Asked, ThresholdsWindow};
use crate::{signin, style, trend, widgets};

/// Where the app's clock comes from: the system, or a fixed moment (tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// The system clock.
    System,
    /// This moment, local ms since the epoch.
    Fixed(u64),
}

impl Clock {
    /// Local ms since the epoch.
    pub fn now_ms(self) -> u64 {
        match self {
            Clock::System => now_ms(),
            Clock::Fixed(ms) => ms,
        }
    }
}

/// What a person asked for during a frame, from whichever screen; the app applies it after
/// the frame ([`App::apply`]), so that no screen changes state another one is drawing from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Start the device flow.
    SignIn,
    /// Stop the device flow.
    CancelSignIn,
    /// Forget the sign-in.
    SignOut,
    /// Use the server, CA file and proxy in the fields.
    Connect,
    /// Show one team or site (a card's header, a matrix cell): the filter narrows to it.
    Drill(widgets::Drill),
    /// Show the agents who serve a queue.
    Queue(widgets::QueueAction),
    /// Open an agent's panel (their day).
    OpenAgent(AgentId),
}

/// What a screen shows of the floor: the floor manager's filters, view, order and search, or
/// a wallboard's scope ([`Kiosk::shown`]). Each screen makes its own; neither borrows the
/// other's.
#[derive(Clone, Debug, PartialEq)]
pub struct Shown {
    /// Teams, sites and states.
    pub filter: Filter,
    /// Cards by team or site, the matrix, or the table.
    pub view: ViewKind,
    /// The order of agents.
    pub sort: Sort,
    /// Agents whose name contains this.
    pub search: String,
    /// The Summary view's grouping and order.
    pub summary: SummaryView,
}

/// What the cached parts were computed from.
#[derive(Clone, Debug, PartialEq)]
struct CacheKey {
    seq: u64,
    roster_version: u64,
    n_agents: usize,
    ready: bool,
    shown: Shown,
}

/// The parts of a frame that only change with the floor or the settings.
#[derive(Default)]
pub(crate) struct Cache {
    key: Option<CacheKey>,
    pub(crate) selection: Selection,
    pub(crate) cards: Vec<Card>,
    pub(crate) matrix: Matrix,
    pub(crate) summary: Summary,
    pub(crate) levels: Levels,
    thresholds: Option<(monti_protocol::rest::Thresholds, u64)>,
    ranks: Ranks,
    ranks_version: Option<u64>,
}

/// What both screens draw from: the network thread, the subscription it follows and the
/// parts computed from the floor for what the screen shows.
pub(crate) struct Feed {
    net: Net,
    /// The subscription the network thread follows (it keeps it across servers).
    sent: Subscription,
    pub(crate) cache: Cache,
}

/// The app's top-level screen: each has its own state and makes its own [`Shown`].
pub enum Screen {
    /// The floor manager's screen: top bar, counts, filters, attention list and one view, as
    /// the [`Settings`] say.
    Floor,
    /// A wallboard: fullscreen pages that turn by themselves, in its configuration's scope.
    Wallboard(Kiosk),
}

/// The desktop app.
pub struct App {
    /// What is kept between runs.
    pub settings: Settings,
    /// The clock the times in state are measured with.
    pub clock: Clock,
    /// Which screen the app runs.
    pub screen: Screen,
    feed: Feed,
    search: String,
    focus_search: bool,
    /// The server, CA file and proxy fields (Settings menu and connecting screen), applied with
    /// Connect.
    fields: signin::ConnectFields,
    /// Asked for during this frame.
    commands: Vec<Command>,
    /// The queue problems already notified.
    notified: Notified,
    /// Frames drawn, for `RUST_LOG=monti_desktop::frames=debug`.
    frames: FrameStats,
    /// The pace of frames for news, told about every frame (see [`App::pace_news`]).
    news: Option<DataRepaint>,
    /// The filters before the last Clear, while it can be undone.
    cleared: Option<Filter>,
    /// The agent panel, while open.
    agent: Option<AgentPanel>,
    /// The Thresholds window, while open.
    thresholds: Option<ThresholdsWindow>,
    /// The Admin window, while open.
    pub admin: Option<AdminWindow>,
    /// The Feedback window, while open.
    pub feedback: Option<FeedbackWindow>,
    /// The agents already alerted about.
    agent_alerts: model::AgentAlerts,
    /// The name typed to save the current view as.
    view_name: String,
    /// How much the monitor enlarges the text (see [`monitor_scale`]), once known.
    monitor_scale: Option<f32>,
    /// The trend last asked of the server, while the Trend view is shown.
    trend_asked: Option<TrendWanted>,
}

/// Counts the frames the window draws and why, and logs them every ten seconds (at debug
/// level, target `monti_desktop::frames`), so that a benchmark can tell how often the app
/// repaints and what asks for it.
struct FrameStats {
    since: std::time::Instant,
    frames: u32,
    /// egui's own time for those frames (layout and tessellation; not the GPU driver's).
    cpu_seconds: f32,
    /// Frames by the code that asked for them (`file:line`; input asks through eframe).
    causes: std::collections::HashMap<String, u32>,
}

impl Default for FrameStats {
    fn default() -> FrameStats {
        FrameStats {
            since: std::time::Instant::now(),
            frames: 0,
            cpu_seconds: 0.0,
            causes: Default::default(),
        }
    }
}

impl FrameStats {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(10);

    fn count(&mut self, ctx: &egui::Context, cpu_seconds: Option<f32>) {
        self.frames += 1;
        self.cpu_seconds += cpu_seconds.unwrap_or(0.0);
        if tracing::enabled!(target: "monti_desktop::frames", tracing::Level::DEBUG) {
            let causes = ctx.repaint_causes();
            if causes.is_empty() {
                *self.causes.entry("input or window".into()).or_default() += 1;
            }
            for cause in causes {
                let at = format!("{}:{}", cause.file, cause.line);
                *self.causes.entry(at).or_default() += 1;
            }
        }
        let elapsed = self.since.elapsed();
        if elapsed >= Self::EVERY {
            let mut causes: Vec<_> = self.causes.drain().collect();
            causes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            causes.truncate(4);
            tracing::debug!(
                target: "monti_desktop::frames",
                frames = self.frames,
                seconds = elapsed.as_secs_f32(),
                egui_ms_per_frame = self.cpu_seconds * 1000.0 / self.frames as f32,
                ?causes,
                "frames drawn"
            );
            *self = FrameStats::default();
        }
    }
}

impl App {
    /// An app showing what `net` delivers; `net` follows [`App::first_subscription`] until the
    /// filters say otherwise.
    pub fn new(mut settings: Settings, net: Net) -> App {
        // The view marked default is where the app starts.
        if let Some(name) = settings.default_view.clone() {
            settings.apply_view(&name);
        }
        let fields = signin::ConnectFields {
            server: settings.server.clone(),
            ca_file: settings.ca_file.clone(),
            proxy: settings.proxy.clone(),
        };
        App {
            fields,
            settings,
            clock: Clock::System,
            screen: Screen::Floor,
            feed: Feed {
                net,
                sent: App::first_subscription(),
                cache: Cache::default(),
            },
            search: String::new(),
            focus_search: false,
            commands: Vec::new(),
            frames: FrameStats::default(),
            news: None,
            notified: Notified::default(),
            cleared: None,
            agent: None,
            thresholds: None,
            admin: None,
            feedback: None,
            agent_alerts: model::AgentAlerts::default(),
            view_name: String::new(),
            monitor_scale: None,
            trend_asked: None,
        }
    }

    /// The handle on the network thread (tests change its session through it).
    pub fn net(&self) -> &Net {
        &self.feed.net
    }

    /// The settings stored by eframe, or the defaults.
    pub fn stored_settings(storage: Option<&dyn eframe::Storage>) -> Settings {
        storage
            .and_then(|storage| eframe::get_value(storage, STORAGE_KEY))
            .unwrap_or_default()
    }

    /// The settings eframe keeps in `app.ron` under `dir` (eframe's storage directory), read
    /// before the window opens: a remembered wallboard must open fullscreen, not at the size
    /// eframe saved. `None` when there are none (or they cannot be read).
    pub fn settings_in(dir: &std::path::Path) -> Option<Settings> {
        let text = std::fs::read_to_string(dir.join("app.ron")).ok()?;
        let stored: std::collections::HashMap<String, String> = ron::from_str(&text).ok()?;
        ron::from_str(stored.get(STORAGE_KEY)?).ok()
    }

    /// Tells `news`, which the network thread asks for frames through, about every frame drawn,
    /// so that news drawn by another frame (a clock, input) does not cost one more.
    pub fn pace_news(&mut self, news: DataRepaint) {
        self.news = Some(news);
    }

    /// Applies the theme and text size once at start; a wallboard goes fullscreen.
    pub fn setup(&self, ctx: &egui::Context) {
        style::without_panel_fills(ctx);
        ctx.set_theme(match self.settings.theme {
            Theme::Dark => egui::Theme::Dark,
            Theme::Light => egui::Theme::Light,
        });
        if let Screen::Wallboard(_) = self.screen {
            // A wallboard scales itself to the screen; text size and theme are the desktop's.
            ctx.set_theme(egui::Theme::Dark);
            ctx.set_zoom_factor(1.0);
            ctx.send_viewport_cmd(egui::ViewportCommand::Fullscreen(true));
            ctx.send_viewport_cmd(egui::ViewportCommand::Decorations(false));
        } else {
            let monitor = self.monitor_scale.unwrap_or(1.0);
            ctx.set_zoom_factor((self.settings.zoom * monitor).clamp(0.5, 4.0));
        }
    }

    /// Once the monitor is known: the text size the person chose, times the monitor's scale.
    fn scale_to_the_monitor(&mut self, ctx: &egui::Context) {
        if self.monitor_scale.is_some() {
            return;
        }
        let (monitor, native) = ctx.input(|input| {
            let viewport = input.viewport();
            (viewport.monitor_size, viewport.native_pixels_per_point)
        });
        let Some(monitor) = monitor else {
            return;
        };
        let scale = monitor_scale(monitor.x, native.unwrap_or(1.0));
        self.monitor_scale = Some(scale);
        ctx.set_zoom_factor((self.settings.zoom * scale).clamp(0.5, 4.0));
    }

    /// What the floor manager's screen shows: the settings and the search.
    fn shown(&self) -> Shown {
        Shown {
            filter: self.settings.filter.clone(),
            view: self.settings.view,
            sort: self.settings.sort,
            search: self.search.clone(),
            summary: self.settings.summary,
        }
    }

    /// What the app follows before any filter: every agent, and the queues.
    pub fn first_subscription() -> Subscription {
        Subscription {
            queues: true,
            ..Subscription::default()
        }
    }

    /// The subscription a filter calls for: team and site filters are applied by the server
    /// (they cut traffic); names the server has not listed yet are applied here only. The state
    /// filter and the search are applied here, so that they answer at once.
    pub fn subscription(session: &Session, filter: &Filter) -> Subscription {
        let teams: Vec<TeamId> = session
            .teams
            .iter()
            .filter(|team| filter.teams.contains(&team.name))
            .map(|team| TeamId(team.id))
            .collect();
        let sites: Vec<SiteId> = session
            .sites
            .iter()
            .filter(|site| filter.sites.contains(&site.name))
            .map(|site| SiteId(site.id))
            .collect();
        // Only when every chosen name is known: a partial list would hide the others.
        Subscription {
            grouping: Grouping::Team,
            detail: Detail::Agents,
            teams: all_known(teams, filter.teams.len()),
            sites: all_known(sites, filter.sites.len()),
            states: StateSet::ALL,
            known_roster: None,
            queues: true,
        }
    }

    fn shortcuts(&mut self, ctx: &egui::Context) {
        if ctx.input_mut(|input| input.consume_key(Modifiers::COMMAND, Key::F)) {
            self.focus_search = true;
        }
        if ctx.input_mut(|input| input.consume_key(Modifiers::NONE, Key::F11)) {
            let fullscreen = ctx.input(|input| input.viewport().fullscreen.unwrap_or(false));
            ctx.send_viewport_cmd(egui::ViewportCommand::Fullscreen(!fullscreen));
        }
        if ctx.input_mut(|input| input.consume_key(Modifiers::NONE, Key::Escape)) {
            // Esc closes the agent panel first, then clears the search.
            if self.agent.take().is_none() {
                self.search.clear();
            }
        }
    }

    /// Server time now, as the floor's `since_ms` values count it.
    fn server_now_ms(&self, session: &Session) -> u64 {
        self.clock
            .now_ms()
            .saturating_add_signed(session.clock_offset_ms)
    }

    fn top_bar(&mut self, ui: &mut Ui, session: &Session, floor: &Floor) {
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new("MONTI").strong().size(18.0));
            ui.separator();
            self.connection_chip(ui, session, floor);
            ui.separator();
            for kind in ViewKind::ALL {
                if ui
                    .selectable_label(self.settings.view == kind, kind.label())
                    .clicked()
                {
                    self.settings.view = kind;
                }
            }
            ui.separator();
            let search = ui.add(
                egui::TextEdit::singleline(&mut self.search)
                    .hint_text("Search agents (Ctrl+F)")
                    .desired_width(200.0),
            );
            if self.focus_search {
                search.request_focus();
                self.focus_search = false;
            }
            let sort = &mut self.settings.sort;
            let mut key = sort.key;
            egui::ComboBox::from_label("Sort")
                .selected_text(sort.key.label())
                .show_ui(ui, |ui| {
                    for choice in SortKey::ALL {
                        ui.selectable_value(&mut key, choice, choice.label());
                    }
                });
            if key != sort.key {
                *sort = key.first();
            }
            ui.toggle_value(&mut sort.descending, "Descending");
            // The right-hand group on a row of its own when it does not fit beside the rest (a
            // narrow window, large text), rather than drawn over it.
            let who = (session.me.as_ref())
                .map(|me| format!("{} · {}", me.subject, me.roles.join(", ")))
                .unwrap_or_default();
            let who_width = (ui.painter())
                .layout_no_wrap(
                    who.clone(),
                    egui::TextStyle::Body.resolve(ui.style()),
                    Color32::WHITE,
                )
                .size()
                .x;
            let may = |action: &str| {
                (session.me.as_ref()).is_some_and(|me| me.may.iter().any(|may| may == action))
            };
            // Under test access the server answers as the binding would: no Admin there.
            let may_admin = may("manage_access") && session.view_as.is_none();
            let may_feedback = may("send_feedback");
            let buttons = RIGHT_GROUP_WIDTH
                + if may_admin { 60.0 } else { 0.0 }
                + if may_feedback { 80.0 } else { 0.0 };
            if ui.available_size_before_wrap().x < who_width + buttons {
                ui.end_row();
            }
            ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                self.settings_menu(ui);
                self.views_menu(ui);
                if ui
                    .selectable_label(self.thresholds.is_some(), "Thresholds")
                    .on_hover_text("When agents turn amber and red")
                    .clicked()
                {
                    self.thresholds = match self.thresholds {
                        Some(_) => None,
                        None => {
                            self.feed.net.session().thresholds_saved = None;
                            Some(ThresholdsWindow::new(&session.thresholds))
                        }
                    };
                }
                if may_admin
                    && ui
                        .selectable_label(self.admin.is_some(), "Admin")
                        .on_hover_text("Who may see what, devices, wallboards, audit log, feedback")
                        .clicked()
                {
                    self.admin = match self.admin {
                        Some(_) => None,
                        None => {
                            let (window, reads) = AdminWindow::open(self.clock.now_ms());
                            for read in reads {
                                self.feed.net.send(read);
                            }
                            Some(window)
                        }
                    };
                }
                if may_feedback
                    && ui
                        .selectable_label(self.feedback.is_some(), "Feedback")
                        .on_hover_text("Tell MONTI's administrators what works and what does not")
                        .clicked()
                {
                    self.feedback = match self.feedback {
                        Some(_) => None,
                        None => Some(FeedbackWindow::default()),
                    };
                }
                if session.sign_in == SignIn::SignedIn && ui.button("Sign out").clicked() {
                    self.commands.push(Command::SignOut);
                }
                if !who.is_empty() {
                    ui.label(who);
                }
            });
        });
    }

    /// While an administrator sees the floor as someone else: whom, and the way back.
    fn test_access_line(&mut self, ui: &mut Ui, session: &Session) {
        let Some(view_as) = &session.view_as else {
            return;
        };
        egui::Frame::new()
            .fill(style::TEST_ACCESS)
            .inner_margin(4.0)
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    let text = format!(
                        "TEST ACCESS: you see the floor as {} would, not as yourself.",
                        view_as.text()
                    );
                    let text = RichText::new(text).strong().color(Color32::BLACK);
                    ui.add(egui::Label::new(text).extend());
                    if ui.button("Stop test access").clicked() {
                        self.feed.net.send(Request::ViewAs(None));
                    }
                });
            });
    }

    /// What the app shows, in words, for feedback: the view, the filters, the search.
    fn context_text(&self) -> String {
        let filter = &self.settings.filter;
        let mut parts = vec![format!("{} view", self.settings.view.label())];
        let names = |label: &str, names: &BTreeSet<String>| {
            (!names.is_empty()).then(|| {
                let list: Vec<&str> = names.iter().map(String::as_str).collect();
                format!("{label} {}", list.join(", "))
            })
        };
        parts.extend(names("teams", &filter.teams));
        parts.extend(names("sites", &filter.sites));
        parts.extend(names("reasons", &filter.reasons));
        if !filter.states.is_all() {
            parts.push("some states only".to_owned());
        }
        if let Some(queue) = &filter.queue {
            parts.push(format!("queue {queue}"));
        }
        if !self.search.is_empty() {
            parts.push(format!("search {:?}", self.search));
        }
        parts.join("; ")
    }

    fn connection_chip(&self, ui: &mut Ui, session: &Session, floor: &Floor) {
        let now = self.clock.now_ms();
        let age = now.saturating_sub(session.last_update_ms);
        let has_data = floor.is_ready() && session.last_update_ms > 0;
        let (colour, text) = match session.link {
            // A quiet floor sends nothing but keepalives; the follower itself notices a silent
            // server (three keepalives missed) and reconnects, so Live is trusted.
            Link::Live if session.degraded.is_some() => {
                (style::PENDING, "LIVE · MAY BE STALE".to_owned())
            }
            Link::Live => (style::LIVE, "LIVE".to_owned()),
            // Connected, a fresh snapshot on its way (after a filter change or a reconnect).
            Link::Syncing => (style::PENDING, "SYNCING…".to_owned()),
            Link::Connecting if has_data => {
                let retry = session
                    .retry_at_ms
                    .map(|at| format!(" · retry in {} s", at.saturating_sub(now).div_ceil(1000)))
                    .unwrap_or_default();
                (
                    style::STALE,
                    format!("STALE · data {} old{retry}", model::duration_text(age)),
                )
            }
            Link::Connecting => (style::PENDING, "CONNECTING…".to_owned()),
        };
        let chip = egui::Frame::new()
            .fill(colour)
            .corner_radius(4.0)
            .inner_margin(egui::Margin::symmetric(8, 2))
            .show(ui, |ui| {
                ui.label(RichText::new(text).color(Color32::WHITE).strong());
            });
        if let Some(problem) = session.degraded.as_ref().or(session.problem.as_ref()) {
            chip.response.on_hover_text(problem);
        }
    }

    /// Why the data may be stale, on a line of its own under the top bar (so that a long
    /// reason never moves the view buttons): in plain words, with the detail on hover.
    /// Nothing while the stream is live and the server complete.
    /// "Update MONTI to 0.2.0" with the server's link, while this app is older than the server
    /// supports.
    fn update_line(ui: &mut Ui, session: &Session) {
        let Some(update) = &session.update else {
            return;
        };
        ui.horizontal_wrapped(|ui| {
            ui.label(
                RichText::new(update.text())
                    .color(problem_colour(ui))
                    .strong(),
            );
            if let Some(url) = &update.download_url {
                ui.hyperlink_to("Download", url);
            }
        });
    }

    fn problem_line(&self, ui: &mut Ui, session: &Session) {
        let Some((words, detail)) = problem_text(session, self.clock.now_ms()) else {
            return;
        };
        let label =
            egui::Label::new(RichText::new(words).color(problem_colour(ui)).strong()).truncate();
        ui.add(label).on_hover_text(detail);
    }

    /// Named views: show one, mark one the default, delete one, save what is shown.
    fn views_menu(&mut self, ui: &mut Ui) {
        widgets::menu(ui, "Views", |ui| {
            let mut apply = None;
            let mut delete = None;
            for view in &self.settings.views {
                ui.horizontal(|ui| {
                    if ui
                        .button(&view.name)
                        .on_hover_text("Show this view")
                        .clicked()
                    {
                        apply = Some(view.name.clone());
                    }
                    let default = self.settings.default_view.as_ref() == Some(&view.name);
                    if ui
                        .selectable_label(default, "default")
                        .on_hover_text("Start with this view")
                        .clicked()
                    {
                        self.settings.default_view = (!default).then(|| view.name.clone());
                    }
                    if ui.button("Delete").clicked() {
                        delete = Some(view.name.clone());
                    }
                });
            }
            if let Some(name) = apply {
                self.settings.apply_view(&name);
                ui.close();
            }
            if let Some(name) = delete {
                self.settings.delete_view(&name);
            }
            if !self.settings.views.is_empty() {
                ui.separator();
            }
            ui.horizontal(|ui| {
                let label = ui.label("Save what is shown as");
                ui.add(
                    egui::TextEdit::singleline(&mut self.view_name)
                        .hint_text("My teams")
                        .desired_width(140.0),
                )
                .labelled_by(label.id);
                let name = self.view_name.trim().to_owned();
                if ui
                    .add_enabled(!name.is_empty(), egui::Button::new("Save"))
                    .clicked()
                {
                    self.settings.save_view(&name);
                    self.view_name.clear();
                }
            });
        });
    }

    fn settings_menu(&mut self, ui: &mut Ui) {
        widgets::menu(ui, "Settings", |ui| {
            ui.label(format!(
                "This app: monti-desktop {}; the server: {}",
                env!("CARGO_PKG_VERSION"),
                session_server_name(&self.feed.net.session())
            ));
            let label = ui.label("Server");
            ui.horizontal(|ui| {
                ui.text_edit_singleline(&mut self.fields.server)
                    .labelled_by(label.id);
                if ui.button("Connect").clicked() {
                    self.connect();
                    ui.close();
                }
            });
            let label = ui.label("Company CA file (PEM), beside the system's");
            ui.text_edit_singleline(&mut self.fields.ca_file)
                .labelled_by(label.id)
                .on_hover_text("For https servers whose CA is not installed on this computer");
            let label = ui.label("Proxy (empty: the system's)");
            ui.text_edit_singleline(&mut self.fields.proxy)
                .labelled_by(label.id)
                .on_hover_text("http://user:password@host:port; Basic authentication only");
            ui.separator();
            ui.horizontal(|ui| {
                ui.label("Theme");
                for (theme, label) in [(Theme::Dark, "Dark"), (Theme::Light, "Light")] {
                    if ui
                        .selectable_label(self.settings.theme == theme, label)
                        .clicked()
                    {
                        self.settings.theme = theme;
                        self.setup(ui.ctx());
                    }
                }
            });
            ui.horizontal(|ui| {
                ui.label("Text size (Ctrl +/-)");
                if ui.button("A−").clicked() {
                    gui_zoom(ui.ctx(), -0.1);
                }
                if ui.button("A+").clicked() {
                    gui_zoom(ui.ctx(), 0.1);
                }
            });
            ui.checkbox(&mut self.settings.show_attention, "Attention list");
            ui.separator();
            ui.label("Notify me (a system notification) when a queue has");
            let notify = &mut self.settings.notify;
            ui.checkbox(&mut notify.waiting, "more waiting than its threshold");
            ui.checkbox(&mut notify.oldest, "a contact waiting too long");
            ui.checkbox(
                &mut notify.service_level,
                "its service level below the goal",
            );
            ui.separator();
            if ui.button("Fullscreen (F11)").clicked() {
                let fullscreen = ui.input(|input| input.viewport().fullscreen.unwrap_or(false));
                ui.ctx()
                    .send_viewport_cmd(egui::ViewportCommand::Fullscreen(!fullscreen));
            }
        });
    }

    /// Applies the server, CA file and proxy fields: a new session when any of them changed.
    fn connect(&mut self) {
        let server = self.fields.server.trim().to_owned();
        let ca_file = self.fields.ca_file.trim().to_owned();
        let proxy = self.fields.proxy.trim().to_owned();
        let changed = server != self.settings.server
            || ca_file != self.settings.ca_file
            || proxy != self.settings.proxy;
        if !server.is_empty() && changed {
            self.settings.server = server.clone();
            self.settings.ca_file = ca_file;
            self.settings.proxy = proxy;
            self.feed.net.send(Request::Connect {
                server,
                transport: self.settings.transport(),
            });
        }
    }

    /// The counts per state of what is shown; a click shows only that state (again: all).
    fn strip(&mut self, ui: &mut Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new(format!("{} shown", self.feed.cache.selection.len())).strong());
            for kind in StateKind::ALL {
                let count = self.feed.cache.selection.counts[kind.index()];
                let only = self.settings.filter.states == StateSet::of([kind]);
                let text = RichText::new(format!(
                    "{} {} {count}",
                    model::state_mark(kind),
                    model::state_label(kind)
                ))
                .color(Color32::WHITE)
                .strong();
                let chip = egui::Button::selectable(only, text).fill(style::state_colour(kind));
                let response = ui
                    .add(chip)
                    .on_hover_text("Show only this state; click again for all");
                if response.clicked() {
                    self.settings.filter.states = if only {
                        StateSet::ALL
                    } else {
                        StateSet::of([kind])
                    };
                }
            }
            if let Some(queue) = &self.settings.filter.queue {
                ui.label(RichText::new(format!("Serving {queue}")).strong());
            }
            if !self.settings.filter.is_empty() {
                if ui.button("Clear filters").clicked() {
                    self.cleared = Some(std::mem::take(&mut self.settings.filter));
                }
            } else if let Some(cleared) = &self.cleared
                && ui
                    .button("Undo clear")
                    .on_hover_text("Bring back the filters just cleared")
                    .clicked()
            {
                self.settings.filter = cleared.clone();
                self.cleared = None;
            }
        });
    }

    fn filter_panel(&mut self, ui: &mut Ui, session: &Session, floor: &Floor) {
        ui.style_mut().wrap_mode = Some(egui::TextWrapMode::Truncate);
        egui::ScrollArea::vertical().show(ui, |ui| {
            ui.heading("Filters");
            let teams = names(
                session.teams.iter().map(|team| team.name.clone()),
                floor.teams().map(|team| team.name.clone()),
            );
            let sites = names(
                session.sites.iter().map(|site| site.name.clone()),
                floor.sites().map(|site| site.name.clone()),
            );
            egui::CollapsingHeader::new("States")
                .default_open(true)
                .show(ui, |ui| {
                    for kind in StateKind::ALL {
                        let mut on = self.settings.filter.states.contains(kind);
                        if ui.checkbox(&mut on, model::state_label(kind)).changed() {
                            let bit = StateSet::of([kind]).0;
                            let states = &mut self.settings.filter.states;
                            states.0 = if on { states.0 | bit } else { states.0 & !bit };
                        }
                    }
                });
            let reasons = names(
                std::iter::empty(),
                floor.reasons().map(|reason| reason.label.clone()),
            );
            name_filter(ui, "Teams", &teams, &mut self.settings.filter.teams);
            name_filter(ui, "Sites", &sites, &mut self.settings.filter.sites);
            if !reasons.is_empty() {
                name_filter(ui, "Reasons", &reasons, &mut self.settings.filter.reasons);
            }
        });
    }

    fn attention_panel(
        &mut self,
        ui: &mut Ui,
        session: &Session,
        floor: &Floor,
        queues: &[QueueRow],
        alerts: &[Alert],
    ) {
        let now = self.server_now_ms(session);
        let troubled: Vec<&QueueRow> = queues
            .iter()
            .filter(|row| !row.problems.is_empty())
            .collect();
        ui.heading(format!("Attention ({})", alerts.len() + troubled.len()));
        self.mute_line(ui);
        for row in troubled {
            for problem in &row.problems {
                let level = problem.level();
                let text = RichText::new(format!(
                    "{} {}",
                    style::level_mark(level),
                    row.describe(*problem, now)
                ))
                .color(style::level_colour(level, ui.visuals().dark_mode).unwrap_or(Color32::GRAY));
                if ui
                    .add(egui::Label::new(text).sense(egui::Sense::click()))
                    .on_hover_text("Show the agents who serve this queue")
                    .clicked()
                {
                    self.commands
                        .push(Command::Queue(widgets::QueueAction::ShowAgents(
                            row.name.clone(),
                        )));
                }
            }
        }
        if alerts.is_empty() {
            ui.label("No agent is over a threshold.");
            return;
        }
        let row_height = ui.text_style_height(&egui::TextStyle::Body) * 2.0 + 6.0;
        egui::ScrollArea::vertical().auto_shrink(false).show_rows(
            ui,
            row_height,
            alerts.len(),
            |ui, range| {
                for alert in &alerts[range] {
                    if attention_row(ui, floor, alert, now) {
                        self.commands.push(Command::OpenAgent(alert.row.id));
                    }
                }
            },
        );
    }

    /// Alerts muted for the shift, or the button that mutes them.
    fn mute_line(&mut self, ui: &mut Ui) {
        let now = self.clock.now_ms();
        ui.horizontal(|ui| {
            if now < self.settings.muted_until_ms {
                let until = crate::agent::clock_text(self.settings.muted_until_ms);
                ui.label(RichText::new(format!("Alerts muted until {until}")).strong());
                if ui.button("Unmute").clicked() {
                    self.settings.muted_until_ms = 0;
                }
            } else if ui
                .button("Mute alerts for the shift")
                .on_hover_text("No notification or sound for 8 hours")
                .clicked()
            {
                self.settings.muted_until_ms = now + SHIFT_MS;
            }
        });
    }

    /// The main screen.
    fn floor_screen(&mut self, ui: &mut Ui, session: &Session) {
        let floor_handle = session.floor.clone();
        let floor = lock(&floor_handle);
        self.feed.prepare(&floor, session, self.shown());
        let now = self.server_now_ms(session);
        let queue_rows = queues::rows(&floor, &self.settings.queue_thresholds, now);
        let muted = self.clock.now_ms() < self.settings.muted_until_ms;
        for news in self.notified.news(&queue_rows, &self.settings.notify, now) {
            if !muted {
                notify("MONTI: a queue needs attention", news, false);
            }
        }
        self.ask_for_trend(session, &floor, now);
        let alerts = model::attention(&self.feed.cache.selection, &self.feed.cache.levels, now);
        let choices = &self.settings.alerts;
        for alert in self.agent_alerts.news(&alerts, &floor, choices, muted, now) {
            notify("MONTI: over a threshold", alert.text, alert.sound);
        }

        egui::Panel::top("top").show(ui, |ui| {
            self.top_bar(ui, session, &floor);
            self.test_access_line(ui, session);
            App::update_line(ui, session);
            // An app the server no longer supports says that, not the protocol error it meets.
            if session.update.is_none() {
                self.problem_line(ui, session);
            }
            if !queue_rows.is_empty() {
                let selected = self.settings.filter.queue.as_deref();
                let action = widgets::queue_strip(ui, &queue_rows, selected, now);
                self.commands.extend(action.map(Command::Queue));
            }
            self.strip(ui);
        });
        egui::Panel::left("filters")
            .resizable(true)
            .default_size(190.0)
            .min_size(150.0)
            .show(ui, |ui| self.filter_panel(ui, session, &floor));
        if let Some(panel) = &mut self.agent {
            let open = egui::Panel::right("agent")
                .resizable(true)
                .min_size(300.0)
                .default_size(360.0)
                .show(ui, |ui| panel.show(ui, &floor, session, now))
                .inner;
            if let Some(wanted) = panel.contacts_to_ask(session, now) {
                self.feed.net.send(Request::Contacts(wanted));
            }
            if !open {
                self.agent = None;
            }
        }
        // The agent panel takes the attention list's place while it is open.
        if self.settings.show_attention && self.agent.is_none() {
            egui::Panel::right("attention")
                .resizable(true)
                .min_size(260.0)
                .default_size(340.0)
                .show(ui, |ui| {
                    self.attention_panel(ui, session, &floor, &queue_rows, &alerts)
                });
        }
        // Reconnecting: what is shown is the last data (a fresh snapshot after a filter change
        // is too quick to dim for).
        let stale = session.link == Link::Connecting;
        if let Some(window) = &mut self.thresholds {
            let mut asked = Asked::Nothing;
            egui::Window::new("Thresholds")
                .collapsible(false)
                .default_width(560.0)
                .show(ui.ctx(), |ui| {
                    asked = window.show(ui, session, &floor, &mut self.settings.alerts)
                });
            match asked {
                Asked::Nothing => {}
                Asked::Close => self.thresholds = None,
                Asked::Save(thresholds) => {
                    self.feed.net.session().thresholds_saved = None;
                    self.feed.net.send(Request::SetThresholds(thresholds));
                }
            }
        }
        if let Some(window) = &mut self.admin {
            let mut open = true;
            let mut asked = Vec::new();
            egui::Window::new("Admin")
                .open(&mut open)
                .default_pos(egui::pos2(150.0, 80.0))
                .default_size([980.0, 600.0])
                .show(ui.ctx(), |ui| asked = window.show(ui, session, &floor, now));
            // Test access shows the floor: the window makes way for it.
            let viewing_as = asked
                .iter()
                .any(|request| matches!(request, Request::ViewAs(_)));
            for request in asked {
                self.feed.net.send(request);
            }
            if !open || viewing_as {
                self.admin = None;
            }
        }
        let context = self.feedback.is_some().then(|| self.context_text());
        if let (Some(window), Some(context)) = (&mut self.feedback, context) {
            let mut asked = crate::feedback::Asked::Nothing;
            let right = ui.ctx().content_rect().right();
            egui::Window::new("Feedback")
                .collapsible(false)
                .pivot(egui::Align2::RIGHT_TOP)
                .default_pos(egui::pos2(right - 20.0, 60.0))
                .default_width(480.0)
                .show(ui.ctx(), |ui| asked = window.show(ui, session, &context));
            match asked {
                crate::feedback::Asked::Nothing => {}
                crate::feedback::Asked::Close => self.feedback = None,
                crate::feedback::Asked::Send(request) => self.feed.net.send(request),
            }
        }
        egui::CentralPanel::default().show(ui, |ui| {
            if stale {
                // What is shown is not live: dimmed, so nobody acts on it as if it were.
                ui.multiply_opacity(0.5);
            }
            if !floor.is_ready() {
                ui.centered_and_justified(|ui| {
                    ui.label(RichText::new("Waiting for the floor…").size(20.0));
                });
                return;
            }
            if self.settings.view == ViewKind::Trend {
                let asked = trend::show(
                    ui,
                    session,
                    &floor,
                    &self.settings.filter,
                    (self.settings.trend, self.trend_asked.as_ref()),
                    now,
                );
                if let Some(trend::Asked::Span(span)) = asked {
                    self.settings.trend = span;
                }
                return;
            }
            if self.settings.view == ViewKind::Queues {
                let rules = floor.queue_rules();
                let thresholds = &mut self.settings.queue_thresholds;
                let action = widgets::queue_cards(ui, &queue_rows, &rules, now, thresholds);
                self.commands.extend(action.map(Command::Queue));
                return;
            }
            if self.feed.cache.selection.is_empty() {
                ui.label("No agent matches the filters and the search.");
                return;
            }
            let drill = match self.settings.view {
                ViewKind::Teams | ViewKind::Sites => {
                    let (drill, opened) =
                        widgets::tiles(ui, &floor, &self.feed.cache, self.settings.view, now);
                    self.commands.extend(opened.map(Command::OpenAgent));
                    drill
                }
                ViewKind::Matrix => widgets::matrix(ui, &self.feed.cache.matrix),
                ViewKind::Agents => {
                    let table = (&mut self.settings.sort, &mut self.settings.columns);
                    let opened = widgets::table(ui, &floor, &self.feed.cache, table, now);
                    self.commands.extend(opened.map(Command::OpenAgent));
                    None
                }
                ViewKind::Summary => widgets::summary(
                    ui,
                    &self.feed.cache.summary,
                    &mut self.settings.summary,
                    now,
                ),
                ViewKind::Queues | ViewKind::Trend => None,
            };
            self.commands.extend(drill.map(Command::Drill));
        });
        // Times in state tick every second.
        ui.ctx().request_repaint_after(until_next_second(now));
    }

    /// Asks the server for the trend the Trend view shows when the filter or the period
    /// changed or a new point is due; forgets what was asked when another view is shown.
    fn ask_for_trend(&mut self, session: &Session, floor: &Floor, now: u64) {
        if self.settings.view != ViewKind::Trend || !floor.is_ready() {
            self.trend_asked = None;
            return;
        }
        let span = self.settings.trend;
        let lists = (&session.teams[..], &session.sites[..]);
        let wanted = trend::wanted(floor, &self.settings.filter, lists, span, now);
        match wanted {
            Some(wanted) if trend::due(self.trend_asked.as_ref(), &wanted, span) => {
                self.feed.net.send(Request::Trend(wanted.clone()));
                self.trend_asked = Some(wanted);
            }
            Some(_) => {}
            None => self.trend_asked = None,
        }
    }

    fn drill(&mut self, drill: widgets::Drill) {
        let filter = &mut self.settings.filter;
        if let Some(team) = drill.team {
            filter.teams = BTreeSet::from([team]);
        }
        if let Some(site) = drill.site {
            filter.sites = BTreeSet::from([site]);
        }
        if matches!(self.settings.view, ViewKind::Matrix | ViewKind::Summary) {
            self.settings.view = ViewKind::Teams;
        }
    }
}

impl Feed {
    /// Follows the subscription of what is shown and brings the cache up to date.
    pub(crate) fn prepare(&mut self, floor: &Floor, session: &Session, shown: Shown) {
        let wanted = App::subscription(session, &shown.filter);
        if self.sent != wanted {
            self.net.send(Request::Subscribe(wanted.clone()));
            self.sent = wanted;
        }
        refresh_cache(&mut self.cache, floor, session, shown);
    }
}

/// Brings `cache` up to date with `floor` and what is `shown` (the feed's, or a preview's of
/// its own).
pub(crate) fn refresh_cache(cache: &mut Cache, floor: &Floor, session: &Session, shown: Shown) {
    let key = CacheKey {
        seq: floor.seq(),
        roster_version: floor.roster_version(),
        n_agents: floor.n_agents(),
        ready: floor.is_ready(),
        shown,
    };
    let thresholds_key = (session.thresholds.clone(), floor.roster_version());
    if cache.thresholds.as_ref() != Some(&thresholds_key) || cache.key.is_none() {
        cache.levels = Levels::new(&session.thresholds, floor);
        cache.thresholds = Some(thresholds_key);
    }
    if cache.key.as_ref() == Some(&key) {
        return;
    }
    if cache.ranks_version != Some(floor.roster_version()) {
        cache.ranks = Ranks::new(floor);
        cache.ranks_version = Some(floor.roster_version());
    }
    let shown = &key.shown;
    let selection = Selection::compute_ranked(
        floor,
        &cache.ranks,
        &shown.filter,
        &shown.search,
        shown.sort,
    );
    cache.cards = match shown.view {
        ViewKind::Teams => model::cards(floor, &selection, false),
        ViewKind::Sites => model::cards(floor, &selection, true),
        ViewKind::Matrix
        | ViewKind::Agents
        | ViewKind::Queues
        | ViewKind::Summary
        | ViewKind::Trend => Vec::new(),
    };
    cache.summary = match shown.view {
        ViewKind::Summary => Summary::new(floor, &selection, shown.summary),
        _ => Summary::default(),
    };
    cache.matrix = match shown.view {
        ViewKind::Matrix => Matrix::new(floor, &selection),
        _ => Matrix::default(),
    };
    cache.selection = selection;
    cache.key = Some(key);
}

/// What is wrong with the data shown, in plain words ("Server unreachable, retrying in 3 s"),
/// and the whole detail; `None` while the stream is live and the server complete.
pub fn problem_text(session: &Session, now_ms: u64) -> Option<(String, String)> {
    if session.link == Link::Live && session.degraded.is_none() {
        return None;
    }
    let detail = session.degraded.as_ref().or(session.problem.as_ref())?;
    let words = match (&session.degraded, &session.problem_words) {
        (Some(degraded), _) => format!("The server's data may be incomplete: {degraded}"),
        (None, Some(words)) => {
            let mut words = capitalised(words);
            if let Some(at) = session.retry_at_ms.filter(|&at| at > now_ms) {
                let secs = (at - now_ms).div_ceil(1000);
                words.push_str(&format!(", retrying in {}", model::plural(secs, "second")));
            } else if session.link == Link::Connecting {
                words.push_str(", reconnecting…");
            }
            words
        }
        (None, None) => capitalised(detail),
    };
    Some((words, detail.clone()))
}

/// What a problem is written in: the red of thresholds, readable on the theme.
fn problem_colour(ui: &Ui) -> Color32 {
    style::level_colour(model::Level::Red, ui.visuals().dark_mode).unwrap_or(Color32::RED)
}

pub(crate) fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// `ids` when it has one id per chosen name, else nothing (no filter).
fn all_known<T>(ids: Vec<T>, names: usize) -> Vec<T> {
    if ids.len() == names { ids } else { Vec::new() }
}

/// The union of two name lists, sorted naturally ("Billing 2" before "Billing 10").
fn names(a: impl Iterator<Item = String>, b: impl Iterator<Item = String>) -> Vec<String> {
    let mut names: Vec<String> = a.chain(b).collect::<BTreeSet<_>>().into_iter().collect();
    names.sort_by(|a, b| natural_cmp(a, b));
    names
}

/// The server's name and version, once connected.
fn session_server_name(session: &Session) -> String {
    (session.server_name.clone()).unwrap_or_else(|| "not connected yet".to_owned())
}

/// How much larger text is drawn on a monitor whose system does not scale it but that is wide
/// in pixels (a 4K screen at 100 %, where egui's text is tiny): 1 up to 2560 pixels wide, then
/// in proportion to the width over 1920, at most 2. A system that scales (`native` above 1)
/// has already done it.
pub fn monitor_scale(width_points: f32, native_pixels_per_point: f32) -> f32 {
    if native_pixels_per_point > 1.0 || width_points <= 2560.0 {
        1.0
    } else {
        (width_points / 1920.0).clamp(1.0, 2.0)
    }
}

/// The width of the top bar's right-hand buttons (Settings, Views, Thresholds, Sign out) at
/// text size 1, in points; Admin and Feedback add theirs where shown.
const RIGHT_GROUP_WIDTH: f32 = 300.0;

/// How long Mute silences alerts: a shift.
const SHIFT_MS: u64 = 8 * 3_600_000;

/// From this many names on, a picker has a box to find one.
const PICKER_SEARCH_FROM: usize = 8;

/// A list of names to tick, with a box to find one in a long list; the chosen stay listed
/// first, so that "only my 3 teams" stays in sight.
fn name_filter(ui: &mut Ui, title: &str, all: &[String], chosen: &mut BTreeSet<String>) {
    egui::CollapsingHeader::new(title)
        .default_open(true)
        .show(ui, |ui| {
            let id = egui::Id::unique(("find", title));
            let mut find: String = ui.data_mut(|data| data.get_temp(id)).unwrap_or_default();
            if all.len() >= PICKER_SEARCH_FROM {
                let lower = title.to_lowercase();
                let edit = egui::TextEdit::singleline(&mut find)
                    .hint_text(format!("Find {lower}"))
                    .desired_width(f32::INFINITY);
                if ui.add(edit).changed() {
                    ui.data_mut(|data| data.insert_temp(id, find.clone()));
                }
            }
            if ui
                .radio(chosen.is_empty(), format!("All {}", title.to_lowercase()))
                .clicked()
            {
                chosen.clear();
            }
            let needle = find.trim().to_lowercase();
            let first = all.iter().filter(|name| chosen.contains(*name));
            let rest = all.iter().filter(|name| {
                !chosen.contains(*name)
                    && (needle.is_empty() || name.to_lowercase().contains(&needle))
            });
            for name in first.chain(rest).cloned().collect::<Vec<_>>() {
                let mut on = chosen.contains(&name);
                if ui.checkbox(&mut on, &name).changed() {
                    if on {
                        chosen.insert(name);
                    } else {
                        chosen.remove(&name);
                    }
                }
            }
        });
}

/// An agent over threshold; true when clicked (or Enter pressed on it).
fn attention_row(ui: &mut Ui, floor: &Floor, alert: &Alert, now: u64) -> bool {
    let row = alert.row;
    let name = floor
        .agent(row.id)
        .map_or("?", |record| record.info.name.as_str());
    let team = floor.team(row.team).map_or("", |team| team.name.as_str());
    let kind = row.status.kind();
    let reason = row
        .status
        .reason()
        .and_then(|reason| floor.reason(reason))
        .map(|reason| format!(" ({})", reason.label))
        .unwrap_or_default();
    let elapsed = model::duration_text(now.saturating_sub(row.since_ms));
    let colour = style::level_colour(alert.level, ui.visuals().dark_mode).unwrap_or(Color32::GRAY);
    let label = format!(
        "{} {name}, {}{reason}, {elapsed}, {team}",
        style::level_mark(alert.level),
        model::state_label(kind),
    );
    let response = ui
        .vertical(|ui| {
            // The time first, on the right, so that a long name is cut short before it instead of
            // running into it.
            let line = egui::vec2(ui.available_width(), ui.spacing().interact_size.y);
            ui.allocate_ui_with_layout(line, Layout::right_to_left(Align::Center), |ui| {
                ui.label(RichText::new(&elapsed).color(colour).strong().monospace());
                ui.with_layout(Layout::left_to_right(Align::Center), |ui| {
                    ui.label(
                        RichText::new(style::level_mark(alert.level))
                            .color(colour)
                            .strong(),
                    );
                    ui.add(egui::Label::new(RichText::new(name).strong()).truncate());
                });
            });
            ui.label(format!("{}{reason} · {team}", model::state_label(kind)));
        })
        .response
        .interact(egui::Sense::click())
        .on_hover_text("Open this agent's day");
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::ListItem, true, &label));
    response.clicked()
}

/// Raises an operating-system notification, off the UI thread (the desktop's notification
/// service may be slow or missing; then it is logged and nothing else happens).
fn notify(summary: &'static str, text: String, sound: bool) {
    std::thread::spawn(move || {
        let mut notification = notify_rust::Notification::new();
        notification.appname("MONTI").summary(summary).body(&text);
        if sound {
            // The system's own sound for a message (freedesktop's name; other systems map
            // it or play their default).
            notification.sound_name("message-new-instant");
        }
        let shown = notification.show();
        if let Err(err) = shown {
            tracing::warn!(%err, "cannot show a notification: {text}");
        }
    });
}

fn gui_zoom(ctx: &egui::Context, step: f32) {
    let zoom = (ctx.zoom_factor() + step).clamp(0.5, 3.0);
    ctx.set_zoom_factor(zoom);
}

impl App {
    /// One frame of the whole window, then what was asked for during it.
    pub fn show(&mut self, ui: &mut Ui) {
        self.show_screen(ui);
        for command in std::mem::take(&mut self.commands) {
            self.apply(command);
        }
    }

    /// Carries out what a person asked for.
    pub fn apply(&mut self, command: Command) {
        match command {
            Command::SignIn => self.feed.net.send(Request::SignIn),
            Command::CancelSignIn => self.feed.net.send(Request::CancelSignIn),
            Command::SignOut => self.feed.net.send(Request::SignOut),
            Command::Connect => self.connect(),
            Command::Drill(drill) => self.drill(drill),
            Command::Queue(widgets::QueueAction::Select(queue)) => {
                let filter = &mut self.settings.filter.queue;
                *filter = (filter.as_ref() != Some(&queue)).then_some(queue);
            }
            Command::Queue(widgets::QueueAction::ShowAgents(queue)) => {
                self.settings.filter.queue = Some(queue);
                if matches!(self.settings.view, ViewKind::Queues | ViewKind::Matrix) {
                    self.settings.view = ViewKind::Teams;
                }
            }
            Command::OpenAgent(agent) => {
                let session = self.feed.net.session().clone();
                let now = self.server_now_ms(&session);
                let panel = AgentPanel::open(&lock(&session.floor), agent, now);
                if let Some(panel) = panel {
                    self.feed.net.send(Request::History(panel.wanted.clone()));
                    self.agent = Some(panel);
                }
            }
        }
    }

    fn show_screen(&mut self, ui: &mut Ui) {
        let session = self.feed.net.session().clone();
        if let Screen::Wallboard(kiosk) = &mut self.screen {
            kiosk.show(ui, &mut self.feed, &session, self.clock);
            return;
        }
        self.shortcuts(ui.ctx());
        self.scale_to_the_monitor(ui.ctx());
        // What the person chose (Ctrl +/-, A+/A-), without the monitor's part.
        self.settings.zoom = ui.ctx().zoom_factor() / self.monitor_scale.unwrap_or(1.0);
        match &session.sign_in {
            SignIn::NotNeeded | SignIn::SignedIn => self.floor_screen(ui, &session),
            SignIn::Checking | SignIn::Needed { .. } | SignIn::Code(_) | SignIn::Browser { .. } => {
                let now = self.clock.now_ms();
                egui::CentralPanel::default().show(ui, |ui| {
                    App::update_line(ui, &session);
                    let command = signin::screen(ui, &session, &mut self.fields, now);
                    self.commands.extend(command);
                });
                ui.ctx()
                    .request_repaint_after(std::time::Duration::from_millis(500));
            }
        }
    }
}

impl eframe::App for App {
    fn clear_color(&self, visuals: &egui::Visuals) -> [f32; 4] {
        let background = match self.screen {
            Screen::Wallboard(_) => Color32::BLACK,
            Screen::Floor => style::background(visuals.dark_mode),
        };
        background.to_normalized_gamma_f32()
    }

    fn ui(&mut self, ui: &mut Ui, frame: &mut eframe::Frame) {
        let started = std::time::Instant::now();
        self.show(ui);
        if let Some(news) = &self.news {
            news.drawn(started);
        }
        self.frames.count(ui.ctx(), frame.info().cpu_usage);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, STORAGE_KEY, &self.settings);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// eframe keeps a map of keys to RON strings in `app.ron`, the values written by
    /// `eframe::set_value`; what the app saved there is read back before the window opens.
    #[test]
    fn text_grows_on_a_wide_monitor_the_system_does_not_scale() {
        assert_eq!(monitor_scale(1920.0, 1.0), 1.0);
        assert_eq!(monitor_scale(2560.0, 1.0), 1.0);
        assert_eq!(monitor_scale(3840.0, 1.0), 2.0);
        assert_eq!(monitor_scale(3440.0, 1.0), 3440.0 / 1920.0);
        assert_eq!(monitor_scale(7680.0, 1.0), 2.0, "at most twice");
        // The system scales already: a 4K monitor at 200 % is 1920 points wide anyway.
        assert_eq!(monitor_scale(3840.0, 1.5), 1.0);
    }

    #[test]
    fn a_remembered_wallboard_is_known_before_the_window_opens() {
        let dir = std::env::temp_dir().join(format!("monti-app-ron-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        assert_eq!(App::settings_in(&dir), None, "nothing saved yet");
        let saved = Settings {
            kiosk: true,
            wallboard: "hall-1".to_owned(),
            ..Settings::default()
        };
        let mut storage = std::collections::HashMap::new();
        struct Map<'a>(&'a mut std::collections::HashMap<String, String>);
        impl eframe::Storage for Map<'_> {
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
        eframe::set_value(&mut Map(&mut storage), STORAGE_KEY, &saved);
        storage.insert("egui".to_owned(), "(windows: {})".to_owned());
        let file = ron::ser::to_string_pretty(&storage, Default::default()).expect("RON");
        std::fs::write(dir.join("app.ron"), file).expect("written");
        assert_eq!(App::settings_in(&dir), Some(saved));
        // The file as eframe 0.37 itself wrote it for `monti-desktop --kiosk --wallboard hall-7`
        // (under Xvfb, after its 30 s autosave), window geometry and egui memory included.
        let real = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/eframe-0.37");
        let remembered = App::settings_in(std::path::Path::new(real)).expect("read");
        assert!(remembered.kiosk);
        assert_eq!(remembered.wallboard, "hall-7");
        std::fs::write(dir.join("app.ron"), "not ron at all").expect("written");
        assert_eq!(App::settings_in(&dir), None, "unreadable: the defaults");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
