//! Who may see what, as administrators write it down: roles, the group bindings that grant them,
//! the "as" of test access, and feedback sent from the apps. What each role may do is the
//! server's policy (`monti_server::api::auth`); this is only the shared vocabulary and its limits.

use serde::{Deserialize, Serialize};

use crate::names::name_problem;

/// The header that carries test access on REST calls: [`ViewAs::query`]'s pairs, URL-encoded
/// (the stream takes the same pairs in its query).
pub const VIEW_AS_HEADER: &str = "monti-view-as";

/// Most group bindings a server keeps.
pub const MAX_BINDINGS: usize = 1_000;
/// Most teams or sites one binding names.
pub const MAX_BINDING_NAMES: usize = 1_000;
/// Longest group name, in bytes (as the provider's groups claim writes it).
pub const MAX_GROUP_BYTES: usize = 256;
/// Longest feedback text, in bytes.
pub const MAX_FEEDBACK_TEXT: usize = 10_000;
/// Largest screenshot attached to feedback (PNG), in bytes.
pub const MAX_FEEDBACK_SCREENSHOT: usize = 4 << 20;

/// What a binding lets its holder do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, everywhere in its scope, including configuration and the audit log.
    Admin,
    /// Runs sites or teams: sees summaries and agents, reads configuration.
    Supervisor,
    /// Runs a team: sees summaries and agents.
    TeamLead,
    /// A display on the floor: sees summaries and agents and reads its configuration, changes
    /// nothing.
    Wallboard,
    /// A telephony integration: sends events, sees nothing.
    Ingest,
}

impl Role {
    /// Every role, for table tests, pickers and documentation.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Supervisor,
        Role::TeamLead,
        Role::Wallboard,
        Role::Ingest,
    ];

    /// Its name as written in configuration, for example `team_lead`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::TeamLead => "team_lead",
            Role::Wallboard => "wallboard",
            Role::Ingest => "ingest",
        }
    }

    /// The role called `name` (as [`Role::name`] writes it).
    pub fn named(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.name() == name)
    }
}

/// Members of `group` get `role`, limited to the named teams and sites (none named: all).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupBinding {
    /// The group as it appears in the groups claim.
    pub group: String,
    /// The role it grants.
    pub role: Role,
    /// Team names; empty for every team.
    #[serde(default)]
    pub teams: Vec<String>,
    /// Site names; empty for every site.
    #[serde(default)]
    pub sites: Vec<String>,
}

/// Why a list of bindings cannot be stored, if it cannot: blank or overlong groups, names no
/// team or site could have, too many of anything, the same group, role and scope twice.
pub fn bindings_problem(bindings: &[GroupBinding]) -> Option<String> {
    if bindings.len() > MAX_BINDINGS {
        return Some(format!(
            "{} bindings; at most {MAX_BINDINGS}",
            bindings.len()
        ));
    }
    for (index, binding) in bindings.iter().enumerate() {
        let which = format!("binding {} ({:?})", index + 1, binding.group);
        if binding.group.trim().is_empty() {
            return Some(format!("binding {}: the group is empty", index + 1));
        }
        if binding.group.len() > MAX_GROUP_BYTES {
            return Some(format!(
                "{which}: the group is {} bytes; at most {MAX_GROUP_BYTES}",
                binding.group.len()
            ));
        }
        for (kind, names) in [("team", &binding.teams), ("site", &binding.sites)] {
            if names.len() > MAX_BINDING_NAMES {
                return Some(format!(
                    "{which}: {} {kind}s; at most {MAX_BINDING_NAMES}",
                    names.len()
                ));
            }
            if let Some((name, problem)) =
                (names.iter()).find_map(|name| name_problem(name).map(|problem| (name, problem)))
            {
                return Some(format!("{which}: the {kind} name {name:?} {problem}"));
            }
        }
        if bindings[..index].contains(binding) {
            return Some(format!("{which} is listed twice"));
        }
    }
    None
}

/// The group bindings in force, from `GET /api/v1/access/bindings`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingsJson {
    /// The bindings, in the order they were written.
    pub bindings: Vec<GroupBinding>,
    /// Who wrote them last: a subject, or `configuration file`.
    pub changed_by: String,
    /// When, milliseconds since the Unix epoch.
    pub changed_at_ms: u64,
    /// Which of the configuration file and the database wins, in words, for the admin screen.
    pub rule: String,
    /// Whether the configuration file names other bindings than these (they were changed here
    /// since the file was last read; the file wins again when its bindings change).
    pub file_differs: bool,
}

