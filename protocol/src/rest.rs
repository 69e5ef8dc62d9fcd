//! The JSON bodies of MONTI's REST API, shared by the server and the clients.
//!
//! The stream carries dense ids and compact states; REST carries the same facts in a form a
//! person or a script can read: state names as strings, times as milliseconds since the epoch.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::floor::{Floor, GroupStats};
use crate::message::Subscription;
use crate::model::{Grouping, StateKind};
use crate::queue::{QueueCounts, ServiceLevelRule};
use crate::scope::{Scope, View};

/// A site in REST answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteJson {
    /// The dense id the stream uses.
    pub id: u16,
    /// Display name.
    pub name: String,
    /// How many active agents work there.
    pub n_agents: u32,
}

/// A team in REST answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamJson {
    /// The dense id the stream uses.
    pub id: u16,
    /// Display name.
    pub name: String,
    /// How many active agents it has.
    pub n_agents: u32,
}

/// A reason code in REST answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasonJson {
    /// The dense id the stream uses.
    pub id: u16,
    /// Stable code such as `lunch`.
    pub code: String,
    /// Display label.
    pub label: String,
}

/// An agent with its current state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentJson {
    /// The dense id the stream uses.
    pub id: u32,
    /// Display name.
    pub name: String,
    /// Team id.
    pub team: u16,
    /// Site id.
    pub site: u16,
    /// State name, see `StateKind::name`.
    pub state: String,
    /// Not-ready reason code, if any.
    pub reason: Option<String>,
    /// When the state began, milliseconds since the Unix epoch.
    pub since_ms: u64,
}

/// One page of agents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentPage {
    /// How many agents match the filter in all.
    pub total: usize,
    /// The offset of the first agent in `agents`.
    pub offset: usize,
    /// At most `limit` agents.
    pub agents: Vec<AgentJson>,
}

/// One group's counts, keyed by state name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupJson {
    /// Team id, for team and team x site groups.
    pub team: Option<u16>,
    /// Site id, for site and team x site groups.
    pub site: Option<u16>,
    /// Display name such as `Billing 2 @ Berlin`.
    pub name: String,
    /// Agents in the group.
    pub n_agents: u32,
    /// Agents per state name (every state present, zero included).
    pub counts: BTreeMap<String, u32>,
    /// Per state name, the longest time an agent has been in it, in milliseconds.
    pub longest_ms: BTreeMap<String, u64>,
}

/// The whole floor summarised: what `GET /api/v1/floor/summary` and `monti-cli watch --once
/// --json` print.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FloorSummaryJson {
    /// Sequence number the summary shows.
    pub seq: u64,
    /// Server time of that sequence number, milliseconds since the epoch.
    pub time_ms: u64,
    /// Agents in view.
    pub n_agents: usize,
    /// The grouping: `team`, `site` or `team_site`.
    pub grouping: String,
    /// Agents per state name over the whole view.
    pub totals: BTreeMap<String, u32>,
    /// The groups.
    pub groups: Vec<GroupJson>,
    /// The queues in view with their live figures (a floor that holds queues).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queues: Vec<QueueLiveJson>,
    /// The service-level formula the queue figures use, in words (with `queues`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_level_formula: Option<String>,
    /// The length of the queues' `recent` window, minutes (with `queues`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent_minutes: Option<u16>,
}

/// One queue right now: `monti-cli watch --queues --json` and `GET /api/v1/floor/summary`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueLiveJson {
    /// The queue's name.
    pub name: String,
    /// `voice`, `chat`, `email` or `task`.
    pub channel: String,
    /// Service-level target, seconds.
    pub target_secs: u32,
    /// Service-level goal, percent.
    pub goal_percent: u8,
    /// Contacts waiting.
    pub waiting: u32,
    /// How long the oldest of them has waited, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_waiting_secs: Option<u64>,
    /// Agents of the serving teams in view who are logged in (when the floor can tell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staffed: Option<u32>,
    /// Of those, available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available: Option<u32>,
    /// Since midnight.
    pub today: QueueCountsJson,
    /// Over the last `recent_minutes`.
    pub recent: QueueCountsJson,
}

