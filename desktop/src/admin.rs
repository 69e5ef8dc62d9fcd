//! The Admin window, for those who may manage access (`manage_access` in `GET /api/v1/me`):
//! who may see what (group bindings, and test access to see the floor as one), the devices
//! signed in (and signing one out), the wallboards (pages, scope, night hours, with a live
//! preview), the audit log (filtered, exported as CSV) and the feedback people sent. Every
//! change goes through the server, which checks and audits it; this window only drafts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use egui::{Color32, RichText, Ui};
use monti_protocol::access::{
    AUDIT_KINDS, AuditEvent, BindingsJson, DeviceJson, FeedbackJson, GroupBinding, IngestKeyJson,
    KeyKind, NewIngestKeyJson, Role, ViewAs, csv,
};
use monti_protocol::floor::Floor;
use monti_protocol::names::natural_cmp;
use monti_protocol::rest::{NightHours, PageKind, WallboardConfig, WallboardPage};
use serde_json::json;

use crate::agent::clock_text;
use crate::app::{Cache, refresh_cache};
use crate::kiosk::{Frame, Kiosk};
use crate::net::{Method, Reply, Request, RestCall, Session};
use crate::{style, widgets};

/// The window's tabs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    /// Group bindings and test access.
    Access,
    /// The devices that opened the stream.
    Devices,
    /// The Amazon Connect keys.
    Keys,
    /// The wallboards' configurations.
    Wallboards,
    /// The audit log.
    Audit,
    /// What people sent with the Feedback button.
    Feedback,
}

impl Tab {
    const ALL: [Tab; 6] = [
        Tab::Access,
        Tab::Devices,
        Tab::Keys,
        Tab::Wallboards,
        Tab::Audit,
        Tab::Feedback,
    ];

    fn label(self) -> &'static str {
        match self {
            Tab::Access => "Access",
            Tab::Devices => "Devices",
            Tab::Keys => "Ingest keys",
            Tab::Wallboards => "Wallboards",
            Tab::Audit => "Audit log",
            Tab::Feedback => "Feedback received",
        }
    }
}

/// How far back the audit log is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    /// The last hour.
    Hour,
    /// The last day.
    Day,
    /// The last week.
    Week,
    /// Everything kept.
    Ever,
}

impl Since {
    const ALL: [Since; 4] = [Since::Hour, Since::Day, Since::Week, Since::Ever];

    fn label(self) -> &'static str {
        match self {
            Since::Hour => "last hour",
            Since::Day => "last day",
            Since::Week => "last week",
            Since::Ever => "everything",
        }
    }

    fn start_ms(self, now_ms: u64) -> Option<u64> {
        let hours = match self {
            Since::Hour => 1,
            Since::Day => 24,
            Since::Week => 24 * 7,
            Since::Ever => return None,
        };
        Some(now_ms.saturating_sub(hours * 3_600_000))
    }
}

/// The audit log's filter.
#[derive(Clone, Debug)]
pub struct AuditFilter {
    /// Subjects containing this.
    pub who: String,
    /// One kind, or every kind (empty).
    pub kind: String,
    /// How far back.
    pub since: Since,
}

/// The open window and its drafts.
pub struct AdminWindow {
    /// The tab shown.
    pub tab: Tab,
    /// Which answers were taken into the drafts, by key (their serials).
    taken: BTreeMap<&'static str, u64>,
    /// The bindings being edited; `None` until the server's arrive.
    pub bindings: Option<Vec<GroupBinding>>,
    /// The bindings as the server last answered them (a refused save leaves them).
    stored: Option<BindingsJson>,
    /// The audit log's filter.
    pub audit: AuditFilter,
    /// The wallboard being edited, and its draft.
    pub wallboard: Option<(String, WallboardConfig)>,
    /// The name typed to open or create a wallboard.
    new_wallboard: String,
    /// The page the preview shows.
    preview_page: PageKind,
    preview: Cache,
    /// The device whose sign-out waits for a second click.
    confirm_sign_out: Option<String>,
    /// The key whose retirement waits for a second click.
    confirm_retire: Option<String>,
    /// The kind and label of the key to make.
    new_key: (KeyKind, String),
    /// What the last export wrote, or why it could not.
    pub exported: Option<Result<PathBuf, String>>,
    /// Where exports go.
    export_dir: PathBuf,
}

