//! The agent panel: one agent's day, from the server's stored history and kept live from the
//! stream. A click (or Enter) on a tile, a table row or an attention entry opens it.
//!
//! The day is a plain function of the state changes ([`day`]), tested without a window; the
//! panel reads the history once when it opens and adds every change it sees on the floor
//! afterwards, so that it stays current without asking the server again.

use chrono::{Local, TimeZone};
use egui::{Align2, Color32, FontId, Rect, RichText, Sense, Ui, Vec2};
use monti_protocol::floor::Floor;
use monti_protocol::ingest::{ContactLegJson, HistoryEntryJson};
use monti_protocol::model::{AgentId, AgentStatus, StateKind};

use crate::model;
use crate::net::{ContactsWanted, HistoryWanted, Session};
use crate::style;

/// One state change: what the agent did from when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The state.
    pub kind: StateKind,
    /// The not-ready reason's label, if any.
    pub reason: Option<String>,
    /// When it began, server ms since the epoch.
    pub since_ms: u64,
}

/// A stretch of the day in one state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// The state.
    pub kind: StateKind,
    /// The not-ready reason's label, if any.
    pub reason: Option<String>,
    /// From (clipped to the day's start).
    pub from_ms: u64,
    /// To (the next change, or now).
    pub to_ms: u64,
}

impl Segment {
    /// The state as a person reads it: `Not ready (Lunch)`.
    pub fn label(&self) -> String {
        match &self.reason {
            Some(reason) => format!("{} ({reason})", model::state_label(self.kind)),
            None => model::state_label(self.kind).to_owned(),
        }
    }
}

/// An agent's day so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Day {
    /// The day's stretches in time order, none before the day's start.
    pub segments: Vec<Segment>,
    /// When the agent first came online today (their first state other than offline that
    /// reaches into today; it may have begun before midnight).
    pub login_ms: Option<u64>,
    /// Time in each state today, ms, indexed by [`StateKind::index`].
    pub per_state_ms: [u64; StateKind::COUNT],
    /// Time not ready today per reason (label; "No reason" for none), longest first.
    pub per_reason_ms: Vec<(String, u64)>,
}

/// The day from `day_start_ms` to `now_ms` made of `changes` (in any order, repeats allowed:
/// a change equal to the one before it continues it).
pub fn day(changes: impl IntoIterator<Item = Change>, day_start_ms: u64, now_ms: u64) -> Day {
    let mut changes: Vec<Change> = changes
        .into_iter()
        .filter(|change| change.since_ms <= now_ms)
        .collect();
    changes.sort_by_key(|change| change.since_ms);
    changes.dedup_by(|later, earlier| later.kind == earlier.kind && later.reason == earlier.reason);
    let mut result = Day::default();
    let mut reasons: Vec<(String, u64)> = Vec::new();
    for (index, change) in changes.iter().enumerate() {
        let end = changes.get(index + 1).map_or(now_ms, |next| next.since_ms);
        if end <= day_start_ms {
            continue;
        }
        let from = change.since_ms.max(day_start_ms);
        if change.kind != StateKind::Offline && result.login_ms.is_none() {
            result.login_ms = Some(change.since_ms);
        }
        let length = end - from;
        result.per_state_ms[change.kind.index()] += length;
        if change.kind == StateKind::NotReady {
            let reason = change
                .reason
                .clone()
                .unwrap_or_else(|| "No reason".to_owned());
            match reasons.iter_mut().find(|(name, _)| *name == reason) {
                Some((_, total)) => *total += length,
                None => reasons.push((reason, length)),
            }
        }
        result.segments.push(Segment {
            kind: change.kind,
            reason: change.reason.clone(),
            from_ms: from,
            to_ms: end,
        });
    }
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    result.per_reason_ms = reasons;
    result
}

/// The stored entries as changes; reason codes become the floor's labels.
pub fn changes_of(entries: &[HistoryEntryJson], floor: &Floor) -> Vec<Change> {
    entries
        .iter()
        .filter_map(|entry| {
            Some(Change {
                kind: StateKind::from_name(&entry.state)?,
                reason: entry.reason.as_ref().map(|code| {
                    (floor.reasons())
                        .find(|reason| &reason.code == code)
                        .map_or_else(|| code.clone(), |reason| reason.label.clone())
                }),
                since_ms: u64::try_from(entry.since_ms).ok()?,
            })
        })
        .collect()
}

