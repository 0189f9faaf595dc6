//! The client figalize uses to append to history: over HTTP to the history service, or to the
//! history routes in the same process (the one-process site). The request, its body and the
//! reading of the answer are the same either way; only the transport differs.

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode, header};
use serde::Serialize;
use tower::ServiceExt;

use common::append_batch::{self, BatchOutcome, BatchResponse};
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

/// What became of one attempt to deliver a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchDelivery {
    /// History answered for each entry, in order.
    Each(Vec<Delivery>),
    /// History would not take a body this large (its `MAX_INTERNAL_BODY_BYTES` is smaller
    /// than this figalize's `OUTBOX_BATCH_BYTES`): the batch goes again in smaller parts.
    TooLarge(String),
    /// History would not take the batch as a whole (one without the batch route): its entries
    /// go one at a time, where each is judged on its own.
    OneByOne(String),
    /// History, or its database, could not take it now; retry the whole batch.
    Retry(String),
}

#[derive(Clone)]
enum Transport {
    Http {
        client: reqwest::Client,
        url: String,
        batch_url: String,
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

/// An entry as history reads it, borrowed from the outbox's [`Append`]: a single append's
/// body, and one entry of a batch ([`common::append_batch::BatchEntry`]).
#[derive(Serialize)]
struct AppendBody<'a> {
    id: &'a str,
    original: &'a str,
    figalized: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

impl<'a> AppendBody<'a> {
    fn of(append: &'a Append, with_request_id: bool) -> Self {
        Self {
            id: &append.entry.id,
            original: &append.entry.original,
            figalized: &append.entry.figalized,
            request_id: append
                .entry
                .request_id
                .as_deref()
                .filter(|_| with_request_id),
        }
    }
}

/// A batch append's body ([`common::append_batch::BatchRequest`]), borrowed.
#[derive(Serialize)]
struct BatchBody<'a> {
    entries: Vec<AppendBody<'a>>,
}

/// Largest batch answer read: 256 results of a few dozen bytes each, with room to spare.
const MAX_BATCH_ANSWER_BYTES: usize = 256 * 1024;

impl HistoryClient {
    /// A pooled HTTP client for history's append URL (`HISTORY_APPEND_URL`) and batch URL
    /// (`HISTORY_BATCH_URL`).
    pub fn http(url: String, batch_url: String, timeout: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(1))
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_mins(1))
            .build()?;
        Ok(Self {
            transport: Transport::Http {
                client,
                url,
                batch_url,
            },
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
        // The request id travels as the x-request-id header here.
        let body =
            serde_json::to_vec(&AppendBody::of(append, false)).expect("an append serialises");
        match self
            .post(Route::One, body, append.entry.request_id.as_deref(), 0)
            .await
        {
            Ok((status, _)) => classify(status),
            Err(failure) => Delivery::Retry(failure),
        }
    }

    /// One attempt to append `batch` (at most [`append_batch::MAX_ENTRIES`]) in one request.
    pub async fn append_batch(&self, batch: &[Append]) -> BatchDelivery {
        let request = BatchBody {
            entries: batch
                .iter()
                .map(|append| AppendBody::of(append, true))
                .collect(),
        };
        let body = serde_json::to_vec(&request).expect("a batch serialises");
        let (status, answer) = match self
            .post(Route::Batch, body, None, MAX_BATCH_ANSWER_BYTES)
            .await
        {
            Ok(answered) => answered,
            Err(failure) => return BatchDelivery::Retry(failure),
        };
        match classify(status) {
            Delivery::Stored => {}
            Delivery::Rejected(reason) if status == StatusCode::PAYLOAD_TOO_LARGE => {
                return BatchDelivery::TooLarge(reason);
            }
            Delivery::Rejected(reason) => return BatchDelivery::OneByOne(reason),
            Delivery::Retry(reason) if status == StatusCode::NOT_FOUND => {
                return BatchDelivery::OneByOne(reason);
            }
            Delivery::Retry(reason) => return BatchDelivery::Retry(reason),
        }
        match serde_json::from_slice::<BatchResponse>(&answer) {
            Ok(response) if response.results.len() == batch.len() => BatchDelivery::Each(
                response
                    .results
                    .into_iter()
                    .map(|outcome| match outcome {
                        BatchOutcome::Stored { .. } => Delivery::Stored,
                        BatchOutcome::Rejected { code, message } => {
                            Delivery::Rejected(format!("{code}: {message}"))
                        }
                    })
                    .collect(),
            ),
            // Entries are idempotent: an answer that cannot be read is a reason to ask again.
            Ok(response) => BatchDelivery::Retry(format!(
                "history answered {} results for {} entries",
                response.results.len(),
                batch.len()
            )),
            Err(err) => BatchDelivery::Retry(format!("history's answer was unreadable: {err}")),
        }
    }

    /// Posts a JSON body; answers the status and up to `read` bytes of the answer, or why
    /// there was no answer.
    async fn post(
        &self,
        route: Route,
        body: Vec<u8>,
        request_id: Option<&str>,
        read: usize,
    ) -> Result<(StatusCode, Bytes), String> {
        match &self.transport {
            Transport::Http {
                client,
                url,
                batch_url,
            } => {
                let url = match route {
                    Route::One => url,
                    Route::Batch => batch_url,
                };
                let mut request = client
                    .post(url)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body);
                if let Some(id) = request_id {
                    request = request.header(&X_REQUEST_ID, id);
                }
                let response = request.send().await.map_err(|err| err.to_string())?;
                let status = response.status();
                if read == 0 {
                    return Ok((status, Bytes::new()));
                }
                let answer = response.bytes().await.map_err(|err| err.to_string())?;
                if answer.len() > read {
                    return Err(format!("history's answer is over {read} bytes"));
                }
                Ok((status, answer))
            }
            Transport::InProcess { router, timeout } => {
                let path = match route {
                    Route::One => APPEND_PATH,
                    Route::Batch => append_batch::PATH,
                };
                let mut request =
                    Request::post(path).header(header::CONTENT_TYPE, "application/json");
                if let Some(id) = request_id {
                    request = request.header(&X_REQUEST_ID, id);
                }
                let request = request.body(Body::from(body)).expect("a valid request");
                let exchange = async {
                    let response = match router.clone().oneshot(request).await {
                        Ok(response) => response,
                        Err(never) => match never {},
                    };
                    let status = response.status();
                    if read == 0 {
                        return Ok((status, Bytes::new()));
                    }
                    let answer = axum::body::to_bytes(response.into_body(), read)
                        .await
                        .map_err(|err| err.to_string())?;
                    Ok((status, answer))
                };
                tokio::time::timeout(*timeout, exchange)
                    .await
                    .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")))
            }
        }
    }
}

