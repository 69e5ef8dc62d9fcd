//! Who may do what: roles, actions, and the one [`can`] every handler and every WebSocket
//! subscribe asks.
//!
//! A [`Caller`] holds role bindings, each limited to a [`Scope`] of teams and sites. An action is
//! allowed when some binding's role permits it; what the caller then sees is the union of the
//! scopes of those bindings ([`Caller::scope`]), and the stream is cut to it on the server.
//!
//! Callers are identified by the [`Authenticator`]: with `auth.mode = "none"` (the embedded
//! default, loopback only) every caller is the local administrator; with `"oidc"` a caller
//! presents a bearer token from the company's OpenID Connect provider, [`crate::api::token`] checks
//! it, and the configured group bindings turn its groups into role bindings, with team and site
//! names resolved against the floor.

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use monti_protocol::access::{VIEW_AS_HEADER, ViewAs};
use monti_protocol::message::Detail;
use monti_protocol::model::{SiteId, TeamId};
use monti_protocol::scope::{Grant, Scope};

use crate::AppState;
use crate::api::error::Error;
use crate::api::token::{DiscoveredKeys, Identity, Rules, Verifier};
use crate::config::{AuthConfig, AuthMode, GroupBinding, Role};

/// Everything the API lets a caller do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Group counts and times in state.
    ViewSummary,
    /// Individual agents and their states.
    ViewAgents,
    /// Open a live view on the stream.
    Subscribe,
    /// Send agent events.
    Ingest,
    /// Read the server's configuration (thresholds, wallboard pages).
    ReadConfig,
    /// Change the configuration.
    ChangeConfig,
    /// Read the audit log.
    ReadAudit,
    /// Change who may see what (group bindings), open the floor as someone else (test access),
    /// sign devices out.
    ManageAccess,
    /// Send feedback from an app.
    SendFeedback,
    /// Read the feedback people sent.
    ReadFeedback,
}

/// Whether `role` permits `action` (inside its binding's scope): the access policy. It lives
/// here, beside [`can`]; the role itself is configuration.
pub fn permits(role: Role, action: Action) -> bool {
    use Action::*;
    match role {
        Role::Admin => true,
        Role::Supervisor => matches!(
            action,
            ViewSummary | ViewAgents | Subscribe | ReadConfig | SendFeedback
        ),
        Role::TeamLead => matches!(action, ViewSummary | ViewAgents | Subscribe | SendFeedback),
        Role::Wallboard => matches!(action, ViewSummary | ViewAgents | Subscribe | ReadConfig),
        Role::Ingest => matches!(action, Ingest),
    }
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 10] = [
        Action::ViewSummary,
        Action::ViewAgents,
        Action::Subscribe,
        Action::Ingest,
        Action::ReadConfig,
        Action::ChangeConfig,
        Action::ReadAudit,
        Action::ManageAccess,
        Action::SendFeedback,
        Action::ReadFeedback,
    ];

    /// Its name in `GET /api/v1/me`'s `may`, for example `change_config`.
    pub fn name(self) -> &'static str {
        match self {
            Action::ViewSummary => "view_summary",
            Action::ViewAgents => "view_agents",
            Action::Subscribe => "subscribe",
            Action::Ingest => "ingest",
            Action::ReadConfig => "read_config",
            Action::ChangeConfig => "change_config",
            Action::ReadAudit => "read_audit",
            Action::ManageAccess => "manage_access",
            Action::SendFeedback => "send_feedback",
            Action::ReadFeedback => "read_feedback",
        }
    }

    /// What a stream subscription of this detail reads.
    pub fn to_view(detail: Detail) -> Action {
        match detail {
            Detail::Agents => Action::ViewAgents,
            Detail::Summary => Action::ViewSummary,
        }
    }
}

/// A role held for a scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The role.
    pub role: Role,
    /// Where it applies.
    pub scope: Scope,
}

/// The identity behind a request, with what it may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Who: the token's subject, or `local` in the embedded default.
    pub subject: String,
    /// The groups the caller's token carried (none for the local administrator): their
    /// bindings are looked up again when an administrator changes them.
    pub groups: Vec<String>,
    /// The caller's role bindings.
    pub bindings: Vec<Binding>,
    /// When the caller's token expires, seconds since the Unix epoch (`None`: never).
    pub expires_at: Option<u64>,
    /// When the caller signed in, ms (see [`Identity::signed_in_ms`]).
    pub signed_in_ms: Option<u64>,
}

