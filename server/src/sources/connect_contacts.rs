//! Amazon Connect contact events, delivered by an EventBridge rule to an API destination.
//!
//! Connect emits an "Amazon Connect Contact Event" for each step of a voice call, chat, task or
//! email (`QUEUED`, `CONNECTED_TO_AGENT`, `DISCONNECTED`, and others MONTI does not need). An
//! EventBridge rule sends each to this endpoint through an API destination, one event per
//! request, with the connection's API key in the header `[amazon_connect] eventbridge_key_header`
//! (default `x-monti-key`). EventBridge retries 5xx and 429 answers and drops other 4xx ones, so
//! a storage failure is a 500 and an event that can never be read a 400.
//!
//! What is read, as AWS's own samples spell it (`server/tests/fixtures/aws/contact-event-*`):
//! field names in camelCase and in PascalCase (both appear in AWS's documentation), channels in
//! any case, and any `eventType`; types MONTI does not use are acknowledged and skipped, as AWS
//! asks of consumers. Each event is read as the facts it carries, each with an id of its own so
//! that the same fact from another event is a duplicate: the contact entered a queue (from
//! `queueInfo`, at its `enqueueTimestamp`), an agent answered it (from `agentInfo`, at its
//! `connectedToAgentTimestamp`; Connect's placeholder `1970-01-01T00:00:00.001Z` is no time),
//! and it ended (`DISCONNECTED`, at `disconnectTimestamp`). So a lost `QUEUED` event costs
//! nothing when a later event names the queue. Agents are named by their ARN, as in agent
//! events; queues by `[amazon_connect.queue_names]` (queue ARN or id to name), else by their
//! id.
//!
//! The same events may come through Amazon Data Firehose instead (an EventBridge rule whose
//! target is a Firehose stream with an HTTP endpoint destination, as the Terraform stack makes
//! it): at [`FIREHOSE_PATH`], one event per record, authenticated with the Firehose access key
//! of the agent event stream, answered in Firehose's format. Firehose delivers from AWS's
//! published address blocks, which the load balancer lets through to these paths only, where an
//! API destination comes from anywhere.
//!
//! Connect gives a transfer a new contact id (`initiationMethod` `TRANSFER` or
//! `QUEUE_TRANSFER`, `previousContactId` naming the one before): an event of the new contact also
//! says that the previous one was transferred (at the new one's `initiationTimestamp`), so a
//! contact moved to another queue before an answer counts as transferred there, not abandoned.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use monti_protocol::ingest::{ContactEventKind, EventWindow};
use serde_json::Value;

use crate::AppState;
use crate::api::access::Admission;
use crate::config::AmazonConnectConfig;
use crate::core::contact::{ContactBatch, ContactEvent};
use crate::core::plan::Source;
use crate::metrics::EventLabels;
use crate::sources::amazon_connect::{answer_stored, open_delivery, parse_time};
use crate::sources::ingest::read_body;
use monti_protocol::access::KeyKind;

/// The path the API destination is pointed at.
pub const PATH: &str = "/api/v1/ingest/amazon-connect/contact-events";

/// The path a Firehose stream of contact events is pointed at.
pub const FIREHOSE_PATH: &str = "/api/v1/ingest/amazon-connect/contact-events/firehose";

/// The EventBridge endpoint and its Firehose twin.
pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route(PATH, post(receive))
        .route(FIREHOSE_PATH, post(deliver))
}

/// A Firehose delivery of contact events: every record that can be read is stored, one that
/// cannot is skipped (counted and logged once per delivery, as for agent events), and the
/// answer is Firehose's: 200 once stored, 500 (retried) when storing failed.
async fn deliver(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    use base64::Engine;
    let (request, request_id) = match open_delivery(&state, &headers, body).await {
        Ok(opened) => opened,
        Err(refused) => return refused,
    };
    let config = &state.config.amazon_connect;
    let window = EventWindow {
        max_age_ms: u64::MAX,
        ..state.config.ingest.window()
    };
    let now_ms = state.clock.now_ms();
    let mut events = Vec::new();
    let (mut skipped, mut problems) = (0, Vec::new());
    for (index, record) in request.records.iter().enumerate() {
        let event = base64::engine::general_purpose::STANDARD
            .decode(record.data.trim())
            .map_err(|err| format!("the record is not base64: {err}"))
            .and_then(|bytes| {
                serde_json::from_slice::<Value>(&bytes)
                    .map_err(|err| format!("the record is not JSON: {err}"))
            })
            .and_then(|event| read_event(&event, config, now_ms, &window));
        match event {
            Ok(Reading::Events(read)) => events.extend(read),
            Ok(Reading::Skipped(_)) => skipped += 1,
            Err(problem) => problems.push((index, problem)),
        }
    }
    if let Some((index, problem)) = problems.first() {
        tracing::warn!(
            %request_id,
            skipped = problems.len(),
            first_record = index,
            %problem,
            "skipped Amazon Connect contact event records that cannot be read"
        );
    }
    count(&state, "skipped", skipped);
    count(&state, "refused", problems.len() as u64);
    if events.is_empty() {
        return answer_stored(Ok(()), request_id, now_ms);
    }
    let batch = ContactBatch {
        source: Source::AmazonConnect,
        events,
    };
    let stored = state.ingest.contacts(batch).await;
    answer_stored(stored, request_id, state.clock.now_ms())
}