impl AdminWindow {
    /// The window, and the reads it starts with.
    pub fn open(now_ms: u64) -> (AdminWindow, Vec<Request>) {
        let window = AdminWindow {
            tab: Tab::Access,
            taken: BTreeMap::new(),
            bindings: None,
            stored: None,
            audit: AuditFilter {
                who: String::new(),
                kind: String::new(),
                since: Since::Day,
            },
            wallboard: None,
            new_wallboard: String::new(),
            preview_page: PageKind::Totals,
            preview: Cache::default(),
            confirm_sign_out: None,
            confirm_retire: None,
            new_key: (KeyKind::Firehose, String::new()),
            exported: None,
            export_dir: export_dir(),
        };
        let reads = vec![
            Request::Rest(RestCall::get("bindings", "/api/v1/access/bindings")),
            Request::Rest(RestCall::get("devices", "/api/v1/access/devices")),
            Request::Rest(RestCall::get("keys", "/api/v1/access/keys")),
            Request::Rest(RestCall::get("wallboards", "/api/v1/config/wallboards")),
            Request::Rest(window.audit_call(now_ms)),
            Request::Rest(RestCall::get("feedback", "/api/v1/feedback")),
        ];
        (window, reads)
    }

    /// Exports go to `dir` instead of the Downloads folder (tests).
    pub fn export_to(&mut self, dir: PathBuf) {
        self.export_dir = dir;
    }

    /// Draws the window's contents; returns what to ask of the server.
    pub fn show(
        &mut self,
        ui: &mut Ui,
        session: &Session,
        floor: &Floor,
        now_ms: u64,
    ) -> Vec<Request> {
        let mut asked = Vec::new();
        self.take_answers(session);
        ui.horizontal(|ui| {
            for tab in Tab::ALL {
                ui.selectable_value(&mut self.tab, tab, tab.label());
            }
        });
        ui.separator();
        match self.tab {
            Tab::Access => self.access(ui, session, &mut asked),
            Tab::Devices => self.devices(ui, session, now_ms, &mut asked),
            Tab::Keys => self.keys(ui, session, &mut asked),
            Tab::Wallboards => self.wallboards(ui, session, floor, now_ms, &mut asked),
            Tab::Audit => self.audit_log(ui, session, now_ms, &mut asked),
            Tab::Feedback => self.feedback(ui, session, &mut asked),
        }
        asked
    }

    /// Takes new answers that replace drafts: the bindings and the wallboard, as the server
    /// stored them.
    fn take_answers(&mut self, session: &Session) {
        if let Some(reply) = self.fresh(session, "bindings")
            && let Ok(stored) = reply.parsed::<BindingsJson>()
        {
            self.bindings = Some(stored.bindings.clone());
            self.stored = Some(stored);
        }
        if let Some(reply) = self.fresh(session, "wallboard")
            && let (Ok(config), Some((_, draft))) =
                (reply.parsed::<WallboardConfig>(), &mut self.wallboard)
        {
            *draft = config;
        }
    }

    /// The answer under `key` if it is newer than the last taken, marking it taken.
    fn fresh<'s>(&mut self, session: &'s Session, key: &'static str) -> Option<&'s Reply> {
        let reply = session.replies.get(key)?;
        let taken = self.taken.entry(key).or_default();
        if reply.serial <= *taken {
            return None;
        }
        *taken = reply.serial;
        Some(reply)
    }