/// How a server signs callers in: `GET /api/v1/auth`, readable without a token so that an app
/// knows where to sign in before it can.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthJson {
    /// `none` or `oidc`.
    pub mode: String,
    /// The provider's issuer URL (oidc).
    pub issuer: Option<String>,
    /// The public client id to sign in with (oidc).
    pub client_id: Option<String>,
    /// The audience (resource) to ask tokens for (oidc).
    pub audience: Option<String>,
    /// The scopes to ask for (oidc); absent from servers that predate it: `openid
    /// offline_access`, with `audience` as the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<String>,
    /// The `resource` parameter to send (RFC 8707), if any (oidc, with `scopes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// A fixed loopback callback for the browser sign-in, if the server names one (oidc).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// The oldest apps this server supports, and where newer ones are; absent when the server
    /// names none (and from servers that predate it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<ClientsJson>,
}

/// Which apps a server supports: `GET /api/v1/auth`'s `clients`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientsJson {
    /// The oldest app version the server supports, `major.minor.patch`.
    pub oldest_version: String,
    /// Where to get a newer app, if the server names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
}

impl ClientsJson {
    /// The version to update to when an app of `version` is older than the server supports;
    /// `None` when it is not (or either version is not `major.minor.patch`).
    pub fn update_needed(&self, version: &str) -> Option<&str> {
        let ours = parse_version(version)?;
        let oldest = parse_version(&self.oldest_version)?;
        (ours < oldest).then_some(self.oldest_version.as_str())
    }
}

/// `major.minor.patch` (a pre-release or build suffix after `-` or `+` is ignored) as numbers,
/// for comparing.
pub fn parse_version(version: &str) -> Option<[u64; 3]> {
    let core = version.trim().split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|part| part.parse::<u64>().ok());
    let version = [parts.next()??, parts.next()??, parts.next()??];
    parts.next().is_none().then_some(version)
}

/// Who the caller is, from `GET /api/v1/me`, so an app can show who is signed in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeJson {
    /// The token's subject (`local` in the embedded default).
    pub subject: String,
    /// The caller's roles, for example `supervisor`, each once.
    pub roles: Vec<String>,
    /// What the caller may do (somewhere in their scope), for example `change_config`: the
    /// apps offer only what the server would allow.
    #[serde(default)]
    pub may: Vec<String>,
    /// The caller's address as the server sees it (behind a load balancer: as its trusted
    /// proxy forwarded it), for checking a proxy set-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Whether the caller reached the server over https (at the server or at its trusted proxy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https: Option<bool>,
    /// The groups the token carried, as the server read them (empty in the embedded default).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Why `roles` is empty, or why the token carried no groups: what to fix, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// When time in a state turns an agent's tile amber, then red.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Seconds in the state after which the tile turns amber.
    pub amber_secs: u32,
    /// Seconds after which it turns red; above `amber_secs`.
    pub red_secs: u32,
}

/// Time-in-state thresholds: defaults per state or not-ready reason, and per team name
/// overrides.
///
/// A key is a state name (`StateKind::name`) or `not_ready:<reason code>` for one reason
/// (`not_ready:lunch`). For an agent, the most specific limit applies: their team's for their
/// reason, the default for their reason, their team's for their state, the default for their
/// state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Per key.
    pub default: BTreeMap<String, Limit>,
    /// Per team name, per key; replaces the default for that team and key.
    #[serde(default)]
    pub teams: BTreeMap<String, BTreeMap<String, Limit>>,
}

/// What a threshold key names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ThresholdKey {
    /// Every agent in a state.
    State(StateKind),
    /// Agents not ready for this reason (its code).
    Reason(String),
}

/// The prefix of a key for one not-ready reason.
pub const REASON_KEY_PREFIX: &str = "not_ready:";

impl ThresholdKey {
    /// Reads a key: a state name, or `not_ready:` and a reason code.
    pub fn parse(key: &str) -> Option<ThresholdKey> {
        match key.strip_prefix(REASON_KEY_PREFIX) {
            Some(code) => (crate::names::name_problem(code).is_none())
                .then(|| ThresholdKey::Reason(code.to_owned())),
            None => StateKind::from_name(key).map(ThresholdKey::State),
        }
    }

