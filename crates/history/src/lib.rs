//! The history service: every phrase anyone transformed, its count, and a live stream.
//!
//! Requests go [`api`] → [`writer`] (batching) → [`store`] (PostgreSQL or SQLite). The store is
//! chosen by configuration: PostgreSQL when `DATABASE_URL` or the original's `DB_*` variables
//! are set, an SQLite file under `$DATA_DIR` otherwise.

pub mod api;
pub mod config;
pub mod disk;
pub mod pool_metrics;
pub mod store;
pub mod stream;
pub mod writer;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use common::app::{Process, ServiceRoutes};
use common::config::Env;
use common::health::{CheckFuture, ReadinessCheck};
use common::server::Server;
use tokio::sync::broadcast;

pub use config::{Database, Settings};

use crate::store::{HistoryStore, PostgresStore, SqliteStore};
use crate::writer::{BatchWriter, WriterMetrics};

/// This binary: `history` in logs, its port in `HISTORY_API_PORT` (8001 by default).
pub const BINARY: common::cli::Binary = common::cli::Binary {
    service: "history",
    port_variable: "HISTORY_API_PORT",
    default_port: 8001,
    commands: &[MIGRATE],
};

/// `history migrate`: the one-off admin process that applies the migrations and exits, for a
/// deployment that migrates before it rolls out (the service also migrates at start-up; sqlx's
/// advisory lock makes concurrent runs safe).
const MIGRATE: common::cli::Command = common::cli::Command {
    name: "migrate",
    about: "apply the database migrations (waiting up to DB_STARTUP_TIMEOUT_MS) and exit",
    run: migrate,
};

fn migrate(env: Env) -> common::cli::CommandFuture {
    Box::pin(async move {
        let settings = Settings::from_env(&env)?;
        let store = open_store(&settings.database).await?;
        tracing::info!(store = store.kind(), "migrations applied");
        Ok(())
    })
}

/// The service, ready to be mounted in `process`: opens the store (migrating it) and starts
/// the writer.
pub async fn service(process: &Process, settings: &Settings) -> anyhow::Result<ServiceRoutes> {
    let store = open_store(&settings.database).await?;
    tracing::info!(store = store.kind(), "history store ready");
    process.health.add(Arc::new(StoreCheck(Arc::clone(&store))));
    pool_metrics::PoolMetrics::register(&process.registry, Arc::clone(&store));
    let (events, _) = broadcast::channel(256);
    // A shared database reports every instance's commits; otherwise the writer reports its own.
    let watcher = store.watch_commits(events.clone(), process.stopping());
    let publish_locally = watcher.is_none();
    if let Some(watcher) = watcher {
        process.spawn(watcher);
    }
    let writer = BatchWriter::start(
        process,
        &store,
        publish_locally.then_some(&events),
        &WriterMetrics::new(&process.registry),
        settings.writer,
    );
    let stream_clients = common::metrics::register(
        &process.registry,
        prometheus::IntGauge::new(
            "figachechnaya_history_stream_clients",
            "Open live-stream connections",
        )
        .expect("valid metric"),
    );
    let disk = match &settings.database {
        Database::Sqlite { path } if settings.min_free_bytes > 0 => {
            let folder = match path.parent() {
                Some(folder) if !folder.as_os_str().is_empty() => folder.to_path_buf(),
                _ => ".".into(),
            };
            Some(disk::DiskFloor::start(
                process,
                folder,
                settings.min_free_bytes,
            ))
        }
        _ => None,
    };
    let state = api::AppState {
        store,
        disk,
        writer,
        events,
        stopping: process.stopping(),
        stream_clients,
        streams: common::streams::Streams::new(settings.streams, &process.registry, process.name),
    };
    Ok(ServiceRoutes::new(
        "history",
        "Every phrase anyone transformed: append (internal: figalize's), read the newest, \
         count, follow live.",
        api::router(state.clone()),
    )
    .with_internal(api::internal_router(state)))
}

async fn open_store(database: &Database) -> anyhow::Result<Arc<dyn HistoryStore>> {
    match database {
        Database::Sqlite { path } => Ok(Arc::new(SqliteStore::open(path).await?)),
        Database::Postgres {
            options,
            pool_size,
            startup_timeout,
        } => {
            let store = PostgresStore::connect_lazy((**options).clone(), *pool_size);
            migrate_when_reachable(&store, *startup_timeout).await?;
            Ok(Arc::new(store))
        }
    }
}

/// Applies the migrations, retrying while the database is not reachable yet (it may start
/// after us), for at most `timeout`.
async fn migrate_when_reachable(store: &PostgresStore, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        match store.migrate().await {
            Ok(()) => return Ok(()),
            Err(err) if Instant::now() < deadline => {
                tracing::warn!(error = %err, "database not ready for migrations; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(err) => return Err(err).context("applying the PostgreSQL migrations"),
        }
    }
}

/// Readiness follows the database.
struct StoreCheck(Arc<dyn HistoryStore>);

impl ReadinessCheck for StoreCheck {
    fn name(&self) -> &'static str {
        "database"
    }

    fn check(&self) -> CheckFuture<'_> {
        // The reason goes to the log; the answer names no host or user.
        Box::pin(async move {
            self.0.ping().await.map_err(|err| {
                tracing::warn!(error = %err, "readiness: database check failed");
                "unreachable".to_owned()
            })
        })
    }
}

/// The history service on its own, bound to `HISTORY_API_PORT` (default 8001).
pub async fn build(env: &Env) -> anyhow::Result<Server> {
    let http = BINARY.http(env)?;
    let settings = Settings::from_env(env)?;
    let process = Process::new("history");
    let routes = service(&process, &settings).await?;
    let app = common::app::build(&process, &http, vec![routes]);
    Ok(Server::bind(&http, &process)
        .await
        .with_context(|| format!("listening on {}", http.addr))?
        .route(app))
}
