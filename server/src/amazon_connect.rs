//! Amazon Connect agent event streams, delivered by Amazon Data Firehose to an HTTP endpoint.
//!
//! Firehose posts `{"requestId", "timestamp", "records": [{"data": base64}]}` with the access key
//! in `X-Amz-Firehose-Access-Key`; each record is one agent event (`EventType` `LOGIN`, `LOGOUT`,
//! `STATE_CHANGE` or `HEART_BEAT`, with `CurrentAgentSnapshot`). Firehose retries a request until
//! it gets a 200 with `{"requestId", "timestamp"}`, so the answer is 200 once the good records
//! are durably stored; a record that can never be read is skipped (logged and counted as
//! refused) rather than blocking the stream forever, and a storage failure is a 500, which
//! Firehose retries (event ids make the retry harmless).
//!
//! How events map to MONTI's states: an agent's contacts decide first (on hold, then
//! connected, then incoming or connecting, then ended, which is after-contact work); without one,
//! the agent status does (`ROUTABLE` is available, `OFFLINE` offline, any other status is not
//! ready with the status as the reason code). Hierarchy levels name the site and the team, as
//! configured. Heartbeats say the agent is still reported on; an agent whose heartbeats stop is
//! shown as stale.

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use monti_protocol::ingest::{AgentEventJson, EventWindow};
use monti_protocol::model::StateKind;
use monti_protocol::names::fit_name;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::config::AmazonConnectConfig;
use crate::ingest::{Batch, Event, Source};
use crate::metrics::EventLabels;

/// The path Firehose is pointed at.
pub const PATH: &str = "/api/v1/ingest/amazon-connect";

/// The Firehose endpoint.
pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route(PATH, post(deliver))
}

/// A Firehose HTTP endpoint delivery request.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FirehoseRequest {
    /// Same as the `X-Amz-Firehose-Request-Id` header.
    pub request_id: String,
    /// When Firehose sent it, ms since the epoch.
    pub timestamp: u64,
    /// The records.
    pub records: Vec<FirehoseRecord>,
}

/// One Firehose record.
#[derive(Debug, Deserialize, Serialize)]
pub struct FirehoseRecord {
    /// The record, base64.
    pub data: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FirehoseResponse {
    request_id: String,
    timestamp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
}

fn answer(status: StatusCode, request_id: String, error: Option<String>) -> Response {
    let body = FirehoseResponse {
        request_id,
        timestamp: crate::sim::now_ms(),
        error_message: error,
    };
    (status, Json(body)).into_response()
}

async fn deliver(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let config = &state.config.amazon_connect;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let request_id = header("x-amz-firehose-request-id");
    if config.access_key.is_empty() {
        return answer(
            StatusCode::NOT_FOUND,
            request_id,
            Some("Amazon Connect ingest is off: set [amazon_connect] access_key".to_owned()),
        );
    }
    if !same_key(
        header("x-amz-firehose-access-key").as_bytes(),
        config.access_key.as_bytes(),
    ) {
        // Counted, not audited: like requests without a token, anyone can send these.
        state.metrics.auth_failure("firehose_access_key");
        return answer(
            StatusCode::UNAUTHORIZED,
            request_id,
            Some("the access key is not accepted".to_owned()),
        );
    }
    if headers.contains_key("content-encoding") {
        return answer(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            request_id,
            Some("compressed deliveries are not supported; turn GZIP off on the stream".into()),
        );
    }
    let body = match crate::ingest::read_body(body, config.max_body_bytes).await {
        Ok(body) => body,
        Err(err) => {
            return answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                request_id,
                Some(err.to_string()),
            );
        }
    };
    let request: FirehoseRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => {
            return answer(
                StatusCode::BAD_REQUEST,
                request_id,
                Some(format!("not a Firehose delivery request: {err}")),
            );
        }
    };
    let request_id = if request_id.is_empty() {
        request.request_id.clone()
    } else {
        request_id
    };
    // Connect's status start times are the contact center's own record: no age limit, but
    // the same clock skew as every source.
    let window = EventWindow {
        max_age_ms: u64::MAX,
        ..state.config.ingest.window()
    };
    let (batch, problems) = batch(&request, config, crate::sim::now_ms(), &window);
    for (index, problem) in &problems {
        tracing::warn!(%request_id, record = index, %problem, "skipped an Amazon Connect record");
    }
    if !problems.is_empty() {
        state
            .metrics
            .events
            .get_or_create(&EventLabels {
                source: Source::AmazonConnect.name(),
                outcome: "refused",
            })
            .inc_by(problems.len() as u64);
    }
    match state.ingest.submit(batch).await {
        Ok(_) => answer(StatusCode::OK, request_id, None),
        Err(err) => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            request_id,
            Some(err.to_string()),
        ),
    }
}

