//! REST endpoints: master data, agents with filters and paging, the floor summary, health,
//! readiness and metrics; and the one [`Error`] type every handler returns.
//!
//! Every API handler asks [`Caller::require`] first and answers only inside the caller's scope.
//! Health, readiness and metrics are for the load balancer and Prometheus and carry no agent
//! data. Handlers read the live floor (one short lock each) rather than the database: it holds
//! the same master data and the current states. Bad input gets a 4xx with an `ErrorJson` body.

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use monti_protocol::floor::Floor;
use monti_protocol::ingest::{HistoryEntryJson, HistoryPageJson};
use monti_protocol::model::{Grouping, StateKind};
use monti_protocol::rest::{
    AgentJson, AgentPage, AuthJson, FloorSummaryJson, MeJson, ReasonJson, SiteJson, TeamJson,
    Thresholds, WallboardConfig,
};
use monti_protocol::scope::Scope;
use serde::Deserialize;

use crate::AppState;
use crate::api::auth::{Action, Caller, can};
use crate::api::error::Error;
use crate::config::{AuthMode, Role};
use crate::net::peer::Peer;
use crate::store::db::AuditEvent;

/// The most bytes of request headers taken (431 beyond). hyper itself closes a connection whose
/// header outgrows its read buffer (about 400 KiB) with a bare 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Checks every request before anything else: headers within [`MAX_HEADER_BYTES`], and in auth
/// mode none, where every caller is the administrator, only requests a local program made: a
/// loopback name in `Host` (a web page that rebinds its own DNS name to 127.0.0.1 still sends
/// its name) and no `Origin` (browsers send one; MONTI's apps do not).
pub async fn guard(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = request.headers();
    let size: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if size > MAX_HEADER_BYTES {
        return Error::HeadersTooLarge(format!(
            "the request's headers are {size} bytes; at most {MAX_HEADER_BYTES} are taken"
        ))
        .into_response();
    }
    if state.config.auth.mode == AuthMode::None {
        if let Some(origin) = headers.get(header::ORIGIN) {
            return Error::Refused(format!(
                "a request from a web page ({}) is refused: without sign-in (auth mode none) \
                 MONTI answers only programs on this computer",
                origin.to_str().unwrap_or("?")
            ))
            .into_response();
        }
        let host = headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .unwrap_or_default();
        if !is_loopback_host(host) {
            return Error::Refused(format!(
                "the request is addressed to {host:?}: without sign-in (auth mode none) MONTI \
                 answers only requests addressed to localhost or a loopback address"
            ))
            .into_response();
        }
    }
    next.run(request).await
}

/// Whether a `Host` header names this computer: `localhost`, a 127.x address or `[::1]`, with
/// or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Answers 408 when a request, its body included, takes longer than `[server]
/// request_timeout_secs` (a client trickling a body holds nothing for longer). An upgrade
/// request is answered at once, so the stream itself is not limited.
pub async fn deadline(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let secs = state.config.server.request_timeout_secs;
    match tokio::time::timeout(std::time::Duration::from_secs(secs), next.run(request)).await {
        Ok(response) => response,
        Err(_) => Error::Timeout(secs).into_response(),
    }
}

/// The REST API under `/api/v1`.
pub fn api_router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/sites", get(sites))
        .route("/api/v1/teams", get(teams))
        .route("/api/v1/reasons", get(reasons))
        .route("/api/v1/agents", get(agents))
        .route("/api/v1/floor/summary", get(floor_summary))
        .route("/api/v1/auth", get(auth_settings))
        .route("/api/v1/me", get(me))
        .route("/api/v1/audit", get(audit_log))
        .route("/api/v1/history", get(history))
        .route(
            "/api/v1/config/thresholds",
            get(thresholds).put(set_thresholds),
        )
        .route("/api/v1/config/wallboards", get(wallboards))
        .route(
            "/api/v1/config/wallboards/{name}",
            get(wallboard).put(set_wallboard),
        )
}

const THRESHOLDS: &str = "thresholds";

/// A configuration kept as JSON in the settings table, or `None` while nobody has set it.
async fn read_setting<T: serde::de::DeserializeOwned>(
    state: &AppState,
    name: &str,
) -> Result<Option<T>, Error> {
    let Some(json) = state.db.setting(name).await? else {
        return Ok(None);
    };
    let value = serde_json::from_str(&json)
        .map_err(|err| anyhow::anyhow!("stored setting {name} is invalid: {err}"))?;
    Ok(Some(value))
}

