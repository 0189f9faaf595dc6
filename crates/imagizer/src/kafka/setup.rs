//! The consumer, its context and metrics, and the dead-letter producer.

use std::sync::atomic::{AtomicU64, Ordering};

use common::kafka::{KafkaSettings, LogContext};
use prometheus::{IntCounter, IntCounterVec, Registry};
use rdkafka::ClientContext;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;

/// The consumer's context: librdkafka's log, and a generation that moves on with every
/// rebalance.
pub struct ConsumerState {
    log: LogContext,
    pub(super) generation: AtomicU64,
}

impl ClientContext for ConsumerState {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        self.log.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(error, reason);
    }
}

impl ConsumerContext for ConsumerState {
    fn post_rebalance(
        &self,
        _: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &rdkafka::consumer::Rebalance<'_>,
    ) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        match rebalance {
            rdkafka::consumer::Rebalance::Assign(partitions) => {
                tracing::info!(partitions = partitions.count(), "Kafka partitions assigned");
            }
            rdkafka::consumer::Rebalance::Revoke(partitions) => {
                tracing::info!(partitions = partitions.count(), "Kafka partitions revoked");
            }
            rdkafka::consumer::Rebalance::Error(err) => {
                tracing::warn!(error = %err, "Kafka rebalance failed");
            }
        }
    }
}

/// The job consumer.
pub type JobConsumer = StreamConsumer<ConsumerState>;

/// A consumer in the group, subscribed to the job topic. Offsets are committed every second
/// from what [`super::consume`] stores, and once more on stop.
pub fn consumer(settings: &KafkaSettings) -> Result<JobConsumer, KafkaError> {
    let consumer: JobConsumer = settings
        .client_config("imagizer")
        .set("group.id", &settings.group)
        .set(
            "session.timeout.ms",
            settings.session_timeout.as_millis().to_string(),
        )
        .set(
            "max.poll.interval.ms",
            settings.max_poll_interval.as_millis().to_string(),
        )
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // A topic created after the subscription (by this or another service starting at the
        // same time) is noticed within seconds instead of librdkafka's default 5 minutes.
        .set("topic.metadata.refresh.interval.ms", "5000")
        .set(
            "fetch.wait.max.ms",
            settings.fetch_wait_max.as_millis().to_string(),
        )
        .create_with_context(ConsumerState {
            log: LogContext,
            generation: AtomicU64::new(0),
        })?;
    consumer.subscribe(&[&settings.topic])?;
    Ok(consumer)
}

/// A producer for the dead-letter topic.
pub fn dead_letter_producer(
    settings: &KafkaSettings,
) -> Result<FutureProducer<LogContext>, KafkaError> {
    settings
        .client_config("imagizer-dead-letters")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create_with_context(LogContext)
}

/// The consumer's own metrics.
#[derive(Clone)]
pub struct ConsumerMetrics {
    pub(super) consumed: IntCounter,
    pub(super) dead_lettered: IntCounterVec,
    pub(super) errors: IntCounter,
}

impl ConsumerMetrics {
    /// Registers the metrics in `registry`.
    pub fn new(registry: &Registry) -> Self {
        use common::metrics::counter;
        Self {
            consumed: counter(
                registry,
                "figachechnaya_imagizer_messages_consumed_total",
                "Messages received from the job topic",
            ),
            dead_lettered: common::metrics::labelled_counter(
                registry,
                "figachechnaya_imagizer_dead_lettered_total",
                "Messages moved to the dead-letter topic, by reason",
                "reason",
                [
                    "too_large",
                    "undecodable",
                    "unsupported_version",
                    "invalid_text",
                    "render_failed",
                ],
            ),
            errors: counter(
                registry,
                "figachechnaya_imagizer_consumer_errors_total",
                "Errors receiving from Kafka or storing offsets",
            ),
        }
    }
}
