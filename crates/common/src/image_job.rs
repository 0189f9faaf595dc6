//! The image job: what figalize asks imagizer to render, on Kafka or the in-process queue.
//!
//! # Wire format, version 1
//!
//! - **Key**: the object name's stem, [`image_key`] of the text — the md5 of its UTF-8 bytes
//!   in lowercase hex. Equal texts land on one partition, in order.
//! - **Value**: UTF-8 JSON, `{"version": 1, "text": "Фигосипед"}`. `text` is the figalized
//!   phrase as figalize answered it (normalised: single spaces, no leading or trailing ones).
//!   Unknown fields are ignored, so a newer producer may add some; a change that an older
//!   consumer would misread gets a new `version`, and a consumer dead-letters versions it does
//!   not know instead of guessing.
//! - **Headers**: `x-request-id` (the request that produced the job, for following it across
//!   the logs of the services), `content-type: application/json`.
//!
//! A message that breaks these rules can never succeed; imagizer moves it to the dead-letter
//! topic with the reason in a `x-dead-letter-reason` header.

use std::fmt::Write as _;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::phrase::Phrase;

/// The format version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Longest text a job may carry, in characters: a 256-character phrase grows when
/// transformed (a one-letter word becomes four), never past this.
pub const MAX_TEXT_CHARS: usize = 1024;

/// Largest encoded job accepted, in bytes (the text in two-byte Cyrillic plus the envelope).
pub const MAX_ENCODED_BYTES: usize = 4 * MAX_TEXT_CHARS;

/// Header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Header carrying why a message was dead-lettered.
pub const DEAD_LETTER_REASON_HEADER: &str = "x-dead-letter-reason";

/// One PNG to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageJob {
    /// The figalized phrase.
    pub text: String,
    /// The request that produced it.
    pub request_id: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Envelope<'a> {
    version: u32,
    #[serde(borrow)]
    text: std::borrow::Cow<'a, str>,
}

/// Why a message is not a job this code can run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Over [`MAX_ENCODED_BYTES`].
    #[error("message of {0} bytes is over the limit of {MAX_ENCODED_BYTES}")]
    TooLarge(usize),
    /// Not the JSON of a job.
    #[error("undecodable: {0}")]
    Undecodable(String),
    /// A version this code does not know.
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u32),
    /// The text is not a phrase imagizer renders.
    #[error("invalid text: {0}")]
    InvalidText(String),
}

impl JobError {
    /// Stable label for metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge(_) => "too_large",
            Self::Undecodable(_) => "undecodable",
            Self::UnsupportedVersion(_) => "unsupported_version",
            Self::InvalidText(_) => "invalid_text",
        }
    }
}

impl ImageJob {
    /// A job for `text`, tagged with the current request's id.
    pub fn for_text(text: String) -> Self {
        Self {
            text,
            request_id: crate::request_id::current().map(|id| id.as_str().to_owned()),
        }
    }

    /// The message key: [`image_key`] of the text.
    pub fn key(&self) -> String {
        image_key(&self.text)
    }

    /// The message value.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(&Envelope {
            version: FORMAT_VERSION,
            text: self.text.as_str().into(),
        })
        .expect("a job always serialises")
    }

    /// Reads a message value; `request_id` comes from the message's header.
    pub fn decode(value: &[u8], request_id: Option<String>) -> Result<Self, JobError> {
        if value.len() > MAX_ENCODED_BYTES {
            return Err(JobError::TooLarge(value.len()));
        }
        let envelope: Envelope<'_> =
            serde_json::from_slice(value).map_err(|err| JobError::Undecodable(err.to_string()))?;
        if envelope.version != FORMAT_VERSION {
            return Err(JobError::UnsupportedVersion(envelope.version));
        }
        let phrase = Phrase::parse_with_limit(&envelope.text, MAX_TEXT_CHARS)
            .map_err(|err| JobError::InvalidText(err.code().to_owned()))?;
        Ok(Self {
            text: phrase.into_string(),
            request_id,
        })
    }
}

/// The name of a text's image, without extension: md5 of the UTF-8 text, lowercase hex.
pub fn image_key(text: &str) -> String {
    let digest = Md5::digest(text.as_bytes());
    let mut key = String::with_capacity(32);
    for byte in digest {
        write!(key, "{byte:02x}").expect("writing to a String");
    }
    key
}

/// Where figalize sends jobs: Kafka, or the in-process queue of the one-process site.
/// Publishing never waits: a sink that has no room now gives the job back.
pub trait JobSink: Send + Sync + 'static {
    /// Hands a job over. The sink settles `receipt` once it holds the job for good: the broker
    /// has acknowledged it, or the in-process renderer has finished it.
    fn publish(&self, job: ImageJob, receipt: Receipt) -> Result<(), Refused>;
}

/// A job the sink could not take now, given back with its receipt to be offered again.
#[derive(Debug)]
pub struct Refused {
    /// The job.
    pub job: ImageJob,
    /// Its receipt, not settled.
    pub receipt: Receipt,
}

/// What a sink settles once it holds a job for good. A receipt dropped unsettled settles
/// nothing: the job's publisher still owes it (figalize's journal replays it at its next
/// start).
pub struct Receipt(Option<Box<dyn FnOnce() + Send + Sync>>);

impl Receipt {
    /// A receipt that runs `settle` when settled.
    pub fn new(settle: impl FnOnce() + Send + Sync + 'static) -> Self {
        Self(Some(Box::new(settle)))
    }

    /// A receipt no one waits on.
    pub fn none() -> Self {
        Self(None)
    }

    /// The job is held for good.
    pub fn settle(mut self) {
        if let Some(settle) = self.0.take() {
            settle();
        }
    }
}

impl std::fmt::Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Receipt"
        } else {
            "Receipt(none)"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_md5_of_the_text() {
        // md5 of the empty string and of "велосипед" (UTF-8), as `md5sum` prints them.
        assert_eq!(image_key(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(image_key("велосипед"), "923f1f1853bc1f9e7df077a023a78c0a");
    }

    #[test]
    fn jobs_round_trip() {
        let job = ImageJob {
            text: "Фигосипед".into(),
            request_id: Some("abc".into()),
        };
        let value = job.encode();
        assert_eq!(
            std::str::from_utf8(&value).unwrap(),
            r#"{"version":1,"text":"Фигосипед"}"#
        );
        assert_eq!(ImageJob::decode(&value, Some("abc".into())).unwrap(), job);
    }

    #[test]
    fn messages_that_can_never_succeed_are_told_apart() {
        let decode = |value: &[u8]| ImageJob::decode(value, None).map_err(|err| err.code());
        assert_eq!(decode(b"not json"), Err("undecodable"));
        assert_eq!(decode(br#"{"text":"x"}"#), Err("undecodable"));
        assert_eq!(
            decode(r#"{"version":2,"text":"Фиг"}"#.as_bytes()),
            Err("unsupported_version")
        );
        assert_eq!(
            decode(br#"{"version":1,"text":"bicycle"}"#),
            Err("invalid_text")
        );
        assert_eq!(decode(&vec![b' '; MAX_ENCODED_BYTES + 1]), Err("too_large"));
        let long = format!(
            r#"{{"version":1,"text":"{}"}}"#,
            "я".repeat(MAX_TEXT_CHARS + 1)
        );
        assert_eq!(decode(long.as_bytes()), Err("invalid_text"));
        // Unknown fields are ignored.
        assert!(decode(r#"{"version":1,"text":"Фиг","extra":true}"#.as_bytes()).is_ok());
    }
}