/// Stores a configuration the caller may change and has checked, and audits the change.
async fn write_setting<T: serde::Serialize>(
    state: &AppState,
    caller: &Caller,
    name: &str,
    value: &T,
) -> Result<(), Error> {
    let json = serde_json::to_string(value).map_err(anyhow::Error::from)?;
    let now = state.clock.now_ms() as i64;
    state
        .db
        .set_setting(name, &json, &caller.subject, now)
        .await?;
    state
        .audit
        .config_changed(&caller.subject, &format!("{name} set to {json}"));
    Ok(())
}

/// The time-in-state thresholds apps colour tiles by (the defaults until someone sets them).
async fn thresholds(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Thresholds>, Error> {
    // Whoever sees the floor may see what colours it: a team lead's tiles turn red too.
    caller.require(Action::ViewSummary)?;
    let scope = caller.scope(Action::ViewSummary);
    let mut thresholds: Thresholds = read_setting(&state, THRESHOLDS).await?.unwrap_or_default();
    // Another team's thresholds would name it. (The whole floor's callers get them as stored,
    // teams not created yet included: an administrator edits what it reads.)
    if scope != Scope::Everything {
        state.live.read(|floor| {
            (thresholds.teams).retain(|name, _| names_team_called(floor, &scope, name));
        });
    }
    Ok(Json(thresholds))
}

/// Whether a team of that name exists and `scope` may name it.
fn names_team_called(floor: &Floor, scope: &Scope, name: &str) -> bool {
    (floor.teams()).any(|team| team.name == name && floor.scope_names_team(scope, team.id))
}

/// Whether a site of that name exists and `scope` may name it.
fn names_site_called(floor: &Floor, scope: &Scope, name: &str) -> bool {
    (floor.sites()).any(|site| site.name == name && floor.scope_names_site(scope, site.id))
}

/// A wallboard's configuration as a caller limited to `scope` may read it: teams and sites it
/// may not name are left out, and marked so that a list left empty shows nothing.
fn cut_wallboard(floor: &Floor, scope: &Scope, mut config: WallboardConfig) -> WallboardConfig {
    if *scope == Scope::Everything {
        // As stored, names not on the floor yet included: an administrator edits what it reads.
        return config;
    }
    let (n_teams, n_sites) = (config.teams.len(), config.sites.len());
    (config.teams).retain(|name| names_team_called(floor, scope, name));
    (config.sites).retain(|name| names_site_called(floor, scope, name));
    config.hidden_teams |= config.teams.len() < n_teams;
    config.hidden_sites |= config.sites.len() < n_sites;
    config
}

/// Replaces the thresholds; admins only, and audited.
async fn set_thresholds(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<Thresholds>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Thresholds>, Error> {
    caller.require(Action::ChangeConfig)?;
    let Json(thresholds) = body.map_err(|rejection| Error::BadRequest(rejection.body_text()))?;
    thresholds.check().map_err(Error::BadRequest)?;
    write_setting(&state, &caller, THRESHOLDS, &thresholds).await?;
    Ok(Json(thresholds))
}

/// What the names of wallboards' settings start with.
const WALLBOARD_PREFIX: &str = "wallboard:";

/// The setting that holds wallboard `name`'s configuration, once the name is checked.
fn wallboard_setting(name: &str) -> Result<String, Error> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(Error::BadRequest(
            "a wallboard name is 1 to 64 letters, digits, - or _".to_owned(),
        ));
    }
    Ok(format!("{WALLBOARD_PREFIX}{name}"))
}