/// Which of history's append endpoints a request goes to.
#[derive(Clone, Copy)]
enum Route {
    One,
    Batch,
}

/// The batch URL beside an append URL: `…/api/append/` → `…/api/append/batch/`.
pub fn batch_url_for(append_url: &str) -> String {
    format!("{}/batch/", append_url.trim_end_matches('/'))
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
    use crate::journal::{Entry, Ticket};
    use common::append_batch::{BatchEntry, BatchRequest};

    #[test]
    fn the_borrowed_batch_body_is_what_history_reads() {
        let append = |n: u8, request_id: Option<&str>| Append {
            entry: Entry {
                id: format!("id-{n}"),
                original: "велосипед".into(),
                figalized: "Фигосипед".into(),
                request_id: request_id.map(str::to_owned),
            },
            ticket: Ticket::of_segment(1),
        };
        let batch = [append(1, Some("req-1")), append(2, None)];
        let body = BatchBody {
            entries: batch.iter().map(|a| AppendBody::of(a, true)).collect(),
        };
        let read: BatchRequest =
            serde_json::from_slice(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(
            read.entries,
            batch
                .iter()
                .map(|a| BatchEntry {
                    id: a.entry.id.clone(),
                    original: a.entry.original.clone(),
                    figalized: a.entry.figalized.clone(),
                    request_id: a.entry.request_id.clone(),
                })
                .collect::<Vec<_>>()
        );
    }

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
