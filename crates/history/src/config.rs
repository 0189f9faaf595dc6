//! The history service's settings.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use common::config::{ConfigError, Env};
use common::secret::Secret;
use sqlx::postgres::PgConnectOptions;

use crate::writer::WriterConfig;

/// Which database keeps the history.
#[derive(Clone)]
pub enum Database {
    /// PostgreSQL (production and tests).
    Postgres {
        /// Where and as whom to connect (holds the password: never logged).
        options: Box<PgConnectOptions>,
        /// `DB_POOL_SIZE`: connections in the pool.
        pool_size: u32,
        /// `DB_STARTUP_TIMEOUT_MS`: how long start-up waits for the database.
        startup_timeout: Duration,
    },
    /// An SQLite file (the embedded default).
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Postgres {
                options, pool_size, ..
            } => write!(
                f,
                "PostgreSQL {}:{}/{} (pool {pool_size})",
                options.get_host(),
                options.get_port(),
                options.get_database().unwrap_or("")
            ),
            Self::Sqlite { path } => write!(f, "SQLite {}", path.display()),
        }
    }
}

/// The service's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The database.
    pub database: Database,
    /// How appends are batched.
    pub writer: WriterConfig,
    /// How many live streams may be open.
    pub streams: common::streams::StreamsConfig,
    /// `HISTORY_MIN_FREE_BYTES`: free bytes on the SQLite database's file system under which
    /// appends are refused (64 MiB by default; 0 turns the floor off).
    pub min_free_bytes: u64,
}

/// The free-space floor by default: room for SQLite's journal and checkpoints.
pub const DEFAULT_MIN_FREE_BYTES: u64 = 64 << 20;

impl Settings {
    /// Reads the settings: `DATABASE_URL`, else `DB_HOST` and the rest of the original's `DB_*`
    /// variables, else an SQLite file at `$DATA_DIR/history.sqlite3`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let defaults = WriterConfig::default();
        let database = database(env)?;
        // PostgreSQL inserts one batch while it flushes another's commit, and announces them in
        // commit order; SQLite writes through one connection at a time.
        let writers = match database {
            Database::Postgres { .. } => 2,
            Database::Sqlite { .. } => defaults.writers,
        };
        let writer = WriterConfig {
            max_batch: env.positive("HISTORY_BATCH_MAX", defaults.max_batch)?,
            linger: env.millis("HISTORY_BATCH_LINGER_MS", defaults.linger)?,
            writers: env.positive("HISTORY_WRITERS", writers)?,
            queue: env.positive("HISTORY_QUEUE", defaults.queue)?,
        };
        Ok(Self {
            database,
            writer,
            streams: common::streams::StreamsConfig::from_env(env)?,
            min_free_bytes: env.or("HISTORY_MIN_FREE_BYTES", DEFAULT_MIN_FREE_BYTES)?,
        })
    }
}

fn database(env: &Env) -> Result<Database, ConfigError> {
    let pool_size: u32 = env.or("DB_POOL_SIZE", 10)?;
    if pool_size == 0 {
        return Err(ConfigError::new("DB_POOL_SIZE", "must be positive"));
    }
    let startup_timeout = env.millis("DB_STARTUP_TIMEOUT_MS", Duration::from_secs(30))?;
    let postgres = |options| Database::Postgres {
        options: Box::new(options),
        pool_size,
        startup_timeout,
    };
    if let Some(url) = env.optional::<Secret>("DATABASE_URL")? {
        let url = url.expose();
        if let Some(path) = url.strip_prefix("sqlite://") {
            return Ok(Database::Sqlite { path: path.into() });
        }
        // The parser's message may quote the URL, password included: say what is wrong only.
        let options = PgConnectOptions::from_str(url).map_err(|_| {
            ConfigError::new(
                "DATABASE_URL",
                "not a postgres://user:password@host:port/database URL",
            )
        })?;
        return Ok(postgres(options));
    }
    if let Some(host) = env.text("DB_HOST")? {
        let mut options = PgConnectOptions::new_without_pgpass()
            .host(&host)
            .port(env.or("DB_PORT", 5432)?)
            .username(&env.required::<String>("DB_LOGIN")?)
            .database(&env.or("DB_NAME", "postgres".to_owned())?);
        if let Some(password) = env.optional::<Secret>("DB_PASS")? {
            options = options.password(password.expose());
        }
        return Ok(postgres(options));
    }
    let data_dir: PathBuf = env.or("DATA_DIR", PathBuf::from("./data"))?;
    Ok(Database::Sqlite {
        path: data_dir.join("history.sqlite3"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn database_of(pairs: &[(&str, &str)]) -> Result<Database, ConfigError> {
        Settings::from_env(&Env::from_pairs(pairs.iter().copied())).map(|s| s.database)
    }

    #[test]
    fn nothing_configured_means_sqlite_under_the_data_dir() {
        let db = database_of(&[("DATA_DIR", "/srv/data")]).unwrap();
        assert!(
            matches!(db, Database::Sqlite { path } if path == Path::new("/srv/data/history.sqlite3"))
        );
    }

    #[test]
    fn the_original_db_variables_select_postgres() {
        let db = database_of(&[
            ("DB_HOST", "db"),
            ("DB_PORT", "6432"),
            ("DB_NAME", "figa"),
            ("DB_LOGIN", "figa"),
            ("DB_PASS", "s3cret"),
        ])
        .unwrap();
        let shown = format!("{db:?}");
        assert_eq!(shown, "PostgreSQL db:6432/figa (pool 10)");
        assert!(!shown.contains("s3cret"));
    }

    #[test]
    fn a_db_host_without_login_names_the_missing_variable() {
        let err = database_of(&[("DB_HOST", "db")]).unwrap_err();
        assert_eq!(err.variable, "DB_LOGIN");
    }

    #[test]
    fn a_bad_database_url_is_refused_without_echoing_it() {
        let err =
            database_of(&[("DATABASE_URL", "postgres://u:s3cret@host:notaport/db")]).unwrap_err();
        assert_eq!(err.variable, "DATABASE_URL");
        assert!(!err.to_string().contains("s3cret"));
    }

    #[test]
    fn batching_settings_must_be_positive() {
        let err = Settings::from_env(&Env::from_pairs([("HISTORY_BATCH_MAX", "0")])).unwrap_err();
        assert_eq!(err.variable, "HISTORY_BATCH_MAX");
    }
}
