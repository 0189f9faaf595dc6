//! Where history is kept: a port with two adapters, PostgreSQL for production and tests and
//! SQLite for the embedded default. Both pass the same behavioural tests.

mod postgres;
mod sqlite;

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use utoipa::ToSchema;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// A future a store returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// An entry to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    /// Idempotency key: appends with the same id are stored once.
    pub append_id: String,
    /// The phrase as the user typed it (normalised).
    pub original: String,
    /// The transformed phrase.
    pub figalized: String,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct Entry {
    /// Position in the history; newer entries have larger ids.
    pub id: i64,
    /// The phrase as the user typed it.
    pub original: String,
    /// The transformed phrase.
    pub figalized: String,
}

/// What became of one appended entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// The entry's id (the existing one for a repeated append id).
    pub id: i64,
    /// `false` when the append id was already stored.
    pub created: bool,
}

/// What a batch append committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// One outcome per entry, in the order given.
    pub stored: Vec<Stored>,
    /// Number of entries in the history after the commit.
    pub total: i64,
    /// The newest entry the batch created, if it created any.
    pub newest: Option<Entry>,
}

/// The newest entry and the count after a commit: what the live stream sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The newest entry created by the batch.
    pub entry: Entry,
    /// Entries in the history after it.
    pub count: i64,
}

/// A task that runs until its process stops.
pub type Watcher = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached now; retrying later may work.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// Anything else.
    #[error("database error: {0}")]
    Other(#[source] sqlx::Error),
    /// The database did not answer in time.
    #[error("database did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The database answered something the store cannot make sense of.
    #[error("unexpected database state: {0}")]
    Unexpected(&'static str),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        let transient = match &err {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| is_transient(&code)),
            _ => false,
        };
        if transient {
            Self::Unavailable(err)
        } else {
            Self::Other(err)
        }
    }
}

/// Database error codes that say "not now" rather than "never".
fn is_transient(code: &str) -> bool {
    // PostgreSQL: connection exceptions (08…), shutdown and crash recovery (57P…), resource
    // exhaustion (53…), deadlock and serialization failures (40P01, 40001).
    let postgres = ["08", "57P", "53", "40P01", "40001"]
        .iter()
        .any(|prefix| code.starts_with(prefix));
    // SQLite: BUSY (5) and LOCKED (6), with their extended codes (code + 256·n).
    let sqlite = code.parse::<u32>().is_ok_and(|n| matches!(n % 256, 5 | 6));
    postgres || sqlite
}

/// The newest entries first, as both adapters read them.
const LATEST: &str = "select id, original, figalized from history order by id desc limit $1";

/// The count, kept beside the rows.
const COUNT: &str = "select total from history_total";

/// How a store's connection pool is used at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    /// Connections open, busy or idle.
    pub open: u32,
    /// Open connections waiting for work.
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

impl PoolUsage {
    /// Reads a sqlx pool.
    pub fn of<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) -> Self {
        Self {
            open: pool.size(),
            idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            max: pool.options().get_max_connections(),
        }
    }
}

/// Where history is kept.
pub trait HistoryStore: Send + Sync + 'static {
    /// Appends entries in one transaction; repeated append ids are not stored twice.
    fn append<'a>(&'a self, entries: &'a [NewEntry]) -> StoreFuture<'a, Appended>;
    /// The newest `limit` entries, newest first.
    fn latest(&self, limit: u32) -> StoreFuture<'_, Vec<Entry>>;
    /// Number of entries.
    fn count(&self) -> StoreFuture<'_, i64>;
    /// Checks that the database answers.
    fn ping(&self) -> StoreFuture<'_, ()>;
    /// Which kind of database, for logs.
    fn kind(&self) -> &'static str;
    /// The connection pool's use now, for metrics.
    fn pool_usage(&self) -> PoolUsage;
    /// For a database several processes write to: a task forwarding every commit, by any of
    /// them, to `events` until `stopping`. `None` when only this process writes; its writer
    /// then publishes its own commits.
    fn watch_commits(
        &self,
        events: tokio::sync::broadcast::Sender<Committed>,
        stopping: tokio_util::sync::CancellationToken,
    ) -> Option<Watcher> {
        let _ = (events, stopping);
        None
    }
}

/// Pairs each entry with its outcome, given the ids the insert created and the ids that
/// already existed (repeated ids within one batch resolve to the same row).
fn outcomes(
    entries: &[NewEntry],
    created: &std::collections::HashMap<String, i64>,
    existing: &std::collections::HashMap<String, i64>,
) -> Result<Vec<Stored>, StoreError> {
    let mut seen = std::collections::HashSet::new();
    entries
        .iter()
        .map(|entry| {
            let key = entry.append_id.as_str();
            match (created.get(key), existing.get(key)) {
                (Some(&id), _) if seen.insert(key) => Ok(Stored { id, created: true }),
                (Some(&id), _) | (None, Some(&id)) => Ok(Stored { id, created: false }),
                (None, None) => Err(StoreError::Unexpected(
                    "an append id neither inserted nor found",
                )),
            }
        })
        .collect()
}

/// The newest entry among those just created.
fn newest_created(
    entries: &[NewEntry],
    created: &std::collections::HashMap<String, i64>,
) -> Option<Entry> {
    entries
        .iter()
        .filter_map(|entry| created.get(&entry.append_id).map(|&id| (id, entry)))
        .max_by_key(|(id, _)| *id)
        .map(|(id, entry)| Entry {
            id,
            original: entry.original.clone(),
            figalized: entry.figalized.clone(),
        })
}
