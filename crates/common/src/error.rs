//! One JSON error shape for every 4xx and 5xx answer.
//!
//! `data` carries the human-readable message because the original API answered
//! `{"data": "<message>"}` and its page shows that field; `code` is stable for programs;
//! `request_id` lets a user quote the failing request. Server-side details of a 5xx are logged
//! with the request id and never sent to the client.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::request_id;

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ErrorBody {
    /// What went wrong, for a person. The field the original API used for its messages.
    #[schema(example = "По-русски, пожалуйста, у нас тут культурное заведение")]
    pub data: String,
    /// What went wrong, for a program: stable, lower-case, snake_case.
    #[schema(example = "not_russian")]
    pub code: String,
    /// The request's id (also in the `x-request-id` header).
    #[schema(example = "6f1c1e9a-3f55-4a55-9d0e-4f0e2b1d7c11")]
    pub request_id: Option<String>,
}

/// An error a handler answers with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The client sent something we will not process; the message is safe to show.
    #[error("{message}")]
    Client {
        /// The 4xx status.
        status: StatusCode,
        /// Stable machine-readable code.
        code: &'static str,
        /// Message for the user.
        message: String,
    },
    /// A dependency is unavailable; the client may retry later.
    #[error("service unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// The service is too busy to take the request now (load shed); the client may retry
    /// later. The message is safe to show. Not logged one by one: the shedder counts them.
    #[error("{0}")]
    Busy(&'static str),
    /// A bug or an unexpected failure; logged, never shown.
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A 400 Bad Request.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::client(StatusCode::BAD_REQUEST, code, message)
    }

    /// A client error with any 4xx status.
    pub fn client(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        debug_assert!(status.is_client_error());
        Self::Client {
            status,
            code,
            message: message.into(),
        }
    }

    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Client { status, .. } => *status,
            Self::Unavailable(_) | Self::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (code, message) = match self {
            Self::Client { code, message, .. } => (code, message),
            Self::Unavailable(err) => {
                tracing::warn!(error = format!("{err:#}"), "dependency unavailable");
                (
                    "unavailable",
                    "The service is temporarily unavailable; try again shortly".to_owned(),
                )
            }
            Self::Busy(message) => {
                let mut response = error_response(status, "unavailable", message.to_owned());
                response.extensions_mut().insert(Refused);
                return response;
            }
            Self::Internal(err) => {
                tracing::error!(error = format!("{err:#}"), "internal error");
                ("internal_error", "Internal server error".to_owned())
            }
        };
        error_response(status, code, message)
    }
}

/// Marks an answer that refused work the service could not take now ([`ApiError::Busy`]): the
/// access log sums such answers up instead of writing a line for each, so that a flood does
/// not become a flood of log lines.
#[derive(Debug, Clone, Copy)]
pub struct Refused;

/// Builds an error answer in the common shape, with the current request's id.
pub fn error_response(status: StatusCode, code: &str, message: String) -> Response {
    let body = ErrorBody {
        data: message,
        code: code.to_owned(),
        request_id: request_id::current().map(|id| id.as_str().to_owned()),
    };
    let mut response = (status, axum::Json(body)).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// Middleware: gives error answers that some layer produced without our shape (a 404 of the
/// router, a 405, a timeout, a body-limit 413, a caught panic) the common JSON body. Headers
/// (`Allow`, CORS, `Retry-After`) are kept; only the body and its type change.
pub async fn normalize(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (code, message) = describe(status);
    let (mut parts, _) = response.into_parts();
    let (replacement, body) = error_response(status, code, message.to_owned()).into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(replacement.headers);
    Response::from_parts(parts, body)
}

fn is_json(response: &Response<Body>) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

fn describe(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::NOT_FOUND => ("not_found", "No such resource"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "Method not allowed here"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "Request body is too large"),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "The request body arrived too slowly"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "Send the body as application/json",
        ),
        StatusCode::SERVICE_UNAVAILABLE => (
            "unavailable",
            "The service is temporarily unavailable; try again shortly",
        ),
        StatusCode::INTERNAL_SERVER_ERROR => ("internal_error", "Internal server error"),
        s if s.is_client_error() => ("bad_request", "The request cannot be processed"),
        _ => ("server_error", "The server failed to answer"),
    }
}

/// The answer of the panic catcher: logs the panic, answers 500 in the common shape.
#[allow(clippy::needless_pass_by_value)] // the signature CatchPanicLayer::custom expects
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<&str>()
        .map(ToString::to_string)
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    tracing::error!(panic = detail, "handler panicked");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "Internal server error".to_owned(),
    )
}
