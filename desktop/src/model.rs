//! What the screen shows, computed from the floor without any UI: the agents that pass the
//! filters and the search, in order; cards per team or site; the matrix; counts per state; the
//! thresholds; and the attention list.
//!
//! Everything here is a plain function of the floor and the settings, so it is tested without a
//! window, and the UI only lays out what it is given. The expensive part, [`Selection::compute`],
//! runs only when the floor's sequence number or the settings change (see `app`).

use std::collections::BTreeMap;

use monti_protocol::floor::Floor;
use monti_protocol::model::{AgentId, AgentInfo, AgentStatus, ReasonId, SiteId, StateKind, TeamId};
use monti_protocol::names::natural_cmp;
use monti_protocol::rest::{Limit, REASON_KEY_PREFIX, ThresholdKey, Thresholds};

use crate::settings::{AlertChoice, Filter, Sort, SortKey, SummaryBy, SummaryKey, SummaryView};

/// One agent as shown: a copy of what the floor says, small enough to sort by the thousand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row {
    /// Who.
    pub id: AgentId,
    /// Their team.
    pub team: TeamId,
    /// Their site.
    pub site: SiteId,
    /// Their state.
    pub status: AgentStatus,
    /// When the state began (server clock, ms since the epoch).
    pub since_ms: u64,
}

/// The filter with names resolved to the floor's ids: a lookup table per id.
struct Resolved {
    teams: Option<Vec<bool>>,
    sites: Option<Vec<bool>>,
    reasons: Option<Vec<bool>>,
}

impl Resolved {
    fn new(floor: &Floor, filter: &Filter) -> Resolved {
        let mut teams = (!filter.teams.is_empty()).then(|| {
            let mut allowed = vec![false; usize::from(u16::MAX) + 1];
            for team in floor
                .teams()
                .filter(|team| filter.teams.contains(&team.name))
            {
                allowed[usize::from(team.id.0)] = true;
            }
            allowed
        });
        // A queue narrows the teams to those that serve it (a queue the floor does not list
        // yet narrows nothing, like a name the server has not listed yet).
        let queue = (filter.queue.as_ref())
            .and_then(|name| floor.queues().find(|queue| &queue.info.name == name));
        if let Some(queue) = queue {
            let mut serving = vec![false; usize::from(u16::MAX) + 1];
            for team in &queue.info.teams {
                serving[usize::from(team.0)] = teams
                    .as_ref()
                    .is_none_or(|allowed| allowed[usize::from(team.0)]);
            }
            teams = Some(serving);
        }
        let sites = (!filter.sites.is_empty()).then(|| {
            let mut allowed = vec![false; usize::from(u16::MAX) + 1];
            for site in floor
                .sites()
                .filter(|site| filter.sites.contains(&site.name))
            {
                allowed[usize::from(site.id.0)] = true;
            }
            allowed
        });
        let reasons = (!filter.reasons.is_empty()).then(|| {
            let mut allowed = vec![false; usize::from(u16::MAX) + 1];
            for reason in floor
                .reasons()
                .filter(|reason| filter.reasons.contains(&reason.label))
            {
                allowed[usize::from(reason.id.0)] = true;
            }
            allowed
        });
        Resolved {
            teams,
            sites,
            reasons,
        }
    }

    /// An agent without a reason passes only when no reason is chosen.
    fn reason(&self, status: AgentStatus) -> bool {
        self.reasons.as_ref().is_none_or(|allowed| {
            status
                .reason()
                .is_some_and(|reason| allowed[usize::from(reason.0)])
        })
    }

    fn team(&self, team: TeamId) -> bool {
        self.teams
            .as_ref()
            .is_none_or(|allowed| allowed[usize::from(team.0)])
    }

    fn site(&self, site: SiteId) -> bool {
        self.sites
            .as_ref()
            .is_none_or(|allowed| allowed[usize::from(site.0)])
    }
}

/// What the search box asks for: agents whose name, team, site or reason holds the text
/// (ignoring case). Teams, sites and reasons are matched once, not once per agent.
struct Search {
    needle: String,
    teams: Vec<bool>,
    sites: Vec<bool>,
    reasons: Vec<bool>,
}

impl Search {
    fn new(floor: &Floor, text: &str) -> Search {
        let needle = text.trim().to_lowercase();
        let holds = |name: &str| !needle.is_empty() && name.to_lowercase().contains(&needle);
        let table = |ids: Vec<(usize, bool)>| {
            let mut found = vec![false; ids.iter().map(|(id, _)| id + 1).max().unwrap_or(0)];
            for (id, hit) in ids {
                found[id] = hit;
            }
            found
        };
        let teams = table(
            floor
                .teams()
                .map(|t| (usize::from(t.id.0), holds(&t.name)))
                .collect(),
        );
        let sites = table(
            floor
                .sites()
                .map(|s| (usize::from(s.id.0), holds(&s.name)))
                .collect(),
        );
        let reasons = table(
            (floor.reasons())
                .map(|r| (usize::from(r.id.0), holds(&r.label) || holds(&r.code)))
                .collect(),
        );
        Search {
            needle,
            teams,
            sites,
            reasons,
        }
    }

    fn finds(&self, info: &AgentInfo, status: AgentStatus) -> bool {
        let hit = |table: &[bool], id: usize| table.get(id).copied().unwrap_or(false);
        self.needle.is_empty()
            || hit(&self.teams, usize::from(info.team.0))
            || hit(&self.sites, usize::from(info.site.0))
            || status
                .reason()
                .is_some_and(|reason| hit(&self.reasons, usize::from(reason.0)))
            || info.name.to_lowercase().contains(&self.needle)
    }
}

/// The agents that pass the filter and the search, in the chosen order, with their counts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selection {
    /// The agents, in order.
    pub rows: Vec<Row>,
    /// How many of them are in each state, indexed by [`StateKind::index`].
    pub counts: [u32; StateKind::COUNT],
    /// Since when the longest-standing of them has been in each state (server ms).
    pub oldest_since_ms: [Option<u64>; StateKind::COUNT],
}

/// Every agent's and team's place in name order, so that sorting compares numbers. Computed
/// once per roster version (names change only with the roster).
#[derive(Clone, Debug, Default)]
pub struct Ranks {
    agents: Vec<u32>,
    teams: Vec<u32>,
    sites: Vec<u32>,
    reasons: Vec<u32>,
}

/// Each id's place when its names are sorted naturally (ids break ties).
fn name_ranks<'a>(names: impl Iterator<Item = (&'a str, usize)>) -> Vec<u32> {
    let mut names: Vec<(&str, usize)> = names.collect();
    names.sort_by(|a, b| natural_cmp(a.0, b.0).then(a.1.cmp(&b.1)));
    let mut ranks = vec![u32::MAX; names.iter().map(|(_, id)| id + 1).max().unwrap_or(0)];
    for (rank, (_, id)) in names.iter().enumerate() {
        ranks[*id] = rank as u32;
    }
    ranks
}

impl Ranks {
    /// The ranks of the floor's roster.
    pub fn new(floor: &Floor) -> Ranks {
        Ranks {
            agents: name_ranks(
                (floor.agents())
                    .map(|record| (record.info.name.as_str(), record.info.id.0 as usize)),
            ),
            teams: name_ranks(
                floor
                    .teams()
                    .map(|team| (team.name.as_str(), usize::from(team.id.0))),
            ),
            sites: name_ranks(
                floor
                    .sites()
                    .map(|site| (site.name.as_str(), usize::from(site.id.0))),
            ),
            reasons: name_ranks(
                (floor.reasons()).map(|reason| (reason.label.as_str(), usize::from(reason.id.0))),
            ),
        }
    }

