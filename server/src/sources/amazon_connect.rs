//! Amazon Connect agent event streams, delivered by Amazon Data Firehose to an HTTP endpoint.
//!
//! Firehose posts `{"requestId", "timestamp", "records": [{"data": base64}]}` (only `requestId`
//! and `records` are required), optionally GZIP-compressed, with the access key in
//! `X-Amz-Firehose-Access-Key`; each record is one agent event (`EventType` `LOGIN`, `LOGOUT`,
//! `STATE_CHANGE` or `HEART_BEAT`, with `CurrentAgentSnapshot`). Firehose retries every answer
//! but 200 (and 413, which it drops), so the answer is 200 once the good records are durably
//! stored; a record that can never be read is skipped (counted, and logged once per delivery)
//! rather than blocking the stream forever, empty records are counted, and a storage failure is
//! a 500, which Firehose retries (event ids make the retry harmless).
//!
//! How events map to MONTI's states: an agent's contacts decide first (on hold, then
//! connected, then incoming or connecting, then ended, which is after-contact work); without one,
//! the agent status does: by its `Type` when the event has one (`ROUTABLE` is available,
//! `OFFLINE` offline), else by its name (`Available`, `Offline`, and
//! `[amazon_connect] status_names`); any other status is not ready with the status as the
//! reason code. Hierarchy levels name the site and the team, as configured. Heartbeats say the
//! agent is still reported on; an agent whose heartbeats stop is shown as stale.

use std::collections::{BTreeMap, HashMap};

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
use crate::api::access::Admission;
use crate::config::AmazonConnectConfig;
use crate::metrics::EventLabels;
use crate::sources::ingest::{Batch, Event, EventReason, Source};
use monti_protocol::access::KeyKind;

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
    /// When Firehose sent it, ms since the epoch (optional in Firehose's schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
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

/// Firehose's answer format: the request id, the time, and on failure what went wrong.
fn answer(status: StatusCode, request_id: String, error: Option<String>, now_ms: u64) -> Response {
    let body = FirehoseResponse {
        request_id,
        timestamp: now_ms,
        error_message: error,
    };
    (status, Json(body)).into_response()
}

/// Why a delivery is not read: the status, and the error message Firehose shows.
struct Refusal(StatusCode, String);

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn deliver(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let (request, request_id) = match open_delivery(&state, &headers, body).await {
        Ok(opened) => opened,
        Err(refused) => return refused,
    };
    // Connect's status start times are the contact center's own record: no age limit, but
    // the same clock skew as every source.
    let window = EventWindow {
        max_age_ms: u64::MAX,
        ..state.config.ingest.window()
    };
    let config = &state.config.amazon_connect;
    let (batch, skipped) = batch(&request, config, state.clock.now_ms(), &window);
    report_skipped(&state, &request_id, &skipped);
    let stored = state.ingest.submit(batch).await;
    answer_stored(stored, request_id, state.clock.now_ms())
}

/// A delivery read and checked, with its request id (the header's, else the body's); or
/// Firehose's answer refusing it.
pub(crate) async fn open_delivery(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(FirehoseRequest, String), Response> {
    let header_id = header(headers, "x-amz-firehose-request-id");
    match read_delivery(state, headers, body).await {
        Ok(request) => {
            let request_id = if header_id.is_empty() {
                request.request_id.clone()
            } else {
                header_id
            };
            Ok((request, request_id))
        }
        Err(Refusal(status, problem)) => Err(answer(
            status,
            header_id,
            Some(problem),
            state.clock.now_ms(),
        )),
    }
}

/// Firehose's answer once the delivery's records went to the writer: 200 when stored, 500
/// (which Firehose retries) when not.
pub(crate) fn answer_stored<T>(
    stored: Result<T, crate::sources::ingest::IngestError>,
    request_id: String,
    now_ms: u64,
) -> Response {
    match stored {
        Ok(_) => answer(StatusCode::OK, request_id, None, now_ms),
        Err(err) => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            request_id,
            Some(err.to_string()),
            now_ms,
        ),
    }
}

