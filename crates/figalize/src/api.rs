//! The HTTP API: `POST /api/figalize/` and `GET /api/getschemas/`.

use std::fmt;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus::IntCounterVec;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use common::phrase::{Phrase, PhraseError};
use common::{ApiError, ErrorBody, Json};

use crate::journal::{AppendError, Entry, Journal};
use crate::outbox::Outbox;
use crate::scheme::Schemes;
use crate::transform::figalize;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    schemes: Arc<Schemes>,
    /// `GET /api/getschemas/` never changes while the process runs: rendered once.
    scheme_names: Bytes,
    outbox: Arc<Outbox>,
    journal: Arc<Journal>,
    metrics: FigalizeMetrics,
}

impl AppState {
    /// State over `schemes`, with metrics registered in `registry`.
    pub fn new(
        schemes: Schemes,
        outbox: Arc<Outbox>,
        journal: Arc<Journal>,
        registry: &prometheus::Registry,
    ) -> Self {
        let scheme_names = Bytes::from(render_scheme_names(&schemes));
        let metrics = FigalizeMetrics::new(registry, schemes.iter().len());
        Self {
            schemes: Arc::new(schemes),
            scheme_names,
            outbox,
            journal,
            metrics,
        }
    }
}

/// The service's own counters.
#[derive(Clone)]
struct FigalizeMetrics {
    figalizations: IntCounterVec,
    rejected: IntCounterVec,
}

impl FigalizeMetrics {
    fn new(registry: &prometheus::Registry, schemes: usize) -> Self {
        use common::metrics::labelled_counter;
        let figalizations = labelled_counter(
            registry,
            "figachechnaya_figalize_figalizations_total",
            "Phrases transformed, by scheme id",
            "scheme",
            (0..schemes).map(|id| id.to_string()),
        );
        let rejected = labelled_counter(
            registry,
            "figachechnaya_figalize_rejected_phrases_total",
            "Phrases refused, by reason",
            "reason",
            [
                PhraseError::Empty,
                PhraseError::TooLong { max: 0 },
                PhraseError::NotRussian,
            ]
            .map(PhraseError::code),
        );
        Self {
            figalizations,
            rejected,
        }
    }
}

/// The routes of the figalize service.
pub fn router(state: AppState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(figalize_phrase))
        .routes(routes!(get_schemes))
        .with_state(state)
}

/// A phrase to transform and the scheme to use.
#[derive(Debug, Deserialize, ToSchema)]
pub struct FigalizeRequest {
    /// Index of the scheme, as listed by `GET /api/getschemas/`. A string of digits is accepted
    /// too, as the original service accepted it.
    #[schema(value_type = i64, example = 0)]
    schema_id: SchemeId,
    /// Russian words, up to 256 characters.
    #[schema(example = "велосипед", max_length = 256)]
    phrase: String,
}

/// The transformed phrase.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FigalizeResponse {
    /// The phrase, «офигаченная».
    #[schema(example = "Фигосипед")]
    pub data: String,
}