    fn access(&mut self, ui: &mut Ui, session: &Session, asked: &mut Vec<Request>) {
        let stored = session.replies.get("bindings");
        let loaded = self.stored.clone();
        if let Some(loaded) = &loaded {
            ui.label(&loaded.rule);
            ui.label(format!(
                "Last changed by {} at {}.",
                loaded.changed_by,
                clock_text(loaded.changed_at_ms)
            ));
            if loaded.file_differs {
                ui.label(
                    RichText::new(
                        "These differ from the configuration file's [[auth.bindings]]: \
                         copy them there to keep them as code.",
                    )
                    .italics(),
                );
            }
        }
        if let Some(Err(why)) = stored.map(|reply| &reply.answer) {
            ui.colored_label(ui.visuals().error_fg_color, why);
        }
        let Some(bindings) = &mut self.bindings else {
            ui.label("Reading the bindings…");
            return;
        };
        ui.separator();
        let teams = known(
            session.teams.iter().map(|team| team.name.clone()),
            bindings,
            |b| &b.teams,
        );
        let sites = known(
            session.sites.iter().map(|site| site.name.clone()),
            bindings,
            |b| &b.sites,
        );
        let mut remove = None;
        egui::ScrollArea::vertical()
            .auto_shrink([false, false])
            .max_height(ui.available_height() - 60.0)
            .show(ui, |ui| {
                egui::Grid::new("bindings").striped(true).show(ui, |ui| {
                    for title in ["Group", "Role", "Teams", "Sites", ""] {
                        ui.label(RichText::new(title).strong());
                    }
                    ui.end_row();
                    for (index, binding) in bindings.iter_mut().enumerate() {
                        ui.add_sized(
                            [220.0, 20.0],
                            egui::TextEdit::singleline(&mut binding.group)
                                .hint_text("group as the provider names it"),
                        );
                        let picked = egui::ComboBox::from_id_salt(("role", index))
                            .selected_text(binding.role.name())
                            .show_ui(ui, |ui| {
                                for role in Role::ALL {
                                    ui.selectable_value(&mut binding.role, role, role.name());
                                }
                            });
                        named(&picked.response, format!("Role of binding {}", index + 1));
                        names_menu(
                            ui,
                            ("teams", index),
                            "every team",
                            &teams,
                            &mut binding.teams,
                        );
                        names_menu(
                            ui,
                            ("sites", index),
                            "every site",
                            &sites,
                            &mut binding.sites,
                        );
                        ui.horizontal(|ui| {
                            let view_as = ViewAs::Binding {
                                role: binding.role,
                                teams: binding.teams.clone(),
                                sites: binding.sites.clone(),
                            };
                            if ui
                                .button("View as")
                                .on_hover_text(
                                    "See the floor as this binding would, before granting it \
                                     (the server computes it; nothing is saved)",
                                )
                                .clicked()
                            {
                                asked.push(Request::ViewAs(Some(view_as)));
                            }
                            if ui.button("Remove").clicked() {
                                remove = Some(index);
                            }
                        });
                        ui.end_row();
                    }
                });
            });
        if let Some(index) = remove {
            bindings.remove(index);
        }
        ui.horizontal(|ui| {
            if ui.button("Add binding").clicked() {
                bindings.push(GroupBinding {
                    group: String::new(),
                    role: Role::TeamLead,
                    teams: Vec::new(),
                    sites: Vec::new(),
                });
            }
            let changed = loaded
                .as_ref()
                .is_none_or(|loaded| &loaded.bindings != bindings);
            let problem = monti_protocol::access::bindings_problem(bindings);
            let save = ui.add_enabled(changed && problem.is_none(), egui::Button::new("Save"));
            if save.clicked() {
                let body = json!(bindings);
                asked.push(Request::Rest(RestCall::send(
                    "bindings",
                    Method::Put,
                    "/api/v1/access/bindings",
                    body,
                )));
            }
            if ui
                .add_enabled(changed, egui::Button::new("Undo changes"))
                .clicked()
                && let Some(loaded) = &loaded
            {
                *bindings = loaded.bindings.clone();
            }
            if let Some(problem) = problem {
                ui.colored_label(ui.visuals().warn_fg_color, problem);
            } else if changed {
                ui.label("Not saved yet. Open viewers get the new scope when you save.");
            }
        });
    }

    fn devices(&mut self, ui: &mut Ui, session: &Session, now_ms: u64, asked: &mut Vec<Request>) {
        ui.horizontal(|ui| {
            ui.label("Everyone and every wallboard PC that opened the floor, last seen first.");
            if ui.button("Refresh").clicked() {
                asked.push(Request::Rest(RestCall::get(
                    "devices",
                    "/api/v1/access/devices",
                )));
            }
        });
        let devices = match session
            .replies
            .get("devices")
            .map(Reply::parsed::<Vec<DeviceJson>>)
        {
            None => {
                ui.label("Reading the devices…");
                return;
            }
            Some(Err(why)) => {
                ui.colored_label(ui.visuals().error_fg_color, why);
                return;
            }
            Some(Ok(devices)) => devices,
        };
        // Signing oneself out is Sign out in the top bar, not here (the server refuses it).
        let me = session.me.as_ref().map(|me| &me.subject);
        egui::ScrollArea::vertical()
            .auto_shrink([false, false])
            .show(ui, |ui| {
                egui::Grid::new("devices").striped(true).show(ui, |ui| {
                    for title in [
                        "Who",
                        "Wallboard",
                        "App",
                        "Address",
                        "Last seen",
                        "Open",
                        "",
                    ] {
                        ui.label(RichText::new(title).strong());
                    }
                    ui.end_row();
                    for device in &devices {
                        ui.label(&device.subject);
                        ui.label(device.wallboard.as_deref().unwrap_or("—"));
                        ui.label(&device.client);
                        ui.label(device.address.as_deref().unwrap_or("—"));
                        ui.label(seen_text(device.last_seen_ms, now_ms));
                        ui.label(if device.connected > 0 {
                            "connected"
                        } else {
                            ""
                        });
                        match device.signed_out_ms {
                            Some(at) if device.last_seen_ms <= at => {
                                ui.label(format!("signed out {}", clock_text(at)));
                            }
                            _ if Some(&device.subject) == me => {
                                ui.label("you");
                            }
                            _ => {
                                let action = Confirmed {
                                    ask: "Sign out",
                                    confirm: "Confirm sign-out",
                                    why: "Refuse this device's sign-in and close its \
                                          connections; someone must sign it in again",
                                };
                                if action.show(ui, &mut self.confirm_sign_out, &device.subject) {
                                    let path = format!(
                                        "/api/v1/access/devices/{}/sign-out",
                                        path_segment(&device.subject)
                                    );
                                    asked.push(Request::Rest(RestCall::post("devices", path)));
                                }
                            }
                        }
                        ui.end_row();
                    }
                });
            });
    }

