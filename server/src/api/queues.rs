//! Queues and contacts over REST: the queues, their figures over a window, intervals for
//! workforce planners (JSON or CSV), and the contacts' legs.
//!
//! A caller sees a queue when its scope names one of the teams that serve the queue (the
//! roster sync says which), the same rule as for team names: a team lead sees the queues their
//! team serves, a site's supervisor those served by a team with agents at the site. Figures
//! need the right to see summaries (wallboards have it), contacts the right to see agents.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::NaiveDate;
use monti_protocol::ingest::ContactLegJson;
use monti_protocol::model::TeamId;
use monti_protocol::rest::{
    IntervalJson, QueueCountsJson, QueueFiguresJson, QueueJson, QueueSummaryJson,
};
use monti_protocol::scope::Scope;
use serde::Deserialize;

use crate::AppState;
use crate::api::auth::{Action, Caller};
use crate::api::error::Error;
use crate::core::clock::Zone;
use crate::core::queues::WAITING_AT_MOST_MS;
use crate::store::db::StoredQueue;

/// The queue routes.
pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/v1/queues", get(queues))
        .route("/api/v1/queues/summary", get(summary))
        .route("/api/v1/intervals", get(intervals))
        .route("/api/v1/contacts", get(contacts))
}

/// The queues `caller` may see when doing `action`: all of them for a caller who sees the
/// whole floor, else those served by a team its scope names.
async fn visible_queues(
    state: &AppState,
    caller: &Caller,
    action: Action,
) -> Result<Vec<StoredQueue>, Error> {
    caller.require(action)?;
    let scope = caller.scope(action);
    let queues = state.db.queues().await.map_err(Error::Internal)?;
    if scope == Scope::Everything {
        return Ok(queues);
    }
    // Floor ids first: the floor's lock is taken once, for reading names.
    let teams: Vec<(i64, TeamId)> = (queues.iter())
        .flat_map(|queue| queue.teams.iter().copied())
        .filter_map(|team| Some((team, state.live.dense_team(team)?)))
        .collect();
    let named: Vec<i64> = state.live.read(|floor| {
        (teams.iter())
            .filter(|(_, dense)| floor.scope_names_team(&scope, *dense))
            .map(|(team, _)| *team)
            .collect()
    });
    Ok(queues
        .into_iter()
        .filter(|queue| queue.teams.iter().any(|team| named.contains(team)))
        .collect())
}

fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, Error> {
    query
        .map(|Query(query)| query)
        .map_err(|err| Error::BadRequest(err.body_text()))
}

fn queue_json(queue: &StoredQueue) -> QueueJson {
    QueueJson {
        name: queue.name.clone(),
        channel: queue.channel.clone(),
        target_secs: queue.target_secs,
        goal_percent: queue.goal_percent,
    }
}