impl Caller {
    /// The embedded default's caller: an administrator of everything.
    pub fn local_admin() -> Caller {
        Caller {
            subject: "local".to_owned(),
            groups: Vec::new(),
            bindings: vec![Binding {
                role: Role::Admin,
                scope: Scope::Everything,
            }],
            expires_at: None,
            signed_in_ms: None,
        }
    }

    /// What the caller sees when doing `action`: the union of the scopes of the bindings that
    /// permit it (nothing when none does).
    pub fn scope(&self, action: Action) -> Scope {
        let mut grants: Vec<Grant> = Vec::new();
        for binding in self
            .bindings
            .iter()
            .filter(|binding| permits(binding.role, action))
        {
            match &binding.scope {
                Scope::Everything => return Scope::Everything,
                Scope::Only(more) => grants.extend(more.iter().cloned()),
            }
        }
        Scope::Only(grants)
    }

    /// Refuses with 403 unless the caller [`can`] do `action`.
    pub fn require(&self, action: Action) -> Result<(), Error> {
        if can(self, action) {
            Ok(())
        } else {
            // Logged at debug: refusals are routine and the client sees a uniform 403.
            tracing::debug!(subject = %self.subject, ?action, "refused");
            Err(Error::Forbidden)
        }
    }
}

/// Whether `caller` may do `action` at all (somewhere in its scope).
pub fn can(caller: &Caller, action: Action) -> bool {
    caller
        .bindings
        .iter()
        .any(|binding| permits(binding.role, action))
}

/// How this server identifies callers.
pub enum Authenticator {
    /// Every caller is the local administrator (loopback only; `Config::check` enforces it).
    None,
    /// Bearer tokens from an OpenID Connect provider.
    Oidc {
        /// Checks tokens against the provider's keys (boxed: it is large, `None` is empty).
        verifier: Box<Verifier<DiscoveredKeys>>,
    },
}

impl Authenticator {
    /// The authenticator `config` asks for.
    pub fn from_config(config: &AuthConfig) -> anyhow::Result<Authenticator> {
        Ok(match config.mode {
            AuthMode::None => Authenticator::None,
            AuthMode::Oidc => Authenticator::Oidc {
                verifier: Box::new(Verifier::new(
                    Rules {
                        issuer: config.issuer.clone(),
                        audience: config.audience.clone(),
                        groups_claim: config.groups_claim.clone(),
                        leeway_secs: config.leeway_secs,
                    },
                    DiscoveredKeys::new(&config.issuer)?,
                    std::time::Duration::from_secs(config.keys_refetch_secs),
                )),
            },
        })
    }

    /// Identifies the caller of a request. A missing or refused token is 401; a valid token
    /// whose groups map to no role is 403. Tokens are never logged.
    /// `from` is the client's address, for the audit log.
    pub async fn caller(
        &self,
        headers: &HeaderMap,
        from: Option<IpAddr>,
        state: &AppState,
    ) -> Result<Caller, Error> {
        if let Authenticator::None = self {
            return Ok(Caller::local_admin());
        }
        let token = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(bearer_token);
        let Some(token) = token else {
            state.metrics.auth_failure("missing");
            return Err(Error::Unauthorized);
        };
        self.caller_of_token(token, from, state).await
    }

    /// Checks `token` and maps its groups to role bindings; the caller may have none (see
    /// [`Authenticator::caller`] for the refusal). In mode none, the local administrator.
    pub async fn identify(
        &self,
        token: &str,
        from: Option<IpAddr>,
        state: &AppState,
    ) -> Result<(Identity, Caller), Error> {
        let Authenticator::Oidc { verifier } = self else {
            let admin = Caller::local_admin();
            let identity = Identity {
                subject: admin.subject.clone(),
                groups: Vec::new(),
                groups_note: None,
                expires_at: u64::MAX,
                signed_in_ms: None,
            };
            return Ok((identity, admin));
        };
        let identity = verifier.verify(token).await.map_err(|err| {
            let why = err.to_string();
            REFUSALS.note(err.reason(), &why);
            state.metrics.auth_failure(err.reason());
            state
                .audit
                .refused(None, &format!("{}: {why}", err.reason()), from);
            Error::InvalidToken(why)
        })?;
        let now = state.access.now();
        if let Some(why) = now.refused(&identity.subject, identity.signed_in_ms) {
            REFUSALS.note("signed_out", &why);
            state.metrics.auth_failure("signed_out");
            state.audit.refused(Some(&identity.subject), &why, from);
            return Err(Error::InvalidToken(why));
        }
        let mut caller = state.live.read(|floor| {
            caller_of(
                &identity.subject,
                &identity.groups,
                Some(identity.expires_at),
                &now.stored.bindings,
                floor,
            )
        });
        caller.signed_in_ms = identity.signed_in_ms;
        Ok((identity, caller))
    }

