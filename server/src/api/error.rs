//! [`Error`]: what a request can fail with, and how each failure is answered (a status, a JSON
//! body saying why, and for sign-in failures the RFC 6750 challenge). Imports nothing else of
//! the server, so every module can answer with it.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use monti_protocol::rest::ErrorJson;

/// What a handler can fail with; mapped to a status and a JSON body once, here.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; the text says how.
    #[error("{0}")]
    BadRequest(String),
    /// No such route or resource.
    #[error("not found")]
    NotFound,
    /// The caller sent no token: sign in.
    #[error(
        "sign-in required: send Authorization: Bearer <access token> (GET /api/v1/auth says where to sign in)"
    )]
    Unauthorized,
    /// The token is not accepted; the text says which rule it failed (RFC 6750 `invalid_token`).
    #[error("the token is not accepted: {0}")]
    InvalidToken(String),
    /// The caller may not do this. Deliberately says no more.
    #[error("you may not do this")]
    Forbidden,
    /// The request is refused for how it was made (not for who made it); the text says why.
    #[error("{0}")]
    Refused(String),
    /// The body is larger than this endpoint takes.
    #[error("{0}")]
    TooLarge(String),
    /// The body is not declared as JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The request's headers are larger than the server takes.
    #[error("{0}")]
    HeadersTooLarge(String),
    /// The body is JSON of the wrong shape, or breaks a limit or a rule.
    #[error("{0}")]
    Unprocessable(String),
    /// The server cannot serve this now (full, starting, degraded).
    #[error("{0}")]
    Unavailable(String),
    /// The request (its body included) took longer than `[server] request_timeout_secs`.
    #[error("the request took longer than {0} s; send it again, faster or smaller")]
    Timeout(u64),
    /// A failure inside the server; logged, never shown.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl Error {
    /// The JSON error body.
    pub fn body(error: &str, message: &str) -> Json<ErrorJson> {
        Json(ErrorJson {
            error: error.to_owned(),
            message: message.to_owned(),
        })
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            Error::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Error::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Error::Unauthorized | Error::InvalidToken(_) => {
                (StatusCode::UNAUTHORIZED, "unauthorized")
            }
            Error::Forbidden | Error::Refused(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Error::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Error::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Error::HeadersTooLarge(_) => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
            ),
            Error::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
            Error::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Error::Timeout(_) => (StatusCode::REQUEST_TIMEOUT, "timeout"),
            Error::Internal(err) => {
                tracing::error!(error = format!("{err:#}"), "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        let mut response = (status, Error::body(code, &self.to_string())).into_response();
        // RFC 6750 section 3: how to authenticate, and for a refused token, why.
        let challenge = match &self {
            Error::Unauthorized => Some("Bearer realm=\"monti\"".to_owned()),
            Error::InvalidToken(why) => Some(format!(
                "Bearer realm=\"monti\", error=\"invalid_token\", error_description=\"{}\"",
                quotable(why)
            )),
            _ => None,
        };
        if let Some(value) = challenge.and_then(|value| header::HeaderValue::from_str(&value).ok())
        {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// Text fit for a quoted header parameter: RFC 6750 allows printable ASCII but `"` and `\\`.
fn quotable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            c if (' '..='~').contains(&c) => c,
            _ => '?',
        })
        .collect()
}

impl From<QueryRejection> for Error {
    fn from(rejection: QueryRejection) -> Error {
        Error::BadRequest(rejection.body_text())
    }
}