async fn queues(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<QueueJson>>, Error> {
    let queues = visible_queues(&state, &caller, Action::ViewSummary).await?;
    Ok(Json(queues.iter().map(queue_json).collect()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SummaryQuery {
    /// `15m`, `30m`, `60m` or `today` (the default).
    window: Option<String>,
}

async fn summary(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<SummaryQuery>, QueryRejection>,
) -> Result<Json<QueueSummaryJson>, Error> {
    let queues = visible_queues(&state, &caller, Action::ViewSummary).await?;
    let params = query(params)?;
    let now = state.clock.now_ms();
    let window = params.window.unwrap_or_else(|| "today".to_owned());
    let from = match window.as_str() {
        "15m" => now.saturating_sub(15 * 60_000),
        "30m" => now.saturating_sub(30 * 60_000),
        "60m" => now.saturating_sub(60 * 60_000),
        "today" => state.config.queues.zone().midnight(now),
        other => {
            return Err(Error::BadRequest(format!(
                "window {other:?}: use 15m, 30m, 60m or today"
            )));
        }
    };
    let config = &state.config.queues;
    let short_ms = (config.short_abandon_secs * 1000) as i64;
    let db = &state.db;
    let counts = (db
        .queue_counts(from as i64, now as i64 + 1, short_ms, None)
        .await)
        .map_err(Error::Internal)?;
    let waiting = (db
        .waiting(now.saturating_sub(WAITING_AT_MOST_MS) as i64)
        .await)
        .map_err(Error::Internal)?;
    let figures = queues
        .iter()
        .map(|queue| {
            let counts = (counts.iter())
                .find(|(id, ..)| *id == queue.id)
                .map(|(.., counts)| *counts)
                .unwrap_or_default();
            let (waiting, oldest) = (waiting.iter())
                .find(|(id, ..)| *id == queue.id)
                .map_or((0, None), |(_, n, oldest)| {
                    (*n as u64, Some((*oldest).max(0) as u64))
                });
            QueueFiguresJson {
                queue: queue_json(queue),
                waiting,
                oldest_waiting_since_ms: oldest,
                counts: QueueCountsJson::of(&counts, config.service_level),
            }
        })
        .collect();
    Ok(Json(QueueSummaryJson {
        window,
        from_ms: from,
        to_ms: now + 1,
        service_level_formula: config.service_level.formula().to_owned(),
        queues: figures,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntervalsQuery {
    /// Only this queue.
    queue: Option<String>,
    /// `YYYY-MM-DD` in `[queues] time_zone`; default today.
    day: Option<String>,
    /// Minutes: 15 (the default) or 30.
    interval: Option<u32>,
    /// `json` (the default) or `csv`.
    format: Option<String>,
}

async fn intervals(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<IntervalsQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let queues = visible_queues(&state, &caller, Action::ViewSummary).await?;
    let params = query(params)?;
    let minutes = params.interval.unwrap_or(15);
    if minutes != 15 && minutes != 30 {
        return Err(Error::BadRequest(format!(
            "interval {minutes}: use 15 or 30 (minutes)"
        )));
    }
    let zone = state.config.queues.zone();
    let from = match params.day.as_deref() {
        None => zone.midnight(state.clock.now_ms()),
        Some(day) => {
            let date = NaiveDate::parse_from_str(day, "%Y-%m-%d")
                .map_err(|err| Error::BadRequest(format!("day {day:?}: {err}; use YYYY-MM-DD")))?;
            (zone.midnight_of(date))
                .ok_or_else(|| Error::BadRequest(format!("day {day:?} has no midnight here")))?
        }
    };
    let csv = match params.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(Error::BadRequest(format!(
                "format {other:?}: use json or csv"
            )));
        }
    };
    let interval_ms = i64::from(minutes) * 60_000;
    let config = &state.config.queues;
    let db = &state.db;
    let to = from as i64 + 24 * 3600 * 1000;
    let counts = (db.queue_counts(
        from as i64,
        to,
        (config.short_abandon_secs * 1000) as i64,
        Some(interval_ms),
    ))
    .await
    .map_err(Error::Internal)?;
    let rows: Vec<IntervalJson> = counts
        .into_iter()
        .filter_map(|(queue_id, bucket, counts)| {
            let queue = queues.iter().find(|queue| queue.id == queue_id)?;
            if params
                .queue
                .as_ref()
                .is_some_and(|wanted| *wanted != queue.name)
            {
                return None;
            }
            Some(IntervalJson {
                queue: queue.name.clone(),
                from_ms: from + (bucket * interval_ms).max(0) as u64,
                counts: QueueCountsJson::of(&counts, config.service_level),
            })
        })
        .collect();
    if csv {
        let body = intervals_csv(&rows, config.service_level.formula(), zone);
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"monti-intervals.csv\"",
                ),
            ],
            body,
        )
            .into_response());
    }
    Ok(Json(rows).into_response())
}

/// A CSV field: quoted when it needs to be (RFC 4180), and a leading `=`, `+`, `-` or `@`
/// defused so that a spreadsheet does not run a queue name as a formula.
fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// The intervals as CSV, the interval's start in RFC 3339 in `[queues] time_zone`; the service level
/// column names its formula.
fn intervals_csv(rows: &[IntervalJson], formula: &str, zone: Zone) -> String {
    let mut out = format!(
        "queue,interval_start,offered,answered,answered_in_target,abandoned,abandoned_short,\
         {},asa_secs,longest_wait_secs\n",
        csv_field(&format!("service_level ({formula})"))
    );
    for row in rows {
        let counts = &row.counts;
        let start = zone.rfc3339(row.from_ms);
        let optional = |value: Option<f64>, digits: usize| {
            value.map_or_else(String::new, |value| format!("{value:.digits$}"))
        };
        out.push_str(&format!(
            "{},{start},{},{},{},{},{},{},{},{:.1}\n",
            csv_field(&row.queue),
            counts.offered,
            counts.answered,
            counts.answered_in_target,
            counts.abandoned,
            counts.abandoned_short,
            optional(counts.service_level, 4),
            optional(counts.asa_secs, 1),
            counts.longest_wait_secs,
        ));
    }
    out
}

/// `GET /api/v1/contacts`: which contacts entered which queue, and how each stay ended.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactsQuery {
    /// Only this queue.
    queue: Option<String>,
    /// Only contacts offered to or answered by this agent (external id).
    agent: Option<String>,
    /// From (ms since the epoch, inclusive); default the last 24 hours.
    from: Option<u64>,
    /// To (exclusive); default now.
    to: Option<u64>,
    /// At most this many (default and most 10,000).
    limit: Option<u32>,
}

async fn contacts(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<ContactsQuery>, QueryRejection>,
) -> Result<Json<Vec<ContactLegJson>>, Error> {
    let queues = visible_queues(&state, &caller, Action::ViewAgents).await?;
    let params = query(params)?;
    let now = state.clock.now_ms();
    let to = params.to.unwrap_or(now);
    let from = params.from.unwrap_or(to.saturating_sub(24 * 3600 * 1000));
    if from > to {
        return Err(Error::BadRequest(format!("from {from} is after to {to}")));
    }
    let limit = params.limit.unwrap_or(10_000).clamp(1, 10_000);
    if let Some(agent) = &params.agent {
        // An agent outside the caller's scope is as unknown as one that does not exist.
        let scope = caller.scope(Action::ViewAgents);
        let known = (state.live.agent(agent)).is_some_and(|found| {
            (state.live.dense_team_site(found.team, found.site))
                .is_some_and(|(team, site)| scope.covers(team, site))
        });
        if !known {
            return Err(Error::NotFound);
        }
    }
    let ids: Vec<i64> = (queues.iter())
        .filter(|queue| params.queue.as_ref().is_none_or(|name| *name == queue.name))
        .map(|queue| queue.id)
        .collect();
    let legs = state
        .db
        .contact_legs(
            &ids,
            params.agent.as_deref(),
            from as i64,
            to as i64,
            i64::from(limit),
        )
        .await
        .map_err(Error::Internal)?;
    Ok(Json(legs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("Billing Voice"), "Billing Voice");
        assert_eq!(csv_field("Sales, North"), "\"Sales, North\"");
        assert_eq!(csv_field("The \"A\" team"), "\"The \"\"A\"\" team\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-5"), "'-5");
    }
}