    fn keys(&mut self, ui: &mut Ui, session: &Session, asked: &mut Vec<Request>) {
        ui.label(
            "The keys Amazon Connect's deliveries carry. To rotate one: make a new key, put it \
             into the Firehose stream (or the EventBridge connection) in AWS, check deliveries \
             arrive, then retire the old key.",
        );
        if self.fresh(session, "key_made").is_some() {
            // A new key: the list shows it too.
            asked.push(Request::Rest(RestCall::get("keys", "/api/v1/access/keys")));
        }
        match session
            .replies
            .get("key_made")
            .map(Reply::parsed::<NewIngestKeyJson>)
        {
            Some(Ok(made)) => {
                egui::Frame::new()
                    .fill(style::TEST_ACCESS)
                    .inner_margin(6.0)
                    .show(ui, |ui| {
                        ui.label(
                            RichText::new(format!(
                                "New {} key {:?}: copy it into AWS now. MONTI keeps only its \
                                 hash and cannot show it again.",
                                made.key.kind.title(),
                                made.key.label
                            ))
                            .color(Color32::BLACK),
                        );
                        ui.horizontal(|ui| {
                            let mut shown = made.secret.clone();
                            ui.add(
                                egui::TextEdit::singleline(&mut shown)
                                    .hint_text("the new key")
                                    .font(egui::TextStyle::Monospace)
                                    .desired_width(420.0),
                            );
                            if ui.button("Copy").clicked() {
                                ui.ctx().copy_text(made.secret.clone());
                            }
                        });
                    });
            }
            Some(Err(why)) => {
                ui.colored_label(ui.visuals().error_fg_color, why);
            }
            None => {}
        }
        ui.horizontal(|ui| {
            egui::ComboBox::from_label("kind")
                .selected_text(self.new_key.0.title())
                .show_ui(ui, |ui| {
                    for kind in KeyKind::ALL {
                        ui.selectable_value(&mut self.new_key.0, kind, kind.title());
                    }
                });
            ui.add(
                egui::TextEdit::singleline(&mut self.new_key.1)
                    .hint_text("label, e.g. 2026-12 rotation")
                    .desired_width(200.0),
            );
            let ready = !self.new_key.1.trim().is_empty();
            if ui
                .add_enabled(ready, egui::Button::new("Make key"))
                .clicked()
            {
                let body = json!({"kind": self.new_key.0, "label": self.new_key.1.trim()});
                asked.push(Request::Rest(RestCall::send(
                    "key_made",
                    Method::Post,
                    "/api/v1/access/keys",
                    body,
                )));
                self.new_key.1.clear();
            }
        });
        let keys = match session
            .replies
            .get("keys")
            .map(Reply::parsed::<Vec<IngestKeyJson>>)
        {
            None => {
                ui.label("Reading the keys…");
                return;
            }
            Some(Err(why)) => {
                ui.colored_label(ui.visuals().error_fg_color, why);
                return;
            }
            Some(Ok(keys)) => keys,
        };
        if keys.is_empty() {
            ui.label("No key: Amazon Connect's deliveries are refused until one is made.");
        }
        egui::ScrollArea::vertical()
            .auto_shrink([false, false])
            .show(ui, |ui| {
                egui::Grid::new("keys").striped(true).show(ui, |ui| {
                    for title in ["Kind", "Label", "Made by", "Made", "State", ""] {
                        ui.label(RichText::new(title).strong());
                    }
                    ui.end_row();
                    for key in &keys {
                        ui.label(key.kind.title());
                        ui.label(&key.label);
                        ui.label(&key.created_by);
                        ui.label(if key.created_ms == 0 {
                            "—".to_owned()
                        } else {
                            iso_time(key.created_ms)
                        });
                        match key.retired_ms {
                            Some(at) => {
                                ui.label(format!("retired {}", iso_time(at)));
                                ui.label("");
                            }
                            None => {
                                ui.label("in force");
                                let action = Confirmed {
                                    ask: "Retire",
                                    confirm: "Confirm retire",
                                    why: "Refuse deliveries with this key from now on",
                                };
                                if action.show(ui, &mut self.confirm_retire, &key.id) {
                                    let path = format!(
                                        "/api/v1/access/keys/{}/retire",
                                        path_segment(&key.id)
                                    );
                                    asked.push(Request::Rest(RestCall::post("keys", path)));
                                }
                            }
                        }
                        ui.end_row();
                    }
                });
            });
    }