    /// The key as stored.
    pub fn key(&self) -> String {
        match self {
            ThresholdKey::State(kind) => kind.name().to_owned(),
            ThresholdKey::Reason(code) => format!("{REASON_KEY_PREFIX}{code}"),
        }
    }
}

impl Default for Thresholds {
    /// What a call center usually starts with: ringing 15/20 s, hold 60/120 s, wrap-up 90/120 s,
    /// not ready 10/15 min, and no signal 5/15 min. Time in "no signal" counts from when the agent
    /// was last heard of, and the server marks agents so after `[ingest] stale_after_secs` (300 by
    /// default), so a silent agent enters the attention list as soon as it is marked.
    fn default() -> Self {
        let limit = |amber_secs, red_secs| Limit {
            amber_secs,
            red_secs,
        };
        Thresholds {
            default: BTreeMap::from([
                (StateKind::Ringing.name().to_owned(), limit(15, 20)),
                (StateKind::OnHold.name().to_owned(), limit(60, 120)),
                (StateKind::WrapUp.name().to_owned(), limit(90, 120)),
                (StateKind::NotReady.name().to_owned(), limit(600, 900)),
                (StateKind::Stale.name().to_owned(), limit(300, 900)),
            ]),
            teams: BTreeMap::new(),
        }
    }
}

impl Thresholds {
    /// Refuses keys that are neither a state nor a reason, and limits whose red does not come
    /// after amber.
    pub fn check(&self) -> Result<(), String> {
        let per_team = self
            .teams
            .iter()
            .flat_map(|(team, limits)| limits.iter().map(move |entry| (Some(team), entry)));
        for (team, (state, limit)) in self
            .default
            .iter()
            .map(|entry| (None, entry))
            .chain(per_team)
        {
            let place = team.map_or_else(String::new, |team| format!(" for team {team:?}"));
            if ThresholdKey::parse(state).is_none() {
                return Err(format!(
                    "unknown state {state:?}{place}; use a state name or \
                     {REASON_KEY_PREFIX}<reason code>"
                ));
            }
            if limit.red_secs <= limit.amber_secs {
                return Err(format!(
                    "red_secs must be above amber_secs for {state}{place}"
                ));
            }
        }
        Ok(())
    }
}

/// One page of a wallboard's rotation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WallboardPage {
    /// What the page shows.
    pub kind: PageKind,
    /// How long it stays, in seconds.
    pub seconds: u32,
}

/// What a wallboard page shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageKind {
    /// Big numbers per state for the wallboard's whole scope.
    Totals,
    /// A row per site with its counts per state.
    Sites,
    /// A card per team with its counts per state.
    Teams,
    /// The agents over a threshold, worst first.
    Attention,
    /// A row per queue: waiting, longest wait, service level, answered and abandoned today.
    /// Left out of the rotation while the floor has no queues.
    Queues,
}

impl PageKind {
    /// The page's name on screen.
    pub fn title(self) -> &'static str {
        match self {
            PageKind::Totals => "Floor",
            PageKind::Sites => "Sites",
            PageKind::Teams => "Teams",
            PageKind::Attention => "Attention",
            PageKind::Queues => "Queues",
        }
    }
}

/// Hours during which a wallboard dims its screen, `HH:MM` local time; `from` after `to` spans
/// midnight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NightHours {
    /// When dimming starts.
    pub from: String,
    /// When it ends.
    pub to: String,
    /// Brightness while dimmed, in percent (10 to 100).
    pub brightness_percent: u8,
}

impl NightHours {
    /// Minutes after midnight of `from` and `to`, or why they cannot be read.
    pub fn minutes(&self) -> Result<(u32, u32), String> {
        let parse = |text: &str| -> Result<u32, String> {
            let (hours, minutes) = text
                .split_once(':')
                .ok_or_else(|| format!("{text:?} is not HH:MM"))?;
            let hours: u32 = hours
                .parse()
                .map_err(|_| format!("{text:?} is not HH:MM"))?;
            let minutes: u32 = minutes
                .parse()
                .map_err(|_| format!("{text:?} is not HH:MM"))?;
            if hours > 23 || minutes > 59 {
                return Err(format!("{text:?} is not a time of day"));
            }
            Ok(hours * 60 + minutes)
        };
        Ok((parse(&self.from)?, parse(&self.to)?))
    }