/// Transforms a phrase with a scheme.
#[utoipa::path(
    post,
    path = "/api/figalize/",
    tag = "figalize",
    request_body = FigalizeRequest,
    responses(
        (status = 200, description = "The transformed phrase", body = FigalizeResponse),
        (status = 400, description = "Not Russian text, empty, too long, unknown scheme, or malformed JSON", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape (missing field, wrong type)", body = ErrorBody),
        (status = 503, description = "Too busy: what was accepted before waits for history or the broker and fills the outbox or the journal, or the journal cannot be written; retry after `Retry-After`", body = ErrorBody),
    )
)]
async fn figalize_phrase(
    State(state): State<AppState>,
    Json(request): Json<FigalizeRequest>,
) -> Result<Json<FigalizeResponse>, ApiError> {
    let scheme = usize::try_from(request.schema_id.0)
        .ok()
        .and_then(|id| state.schemes.get(id))
        .ok_or_else(|| {
            ApiError::bad_request(
                "unknown_schema",
                format!("Нет такой схемы: {}", request.schema_id.0),
            )
        })?;
    let phrase = Phrase::parse(&request.phrase).map_err(|err| {
        state
            .metrics
            .rejected
            .with_label_values(&[err.code()])
            .inc();
        ApiError::bad_request(err.code(), err.to_string())
    })?;
    let figalized = figalize(&phrase, scheme);
    // Accepted only once it is on disk: the journal hands the entry to the outbox for history
    // and the image job to its queue, and keeps both until they are settled, whatever happens
    // to this process. When too much waits, the figalization is refused (503) before anything
    // of it is accepted.
    state
        .outbox
        .admit()
        .map_err(|_| ApiError::Busy("History is behind; try again in a moment"))?;
    state
        .journal
        .append(Entry {
            // Time-ordered (UUIDv7): history's index on the id then grows at one end, so a
            // batch touches a page or two of it rather than one per entry. Random ids held
            // the embedded SQLite store to under a third of its rate (bench store_appends).
            id: uuid::Uuid::now_v7().to_string(),
            original: phrase.into_string(),
            figalized: figalized.clone(),
            request_id: common::request_id::current().map(|id| id.as_str().to_owned()),
        })
        .await
        .map_err(|err| match err {
            AppendError::Full => ApiError::Busy("Too much is waiting; try again in a moment"),
            // Logged by the journal, once per failed write.
            AppendError::Failed(_) => {
                ApiError::Busy("The figalization cannot be kept now; try again in a moment")
            }
        })?;
    state
        .metrics
        .figalizations
        .with_label_values(&[&request.schema_id.0.to_string()])
        .inc();
    Ok(Json(FigalizeResponse { data: figalized }))
}

/// Lists the schemes: scheme id → name.
#[utoipa::path(
    get,
    path = "/api/getschemas/",
    tag = "figalize",
    responses((
        status = 200,
        description = "Scheme names by id, in id order",
        body = std::collections::BTreeMap<String, String>,
        example = json!({"0": "Фигачечная", "1": "Хреначечная"})
    ))
)]
async fn get_schemes(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.scheme_names.clone(),
    )
}

/// `{"0": "Фигачечная", "1": "Хреначечная"}`, keys in id order (a sorted map would put "10"
/// before "2").
fn render_scheme_names(schemes: &Schemes) -> Vec<u8> {
    let mut out = b"{".to_vec();
    for (id, scheme) in schemes.iter().enumerate() {
        if id > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, &id.to_string()).expect("writing to a Vec");
        out.push(b':');
        serde_json::to_writer(&mut out, scheme.name()).expect("writing to a Vec");
    }
    out.push(b'}');
    out
}

/// A scheme id as a client sent it: a JSON integer, or a string of digits.
#[derive(Debug, Clone, Copy)]
struct SchemeId(i64);

impl<'de> Deserialize<'de> for SchemeId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;

        impl Visitor<'_> for IdVisitor {
            type Value = SchemeId;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scheme id such as 0")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SchemeId, E> {
                Ok(SchemeId(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SchemeId, E> {
                // Ids that large name no scheme; saturating keeps the answer "unknown scheme".
                Ok(SchemeId(i64::try_from(v).unwrap_or(i64::MAX)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<SchemeId, E> {
                v.trim()
                    .parse::<i64>()
                    .map(SchemeId)
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }

        deserializer.deserialize_any(IdVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_names_keep_id_order() {
        let json = render_scheme_names(&Schemes::builtin());
        assert_eq!(
            std::str::from_utf8(&json).unwrap(),
            r#"{"0":"Фигачечная","1":"Хреначечная"}"#
        );
    }

    #[test]
    fn scheme_ids_are_integers_or_digit_strings() {
        let id = |json: &str| serde_json::from_str::<SchemeId>(json).map(|id| id.0);
        assert_eq!(id("1").unwrap(), 1);
        assert_eq!(id("-3").unwrap(), -3);
        assert_eq!(id("\"1\"").unwrap(), 1);
        assert_eq!(id("18446744073709551615").unwrap(), i64::MAX);
        assert!(id("1.5").is_err());
        assert!(id("\"один\"").is_err());
        assert!(id("null").is_err());
        assert!(id("true").is_err());
    }
}
