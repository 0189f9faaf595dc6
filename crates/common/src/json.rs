//! A `Json` extractor and response whose rejections use the common error shape.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ApiError;

/// JSON in a request body or an answer.
///
/// Unlike `axum::Json`, a body without a `Content-Type` is accepted as JSON (clients of the
/// original API send bare bodies), and every rejection answers in the common error shape:
/// 400 for malformed JSON or invalid UTF-8, 422 for well-formed JSON of the wrong shape,
/// 413 for a body over the limit, 415 for another media type.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !content_type_is_json_or_absent(request.headers()) {
            return Err(ApiError::client(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the body as application/json",
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                let status = rejection.status();
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::client(status, "payload_too_large", "Request body is too large")
                } else if crate::body_deadline::is_too_slow(&rejection) {
                    ApiError::client(
                        StatusCode::REQUEST_TIMEOUT,
                        "request_timeout",
                        "The request body arrived too slowly",
                    )
                } else {
                    ApiError::bad_request("unreadable_body", rejection.body_text())
                }
            })?;
        parse(&bytes).map(Json)
    }
}

/// Parses a JSON body, classifying failures as the extractor does.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|err| {
        use serde_json::error::Category;
        match err.classify() {
            Category::Data => ApiError::client(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!("The JSON body does not match the expected shape: {err}"),
            ),
            Category::Syntax | Category::Eof | Category::Io => ApiError::bad_request(
                "malformed_json",
                format!("The body is not valid JSON: {err}"),
            ),
        }
    })
}

fn content_type_is_json_or_absent(headers: &HeaderMap) -> bool {
    !headers.contains_key(header::CONTENT_TYPE) || declared_json(headers)
}

/// Whether the request's `Content-Type` is JSON (`application/json`, `application/*+json`).
pub(crate) fn declared_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let essence = essence.to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[derive(Debug, serde::Deserialize)]
    struct Body {
        #[allow(dead_code)]
        phrase: String,
    }

    fn status_of(body: &[u8]) -> StatusCode {
        parse::<Body>(body).unwrap_err().status()
    }

    #[test]
    fn syntax_errors_are_400_and_shape_errors_are_422() {
        assert_eq!(status_of(b"{"), StatusCode::BAD_REQUEST);
        assert_eq!(status_of(b"\xff\xfe"), StatusCode::BAD_REQUEST);
        assert_eq!(
            status_of(b"{\"phrase\": \"\xd0\"}"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(status_of(b"{}"), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            status_of(b"{\"phrase\": 5}"),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(status_of(b"[]"), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn json_media_types_and_a_missing_one_are_accepted() {
        let mut headers = HeaderMap::new();
        assert!(content_type_is_json_or_absent(&headers));
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "application/problem+json",
        ] {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ok));
            assert!(content_type_is_json_or_absent(&headers), "{ok}");
        }
        for bad in [
            "text/plain",
            "multipart/form-data",
            "application/x-www-form-urlencoded",
        ] {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(bad));
            assert!(!content_type_is_json_or_absent(&headers), "{bad}");
        }
    }
}