    /// Whether `minute` (after midnight) falls in the night hours.
    pub fn contains(&self, minute: u32) -> bool {
        match self.minutes() {
            Ok((from, to)) if from <= to => (from..to).contains(&minute),
            Ok((from, to)) => minute >= from || minute < to,
            Err(_) => false,
        }
    }
}

/// What one wallboard shows: its pages in order, and the teams and sites it covers (names;
/// empty lists mean all the wallboard may see). `GET /api/v1/config/wallboards/{name}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WallboardConfig {
    /// The rotation.
    pub pages: Vec<WallboardPage>,
    /// Only these teams.
    #[serde(default)]
    pub teams: Vec<String>,
    /// Only these sites.
    #[serde(default)]
    pub sites: Vec<String>,
    /// When to dim the screen, if ever.
    #[serde(default)]
    pub night: Option<NightHours>,
    /// Set by the server when the configuration names teams the caller may not see: they are
    /// left out of `teams`, and if that leaves it empty the wallboard shows no team (not all).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidden_teams: bool,
    /// The same for sites.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidden_sites: bool,
}

impl Default for WallboardConfig {
    /// Every page: the floor and the queues for 20 s each, then sites, teams and the attention
    /// list for 15 s each (the queues only on a floor that has some).
    fn default() -> Self {
        let page = |kind, seconds| WallboardPage { kind, seconds };
        WallboardConfig {
            pages: vec![
                page(PageKind::Totals, 20),
                page(PageKind::Queues, 20),
                page(PageKind::Sites, 15),
                page(PageKind::Teams, 15),
                page(PageKind::Attention, 15),
            ],
            teams: Vec::new(),
            sites: Vec::new(),
            night: None,
            hidden_teams: false,
            hidden_sites: false,
        }
    }
}

impl WallboardConfig {
    /// Whether every team or every site it is configured for was left out: it shows nothing.
    pub fn shows_nothing(&self) -> bool {
        (self.hidden_teams && self.teams.is_empty()) || (self.hidden_sites && self.sites.is_empty())
    }

    /// Refuses an empty rotation, page times outside 3 s to 1 h, and unreadable night hours.
    pub fn check(&self) -> Result<(), String> {
        if self.pages.is_empty() {
            return Err("a wallboard needs at least one page".to_owned());
        }
        if let Some(page) = self
            .pages
            .iter()
            .find(|page| !(3..=3600).contains(&page.seconds))
        {
            return Err(format!(
                "page {:?} lasts {} s; pages last 3 to 3600 s",
                page.kind, page.seconds
            ));
        }
        if let Some(night) = &self.night {
            night.minutes()?;
            if !(10..=100).contains(&night.brightness_percent) {
                return Err("night brightness_percent must be 10 to 100".to_owned());
            }
        }
        Ok(())
    }
}

/// Every error the REST API returns has this body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorJson {
    /// A stable machine-readable code such as `bad_request`.
    pub error: String,
    /// What went wrong, for a person.
    pub message: String,
}