/// What one EventBridge event says.
#[derive(Debug, PartialEq, Eq)]
pub enum Reading {
    /// The facts it carries (perhaps none: an outbound call names no queue).
    Events(Vec<ContactEvent>),
    /// An event type MONTI does not use.
    Skipped(String),
}

async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let config = &state.config.amazon_connect;
    let given = headers
        .get(config.eventbridge_key_header.as_str())
        .map(|value| value.as_bytes())
        .unwrap_or_default();
    match (state.access.now()).admit(KeyKind::Eventbridge, given, &config.eventbridge_key) {
        Admission::Accepted => {}
        Admission::Off => return (StatusCode::NOT_FOUND, "not found").into_response(),
        Admission::Refused => {
            state.metrics.auth_failure("eventbridge_key");
            return refuse(
                StatusCode::UNAUTHORIZED,
                format!(
                    "the {} header does not hold a key in force",
                    config.eventbridge_key_header
                ),
            );
        }
    }
    let body = match read_body(body, config.max_body_bytes).await {
        Ok(body) => body,
        Err(err) => return err.into_response(),
    };
    let event: Value = match serde_json::from_slice(&body) {
        Ok(event) => event,
        Err(err) => return refuse(StatusCode::BAD_REQUEST, format!("not JSON: {err}")),
    };
    // Connect's times are the contact center's own record: no age limit, the usual skew.
    let window = EventWindow {
        max_age_ms: u64::MAX,
        ..state.config.ingest.window()
    };
    let events = match read_event(&event, config, state.clock.now_ms(), &window) {
        Ok(Reading::Events(events)) => events,
        Ok(Reading::Skipped(event_type)) => {
            count(&state, "skipped", 1);
            return (
                StatusCode::OK,
                Json(serde_json::json!({ "stored": 0, "skipped": event_type })),
            )
                .into_response();
        }
        Err(problem) => {
            count(&state, "refused", 1);
            return refuse(StatusCode::BAD_REQUEST, problem);
        }
    };
    let n = events.len();
    let batch = ContactBatch {
        source: Source::AmazonConnect,
        events,
    };
    match state.ingest.contacts(batch).await {
        Ok(_) => (StatusCode::OK, Json(serde_json::json!({ "stored": n }))).into_response(),
        Err(err) => refuse(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    }
}

fn count(state: &AppState, outcome: &'static str, n: u64) {
    state
        .metrics
        .contact_events
        .get_or_create(&EventLabels {
            source: Source::AmazonConnect.name(),
            outcome,
        })
        .inc_by(n);
}

fn refuse(status: StatusCode, message: String) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": status.canonical_reason(), "message": message })),
    )
        .into_response()
}

/// A field of `object` by name in any case (`queueInfo`, `QueueInfo`).
fn field<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    object
        .as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

fn text<'a>(object: &'a Value, name: &str) -> Option<&'a str> {
    field(object, name)?
        .as_str()
        .filter(|text| !text.is_empty())
}

/// A time, unless it is Connect's placeholder for none (before 2000).
fn time_of(object: &Value, name: &str) -> Result<Option<u64>, String> {
    let Some(text) = text(object, name) else {
        return Ok(None);
    };
    const YEAR_2000_MS: u64 = 946_684_800_000;
    let ms = parse_time(text).map_err(|err| format!("{name}: {err}"))?;
    Ok((ms >= YEAR_2000_MS).then_some(ms))
}

