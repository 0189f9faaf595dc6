//! Publishing image jobs to Kafka.
//!
//! Publishing never waits: [`KafkaJobs::publish`] hands the job to librdkafka's queue and
//! returns. While the broker is away, jobs wait in that queue (bounded by
//! `KAFKA_BUFFER_MESSAGES`) and go out when it returns — messages never expire. A full queue
//! gives the job back, to be offered again ([`crate::handoff`]); a job's receipt is settled when
//! the broker acknowledges it, so figalize's journal keeps the job until then.

use std::sync::Arc;
use std::time::Duration;

use common::image_job::{ImageJob, JobSink, REQUEST_ID_HEADER, Receipt, Refused};
use common::kafka::{KafkaSettings, LogContext};
use prometheus::{IntCounter, IntCounterVec, IntGauge, Registry};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Message};

/// The producer's metrics.
#[derive(Clone)]
struct JobMetrics {
    published: IntCounter,
    delivered: IntCounter,
    errors: IntCounter,
    dropped: IntCounterVec,
    buffered: IntGauge,
}

impl JobMetrics {
    fn new(registry: &Registry) -> Self {
        let counter = |name: &str, help: &str| common::metrics::counter(registry, name, help);
        let dropped = common::metrics::labelled_counter(
            registry,
            "figachechnaya_figalize_image_jobs_dropped_total",
            "Image jobs given up on: `error` (refused for good)",
            "reason",
            ["error"],
        );
        Self {
            published: counter(
                "figachechnaya_figalize_image_jobs_published_total",
                "Image jobs handed to the Kafka producer",
            ),
            delivered: counter(
                "figachechnaya_figalize_image_jobs_delivered_total",
                "Image jobs the broker acknowledged",
            ),
            errors: counter(
                "figachechnaya_figalize_kafka_produce_errors_total",
                "Kafka produce errors: refused sends and failed deliveries",
            ),
            dropped,
            buffered: common::metrics::gauge(
                registry,
                "figachechnaya_figalize_image_jobs_buffered",
                "Image jobs waiting in the producer for the broker's acknowledgement",
            ),
        }
    }
}

/// Counts deliveries and logs failures.
struct DeliveryReport {
    metrics: JobMetrics,
}

impl ClientContext for DeliveryReport {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        LogContext.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        LogContext.error(error, reason);
    }
}

impl ProducerContext for DeliveryReport {
    type DeliveryOpaque = Box<Receipt>;

    fn delivery(&self, result: &DeliveryResult<'_>, receipt: Box<Receipt>) {
        self.metrics.buffered.dec();
        match result {
            Ok(_) => self.metrics.delivered.inc(),
            Err((err, message)) => {
                // Messages never time out, so this is a job the broker refused for good:
                // retrying cannot help, and keeping it would hold the journal forever.
                self.metrics.errors.inc();
                self.metrics.dropped.with_label_values(&["error"]).inc();
                tracing::error!(
                    error = %err,
                    partition = message.partition(),
                    "image job refused by Kafka; dropped"
                );
            }
        }
        receipt.settle();
    }
}

/// Producer settings beyond [`KafkaSettings`].
#[derive(Debug, Clone, Copy)]
pub struct ProducerSettings {
    /// `KAFKA_LINGER_MS`: how long the producer gathers messages into one request.
    pub linger: Duration,
    /// `KAFKA_BUFFER_MESSAGES`: jobs kept while the broker is unreachable.
    pub buffer: usize,
}

/// The Kafka sink for image jobs.
pub struct KafkaJobs {
    producer: ThreadedProducer<DeliveryReport>,
    topic: String,
    metrics: JobMetrics,
}

impl KafkaJobs {
    /// A producer for `kafka.topic`; nothing is contacted until the first job.
    pub fn new(
        kafka: &KafkaSettings,
        settings: ProducerSettings,
        registry: &Registry,
    ) -> Result<Arc<Self>, KafkaError> {
        let metrics = JobMetrics::new(registry);
        let producer = kafka
            .producer_config("figalize")
            .set("linger.ms", settings.linger.as_millis().to_string())
            // 0: a job waits for the broker as long as it takes.
            .set("message.timeout.ms", "0")
            .set("queue.buffering.max.messages", settings.buffer.to_string())
            .create_with_context(DeliveryReport {
                metrics: metrics.clone(),
            })?;
        Ok(Arc::new(Self {
            producer,
            topic: kafka.topic.clone(),
            metrics,
        }))
    }

    /// Jobs not yet acknowledged by the broker.
    pub fn waiting(&self) -> i32 {
        self.producer.in_flight_count()
    }

    /// Waits up to `timeout` for every waiting job to be acknowledged; logs what is left.
    pub fn flush(&self, timeout: Duration) {
        if let Err(err) = self.producer.flush(timeout) {
            tracing::error!(
                error = %err,
                undelivered = self.waiting(),
                "exiting with image jobs never delivered to Kafka"
            );
        }
    }
}

impl JobSink for KafkaJobs {
    fn publish(&self, job: ImageJob, receipt: Receipt) -> Result<(), Refused> {
        let key = job.key();
        let value = job.encode();
        let mut headers = OwnedHeaders::new().insert(Header {
            key: "content-type",
            value: Some("application/json"),
        });
        if let Some(id) = &job.request_id {
            headers = headers.insert(Header {
                key: REQUEST_ID_HEADER,
                value: Some(id),
            });
        }
        let record = BaseRecord::with_opaque_to(&self.topic, Box::new(receipt))
            .key(&key)
            .payload(&value)
            .headers(headers);
        match self.producer.send(record) {
            Ok(()) => {
                self.metrics.published.inc();
                self.metrics.buffered.inc();
                Ok(())
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), record)) => {
                Err(Refused {
                    job,
                    receipt: *record.delivery_opaque,
                })
            }
            Err((err, record)) => {
                // Anything else is a job librdkafka can never send (it checks sizes and
                // topics locally): given up, counted and logged.
                self.metrics.errors.inc();
                self.metrics.dropped.with_label_values(&["error"]).inc();
                tracing::error!(
                    error = %err,
                    request_id = job.request_id.as_deref().unwrap_or("-"),
                    "image job dropped"
                );
                record.delivery_opaque.settle();
                Ok(())
            }
        }
    }
}