    /// Identifies the holder of `token` (see [`Authenticator::caller`]).
    pub async fn caller_of_token(
        &self,
        token: &str,
        from: Option<IpAddr>,
        state: &AppState,
    ) -> Result<Caller, Error> {
        let Authenticator::Oidc { .. } = self else {
            return Ok(Caller::local_admin());
        };
        let (identity, caller) = self.identify(token, from, state).await?;
        if caller.bindings.is_empty() {
            let why = no_role(&identity, &state.access.now().stored.bindings);
            REFUSALS.note("no_role", &why);
            state.metrics.auth_failure("no_role");
            state.audit.refused(Some(&identity.subject), &why, from);
            return Err(Error::Refused(why));
        }
        let roles: Vec<String> = caller
            .bindings
            .iter()
            .map(|binding| format!("{:?}", binding.role))
            .collect();
        state
            .audit
            .signed_in(&caller.subject, &roles.join(", "), from);
        Ok(caller)
    }
}

/// Why a valid token earns no role, for the caller and the log: its groups, and which the
/// bindings name.
pub fn no_role(identity: &Identity, bindings: &[GroupBinding]) -> String {
    let mut bound: Vec<&str> = bindings
        .iter()
        .map(|binding| binding.group.as_str())
        .collect();
    bound.sort_unstable();
    bound.dedup();
    let groups = match &identity.groups_note {
        Some(note) => format!("no groups: {note}"),
        None => format!("groups {:?}", identity.groups),
    };
    let matched: Vec<&GroupBinding> = (bindings.iter())
        .filter(|binding| identity.groups.contains(&binding.group))
        .collect();
    let unresolved = if matched.is_empty() {
        String::new()
    } else {
        // A binding that matched but names teams or sites that do not exist grants nothing.
        let names: Vec<String> = matched
            .iter()
            .map(|binding| {
                format!(
                    "{} ({:?} {:?})",
                    binding.group, binding.teams, binding.sites
                )
            })
            .collect();
        format!(
            "; the bindings of {} name teams or sites that do not exist (yet)",
            names.join(", ")
        )
    };
    format!(
        "signed in as {:?} with {groups}, but no [[auth.bindings]] gives them a role (bound \
         groups: {bound:?}){unresolved}; GET /api/v1/me shows what the provider sent",
        identity.subject
    )
}

/// Why a request is refused for its caller rather than its token's form (the token errors'
/// reasons are [`crate::api::token::TokenError::reason`]): no token, no role, signed out by an
/// administrator. Metric labels and alarms use these names.
pub const CALLER_REFUSALS: [&str; 3] = ["missing", "no_role", "signed_out"];

/// Refusals in the log at info, at most one line per reason a minute (with how many were left
/// out), so that a flood of bad tokens cannot fill the log while an administrator locked out by
/// a misconfiguration still finds the reason without the audit log.
pub static REFUSALS: RefusalLog = RefusalLog::new(std::time::Duration::from_secs(60));