/// The last segment of an ARN (`.../queue/<id>`), or the whole of something that is not one.
fn arn_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Reads one EventBridge event.
pub fn read_event(
    event: &Value,
    config: &AmazonConnectConfig,
    now_ms: u64,
    window: &EventWindow,
) -> Result<Reading, String> {
    if text(event, "detail-type") != Some("Amazon Connect Contact Event") {
        return Err(format!(
            "not an Amazon Connect Contact Event (detail-type {:?})",
            text(event, "detail-type").unwrap_or_default()
        ));
    }
    let id = text(event, "id").ok_or("the event has no id")?;
    let detail = field(event, "detail").ok_or("the event has no detail")?;
    let event_type = text(detail, "eventType").ok_or("the detail has no eventType")?;
    if !matches!(event_type, "QUEUED" | "CONNECTED_TO_AGENT" | "DISCONNECTED") {
        return Ok(Reading::Skipped(event_type.to_owned()));
    }
    let contact = text(detail, "contactId").ok_or("the detail has no contactId")?;
    let event_time = match text(event, "time") {
        Some(time) => Some(parse_time(time).map_err(|err| format!("time: {err}"))?),
        None => None,
    };
    let channel = match text(detail, "channel")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("chat") => "chat",
        Some("task") => "task",
        Some("email") => "email",
        _ => "voice",
    };
    let fact = |kind: ContactEventKind, at_ms: u64, queue: Option<String>, agent: Option<&str>| {
        ContactEvent {
            // The fact's own id: the same fact from another event is a duplicate.
            event_id: format!("connect:{contact}:{}", kind.name()),
            contact: contact.to_owned(),
            kind,
            at_ms,
            queue,
            channel,
            agent: agent.map(str::to_owned),
        }
    };
    let mut events = Vec::new();
    if let Some(queue) = field(detail, "queueInfo")
        && let Some(arn) = text(queue, "queueArn")
    {
        let at =
            time_of(queue, "enqueueTimestamp")?.or(event_time.filter(|_| event_type == "QUEUED"));
        if let Some(at) = at {
            let name = (config.queue_names.get(arn))
                .or_else(|| config.queue_names.get(arn_id(arn)))
                .cloned()
                .unwrap_or_else(|| arn_id(arn).to_owned());
            let mut queued = fact(ContactEventKind::Queued, at, Some(name), None);
            // A transfer queues the same contact again: one fact per queue and time.
            queued.event_id = format!("{}:{}:{at}", queued.event_id, arn_id(arn));
            events.push(queued);
        }
    }
    if let Some(agent) = field(detail, "agentInfo")
        && let Some(arn) = text(agent, "agentArn")
    {
        let at = time_of(agent, "connectedToAgentTimestamp")?
            .or(event_time.filter(|_| event_type == "CONNECTED_TO_AGENT"));
        if let Some(at) = at {
            events.push(fact(ContactEventKind::Connected, at, None, Some(arn)));
        }
    }
    if event_type == "DISCONNECTED" {
        let at = time_of(detail, "disconnectTimestamp")?
            .or(event_time)
            .ok_or("a DISCONNECTED event with no time")?;
        events.push(fact(ContactEventKind::Ended, at, None, None));
    }
    if let Some(previous) = text(detail, "previousContactId")
        && previous != contact
        && matches!(
            text(detail, "initiationMethod"),
            Some("TRANSFER" | "QUEUE_TRANSFER")
        )
    {
        let at = time_of(detail, "initiationTimestamp")?
            .or(event_time)
            .ok_or("a transfer with no time")?;
        let mut transferred = fact(ContactEventKind::Transferred, at, None, None);
        transferred.contact = previous.to_owned();
        transferred.event_id = format!("connect:{previous}:transferred");
        events.push(transferred);
    }
    if event_type == "QUEUED" && events.is_empty() {
        return Err("a QUEUED event with no queueInfo".to_owned());
    }
    for event in &events {
        let json = monti_protocol::ingest::ContactEventJson {
            event_id: event.event_id.clone(),
            contact: event.contact.clone(),
            kind: event.kind.name().to_owned(),
            at_ms: event.at_ms,
            queue: event.queue.clone(),
            channel: (event.kind == ContactEventKind::Queued).then(|| event.channel.to_owned()),
            agent: event.agent.clone(),
        };
        json.check(now_ms, window)
            .map_err(|problem| format!("event {id}: {problem}"))?;
    }
    Ok(Reading::Events(events))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Value {
        let path = format!(
            "{}/tests/fixtures/aws/contact-event-{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).expect("the sample is there");
        serde_json::from_str(&text).expect("the sample is JSON")
    }

    fn read(name: &str, config: &AmazonConnectConfig) -> Result<Reading, String> {
        // Long after 2021; Connect's times have no age limit.
        let window = EventWindow {
            max_age_ms: u64::MAX,
            ..EventWindow::default()
        };
        read_event(&sample(name), config, 1_800_000_000_000, &window)
    }

    fn summary(reading: Reading) -> Vec<(ContactEventKind, u64, Option<String>, Option<String>)> {
        let Reading::Events(events) = reading else {
            panic!("{reading:?}");
        };
        events
            .into_iter()
            .map(|event| (event.kind, event.at_ms, event.queue, event.agent))
            .collect()
    }

    const QUEUE_ID: &str = "12345678-1234-1234-1234-123456789012";

    #[test]
    fn awss_samples_read_as_the_facts_they_carry() {
        let config = AmazonConnectConfig::default();
        let agent = "arn:aws::connect:`your-region`:123456789012:instance/\
                     12345678-1234-1234-1234-123456789012/agent/12345678-1234-1234-1234-123456789012";
        // camelCase: queued at its enqueue time, connected at its connect time.
        assert_eq!(
            summary(read("connected", &config).expect("read")),
            [
                (
                    ContactEventKind::Queued,
                    1_628_098_144_000,
                    Some(QUEUE_ID.to_owned()),
                    None
                ),
                (
                    ContactEventKind::Connected,
                    1_628_098_149_000,
                    None,
                    Some(agent.to_owned())
                ),
            ]
        );
        // PascalCase, the same facts (another region in the ARN).
        let pascal = summary(read("routing-criteria", &config).expect("read"));
        assert_eq!(pascal.len(), 2);
        assert_eq!(pascal[0].0, ContactEventKind::Queued);
        assert_eq!(pascal[1].1, 1_628_098_149_000);
        // Outbound: no queue; the agent and the end.
        let outbound = summary(read("disconnected", &config).expect("read"));
        assert_eq!(
            outbound,
            [
                (
                    ContactEventKind::Connected,
                    1_628_098_149_000,
                    None,
                    Some("arn".to_owned())
                ),
                (ContactEventKind::Ended, 1_628_097_517_000, None, None),
            ]
        );
        assert_eq!(
            read("routing-step-expired", &config),
            Ok(Reading::Skipped("CONTACT_DATA_UPDATED".to_owned()))
        );
    }

    #[test]
    fn queues_are_named_by_configuration_and_facts_have_their_own_ids() {
        let mut config = AmazonConnectConfig::default();
        config
            .queue_names
            .insert(QUEUE_ID.to_owned(), "Billing Voice".to_owned());
        let Ok(Reading::Events(events)) = read("connected", &config) else {
            panic!("read");
        };
        assert_eq!(events[0].queue.as_deref(), Some("Billing Voice"));
        assert_eq!(events[0].channel, "voice");
        let ids: Vec<&str> = events.iter().map(|event| event.event_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                format!(
                    "connect:11111111-1111-1111-1111-111111111111:queued:{QUEUE_ID}:1628098144000"
                ),
                "connect:11111111-1111-1111-1111-111111111111:connected".to_owned(),
            ]
        );
    }

    #[test]
    fn a_transfer_says_the_previous_contact_was_transferred() {
        let config = AmazonConnectConfig::default();
        let window = EventWindow {
            max_age_ms: u64::MAX,
            ..EventWindow::default()
        };
        let mut event = sample("connected");
        event["detail"]["initiationMethod"] = Value::from("QUEUE_TRANSFER");
        event["detail"]["previousContactId"] = Value::from("00000000-0000-0000-0000-000000000001");
        let Ok(Reading::Events(events)) = read_event(&event, &config, 1_800_000_000_000, &window)
        else {
            panic!("read");
        };
        let transferred = events.last().expect("a fact");
        assert_eq!(
            (
                transferred.kind,
                transferred.contact.as_str(),
                transferred.at_ms
            ),
            (
                ContactEventKind::Transferred,
                "00000000-0000-0000-0000-000000000001",
                1_628_097_473_000
            )
        );
        // An outbound call's previous contact (AWS's sample) was not transferred.
        let Ok(Reading::Events(outbound)) =
            read_event(&sample("disconnected"), &config, 1_800_000_000_000, &window)
        else {
            panic!("read");
        };
        assert!(
            outbound
                .iter()
                .all(|event| event.kind != ContactEventKind::Transferred)
        );
    }

    #[test]
    fn what_is_not_a_contact_event_is_refused_with_a_reason() {
        let config = AmazonConnectConfig::default();
        let window = EventWindow::default();
        let now = 1_800_000_000_000;
        let mut event = sample("connected");
        event["detail-type"] = Value::from("Amazon Connect Agent Event");
        let refused = read_event(&event, &config, now, &window).expect_err("refused");
        assert!(
            refused.contains("not an Amazon Connect Contact Event"),
            "{refused}"
        );
        let mut event = sample("connected");
        event["detail"]["queueInfo"]["enqueueTimestamp"] = Value::from("yesterday");
        let refused = read_event(&event, &config, now, &window).expect_err("refused");
        assert!(refused.contains("enqueueTimestamp"), "{refused}");
        // With the usual age limit, a 2021 event is too old.
        let refused = read_event(&sample("connected"), &config, now, &window).expect_err("old");
        assert!(refused.contains("days in the past"), "{refused}");
    }
}