impl FloorSummaryJson {
    /// Summarises a floor (the server's, or a client's view) under `grouping`, counting only
    /// what `scope` covers. A client's floor is already cut to its scope and passes
    /// [`Scope::Everything`].
    pub fn from_floor(floor: &Floor, grouping: Grouping, scope: &Scope) -> FloorSummaryJson {
        let everything = Subscription::default();
        let view = View::new(&everything, scope);
        let groups: Vec<GroupJson> = floor
            .summaries(grouping)
            .iter()
            .filter_map(|stats| match scope {
                Scope::Everything => Some(stats.clone()),
                Scope::Only(_) => floor.group_stats(stats.key, Some(view)),
            })
            .map(|stats| GroupJson::from_stats(floor, &stats))
            .collect();
        let mut totals: BTreeMap<String, u32> = StateKind::ALL
            .iter()
            .map(|kind| (kind.name().to_owned(), 0))
            .collect();
        for group in &groups {
            for (state, count) in &group.counts {
                *totals.entry(state.clone()).or_default() += count;
            }
        }
        let rules = floor.queue_rules();
        let queues: Vec<QueueLiveJson> = (floor.queues())
            .filter_map(|queue| {
                let info = floor.queue_for(scope, queue.info.id)?;
                let agents = match scope {
                    Scope::Everything => floor.queue_agents(info.id),
                    Scope::Only(_) => None,
                };
                let now = &queue.now;
                Some(QueueLiveJson {
                    name: info.name,
                    channel: info.channel.name().to_owned(),
                    target_secs: info.target_secs,
                    goal_percent: info.goal_percent,
                    waiting: now.waiting,
                    oldest_waiting_secs: (now.oldest_waiting_since_ms)
                        .map(|since| floor.time_ms().saturating_sub(since) / 1000),
                    staffed: agents.map(|agents| agents.staffed),
                    available: agents.map(|agents| agents.available),
                    today: QueueCountsJson::of(&now.today, rules.service_level),
                    recent: QueueCountsJson::of(&now.recent, rules.service_level),
                })
            })
            .collect();
        let any = !queues.is_empty();
        FloorSummaryJson {
            queues,
            service_level_formula: any.then(|| rules.service_level.formula().to_owned()),
            recent_minutes: any.then_some(rules.recent_minutes),
            seq: floor.seq(),
            time_ms: floor.time_ms(),
            n_agents: match scope {
                Scope::Everything => floor.n_agents(),
                Scope::Only(_) => (floor.agents())
                    .filter(|agent| scope.covers(agent.info.team, agent.info.site))
                    .count(),
            },
            grouping: grouping.name().to_owned(),
            totals,
            groups,
        }
    }
}