    fn agent(&self, id: AgentId) -> u32 {
        self.agents.get(id.0 as usize).copied().unwrap_or(u32::MAX)
    }

    fn team(&self, id: TeamId) -> u32 {
        self.teams
            .get(usize::from(id.0))
            .copied()
            .unwrap_or(u32::MAX)
    }

    fn site(&self, id: SiteId) -> u32 {
        self.sites
            .get(usize::from(id.0))
            .copied()
            .unwrap_or(u32::MAX)
    }

    /// Agents without a reason after every reason.
    fn reason(&self, status: AgentStatus) -> u32 {
        status.reason().map_or(u32::MAX, |id| {
            self.reasons
                .get(usize::from(id.0))
                .copied()
                .unwrap_or(u32::MAX - 1)
        })
    }
}

impl Selection {
    /// Picks and orders the agents. Agents the server sends without a state (outside the
    /// subscription's state filter) are left out.
    pub fn compute(floor: &Floor, filter: &Filter, search: &str, sort: Sort) -> Selection {
        Selection::compute_ranked(floor, &Ranks::new(floor), filter, search, sort)
    }

    /// [`Selection::compute`] with the roster's [`Ranks`] at hand (the app keeps them).
    pub fn compute_ranked(
        floor: &Floor,
        ranks: &Ranks,
        filter: &Filter,
        search: &str,
        sort: Sort,
    ) -> Selection {
        let resolved = Resolved::new(floor, filter);
        let search = Search::new(floor, search);
        let mut counts = [0; StateKind::COUNT];
        let mut oldest_since_ms: [Option<u64>; StateKind::COUNT] = [None; StateKind::COUNT];
        let mut rows: Vec<Row> = floor
            .agents()
            .filter_map(|record| {
                let live = record.live?;
                let info = &record.info;
                let kind = live.status.kind();
                let passes = filter.states.contains(kind)
                    && resolved.team(info.team)
                    && resolved.site(info.site)
                    && resolved.reason(live.status)
                    && search.finds(info, live.status);
                passes.then(|| {
                    counts[kind.index()] += 1;
                    let oldest = &mut oldest_since_ms[kind.index()];
                    *oldest = Some(oldest.map_or(live.since_ms, |at| at.min(live.since_ms)));
                    Row {
                        id: info.id,
                        team: info.team,
                        site: info.site,
                        status: live.status,
                        since_ms: live.since_ms,
                    }
                })
            })
            .collect();
        sort_rows(ranks, &mut rows, sort);
        Selection {
            rows,
            counts,
            oldest_since_ms,
        }
    }

    /// How many agents are shown.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no agent is shown.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// How many agents of the filter's teams, sites and reasons are in each state now, whatever
/// the search and the state filter: the live end of the trend, counted as the server counts
/// its stored points (agents the floor has no state for are not counted).
pub fn filtered_counts(floor: &Floor, filter: &Filter) -> [u32; StateKind::COUNT] {
    let resolved = Resolved::new(floor, filter);
    let mut counts = [0; StateKind::COUNT];
    for record in floor.agents() {
        let Some(live) = record.live else { continue };
        let info = &record.info;
        if resolved.team(info.team) && resolved.site(info.site) && resolved.reason(live.status) {
            counts[live.status.kind().index()] += 1;
        }
    }
    counts
}

#[cfg(test)]
fn agent_name(floor: &Floor, id: AgentId) -> &str {
    floor
        .agent(id)
        .map_or("", |record| record.info.name.as_str())
}

fn team_name(floor: &Floor, id: TeamId) -> &str {
    floor.team(id).map_or("", |team| team.name.as_str())
}

/// Orders rows by `sort`, with offline agents after everyone else whatever the order: an agent
/// who went home hours ago is what a floor manager looks at last.
fn sort_rows(ranks: &Ranks, rows: &mut [Row], sort: Sort) {
    let by_name = |a: &Row, b: &Row| ranks.agent(a.id).cmp(&ranks.agent(b.id));
    // Within a key, the agent who has been in their state longest first.
    let longest = |a: &Row, b: &Row| a.since_ms.cmp(&b.since_ms).then_with(|| by_name(a, b));
    let compare = |a: &Row, b: &Row| match sort.key {
        SortKey::Name => by_name(a, b),
        SortKey::State => (a.status.kind().cmp(&b.status.kind())).then_with(|| longest(a, b)),
        // Shortest time first: the latest start first.
        SortKey::TimeInState => b.since_ms.cmp(&a.since_ms).then_with(|| by_name(a, b)),
        SortKey::Team => (ranks.team(a.team).cmp(&ranks.team(b.team))).then_with(|| by_name(a, b)),
        SortKey::Site => (ranks.site(a.site).cmp(&ranks.site(b.site))).then_with(|| by_name(a, b)),
        SortKey::Reason => {
            (ranks.reason(a.status).cmp(&ranks.reason(b.status))).then_with(|| longest(a, b))
        }
    };
    let offline = |row: &Row| row.status.kind() == StateKind::Offline;
    rows.sort_unstable_by(|a, b| {
        offline(a).cmp(&offline(b)).then_with(|| {
            if sort.descending {
                compare(b, a)
            } else {
                compare(a, b)
            }
        })
    });
}

/// What a card groups by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CardKey {
    /// A team.
    Team(TeamId),
    /// A site.
    Site(SiteId),
}

/// A team's or a site's card: its shown agents, in the selection's order.
#[derive(Clone, Debug, PartialEq)]
pub struct Card {
    /// Which team or site.
    pub key: CardKey,
    /// Its name.
    pub name: String,
    /// Its agents' counts per state.
    pub counts: [u32; StateKind::COUNT],
    /// Indexes into [`Selection::rows`].
    pub members: Vec<u32>,
}

/// The cards of a selection, one per team (or site) that has agents shown, by name.
pub fn cards(floor: &Floor, selection: &Selection, by_site: bool) -> Vec<Card> {
    let mut cards: BTreeMap<CardKey, Card> = BTreeMap::new();
    for (index, row) in selection.rows.iter().enumerate() {
        let key = if by_site {
            CardKey::Site(row.site)
        } else {
            CardKey::Team(row.team)
        };
        let card = cards.entry(key).or_insert_with(|| Card {
            key,
            name: match key {
                CardKey::Team(team) => team_name(floor, team).to_owned(),
                CardKey::Site(site) => floor
                    .site(site)
                    .map_or_else(String::new, |site| site.name.clone()),
            },
            counts: [0; StateKind::COUNT],
            members: Vec::new(),
        });
        card.counts[row.status.kind().index()] += 1;
        card.members.push(index as u32);
    }
    let mut cards: Vec<Card> = cards.into_values().collect();
    cards.sort_by(|a, b| natural_cmp(&a.name, &b.name).then(a.key.cmp(&b.key)));
    cards
}

