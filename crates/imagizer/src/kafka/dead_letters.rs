//! The dead-letter topic: where a message that can never succeed goes, with its reason, so it
//! neither blocks its partition nor disappears.

use std::time::Duration;

use common::image_job::{DEAD_LETTER_REASON_HEADER, REQUEST_ID_HEADER};
use common::kafka::LogContext;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

use super::{ConsumerMetrics, Received};

pub(super) struct DeadLetters {
    pub(super) producer: FutureProducer<LogContext>,
    pub(super) topic: String,
    pub(super) metrics: ConsumerMetrics,
}

impl DeadLetters {
    /// Copies the message to the dead-letter topic, retrying until it is there; `false` if
    /// the process stopped first.
    pub(super) async fn send(
        &self,
        received: &Received,
        code: &str,
        reason: &str,
        stop: &CancellationToken,
    ) -> bool {
        tracing::error!(
            request_id = received.request_id.as_deref().unwrap_or("-"),
            partition = received.partition,
            offset = received.offset,
            reason,
            "image job can never succeed: dead-lettering it"
        );
        let partition = received.partition.to_string();
        let offset = received.offset.to_string();
        let mut headers = OwnedHeaders::new()
            .insert(Header {
                key: DEAD_LETTER_REASON_HEADER,
                value: Some(reason),
            })
            .insert(Header {
                key: "x-original-partition",
                value: Some(&partition),
            })
            .insert(Header {
                key: "x-original-offset",
                value: Some(&offset),
            });
        if let Some(id) = &received.request_id {
            headers = headers.insert(Header {
                key: REQUEST_ID_HEADER,
                value: Some(id),
            });
        }
        loop {
            let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic)
                .payload(&received.payload)
                .headers(headers.clone());
            if let Some(key) = &received.key {
                record = record.key(key);
            }
            let sent = tokio::select! {
                sent = self.producer.send(record, Duration::from_secs(10)) => sent,
                () = stop.cancelled() => return false,
            };
            match sent {
                Ok(_) => {
                    self.metrics.dead_lettered.with_label_values(&[code]).inc();
                    return true;
                }
                Err((err, _)) => {
                    self.metrics.dead_letter_errors.inc();
                    tracing::warn!(error = %err, "dead-letter publish failed; will retry");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = stop.cancelled() => return false,
                    }
                }
            }
        }
    }
}
