//! The HTTP API: append, read the latest entries, the count, and the live stream.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use common::append_batch::{self, BatchOutcome, BatchRequest, BatchResponse};
use common::phrase::{MAX_CHARS, Phrase};
use common::request_id::is_safe_token;
use common::{ApiError, ErrorBody, Json, Query};

use crate::store::Committed;
use crate::store::{HistoryStore, NewEntry, StoreError};
use crate::stream;
use crate::writer::BatchWriter;

/// Longest transformed phrase accepted: every word of a 256-character phrase can grow by a
/// prefix of a few letters.
pub const MAX_FIGALIZED_CHARS: usize = 2048;

/// Most entries `GET /api/gethistory/` returns at once.
pub const MAX_LIMIT: u32 = 100;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub(crate) store: Arc<dyn HistoryStore>,
    /// The free-space floor, for a database on this machine's disk.
    pub(crate) disk: Option<Arc<crate::disk::DiskFloor>>,
    pub(crate) writer: BatchWriter,
    pub(crate) events: broadcast::Sender<Committed>,
    pub(crate) stopping: CancellationToken,
    pub(crate) stream_clients: prometheus::IntGauge,
    pub(crate) streams: Arc<common::streams::Streams>,
}

impl AppState {
    /// Whether an append may be written now: not below the free-space floor.
    fn admit(&self) -> Result<(), ApiError> {
        self.disk.as_ref().map_or(Ok(()), |disk| disk.admit())
    }
}

/// The public routes of the history service: read the newest, count, follow live.
pub fn router(state: AppState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(get_history))
        .routes(routes!(count))
        .routes(routes!(stream::stream))
        .with_state(state)
}

/// The internal routes: the appends, which figalize alone makes (no ingress routes them).
pub fn internal_router(state: AppState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(append))
        .routes(routes!(append_batch))
        .with_state(state)
}

/// An entry to append.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AppendRequest {
    /// The phrase as the user typed it: Russian text, up to 256 characters.
    #[schema(example = "велосипед")]
    original: String,
    /// The transformed phrase, up to 2048 characters.
    #[schema(example = "Фигосипед")]
    figalized: String,
    /// Idempotency key (1–128 characters of `[A-Za-z0-9._:-]`): appends with the same id are
    /// stored once, so retries are safe. May also come as the `Idempotency-Key` header; one is
    /// generated when neither is given.
    #[schema(
        example = "0b7e7f7e-8a57-4c55-9a43-1f0f0f5e2d11",
        pattern = "^[A-Za-z0-9._:-]{1,128}$"
    )]
    id: Option<String>,
}

/// What became of an append.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AppendResponse {
    /// The entry's id.
    pub id: i64,
    /// `false` when this append id was stored before (a retry).
    pub created: bool,
}

/// Appends an entry; answers once it is committed.
#[utoipa::path(
    post,
    path = "/api/append/",
    tag = "history",
    request_body = AppendRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Idempotency key, if not in the body")),
    responses(
        (status = 200, description = "Committed (or committed before, for a repeated id)", body = AppendResponse),
        (status = 400, description = "Not Russian text, empty, too long, a bad id, or malformed JSON", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape", body = ErrorBody),
        (status = 503, description = "The database is unavailable, or the disk under it nearly full (`HISTORY_MIN_FREE_BYTES`); retry later", body = ErrorBody),
    )
)]
async fn append(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<AppendRequest>,
) -> Result<Json<AppendResponse>, ApiError> {
    let header = headers
        .get("idempotency-key")
        .map(|v| v.to_str().unwrap_or("\u{0}").to_owned());
    let entry = validate(&request.original, &request.figalized, request.id.or(header))?;
    state.admit()?;
    match state.writer.append(entry).await {
        Ok(stored) => Ok(Json(AppendResponse {
            id: stored.id,
            created: stored.created,
        })),
        Err(err) => Err(store_failure(&err)),
    }
}

