//! Feedback from the apps' Feedback button: stored here for administrators (listed in the
//! desktop's Admin screen and by `monti-cli feedback list`) and sent nowhere else.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use monti_protocol::access::{FeedbackJson, MAX_FEEDBACK_SCREENSHOT, NewFeedback};
use serde::Deserialize;

use crate::AppState;
use crate::api::auth::{Action, Caller};
use crate::api::error::Error;
use crate::store::db::NewFeedbackRow;

/// The largest feedback body: the screenshot in base64 and the words around it.
const MAX_BODY: usize = MAX_FEEDBACK_SCREENSHOT / 3 * 4 + 64 * 1024;

/// `/api/v1/feedback...`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/feedback",
            get(list).post(send).layer(DefaultBodyLimit::max(MAX_BODY)),
        )
        .route("/api/v1/feedback/{id}/screenshot", get(screenshot))
}

/// Stores what someone sent; answers with it as administrators will read it.
async fn send(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<NewFeedback>, JsonRejection>,
) -> Result<Json<FeedbackJson>, Error> {
    caller.require(Action::SendFeedback)?;
    let Json(feedback) = body.map_err(|rejection| Error::BadRequest(rejection.body_text()))?;
    if let Some(problem) = feedback.problem() {
        return Err(Error::BadRequest(problem));
    }
    let screenshot = match &feedback.screenshot_png_base64 {
        None => None,
        Some(text) => Some(png(text)?),
    };
    let created_at = state.clock.now_ms() as i64;
    let id = (state.db)
        .insert_feedback(&NewFeedbackRow {
            created_at,
            subject: caller.subject.clone(),
            text: feedback.text.clone(),
            client: feedback.client.clone(),
            context: feedback.context.clone(),
            screenshot: screenshot.clone(),
        })
        .await?;
    state
        .audit
        .feedback(&caller.subject, &format!("sent feedback {id}"));
    Ok(Json(FeedbackJson {
        id,
        created_ms: created_at as u64,
        subject: caller.subject,
        text: feedback.text,
        client: feedback.client,
        context: feedback.context,
        has_screenshot: screenshot.is_some(),
    }))
}

/// A screenshot as sent: base64 of a PNG no larger than [`MAX_FEEDBACK_SCREENSHOT`].
fn png(text: &str) -> Result<Vec<u8>, Error> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|err| Error::BadRequest(format!("the screenshot is not base64: {err}")))?;
    if bytes.len() > MAX_FEEDBACK_SCREENSHOT {
        return Err(Error::BadRequest(format!(
            "the screenshot is {} bytes; at most {MAX_FEEDBACK_SCREENSHOT}",
            bytes.len()
        )));
    }
    if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err(Error::BadRequest("the screenshot is not a PNG".to_owned()));
    }
    Ok(bytes)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only feedback numbered below this (paging back).
    before: Option<i64>,
    limit: Option<i64>,
}

/// Feedback, newest first; administrators only.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Vec<FeedbackJson>>, Error> {
    caller.require(Action::ReadFeedback)?;
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1_000).contains(&limit) {
        return Err(Error::BadRequest("limit must be between 1 and 1000".into()));
    }
    let rows = (state.db)
        .feedback(query.before.unwrap_or(i64::MAX), limit)
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|row| FeedbackJson {
                id: row.id,
                created_ms: row.created_at.max(0) as u64,
                subject: row.subject,
                text: row.text,
                client: row.client,
                context: row.context,
                has_screenshot: row.screenshots > 0,
            })
            .collect(),
    ))
}

/// The screenshot sent with feedback `id`; administrators only.
async fn screenshot(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Response, Error> {
    caller.require(Action::ReadFeedback)?;
    let png = state
        .db
        .feedback_screenshot(id)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
}
