//! The sign-in self-check: is the provider MONTI is configured for reachable, does it call
//! itself by the configured issuer, does it publish keys and the device flow, do the bindings
//! name teams and sites that exist, and what does a given token pass and fail. Run at start-up
//! in oidc mode (each step logged, nothing fatal: a provider briefly away must not keep MONTI
//! down) and on demand with `monti-server --check-auth [--token T]`.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::api::token::{DiscoveredKeys, Rules, Verifier};
use crate::config::AuthConfig;

/// How a step went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// As it should be.
    Ok,
    /// Works, but something a person should look at.
    Warn,
    /// Sign-in cannot work like this.
    Fail,
}

/// One step of the check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// How it went.
    pub outcome: Outcome,
    /// What was checked and found, in words.
    pub text: String,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = match self.outcome {
            Outcome::Ok => "ok  ",
            Outcome::Warn => "warn",
            Outcome::Fail => "FAIL",
        };
        write!(f, "{mark} {}", self.text)
    }
}

fn step(outcome: Outcome, text: impl Into<String>) -> Step {
    Step {
        outcome,
        text: text.into(),
    }
}

/// Checks the provider: discovery, its issuer, its keys, its device flow.
pub async fn provider(config: &AuthConfig) -> Vec<Step> {
    let mut steps = Vec::new();
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(http) => http,
        Err(err) => return vec![step(Outcome::Fail, format!("no HTTP client: {err}"))],
    };
    let url = format!(
        "{}/.well-known/openid-configuration",
        config.issuer.trim_end_matches('/')
    );
    let discovery: Value = match get_json(&http, &url).await {
        Ok(discovery) => {
            steps.push(step(Outcome::Ok, format!("discovery document at {url}")));
            discovery
        }
        Err(err) => {
            steps.push(step(
                Outcome::Fail,
                format!("discovery document at {url}: {err}"),
            ));
            return steps;
        }
    };
    steps.push(issuer_step(&discovery, &config.issuer));
    steps.push(keys_step(&http, &discovery).await);
    steps.extend(flow_steps(&discovery));
    steps
}

/// Whether the provider calls itself by the configured issuer.
fn issuer_step(discovery: &Value, configured: &str) -> Step {
    match discovery.get("issuer").and_then(Value::as_str) {
        Some(issuer) if issuer == configured => step(
            Outcome::Ok,
            format!("the provider calls itself {issuer:?}, as configured"),
        ),
        Some(issuer) if issuer.trim_end_matches('/') == configured.trim_end_matches('/') => step(
            Outcome::Fail,
            format!(
                "the provider calls itself {issuer:?}, [auth] issuer is {:?}: they differ only \
                 in the trailing slash, and tokens carry the provider's spelling",
                configured
            ),
        ),
        Some(issuer) => step(
            Outcome::Fail,
            format!(
                "the provider calls itself {issuer:?}, [auth] issuer is {:?}",
                configured
            ),
        ),
        None => step(Outcome::Fail, "the discovery document names no issuer"),
    }
}