    fn wallboards(
        &mut self,
        ui: &mut Ui,
        session: &Session,
        floor: &Floor,
        now_ms: u64,
        asked: &mut Vec<Request>,
    ) {
        let names = (session.replies.get("wallboards"))
            .and_then(|reply| reply.parsed::<Vec<String>>().ok())
            .unwrap_or_default();
        ui.horizontal_wrapped(|ui| {
            ui.label("Wallboards:");
            for name in &names {
                let open = self
                    .wallboard
                    .as_ref()
                    .is_some_and(|(shown, _)| shown == name);
                if ui.selectable_label(open, name).clicked() {
                    self.open_wallboard(name, asked);
                }
            }
            ui.add(
                egui::TextEdit::singleline(&mut self.new_wallboard)
                    .hint_text("name, e.g. hall-1")
                    .desired_width(120.0),
            );
            if ui.button("Open").clicked() && !self.new_wallboard.trim().is_empty() {
                let name = self.new_wallboard.trim().to_owned();
                self.open_wallboard(&name, asked);
            }
        });
        let Some((name, draft)) = &mut self.wallboard else {
            ui.label(
                "Pick a wallboard, or type a new name and Open it (a wallboard without its own \
                 configuration shows the one named default).",
            );
            return;
        };
        let name = name.clone();
        ui.separator();
        let devices = (session.replies.get("devices"))
            .and_then(|reply| reply.parsed::<Vec<DeviceJson>>().ok())
            .unwrap_or_default();
        let showing: Vec<String> = (devices.iter())
            .filter(|device| device.wallboard.as_deref() == Some(name.as_str()))
            .map(|device| {
                format!(
                    "{} ({}, {})",
                    device.subject,
                    device.client,
                    seen_text(device.last_seen_ms, now_ms)
                )
            })
            .collect();
        ui.label(format!(
            "Signed in as {name}: {}",
            if showing.is_empty() {
                "no device yet".to_owned()
            } else {
                showing.join("; ")
            }
        ));
        ui.columns(2, |columns| {
            wallboard_editor(&mut columns[0], session, draft);
            let ui = &mut columns[1];
            ui.horizontal(|ui| {
                ui.label("Preview:");
                for page in &draft.pages {
                    ui.selectable_value(&mut self.preview_page, page.kind, page.kind.title());
                }
            });
            ui.label(
                RichText::new(
                    "Live, from what this app receives: with filters set, only their part of \
                     the floor.",
                )
                .small(),
            );
            let (rect, _) = ui.allocate_exact_size(PREVIEW, egui::Sense::hover());
            ui.painter().rect_filled(rect, 4.0, Color32::BLACK);
            refresh_cache(&mut self.preview, floor, session, Kiosk::shown(draft));
            let frame = Frame {
                floor,
                cache: &self.preview,
                session,
                config: draft,
                page: self.preview_page,
                progress: 0.0,
                now_ms,
                server_now_ms: now_ms.saturating_add_signed(session.clock_offset_ms),
                screens: std::cell::Cell::new(1),
            };
            ui.scope_builder(egui::UiBuilder::new().max_rect(rect), |ui| {
                ui.set_clip_rect(rect);
                frame.show(ui);
            });
        });
        ui.horizontal(|ui| {
            let problem = draft.check().err();
            if ui
                .add_enabled(problem.is_none(), egui::Button::new("Save"))
                .clicked()
            {
                let path = format!("/api/v1/config/wallboards/{}", path_segment(&name));
                asked.push(Request::Rest(RestCall::send(
                    "wallboard",
                    Method::Put,
                    path,
                    json!(draft),
                )));
            }
            if let Some(problem) = problem {
                ui.colored_label(ui.visuals().warn_fg_color, problem);
            }
            if let Some(Err(why)) = session.replies.get("wallboard").map(|reply| &reply.answer) {
                ui.colored_label(ui.visuals().error_fg_color, why);
            }
        });
    }

    fn open_wallboard(&mut self, name: &str, asked: &mut Vec<Request>) {
        self.wallboard = Some((name.to_owned(), WallboardConfig::default()));
        let path = format!("/api/v1/config/wallboards/{}", path_segment(name));
        asked.push(Request::Rest(RestCall::get("wallboard", path)));
    }

