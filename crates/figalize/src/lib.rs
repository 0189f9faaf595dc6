//! The figalize service: turns Russian words into their «офигаченные» forms.
//!
//! [`transform`] is the algorithm, a pure function; [`scheme`] loads and validates the data
//! it runs on; [`api`] puts it on HTTP. [`service`] is what a process mounts, alone
//! ([`build`]) or beside the other services in the one-process site.

pub mod api;
pub mod handoff;
pub mod history;
pub mod jobs;
pub mod journal;
pub mod outbox;
pub mod scheme;
pub mod transform;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use common::app::{Process, ServiceRoutes};
use common::append_batch::MAX_ENTRIES;
use common::config::{ConfigError, Env};
use common::image_job::{ImageJob, JobSink, Receipt};
use common::kafka::KafkaSettings;
use common::server::Server;

use crate::handoff::ImageHandoff;
use crate::history::HistoryClient;
use crate::jobs::{KafkaJobs, ProducerSettings};
use crate::journal::{Journal, JournalConfig, JournalMetrics};
use crate::outbox::{Append, DeliveryConfig, Outbox, OutboxMetrics};
use crate::scheme::Schemes;

/// This binary: `figalize` in logs, its port in `FIGALIZE_API_PORT` (8002 by default).
pub const BINARY: common::cli::Binary = common::cli::Binary {
    service: "figalize",
    port_variable: "FIGALIZE_API_PORT",
    default_port: 8002,
    commands: &[],
};

/// Where the original service read its schemes (a mounted ConfigMap); used when it exists.
pub const DEFAULT_SCHEMES_FILE: &str = "/var/config/example.json";

/// The service's own settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `SCHEMES_FILE`, else [`DEFAULT_SCHEMES_FILE`] if present, else the built-in schemes.
    pub schemes_file: Option<PathBuf>,
    /// `HISTORY_APPEND_URL`: history's append endpoint (the original's variable).
    pub history_append_url: String,
    /// `HISTORY_BATCH_URL`: history's batch append endpoint, by default
    /// `<HISTORY_APPEND_URL>batch/`.
    pub history_batch_url: String,
    /// `HISTORY_TIMEOUT_MS`: how long one delivery attempt may take.
    pub history_timeout: Duration,
    /// `OUTBOX_CAPACITY`: history entries kept while history is unreachable.
    pub outbox_capacity: usize,
    /// `OUTBOX_CONCURRENCY`: batches delivered at once.
    pub outbox_concurrency: usize,
    /// `OUTBOX_BATCH_ENTRIES`: most entries in one batch (1–256).
    pub outbox_batch_entries: usize,
    /// `OUTBOX_BATCH_BYTES`: about the largest batch body; keep it within history's
    /// `MAX_INTERNAL_BODY_BYTES`.
    pub outbox_batch_bytes: usize,
    /// `OUTBOX_MAX_BACKOFF_MS`: longest wait between delivery retries.
    pub outbox_max_backoff: Duration,
    /// How image jobs are produced to Kafka (when they go to Kafka).
    pub producer: ProducerSettings,
    /// `JOURNAL_DIR` (else `$DATA_DIR/journal`) and `JOURNAL_MAX_BYTES`: where accepted
    /// figalizations are kept until history and the broker have them.
    pub journal: JournalConfig,
}

/// The smallest `JOURNAL_MAX_BYTES`: a few segments, so that one can be written while older
/// ones wait to settle.
const MIN_JOURNAL_BYTES: u64 = 4 * journal::SEGMENT_BYTES;

impl Settings {
    /// Reads the settings from the environment.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let schemes_file = env.optional::<PathBuf>("SCHEMES_FILE")?.or_else(|| {
            let default = PathBuf::from(DEFAULT_SCHEMES_FILE);
            default.is_file().then_some(default)
        });
        let history_append_url = env.or(
            "HISTORY_APPEND_URL",
            "http://127.0.0.1:8001/api/append/".to_owned(),
        )?;
        if !(history_append_url.starts_with("http://")
            || history_append_url.starts_with("https://"))
        {
            return Err(ConfigError::new(
                "HISTORY_APPEND_URL",
                "must be an http:// or https:// URL",
            ));
        }
        let history_batch_url = env.or(
            "HISTORY_BATCH_URL",
            history::batch_url_for(&history_append_url),
        )?;
        if !(history_batch_url.starts_with("http://") || history_batch_url.starts_with("https://"))
        {
            return Err(ConfigError::new(
                "HISTORY_BATCH_URL",
                "must be an http:// or https:// URL",
            ));
        }
        let outbox_batch_entries = env.positive("OUTBOX_BATCH_ENTRIES", MAX_ENTRIES)?;
        if outbox_batch_entries > MAX_ENTRIES {
            return Err(ConfigError::new(
                "OUTBOX_BATCH_ENTRIES",
                format!("at most {MAX_ENTRIES}"),
            ));
        }
        let data_dir: PathBuf = env.or("DATA_DIR", PathBuf::from("./data"))?;
        let journal_max_bytes = env.positive("JOURNAL_MAX_BYTES", 64 * 1024 * 1024)? as u64;
        if journal_max_bytes < MIN_JOURNAL_BYTES {
            return Err(ConfigError::new(
                "JOURNAL_MAX_BYTES",
                format!("at least {MIN_JOURNAL_BYTES} (4 MiB)"),
            ));
        }
        Ok(Self {
            journal: JournalConfig {
                dir: env.or("JOURNAL_DIR", data_dir.join("journal"))?,
                max_bytes: journal_max_bytes,
            },
            schemes_file,
            history_append_url,
            history_batch_url,
            history_timeout: env.millis("HISTORY_TIMEOUT_MS", Duration::from_secs(5))?,
            outbox_capacity: env.positive("OUTBOX_CAPACITY", 100_000)?,
            outbox_concurrency: env.positive("OUTBOX_CONCURRENCY", 16)?,
            outbox_batch_entries,
            // Well within history's default MAX_INTERNAL_BODY_BYTES (1 MiB), with room for the
            // estimate's error; a history that takes less gets the batch in halves.
            outbox_batch_bytes: env.positive("OUTBOX_BATCH_BYTES", 512 * 1024)?,
            outbox_max_backoff: env.millis("OUTBOX_MAX_BACKOFF_MS", Duration::from_secs(10))?,
            producer: ProducerSettings {
                linger: env.millis("KAFKA_LINGER_MS", Duration::from_millis(5))?,
                buffer: env.positive("KAFKA_BUFFER_MESSAGES", 100_000)?,
            },
        })
    }
}