impl GroupJson {
    /// The JSON form of one group's stats, named from the floor's teams and sites.
    pub fn from_stats(floor: &Floor, stats: &GroupStats) -> GroupJson {
        let team = stats
            .key
            .team
            .map(|id| floor.team(id).map_or("?", |team| &team.name));
        let site = stats
            .key
            .site
            .map(|id| floor.site(id).map_or("?", |site| &site.name));
        let name = match (team, site) {
            (Some(team), Some(site)) => format!("{team} @ {site}"),
            (Some(name), None) | (None, Some(name)) => name.to_owned(),
            (None, None) => "All".to_owned(),
        };
        let longest_ms = StateKind::ALL
            .iter()
            .filter_map(|kind| {
                let since = stats.oldest_since_ms[kind.index()]?;
                Some((
                    kind.name().to_owned(),
                    floor.time_ms().saturating_sub(since),
                ))
            })
            .collect();
        GroupJson {
            team: stats.key.team.map(|id| id.0),
            site: stats.key.site.map(|id| id.0),
            name,
            n_agents: stats.total(),
            counts: StateKind::ALL
                .iter()
                .map(|kind| (kind.name().to_owned(), stats.counts[kind.index()]))
                .collect(),
            longest_ms,
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_app_older_than_the_server_supports_is_told_which_version_to_update_to() {
        let clients = ClientsJson {
            oldest_version: "0.10.2".to_owned(),
            download_url: Some("https://monti.example.com/download".to_owned()),
        };
        assert_eq!(clients.update_needed("0.9.9"), Some("0.10.2"));
        assert_eq!(clients.update_needed("0.10.1"), Some("0.10.2"));
        assert_eq!(clients.update_needed("0.10.2"), None);
        assert_eq!(clients.update_needed("0.10.10"), None, "numbers, not text");
        assert_eq!(clients.update_needed("1.0.0-rc.1"), None);
        assert_eq!(clients.update_needed("soon"), None);
        assert_eq!(parse_version("1.2"), None);
        assert_eq!(parse_version("1.2.3.4"), None);
        assert_eq!(parse_version(" 1.2.3+build.7 "), Some([1, 2, 3]));
        // A server that predates the field answers without it.
        let old: AuthJson = serde_json::from_str(
            r#"{"mode":"none","issuer":null,"client_id":null,"audience":null}"#,
        )
        .expect("an old server's answer");
        assert_eq!(old.clients, None);
    }

    use super::*;

    #[test]
    fn threshold_keys_name_a_state_or_a_reason() {
        assert_eq!(
            ThresholdKey::parse("wrap_up"),
            Some(ThresholdKey::State(StateKind::WrapUp))
        );
        let lunch = ThresholdKey::parse("not_ready:lunch");
        assert_eq!(lunch, Some(ThresholdKey::Reason("lunch".to_owned())));
        assert_eq!(
            lunch.map(|key| key.key()).as_deref(),
            Some("not_ready:lunch")
        );
        for bad in [
            "sleeping",
            "not_ready:",
            "not_ready: ",
            "not_ready:a\u{7}b",
            "ready:lunch",
        ] {
            assert_eq!(ThresholdKey::parse(bad), None, "{bad:?}");
        }
    }
    use crate::model::{AgentId, AgentInfo, AgentStatus, SiteId, Team, TeamId};
    use crate::scope::Grant;

    #[test]
    fn wallboard_configs_are_checked_and_night_hours_may_span_midnight() {
        assert_eq!(WallboardConfig::default().check(), Ok(()));
        let empty = WallboardConfig {
            pages: Vec::new(),
            ..WallboardConfig::default()
        };
        assert!(empty.check().is_err());
        let mut short = WallboardConfig::default();
        short.pages[0].seconds = 1;
        assert!(short.check().expect_err("too short").contains("3 to 3600"));
        let night = NightHours {
            from: "22:00".into(),
            to: "06:30".into(),
            brightness_percent: 30,
        };
        assert!(night.contains(23 * 60) && night.contains(0) && night.contains(6 * 60 + 29));
        assert!(!night.contains(6 * 60 + 30) && !night.contains(12 * 60));
        let day = NightHours {
            from: "12:00".into(),
            to: "13:00".into(),
            brightness_percent: 50,
        };
        assert!(day.contains(12 * 60 + 30) && !day.contains(13 * 60));
        let bad = WallboardConfig {
            night: Some(NightHours {
                from: "25:00".into(),
                ..night.clone()
            }),
            ..WallboardConfig::default()
        };
        assert!(bad.check().expect_err("no time").contains("25:00"));
        let parsed: Result<WallboardConfig, _> =
            serde_json::from_str(r#"{"pages":[{"kind":"clock","seconds":10}]}"#);
        assert!(parsed.is_err(), "unknown page kinds are refused");
    }

    #[test]
    fn a_wallboard_cut_to_nothing_shows_nothing_and_an_uncut_one_reads_as_before() {
        let plain = WallboardConfig::default();
        assert!(!plain.shows_nothing());
        // Apps that predate the flags refuse unknown fields: an uncut configuration omits them.
        let json = serde_json::to_string(&plain).expect("json");
        assert!(!json.contains("hidden"), "{json}");
        let cut = WallboardConfig {
            teams: vec![],
            hidden_teams: true,
            ..WallboardConfig::default()
        };
        assert!(cut.shows_nothing(), "an emptied list is not \"every team\"");
        let partly = WallboardConfig {
            teams: vec!["Sales 1".into()],
            hidden_teams: true,
            ..WallboardConfig::default()
        };
        assert!(!partly.shows_nothing());
    }

    #[test]
    fn a_scoped_summary_counts_and_names_only_the_scope() {
        let mut floor = Floor::new();
        for team in 0..2 {
            floor.upsert_team(Team {
                id: TeamId(team),
                name: format!("Team {team}"),
            });
        }
        for idx in 0..6u32 {
            let info = AgentInfo {
                id: AgentId(idx),
                name: format!("A{idx}"),
                team: TeamId((idx % 2) as u16),
                site: SiteId(0),
            };
            floor.upsert_agent(info).expect("added");
            floor
                .set_status(AgentId(idx), AgentStatus::Available, 0)
                .expect("set");
        }
        let team_1 = Scope::Only(vec![Grant {
            teams: vec![TeamId(1)],
            sites: vec![],
        }]);
        let summary = FloorSummaryJson::from_floor(&floor, Grouping::Team, &team_1);
        assert_eq!(summary.n_agents, 3);
        assert_eq!(
            summary
                .groups
                .iter()
                .map(|group| group.name.as_str())
                .collect::<Vec<_>>(),
            ["Team 1"]
        );
        assert_eq!(summary.totals["available"], 3);
        let all = FloorSummaryJson::from_floor(&floor, Grouping::Team, &Scope::Everything);
        assert_eq!(all.n_agents, 6);
        assert_eq!(all.groups.len(), 2);
    }
}

/// A queue: `GET /api/v1/queues`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueJson {
    /// Its name.
    pub name: String,
    /// `voice`, `chat`, `email` or `task`.
    pub channel: String,
    /// Service level target: answered within this many seconds...
    pub target_secs: u64,
    /// ... this share of the time, percent.
    pub goal_percent: u8,
}

/// A queue's figures over a period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueFiguresJson {
    /// The queue.
    pub queue: QueueJson,
    /// Contacts waiting (or ringing) now.
    pub waiting: u64,
    /// When the oldest of them entered the queue, ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_waiting_since_ms: Option<u64>,
    /// What the contacts that entered the queue in the period did.
    #[serde(flatten)]
    pub counts: QueueCountsJson,
}

/// What the contacts that entered a queue in a period did (flattened into the figures and
/// the intervals).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueCountsJson {
    /// Contacts that entered the queue in the period.
    pub offered: u64,
    /// Of those, answered.
    pub answered: u64,
    /// Of those, answered within the target.
    pub answered_in_target: u64,
    /// Abandoned.
    pub abandoned: u64,
    /// Of those, within `[queues] short_abandon_secs`.
    pub abandoned_short: u64,
    /// Service level by the formula the answer names, 0 to 1 (none before anything counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_level: Option<f64>,
    /// Average speed of answer, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asa_secs: Option<f64>,
    /// The longest wait of an answered or abandoned contact, seconds.
    pub longest_wait_secs: f64,
    /// Average handle time (connected to ended: talk and hold), seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aht_secs: Option<f64>,
}

