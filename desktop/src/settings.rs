//! What the app remembers between runs (eframe storage): the server, the view, the filters, the
//! sort order, the theme and the text size.
//!
//! Filters hold team and site *names*, not ids: ids are dense numbers the server hands out, and a
//! name still means the same team after the server restarts.

use std::collections::{BTreeMap, BTreeSet};

use monti_protocol::model::{StateKind, StateSet};
use serde::{Deserialize, Serialize};

/// The server the app talks to when nothing else is said: the embedded default's address.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// The key under which eframe stores [`Settings`].
pub const STORAGE_KEY: &str = "monti-desktop";

/// Everything the app keeps between runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The server's URL, `http(s)://host:port`.
    pub server: String,
    /// The view last shown.
    pub view: ViewKind,
    /// Which teams, sites and states are shown.
    pub filter: Filter,
    /// How agents are ordered.
    pub sort: Sort,
    /// Dark or light.
    pub theme: Theme,
    /// Text and layout size (Ctrl +/-).
    pub zoom: f32,
    /// Whether the attention list (agents over threshold) is shown beside the view.
    pub show_attention: bool,
    /// Whether the app starts as a wallboard (`--kiosk` sets it, `--desktop` clears it).
    pub kiosk: bool,
    /// The wallboard's name, whose configuration the server keeps.
    pub wallboard: String,
    /// A CA certificate file (PEM) trusted beside the system's store; empty for none.
    pub ca_file: String,
    /// A proxy for every connection, `http://[user:password@]host:port`; empty for the
    /// environment's and the system's settings.
    pub proxy: String,
    /// Each queue's thresholds, by queue name; a queue not listed has the defaults.
    pub queue_thresholds: BTreeMap<String, QueueThresholds>,
    /// Which queue thresholds raise an operating-system notification (none by default).
    pub notify: QueueNotify,
    /// How the Summary view groups and orders.
    pub summary: SummaryView,
    /// How an agent going red on a threshold alerts on this computer, per threshold key (a
    /// state name or `not_ready:<code>`); none by default.
    pub alerts: BTreeMap<String, AlertChoice>,
    /// Alerts are muted until then (local ms since the epoch; 0: not muted).
    pub muted_until_ms: u64,
    /// Named views the person saved, in the order saved.
    pub views: Vec<SavedView>,
    /// The saved view the app starts with, by name.
    pub default_view: Option<String>,
    /// The Trend view's period.
    pub trend: TrendSpan,
    /// The Agents table's columns, in order (the name always comes first).
    pub columns: Columns,
}

/// A column of the Agents table that can be shown or hidden.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TableColumn {
    /// The agent's team.
    Team,
    /// The agent's site.
    Site,
    /// The state.
    State,
    /// The not-ready reason.
    Reason,
    /// The clock time the state began.
    Since,
    /// The time in the state.
    Time,
}

impl TableColumn {
    /// Every column, in the table's order.
    pub const ALL: [TableColumn; 6] = [
        TableColumn::Team,
        TableColumn::Site,
        TableColumn::State,
        TableColumn::Reason,
        TableColumn::Since,
        TableColumn::Time,
    ];

    /// The header.
    pub fn label(self) -> &'static str {
        match self {
            TableColumn::Team => "Team",
            TableColumn::Site => "Site",
            TableColumn::State => "State",
            TableColumn::Reason => "Reason",
            TableColumn::Since => "Since",
            TableColumn::Time => "Time in state",
        }
    }

    /// What a click on the header orders by.
    pub fn sort_key(self) -> SortKey {
        match self {
            TableColumn::Team => SortKey::Team,
            TableColumn::Site => SortKey::Site,
            TableColumn::State => SortKey::State,
            TableColumn::Reason => SortKey::Reason,
            TableColumn::Since | TableColumn::Time => SortKey::TimeInState,
        }
    }
}

/// The Agents table's columns after the name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Columns(pub BTreeSet<TableColumn>);

impl Default for Columns {
    fn default() -> Self {
        Columns(
            (TableColumn::ALL.into_iter())
                .filter(|column| *column != TableColumn::Since)
                .collect(),
        )
    }
}

impl Columns {
    /// The shown columns, in the table's order.
    pub fn shown(&self) -> impl Iterator<Item = TableColumn> + '_ {
        TableColumn::ALL
            .into_iter()
            .filter(|column| self.0.contains(column))
    }
}

/// How far back the Trend view looks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TrendSpan {
    /// The last 30 minutes, point by point every 10 seconds.
    HalfHour,
    /// The last 2 hours, by the minute.
    #[default]
    TwoHours,
    /// The last 8 hours (a shift), every 2 minutes.
    Shift,
}