/// The service, ready to be mounted in `process`; history entries go to `history` through an
/// outbox delivered in the background, image jobs to `jobs`.
pub fn service(
    process: &Process,
    settings: &Settings,
    history: HistoryClient,
    jobs: Arc<dyn JobSink>,
) -> anyhow::Result<ServiceRoutes> {
    let schemes = match &settings.schemes_file {
        Some(path) => Schemes::load(path).context("SCHEMES_FILE")?,
        None => Schemes::builtin(),
    };
    tracing::info!(
        schemes = schemes.iter().len(),
        source = settings
            .schemes_file
            .as_ref()
            .map_or_else(|| "built-in".to_owned(), |p| p.display().to_string()),
        "schemes loaded"
    );
    let (journal, recovered) =
        Journal::open(&settings.journal, JournalMetrics::new(&process.registry))?;
    let outbox = Arc::new(Outbox::new(
        settings.outbox_capacity,
        Arc::clone(&journal),
        OutboxMetrics::new(&process.registry),
    ));
    let images = Arc::new(ImageHandoff::new(jobs, &process.registry));
    let dispatch = {
        let (journal, outbox, images) = (
            Arc::clone(&journal),
            Arc::clone(&outbox),
            Arc::clone(&images),
        );
        move |ticket, entries: Vec<journal::Entry>| {
            for entry in &entries {
                let settle = Arc::clone(&journal);
                images.publish(
                    ImageJob {
                        text: entry.figalized.clone(),
                        request_id: entry.request_id.clone(),
                    },
                    Receipt::new(move || settle.settle(ticket)),
                );
            }
            outbox.push(entries.into_iter().map(|entry| Append { entry, ticket }));
        }
    };
    journal.start(recovered, dispatch)?;
    process.spawn(outbox::deliver(
        Arc::clone(&outbox),
        history,
        DeliveryConfig {
            concurrency: settings.outbox_concurrency,
            batch_entries: settings.outbox_batch_entries,
            batch_bytes: settings.outbox_batch_bytes,
            min_backoff: Duration::from_millis(100).min(settings.outbox_max_backoff),
            max_backoff: settings.outbox_max_backoff,
        },
        process.drained(),
    ));
    process.spawn(images.redeliver(process.drained()));
    let closing = Arc::clone(&journal);
    let drained = process.drained();
    process.spawn(async move {
        drained.cancelled().await;
        closing.settled().await;
        closing.close();
    });
    let state = api::AppState::new(schemes, outbox, journal, &process.registry);
    Ok(ServiceRoutes::new(
        "figalize",
        "Turns Russian words and phrases into their «офигаченные» forms.",
        api::router(state),
    ))
}

/// The figalize service on its own, bound to `FIGALIZE_API_PORT` (default 8002).
pub async fn build(env: &Env) -> anyhow::Result<Server> {
    let http = BINARY.http(env)?;
    let settings = Settings::from_env(env)?;
    let process = Process::new("figalize");
    let history = HistoryClient::http(
        settings.history_append_url.clone(),
        settings.history_batch_url.clone(),
        settings.history_timeout,
    )?;
    let jobs = kafka_jobs(&process, &KafkaSettings::from_env(env)?, settings.producer)?;
    let routes = service(&process, &settings, history, jobs)?;
    let app = common::app::build(&process, &http, vec![routes]);
    Ok(Server::bind(&http, &process)
        .await
        .with_context(|| format!("listening on {}", http.addr))?
        .route(app))
}

/// The Kafka producer of image jobs, with its topics ensured in the background and a flush of
/// what is still waiting once the last request has been answered.
pub fn kafka_jobs(
    process: &Process,
    kafka: &KafkaSettings,
    settings: ProducerSettings,
) -> anyhow::Result<Arc<dyn JobSink>> {
    let jobs = KafkaJobs::new(kafka, settings, &process.registry)
        .context("creating the Kafka producer")?;
    process.spawn(common::kafka::ensure_topics_in_background(
        kafka.clone(),
        process.stopping(),
    ));
    let flushing = Arc::clone(&jobs);
    let drained = process.drained();
    process.spawn(async move {
        drained.cancelled().await;
        let waiting = flushing.waiting();
        if waiting > 0 {
            tracing::info!(waiting, "delivering the last image jobs to Kafka");
        }
        let _ = tokio::task::spawn_blocking(move || flushing.flush(Duration::from_secs(10))).await;
    });
    Ok(jobs)
}