/// Appends up to 256 entries at once (figalize's outbox delivers this way); answers once every
/// valid entry is committed, with one result per entry in the order sent. An invalid entry is
/// `rejected` without holding back the others.
#[utoipa::path(
    post,
    path = "/api/append/batch/",
    tag = "history",
    request_body = BatchRequest,
    responses(
        (status = 200, description = "Every valid entry committed (or committed before); one result per entry", body = BatchResponse),
        (status = 400, description = "No entries, more than 256, or malformed JSON", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape", body = ErrorBody),
        (status = 503, description = "The database is unavailable, or the disk under it nearly full (`HISTORY_MIN_FREE_BYTES`); retry the batch later", body = ErrorBody),
    )
)]
async fn append_batch(
    State(state): State<AppState>,
    Json(request): Json<BatchRequest>,
) -> Result<Json<BatchResponse>, ApiError> {
    let count = request.entries.len();
    if !(1..=append_batch::MAX_ENTRIES).contains(&count) {
        return Err(ApiError::bad_request(
            "invalid_batch",
            format!("entries: from 1 to {}", append_batch::MAX_ENTRIES),
        ));
    }
    state.admit()?;
    let mut results: Vec<Option<BatchOutcome>> = Vec::with_capacity(count);
    let mut valid = Vec::with_capacity(count);
    let mut request_ids = Vec::new();
    for entry in request.entries {
        match validate(&entry.original, &entry.figalized, Some(entry.id)) {
            Ok(new) => {
                valid.push(new);
                results.push(None);
                request_ids.extend(entry.request_id.filter(|id| is_safe_token(id)));
            }
            Err(err) => results.push(Some(rejection(err))),
        }
    }
    let committed = state.writer.append_all(valid).await;
    if let Some(Err(err)) = committed.iter().find(|outcome| outcome.is_err()) {
        return Err(store_failure(err));
    }
    let mut committed = committed.into_iter().flatten();
    let results: Vec<BatchOutcome> = results
        .into_iter()
        .map(|result| {
            result.unwrap_or_else(|| {
                let stored = committed.next().expect("one commit per valid entry");
                BatchOutcome::Stored {
                    id: stored.id,
                    created: stored.created,
                }
            })
        })
        .collect();
    // One line for the batch names the requests whose entries it committed, so a search for a
    // request id still finds its way into history.
    tracing::info!(
        entries = count,
        request_ids = request_ids.join(","),
        "batch appended"
    );
    Ok(Json(BatchResponse { results }))
}

/// A validation failure as the result of one entry of a batch.
fn rejection(err: ApiError) -> BatchOutcome {
    match err {
        ApiError::Client { code, message, .. } => BatchOutcome::Rejected {
            code: code.to_owned(),
            message,
        },
        other => BatchOutcome::Rejected {
            code: "invalid_entry".to_owned(),
            message: other.to_string(),
        },
    }
}

fn validate(original: &str, figalized: &str, id: Option<String>) -> Result<NewEntry, ApiError> {
    let field = |name: &str, raw: &str, max: usize| {
        Phrase::parse_with_limit(raw, max)
            .map(Phrase::into_string)
            .map_err(|err| ApiError::bad_request(err.code(), format!("{name}: {err}")))
    };
    let original = field("original", original, MAX_CHARS)?;
    let figalized = field("figalized", figalized, MAX_FIGALIZED_CHARS)?;
    let append_id = match id {
        Some(id) if is_safe_token(&id) => id,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_id",
                "id: 1–128 characters of A-Z, a-z, 0-9, '.', '_', ':' or '-'",
            ));
        }
        // Time-ordered, as figalize's: the index on the id grows at one end.
        None => uuid::Uuid::now_v7().to_string(),
    };
    Ok(NewEntry {
        append_id,
        original,
        figalized,
    })
}

/// A store failure as an answer: 503 when the database is away (the client retries), 500 for
/// anything else.
pub(crate) fn store_failure(err: &StoreError) -> ApiError {
    match err {
        StoreError::Unavailable(_) | StoreError::Timeout(_) => {
            ApiError::Unavailable(anyhow::anyhow!("{err}"))
        }
        StoreError::Other(_) | StoreError::Unexpected(_) => {
            ApiError::Internal(anyhow::anyhow!("{err}"))
        }
    }
}

/// `?limit=` of `GET /api/gethistory/`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// How many entries, newest first: 1 to 100, 1 by default (the original answered one).
    #[param(minimum = 1, maximum = 100, example = 1)]
    limit: Option<u32>,
}

/// The newest entries, newest first, as `[id, original, figalized]` triples.
#[utoipa::path(
    get,
    path = "/api/gethistory/",
    tag = "history",
    params(HistoryParams),
    responses(
        (status = 200, description = "`[[id, original, figalized], …]`, newest first",
         body = Vec<Vec<serde_json::Value>>, example = json!([[42, "велосипед", "Фигосипед"]])),
        (status = 400, description = "A limit out of range or not a number", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
async fn get_history(
    State(state): State<AppState>,
    Query(params): Query<HistoryParams>,
) -> Result<Json<Vec<(i64, String, String)>>, ApiError> {
    let limit = params.limit.unwrap_or(1);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit: from 1 to {MAX_LIMIT}"),
        ));
    }
    let entries = state
        .store
        .latest(limit)
        .await
        .map_err(|e| store_failure(&e))?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| (e.id, e.original, e.figalized))
            .collect(),
    ))
}

/// How many phrases have been transformed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CountResponse {
    /// Entries in the history.
    #[schema(example = 1234)]
    pub count: i64,
}

/// The number of entries: the site's counter.
#[utoipa::path(
    get,
    path = "/api/history/count",
    tag = "history",
    responses(
        (status = 200, description = "The count", body = CountResponse),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
async fn count(State(state): State<AppState>) -> Result<Json<CountResponse>, ApiError> {
    let count = state.store.count().await.map_err(|e| store_failure(&e))?;
    Ok(Json(CountResponse { count }))
}
