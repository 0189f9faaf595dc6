//! Batch appends: how figalize hands history many entries in one request.
//!
//! `POST /api/append/batch/` takes `{"entries": [{"id", "original", "figalized",
//! "request_id"?}, …]}` and answers, once every valid entry is committed, one result per entry
//! in the order sent: `{"status": "stored", "id", "created"}` or `{"status": "rejected",
//! "code", "message"}` for an entry that can never be stored. A database that cannot take the
//! batch answers 503 as a whole; the ids make the retry safe.
//!
//! One request carries what would otherwise be hundreds, so figalize's outbox keeps up with
//! figalize at full speed, and history commits the batch in one transaction.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The path of history's batch endpoint.
pub const PATH: &str = "/api/append/batch/";

/// Most entries in one batch.
pub const MAX_ENTRIES: usize = 256;

/// One entry of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BatchEntry {
    /// Idempotency key (1–128 characters of `[A-Za-z0-9._:-]`), required in a batch: an entry
    /// sent again with the same id is stored once.
    #[schema(
        example = "0b7e7f7e-8a57-4c55-9a43-1f0f0f5e2d11",
        pattern = "^[A-Za-z0-9._:-]{1,128}$"
    )]
    pub id: String,
    /// The phrase as the user typed it: Russian text, up to 256 characters.
    #[schema(example = "велосипед")]
    pub original: String,
    /// The transformed phrase, up to 2048 characters.
    #[schema(example = "Фигосипед")]
    pub figalized: String,
    /// The request that produced the entry: history logs it with the batch, so one search
    /// follows a figalization into history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "6f1c1e9a-3f55-4a55-9d0e-4f0e2b1d7c11")]
    pub request_id: Option<String>,
}

/// A batch of entries to append.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchRequest {
    /// 1 to 256 entries.
    #[schema(min_items = 1, max_items = 256)]
    pub entries: Vec<BatchEntry>,
}

/// What became of one entry of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum BatchOutcome {
    /// Committed now, or before (`created: false`, a retry).
    Stored {
        /// The entry's id in the history.
        id: i64,
        /// `false` when this append id was stored before.
        created: bool,
    },
    /// Never stored: the entry itself is invalid, so retrying cannot help.
    Rejected {
        /// Stable machine-readable code, as in the common error shape.
        code: String,
        /// Why.
        message: String,
    },
}

/// The answer to a batch: one outcome per entry, in the order sent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchResponse {
    /// Outcomes, one per entry.
    pub results: Vec<BatchOutcome>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_tagged_by_status() {
        let response = BatchResponse {
            results: vec![
                BatchOutcome::Stored {
                    id: 7,
                    created: true,
                },
                BatchOutcome::Rejected {
                    code: "not_russian".into(),
                    message: "original: not Russian".into(),
                },
            ],
        };
        let json = serde_json::to_value(&response).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"results": [
                {"status": "stored", "id": 7, "created": true},
                {"status": "rejected", "code": "not_russian", "message": "original: not Russian"},
            ]})
        );
        let back: BatchResponse = serde_json::from_value(json).unwrap();
        assert_eq!(back.results, response.results);
    }

    #[test]
    fn an_entry_without_a_request_id_leaves_it_out() {
        let entry = BatchEntry {
            id: "a".into(),
            original: "б".into(),
            figalized: "в".into(),
            request_id: None,
        };
        assert_eq!(
            serde_json::to_string(&entry).unwrap(),
            r#"{"id":"a","original":"б","figalized":"в"}"#
        );
    }
}