/// Whether the provider publishes signing keys, and which.
async fn keys_step(http: &reqwest::Client, discovery: &Value) -> Step {
    match discovery.get("jwks_uri").and_then(Value::as_str) {
        Some(jwks_uri) => match get_json(http, jwks_uri).await {
            Ok(keys) => {
                let described: Vec<String> = (keys.get("keys").and_then(Value::as_array))
                    .map(|keys| {
                        keys.iter()
                            .map(|key| {
                                let field = |name: &str| {
                                    key.get(name)
                                        .and_then(Value::as_str)
                                        .unwrap_or("?")
                                        .to_owned()
                                };
                                format!("{} ({} {})", field("kid"), field("kty"), field("alg"))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let outcome = if described.is_empty() {
                    Outcome::Fail
                } else {
                    Outcome::Ok
                };
                step(
                    outcome,
                    format!(
                        "signing keys at {jwks_uri}: {}",
                        if described.is_empty() {
                            "none".to_owned()
                        } else {
                            described.join(", ")
                        }
                    ),
                )
            }
            Err(err) => step(Outcome::Fail, format!("signing keys at {jwks_uri}: {err}")),
        },
        None => step(Outcome::Fail, "the discovery document names no jwks_uri"),
    }
}

/// Which of the apps' sign-in flows the provider offers, and whether it revokes tokens.
fn flow_steps(discovery: &Value) -> Vec<Step> {
    let mut steps = Vec::new();
    if discovery.get("device_authorization_endpoint").is_some() {
        steps.push(step(
            Outcome::Ok,
            "the provider offers the device flow (the apps' sign-in)",
        ));
    } else {
        steps.push(step(
            Outcome::Warn,
            "the provider lists no device_authorization_endpoint: the apps sign in through the \
             browser (authorization code with PKCE, loopback redirect), so a wallboard needs \
             someone at its keyboard once; the client must allow http://127.0.0.1/callback",
        ));
    }
    if let Some(revocation) = discovery.get("revocation_endpoint").and_then(Value::as_str) {
        steps.push(step(
            Outcome::Ok,
            format!("tokens can be revoked at {revocation} (logout)"),
        ));
    }
    steps
}

/// Checks that every binding names teams and sites that exist.
pub fn bindings(
    config: &AuthConfig,
    team_exists: impl Fn(&str) -> bool,
    site_exists: impl Fn(&str) -> bool,
) -> Vec<Step> {
    let mut steps = Vec::new();
    for binding in &config.bindings {
        let missing: Vec<String> = (binding.teams.iter())
            .filter(|team| !team_exists(team))
            .map(|team| format!("team {team:?}"))
            .chain(
                (binding.sites.iter())
                    .filter(|site| !site_exists(site))
                    .map(|site| format!("site {site:?}")),
            )
            .collect();
        if !missing.is_empty() {
            steps.push(step(
                Outcome::Warn,
                format!(
                    "the binding of group {:?} ({:?}) names {}, which do not exist (yet); until \
                     one of each list does, it grants nothing",
                    binding.group,
                    binding.role,
                    missing.join(" and ")
                ),
            ));
        }
    }
    steps
}

/// Checks one token against the configuration: each rule it passes or fails, then what its
/// groups give.
pub async fn token(config: &AuthConfig, token: &str) -> Vec<Step> {
    let source = match DiscoveredKeys::new(&config.issuer) {
        Ok(source) => source,
        Err(err) => return vec![step(Outcome::Fail, format!("{err:#}"))],
    };
    let verifier = Verifier::new(
        Rules {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            groups_claim: config.groups_claim.clone(),
            leeway_secs: config.leeway_secs,
        },
        source,
        Duration::ZERO,
    );
    let identity = match verifier.verify(token).await {
        Ok(identity) => identity,
        Err(err) => return vec![step(Outcome::Fail, format!("the token: {err}"))],
    };
    let mut steps = vec![step(
        Outcome::Ok,
        format!(
            "the token is signed by the provider, current, for {:?}, names {:?}",
            config.audience, identity.subject
        ),
    )];
    match &identity.groups_note {
        Some(note) => steps.push(step(Outcome::Fail, note.clone())),
        None => steps.push(step(
            Outcome::Ok,
            format!("groups in {:?}: {:?}", config.groups_claim, identity.groups),
        )),
    }
    let bound: Vec<String> = (config.bindings.iter())
        .filter(|binding| identity.groups.contains(&binding.group))
        .map(|binding| format!("{} via {:?}", binding.role.name(), binding.group))
        .collect();
    if bound.is_empty() {
        steps.push(step(
            Outcome::Fail,
            crate::api::auth::no_role(&identity, &config.bindings),
        ));
    } else {
        steps.push(step(Outcome::Ok, format!("roles: {}", bound.join(", "))));
    }
    steps
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|err| format!("cannot fetch it: {err}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    response
        .json()
        .await
        .map_err(|err| format!("not JSON: {err}"))
}

/// Logs each step at start-up: ok at info, the rest at warn.
pub fn log(steps: &[Step]) {
    for step in steps {
        match step.outcome {
            Outcome::Ok => tracing::info!("sign-in check: {}", step.text),
            Outcome::Warn | Outcome::Fail => tracing::warn!("sign-in check: {}", step.text),
        }
    }
}