/// Teams by sites: the teams and sites the filter admits, and the counts of each pair.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Matrix {
    /// Rows, by name.
    pub teams: Vec<(TeamId, String)>,
    /// Columns, by name.
    pub sites: Vec<(SiteId, String)>,
    /// Counts per state of each team and site pair that has agents shown.
    pub cells: BTreeMap<(TeamId, SiteId), [u32; StateKind::COUNT]>,
    /// Counts per state of each team (a row's total).
    pub team_totals: BTreeMap<TeamId, [u32; StateKind::COUNT]>,
    /// Counts per state of each site (a column's total).
    pub site_totals: BTreeMap<SiteId, [u32; StateKind::COUNT]>,
    /// Counts per state of everything shown.
    pub total: [u32; StateKind::COUNT],
}

impl Matrix {
    /// The matrix of a selection. Teams and sites without any agent shown are left out.
    pub fn new(floor: &Floor, selection: &Selection) -> Matrix {
        let mut cells: BTreeMap<(TeamId, SiteId), [u32; StateKind::COUNT]> = BTreeMap::new();
        let mut team_totals: BTreeMap<TeamId, [u32; StateKind::COUNT]> = BTreeMap::new();
        let mut site_totals: BTreeMap<SiteId, [u32; StateKind::COUNT]> = BTreeMap::new();
        for row in &selection.rows {
            let kind = row.status.kind().index();
            cells.entry((row.team, row.site)).or_default()[kind] += 1;
            team_totals.entry(row.team).or_default()[kind] += 1;
            site_totals.entry(row.site).or_default()[kind] += 1;
        }
        let mut teams: Vec<(TeamId, String)> = floor
            .teams()
            .filter(|team| team_totals.contains_key(&team.id))
            .map(|team| (team.id, team.name.clone()))
            .collect();
        teams.sort_by(|a, b| natural_cmp(&a.1, &b.1));
        let mut sites: Vec<(SiteId, String)> = floor
            .sites()
            .filter(|site| site_totals.contains_key(&site.id))
            .map(|site| (site.id, site.name.clone()))
            .collect();
        sites.sort_by(|a, b| natural_cmp(&a.1, &b.1));
        Matrix {
            teams,
            sites,
            cells,
            team_totals,
            site_totals,
            total: selection.counts,
        }
    }
}

/// One row of the Summary view: a site, a team, or a team at a site.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SummaryRow {
    /// What it is called (`Team · Site` for a team at a site).
    pub name: String,
    /// The team, when the row is one's.
    pub team: Option<TeamId>,
    /// The site, when the row is one's.
    pub site: Option<SiteId>,
    /// The team's name, when the row is one's.
    pub team_name: Option<String>,
    /// The site's name, when the row is one's.
    pub site_name: Option<String>,
    /// How many of its agents shown are in each state.
    pub counts: [u32; StateKind::COUNT],
    /// Since when the longest-standing in each state has been in it (server ms).
    pub oldest_since_ms: [Option<u64>; StateKind::COUNT],
}

impl SummaryRow {
    fn add(&mut self, row: &Row) {
        let index = row.status.kind().index();
        self.counts[index] += 1;
        let oldest = &mut self.oldest_since_ms[index];
        *oldest = Some(oldest.map_or(row.since_ms, |at| at.min(row.since_ms)));
    }

    /// How many agents it has shown.
    pub fn total(&self) -> u32 {
        self.counts.iter().sum()
    }
}

/// The Summary view: a row per site, team, or team at a site, in the chosen order, and the
/// totals of all of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// The rows.
    pub rows: Vec<SummaryRow>,
    /// All rows added up.
    pub total: SummaryRow,
}

impl Summary {
    /// The summary of a selection (the filters and search apply).
    pub fn new(floor: &Floor, selection: &Selection, view: SummaryView) -> Summary {
        let mut groups: BTreeMap<(Option<TeamId>, Option<SiteId>), SummaryRow> = BTreeMap::new();
        let mut total = SummaryRow {
            name: "All".to_owned(),
            ..SummaryRow::default()
        };
        for row in &selection.rows {
            let key = match view.by {
                SummaryBy::Sites => (None, Some(row.site)),
                SummaryBy::Teams => (Some(row.team), None),
                SummaryBy::TeamsBySites => (Some(row.team), Some(row.site)),
            };
            groups.entry(key).or_default().add(row);
            total.add(row);
        }
        let site_name = |site: SiteId| floor.site(site).map_or("", |site| site.name.as_str());
        let mut rows: Vec<SummaryRow> = groups
            .into_iter()
            .map(|((team, site), mut row)| {
                row.team_name = team.map(|team| team_name(floor, team).to_owned());
                row.site_name = site.map(|site| site_name(site).to_owned());
                row.name = match (&row.team_name, &row.site_name) {
                    (Some(team), Some(site)) => format!("{team} · {site}"),
                    (Some(name), None) | (None, Some(name)) => name.clone(),
                    (None, None) => String::new(),
                };
                (row.team, row.site) = (team, site);
                row
            })
            .collect();
        let compare = |a: &SummaryRow, b: &SummaryRow| match view.key {
            SummaryKey::Name => natural_cmp(&a.name, &b.name),
            SummaryKey::Total => a.total().cmp(&b.total()),
            SummaryKey::Count(kind) => a.counts[kind.index()].cmp(&b.counts[kind.index()]),
            // Longer is larger: an earlier start. Rows with nobody in the state count as
            // shortest.
            SummaryKey::Longest(kind) => {
                let since = |row: &SummaryRow| row.oldest_since_ms[kind.index()];
                match (since(a), since(b)) {
                    (Some(a), Some(b)) => b.cmp(&a),
                    (a, b) => a.is_some().cmp(&b.is_some()),
                }
            }
        };
        rows.sort_by(|a, b| {
            let order = if view.descending {
                compare(b, a)
            } else {
                compare(a, b)
            };
            order.then_with(|| natural_cmp(&a.name, &b.name))
        });
        Summary { rows, total }
    }
}

/// Names made to fit `width` each, without two different names becoming the same text: the
/// largest font size in `sizes` at which all fit as they are; failing that, at the smallest,
/// each name too long is cut in the middle and keeps its last word ("Tech Sup… 12"), where
/// names of numbered teams differ, or its end ("…upport East 1") when that is what tells two
/// apart. `measure` gives a text's width at a size.
pub fn fit_labels(
    names: &[String],
    width: f32,
    sizes: std::ops::RangeInclusive<f32>,
    measure: impl Fn(&str, f32) -> f32,
) -> (f32, Vec<String>) {
    let (smallest, mut size) = (*sizes.start(), *sizes.end());
    let fits = |text: &str, size: f32| measure(text, size) <= width;
    while size > smallest && !names.iter().all(|name| fits(name, size)) {
        size = (size * 0.92).max(smallest);
    }
    if names.iter().all(|name| fits(name, size)) {
        return (size, names.to_vec());
    }
    let chars = |text: &str| text.chars().collect::<Vec<char>>();
    // The longest text made by `make(n)` for n from the most kept characters down that fits.
    let longest = |name: &str, make: &dyn Fn(&[char], usize) -> String| {
        let all = chars(name);
        (0..all.len())
            .rev()
            .map(|keep| make(&all, keep))
            .find(|text| fits(text, size))
            .unwrap_or_else(|| CUT.to_string())
    };
    let middle = |name: &str| {
        let Some(last_word) = name.rfind(' ').map(|at| &name[at..]) else {
            return longest(name, &|all, keep| {
                format!("{}{CUT}", String::from_iter(&all[..keep]))
            });
        };
        let head = &name[..name.len() - last_word.len()];
        longest(head, &|all, keep| {
            format!(
                "{}{CUT}{last_word}",
                String::from_iter(&all[..keep]).trim_end()
            )
        })
    };
    let end = |name: &str| {
        longest(name, &|all, keep| {
            format!("{CUT}{}", String::from_iter(&all[all.len() - keep..]))
        })
    };
    let mut labels: Vec<String> = (names.iter())
        .map(|name| {
            if fits(name, size) {
                name.clone()
            } else {
                middle(name)
            }
        })
        .collect();
    let clashes = |labels: &[String], index: usize| {
        (0..names.len()).any(|other| {
            other != index && labels[other] == labels[index] && names[other] != names[index]
        })
    };
    let clashing: Vec<usize> = (0..names.len()).filter(|&i| clashes(&labels, i)).collect();
    for index in clashing {
        labels[index] = end(&names[index]);
    }
    (size, labels)
}

