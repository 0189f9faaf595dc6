//! Kafka settings and the pieces both the producer (figalize) and the consumer (imagizer) use.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::{ConfigError, Env};

/// Longest wait between attempts to reconnect to a broker.
const RECONNECT_BACKOFF_MAX_MS: &str = "1000";

/// Where jobs go and how they are consumed, from the original's `KAFKA_*` variables and a few
/// newer ones.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// `KAFKA_BOOTSTRAP`: comma-separated `host:port` list.
    pub bootstrap: String,
    /// `KAFKA_TOPIC_NAME`: the image jobs.
    pub topic: String,
    /// `KAFKA_GROUP_ID`: imagizer's consumer group.
    pub group: String,
    /// `KAFKA_DEAD_LETTER_TOPIC`: jobs that can never succeed.
    pub dead_letter_topic: String,
    /// `KAFKA_SESSION_TIMEOUT_MS`: how long the group waits for a silent consumer; also
    /// bounds how long a first join takes.
    pub session_timeout: Duration,
    /// `KAFKA_MAX_POLL_INTERVAL_MS`: a consumer that takes no message for this long is taken
    /// for wedged and leaves its group (imagizer keeps waiting for messages, paused, while its
    /// job slots are busy, so a slow store does not count).
    pub max_poll_interval: Duration,
    /// `KAFKA_FETCH_WAIT_MAX_MS`: longest a consumer's fetch waits at the broker for new
    /// messages. Brokers that hold a fetch for its whole wait (Tansu does) add up to this to
    /// every job's latency; lower means more idle fetch requests.
    pub fetch_wait_max: Duration,
    /// `KAFKA_CREATE_TOPICS`: create the topics at start-up when missing (off where an
    /// operator provisions them).
    pub create_topics: bool,
    /// `KAFKA_TOPIC_PARTITIONS`: partitions of topics created here.
    pub partitions: i32,
    /// `KAFKA_IDEMPOTENCE`: producers ask the broker to drop retried duplicates by sequence
    /// number. Off by default: every consumer of these topics is idempotent by key, and a
    /// broker that advances a producer's sequence before it has stored the batch (Tansu does,
    /// when it is stopped mid-write) answers the retry "duplicate", which the producer takes
    /// for delivered. Without it a retry after a broker failure is stored again instead.
    pub idempotence: bool,
    /// `KAFKA_DEBUG`: librdkafka's debug contexts (`cgrp,fetch`, `all`, …) for a diagnosis;
    /// their lines are logged at debug level under `common::kafka`. Empty: none.
    pub debug: Option<String>,
}

impl KafkaSettings {
    /// Reads the settings; `KAFKA_BOOTSTRAP` defaults to a broker on this machine.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let topic: String = env.or("KAFKA_TOPIC_NAME", "figalized".to_owned())?;
        let dead_letter_topic =
            env.or("KAFKA_DEAD_LETTER_TOPIC", format!("{topic}.dead-letter"))?;
        let partitions = env.positive("KAFKA_TOPIC_PARTITIONS", 3)?;
        Ok(Self {
            bootstrap: env.or("KAFKA_BOOTSTRAP", "127.0.0.1:9092".to_owned())?,
            group: env.or("KAFKA_GROUP_ID", "imagizer".to_owned())?,
            session_timeout: env.millis("KAFKA_SESSION_TIMEOUT_MS", Duration::from_secs(10))?,
            max_poll_interval: env.millis("KAFKA_MAX_POLL_INTERVAL_MS", Duration::from_mins(5))?,
            fetch_wait_max: env.millis("KAFKA_FETCH_WAIT_MAX_MS", Duration::from_millis(50))?,
            create_topics: env.or("KAFKA_CREATE_TOPICS", true)?,
            idempotence: env.or("KAFKA_IDEMPOTENCE", false)?,
            debug: env.text("KAFKA_DEBUG")?,
            partitions: i32::try_from(partitions)
                .map_err(|_| ConfigError::new("KAFKA_TOPIC_PARTITIONS", "is too large"))?,
            topic,
            dead_letter_topic,
        })
    }

    /// Whether any Kafka variable is set: the one-process site then uses Kafka instead of its
    /// in-process queue.
    pub fn configured(env: &Env) -> Result<bool, ConfigError> {
        Ok(env.text("KAFKA_BOOTSTRAP")?.is_some())
    }

    /// A client configuration with the brokers and a client id.
    pub fn client_config(&self, client_id: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap)
            .set("client.id", client_id)
            // A broker back from a restart is reconnected to within a second, not after
            // librdkafka's default backoff of up to 10 s (readiness waits on it).
            .set("reconnect.backoff.max.ms", RECONNECT_BACKOFF_MAX_MS)
            .set_log_level(RDKafkaLogLevel::Warning);
        if let Some(contexts) = &self.debug {
            config
                .set("debug", contexts)
                .set_log_level(RDKafkaLogLevel::Debug);
        }
        config
    }

    /// A producer's configuration: every replica acknowledges a write, and retries are
    /// deduplicated by the broker only with `KAFKA_IDEMPOTENCE`.
    pub fn producer_config(&self, client_id: &str) -> ClientConfig {
        let mut config = self.client_config(client_id);
        config.set("acks", "all").set(
            "enable.idempotence",
            if self.idempotence { "true" } else { "false" },
        );
        config
    }

    /// Creates the job and dead-letter topics if they are missing and creation is enabled.
    pub async fn ensure_topics(&self) -> Result<(), KafkaError> {
        if !self.create_topics {
            return Ok(());
        }
        let admin: AdminClient<DefaultClientContext> =
            self.client_config("figachechnaya-admin").create()?;
        let topics = [
            NewTopic::new(&self.topic, self.partitions, TopicReplication::Fixed(1)),
            NewTopic::new(&self.dead_letter_topic, 1, TopicReplication::Fixed(1)),
        ];
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        for result in admin.create_topics(&topics, &options).await? {
            match result {
                Ok(topic) => tracing::info!(topic, "Kafka topic created"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(KafkaError::AdminOp(code)).inspect_err(|_| {
                        tracing::error!(topic, error = %code, "cannot create a Kafka topic");
                    });
                }
            }
        }
        Ok(())
    }
}