/// A person's computer or a wallboard PC that opened the stream, from
/// `GET /api/v1/access/devices` (administrators).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceJson {
    /// Whom it signs in as (the token's subject; a wallboard PC has an account of its own).
    pub subject: String,
    /// The wallboard it shows, when it is one.
    pub wallboard: Option<String>,
    /// Its app and version, as it said hello.
    pub client: String,
    /// Where it connected from last.
    pub address: Option<String>,
    /// First seen, milliseconds since the Unix epoch.
    pub first_seen_ms: u64,
    /// Last seen (connected or left).
    pub last_seen_ms: u64,
    /// Its open stream connections on the server that answered.
    pub connected: u32,
    /// When an administrator signed it out: its tokens from sign-ins before then are refused.
    pub signed_out_ms: Option<u64>,
}

/// Which Amazon Connect delivery a key lets in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// Kinesis Data Firehose's `X-Amz-Firehose-Access-Key` (agent and contact events).
    Firehose,
    /// The EventBridge API destination's key header (contact events).
    Eventbridge,
}

impl KeyKind {
    /// Both kinds.
    pub const ALL: [KeyKind; 2] = [KeyKind::Firehose, KeyKind::Eventbridge];

    /// Its name in words, for example `Firehose`.
    pub fn title(self) -> &'static str {
        match self {
            KeyKind::Firehose => "Firehose",
            KeyKind::Eventbridge => "EventBridge",
        }
    }
}

/// An ingest key the server accepts or accepted, from `GET /api/v1/access/keys`
/// (administrators); the key itself is shown once, when it is made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestKeyJson {
    /// Its name for retiring it: `file-firehose` for the configuration file's, else the first
    /// hex digits of its hash.
    pub id: String,
    /// What it lets in.
    pub kind: KeyKind,
    /// What the administrator called it, for example `2026-12 rotation`.
    pub label: String,
    /// Who made it (`configuration file` for the file's).
    pub created_by: String,
    /// When, ms since the epoch (0 for the file's).
    pub created_ms: u64,
    /// When it was retired: deliveries with it are refused since.
    pub retired_ms: Option<u64>,
}

/// A key just made: the secret to paste into AWS, shown this once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewIngestKeyJson {
    /// The key as listed.
    pub key: IngestKeyJson,
    /// The secret itself.
    pub secret: String,
}

/// What `POST /api/v1/access/keys` makes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    /// What it lets in.
    pub kind: KeyKind,
    /// A name for it, 1 to 100 characters.
    pub label: String,
}

/// Whom an administrator's test access shows the floor as: a group (its bindings as they stand)
/// or a role with a scope, computed by the server with the same code as a real sign-in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewAs {
    /// A member of this group (and of no other).
    Group(String),
    /// Someone bound to a role for these teams and sites (none named: all).
    Binding {
        /// The role.
        role: Role,
        /// Team names; empty for every team.
        #[serde(default)]
        teams: Vec<String>,
        /// Site names; empty for every site.
        #[serde(default)]
        sites: Vec<String>,
    },
}

impl ViewAs {
    /// The stream's query parameters that ask for it (appended to the stream's URL).
    pub fn query(&self) -> Vec<(&'static str, String)> {
        match self {
            ViewAs::Group(group) => vec![("as_group", group.clone())],
            ViewAs::Binding { role, teams, sites } => {
                let mut query = vec![("as_role", role.name().to_owned())];
                query.extend(teams.iter().map(|team| ("as_team", team.clone())));
                query.extend(sites.iter().map(|site| ("as_site", site.clone())));
                query
            }
        }
    }

    /// Reads it back from a query's `as_*` pairs; `Ok(None)` when there are none.
    pub fn from_query<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Option<ViewAs>, String> {
        let (mut group, mut role, mut teams, mut sites) = (None, None, Vec::new(), Vec::new());
        for (key, value) in pairs {
            match key {
                "as_group" if group.is_none() => group = Some(value.to_owned()),
                "as_role" if role.is_none() => {
                    role = Some(Role::named(value).ok_or_else(|| {
                        format!("as_role {value:?} is not a role (admin, supervisor, team_lead, wallboard, ingest)")
                    })?)
                }
                "as_team" => teams.push(value.to_owned()),
                "as_site" => sites.push(value.to_owned()),
                "as_group" | "as_role" => return Err(format!("{key} is given twice")),
                _ => {}
            }
        }
        let view_as = match (group, role) {
            (None, None) if teams.is_empty() && sites.is_empty() => return Ok(None),
            (None, None) => return Err("as_team and as_site need as_role".to_owned()),
            (Some(_), Some(_)) => {
                return Err("name either as_group or as_role, not both".to_owned());
            }
            (Some(_), None) if !teams.is_empty() || !sites.is_empty() => {
                return Err("as_group takes the group's own teams and sites; as_team and as_site go with as_role".to_owned());
            }
            (Some(group), None) => ViewAs::Group(group),
            (None, Some(role)) => ViewAs::Binding { role, teams, sites },
        };
        view_as.problem().map_or(Ok(Some(view_as)), Err)
    }

