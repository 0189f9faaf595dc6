//! The client figalize uses to append to history: over HTTP to the history service, or to the
//! history routes in the same process (the one-process site). The request, its body and the
//! reading of the answer are the same either way; only the transport differs.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde::Serialize;
use tower::ServiceExt;

use common::request_id::X_REQUEST_ID;

use crate::outbox::Append;

/// The path of history's append endpoint.
const APPEND_PATH: &str = "/api/append/";

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Committed (now or by an earlier attempt).
    Stored,
    /// History refused the entry; retrying cannot help.
    Rejected(String),
    /// History, or its database, could not take it now.
    Retry(String),
}

#[derive(Clone)]
enum Transport {
    Http {
        client: reqwest::Client,
        url: String,
    },
    InProcess {
        router: Router,
        timeout: Duration,
    },
}

/// Appends entries to history.
#[derive(Clone)]
pub struct HistoryClient {
    transport: Transport,
}

#[derive(Serialize)]
struct AppendBody<'a> {
    id: &'a str,
    original: &'a str,
    figalized: &'a str,
}

impl HistoryClient {
    /// A pooled HTTP client for history's append URL (`HISTORY_APPEND_URL`).
    pub fn http(url: String, timeout: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(1))
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_mins(1))
            .build()?;
        Ok(Self {
            transport: Transport::Http { client, url },
        })
    }

    /// History's own routes in this process, each append bounded by `timeout`, a panic in them
    /// answered as a 500 (so retried) rather than unwinding into the delivery task.
    pub fn in_process(router: Router, timeout: Duration) -> Self {
        let router = router.layer(tower_http::catch_panic::CatchPanicLayer::new());
        Self {
            transport: Transport::InProcess { router, timeout },
        }
    }

    /// One attempt to append `append`.
    pub async fn append(&self, append: &Append) -> Delivery {
        let body = serde_json::to_vec(&AppendBody {
            id: &append.id,
            original: &append.original,
            figalized: &append.figalized,
        })
        .expect("an append serialises");
        match &self.transport {
            Transport::Http { client, url } => {
                let mut request = client
                    .post(url)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body);
                if let Some(id) = &append.request_id {
                    request = request.header(&X_REQUEST_ID, id);
                }
                match request.send().await {
                    Ok(response) => classify(response.status()),
                    Err(err) => Delivery::Retry(err.to_string()),
                }
            }
            Transport::InProcess { router, timeout } => {
                let mut request =
                    Request::post(APPEND_PATH).header(header::CONTENT_TYPE, "application/json");
                if let Some(id) = &append.request_id {
                    request = request.header(&X_REQUEST_ID, id);
                }
                let request = request.body(Body::from(body)).expect("a valid request");
                match tokio::time::timeout(*timeout, router.clone().oneshot(request)).await {
                    Ok(Ok(response)) => classify(response.status()),
                    Ok(Err(never)) => match never {},
                    Err(_) => Delivery::Retry(format!("no answer within {timeout:?}")),
                }
            }
        }
    }
}

/// Success, a refusal that retrying cannot change, or a failure worth retrying.
fn classify(status: StatusCode) -> Delivery {
    match status {
        s if s.is_success() => Delivery::Stored,
        StatusCode::BAD_REQUEST
        | StatusCode::PAYLOAD_TOO_LARGE
        | StatusCode::UNSUPPORTED_MEDIA_TYPE
        | StatusCode::UNPROCESSABLE_ENTITY => {
            Delivery::Rejected(format!("history answered {status}"))
        }
        s => Delivery::Retry(format!("history answered {s}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refusals_of_the_entry_itself_are_permanent() {
        assert_eq!(classify(StatusCode::OK), Delivery::Stored);
        assert!(matches!(
            classify(StatusCode::BAD_REQUEST),
            Delivery::Rejected(_)
        ));
        assert!(matches!(
            classify(StatusCode::UNPROCESSABLE_ENTITY),
            Delivery::Rejected(_)
        ));
        for retry in [
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::REQUEST_TIMEOUT,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::NOT_FOUND,
        ] {
            assert!(matches!(classify(retry), Delivery::Retry(_)), "{retry}");
        }
    }
}
