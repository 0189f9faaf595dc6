//! The imagizer service: renders every figalized phrase as a PNG and stores it.
//!
//! Jobs arrive from Kafka ([`kafka`]) or, in the one-process site, from an in-process queue
//! ([`local`]); either way [`pipeline`] runs them: skip what is stored, else [`render`] and
//! upload to the [`store`] (S3 or a local directory). [`api`] tells clients where an image is.

pub mod api;
pub mod config;
pub mod kafka;
pub mod local;
pub mod pipeline;
pub mod render;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use common::app::{Process, ServiceRoutes};
use common::config::Env;
use common::health::{CheckFuture, ReadinessCheck};
use common::image_job::JobSink;
use common::kafka::KafkaSettings;
use common::server::Server;
use rdkafka::consumer::Consumer;

use crate::kafka::JobConsumer;
use crate::pipeline::{Backoff, Pipeline, PipelineMetrics};
use crate::store::{DirStore, ImageStore, KnownStore, S3Store};

pub use config::{Settings, StoreSettings};
/// This binary: `imagizer` in logs, its port in `IMAGIZER_API_PORT` (8003 by default).
pub const BINARY: common::cli::Binary = common::cli::Binary {
    service: "imagizer",
    port_variable: "IMAGIZER_API_PORT",
    default_port: 8003,
    commands: &[REPLAY_DEAD_LETTERS],
};

/// `imagizer replay-dead-letters`: the one-off admin process that puts the dead-lettered jobs
/// back on the job topic (see [`kafka::replay`]).
const REPLAY_DEAD_LETTERS: common::cli::Command = common::cli::Command {
    name: "replay-dead-letters",
    about: "put the jobs now in KAFKA_DEAD_LETTER_TOPIC back on KAFKA_TOPIC_NAME and exit",
    run: replay_dead_letters,
};

fn replay_dead_letters(env: Env) -> common::cli::CommandFuture {
    Box::pin(async move {
        let settings = common::kafka::KafkaSettings::from_env(&env)?;
        let replayed = kafka::replay::replay_dead_letters(&settings).await?;
        tracing::info!(replayed, "dead letters replayed");
        Ok(())
    })
}

/// Where jobs come from.
pub enum JobSource {
    /// The in-process queue; its sending side goes to figalize.
    Local(local::Jobs),
    /// The Kafka topic.
    Kafka(KafkaSettings),
}

/// The service, ready to be mounted in `process`, consuming jobs from `source`.
pub fn service(
    process: &Process,
    settings: &Settings,
    source: JobSource,
) -> anyhow::Result<ServiceRoutes> {
    let (store, directory): (Arc<dyn ImageStore>, _) = match &settings.store {
        // What a store has stored is remembered: S3 would answer each question with a
        // request, and even a directory's answer costs a hop to the blocking thread pool, which
        // held the one-process site's pipeline to about 9,000 jobs a second.
        StoreSettings::S3(s3) => (Arc::new(KnownStore::new(S3Store::new(s3))), None),
        StoreSettings::Directory { path, base_url } => {
            let directory = Arc::new(
                DirStore::open(path, base_url.clone())
                    .with_context(|| format!("creating the image directory {}", path.display()))?,
            );
            (
                Arc::new(KnownStore::new(Arc::clone(&directory))) as Arc<dyn ImageStore>,
                Some(directory),
            )
        }
    };
    tracing::info!(store = store.kind(), "image store configured");
    process.health.add(Arc::new(StoreCheck(Arc::clone(&store))));
    let pipeline = Arc::new(Pipeline::new(
        Arc::clone(&store),
        PipelineMetrics::new(&process.registry),
        Backoff {
            min: Duration::from_millis(100).min(settings.max_backoff),
            max: settings.max_backoff,
        },
    ));
    match source {
        JobSource::Local(jobs) => {
            process.spawn(local::consume(
                jobs,
                pipeline,
                settings.parallelism,
                process.drained(),
            ));
        }
        JobSource::Kafka(kafka) => {
            start_kafka(process, settings, &kafka, pipeline)?;
        }
    }
    Ok(ServiceRoutes::new(
        "imagizer",
        "Renders every figalized phrase as a PNG; tells where the image is.",
        api::router(api::AppState { store, directory }),
    ))
}