    fn audit_call(&self, now_ms: u64) -> RestCall {
        let mut call = RestCall::get("audit", "/api/v1/audit");
        call.query.push(("limit".to_owned(), "1000".to_owned()));
        if !self.audit.who.trim().is_empty() {
            call.query
                .push(("subject".to_owned(), self.audit.who.trim().to_owned()));
        }
        if !self.audit.kind.is_empty() {
            call.query
                .push(("kind".to_owned(), self.audit.kind.clone()));
        }
        if let Some(from) = self.audit.since.start_ms(now_ms) {
            call.query.push(("from_ms".to_owned(), from.to_string()));
        }
        call
    }

    fn audit_log(&mut self, ui: &mut Ui, session: &Session, now_ms: u64, asked: &mut Vec<Request>) {
        ui.horizontal(|ui| {
            ui.label("Who");
            ui.add(
                egui::TextEdit::singleline(&mut self.audit.who)
                    .hint_text("anyone")
                    .desired_width(140.0),
            );
            ui.label("What");
            let what = egui::ComboBox::from_id_salt("audit what")
                .selected_text(if self.audit.kind.is_empty() {
                    "everything"
                } else {
                    &self.audit.kind
                })
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.audit.kind, String::new(), "everything");
                    for kind in AUDIT_KINDS {
                        ui.selectable_value(&mut self.audit.kind, kind.to_owned(), kind);
                    }
                });
            named(&what.response, "What".to_owned());
            ui.label("When");
            let when = egui::ComboBox::from_id_salt("audit when")
                .selected_text(self.audit.since.label())
                .show_ui(ui, |ui| {
                    for since in Since::ALL {
                        ui.selectable_value(&mut self.audit.since, since, since.label());
                    }
                });
            named(&when.response, "When".to_owned());
            if ui.button("Show").clicked() {
                asked.push(Request::Rest(self.audit_call(now_ms)));
            }
        });
        let events = match session
            .replies
            .get("audit")
            .map(Reply::parsed::<Vec<AuditEvent>>)
        {
            None => {
                ui.label("Reading the audit log…");
                return;
            }
            Some(Err(why)) => {
                ui.colored_label(ui.visuals().error_fg_color, why);
                return;
            }
            Some(Ok(events)) => events,
        };
        ui.horizontal(|ui| {
            ui.label(format!(
                "{} events (newest first, at most 1000)",
                events.len()
            ));
            if ui.button("Export CSV").clicked() {
                let rows = events.iter().map(|event| {
                    [
                        iso_time(event.created_at.max(0) as u64),
                        event.subject.clone().unwrap_or_default(),
                        event.kind.clone(),
                        event.detail.clone(),
                    ]
                });
                let text = csv(["when", "who", "what", "detail"], rows);
                self.exported = Some(self.export("audit", &text));
            }
            self.export_line(ui);
        });
        egui::ScrollArea::vertical()
            .auto_shrink([false, false])
            .show(ui, |ui| {
                egui::Grid::new("audit").striped(true).show(ui, |ui| {
                    for title in ["When", "Who", "What", "Detail"] {
                        ui.label(RichText::new(title).strong());
                    }
                    ui.end_row();
                    for event in &events {
                        ui.label(iso_time(event.created_at.max(0) as u64));
                        ui.label(event.subject.as_deref().unwrap_or("—"));
                        ui.label(&event.kind);
                        // Wide enough to read a binding's before and after; long ones wrap.
                        ui.scope(|ui| {
                            ui.set_width(DETAIL_WIDTH);
                            ui.add(egui::Label::new(&event.detail).wrap());
                        });
                        ui.end_row();
                    }
                });
            });
    }

    fn feedback(&mut self, ui: &mut Ui, session: &Session, asked: &mut Vec<Request>) {
        let list = match session
            .replies
            .get("feedback")
            .map(Reply::parsed::<Vec<FeedbackJson>>)
        {
            None => {
                ui.label("Reading the feedback…");
                return;
            }
            Some(Err(why)) => {
                ui.colored_label(ui.visuals().error_fg_color, why);
                return;
            }
            Some(Ok(list)) => list,
        };
        ui.horizontal(|ui| {
            ui.label(format!("{} messages, newest first", list.len()));
            if ui.button("Refresh").clicked() {
                asked.push(Request::Rest(RestCall::get("feedback", "/api/v1/feedback")));
            }
            if ui.button("Export CSV").clicked() {
                let rows = list.iter().map(|feedback| {
                    [
                        feedback.id.to_string(),
                        iso_time(feedback.created_ms),
                        feedback.subject.clone(),
                        feedback.client.clone(),
                        feedback.context.clone(),
                        feedback.text.clone(),
                        if feedback.has_screenshot { "yes" } else { "no" }.to_owned(),
                    ]
                });
                let header = ["number", "when", "who", "app", "view", "text", "screenshot"];
                self.exported = Some(self.export("feedback", &csv(header, rows)));
            }
            self.export_line(ui);
        });
        if let Some(Ok(saved)) = session.replies.get("screenshot").map(|reply| &reply.answer) {
            ui.label(format!(
                "Screenshot saved to {}",
                saved["saved"].as_str().unwrap_or("?")
            ));
        }
        egui::ScrollArea::vertical()
            .auto_shrink([false, false])
            .show(ui, |ui| {
                for feedback in &list {
                    ui.group(|ui| {
                        ui.horizontal_wrapped(|ui| {
                            ui.label(
                                RichText::new(format!("#{} {}", feedback.id, feedback.subject))
                                    .strong(),
                            );
                            ui.label(iso_time(feedback.created_ms));
                            ui.label(format!("{} · {}", feedback.client, feedback.context));
                            if feedback.has_screenshot && ui.button("Save screenshot").clicked() {
                                let path = self
                                    .export_dir
                                    .join(format!("monti-feedback-{}.png", feedback.id));
                                let mut call = RestCall::get(
                                    "screenshot",
                                    format!("/api/v1/feedback/{}/screenshot", feedback.id),
                                );
                                call.save_to = Some(path);
                                asked.push(Request::Rest(call));
                            }
                        });
                        ui.add(egui::Label::new(&feedback.text).wrap());
                    });
                }
            });
    }

    fn export_line(&self, ui: &mut Ui) {
        match &self.exported {
            Some(Ok(path)) => {
                ui.label(format!("Saved {}", path.display()));
            }
            Some(Err(why)) => {
                ui.colored_label(ui.visuals().error_fg_color, why);
            }
            None => {}
        }
    }

    /// Writes `text` as `monti-<what>-<date>.csv` in the export folder.
    fn export(&self, what: &str, text: &str) -> Result<PathBuf, String> {
        let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
        let path = self.export_dir.join(format!("monti-{what}-{stamp}.csv"));
        std::fs::write(&path, text)
            .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
        Ok(path)
    }
}