    /// Why the server would refuse it, if it would.
    pub fn problem(&self) -> Option<String> {
        let binding = match self {
            ViewAs::Group(group) => GroupBinding {
                group: group.clone(),
                role: Role::TeamLead,
                teams: Vec::new(),
                sites: Vec::new(),
            },
            ViewAs::Binding { role, teams, sites } => GroupBinding {
                group: "as".to_owned(),
                role: *role,
                teams: teams.clone(),
                sites: sites.clone(),
            },
        };
        bindings_problem(std::slice::from_ref(&binding))
    }

    /// In words, for the app's banner: `group monti-leads`, `team_lead of Billing 1`.
    pub fn text(&self) -> String {
        match self {
            ViewAs::Group(group) => format!("group {group}"),
            ViewAs::Binding { role, teams, sites } => {
                let role = role.name();
                match (teams.is_empty(), sites.is_empty()) {
                    (true, true) => format!("{role} everywhere"),
                    (false, true) => format!("{role} of {}", teams.join(", ")),
                    (true, false) => format!("{role} at {}", sites.join(", ")),
                    (false, false) => {
                        format!("{role} of {} at {}", teams.join(", "), sites.join(", "))
                    }
                }
            }
        }
    }
}

/// Feedback as an app sends it (`POST /api/v1/feedback`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewFeedback {
    /// What the person wrote.
    pub text: String,
    /// The app and its version, for example `monti-desktop 0.1.0`.
    #[serde(default)]
    pub client: String,
    /// The view and filters the app showed, in words.
    #[serde(default)]
    pub context: String,
    /// A PNG of the MONTI window, base64 (standard alphabet), when the person attached one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screenshot_png_base64: Option<String>,
}

impl NewFeedback {
    /// Why the server would refuse it, if it would (the screenshot's size is checked once
    /// decoded).
    pub fn problem(&self) -> Option<String> {
        if self.text.trim().is_empty() {
            return Some("the feedback text is empty".to_owned());
        }
        if self.text.len() > MAX_FEEDBACK_TEXT {
            return Some(format!(
                "the feedback text is {} bytes; at most {MAX_FEEDBACK_TEXT}",
                self.text.len()
            ));
        }
        for (what, value) in [("client", &self.client), ("context", &self.context)] {
            if value.len() > 1_000 {
                return Some(format!("the {what} is {} bytes; at most 1000", value.len()));
            }
        }
        None
    }
}

/// Stored feedback, from `GET /api/v1/feedback` (admins).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackJson {
    /// Its number; page back with `before`.
    pub id: i64,
    /// When it was sent, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Who sent it.
    pub subject: String,
    /// What they wrote.
    pub text: String,
    /// Their app and version.
    pub client: String,
    /// The view and filters they had.
    pub context: String,
    /// Whether a screenshot came with it (`GET /api/v1/feedback/{id}/screenshot`).
    pub has_screenshot: bool,
}

/// One audit log entry, from `GET /api/v1/audit` (administrators).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When, ms since the epoch.
    pub created_at: i64,
    /// Who (a token's subject), when known.
    pub subject: Option<String>,
    /// What: `sign_in`, `refused`, `config_change`, `access_change`, `test_access` or
    /// `feedback`.
    pub kind: String,
    /// Details for a person; never a token.
    pub detail: String,
}

/// The kinds of audit events, for filters.
pub const AUDIT_KINDS: [&str; 6] = [
    "sign_in",
    "refused",
    "config_change",
    "access_change",
    "test_access",
    "feedback",
];