/// The mark of a name cut to fit.
const CUT: char = '…';

/// How far past its threshold an agent's time in state is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Within the threshold (or none is set).
    Normal,
    /// Past the amber limit.
    Amber,
    /// Past the red limit.
    Red,
}

impl Level {
    /// The word for screen readers and tests; never shown by colour alone.
    pub fn word(self) -> &'static str {
        match self {
            Level::Normal => "normal",
            Level::Amber => "amber",
            Level::Red => "red",
        }
    }
}

/// The thresholds resolved per team id, state and reason, for a lookup per tile per frame.
/// The most specific limit wins: the team's for the reason, the default for the reason, the
/// team's for the state, the default for the state (see [`Thresholds`]).
#[derive(Clone, Debug, Default)]
pub struct Levels {
    default: [Option<Limit>; StateKind::COUNT],
    per_team: BTreeMap<TeamId, [Option<Limit>; StateKind::COUNT]>,
    reasons: BTreeMap<ReasonId, Limit>,
    team_reasons: BTreeMap<(TeamId, ReasonId), Limit>,
}

impl Levels {
    /// Resolves the server's thresholds (team names, reason codes) against the floor.
    pub fn new(thresholds: &Thresholds, floor: &Floor) -> Levels {
        let reason_id = |code: &str| {
            (floor.reasons())
                .find(|reason| reason.code == code)
                .map(|reason| reason.id)
        };
        let table = |limits: &BTreeMap<String, Limit>| {
            let mut states = [None; StateKind::COUNT];
            let mut reasons = BTreeMap::new();
            for (key, limit) in limits {
                match ThresholdKey::parse(key) {
                    Some(ThresholdKey::State(kind)) => states[kind.index()] = Some(*limit),
                    Some(ThresholdKey::Reason(code)) => {
                        if let Some(id) = reason_id(&code) {
                            reasons.insert(id, *limit);
                        }
                    }
                    None => {}
                }
            }
            (states, reasons)
        };
        let (default, reasons) = table(&thresholds.default);
        let mut per_team = BTreeMap::new();
        let mut team_reasons = BTreeMap::new();
        for team in floor.teams() {
            let Some(overrides) = thresholds.teams.get(&team.name) else {
                continue;
            };
            let (states, own_reasons) = table(overrides);
            let mut limits = default;
            for (index, limit) in states.into_iter().enumerate() {
                if limit.is_some() {
                    limits[index] = limit;
                }
            }
            per_team.insert(team.id, limits);
            for (reason, limit) in own_reasons {
                team_reasons.insert((team.id, reason), limit);
            }
        }
        Levels {
            default,
            per_team,
            reasons,
            team_reasons,
        }
    }

    /// The limit for an agent of `team` in `status`, if any.
    pub fn limit(&self, team: TeamId, status: AgentStatus) -> Option<Limit> {
        let by_reason = status.reason().and_then(|reason| {
            (self.team_reasons.get(&(team, reason)))
                .or_else(|| self.reasons.get(&reason))
                .copied()
        });
        by_reason.or(self.per_team.get(&team).unwrap_or(&self.default)[status.kind().index()])
    }

    /// The level of an agent of `team` that has been in `status` for `elapsed_ms`.
    pub fn level(&self, team: TeamId, status: AgentStatus, elapsed_ms: u64) -> Level {
        let Some(limit) = self.limit(team, status) else {
            return Level::Normal;
        };
        let secs = elapsed_ms / 1000;
        if secs >= u64::from(limit.red_secs) {
            Level::Red
        } else if secs >= u64::from(limit.amber_secs) {
            Level::Amber
        } else {
            Level::Normal
        }
    }
}

/// An agent over threshold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Alert {
    /// The agent as shown.
    pub row: Row,
    /// Amber or red.
    pub level: Level,
    /// Time in state over the red limit (1.0 = at the red limit).
    pub severity: f64,
}

/// The agents over threshold, worst first: red before amber, then furthest past the red limit.
pub fn attention(selection: &Selection, levels: &Levels, now_ms: u64) -> Vec<Alert> {
    let mut alerts: Vec<Alert> = selection
        .rows
        .iter()
        .filter_map(|row| {
            let elapsed = now_ms.saturating_sub(row.since_ms);
            let level = levels.level(row.team, row.status, elapsed);
            if level == Level::Normal {
                return None;
            }
            let red_ms = levels.limit(row.team, row.status)?.red_secs.max(1) as f64 * 1000.0;
            Some(Alert {
                row: *row,
                level,
                severity: elapsed as f64 / red_ms,
            })
        })
        .collect();
    alerts.sort_by(|a, b| {
        (b.level.cmp(&a.level))
            .then(b.severity.total_cmp(&a.severity))
            .then(a.row.id.cmp(&b.row.id))
    });
    alerts
}

/// `1 agent`, `2 agents`: a count with its noun (plural with an s).
pub fn plural(count: impl Into<u64>, noun: &str) -> String {
    match count.into() {
        1 => format!("1 {noun}"),
        count => format!("{count} {noun}s"),
    }
}

/// When an agent went offline, as a clock time in this computer's zone: `since 18:05`, or
/// `since 28 Nov 18:05` when that was not today. An offline agent's hours away say less than
/// when they left.
pub fn since_text(since_ms: u64, now_ms: u64) -> String {
    use chrono::{Local, TimeZone};
    let at = |ms: u64| Local.timestamp_millis_opt(ms as i64).single();
    match (at(since_ms), at(now_ms)) {
        (Some(since), Some(now)) if since.date_naive() == now.date_naive() => {
            format!("since {}", since.format("%H:%M"))
        }
        (Some(since), _) => format!("since {}", since.format("%-d %b %H:%M")),
        (None, _) => String::new(),
    }
}

/// What a tile or row says of an agent's time: how long in their state, or for an offline
/// agent since when.
pub fn time_in_state_text(kind: StateKind, since_ms: u64, now_ms: u64) -> String {
    if kind == StateKind::Offline {
        since_text(since_ms, now_ms)
    } else {
        duration_text(now_ms.saturating_sub(since_ms))
    }
}

/// The agents a floor manager has been alerted about, so that each red stretch alerts once:
/// an agent alerts again only in another state (or the same state begun again).
#[derive(Clone, Debug, Default)]
pub struct AgentAlerts {
    /// Red now: who, since when.
    red: std::collections::BTreeSet<(AgentId, u64)>,
    /// Whether the first look has been taken (what is red when the app starts is on screen,
    /// not news).
    seeded: bool,
}

/// One alert to raise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentAlert {
    /// What to say.
    pub text: String,
    /// With the notification sound.
    pub sound: bool,
}