/// An agent's live state on the floor as a change.
fn live_change(floor: &Floor, agent: AgentId) -> Option<Change> {
    let live = floor.agent(agent)?.live?;
    Some(Change {
        kind: live.status.kind(),
        reason: reason_label(floor, live.status),
        since_ms: live.since_ms,
    })
}

fn reason_label(floor: &Floor, status: AgentStatus) -> Option<String> {
    let reason = floor.reason(status.reason()?)?;
    Some(reason.label.clone())
}

/// Local midnight of the day `now_ms` falls in, ms since the epoch.
pub fn local_midnight(now_ms: u64) -> u64 {
    let Some(now) = Local.timestamp_millis_opt(now_ms as i64).single() else {
        return now_ms;
    };
    let midnight = now.date_naive().and_hms_opt(0, 0, 0).unwrap_or_default();
    match Local.from_local_datetime(&midnight).earliest() {
        Some(midnight) => midnight.timestamp_millis().max(0) as u64,
        None => now_ms - now_ms % 86_400_000,
    }
}

/// A clock time in this computer's zone: `14:32`.
pub fn clock_text(ms: u64) -> String {
    Local
        .timestamp_millis_opt(ms as i64)
        .single()
        .map_or_else(String::new, |time| time.format("%H:%M").to_string())
}

/// The open agent panel.
#[derive(Clone, Debug)]
pub struct AgentPanel {
    /// Whose.
    pub agent: AgentId,
    /// The history asked for.
    pub wanted: HistoryWanted,
    /// Changes seen on the floor since it opened.
    seen: Vec<Change>,
    /// The contacts asked for, once the history has named the agent's external id.
    contacts: Option<ContactsWanted>,
}

/// How many of the agent's contacts the panel lists.
const LAST_CONTACTS: usize = 10;

/// One contact in the panel: `14:02 Billing Voice answered, 4:12 talking`.
pub fn contact_text(leg: &ContactLegJson, now_ms: u64) -> String {
    let at = leg.offered_ms.unwrap_or(leg.queued_ms);
    let talk = leg.connected_ms.map(|connected| {
        let until = leg.ended_ms.unwrap_or(now_ms);
        model::duration_text(until.saturating_sub(connected))
    });
    match talk {
        Some(talk) => format!(
            "{} {} {}, {talk} talking",
            clock_text(at),
            leg.queue,
            leg.outcome
        ),
        None => format!("{} {} {}", clock_text(at), leg.queue, leg.outcome),
    }
}

impl AgentPanel {
    /// The panel of `agent` as of `now_ms`, and the history to ask the server for (from the
    /// day before, so that the state the agent was in at midnight is known).
    pub fn open(floor: &Floor, agent: AgentId, now_ms: u64) -> Option<AgentPanel> {
        let info = &floor.agent(agent)?.info;
        let wanted = HistoryWanted {
            name: info.name.clone(),
            team: floor.team(info.team)?.name.clone(),
            site: floor.site(info.site)?.name.clone(),
            from_ms: local_midnight(now_ms).saturating_sub(86_400_000),
        };
        Some(AgentPanel {
            agent,
            wanted,
            seen: live_change(floor, agent).into_iter().collect(),
            contacts: None,
        })
    }

    /// The contacts to ask the server for, once: the history names the agent's external id.
    pub fn contacts_to_ask(&mut self, session: &Session, now_ms: u64) -> Option<ContactsWanted> {
        let history = (session.history.as_ref()).filter(|history| history.wanted == self.wanted)?;
        let agent = history.entries.as_ref().ok()?.first()?.agent.clone();
        let wanted = ContactsWanted {
            agent,
            from_ms: local_midnight(now_ms),
        };
        if self.contacts.as_ref() == Some(&wanted) {
            return None;
        }
        self.contacts = Some(wanted.clone());
        Some(wanted)
    }

    /// The agent's last contacts today, newest first.
    fn last_contacts(&self, ui: &mut Ui, session: &Session, now_ms: u64) {
        let Some(asked) = &self.contacts else { return };
        ui.add_space(6.0);
        ui.strong("Last contacts");
        let answer = (session.contacts.as_ref()).filter(|contacts| &contacts.wanted == asked);
        match answer.map(|contacts| &contacts.legs) {
            None => _ = ui.label("Reading today's contacts…"),
            Some(Err(why)) => _ = ui.label(format!("Contacts not available: {why}")),
            Some(Ok(legs)) if legs.is_empty() => _ = ui.label("No contacts today"),
            Some(Ok(legs)) => {
                for leg in legs.iter().rev().take(LAST_CONTACTS) {
                    ui.label(contact_text(leg, now_ms));
                }
            }
        }
    }

