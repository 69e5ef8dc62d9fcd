//! The Thresholds window: when time in a state (or on a not-ready reason) turns an agent
//! amber, then red, for every team and per team. Whoever sees the floor reads them; whoever
//! may change the server's configuration (`change_config` in `GET /api/v1/me`) edits them
//! here, and the server audits the change.

use egui::{RichText, Ui};
use monti_protocol::floor::Floor;
use monti_protocol::model::StateKind;
use monti_protocol::rest::{Limit, REASON_KEY_PREFIX, ThresholdKey, Thresholds};

use crate::model;
use crate::net::Session;
use crate::settings::AlertChoice;

/// The states a time limit makes sense for (available is idle time, not a problem).
const LIMITED: [StateKind; 6] = [
    StateKind::Ringing,
    StateKind::OnCall,
    StateKind::OnHold,
    StateKind::WrapUp,
    StateKind::NotReady,
    StateKind::Stale,
];

/// The open window: a draft of the thresholds and the row being added.
#[derive(Clone, Debug)]
pub struct ThresholdsWindow {
    /// What the person edits; sent on Save.
    pub draft: Thresholds,
    /// The team of the row to add (`None`: every team).
    new_team: Option<String>,
    /// The key of the row to add.
    new_key: String,
}

/// What the window asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Asked {
    /// Nothing.
    Nothing,
    /// Close it.
    Close,
    /// Save the draft.
    Save(Thresholds),
}

impl ThresholdsWindow {
    /// A window on the session's thresholds.
    pub fn new(current: &Thresholds) -> ThresholdsWindow {
        ThresholdsWindow {
            draft: current.clone(),
            new_team: None,
            new_key: StateKind::NotReady.name().to_owned(),
        }
    }

    /// Draws the window's contents; `alerts` are this computer's alert choices per key.
    pub fn show(
        &mut self,
        ui: &mut Ui,
        session: &Session,
        floor: &Floor,
        alerts: &mut std::collections::BTreeMap<String, AlertChoice>,
    ) -> Asked {
        let editable = (session.me.as_ref())
            .is_some_and(|me| me.may.iter().any(|action| action == "change_config"));
        let mut asked = Asked::Nothing;
        ui.label(
            "When time in a state turns an agent amber, then red. The most specific applies: the \
             team's for the reason, the reason's, the team's for the state, the state's.",
        );
        if !editable {
            ui.label(RichText::new("Read only: an administrator changes them.").strong());
        }
        ui.separator();
        let mut rows: Vec<(Option<String>, String, Limit)> = Vec::new();
        for (key, limit) in &self.draft.default {
            rows.push((None, key.clone(), *limit));
        }
        for (team, limits) in &self.draft.teams {
            for (key, limit) in limits {
                rows.push((Some(team.clone()), key.clone(), *limit));
            }
        }
        let mut removed = None;
        let mut changed = Vec::new();
        egui::Grid::new("thresholds")
            .striped(true)
            .num_columns(5)
            .spacing([18.0, 6.0])
            .show(ui, |ui| {
                for title in ["Teams", "When", "Amber after", "Red after", ""] {
                    ui.strong(title);
                }
                ui.end_row();
                for (index, (team, key, limit)) in rows.iter().enumerate() {
                    let teams = team.as_deref().unwrap_or("Every team");
                    ui.label(teams);
                    let when = key_label(key, floor);
                    ui.label(&when);
                    let mut edited = *limit;
                    if editable {
                        let name = format!("{when}, {teams}");
                        seconds_field(ui, &mut edited.amber_secs, &format!("Amber after: {name}"));
                        seconds_field(ui, &mut edited.red_secs, &format!("Red after: {name}"));
                        if ui.button("Remove").clicked() {
                            removed = Some(index);
                        }
                    } else {
                        ui.label(model::duration_text(u64::from(limit.amber_secs) * 1000));
                        ui.label(model::duration_text(u64::from(limit.red_secs) * 1000));
                        ui.label("");
                    }
                    if edited != *limit {
                        changed.push((team.clone(), key.clone(), edited));
                    }
                    ui.end_row();
                }
            });
        for (team, key, limit) in changed {
            self.limits_of(team.as_deref()).insert(key, limit);
        }
        if let Some(index) = removed {
            let (team, key, _) = &rows[index];
            self.limits_of(team.as_deref()).remove(key);
            self.draft.teams.retain(|_, limits| !limits.is_empty());
        }
        ui.separator();
        ui.strong("Alerts on this computer when an agent goes red");
        egui::Grid::new("threshold-alerts")
            .num_columns(3)
            .spacing([18.0, 4.0])
            .show(ui, |ui| {
                let keys: std::collections::BTreeSet<&String> = (self.draft.default.keys())
                    .chain(self.draft.teams.values().flat_map(|limits| limits.keys()))
                    .collect();
                for key in keys {
                    let choice = alerts.entry(key.clone()).or_default();
                    ui.label(key_label(key, floor));
                    ui.checkbox(&mut choice.notify, "Notify")
                        .on_hover_text("An operating-system notification");
                    ui.checkbox(&mut choice.sound, "Sound")
                        .on_hover_text("With the system's notification sound");
                    ui.end_row();
                }
            });
        alerts.retain(|_, choice| choice.notify || choice.sound);
        if editable {
            ui.separator();
            self.add_row(ui, session, floor);
            ui.separator();
            let problem = self.draft.check().err();
            ui.horizontal(|ui| {
                let save = ui.add_enabled(problem.is_none(), egui::Button::new("Save"));
                if save.clicked() {
                    asked = Asked::Save(self.draft.clone());
                }
                if ui.button("Close").clicked() {
                    asked = Asked::Close;
                }
            });
            if let Some(problem) = problem {
                ui.label(RichText::new(format!("Cannot save: {problem}")).strong());
            }
            match &session.thresholds_saved {
                Some(Ok(())) if self.draft == session.thresholds => {
                    ui.label("Saved; every app colours by them within a minute.");
                }
                Some(Err(why)) => {
                    ui.label(RichText::new(format!("Not saved: {why}")).strong());
                }
                _ => {}
            }
        } else if ui.button("Close").clicked() {
            asked = Asked::Close;
        }
        asked
    }

