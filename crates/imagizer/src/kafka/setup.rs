//! The consumer, its context and metrics, and the dead-letter producer.

use std::sync::atomic::{AtomicU64, Ordering};

use common::kafka::{KafkaSettings, LogContext};
use prometheus::{IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};
use rdkafka::consumer::Rebalance;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, TopicPartitionList};

/// How often librdkafka reports its statistics, the consumer lag among them.
const STATISTICS_INTERVAL_MS: &str = "5000";

/// The consumer's context: librdkafka's log, a generation that moves on with every rebalance,
/// and the lag of each assigned partition from librdkafka's statistics.
pub struct ConsumerState {
    log: LogContext,
    pub(super) generation: AtomicU64,
    topic: String,
    lag: IntGaugeVec,
}

impl ClientContext for ConsumerState {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        self.log.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.topic) else {
            return;
        };
        // Partition -1 is librdkafka's internal one; a lag of -1 means "not known" (a
        // partition not assigned here, or no offset committed yet).
        for (partition, stats) in &topic.partitions {
            if *partition >= 0 && stats.consumer_lag >= 0 {
                self.lag
                    .with_label_values(&[&partition.to_string()])
                    .set(stats.consumer_lag);
            }
        }
    }
}

impl ConsumerState {
    /// Forgets the lag of partitions this consumer no longer reads.
    fn forget_lag(&self, partitions: &TopicPartitionList) {
        for element in partitions.elements() {
            // Absent when no statistics came in while it was assigned: nothing to forget.
            let _ = self
                .lag
                .remove_label_values(&[&element.partition().to_string()]);
        }
    }
}

impl ConsumerContext for ConsumerState {
    fn post_rebalance(&self, _: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // Only a change of assignment moves the generation on: messages received under an
        // older one are dropped unstarted, which is safe only because the new assignment
        // reads each partition again from its committed offset.
        match rebalance {
            Rebalance::Assign(partitions) => {
                self.generation.fetch_add(1, Ordering::AcqRel);
                tracing::info!(partitions = partitions.count(), "Kafka partitions assigned");
            }
            Rebalance::Revoke(partitions) => {
                self.generation.fetch_add(1, Ordering::AcqRel);
                self.forget_lag(partitions);
                tracing::info!(partitions = partitions.count(), "Kafka partitions revoked");
            }
            Rebalance::Error(err) => {
                tracing::warn!(error = %err, "Kafka rebalance failed");
            }
        }
    }
}

/// The job consumer.
pub type JobConsumer = StreamConsumer<ConsumerState>;

/// A consumer in the group, subscribed to the job topic. Offsets are committed every second
/// from what [`super::consume`] stores, and once more on stop. Each assigned partition's lag
/// goes to `lag`, by partition. librdkafka fetches about `prefetch` messages of a partition
/// ahead (not its default 100,000): what a pause throws away is fetched again on resume.
pub fn consumer(
    settings: &KafkaSettings,
    prefetch: usize,
    lag: IntGaugeVec,
) -> Result<JobConsumer, KafkaError> {
    let consumer: JobConsumer = settings
        .client_config("imagizer")
        .set("group.id", &settings.group)
        // An eager protocol: every rebalance revokes the whole assignment, and the consumer
        // reads each partition again from its committed offset. The consume loop relies on
        // it when it drops unstarted messages of an older assignment; an incremental one
        // (cooperative-sticky) would keep partitions whose dropped messages are not read again.
        .set("partition.assignment.strategy", "range")
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
        .set("queued.min.messages", prefetch.max(1).to_string())
        .set("statistics.interval.ms", STATISTICS_INTERVAL_MS)
        .create_with_context(ConsumerState {
            log: LogContext,
            generation: AtomicU64::new(0),
            topic: settings.topic.clone(),
            lag,
        })?;
    consumer.subscribe(&[&settings.topic])?;
    Ok(consumer)
}

/// A producer for the dead-letter topic.
pub fn dead_letter_producer(
    settings: &KafkaSettings,
) -> Result<FutureProducer<LogContext>, KafkaError> {
    settings
        .producer_config("imagizer-dead-letters")
        .set("linger.ms", "5")
        .create_with_context(LogContext)
}

/// The consumer's own metrics.
#[derive(Clone)]
pub struct ConsumerMetrics {
    pub(super) consumed: IntCounter,
    pub(super) dead_lettered: IntCounterVec,
    pub(super) dead_letter_errors: IntCounter,
    pub(super) errors: IntCounter,
    /// Messages behind the end of each assigned partition.
    pub lag: IntGaugeVec,
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
            dead_letter_errors: counter(
                registry,
                "figachechnaya_imagizer_dead_letter_produce_errors_total",
                "Failed attempts to publish to the dead-letter topic (each is retried)",
            ),
            errors: counter(
                registry,
                "figachechnaya_imagizer_consumer_errors_total",
                "Errors receiving from Kafka or storing offsets",
            ),
            lag: common::metrics::register(
                registry,
                IntGaugeVec::new(
                    Opts::new(
                        "figachechnaya_imagizer_kafka_consumer_lag_messages",
                        "Jobs not yet consumed in each partition assigned to this consumer",
                    ),
                    &["partition"],
                )
                .expect("valid metric"),
            ),
        }
    }
}