/// An action that takes a second click: its button, then Confirm and Cancel in its place.
struct Confirmed {
    ask: &'static str,
    confirm: &'static str,
    why: &'static str,
}

impl Confirmed {
    /// Draws it for `id` (`pending`: whose second click is awaited); true once confirmed.
    fn show(&self, ui: &mut Ui, pending: &mut Option<String>, id: &str) -> bool {
        if pending.as_deref() != Some(id) {
            if ui.button(self.ask).on_hover_text(self.why).clicked() {
                *pending = Some(id.to_owned());
            }
            return false;
        }
        let mut confirmed = false;
        ui.horizontal(|ui| {
            if ui.button(self.confirm).clicked() {
                confirmed = true;
                *pending = None;
            }
            if ui.button("Cancel").clicked() {
                *pending = None;
            }
        });
        confirmed
    }
}

/// The pages, scope and night hours of a wallboard, edited in place.
fn wallboard_editor(ui: &mut Ui, session: &Session, draft: &mut WallboardConfig) {
    ui.label(RichText::new("Pages, in order").strong());
    let mut swap = None;
    let mut remove = None;
    let count = draft.pages.len();
    egui::Grid::new("pages").show(ui, |ui| {
        for (index, page) in draft.pages.iter_mut().enumerate() {
            let picked = egui::ComboBox::from_id_salt(("page", index))
                .selected_text(page.kind.title())
                .show_ui(ui, |ui| {
                    for kind in PAGE_KINDS {
                        ui.selectable_value(&mut page.kind, kind, kind.title());
                    }
                });
            named(&picked.response, format!("Page {}", index + 1));
            ui.add(
                egui::DragValue::new(&mut page.seconds)
                    .range(3..=3600)
                    .suffix(" s"),
            );
            ui.horizontal(|ui| {
                if ui.add_enabled(index > 0, egui::Button::new("⬆")).clicked() {
                    swap = Some(index - 1);
                }
                if ui
                    .add_enabled(index + 1 < count, egui::Button::new("⬇"))
                    .clicked()
                {
                    swap = Some(index);
                }
                if ui.button("Remove").clicked() {
                    remove = Some(index);
                }
            });
            ui.end_row();
        }
    });
    if let Some(index) = swap {
        draft.pages.swap(index, index + 1);
    }
    if let Some(index) = remove {
        draft.pages.remove(index);
    }
    if ui.button("Add page").clicked() {
        draft.pages.push(WallboardPage {
            kind: PageKind::Totals,
            seconds: 15,
        });
    }
    ui.separator();
    let teams: Vec<String> = sorted(
        session
            .teams
            .iter()
            .map(|team| team.name.clone())
            .chain(draft.teams.clone()),
    );
    let sites: Vec<String> = sorted(
        session
            .sites
            .iter()
            .map(|site| site.name.clone())
            .chain(draft.sites.clone()),
    );
    ui.horizontal(|ui| {
        ui.label("Teams");
        names_menu(
            ui,
            "wallboard teams",
            "every team",
            &teams,
            &mut draft.teams,
        );
        ui.label("Sites");
        names_menu(
            ui,
            "wallboard sites",
            "every site",
            &sites,
            &mut draft.sites,
        );
    });
    let mut night = draft.night.is_some();
    ui.checkbox(&mut night, "Dim at night");
    match (night, &mut draft.night) {
        (true, None) => {
            draft.night = Some(NightHours {
                from: "20:00".to_owned(),
                to: "06:00".to_owned(),
                brightness_percent: 30,
            })
        }
        (false, Some(_)) => draft.night = None,
        (true, Some(hours)) => {
            ui.horizontal(|ui| {
                ui.label("from");
                ui.add(egui::TextEdit::singleline(&mut hours.from).desired_width(50.0));
                ui.label("to");
                ui.add(egui::TextEdit::singleline(&mut hours.to).desired_width(50.0));
                ui.add(
                    egui::DragValue::new(&mut hours.brightness_percent)
                        .range(10..=100)
                        .suffix(" %"),
                );
            });
        }
        (false, None) => {}
    }
}