/// Creates the topics (see [`KafkaSettings::ensure_topics`]), retrying while the broker is not
/// there yet, until done or `stop` is cancelled. Run in the background: a service starts
/// without waiting for its broker.
pub async fn ensure_topics_in_background(
    settings: KafkaSettings,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut delay = Duration::from_millis(200);
    loop {
        match settings.ensure_topics().await {
            Ok(()) => return,
            Err(err) => tracing::warn!(error = %err, "cannot create the Kafka topics yet"),
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => delay = (delay * 2).min(Duration::from_secs(5)),
            () = stop.cancelled() => return,
        }
    }
}

/// librdkafka's own log lines and errors, into this process's log.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogContext;

impl ClientContext for LogContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => tracing::error!(facility, "librdkafka: {message}"),
            RDKafkaLogLevel::Warning => tracing::warn!(facility, "librdkafka: {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(facility, "librdkafka: {message}");
            }
            RDKafkaLogLevel::Debug => tracing::debug!(facility, "librdkafka: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Brokers going away is expected during restarts; librdkafka reconnects by itself.
        tracing::warn!(error = %error, "Kafka client: {reason}");
    }
}

/// A consumer with no rebalance hooks of its own logs the same way.
impl rdkafka::consumer::ConsumerContext for LogContext {}

#[cfg(test)]
mod tests {
    use super::*;

    fn producer(pairs: &[(&str, &str)]) -> ClientConfig {
        let env = Env::from_pairs(pairs.iter().copied());
        KafkaSettings::from_env(&env)
            .expect("valid settings")
            .producer_config("test")
    }

    #[test]
    fn producers_wait_for_every_replica_and_leave_deduplication_off_by_default() {
        let config = producer(&[]);
        assert_eq!(config.get("acks"), Some("all"));
        assert_eq!(config.get("enable.idempotence"), Some("false"));
        assert_eq!(config.get("client.id"), Some("test"));
        assert_eq!(config.get("reconnect.backoff.max.ms"), Some("1000"));
    }

    #[test]
    fn idempotence_is_turned_on_by_its_variable() {
        let config = producer(&[("KAFKA_IDEMPOTENCE", "true")]);
        assert_eq!(config.get("enable.idempotence"), Some("true"));
    }

    #[test]
    fn an_unreadable_idempotence_setting_is_a_configuration_error() {
        let env = Env::from_pairs([("KAFKA_IDEMPOTENCE", "maybe")]);
        let error = KafkaSettings::from_env(&env).expect_err("not a boolean");
        assert!(error.to_string().contains("KAFKA_IDEMPOTENCE"), "{error}");
    }

    #[test]
    fn debug_contexts_are_passed_to_librdkafka_only_when_asked_for() {
        assert_eq!(producer(&[]).get("debug"), None);
        let config = producer(&[("KAFKA_DEBUG", "cgrp,fetch")]);
        assert_eq!(config.get("debug"), Some("cgrp,fetch"));
        assert!(matches!(config.log_level, RDKafkaLogLevel::Debug));
    }
}