/// At most this many alerts at once; more are summed up in one.
const MAX_ALERTS: usize = 3;

impl AgentAlerts {
    /// The agents that went red since the last call on a threshold that alerts (per `choices`,
    /// by the agent's reason key first, then their state's), in words; nothing when muted.
    pub fn news(
        &mut self,
        alerts: &[Alert],
        floor: &Floor,
        choices: &BTreeMap<String, AlertChoice>,
        muted: bool,
        now_ms: u64,
    ) -> Vec<AgentAlert> {
        let red: std::collections::BTreeSet<(AgentId, u64)> = (alerts.iter())
            .filter(|alert| alert.level == Level::Red)
            .map(|alert| (alert.row.id, alert.row.since_ms))
            .collect();
        let seeded = std::mem::replace(&mut self.seeded, true);
        let fresh: Vec<&Alert> = (alerts.iter())
            .filter(|alert| alert.level == Level::Red)
            .filter(|alert| !self.red.contains(&(alert.row.id, alert.row.since_ms)))
            .collect();
        self.red = red;
        if !seeded || muted {
            return Vec::new();
        }
        let choice = |row: &Row| {
            let reason = (row.status.reason())
                .and_then(|id| floor.reason(id))
                .and_then(|reason| choices.get(&format!("{REASON_KEY_PREFIX}{}", reason.code)));
            reason
                .or_else(|| choices.get(row.status.kind().name()))
                .copied()
                .unwrap_or_default()
        };
        let mut news: Vec<AgentAlert> = Vec::new();
        let wanted: Vec<(&Alert, AlertChoice)> = (fresh.into_iter())
            .map(|alert| (alert, choice(&alert.row)))
            .filter(|(_, choice)| choice.notify || choice.sound)
            .collect();
        for (alert, choice) in wanted.iter().take(MAX_ALERTS) {
            let row = alert.row;
            let name = floor
                .agent(row.id)
                .map_or("?", |record| record.info.name.as_str());
            let reason = (row.status.reason())
                .and_then(|id| floor.reason(id))
                .map(|reason| format!(" ({})", reason.label))
                .unwrap_or_default();
            news.push(AgentAlert {
                text: format!(
                    "{name}: {}{reason} for {}",
                    state_label(row.status.kind()),
                    duration_text(now_ms.saturating_sub(row.since_ms))
                ),
                sound: choice.sound,
            });
        }
        if wanted.len() > MAX_ALERTS {
            news.push(AgentAlert {
                text: format!("and {} more over a threshold", wanted.len() - MAX_ALERTS),
                sound: false,
            });
        }
        news
    }
}

/// A time in state as a person reads it: `m:ss`, or `h:mm:ss` from an hour on.
pub fn duration_text(ms: u64) -> String {
    let secs = ms / 1000;
    let (hours, minutes, seconds) = (secs / 3600, secs / 60 % 60, secs % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{seconds:02}")
    } else {
        format!("{minutes}:{seconds:02}")
    }
}

/// A state's name for people.
pub fn state_label(kind: StateKind) -> &'static str {
    match kind {
        StateKind::Offline => "Offline",
        StateKind::Available => "Available",
        StateKind::Ringing => "Ringing",
        StateKind::OnCall => "On call",
        StateKind::OnHold => "On hold",
        StateKind::WrapUp => "Wrap-up",
        StateKind::NotReady => "Not ready",
        StateKind::Stale => "No signal",
    }
}