impl TrendSpan {
    /// Every span, in the order of the switcher.
    pub const ALL: [TrendSpan; 3] = [TrendSpan::HalfHour, TrendSpan::TwoHours, TrendSpan::Shift];

    /// The switcher's label.
    pub fn label(self) -> &'static str {
        match self {
            TrendSpan::HalfHour => "30 min",
            TrendSpan::TwoHours => "2 hours",
            TrendSpan::Shift => "8 hours",
        }
    }

    /// How long, ms.
    pub fn ms(self) -> u64 {
        match self {
            TrendSpan::HalfHour => 30 * 60_000,
            TrendSpan::TwoHours => 2 * 3_600_000,
            TrendSpan::Shift => 8 * 3_600_000,
        }
    }

    /// The time between points, ms: 180 to 240 points, never finer than the server gives.
    pub fn step_ms(self) -> u64 {
        match self {
            TrendSpan::HalfHour => 10_000,
            TrendSpan::TwoHours => 60_000,
            TrendSpan::Shift => 120_000,
        }
    }
}

/// A named way of looking at the floor: filters, view, order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedView {
    /// What the person called it.
    pub name: String,
    /// Teams, sites, states, reasons, queue.
    pub filter: Filter,
    /// Which view.
    pub view: ViewKind,
    /// The agents' order.
    pub sort: Sort,
    /// The Summary view's grouping and order.
    #[serde(default)]
    pub summary: SummaryView,
    /// The Trend view's period.
    #[serde(default)]
    pub trend: TrendSpan,
    /// The Agents table's columns.
    #[serde(default)]
    pub columns: Columns,
}

impl Settings {
    /// Saves what is shown now as `name` (replacing a view of that name).
    pub fn save_view(&mut self, name: &str) {
        let view = SavedView {
            name: name.trim().to_owned(),
            filter: self.filter.clone(),
            view: self.view,
            sort: self.sort,
            summary: self.summary,
            trend: self.trend,
            columns: self.columns.clone(),
        };
        match self.views.iter_mut().find(|saved| saved.name == view.name) {
            Some(saved) => *saved = view,
            None => self.views.push(view),
        }
    }

    /// Shows the saved view `name`; false when there is none.
    pub fn apply_view(&mut self, name: &str) -> bool {
        let Some(view) = self.views.iter().find(|saved| saved.name == name).cloned() else {
            return false;
        };
        self.filter = view.filter;
        self.view = view.view;
        self.sort = view.sort;
        self.summary = view.summary;
        self.trend = view.trend;
        self.columns = view.columns;
        true
    }

    /// Forgets the saved view `name` (and that it was the default).
    pub fn delete_view(&mut self, name: &str) {
        self.views.retain(|saved| saved.name != name);
        if self.default_view.as_deref() == Some(name) {
            self.default_view = None;
        }
    }
}

/// How one threshold alerts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertChoice {
    /// An operating-system notification.
    pub notify: bool,
    /// With the system's notification sound.
    pub sound: bool,
}

/// When a queue needs attention. A queue not configured has [`QueueThresholds::default`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct QueueThresholds {
    /// More contacts waiting than this (amber); `None`: never.
    pub waiting_above: Option<u32>,
    /// A contact waiting longer than this, seconds (red); `None`: the queue's service-level
    /// target (a contact waiting longer is already a miss).
    pub oldest_above_secs: Option<u32>,
    /// Whether today's service level below the queue's goal needs attention (amber).
    pub below_goal: bool,
}

impl Default for QueueThresholds {
    fn default() -> Self {
        QueueThresholds {
            waiting_above: Some(5),
            oldest_above_secs: None,
            below_goal: true,
        }
    }
}

/// Which queue thresholds raise an operating-system notification when a queue crosses them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct QueueNotify {
    /// More contacts waiting than the queue's threshold.
    pub waiting: bool,
    /// A contact waiting longer than the queue's threshold.
    pub oldest: bool,
    /// Service level below the queue's goal.
    pub service_level: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            server: DEFAULT_SERVER.to_owned(),
            view: ViewKind::Teams,
            filter: Filter::default(),
            sort: Sort::default(),
            theme: Theme::Dark,
            zoom: 1.0,
            show_attention: true,
            kiosk: false,
            wallboard: "default".to_owned(),
            ca_file: String::new(),
            proxy: String::new(),
            queue_thresholds: BTreeMap::new(),
            notify: QueueNotify::default(),
            summary: SummaryView::default(),
            alerts: BTreeMap::new(),
            muted_until_ms: 0,
            views: Vec::new(),
            default_view: None,
            trend: TrendSpan::default(),
            columns: Columns::default(),
        }
    }
}

