//! The whole Figachechnaya site in one process: every service mounted on one port, on the
//! embedded defaults, so `cargo run --release` is all a newcomer needs.
//!
//! It is the same code as the service binaries, composed differently: each service crate hands
//! over its routes and [`common::app::build`] wraps them exactly as it wraps a single service.

use std::path::PathBuf;

use anyhow::Context;
use common::app::Process;
use common::config::{ConfigError, Env, HttpConfig};
use common::server::Server;

/// Settings of the one-process site.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    /// `HOST` and `PORT` (default 127.0.0.1:8080) and the shared HTTP limits.
    pub http: HttpConfig,
    /// `DATA_DIR` (default `./data`): where the embedded stores keep their files.
    pub data_dir: PathBuf,
    /// The figalize service's settings.
    pub figalize: figalize::Settings,
}

impl SiteConfig {
    /// Reads the settings from the environment.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            http: HttpConfig::from_env(env, "PORT", 8080)?,
            data_dir: env.or("DATA_DIR", PathBuf::from("./data"))?,
            figalize: figalize::Settings::from_env(env)?,
        })
    }
}

/// The site, bound and ready to run.
pub async fn build(env: &Env) -> anyhow::Result<Server> {
    let config = SiteConfig::from_env(env)?;
    let process = Process::new("site");
    let services = vec![figalize::service(&process, &config.figalize)?];
    let app = common::app::build(&process, &config.http, services);
    Ok(Server::bind(&config.http, &process)
        .await
        .with_context(|| format!("listening on {}", config.http.addr))?
        .route(app))
}