/// A state's two-letter mark, shown on every tile so that state never depends on colour alone.
pub fn state_mark(kind: StateKind) -> &'static str {
    match kind {
        StateKind::Offline => "OF",
        StateKind::Available => "AV",
        StateKind::Ringing => "RG",
        StateKind::OnCall => "ON",
        StateKind::OnHold => "HD",
        StateKind::WrapUp => "WU",
        StateKind::NotReady => "NR",
        StateKind::Stale => "NS",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use monti_protocol::model::{Site, StateSet, Team};

    use super::*;
    use crate::sample;

    const NOW: u64 = 1_800_000_000_000;

    #[test]
    fn a_queue_shows_the_agents_of_the_teams_that_serve_it() {
        let floor = sample::floor_with_queues(sample::NOW_MS);
        // Billing Voice is served by teams 0 and 4; with a team filter, only those of both.
        let filter = Filter {
            queue: Some("Billing Voice".to_owned()),
            ..Filter::default()
        };
        let selection = Selection::compute(&floor, &filter, "", Sort::default());
        assert!(!selection.is_empty());
        assert!(
            selection
                .rows
                .iter()
                .all(|row| [0, 4].contains(&row.team.0))
        );
        let both = Filter {
            teams: BTreeSet::from([team_name(&floor, TeamId(4)).to_owned()]),
            ..filter.clone()
        };
        let selection = Selection::compute(&floor, &both, "", Sort::default());
        assert!(!selection.is_empty());
        assert!(selection.rows.iter().all(|row| row.team.0 == 4));
        // A queue the floor does not list narrows nothing.
        let unknown = Filter {
            queue: Some("Gone".to_owned()),
            ..Filter::default()
        };
        assert_eq!(
            Selection::compute(&floor, &unknown, "", Sort::default()).len(),
            floor.n_agents()
        );
    }

    #[test]
    fn the_selection_honours_every_filter_and_the_search_and_counts_what_it_shows() {
        let floor = sample::floor(500, 7, NOW);
        let team = floor.teams().nth(1).expect("a team").clone();
        let site = floor.sites().next().expect("a site").clone();
        let filter = Filter {
            teams: BTreeSet::from([team.name.clone()]),
            sites: BTreeSet::from([site.name.clone()]),
            states: StateSet::of([StateKind::OnCall, StateKind::NotReady]),
            ..Filter::default()
        };
        let selection = Selection::compute(&floor, &filter, "", Sort::default());
        let brute: Vec<AgentId> = floor
            .agents()
            .filter(|record| {
                record.info.team == team.id
                    && record.info.site == site.id
                    && record.live.is_some_and(|live| {
                        matches!(live.status.kind(), StateKind::OnCall | StateKind::NotReady)
                    })
            })
            .map(|record| record.info.id)
            .collect();
        assert!(!brute.is_empty(), "the sample has such agents");
        let mut shown: Vec<AgentId> = selection.rows.iter().map(|row| row.id).collect();
        shown.sort();
        assert_eq!(shown, brute);
        assert_eq!(selection.counts.iter().sum::<u32>() as usize, brute.len());
        assert_eq!(selection.counts[StateKind::Available.index()], 0);
        for kind in StateKind::ALL {
            let oldest = selection
                .rows
                .iter()
                .filter(|row| row.status.kind() == kind)
                .map(|row| row.since_ms)
                .min();
            assert_eq!(selection.oldest_since_ms[kind.index()], oldest, "{kind:?}");
        }
        assert!(selection.oldest_since_ms[StateKind::OnCall.index()].is_some());

        let someone = floor.agent(brute[0]).expect("agent").info.name.clone();
        let first_name = someone
            .split(' ')
            .next()
            .expect("a first name")
            .to_uppercase();
        let searched = Selection::compute(&floor, &Filter::default(), &first_name, Sort::default());
        assert!(searched.rows.iter().any(|row| row.id == brute[0]));
        assert!(searched.rows.iter().all(|row| {
            agent_name(&floor, row.id)
                .to_lowercase()
                .contains(&first_name.to_lowercase())
        }));
    }

    #[test]
    fn every_sort_orders_as_it_says() {
        let floor = sample::floor(300, 3, NOW);
        let all = Filter::default();
        let by =
            |key, descending| Selection::compute(&floor, &all, "", Sort { key, descending }).rows;
        let names = |rows: &[Row]| -> Vec<String> {
            rows.iter()
                .map(|row| agent_name(&floor, row.id).to_lowercase())
                .collect()
        };
        let offline = |row: &Row| row.status.kind() == StateKind::Offline;
        let present = |rows: Vec<Row>| -> Vec<Row> {
            // Every order puts the offline agents after all the others.
            let first_offline = rows.iter().position(offline).expect("the sample has some");
            assert!(first_offline > 0);
            assert!(rows[first_offline..].iter().all(offline));
            rows[..first_offline].to_vec()
        };
        let ascending = names(&present(by(SortKey::Name, false)));
        assert!(ascending.is_sorted_by(|a, b| natural_cmp(a, b).is_le()));
        let mut descending = names(&present(by(SortKey::Name, true)));
        descending.reverse();
        assert_eq!(descending, ascending);
        let longest_first = present(by(SortKey::TimeInState, true));
        assert!(longest_first.is_sorted_by_key(|row| row.since_ms));
        let by_state = present(by(SortKey::State, false));
        assert!(by_state.is_sorted_by_key(|row| row.status.kind()));
        let by_team = present(by(SortKey::Team, false));
        assert!(by_team.is_sorted_by_key(|row| team_name(&floor, row.team).to_lowercase()));
        let by_site = present(by(SortKey::Site, true));
        let site_name = |row: &Row| floor.site(row.site).expect("site").name.to_lowercase();
        assert!(by_site.is_sorted_by(|a, b| site_name(a) >= site_name(b)));
        // By reason: reasons by label, then everyone without one; within a reason the longest
        // first.
        let by_reason = present(by(SortKey::Reason, false));
        let label = |row: &Row| {
            let reason = row.status.reason().and_then(|id| floor.reason(id));
            reason.map(|reason| reason.label.clone())
        };
        let first_without = by_reason.iter().position(|row| label(row).is_none());
        let (with, without) = by_reason.split_at(first_without.expect("some have none"));
        assert!(!with.is_empty() && without.iter().all(|row| label(row).is_none()));
        assert!(with.is_sorted_by(|a, b| { (label(a), a.since_ms) <= (label(b), b.since_ms) }));
        // A first click on a time sorts longest first; on anything else, A to Z.
        assert!(SortKey::TimeInState.first().descending);
        assert!(
            SortKey::ALL
                .iter()
                .filter(|key| key.first().descending)
                .count()
                == 1
        );
    }

    #[test]
    fn names_sort_naturally_in_every_list() {
        let mut floor = Floor::new();
        floor.upsert_site(Site {
            id: SiteId(0),
            name: "Site 10".to_owned(),
        });
        for (id, team) in ["Billing 10", "Billing 2", "Billing 1"].iter().enumerate() {
            floor.upsert_team(Team {
                id: TeamId(id as u16),
                name: (*team).to_owned(),
            });
        }
        for (id, number) in [11, 9, 100].into_iter().enumerate() {
            let info = AgentInfo {
                id: AgentId(id as u32),
                name: format!("Agent {number}"),
                team: TeamId(id as u16),
                site: SiteId(0),
            };
            floor.upsert_agent(info).expect("a fresh floor");
            (floor.set_status(AgentId(id as u32), AgentStatus::Available, NOW)).expect("known");
        }
        floor.advance(1, NOW);
        let selection = Selection::compute(&floor, &Filter::default(), "", Sort::default());
        let shown: Vec<&str> = (selection.rows.iter())
            .map(|row| agent_name(&floor, row.id))
            .collect();
        assert_eq!(shown, ["Agent 9", "Agent 11", "Agent 100"]);
        let cards: Vec<String> = cards(&floor, &selection, false)
            .into_iter()
            .map(|card| card.name)
            .collect();
        assert_eq!(cards, ["Billing 1", "Billing 2", "Billing 10"]);
        let matrix = Matrix::new(&floor, &selection);
        let rows: Vec<&str> = matrix.teams.iter().map(|(_, name)| name.as_str()).collect();
        assert_eq!(rows, ["Billing 1", "Billing 2", "Billing 10"]);
    }

    #[test]
    fn the_reason_filter_and_the_search_find_reasons_teams_and_sites() {
        let floor = sample::floor(600, 5, NOW);
        let lunch = Filter {
            reasons: BTreeSet::from(["Lunch".to_owned()]),
            ..Filter::default()
        };
        let rows = Selection::compute(&floor, &lunch, "", Sort::default()).rows;
        let lunch_id = (floor.reasons())
            .find(|reason| reason.label == "Lunch")
            .expect("the sample has Lunch")
            .id;
        let brute = (floor.agents())
            .filter(|record| {
                record
                    .live
                    .is_some_and(|live| live.status.reason() == Some(lunch_id))
            })
            .count();
        assert!(brute > 0);
        assert_eq!(rows.len(), brute);
        assert!(rows.iter().all(|row| row.status.reason() == Some(lunch_id)));

        // The search finds an agent by their reason, team or site, in any case.
        let search =
            |text: &str| Selection::compute(&floor, &Filter::default(), text, Sort::default());
        assert_eq!(search("lUnCh").len(), brute);
        let team = floor.teams().nth(2).expect("a team");
        let by_team = search(&team.name.to_uppercase());
        assert!(!by_team.is_empty());
        assert!(by_team.rows.iter().all(|row| {
            row.team == team.id
                || agent_name(&floor, row.id)
                    .to_lowercase()
                    .contains(&team.name.to_lowercase())
        }));
        let site = floor.sites().nth(1).expect("a site");
        let by_site = search(&site.name);
        assert_eq!(
            by_site.len(),
            floor
                .agents()
                .filter(|record| record.live.is_some() && record.info.site == site.id)
                .count()
        );
    }

    #[test]
    fn cards_and_matrix_partition_the_selection() {
        let floor = sample::floor(400, 11, NOW);
        let selection = Selection::compute(&floor, &Filter::default(), "", Sort::default());
        for by_site in [false, true] {
            let cards = cards(&floor, &selection, by_site);
            let members: usize = cards.iter().map(|card| card.members.len()).sum();
            assert_eq!(members, selection.len());
            for card in &cards {
                assert_eq!(card.counts.iter().sum::<u32>() as usize, card.members.len());
                for &index in &card.members {
                    let row = selection.rows[index as usize];
                    let key = if by_site {
                        CardKey::Site(row.site)
                    } else {
                        CardKey::Team(row.team)
                    };
                    assert_eq!(key, card.key);
                }
            }
        }
        let matrix = Matrix::new(&floor, &selection);
        let mut total = [0u32; StateKind::COUNT];
        for counts in matrix.cells.values() {
            for (sum, count) in total.iter_mut().zip(counts) {
                *sum += count;
            }
        }
        assert_eq!(total, selection.counts);
        assert_eq!(matrix.total, selection.counts);
        assert_eq!(matrix.teams.len(), floor.teams().count());
        // Each row's and column's total is its cells added up.
        let add = |cells: Vec<&[u32; StateKind::COUNT]>| {
            let mut sum = [0u32; StateKind::COUNT];
            for counts in cells {
                for (sum, count) in sum.iter_mut().zip(counts) {
                    *sum += count;
                }
            }
            sum
        };
        for (team, _) in &matrix.teams {
            let row = add(matrix
                .cells
                .iter()
                .filter(|((t, _), _)| t == team)
                .map(|c| c.1)
                .collect());
            assert_eq!(matrix.team_totals[team], row);
        }
        for (site, _) in &matrix.sites {
            let column = add(matrix
                .cells
                .iter()
                .filter(|((_, s), _)| s == site)
                .map(|c| c.1)
                .collect());
            assert_eq!(matrix.site_totals[site], column);
        }
    }

    #[test]
    fn the_summary_adds_up_the_selection_per_site_team_or_both_and_sorts_by_any_column() {
        let floor = sample::floor(700, 9, NOW);
        let selection = Selection::compute(&floor, &Filter::default(), "", Sort::default());
        for by in SummaryBy::ALL {
            let view = SummaryView {
                by,
                ..SummaryView::default()
            };
            let summary = Summary::new(&floor, &selection, view);
            // The rows partition the selection and the totals row adds them up.
            let mut added = [0u32; StateKind::COUNT];
            for row in &summary.rows {
                for (sum, count) in added.iter_mut().zip(row.counts) {
                    *sum += count;
                }
            }
            assert_eq!(added, selection.counts, "{by:?}");
            assert_eq!(summary.total.counts, selection.counts);
            assert_eq!(summary.total.oldest_since_ms, selection.oldest_since_ms);
            assert!(
                summary
                    .rows
                    .is_sorted_by(|a, b| natural_cmp(&a.name, &b.name).is_le())
            );
            let expected = match by {
                SummaryBy::Sites => floor.sites().count(),
                SummaryBy::Teams => floor.teams().count(),
                SummaryBy::TeamsBySites => floor.sites().count() * floor.teams().count(),
            };
            assert_eq!(
                summary.rows.len(),
                expected,
                "{by:?}: every pair has agents"
            );
        }
        // Each row's figures are its agents' (brute force, for one site).
        let view = SummaryView::default();
        let summary = Summary::new(&floor, &selection, view);
        let site = &summary.rows[0];
        let mine = |row: &&Row| Some(row.site) == site.site;
        let rows: Vec<&Row> = selection.rows.iter().filter(mine).collect();
        assert_eq!(site.total() as usize, rows.len());
        let oldest = (rows.iter())
            .filter(|row| row.status.kind() == StateKind::Available)
            .map(|row| row.since_ms)
            .min();
        assert_eq!(site.oldest_since_ms[StateKind::Available.index()], oldest);

        // Which site has the fewest available agents: the first click on Available.
        let available = SummaryKey::Count(StateKind::Available);
        let fewest = view.clicked(available);
        assert_eq!((fewest.key, fewest.descending), (available, false));
        let rows = Summary::new(&floor, &selection, fewest).rows;
        assert!(rows.is_sorted_by_key(|row| row.counts[StateKind::Available.index()]));
        // The second: most available; the third: the longest available first; the fourth:
        // fewest again.
        let most = fewest.clicked(available);
        assert_eq!((most.key, most.descending), (available, true));
        let longest = most.clicked(available);
        assert_eq!(longest.key, SummaryKey::Longest(StateKind::Available));
        // Any other state: the most in it first.
        let not_ready = SummaryKey::Count(StateKind::NotReady);
        assert!(view.clicked(not_ready).descending);
        assert!(!view.clicked(not_ready).clicked(not_ready).descending);
        let rows = Summary::new(&floor, &selection, longest).rows;
        let since = |row: &SummaryRow| row.oldest_since_ms[StateKind::Available.index()];
        assert!(rows.is_sorted_by_key(|row| since(row).unwrap_or(u64::MAX)));
        assert_eq!(longest.clicked(available).key, available);
        let by_total = view.clicked(SummaryKey::Total);
        let rows = Summary::new(&floor, &selection, by_total).rows;
        assert!(rows.is_sorted_by(|a, b| a.total() >= b.total()));
    }

    #[test]
    fn names_fit_without_becoming_each_other() {
        // Half the size per character: a size of 10 fits 20 characters in 100.
        let measure = |text: &str, size: f32| text.chars().count() as f32 * size * 0.5;
        let owned = |names: &[&str]| {
            names
                .iter()
                .map(|name| (*name).to_owned())
                .collect::<Vec<_>>()
        };
        // Short names keep the largest size.
        let (size, labels) =
            fit_labels(&owned(&["Sales 1", "Sales 2"]), 100.0, 6.0..=10.0, measure);
        assert_eq!((size, labels), (10.0, owned(&["Sales 1", "Sales 2"])));
        // Longer ones shrink first.
        let names = owned(&[
            "Technical Support 1",
            "Technical Support 12",
            "Technical Support 13",
        ]);
        let (size, labels) = fit_labels(&names, 90.0, 6.0..=10.0, measure);
        assert!((6.0..10.0).contains(&size), "{size}");
        assert_eq!(labels, names);
        // Too long even at the smallest: cut in the middle, numbers kept, all different.
        let names: Vec<String> = (1..=14)
            .map(|n| format!("Technical Support Premium Customers {n}"))
            .chain(["Technical Support Premium Customers East 1".to_owned()])
            .chain(["Technical Support Premium Customers West 1".to_owned()])
            .collect();
        let (size, labels) = fit_labels(&names, 100.0, 6.0..=10.0, measure);
        assert_eq!(size, 6.0);
        for (name, label) in names.iter().zip(&labels) {
            assert!(measure(label, size) <= 100.0, "{label} fits");
            assert!(label.contains('…'), "{name} was cut: {label}");
        }
        assert!(labels[11].ends_with(" 12"), "{}", labels[11]);
        let distinct: std::collections::BTreeSet<&String> = labels.iter().collect();
        assert_eq!(
            distinct.len(),
            names.len(),
            "no two read the same: {labels:?}"
        );
    }

    #[test]
    fn thresholds_turn_amber_then_red_and_a_team_override_wins() {
        let floor = sample::floor(50, 1, NOW);
        let team = floor.teams().next().expect("team").clone();
        let other = floor.teams().nth(1).expect("team").clone();
        let mut thresholds = Thresholds::default();
        thresholds.teams.insert(
            team.name.clone(),
            BTreeMap::from([(
                "not_ready".to_owned(),
                Limit {
                    amber_secs: 60,
                    red_secs: 120,
                },
            )]),
        );
        // Lunch is longer everywhere; this team's breaks are shorter.
        let limit = |amber_mins: u32, red_mins: u32| Limit {
            amber_secs: amber_mins * 60,
            red_secs: red_mins * 60,
        };
        thresholds
            .default
            .insert("not_ready:lunch".to_owned(), limit(30, 40));
        let own = thresholds.teams.get_mut(&team.name).expect("the team's");
        own.insert("not_ready:break".to_owned(), limit(5, 8));
        // A reason the floor does not know changes nothing.
        own.insert("not_ready:nap".to_owned(), limit(1, 2));
        let levels = Levels::new(&thresholds, &floor);
        let minutes = |m: u64| m * 60_000;
        let reason = |code: &str| {
            let id = (floor.reasons())
                .find(|reason| reason.code == code)
                .expect("known")
                .id;
            AgentStatus::NotReady(Some(id))
        };
        let not_ready = AgentStatus::NotReady(None);
        for (team, status, time_ms, level) in [
            (team.id, not_ready, minutes(1), Level::Amber),
            (team.id, not_ready, minutes(2), Level::Red),
            (other.id, not_ready, minutes(2), Level::Normal),
            (other.id, not_ready, minutes(10), Level::Amber),
            (other.id, not_ready, minutes(15), Level::Red),
            // The reason's limit over the state's, the default's or the team's.
            (other.id, reason("lunch"), minutes(20), Level::Normal),
            (other.id, reason("lunch"), minutes(35), Level::Amber),
            (team.id, reason("lunch"), minutes(2), Level::Normal),
            (team.id, reason("lunch"), minutes(40), Level::Red),
            // The team's reason over the default's state.
            (team.id, reason("break"), minutes(6), Level::Amber),
            (other.id, reason("break"), minutes(6), Level::Normal),
            // A reason without its own limit: the state's.
            (team.id, reason("training"), minutes(2), Level::Red),
            (team.id, AgentStatus::WrapUp, 89_000, Level::Normal),
            (team.id, AgentStatus::WrapUp, 90_000, Level::Amber),
            (team.id, AgentStatus::Available, minutes(600), Level::Normal),
            // An agent without a signal is over the default as soon as the server marks it.
            (team.id, AgentStatus::Stale, minutes(5), Level::Amber),
            (team.id, AgentStatus::Stale, minutes(15), Level::Red),
        ] {
            assert_eq!(
                levels.level(team, status, time_ms),
                level,
                "{status:?} for {time_ms} ms in team {team:?}"
            );
        }
    }

    #[test]
    fn an_agent_going_red_alerts_once_as_chosen_and_not_while_muted() {
        let mut floor = sample::floor(300, 5, NOW);
        // Everyone available but two on lunch long since: only Anna goes red later.
        let ids: Vec<AgentId> = floor.agents().map(|record| record.info.id).collect();
        for id in &ids {
            floor
                .set_status(*id, AgentStatus::Available, NOW)
                .expect("known");
        }
        let lunch = (floor.reasons())
            .find(|r| r.code == "lunch")
            .expect("lunch")
            .id;
        for id in &ids[1..3] {
            (floor.set_status(*id, AgentStatus::NotReady(Some(lunch)), NOW - 3_600_000))
                .expect("known");
        }
        floor.advance(floor.seq() + 1, NOW);
        let levels = Levels::new(&Thresholds::default(), &floor);
        let lunch = (floor.reasons())
            .find(|r| r.code == "lunch")
            .expect("lunch")
            .id;
        let anna = floor.agents().next().expect("an agent").info.clone();
        let choices = BTreeMap::from([(
            "not_ready:lunch".to_owned(),
            AlertChoice {
                notify: true,
                sound: true,
            },
        )]);
        let look = |floor: &Floor, alerts: &mut AgentAlerts, muted: bool, now: u64| {
            let selection = Selection::compute(floor, &Filter::default(), "", Sort::default());
            let red = attention(&selection, &levels, now);
            alerts.news(&red, floor, &choices, muted, now)
        };
        let mut alerts = AgentAlerts::default();
        // What is red at the start is on screen, not news.
        assert_eq!(look(&floor, &mut alerts, false, NOW), []);
        // Anna goes to lunch; at 15 minutes she is red: one alert, with sound.
        floor
            .set_status(anna.id, AgentStatus::NotReady(Some(lunch)), NOW)
            .expect("known");
        floor.advance(floor.seq() + 1, NOW);
        assert_eq!(look(&floor, &mut alerts, false, NOW + 60_000), []);
        let later = NOW + 15 * 60_000;
        let news = look(&floor, &mut alerts, false, later);
        let mine: Vec<&AgentAlert> = news
            .iter()
            .filter(|alert| alert.text.starts_with(&anna.name))
            .collect();
        assert_eq!(mine.len(), 1, "{news:?}");
        assert_eq!(
            mine[0].text,
            format!("{}: Not ready (Lunch) for 15:00", anna.name)
        );
        assert!(mine[0].sound);
        // Once per red stretch.
        let news = look(&floor, &mut alerts, false, later + 60_000);
        assert!(!news.iter().any(|alert| alert.text.starts_with(&anna.name)));
        // A break alerts nothing: no choice for it or for not ready.
        let breaks = (floor.reasons())
            .find(|r| r.code == "break")
            .expect("break")
            .id;
        floor
            .set_status(anna.id, AgentStatus::NotReady(Some(breaks)), later)
            .expect("known");
        floor.advance(floor.seq() + 1, later);
        let news = look(&floor, &mut alerts, false, later + 16 * 60_000);
        assert!(
            !news.iter().any(|alert| alert.text.starts_with(&anna.name)),
            "{news:?}"
        );
        // Muted: lunch again, red, and nothing said.
        let again = later + 20 * 60_000;
        floor
            .set_status(anna.id, AgentStatus::NotReady(Some(lunch)), again)
            .expect("known");
        floor.advance(floor.seq() + 1, again);
        let news = look(&floor, &mut alerts, true, again + 16 * 60_000);
        assert_eq!(news, []);
    }

    #[test]
    fn attention_lists_red_before_amber_and_the_longest_first() {
        let floor = sample::floor(2_000, 5, NOW);
        let selection = Selection::compute(&floor, &Filter::default(), "", Sort::default());
        let levels = Levels::new(&Thresholds::default(), &floor);
        let alerts = attention(&selection, &levels, NOW);
        assert!(alerts.iter().any(|alert| alert.level == Level::Red));
        assert!(alerts.iter().any(|alert| alert.level == Level::Amber));
        assert!(alerts.is_sorted_by(
            |a, b| a.level > b.level || (a.level == b.level && a.severity >= b.severity)
        ));
        let over = selection
            .rows
            .iter()
            .filter(|row| levels.level(row.team, row.status, NOW - row.since_ms) != Level::Normal)
            .count();
        assert_eq!(alerts.len(), over);
    }

    #[test]
    fn offline_agents_read_as_a_clock_time() {
        use chrono::{Local, TimeZone};
        let today = Local
            .with_ymd_and_hms(2026, 11, 30, 18, 5, 0)
            .single()
            .expect("a time");
        let now = Local
            .with_ymd_and_hms(2026, 11, 30, 21, 0, 0)
            .single()
            .expect("a time");
        let ms = |time: chrono::DateTime<Local>| time.timestamp_millis() as u64;
        assert_eq!(since_text(ms(today), ms(now)), "since 18:05");
        let yesterday = today - chrono::Duration::days(2);
        assert_eq!(since_text(ms(yesterday), ms(now)), "since 28 Nov 18:05");
        let text = time_in_state_text(StateKind::Offline, ms(today), ms(now));
        assert_eq!(text, "since 18:05");
        let text = time_in_state_text(StateKind::OnCall, ms(today), ms(now));
        assert_eq!(text, "2:55:00");
        assert_eq!(plural(1u32, "agent"), "1 agent");
        assert_eq!(plural(0u32, "agent"), "0 agents");
        assert_eq!(plural(12u32, "second"), "12 seconds");
    }

    #[test]
    fn durations_read_as_minutes_and_hours() {
        assert_eq!(duration_text(0), "0:00");
        assert_eq!(duration_text(61_999), "1:01");
        assert_eq!(duration_text(3_600_000 + 5 * 60_000 + 9_000), "1:05:09");
    }
}
