//! The whole Figachechnaya site in one process: every service mounted on one port, on the
//! embedded defaults, so `cargo run --release` is all a newcomer needs.
//!
//! It is the same code as the service binaries, composed differently: each service crate hands
//! over its routes and [`common::app::build`] wraps them exactly as it wraps a single service.
//! The site's page ([`site`]) is served at `/` beside them.

use anyhow::Context;
use common::app::Process;
use common::config::{ConfigError, Env, HttpConfig};
use common::kafka::KafkaSettings;
use common::server::Server;

pub mod site;

/// This binary: `site` in logs, its port in `PORT` (8080 by default).
pub const BINARY: common::cli::Binary = common::cli::Binary {
    service: "site",
    port_variable: "PORT",
    default_port: 8080,
    commands: &[],
};

/// Settings of the one-process site.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    /// `HOST` and `PORT` (default 127.0.0.1:8080) and the shared HTTP limits.
    pub http: HttpConfig,
    /// The figalize service's settings.
    pub figalize: figalize::Settings,
    /// The history service's settings (an SQLite file under `DATA_DIR` unless a database is
    /// configured).
    pub history: history::Settings,
    /// The imagizer service's settings (a directory under `DATA_DIR` unless S3 is configured).
    pub imagizer: imagizer::Settings,
    /// Kafka, when `KAFKA_BOOTSTRAP` is set; otherwise jobs go through an in-process queue.
    pub kafka: Option<KafkaSettings>,
}

impl SiteConfig {
    /// Reads the settings from the environment.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            http: BINARY.http(env)?,
            figalize: figalize::Settings::from_env(env)?,
            history: history::Settings::from_env(env)?,
            imagizer: imagizer::Settings::from_env(env)?,
            kafka: if KafkaSettings::configured(env)? {
                Some(KafkaSettings::from_env(env)?)
            } else {
                None
            },
        })
    }
}

/// The site, bound and ready to run.
pub async fn build(env: &Env) -> anyhow::Result<Server> {
    let config = SiteConfig::from_env(env)?;
    let process = Process::new("site");
    let history = history::service(&process, &config.history).await?;
    // figalize appends through history's internal routes in this process: the same client, no
    // network; visitors cannot reach them.
    let to_history = figalize::history::HistoryClient::in_process(
        history.internal.clone(),
        config.figalize.history_timeout,
    );
    let (jobs, source) = match &config.kafka {
        Some(kafka) => (
            figalize::kafka_jobs(&process, kafka, config.figalize.producer)?,
            imagizer::JobSource::Kafka(kafka.clone()),
        ),
        None => imagizer::local_queue(&config.imagizer),
    };
    let imagizer = imagizer::service(&process, &config.imagizer, source)?;
    let figalize = figalize::service(&process, &config.figalize, to_history, jobs)?;
    let services = vec![figalize, history, imagizer];
    let app = common::app::build_with_pages(&process, &config.http, services, site::router());
    Ok(Server::bind(&config.http, &process)
        .await
        .with_context(|| format!("listening on {}", config.http.addr))?
        .route(app))
}