/// Checks a delivery's access key and encoding, and reads its body.
async fn read_delivery(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<FirehoseRequest, Refusal> {
    let config = &state.config.amazon_connect;
    let given = header(headers, "x-amz-firehose-access-key");
    match (state.access.now()).admit(KeyKind::Firehose, given.as_bytes(), &config.access_key) {
        Admission::Accepted => {}
        Admission::Off => {
            return Err(Refusal(
                StatusCode::NOT_FOUND,
                "Amazon Connect ingest is off: set [amazon_connect] access_key, or make a \
                 Firehose key in the Admin window"
                    .to_owned(),
            ));
        }
        Admission::Refused => {
            // Counted, not audited: like requests without a token, anyone can send these.
            state.metrics.auth_failure("firehose_access_key");
            return Err(Refusal(
                StatusCode::UNAUTHORIZED,
                "the access key is not accepted".to_owned(),
            ));
        }
    }
    let gzip = match header(headers, "content-encoding").trim() {
        "" | "identity" => false,
        encoding if encoding.eq_ignore_ascii_case("gzip") => true,
        other => {
            return Err(Refusal(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Encoding {other:?} is not supported; Firehose sends GZIP or nothing"
                ),
            ));
        }
    };
    let body = crate::sources::ingest::read_body(body, config.max_body_bytes)
        .await
        .map_err(|err| Refusal(StatusCode::PAYLOAD_TOO_LARGE, err.to_string()))?;
    let body = if gzip {
        let body = gunzip(&body, config.max_body_bytes).map_err(|problem| {
            let status = if problem.starts_with("more than") {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            Refusal(status, problem)
        })?;
        bytes::Bytes::from(body)
    } else {
        body
    };
    serde_json::from_slice(&body).map_err(|err| {
        Refusal(
            StatusCode::BAD_REQUEST,
            format!("not a Firehose delivery request: {err}"),
        )
    })
}

/// Logs and counts the records a delivery skipped: one line per delivery, however many it
/// skipped (a misconfigured stream sends thousands a minute).
fn report_skipped(state: &AppState, request_id: &str, skipped: &Skipped) {
    if let Some((index, problem)) = skipped.problems.first() {
        tracing::warn!(
            %request_id,
            skipped = skipped.problems.len(),
            first_record = index,
            %problem,
            "skipped Amazon Connect records that cannot be read"
        );
    }
    for (outcome, n) in [
        ("refused", skipped.problems.len()),
        ("empty", skipped.empty),
    ] {
        if n > 0 {
            state
                .metrics
                .events
                .get_or_create(&EventLabels {
                    source: Source::AmazonConnect.name(),
                    outcome,
                })
                .inc_by(n as u64);
        }
    }
}

/// Compares keys in time independent of where they differ.
pub(crate) fn same_key(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Decompresses a GZIP body, refusing one that grows past `limit` bytes.
fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|err| format!("the body is not valid GZIP: {err}"))?;
    if out.len() > limit {
        return Err(format!(
            "more than {limit} bytes once decompressed; lower the stream's buffer size"
        ));
    }
    Ok(out)
}

/// The records of a delivery that are not in its batch.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Records with no data (Firehose permits them).
    pub empty: usize,
    /// What was wrong with the records that cannot be read, by record index.
    pub problems: Vec<(usize, String)>,
}

/// The events and heartbeats of a delivery, and the records that are not in it.
pub fn batch(
    request: &FirehoseRequest,
    config: &AmazonConnectConfig,
    now_ms: u64,
    window: &EventWindow,
) -> (Batch, Skipped) {
    let mut batch = Batch {
        source: Source::AmazonConnect,
        events: Vec::new(),
        heartbeats: Vec::new(),
    };
    let mut skipped = Skipped::default();
    for (index, record) in request.records.iter().enumerate() {
        if record.data.trim().is_empty() {
            skipped.empty += 1;
            continue;
        }
        match read_record(&record.data, config, now_ms, window) {
            Ok(Reading::Event(event)) => batch.events.push(*event),
            Ok(Reading::Heartbeat(agent)) => batch.heartbeats.push(agent),
            Err(problem) => skipped.problems.push((index, problem)),
        }
    }
    (batch, skipped)
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
            let had_contacts = (record.previous_agent_snapshot.as_ref()).is_some_and(|previous| {
                !previous.contacts.as_deref().unwrap_or_default().is_empty()
            });
            map_snapshot(
                snapshot,
                had_contacts,
                record.event_timestamp.as_deref(),
                config,
            )?
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
        reason: state.reason.as_ref().map(|reason| reason.code.clone()),
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
    reason: Option<EventReason>,
    since: Option<String>,
}

/// The state a snapshot shows: contacts first, then the agent status. `had_contacts`: the
/// previous snapshot had contacts (so a status shown now began when they ended, at the event).
fn map_snapshot(
    snapshot: &Snapshot,
    had_contacts: bool,
    event_time: Option<&str>,
    config: &AmazonConnectConfig,
) -> Result<Mapped, String> {
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
    let state = match status.kind.as_deref() {
        Some("ROUTABLE") => StateKind::Available,
        Some("OFFLINE") => StateKind::Offline,
        // A custom status counts as not ready unless the configuration says otherwise.
        Some(_) => {
            configured_status(&config.status_names, &status.name).unwrap_or(StateKind::NotReady)
        }
        None => status_by_name(&config.status_names, &status.name),
    };
    let reason = if state == StateKind::NotReady {
        // Status names are the contact center's to choose: made to fit, never refused.
        let code = fit_name(&reason_code(&status.name));
        if code.is_empty() {
            return Err("a custom AgentStatus without a name".to_owned());
        }
        Some(EventReason {
            code,
            label: fit_name(&status.name),
        })
    } else {
        None
    };
    // The status's own start is when the agent chose it; while contacts kept the agent busy
    // it did not show. Once the last contact's work ends, it shows from that moment on (AWS's
    // sample of an agent leaving after-contact work keeps the status's start from before the
    // call).
    let since = if had_contacts {
        event_time.map(str::to_owned)
    } else {
        status.start_timestamp.clone()
    };
    Ok(Mapped {
        state,
        reason,
        since,
    })
}