impl Settings {
    /// How to reach the server, from the CA file and proxy fields.
    pub fn transport(&self) -> monti_client::TransportOptions {
        let set = |text: &str| Some(text.trim().to_owned()).filter(|text| !text.is_empty());
        monti_client::TransportOptions {
            ca_file: set(&self.ca_file).map(std::path::PathBuf::from),
            proxy: set(&self.proxy),
        }
    }
}

/// The four ways of looking at the floor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ViewKind {
    /// A card per team with its agents as tiles.
    Teams,
    /// A card per site with its agents as tiles.
    Sites,
    /// Teams by sites with counts per state.
    Matrix,
    /// A sortable table of agents.
    Agents,
    /// A card per queue: waiting, oldest wait, service level, answered and abandoned.
    Queues,
    /// Totals per site, team or team and site: counts and longest times per state.
    Summary,
    /// Agents per state over the last hours, stacked.
    Trend,
}

impl ViewKind {
    /// Every view, in the order of the switcher.
    pub const ALL: [ViewKind; 7] = [
        ViewKind::Queues,
        ViewKind::Summary,
        ViewKind::Trend,
        ViewKind::Teams,
        ViewKind::Sites,
        ViewKind::Matrix,
        ViewKind::Agents,
    ];

    /// Parses a label, ignoring case (for `--view`).
    pub fn from_name(name: &str) -> Option<ViewKind> {
        ViewKind::ALL
            .into_iter()
            .find(|kind| kind.label().eq_ignore_ascii_case(name))
    }

    /// The switcher's label.
    pub fn label(self) -> &'static str {
        match self {
            ViewKind::Teams => "Teams",
            ViewKind::Sites => "Sites",
            ViewKind::Matrix => "Matrix",
            ViewKind::Agents => "Agents",
            ViewKind::Queues => "Queues",
            ViewKind::Summary => "Summary",
            ViewKind::Trend => "Trend",
        }
    }
}

/// Which part of the floor is shown. Empty team or site sets mean all of them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Filter {
    /// Only these teams (by name); empty: every team.
    pub teams: BTreeSet<String>,
    /// Only these sites (by name); empty: every site.
    pub sites: BTreeSet<String>,
    /// Only agents in these states.
    #[serde(with = "state_names")]
    pub states: StateSet,
    /// Only agents of the teams that serve this queue (by name).
    pub queue: Option<String>,
    /// Only agents not ready for one of these reasons (by label); empty: any state's agents.
    pub reasons: BTreeSet<String>,
}

impl Filter {
    /// Whether nothing is filtered out.
    pub fn is_empty(&self) -> bool {
        self.teams.is_empty()
            && self.sites.is_empty()
            && self.states.is_all()
            && self.queue.is_none()
            && self.reasons.is_empty()
    }
}

/// States stored by name, so that the file stays readable and survives a reordering.
mod state_names {
    use super::*;

    pub fn serialize<S: serde::Serializer>(states: &StateSet, s: S) -> Result<S::Ok, S::Error> {
        let names: Vec<&str> = StateKind::ALL
            .into_iter()
            .filter(|kind| states.contains(*kind))
            .map(StateKind::name)
            .collect();
        names.serialize(s)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<StateSet, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        // Unknown names (from a newer version) are dropped rather than failing the whole file.
        Ok(StateSet::of(
            names.iter().filter_map(|name| StateKind::from_name(name)),
        ))
    }
}

/// What agents are ordered by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SortKey {
    /// Agent name.
    #[default]
    Name,
    /// State, in the order of [`StateKind::ALL`].
    State,
    /// Time in the current state.
    TimeInState,
    /// Team name, then agent name.
    Team,
    /// Site name, then agent name.
    Site,
    /// Not-ready reason (agents without one last), then the longest in their state first.
    Reason,
}

impl SortKey {
    /// Every key, in the order of the sort menu.
    pub const ALL: [SortKey; 6] = [
        SortKey::Name,
        SortKey::Team,
        SortKey::Site,
        SortKey::State,
        SortKey::Reason,
        SortKey::TimeInState,
    ];

    /// The menu's label.
    pub fn label(self) -> &'static str {
        match self {
            SortKey::Name => "Name",
            SortKey::State => "State",
            SortKey::TimeInState => "Time in state",
            SortKey::Team => "Team",
            SortKey::Site => "Site",
            SortKey::Reason => "Reason",
        }
    }

    /// The order a first click on the key asks for: times longest first, names A to Z.
    pub fn first(self) -> Sort {
        Sort {
            key: self,
            descending: self == SortKey::TimeInState,
        }
    }
}

/// An order of agents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Sort {
    /// By what.
    pub key: SortKey,
    /// Largest first (for time in state: longest first).
    pub descending: bool,
}