    /// Draws the panel; false when the person closed it.
    pub fn show(&mut self, ui: &mut Ui, floor: &Floor, session: &Session, now_ms: u64) -> bool {
        if let Some(change) = live_change(floor, self.agent)
            && self.seen.last() != Some(&change)
        {
            self.seen.push(change);
        }
        let mut open = true;
        ui.horizontal(|ui| {
            ui.heading(&self.wanted.name);
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if ui.button("Close").on_hover_text("Esc").clicked() {
                    open = false;
                }
            });
        });
        ui.label(format!("{} · {}", self.wanted.team, self.wanted.site));
        if let Some(now) = self.seen.last() {
            ui.horizontal_wrapped(|ui| {
                ui.label(
                    RichText::new(format!(
                        "{} {}",
                        model::state_mark(now.kind),
                        model::state_label(now.kind)
                    ))
                    .color(Color32::WHITE)
                    .background_color(style::state_colour(now.kind))
                    .strong(),
                );
                if let Some(reason) = &now.reason {
                    ui.label(RichText::new(reason).strong());
                }
                ui.label(format!(
                    "since {} ({})",
                    clock_text(now.since_ms),
                    model::duration_text(now_ms.saturating_sub(now.since_ms))
                ));
            });
        }
        ui.separator();
        let history = session
            .history
            .as_ref()
            .filter(|history| history.wanted == self.wanted);
        let stored = match history.map(|history| &history.entries) {
            None => {
                ui.label("Reading today's history…");
                Vec::new()
            }
            Some(Err(why)) => {
                ui.label(
                    RichText::new(format!("History not available: {why}")).color(
                        style::level_colour(crate::model::Level::Red, ui.visuals().dark_mode)
                            .unwrap_or(Color32::RED),
                    ),
                );
                Vec::new()
            }
            Some(Ok(entries)) => changes_of(entries, floor),
        };
        let day_start = local_midnight(now_ms);
        let day = day(
            stored.into_iter().chain(self.seen.iter().cloned()),
            day_start,
            now_ms,
        );
        match day.login_ms {
            Some(at) => ui.label(format!("Logged in at {}", clock_text(at))),
            None => ui.label("Not logged in today"),
        };
        timeline(ui, &day, now_ms);
        ui.add_space(6.0);
        ui.strong("Today");
        egui::Grid::new("agent-per-state")
            .num_columns(2)
            .spacing([16.0, 4.0])
            .show(ui, |ui| {
                for kind in StateKind::ALL {
                    let ms = day.per_state_ms[kind.index()];
                    if ms == 0 {
                        continue;
                    }
                    ui.label(format!(
                        "{} {}",
                        model::state_mark(kind),
                        model::state_label(kind)
                    ));
                    ui.label(RichText::new(model::duration_text(ms)).monospace());
                    ui.end_row();
                }
                for (reason, ms) in &day.per_reason_ms {
                    ui.label(format!("    {reason}"));
                    ui.label(RichText::new(model::duration_text(*ms)).monospace());
                    ui.end_row();
                }
            });
        self.last_contacts(ui, session, now_ms);
        ui.add_space(6.0);
        ui.strong("Changes today");
        egui::ScrollArea::vertical()
            .id_salt("agent-changes")
            .auto_shrink([false, true])
            .show(ui, |ui| {
                for segment in day.segments.iter().rev() {
                    ui.horizontal(|ui| {
                        ui.label(RichText::new(clock_text(segment.from_ms)).monospace());
                        ui.label(segment.label());
                        ui.label(RichText::new(model::duration_text(
                            segment.to_ms - segment.from_ms,
                        )));
                    });
                }
            });
        open
    }
}