/// The wallboards that have a configuration of their own (`default` among them when set), by
/// name; whoever may read configuration.
async fn wallboards(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<String>>, Error> {
    caller.require(Action::ReadConfig)?;
    let names = state.db.setting_names(WALLBOARD_PREFIX).await?;
    Ok(Json(
        (names.into_iter())
            .filter_map(|name| name.strip_prefix(WALLBOARD_PREFIX).map(str::to_owned))
            .collect(),
    ))
}

/// What wallboard `name` shows: its own configuration, else the one named `default`, else
/// every page. Wallboards and whoever may read configuration.
async fn wallboard(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<WallboardConfig>, Error> {
    caller.require(Action::ReadConfig)?;
    let own = read_setting(&state, &wallboard_setting(&name)?).await?;
    // A wallboard PC reading its pages says which wallboard it is (for the Admin screen's
    // devices); an administrator previewing one does not.
    let is_wallboard = |binding: &crate::api::auth::Binding| binding.role == Role::Wallboard;
    if caller.bindings.iter().any(is_wallboard) && !can(&caller, Action::ChangeConfig) {
        let now = state.clock.now_ms() as i64;
        if let Err(err) = state.db.device_wallboard(&caller.subject, &name, now).await {
            tracing::warn!(error = format!("{err:#}"), "cannot note a wallboard");
        }
    }
    let config = match own {
        Some(config) => Some(config),
        None => read_setting(&state, &wallboard_setting("default")?).await?,
    };
    let scope = caller.scope(Action::ReadConfig);
    let config = config.unwrap_or_default();
    Ok(Json(
        state
            .live
            .read(|floor| cut_wallboard(floor, &scope, config)),
    ))
}

/// Replaces wallboard `name`'s configuration (`default` for every wallboard without its own);
/// admins only, and audited.
async fn set_wallboard(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Result<Json<WallboardConfig>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<WallboardConfig>, Error> {
    caller.require(Action::ChangeConfig)?;
    let setting = wallboard_setting(&name)?;
    let Json(mut config) = body.map_err(|rejection| Error::BadRequest(rejection.body_text()))?;
    config.check().map_err(Error::BadRequest)?;
    // Said by the server when it answers a scoped reader; never part of what is stored.
    config.hidden_teams = false;
    config.hidden_sites = false;
    write_setting(&state, &caller, &setting, &config).await?;
    Ok(Json(config))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// Only events before this moment (ms since the epoch), for paging back.
    before_ms: Option<i64>,
    /// Only events at or after this moment.
    from_ms: Option<i64>,
    /// Only this kind: `sign_in`, `refused`, `config_change`, `access_change`, `test_access`,
    /// `feedback`.
    kind: Option<String>,
    /// Only subjects containing this, ignoring case.
    subject: Option<String>,
    limit: Option<i64>,
}

/// The audit log, newest first, filtered by when, what and who; admins only.
async fn audit_log(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<Vec<AuditEvent>>, Error> {
    caller.require(Action::ReadAudit)?;
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_PAGE as i64).contains(&limit) {
        return Err(Error::BadRequest(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let filter = crate::store::db::AuditFilter {
        before_ms: query.before_ms.unwrap_or(i64::MAX),
        from_ms: query.from_ms.unwrap_or(i64::MIN),
        kind: query.kind.unwrap_or_default(),
        subject: query.subject.unwrap_or_default(),
        limit,
    };
    if filter.subject.len() > 256 || filter.kind.len() > 64 {
        return Err(Error::BadRequest(
            "subject is at most 256 bytes and kind at most 64".into(),
        ));
    }
    Ok(Json(state.db.audit(&filter).await?))
}

/// Who the caller is and which roles it holds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryParams {
    agent: Option<String>,
    team: Option<String>,
    /// With `team` and `site`: the agent shown under this name there.
    name: Option<String>,
    site: Option<String>,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    after: Option<i64>,
    limit: Option<i64>,
}

const DAY_MS: i64 = 86_400_000;

/// Stored state changes of one agent (`agent`, its external id, or `name` with `team` and
/// `site`, the names an app shows) or one team (`team` alone, its name), oldest first; by
/// default the last day. Page with `after` = the last row's `id`.
async fn history(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<HistoryParams>, QueryRejection>,
) -> Result<Json<HistoryPageJson>, Error> {
    caller.require(Action::ViewAgents)?;
    let scope = caller.scope(Action::ViewAgents);
    let Query(params) = query?;
    let limit = params.limit.unwrap_or(1_000);
    if !(1..=10_000).contains(&limit) {
        return Err(Error::BadRequest(
            "limit must be between 1 and 10000".into(),
        ));
    }
    let to_ms = params.to_ms.unwrap_or(state.clock.now_ms() as i64 + 1);
    let from_ms = params.from_ms.unwrap_or(to_ms - DAY_MS);
    if from_ms >= to_ms {
        return Err(Error::BadRequest("from_ms must be before to_ms".into()));
    }
    let (agent, team) = match (&params.agent, &params.team) {
        (None, Some(team)) if params.name.is_some() || params.site.is_some() => {
            let (Some(name), Some(site)) = (&params.name, &params.site) else {
                return Err(Error::BadRequest(
                    "name an agent by name with both team and site".into(),
                ));
            };
            // Outside the caller's scope is as unknown as not there.
            match state.live.agents_named(name, team, site, &scope)[..] {
                [] => return Err(Error::NotFound),
                [id] => (Some(id), None),
                ref several => {
                    return Err(Error::BadRequest(format!(
                        "{} agents are called {name:?} in {team} at {site}; name one by its \
                         external id (agent=)",
                        several.len()
                    )));
                }
            }
        }
        (Some(_), _) if params.name.is_some() || params.site.is_some() => {
            return Err(Error::BadRequest(
                "name an agent either by external id (agent) or by name, team and site".into(),
            ));
        }
        (Some(agent), None) => {
            // An agent outside the caller's scope is as unknown as one that does not exist.
            let found = state
                .live
                .agent(agent)
                .filter(|found| {
                    state
                        .live
                        .dense_team_site(found.team, found.site)
                        .is_some_and(|(team, site)| scope.covers(team, site))
                })
                .ok_or(Error::NotFound)?;
            (Some(found.id), None)
        }
        (None, Some(team)) => {
            // A team the caller may not name is as unknown as one that does not exist.
            let id = state.live.team_id(team).ok_or(Error::NotFound)?;
            let listed = (state.live.dense_team(id)).is_some_and(|dense| {
                state
                    .live
                    .read(|floor| floor.scope_names_team(&scope, dense))
            });
            if !listed {
                return Err(Error::NotFound);
            }
            (None, Some(id))
        }
        _ => {
            return Err(Error::BadRequest(
                "name either agent (an external id) or team (a name)".into(),
            ));
        }
    };
    let rows = state
        .db
        .history(&crate::store::db::HistoryQuery {
            agent,
            team,
            from_ms,
            to_ms,
            after_id: params.after.unwrap_or(0),
            limit,
            within: state.live.db_scope(&scope),
        })
        .await?;
    let next_after = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|row| row.id))
        .flatten();
    let entries = rows
        .into_iter()
        .map(|row| HistoryEntryJson {
            agent: row.external_id,
            name: row.name,
            team: row.team,
            site: row.site,
            state: row.state,
            reason: row.reason,
            since_ms: row.started_at,
            received_ms: row.created_at,
            event_id: row.event_id,
        })
        .collect();
    Ok(Json(HistoryPageJson {
        entries,
        next_after,
    }))
}

/// Who the token names, its groups and the roles they give. Any valid token gets an answer,
/// one whose groups give no role too (with the reason), so that a person locked out can see
/// what the provider sent.
async fn me(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    peer: Option<Extension<Peer>>,
) -> Result<Json<MeJson>, Error> {
    let from = peer.as_ref().map(|peer| peer.addr);
    let token = (headers.get(header::AUTHORIZATION))
        .and_then(|value| value.to_str().ok())
        .and_then(crate::api::auth::bearer_token);
    let (identity, caller) = match (state.auth.as_ref(), token) {
        (crate::api::auth::Authenticator::None, _) => state.auth.identify("", from, &state).await?,
        (_, Some(token)) => state.auth.identify(token, from, &state).await?,
        (_, None) => return Err(Error::Unauthorized),
    };
    let mut roles: Vec<String> = Vec::new();
    for binding in &caller.bindings {
        let name = binding.role.name().to_owned();
        if !roles.contains(&name) {
            roles.push(name);
        }
    }
    let note = match state.auth.as_ref() {
        crate::api::auth::Authenticator::Oidc { .. } if roles.is_empty() => Some(
            crate::api::auth::no_role(&identity, &state.access.now().stored.bindings),
        ),
        _ => identity.groups_note.clone(),
    };
    let may = (crate::api::auth::Action::ALL.into_iter())
        .filter(|&action| crate::api::auth::can(&caller, action))
        .map(|action| action.name().to_owned())
        .collect();
    Ok(Json(MeJson {
        subject: caller.subject,
        roles,
        may,
        address: peer.as_ref().map(|peer| peer.addr.to_string()),
        https: peer.map(|peer| peer.https),
        groups: identity.groups,
        note,
    }))
}

/// Where and how to sign in; needs no token (an app asks before it has one).
async fn auth_settings(State(state): State<AppState>) -> Json<AuthJson> {
    let auth = &state.config.auth;
    Json(match auth.mode {
        AuthMode::None => AuthJson {
            mode: "none".to_owned(),
            issuer: None,
            client_id: None,
            audience: None,
            scopes: None,
            resource: None,
            redirect_uri: None,
            clients: state.config.clients.json(),
        },
        AuthMode::Oidc => AuthJson {
            mode: "oidc".to_owned(),
            issuer: Some(auth.issuer.clone()),
            client_id: Some(auth.client_id.clone()),
            audience: Some(auth.audience.clone()),
            scopes: Some(auth.scopes.clone()),
            resource: auth.resource_indicator.then(|| auth.audience.clone()),
            redirect_uri: Some(auth.redirect_uri.clone()).filter(|uri| !uri.is_empty()),
            clients: state.config.clients.json(),
        },
    })
}

/// Health, readiness and metrics, for load balancers and Prometheus.
pub fn ops_router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn sites(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<SiteJson>>, Error> {
    caller.require(Action::ViewSummary)?;
    let scope = caller.scope(Action::ViewSummary);
    Ok(Json(state.live.read(|floor| {
        let counts = count_agents(floor, &scope, |record| record.info.site.0);
        floor
            .sites()
            .filter(|site| floor.scope_names_site(&scope, site.id))
            .map(|site| SiteJson {
                id: site.id.0,
                name: site.name.clone(),
                n_agents: counts.get(&site.id.0).copied().unwrap_or(0),
            })
            .collect()
    })))
}

async fn teams(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<TeamJson>>, Error> {
    caller.require(Action::ViewSummary)?;
    let scope = caller.scope(Action::ViewSummary);
    Ok(Json(state.live.read(|floor| {
        let counts = count_agents(floor, &scope, |record| record.info.team.0);
        floor
            .teams()
            .filter(|team| floor.scope_names_team(&scope, team.id))
            .map(|team| TeamJson {
                id: team.id.0,
                name: team.name.clone(),
                n_agents: counts.get(&team.id.0).copied().unwrap_or(0),
            })
            .collect()
    })))
}

/// Agents in scope per key, in one pass over the floor (it runs under the floor's lock).
fn count_agents(
    floor: &Floor,
    scope: &Scope,
    key: impl Fn(&monti_protocol::floor::AgentRecord) -> u16,
) -> std::collections::HashMap<u16, u32> {
    let mut counts = std::collections::HashMap::new();
    let in_scope = floor
        .agents()
        .filter(|record| scope.covers(record.info.team, record.info.site));
    for record in in_scope {
        *counts.entry(key(record)).or_insert(0) += 1;
    }
    counts
}

async fn reasons(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ReasonJson>>, Error> {
    caller.require(Action::ViewSummary)?;
    Ok(Json(state.live.read(|floor| {
        floor
            .reasons()
            .map(|reason| ReasonJson {
                id: reason.id.0,
                code: reason.code.clone(),
                label: reason.label.clone(),
            })
            .collect()
    })))
}

/// Filters and paging of `GET /api/v1/agents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentQuery {
    team: Option<u16>,
    site: Option<u16>,
    state: Option<String>,
    /// Case-insensitive substring of the name.
    q: Option<String>,
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

const MAX_PAGE: usize = 1_000;

async fn agents(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AgentQuery>, QueryRejection>,
) -> Result<Json<AgentPage>, Error> {
    caller.require(Action::ViewAgents)?;
    let scope = caller.scope(Action::ViewAgents);
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE {
        return Err(Error::BadRequest(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let kind = match &query.state {
        Some(name) => Some(StateKind::from_name(name).ok_or_else(|| {
            let names: Vec<&str> = StateKind::ALL.iter().map(|kind| kind.name()).collect();
            Error::BadRequest(format!(
                "unknown state {name:?}; use one of {}",
                names.join(", ")
            ))
        })?),
        None => None,
    };
    let needle = query.q.as_deref().map(str::to_lowercase);
    state.live.read(|floor| {
        // A team or site the caller may not name is as unknown as one that does not exist.
        if let Some(team) = query.team.filter(|&team| {
            let team = monti_protocol::model::TeamId(team);
            !floor.scope_names_team(&scope, team)
        }) {
            return Err(Error::BadRequest(format!(
                "there is no team with id {team}"
            )));
        }
        if let Some(site) = query.site.filter(|&site| {
            let site = monti_protocol::model::SiteId(site);
            !floor.scope_names_site(&scope, site)
        }) {
            return Err(Error::BadRequest(format!(
                "there is no site with id {site}"
            )));
        }
        let matching = floor.agents().filter(|record| {
            scope.covers(record.info.team, record.info.site)
                && query.team.is_none_or(|team| record.info.team.0 == team)
                && query.site.is_none_or(|site| record.info.site.0 == site)
                && kind
                    .is_none_or(|kind| record.live.is_some_and(|live| live.status.kind() == kind))
                && needle
                    .as_ref()
                    .is_none_or(|needle| record.info.name.to_lowercase().contains(needle))
        });
        let mut total = 0;
        let mut page = Vec::with_capacity(limit);
        for record in matching {
            if total >= query.offset && page.len() < limit {
                page.push(agent_json(floor, record));
            }
            total += 1;
        }
        Ok(Json(AgentPage {
            total,
            offset: query.offset,
            agents: page,
        }))
    })
}

fn agent_json(floor: &Floor, record: &monti_protocol::floor::AgentRecord) -> AgentJson {
    let (state, reason, since_ms) = match record.live {
        Some(live) => (
            live.status.kind().name(),
            live.status
                .reason()
                .and_then(|reason| floor.reason(reason))
                .map(|reason| reason.code.clone()),
            live.since_ms,
        ),
        None => (StateKind::Offline.name(), None, 0),
    };
    AgentJson {
        id: record.info.id.0,
        name: record.info.name.clone(),
        team: record.info.team.0,
        site: record.info.site.0,
        state: state.to_owned(),
        reason,
        since_ms,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SummaryQuery {
    group_by: Option<String>,
}

async fn floor_summary(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<SummaryQuery>, QueryRejection>,
) -> Result<Json<FloorSummaryJson>, Error> {
    caller.require(Action::ViewSummary)?;
    let scope = caller.scope(Action::ViewSummary);
    let Query(query) = query?;
    let grouping = match query.group_by.as_deref() {
        None => Grouping::Team,
        Some(name) => Grouping::from_name(name).ok_or_else(|| {
            Error::BadRequest(format!(
                "unknown group_by {name:?}; use team, site or team_site"
            ))
        })?,
    };
    Ok(Json(state.live.read(|floor| {
        FloorSummaryJson::from_floor(floor, grouping, &scope)
    })))
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the database answers within two seconds (the floor is loaded before the server
/// listens at all) and, with Redis, once the floor has joined the shared stream. A server that
/// lost Redis later stays ready (it still serves its last floor) and says it is degraded.
async fn readyz(State(state): State<AppState>) -> Result<String, Error> {
    if state.joined.as_ref().is_some_and(|joined| !joined.get()) {
        return Err(Error::Unavailable(
            "joining the shared floor: Redis has not answered yet".into(),
        ));
    }
    match tokio::time::timeout(Duration::from_secs(2), state.db.ping()).await {
        Ok(Ok(())) => {
            let health = state.live.health();
            let health = health.borrow();
            Ok(if health.degraded {
                format!("degraded: {}\n", health.reason)
            } else {
                "ready\n".to_owned()
            })
        }
        Ok(Err(err)) => {
            tracing::warn!(error = format!("{err:#}"), "database check failed");
            Err(Error::Unavailable("the database does not answer".into()))
        }
        Err(_) => Err(Error::Unavailable(
            "the database does not answer in time".into(),
        )),
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let (open, idle, max) = state.db.connections();
    state.metrics.set_db_connections(open, idle, max);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// Unknown routes get the same JSON error shape as everything else.
pub async fn fallback() -> Error {
    Error::NotFound
}

#[cfg(test)]
mod tests {
    use super::is_loopback_host;

    #[test]
    fn only_this_computers_names_are_loopback_hosts() {
        for host in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:8080",
            "127.1.2.3",
            "[::1]:8080",
            "LOCALHOST",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "",
            "evil.example.com",
            "evil.example.com:8080",
            "10.0.0.1:8080",
            "localhost.evil.com",
            "[::2]:80",
            "0.0.0.0:8080",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