/// The wallboard preview's size: a 1080p screen at a quarter.
const PREVIEW: egui::Vec2 = egui::vec2(480.0, 270.0);

/// The audit log's detail column, in points.
const DETAIL_WIDTH: f32 = 560.0;

const PAGE_KINDS: [PageKind; 5] = [
    PageKind::Totals,
    PageKind::Sites,
    PageKind::Teams,
    PageKind::Attention,
    PageKind::Queues,
];

/// Names a widget for screen readers (a picker in a table row has no label of its own).
fn named(response: &egui::Response, name: String) {
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::ComboBox, true, &name));
}

/// A menu of `all` names with a tick each; none ticked reads `none_text`.
fn names_menu(
    ui: &mut Ui,
    id: impl std::hash::Hash + std::fmt::Debug,
    none_text: &str,
    all: &[String],
    chosen: &mut Vec<String>,
) {
    let title = match chosen.len() {
        0 => none_text.to_owned(),
        1 => chosen[0].clone(),
        n => format!("{} and {} more", chosen[0], n - 1),
    };
    ui.push_id(id, |ui| {
        widgets::menu(ui, &title, |ui| {
            egui::ScrollArea::vertical()
                .max_height(300.0)
                .show(ui, |ui| {
                    for name in all {
                        let mut ticked = chosen.contains(name);
                        if ui.checkbox(&mut ticked, name).changed() {
                            if ticked {
                                chosen.push(name.clone());
                                chosen.sort_by(|a, b| natural_cmp(a, b));
                            } else {
                                chosen.retain(|other| other != name);
                            }
                        }
                    }
                });
        });
    });
}

/// The names the floor knows and the bindings name (a binding may name a team not created yet).
fn known(
    floor: impl Iterator<Item = String>,
    bindings: &[GroupBinding],
    names: impl Fn(&GroupBinding) -> &Vec<String>,
) -> Vec<String> {
    sorted(floor.chain(bindings.iter().flat_map(|binding| names(binding).clone())))
}

fn sorted(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut names: Vec<String> = names.collect::<BTreeSet<_>>().into_iter().collect();
    names.sort_by(|a, b| natural_cmp(a, b));
    names
}

/// `2026-12-01 14:32:05`, local time.
fn iso_time(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|at| {
            at.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_default()
}

/// "now", "5 min ago", or the clock time.
fn seen_text(ms: u64, now_ms: u64) -> String {
    match now_ms.saturating_sub(ms) / 60_000 {
        0 => "now".to_owned(),
        minutes @ 1..60 => format!("{minutes} min ago"),
        _ => iso_time(ms),
    }
}

/// `text` as one URL path segment: unreserved characters kept, every other byte %-encoded.
pub fn path_segment(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Where exports go: the Downloads folder, else the home folder, else the temporary one.
fn export_dir() -> PathBuf {
    let home = std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .map(PathBuf::from);
    match home {
        Some(home) if home.join("Downloads").is_dir() => home.join("Downloads"),
        Some(home) if home.is_dir() => home,
        _ => std::env::temp_dir(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(path_segment("hall-1"), "hall-1");
        assert_eq!(path_segment("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(path_segment("Köln"), "K%C3%B6ln");
    }
}