/// The day as one coloured bar, a stretch per state, with the time under the pointer named.
fn timeline(ui: &mut Ui, day: &Day, now_ms: u64) {
    let width = ui.available_width().max(120.0);
    let (rect, response) = ui.allocate_exact_size(Vec2::new(width, 40.0), Sense::hover());
    let bar = Rect::from_min_size(rect.min, Vec2::new(width, 24.0));
    let start = day
        .segments
        .first()
        .map_or(now_ms, |segment| segment.from_ms);
    let span = now_ms.saturating_sub(start).max(1) as f32;
    let x = |ms: u64| bar.left() + (ms.saturating_sub(start)) as f32 / span * bar.width();
    let painter = ui.painter();
    painter.rect_filled(bar, 3.0, ui.visuals().extreme_bg_color);
    for segment in &day.segments {
        let stretch = Rect::from_x_y_ranges(x(segment.from_ms)..=x(segment.to_ms), bar.y_range());
        painter.rect_filled(stretch, 0.0, style::state_colour(segment.kind));
    }
    let ink = ui.visuals().text_color();
    for (ms, align) in [(start, Align2::LEFT_TOP), (now_ms, Align2::RIGHT_TOP)] {
        painter.text(
            egui::pos2(x(ms), bar.bottom() + 2.0),
            align,
            clock_text(ms),
            FontId::proportional(12.0),
            ink,
        );
    }
    let summary = format!(
        "Timeline of today: {} since {}",
        model::plural(day.segments.len() as u64, "change"),
        clock_text(start)
    );
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &summary));
    if let Some(pointer) = response.hover_pos() {
        let at = start + ((pointer.x - bar.left()) / bar.width() * span).max(0.0) as u64;
        if let Some(segment) = (day.segments.iter()).find(|s| s.from_ms <= at && at < s.to_ms) {
            response.on_hover_text_at_pointer(format!(
                "{} {}–{} ({})",
                segment.label(),
                clock_text(segment.from_ms),
                clock_text(segment.to_ms),
                model::duration_text(segment.to_ms - segment.from_ms)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: u64 = 60_000;
    const START: u64 = 1_800_000_000_000;

    fn change(kind: StateKind, reason: Option<&str>, minute: u64) -> Change {
        Change {
            kind,
            reason: reason.map(str::to_owned),
            since_ms: START + minute * MINUTE,
        }
    }

    #[test]
    fn a_day_adds_up_its_states_and_reasons_from_the_first_login() {
        use StateKind::*;
        let changes = vec![
            // Yesterday evening's logout reaches into the day: offline until 60.
            Change {
                kind: Offline,
                reason: None,
                since_ms: START - 30 * MINUTE,
            },
            change(Available, None, 60),
            change(OnCall, None, 70),
            change(NotReady, Some("Lunch"), 100),
            change(NotReady, Some("Lunch"), 110), // a repeat continues it
            change(NotReady, Some("Break"), 130),
            change(Available, None, 140),
            change(NotReady, None, 150),
            change(OnCall, None, 155),
        ];
        let mut shuffled = changes.clone();
        shuffled.reverse();
        let day = day(shuffled, START, START + 170 * MINUTE);
        assert_eq!(day.login_ms, Some(START + 60 * MINUTE));
        let kinds: Vec<StateKind> = day.segments.iter().map(|s| s.kind).collect();
        assert_eq!(
            kinds,
            [
                Offline, Available, OnCall, NotReady, NotReady, Available, NotReady, OnCall
            ]
        );
        assert_eq!(day.segments[0].from_ms, START, "clipped to the day's start");
        assert_eq!(day.per_state_ms[Offline.index()], 60 * MINUTE);
        assert_eq!(day.per_state_ms[Available.index()], 20 * MINUTE);
        assert_eq!(day.per_state_ms[OnCall.index()], 45 * MINUTE);
        assert_eq!(day.per_state_ms[NotReady.index()], 45 * MINUTE);
        assert_eq!(
            day.per_reason_ms,
            [
                ("Lunch".to_owned(), 30 * MINUTE),
                ("Break".to_owned(), 10 * MINUTE),
                ("No reason".to_owned(), 5 * MINUTE),
            ]
        );
        // Every minute of the day is in exactly one stretch.
        let total: u64 = day.per_state_ms.iter().sum();
        assert_eq!(total, 170 * MINUTE);
        assert!(day.segments.windows(2).all(|w| w[0].to_ms == w[1].from_ms));
    }

    #[test]
    fn an_agent_online_since_yesterday_logged_in_then_and_one_never_online_did_not() {
        let since_yesterday = day(
            [change(StateKind::OnCall, None, 0)],
            START + 30 * MINUTE,
            START + 40 * MINUTE,
        );
        assert_eq!(since_yesterday.login_ms, Some(START));
        assert_eq!(
            since_yesterday.per_state_ms[StateKind::OnCall.index()],
            10 * MINUTE
        );
        let away = day([change(StateKind::Offline, None, 0)], START, START + MINUTE);
        assert_eq!(away.login_ms, None);
        // A change before yesterday's end that was followed by another is not today's.
        let gone = day(
            [
                change(StateKind::Available, None, 0),
                change(StateKind::Offline, None, 5),
            ],
            START + 10 * MINUTE,
            START + 20 * MINUTE,
        );
        assert_eq!(gone.login_ms, None);
        assert_eq!(gone.segments.len(), 1);
    }
}
