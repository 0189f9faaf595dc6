//! The figalize service: turns Russian words into their «офигаченные» forms.
//!
//! [`transform`] is the algorithm, a pure function; [`scheme`] loads and validates the data
//! it runs on; [`api`] puts it on HTTP. [`service`] is what a process mounts, alone
//! ([`build`]) or beside the other services in the one-process site.

pub mod api;
pub mod scheme;
pub mod transform;

use std::path::PathBuf;

use anyhow::Context;
use common::app::{Process, ServiceRoutes};
use common::config::{ConfigError, Env, HttpConfig};
use common::server::Server;

use crate::scheme::Schemes;

/// Where the original service read its schemes (a mounted ConfigMap); used when it exists.
pub const DEFAULT_SCHEMES_FILE: &str = "/var/config/example.json";

/// The service's own settings.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `SCHEMES_FILE`, else [`DEFAULT_SCHEMES_FILE`] if present, else the built-in schemes.
    pub schemes_file: Option<PathBuf>,
}

impl Settings {
    /// Reads the settings from the environment.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let schemes_file = env.optional::<PathBuf>("SCHEMES_FILE")?.or_else(|| {
            let default = PathBuf::from(DEFAULT_SCHEMES_FILE);
            default.is_file().then_some(default)
        });
        Ok(Self { schemes_file })
    }
}

/// The service, ready to be mounted in `process`.
pub fn service(process: &Process, settings: &Settings) -> anyhow::Result<ServiceRoutes> {
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
    let state = api::AppState::new(schemes, &process.registry);
    Ok(ServiceRoutes::new(
        "figalize",
        "Turns Russian words and phrases into their «офигаченные» forms.",
        api::router(state),
    ))
}

/// The figalize service on its own, bound to `FIGALIZE_API_PORT` (default 8002).
pub async fn build(env: &Env) -> anyhow::Result<Server> {
    let http = HttpConfig::from_env(env, "FIGALIZE_API_PORT", 8002)?;
    let settings = Settings::from_env(env)?;
    let process = Process::new("figalize");
    let routes = service(&process, &settings)?;
    let app = common::app::build(&process, &http, vec![routes]);
    Ok(Server::bind(&http, &process)
        .await
        .with_context(|| format!("listening on {}", http.addr))?
        .route(app))
}