/// Rows as CSV (RFC 4180): every field quoted, quotes doubled, and a field a spreadsheet would
/// run as a formula (`=`, `+`, `-`, `@` first) prefixed with `'`, so that an exported audit log
/// or feedback cannot run anything when opened.
pub fn csv<const N: usize>(
    header: [&str; N],
    rows: impl IntoIterator<Item = [String; N]>,
) -> String {
    let field = |text: &str| {
        let safe = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{text}")
        } else {
            text.to_owned()
        };
        format!("\"{}\"", safe.replace('"', "\"\""))
    };
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let fields: Vec<String> = cells.iter().map(|cell| field(cell)).collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    };
    line(&header.map(str::to_owned));
    for row in rows {
        line(&row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(group: &str, role: Role, teams: &[&str]) -> GroupBinding {
        GroupBinding {
            group: group.to_owned(),
            role,
            teams: teams.iter().map(|&team| team.to_owned()).collect(),
            sites: Vec::new(),
        }
    }

    #[test]
    fn roles_are_named_as_configuration_writes_them() {
        for role in Role::ALL {
            assert_eq!(Role::named(role.name()), Some(role));
            let json = serde_json::to_string(&role).expect("json");
            assert_eq!(json, format!("\"{}\"", role.name()));
        }
        assert_eq!(Role::named("emperor"), None);
    }

    #[test]
    fn bad_bindings_are_named_with_why() {
        let good = binding("monti-leads", Role::TeamLead, &["Billing 1"]);
        assert_eq!(bindings_problem(std::slice::from_ref(&good)), None);
        let cases = [
            (vec![binding(" ", Role::Admin, &[])], "group is empty"),
            (
                vec![binding(&"g".repeat(300), Role::Admin, &[])],
                "at most 256",
            ),
            (
                vec![binding("g", Role::Admin, &["a\u{202E}b"])],
                "invisible",
            ),
            (vec![good.clone(), good.clone()], "listed twice"),
            (
                vec![binding("g", Role::Admin, &[]); MAX_BINDINGS + 1],
                "at most 1000",
            ),
        ];
        for (bindings, why) in cases {
            let problem = bindings_problem(&bindings).expect("refused");
            assert!(problem.contains(why), "{problem:?} should say {why:?}");
        }
    }

    #[test]
    fn view_as_round_trips_through_the_query() {
        let cases = [
            ViewAs::Group("monti-leads & co".to_owned()),
            ViewAs::Binding {
                role: Role::TeamLead,
                teams: vec!["Billing 1".to_owned(), "Billing, 2".to_owned()],
                sites: vec!["Hamburg".to_owned()],
            },
            ViewAs::Binding {
                role: Role::Supervisor,
                teams: Vec::new(),
                sites: Vec::new(),
            },
        ];
        for view_as in cases {
            let query = view_as.query();
            let pairs = query.iter().map(|(key, value)| (*key, value.as_str()));
            assert_eq!(ViewAs::from_query(pairs), Ok(Some(view_as.clone())));
        }
        assert_eq!(ViewAs::from_query([("protocol", "3")]), Ok(None));
    }

    #[test]
    fn view_as_says_whom_in_words() {
        let binding = |teams: &[&str], sites: &[&str]| ViewAs::Binding {
            role: Role::TeamLead,
            teams: teams.iter().map(|&team| team.to_owned()).collect(),
            sites: sites.iter().map(|&site| site.to_owned()).collect(),
        };
        assert_eq!(binding(&[], &[]).text(), "team_lead everywhere");
        assert_eq!(
            binding(&["Sales 1", "Sales 2"], &[]).text(),
            "team_lead of Sales 1, Sales 2"
        );
        assert_eq!(binding(&[], &["Berlin"]).text(), "team_lead at Berlin");
        assert_eq!(
            binding(&["Sales 1"], &["Berlin"]).text(),
            "team_lead of Sales 1 at Berlin"
        );
        assert_eq!(
            ViewAs::Group("monti-leads".to_owned()).text(),
            "group monti-leads"
        );
    }

    #[test]
    fn a_confused_view_as_is_refused_with_why() {
        let cases: [(&[(&str, &str)], &str); 5] = [
            (&[("as_role", "emperor")], "not a role"),
            (&[("as_team", "Billing 1")], "need as_role"),
            (&[("as_group", "g"), ("as_role", "admin")], "not both"),
            (&[("as_group", "g"), ("as_team", "x")], "go with as_role"),
            (&[("as_group", "g"), ("as_group", "h")], "twice"),
        ];
        for (pairs, why) in cases {
            let problem = ViewAs::from_query(pairs.iter().copied()).expect_err("refused");
            assert!(problem.contains(why), "{problem:?} should say {why:?}");
        }
    }

    #[test]
    fn csv_quotes_every_field_and_defuses_formulas() {
        let text = csv(
            ["when", "what"],
            [
                ["1".to_owned(), "said \"hi\", twice\nthen left".to_owned()],
                ["2".to_owned(), "=HYPERLINK(\"http://x\")".to_owned()],
                ["3".to_owned(), "-1+1".to_owned()],
            ],
        );
        assert_eq!(
            text,
            "\"when\",\"what\"\r\n\"1\",\"said \"\"hi\"\", twice\nthen left\"\r\n\
             \"2\",\"'=HYPERLINK(\"\"http://x\"\")\"\r\n\"3\",\"'-1+1\"\r\n"
        );
    }

    #[test]
    fn feedback_needs_words_and_stays_small() {
        let mut feedback = NewFeedback {
            text: "the Break filter forgets my teams".to_owned(),
            ..NewFeedback::default()
        };
        assert_eq!(feedback.problem(), None);
        feedback.text = "  ".to_owned();
        assert!(feedback.problem().expect("refused").contains("empty"));
        feedback.text = "x".repeat(MAX_FEEDBACK_TEXT + 1);
        assert!(feedback.problem().expect("refused").contains("at most"));
    }
}