/// What the Summary view's rows are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SummaryBy {
    /// One row per site.
    #[default]
    Sites,
    /// One row per team.
    Teams,
    /// One row per team at each of its sites.
    TeamsBySites,
}

impl SummaryBy {
    /// Every grouping, in the order of the switcher.
    pub const ALL: [SummaryBy; 3] = [SummaryBy::Sites, SummaryBy::Teams, SummaryBy::TeamsBySites];

    /// The switcher's label.
    pub fn label(self) -> &'static str {
        match self {
            SummaryBy::Sites => "By site",
            SummaryBy::Teams => "By team",
            SummaryBy::TeamsBySites => "By team and site",
        }
    }
}

/// A column of the Summary view to order by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SummaryKey {
    /// The site's or team's name.
    #[default]
    Name,
    /// How many agents it has shown.
    Total,
    /// How many are in a state.
    Count(StateKind),
    /// How long the longest in a state has been in it.
    Longest(StateKind),
}

/// How the Summary view groups and orders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct SummaryView {
    /// Rows per site, team or both.
    pub by: SummaryBy,
    /// Ordered by.
    pub key: SummaryKey,
    /// Largest (or longest) first.
    pub descending: bool,
}

impl SummaryView {
    /// The order after a click on a state's column: the end that needs a manager first (the
    /// fewest available, the most in any other state), then the other end, then the longest in
    /// it first; on the name, A to Z then Z to A; on the total, most first.
    pub fn clicked(self, column: SummaryKey) -> SummaryView {
        let worst_first = |kind: StateKind| kind != StateKind::Available;
        let (key, descending) = match (column, self.key, self.descending) {
            (SummaryKey::Count(kind), SummaryKey::Count(now), descending)
                if kind == now && descending == worst_first(kind) =>
            {
                (SummaryKey::Count(kind), !descending)
            }
            (SummaryKey::Count(kind), SummaryKey::Count(now), _) if kind == now => {
                (SummaryKey::Longest(kind), true)
            }
            (SummaryKey::Count(kind), _, _) => (SummaryKey::Count(kind), worst_first(kind)),
            (SummaryKey::Name, SummaryKey::Name, descending) => (SummaryKey::Name, !descending),
            (SummaryKey::Total, SummaryKey::Total, descending) => (SummaryKey::Total, !descending),
            (SummaryKey::Name, _, _) => (SummaryKey::Name, false),
            (column, _, _) => (column, true),
        };
        SummaryView {
            key,
            descending,
            ..self
        }
    }
}

/// The colour scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Theme {
    /// Light text on dark; the default for a control room.
    Dark,
    /// Dark text on light.
    Light,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_survive_a_round_trip_and_unknown_or_missing_fields() {
        let mut settings = Settings::default();
        settings.filter.teams.insert("Sales 1".to_owned());
        settings.filter.states = StateSet::of([StateKind::NotReady, StateKind::WrapUp]);
        settings.sort = Sort {
            key: SortKey::TimeInState,
            descending: true,
        };
        let text = serde_json::to_string(&settings).expect("serialises");
        assert!(text.contains("\"not_ready\""), "{text}");
        let back: Settings = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, settings);

        let partial: Settings = serde_json::from_str(
            r#"{"server":"http://floor:8080","filter":{"states":["on_call","dancing"]}}"#,
        )
        .expect("parses");
        assert_eq!(partial.server, "http://floor:8080");
        assert_eq!(partial.view, ViewKind::Teams);
        assert_eq!(partial.filter.states, StateSet::of([StateKind::OnCall]));
    }

    #[test]
    fn views_are_saved_applied_replaced_and_deleted_by_name() {
        let mut settings = Settings::default();
        settings.filter.teams.insert("Billing 2".to_owned());
        settings.view = ViewKind::Summary;
        settings.save_view(" My teams ");
        settings.filter = Filter::default();
        settings.view = ViewKind::Teams;
        settings.save_view("Everyone");
        assert!(settings.apply_view("My teams"));
        assert_eq!(settings.view, ViewKind::Summary);
        assert!(settings.filter.teams.contains("Billing 2"));
        // The same name again replaces it.
        settings.view = ViewKind::Matrix;
        settings.save_view("My teams");
        assert_eq!(settings.views.len(), 2);
        settings.default_view = Some("My teams".to_owned());
        let text = serde_json::to_string(&settings).expect("serialises");
        let back: Settings = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, settings);
        settings.delete_view("My teams");
        assert_eq!(settings.default_view, None);
        assert!(!settings.apply_view("My teams"));
        assert_eq!(settings.views.len(), 1);
    }
}