/// See [`REFUSALS`].
pub struct RefusalLog {
    every: std::time::Duration,
    last: std::sync::Mutex<Vec<(&'static str, std::time::Instant, u64)>>,
}

impl RefusalLog {
    /// At most one line per reason per `every`.
    pub const fn new(every: std::time::Duration) -> RefusalLog {
        RefusalLog {
            every,
            last: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Logs `why` unless a refusal for `reason` was logged less than `every` ago.
    /// Returns whether it logged.
    pub fn note(&self, reason: &'static str, why: &str) -> bool {
        let now = std::time::Instant::now();
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let suppressed = match last.iter_mut().find(|(seen, ..)| *seen == reason) {
            Some((_, at, count)) if now.duration_since(*at) < self.every => {
                *count += 1;
                return false;
            }
            Some((_, at, count)) => {
                *at = now;
                std::mem::take(count)
            }
            None => {
                last.push((reason, now, 0));
                0
            }
        };
        drop(last);
        tracing::info!(reason, suppressed, "sign-in refused: {why}");
        true
    }
}

/// The token of an `Authorization: Bearer ...` value; the scheme is case-insensitive (RFC 9110).
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// The caller `subject` with `groups` is: the role bindings its groups earn, with team and site
/// names resolved on `floor`. A binding that names teams or sites of which none exist grants
/// nothing (never everything). Sign-ins, binding changes on open connections and test access
/// all go through here.
pub fn caller_of(
    subject: &str,
    groups: &[String],
    expires_at: Option<u64>,
    bindings: &[GroupBinding],
    floor: &monti_protocol::floor::Floor,
) -> Caller {
    let mut granted = Vec::new();
    for binding in bindings
        .iter()
        .filter(|binding| groups.contains(&binding.group))
    {
        let teams: Vec<TeamId> = (floor.teams())
            .filter(|team| binding.teams.contains(&team.name))
            .map(|team| team.id)
            .collect();
        let sites: Vec<SiteId> = (floor.sites())
            .filter(|site| binding.sites.contains(&site.name))
            .map(|site| site.id)
            .collect();
        if (!binding.teams.is_empty() && teams.is_empty())
            || (!binding.sites.is_empty() && sites.is_empty())
        {
            continue;
        }
        let scope = if teams.is_empty() && sites.is_empty() {
            Scope::Everything
        } else {
            Scope::Only(vec![Grant { teams, sites }])
        };
        granted.push(Binding {
            role: binding.role,
            scope,
        });
    }
    Caller {
        subject: subject.to_owned(),
        groups: groups.to_vec(),
        bindings: granted,
        expires_at,
        signed_in_ms: None,
    }
}

/// Whom `admin` sees the floor as with test access: a member of the group (its bindings as they
/// stand), or someone bound to the role and scope, resolved by [`caller_of`] like a sign-in. The
/// subject and expiry stay the administrator's.
pub fn viewing_as(
    admin: &Caller,
    view_as: &ViewAs,
    bindings: &[GroupBinding],
    floor: &monti_protocol::floor::Floor,
) -> Caller {
    match view_as {
        ViewAs::Group(group) => caller_of(
            &admin.subject,
            std::slice::from_ref(group),
            admin.expires_at,
            bindings,
            floor,
        ),
        ViewAs::Binding { role, teams, sites } => {
            // No real binding has an empty group (`bindings_problem`), so only this one applies.
            let only = GroupBinding {
                group: String::new(),
                role: *role,
                teams: teams.clone(),
                sites: sites.clone(),
            };
            caller_of(
                &admin.subject,
                &[String::new()],
                admin.expires_at,
                &[only],
                floor,
            )
        }
    }
}

/// Whom `admin` sees the floor as, or why not: test access is for those who manage access, and
/// shows only what the binding could see.
pub fn test_access(state: &AppState, admin: &Caller, view_as: &ViewAs) -> Result<Caller, String> {
    if !can(admin, Action::ManageAccess) {
        return Err("test access (as_group, as_role) is for administrators".to_owned());
    }
    let bindings = &state.access.now().stored;
    let seen = state
        .live
        .read(|floor| viewing_as(admin, view_as, &bindings.bindings, floor));
    if seen.bindings.is_empty() {
        return Err(format!(
            "{} would see nothing: no binding gives it a role, or its teams and sites do not \
             exist (yet)",
            view_as.text()
        ));
    }
    if !can(&seen, Action::Subscribe) {
        return Err(format!("{} may not see the floor", view_as.text()));
    }
    Ok(seen)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, Error> {
        let from = parts
            .extensions
            .get::<crate::net::peer::Peer>()
            .map(|peer| peer.addr);
        let caller = state.auth.caller(&parts.headers, from, state).await?;
        // Test access on REST: answered as the group or binding would be (the stream takes the
        // same in its query).
        let Some(value) = parts.headers.get(VIEW_AS_HEADER) else {
            return Ok(caller);
        };
        let pairs: Vec<(String, String)> = form_urlencoded::parse(value.as_bytes())
            .into_owned()
            .collect();
        let view_as = ViewAs::from_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(Error::BadRequest)?
            .ok_or_else(|| {
                Error::BadRequest(format!(
                    "{VIEW_AS_HEADER} names neither as_group nor as_role"
                ))
            })?;
        test_access(state, &caller, &view_as).map_err(Error::Refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monti_protocol::model::{SiteId, TeamId};

    #[test]
    fn refusals_are_logged_once_per_reason_a_minute() {
        let log = RefusalLog::new(std::time::Duration::from_secs(60));
        assert!(log.note("expired", "the token expired 5 s ago"));
        assert!(
            !log.note("expired", "the token expired 6 s ago"),
            "the same reason waits"
        );
        assert!(
            log.note("issuer", "issued by ..."),
            "another reason is logged"
        );
        let every_time = RefusalLog::new(std::time::Duration::ZERO);
        assert!(every_time.note("expired", "a"));
        assert!(every_time.note("expired", "b"));
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }

    /// Every role x action, spelled out: a change to the policy must change this table.
    #[test]
    fn every_role_and_action_is_decided_as_the_table_says() {
        use Action::*;
        const T: bool = true;
        const F: bool = false;
        let table: [(Role, [bool; 10]); 5] = [
            // summary agents subscribe ingest read-cfg change-cfg audit access send-fb read-fb
            (Role::Admin, [T, T, T, T, T, T, T, T, T, T]),
            (Role::Supervisor, [T, T, T, F, T, F, F, F, T, F]),
            (Role::TeamLead, [T, T, T, F, F, F, F, F, T, F]),
            (Role::Wallboard, [T, T, T, F, T, F, F, F, F, F]),
            (Role::Ingest, [F, F, F, T, F, F, F, F, F, F]),
        ];
        assert_eq!(
            Action::ALL,
            [
                ViewSummary,
                ViewAgents,
                Subscribe,
                Ingest,
                ReadConfig,
                ChangeConfig,
                ReadAudit,
                ManageAccess,
                SendFeedback,
                ReadFeedback
            ]
        );
        for (role, expected) in table {
            let caller = Caller {
                subject: "t".into(),
                groups: Vec::new(),
                bindings: vec![Binding {
                    role,
                    scope: Scope::Everything,
                }],
                expires_at: None,
                signed_in_ms: None,
            };
            for (action, allowed) in Action::ALL.into_iter().zip(expected) {
                assert_eq!(can(&caller, action), allowed, "{role:?} {action:?}");
            }
        }
    }

    #[test]
    fn a_caller_without_bindings_can_do_nothing() {
        let nobody = Caller {
            subject: "n".into(),
            groups: Vec::new(),
            bindings: vec![],
            expires_at: None,
            signed_in_ms: None,
        };
        assert!(Action::ALL.into_iter().all(|action| !can(&nobody, action)));
        assert_eq!(nobody.scope(Action::ViewAgents), Scope::Only(vec![]));
    }

    #[test]
    fn scopes_of_permitting_bindings_add_up_and_others_do_not_count() {
        let team_1 = Grant {
            teams: vec![TeamId(1)],
            sites: vec![],
        };
        let berlin = Grant {
            teams: vec![],
            sites: vec![SiteId(0)],
        };
        let caller = Caller {
            subject: "s".into(),
            groups: Vec::new(),
            expires_at: None,
            signed_in_ms: None,
            bindings: vec![
                Binding {
                    role: Role::TeamLead,
                    scope: Scope::Only(vec![team_1.clone()]),
                },
                Binding {
                    role: Role::Supervisor,
                    scope: Scope::Only(vec![berlin.clone()]),
                },
                Binding {
                    role: Role::Ingest,
                    scope: Scope::Everything,
                },
            ],
        };
        assert_eq!(
            caller.scope(Action::ViewAgents),
            Scope::Only(vec![team_1, berlin.clone()])
        );
        assert_eq!(caller.scope(Action::ReadConfig), Scope::Only(vec![berlin]));
        assert_eq!(caller.scope(Action::Ingest), Scope::Everything);
        assert!(!can(&caller, Action::ChangeConfig));
    }

    #[test]
    fn the_local_admin_sees_everything() {
        let admin = Caller::local_admin();
        assert!(Action::ALL.into_iter().all(|action| can(&admin, action)));
        assert_eq!(admin.scope(Action::Subscribe), Scope::Everything);
    }
}