/// The state a status name stands for in `[amazon_connect] status_names` (any case).
fn configured_status(names: &BTreeMap<String, String>, name: &str) -> Option<StateKind> {
    let name = name.trim();
    (names.iter())
        .find(|(configured, _)| configured.trim().eq_ignore_ascii_case(name))
        .and_then(|(_, state)| StateKind::from_name(state))
}

/// The state of a status known only by its name: the configuration's, else Amazon Connect's
/// two built-in statuses, else not ready.
fn status_by_name(names: &BTreeMap<String, String>, name: &str) -> StateKind {
    configured_status(names, name).unwrap_or_else(|| match name.trim() {
        built_in if built_in.eq_ignore_ascii_case("Available") => StateKind::Available,
        built_in if built_in.eq_ignore_ascii_case("Offline") => StateKind::Offline,
        _ => StateKind::NotReady,
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

/// Milliseconds since the epoch of an ISO 8601 time such as `2019-08-13T20:20:27.284Z`, or
/// with the milliseconds after a colon (`20:20:27:284Z`), as Amazon Connect's data model spells
/// its format.
pub(crate) fn parse_time(text: &str) -> Result<u64, String> {
    let time = chrono::DateTime::parse_from_rfc3339(text)
        .or_else(|err| {
            colon_milliseconds(text)
                .ok_or(err)
                .and_then(|fixed| chrono::DateTime::parse_from_rfc3339(&fixed))
        })
        .map_err(|err| format!("{text:?} is not an ISO 8601 time: {err}"))?;
    u64::try_from(time.timestamp_millis()).map_err(|_| format!("{text:?} is before 1970"))
}

/// `2019-08-13T20:20:27:284Z` as `2019-08-13T20:20:27.284Z`; `None` if it is not so spelled.
fn colon_milliseconds(text: &str) -> Option<String> {
    let (date, time) = text.split_once('T')?;
    let end = time.find(['Z', 'z', '+', '-']).unwrap_or(time.len());
    let (clock, zone) = time.split_at(end);
    let parts: Vec<&str> = clock.split(':').collect();
    let [hours, minutes, seconds, millis] = parts[..] else {
        return None;
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    (digits(seconds) && digits(millis))
        .then(|| format!("{date}T{hours}:{minutes}:{seconds}.{millis}{zone}"))
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
    previous_agent_snapshot: Option<Snapshot>,
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
        // As the agent event stream data model spells its format (hh:mm:ss:sssZ).
        assert_eq!(
            parse_time("2019-08-13T20:20:27:284Z"),
            Ok(1_565_727_627_284)
        );
        assert_eq!(
            parse_time("2019-08-13T22:20:27:284+02:00"),
            Ok(1_565_727_627_284)
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2019-08-13T20:20:27:28a4Z").is_err());
    }

    #[test]
    fn a_status_is_read_by_type_then_by_name() {
        let configured = BTreeMap::from([
            ("Outbound Calls".to_owned(), "on_call".to_owned()),
            ("available".to_owned(), "available".to_owned()),
        ]);
        assert_eq!(
            status_by_name(&BTreeMap::new(), "Available"),
            StateKind::Available
        );
        assert_eq!(
            status_by_name(&BTreeMap::new(), "Offline"),
            StateKind::Offline
        );
        assert_eq!(
            status_by_name(&BTreeMap::new(), "Lunch"),
            StateKind::NotReady
        );
        assert_eq!(
            status_by_name(&configured, "outbound calls"),
            StateKind::OnCall
        );
        assert_eq!(configured_status(&configured, "Lunch"), None);
    }

    #[test]
    fn gzip_bodies_are_read_within_the_limit() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&[b'x'; 10_000]).expect("compresses");
        let compressed = encoder.finish().expect("compressed");
        assert_eq!(
            gunzip(&compressed, 10_000).map(|body| body.len()),
            Ok(10_000)
        );
        let refused = gunzip(&compressed, 9_999).expect_err("over the limit");
        assert!(refused.starts_with("more than 9999 bytes"), "{refused}");
        assert!(gunzip(b"plain", 100).is_err());
    }

    #[test]
    fn keys_compare_whole() {
        assert!(same_key(b"abcdefgh", b"abcdefgh"));
        assert!(!same_key(b"abcdefgh", b"abcdefgX"));
        assert!(!same_key(b"abc", b"abcdefgh"));
    }
}