/// Compares keys in time independent of where they differ.
fn same_key(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The events and heartbeats of a delivery, and what was wrong with the records that are not
/// in it (by record index).
pub fn batch(
    request: &FirehoseRequest,
    config: &AmazonConnectConfig,
    now_ms: u64,
    window: &EventWindow,
) -> (Batch, Vec<(usize, String)>) {
    let mut batch = Batch {
        source: Source::AmazonConnect,
        events: Vec::new(),
        heartbeats: Vec::new(),
    };
    let mut problems = Vec::new();
    for (index, record) in request.records.iter().enumerate() {
        match read_record(&record.data, config, now_ms, window) {
            Ok(Reading::Event(event)) => batch.events.push(*event),
            Ok(Reading::Heartbeat(agent)) => batch.heartbeats.push(agent),
            Err(problem) => problems.push((index, problem)),
        }
    }
    (batch, problems)
}

/// What a record says.
#[derive(Debug, PartialEq, Eq)]
pub enum Reading {
    /// A state (LOGIN, LOGOUT, STATE_CHANGE).
    Event(Box<Event>),
    /// The agent is still reported on (HEART_BEAT), by external id.
    Heartbeat(String),
}

/// Reads one base64 record.
pub fn read_record(
    data: &str,
    config: &AmazonConnectConfig,
    now_ms: u64,
    window: &EventWindow,
) -> Result<Reading, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|err| format!("the record is not base64: {err}"))?;
    let record: AgentEvent = serde_json::from_slice(&bytes)
        .map_err(|err| format!("the record is not an agent event: {err}"))?;
    let agent = record.agent_arn.clone();
    let state = match record.event_type.as_str() {
        "HEART_BEAT" => return Ok(Reading::Heartbeat(agent)),
        "LOGOUT" => Mapped {
            state: StateKind::Offline,
            reason: None,
            since: record.event_timestamp.clone(),
        },
        "LOGIN" | "STATE_CHANGE" => {
            let snapshot = record
                .current_agent_snapshot
                .as_ref()
                .ok_or("the event has no CurrentAgentSnapshot")?;
            map_snapshot(snapshot, record.event_timestamp.as_deref())?
        }
        other => return Err(format!("unknown EventType {other:?}")),
    };
    let since = state
        .since
        .as_deref()
        .or(record.event_timestamp.as_deref())
        .ok_or("the event has no timestamp")?;
    let since_ms = parse_time(since)?;
    let configuration = record
        .current_agent_snapshot
        .as_ref()
        .and_then(|snapshot| snapshot.configuration.as_ref());
    let level = |n: u8| -> Option<String> {
        let groups = configuration?.agent_hierarchy_groups.as_ref()?;
        let group = groups.get(&format!("Level{n}"))?.as_ref()?;
        Some(fit_name(&group.name)).filter(|name| !name.is_empty())
    };
    let name = configuration.and_then(|configuration| {
        let full = [&configuration.first_name, &configuration.last_name]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ");
        Some(fit_name(&full))
            .filter(|full| !full.is_empty())
            .or_else(|| configuration.username.as_deref().map(fit_name))
            .filter(|name| !name.is_empty())
    });
    let json = AgentEventJson {
        event_id: record.event_id,
        agent,
        state: state.state.name().to_owned(),
        reason: state.reason.as_ref().map(|(code, _)| code.clone()),
        since_ms,
        name,
        team: (config.team_level > 0)
            .then(|| level(config.team_level))
            .flatten(),
        site: (config.site_level > 0)
            .then(|| level(config.site_level))
            .flatten(),
    };
    let mut event = Event::from_json(json, now_ms, window)?;
    event.reason = state.reason;
    Ok(Reading::Event(Box::new(event)))
}

