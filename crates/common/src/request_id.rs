//! Request ids: accepted from `x-request-id` when well-formed, generated otherwise, returned on
//! every answer and available to the code that handles the request.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The header that carries the id, in and out, and onwards to other services.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest id accepted from a client; longer ones are replaced, not truncated.
const MAX_LEN: usize = 128;

/// The id of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// A fresh random id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string().into())
    }

    /// An id a client sent, if it is safe to log and forward: 1–128 characters of
    /// `[A-Za-z0-9._:-]`. Anything else is replaced, so ids can never forge log lines.
    pub fn parse(raw: &str) -> Option<Self> {
        is_safe_token(raw).then(|| Self(raw.into()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `raw` is 1–128 characters of `[A-Za-z0-9._:-]`: safe to log, forward and store as
/// an identifier.
pub fn is_safe_token(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= MAX_LEN
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

tokio::task_local! {
    static CURRENT: RequestId;
}

/// The id of the request being handled on this task, if any.
pub fn current() -> Option<RequestId> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Middleware: assigns the id, makes it available (request extension and [`current`]) and
/// returns it in the `x-request-id` answer header.
pub async fn assign(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(RequestId::parse)
        .unwrap_or_else(RequestId::generate);
    request.extensions_mut().insert(id.clone());
    let header = HeaderValue::from_str(id.as_str()).expect("a validated id is a header value");
    let mut response = CURRENT.scope(id, next.run(request)).await;
    response.headers_mut().insert(X_REQUEST_ID.clone(), header);
    response
}

#[cfg(test)]
mod tests {
    use super::RequestId;

    #[test]
    fn well_formed_ids_are_kept() {
        for id in ["abc", "6f1c1e9a-3f55-4a55", "trace:1.2_3"] {
            assert_eq!(RequestId::parse(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn unsafe_or_oversized_ids_are_refused() {
        for id in ["", "a b", "x\ny", "<script>", "ид", &"a".repeat(129)] {
            assert!(RequestId::parse(id).is_none(), "{id:?} accepted");
        }
    }

    #[test]
    fn generated_ids_are_unique_and_valid() {
        let (a, b) = (RequestId::generate(), RequestId::generate());
        assert_ne!(a, b);
        assert!(RequestId::parse(a.as_str()).is_some());
    }
}