    fn limits_of(&mut self, team: Option<&str>) -> &mut std::collections::BTreeMap<String, Limit> {
        match team {
            None => &mut self.draft.default,
            Some(team) => self.draft.teams.entry(team.to_owned()).or_default(),
        }
    }

    /// A row to add: every team or one, a state or a reason.
    fn add_row(&mut self, ui: &mut Ui, session: &Session, floor: &Floor) {
        ui.horizontal_wrapped(|ui| {
            let for_teams = ui.label("Add for").id;
            let team_text = self
                .new_team
                .clone()
                .unwrap_or_else(|| "Every team".to_owned());
            egui::ComboBox::from_id_salt("threshold-team")
                .selected_text(team_text)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.new_team, None, "Every team");
                    let mut teams: Vec<&str> = (session.teams.iter())
                        .map(|team| team.name.as_str())
                        .collect();
                    teams.sort_by(|a, b| monti_protocol::names::natural_cmp(a, b));
                    for team in teams {
                        ui.selectable_value(&mut self.new_team, Some(team.to_owned()), team);
                    }
                })
                .response
                .labelled_by(for_teams);
            let when = ui.label("when").id;
            egui::ComboBox::from_id_salt("threshold-key")
                .selected_text(key_label(&self.new_key, floor))
                .show_ui(ui, |ui| {
                    for kind in LIMITED {
                        let key = kind.name().to_owned();
                        let label = key_label(&key, floor);
                        ui.selectable_value(&mut self.new_key, key, label);
                    }
                    for reason in floor.reasons() {
                        let key = format!("{REASON_KEY_PREFIX}{}", reason.code);
                        let label = key_label(&key, floor);
                        ui.selectable_value(&mut self.new_key, key, label);
                    }
                })
                .response
                .labelled_by(when);
            if ui.button("Add").clicked() {
                let key = self.new_key.clone();
                let team = self.new_team.clone();
                let limits = self.limits_of(team.as_deref());
                limits.entry(key).or_insert(Limit {
                    amber_secs: 300,
                    red_secs: 600,
                });
            }
        });
    }
}

/// A key as a person reads it: `Wrap-up`, `Not ready: Lunch`.
pub fn key_label(key: &str, floor: &Floor) -> String {
    match ThresholdKey::parse(key) {
        Some(ThresholdKey::State(kind)) => model::state_label(kind).to_owned(),
        Some(ThresholdKey::Reason(code)) => {
            let label = (floor.reasons())
                .find(|reason| reason.code == code)
                .map_or(code.as_str(), |reason| reason.label.as_str());
            format!("{}: {label}", model::state_label(StateKind::NotReady))
        }
        None => key.to_owned(),
    }
}

/// A number of seconds edited as minutes and seconds; `name` for screen readers.
fn seconds_field(ui: &mut Ui, secs: &mut u32, name: &str) {
    let value = *secs;
    let response = ui.add(
        egui::DragValue::new(secs)
            .range(1..=86_400)
            .speed(5.0)
            .custom_formatter(|value, _| model::duration_text(value as u64 * 1000))
            .custom_parser(|text| {
                let mut parts = text.trim().rsplit(':');
                let seconds: f64 = parts.next()?.trim().parse().ok()?;
                let minutes: f64 = parts.next().map_or(Some(0.0), |m| m.trim().parse().ok())?;
                let hours: f64 = parts.next().map_or(Some(0.0), |h| h.trim().parse().ok())?;
                Some(hours * 3600.0 + minutes * 60.0 + seconds)
            }),
    );
    response.widget_info(|| egui::WidgetInfo::slider(true, f64::from(value), name));
}