impl QueueCountsJson {
    /// A queue's counts as the apps read them, the service level by `rule`.
    pub fn of(counts: &QueueCounts, rule: ServiceLevelRule) -> QueueCountsJson {
        QueueCountsJson {
            offered: counts.offered,
            answered: counts.answered,
            answered_in_target: counts.answered_in_target,
            abandoned: counts.abandoned,
            abandoned_short: counts.abandoned_short,
            service_level: rule.of(counts),
            asa_secs: counts.asa_secs(),
            longest_wait_secs: counts.longest_wait_ms as f64 / 1000.0,
            aht_secs: counts.aht_secs(),
        }
    }
}

/// `GET /api/v1/queues/summary`: every queue's figures over a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueSummaryJson {
    /// `15m`, `30m`, `60m` or `today`.
    pub window: String,
    /// The period, ms since the epoch: from (inclusive)...
    pub from_ms: u64,
    /// ... to (exclusive).
    pub to_ms: u64,
    /// The service level formula, in words, for the apps to show.
    pub service_level_formula: String,
    /// Per queue.
    pub queues: Vec<QueueFiguresJson>,
}

/// One interval of one queue: `GET /api/v1/intervals`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IntervalJson {
    /// The queue.
    pub queue: String,
    /// When the interval begins, ms since the epoch.
    pub from_ms: u64,
    /// What the contacts that entered the queue in the interval did.
    #[serde(flatten)]
    pub counts: QueueCountsJson,
}

/// The most points a trend answers with: a day by the minute.
pub const TREND_MAX_POINTS: u64 = 1_441;

/// The longest period a trend covers: a week.
pub const TREND_MAX_SPAN_MS: u64 = 7 * 86_400_000;

/// The finest step of a trend.
pub const TREND_MIN_STEP_MS: u64 = 10_000;

/// How many agents were in each state over a period: `GET /api/v1/trend`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrendJson {
    /// The first point, ms since the epoch.
    pub from_ms: u64,
    /// The time between points.
    pub step_ms: u64,
    /// Per state name (every state), the agents in it at `from_ms + i * step_ms`; every list
    /// has the same length.
    pub states: BTreeMap<String, Vec<u32>>,
}

impl TrendJson {
    /// How many points there are.
    pub fn len(&self) -> usize {
        self.states.values().map(Vec::len).max().unwrap_or(0)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The agents in `kind` at point `i` (0 where the answer has no such state or point).
    pub fn count(&self, kind: StateKind, i: usize) -> u32 {
        (self.states.get(kind.name()))
            .and_then(|counts| counts.get(i))
            .copied()
            .unwrap_or(0)
    }

    /// When point `i` was taken.
    pub fn at_ms(&self, i: usize) -> u64 {
        self.from_ms + i as u64 * self.step_ms
    }
}