fn start_kafka(
    process: &Process,
    settings: &Settings,
    kafka: &KafkaSettings,
    pipeline: Arc<Pipeline>,
) -> anyhow::Result<()> {
    // The broker may start after us: topics are created in the background, and the consumer
    // (which librdkafka reconnects) starts right away.
    process.spawn(common::kafka::ensure_topics_in_background(
        kafka.clone(),
        process.stopping(),
    ));
    let metrics = kafka::ConsumerMetrics::new(&process.registry);
    let consumer = Arc::new(
        kafka::consumer(kafka, settings.prefetch, metrics.lag.clone())
            .context("creating the Kafka consumer")?,
    );
    let dead_letters =
        kafka::dead_letter_producer(kafka).context("creating the dead-letter producer")?;
    process.health.add(Arc::new(ConsumerCheck {
        consumer: Arc::clone(&consumer),
        topic: kafka.topic.clone(),
    }));
    process.spawn(kafka::consume(
        consumer,
        dead_letters,
        pipeline,
        kafka::ConsumeConfig {
            parallelism: settings.parallelism,
            prefetch: settings.prefetch,
            topic: kafka.topic.clone(),
            dead_letter_topic: kafka.dead_letter_topic.clone(),
        },
        metrics,
        process.stopping(),
    ));
    Ok(())
}

/// Readiness follows the image store.
struct StoreCheck(Arc<dyn ImageStore>);

impl ReadinessCheck for StoreCheck {
    fn name(&self) -> &'static str {
        "image_store"
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            self.0.ping().await.map_err(|err| {
                tracing::warn!(error = %err, "readiness: image store check failed");
                "unreachable".to_owned()
            })
        })
    }
}

/// Readiness follows the broker: the job topic's metadata must be readable.
struct ConsumerCheck {
    consumer: Arc<JobConsumer>,
    topic: String,
}

impl ReadinessCheck for ConsumerCheck {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn check(&self) -> CheckFuture<'_> {
        let consumer = Arc::clone(&self.consumer);
        let topic = self.topic.clone();
        Box::pin(async move {
            let metadata = tokio::task::spawn_blocking(move || {
                consumer
                    .fetch_metadata(Some(&topic), Duration::from_millis(700))
                    .map(|metadata| {
                        metadata
                            .topics()
                            .iter()
                            .any(|t| t.error().is_none() && !t.partitions().is_empty())
                    })
            })
            .await
            .map_err(|_| "the check failed".to_owned())?;
            match metadata {
                Ok(true) => Ok(()),
                Ok(false) => Err("the job topic does not exist yet".to_owned()),
                Err(err) => {
                    tracing::warn!(error = %err, "readiness: Kafka check failed");
                    Err("unreachable".to_owned())
                }
            }
        })
    }
}

/// The local queue for the one-process site: the sink for figalize, the source for imagizer.
pub fn local_queue(settings: &Settings) -> (Arc<dyn JobSink>, JobSource) {
    let (sink, jobs) = local::queue(settings.queue);
    (Arc::new(sink), JobSource::Local(jobs))
}

/// The imagizer service on its own, bound to `IMAGIZER_API_PORT` (default 8003), consuming
/// from Kafka.
pub async fn build(env: &Env) -> anyhow::Result<Server> {
    let http = BINARY.http(env)?;
    let settings = Settings::from_env(env)?;
    let kafka = KafkaSettings::from_env(env)?;
    let process = Process::new("imagizer");
    let routes = service(&process, &settings, JobSource::Kafka(kafka))?;
    let app = common::app::build(&process, &http, vec![routes]);
    Ok(Server::bind(&http, &process)
        .await
        .with_context(|| format!("listening on {}", http.addr))?
        .route(app))
}