struct Mapped {
    state: StateKind,
    reason: Option<(String, String)>,
    since: Option<String>,
}

/// The state a snapshot shows: contacts first, then the agent status.
fn map_snapshot(snapshot: &Snapshot, event_time: Option<&str>) -> Result<Mapped, String> {
    let contacts = snapshot.contacts.as_deref().unwrap_or_default();
    for (wanted, state) in [
        (&["CONNECTED_ONHOLD"][..], StateKind::OnHold),
        (&["CONNECTED"][..], StateKind::OnCall),
        (
            &["INCOMING", "PENDING", "CONNECTING"][..],
            StateKind::Ringing,
        ),
        (&["ENDED"][..], StateKind::WrapUp),
    ] {
        if let Some(contact) = contacts
            .iter()
            .find(|contact| wanted.contains(&contact.state.as_str()))
        {
            return Ok(Mapped {
                state,
                reason: None,
                since: contact
                    .state_start_timestamp
                    .clone()
                    .or(event_time.map(str::to_owned)),
            });
        }
    }
    let status = snapshot
        .agent_status
        .as_ref()
        .ok_or("the snapshot has neither a contact nor an AgentStatus")?;
    let (state, reason) = match status.kind.as_deref() {
        Some("ROUTABLE") => (StateKind::Available, None),
        Some("OFFLINE") => (StateKind::Offline, None),
        _ => {
            // Status names are the contact center's to choose: made to fit, never refused.
            let code = fit_name(&reason_code(&status.name));
            if code.is_empty() {
                return Err("a custom AgentStatus without a name".to_owned());
            }
            (StateKind::NotReady, Some((code, fit_name(&status.name))))
        }
    };
    Ok(Mapped {
        state,
        reason,
        since: status.start_timestamp.clone(),
    })
}

/// A reason code from a status name: `Lunch Break` is `lunch_break`.
pub fn reason_code(name: &str) -> String {
    let mut code = String::with_capacity(name.len());
    for c in name.trim().chars() {
        if c.is_alphanumeric() {
            code.extend(c.to_lowercase());
        } else if !code.ends_with('_') {
            code.push('_');
        }
    }
    code.trim_end_matches('_').to_owned()
}

/// Milliseconds since the epoch of an ISO 8601 time such as `2019-08-13T20:20:27.284Z`.
fn parse_time(text: &str) -> Result<u64, String> {
    let time = chrono::DateTime::parse_from_rfc3339(text)
        .map_err(|err| format!("{text:?} is not an ISO 8601 time: {err}"))?;
    u64::try_from(time.timestamp_millis()).map_err(|_| format!("{text:?} is before 1970"))
}

/// An Amazon Connect agent event, as far as MONTI reads it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AgentEvent {
    event_id: String,
    event_type: String,
    #[serde(rename = "AgentARN")]
    agent_arn: String,
    event_timestamp: Option<String>,
    current_agent_snapshot: Option<Snapshot>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Snapshot {
    agent_status: Option<Status>,
    configuration: Option<Configuration>,
    contacts: Option<Vec<Contact>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Status {
    name: String,
    #[serde(rename = "Type")]
    kind: Option<String>,
    start_timestamp: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Configuration {
    agent_hierarchy_groups: Option<HashMap<String, Option<HierarchyGroup>>>,
    first_name: Option<String>,
    last_name: Option<String>,
    username: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HierarchyGroup {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Contact {
    state: String,
    state_start_timestamp: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_become_reason_codes() {
        assert_eq!(reason_code("Lunch Break"), "lunch_break");
        assert_eq!(reason_code(" Training / 1:1 "), "training_1_1");
        assert_eq!(reason_code("Pause café"), "pause_café");
        assert_eq!(reason_code("--"), "");
    }

    #[test]
    fn times_are_read_to_the_millisecond() {
        assert_eq!(
            parse_time("2019-08-13T20:20:27.284Z"),
            Ok(1_565_727_627_284)
        );
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn keys_compare_whole() {
        assert!(same_key(b"abcdefgh", b"abcdefgh"));
        assert!(!same_key(b"abcdefgh", b"abcdefgX"));
        assert!(!same_key(b"abc", b"abcdefgh"));
    }
}
