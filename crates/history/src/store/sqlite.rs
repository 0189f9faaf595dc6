//! The SQLite adapter: the embedded default, a file under `$DATA_DIR`.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::{
    Appended, COUNT, Entry, HistoryStore, LATEST, NewEntry, PoolUsage, StoreError, StoreFuture,
    newest_created, outcomes,
};

/// History in an SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies the migrations.
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        use anyhow::Context;

        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the data folder {}", dir.display()))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            // WAL lets readers run beside the writer; NORMAL keeps commits durable across a
            // process crash (a power cut may lose the last ones), at a fraction of FULL's cost.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .with_context(|| format!("opening {}", path.display()))?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .context("applying the SQLite migrations")?;
        Ok(Self { pool })
    }

    /// One prepared statement inserts the whole batch, passed as one JSON array: its text is
    /// the same for every batch, so SQLite parses it once per connection, and a batch costs one
    /// call into the database whatever its size. Ids that already existed (retries) are looked
    /// up after, in the same transaction.
    async fn append_batch(&self, entries: &[NewEntry]) -> Result<Appended, StoreError> {
        let rows = serde_json::to_string(
            &entries
                .iter()
                .map(|e| [&e.append_id, &e.original, &e.figalized])
                .collect::<Vec<_>>(),
        )
        .map_err(|_| StoreError::Unexpected("a batch that cannot be encoded"))?;
        let mut tx = self.pool.begin().await?;
        // `where true` tells SQLite's parser that `on conflict` is the upsert clause, not a
        // join constraint of the `select`.
        let created: HashMap<String, i64> = sqlx::query(
            "insert into history (append_id, original, figalized)
             select value ->> 0, value ->> 1, value ->> 2 from json_each(?1) where true
             on conflict (append_id) do nothing
             returning append_id, id",
        )
        .bind(&rows)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, sqlx::Error>>()?;
        let existing: HashMap<String, i64> = if created.len() < entries.len() {
            sqlx::query(
                "select append_id, id from history
                 where append_id in (select value ->> 0 from json_each(?1))",
            )
            .bind(&rows)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()?
        } else {
            HashMap::new()
        };
        let added = i64::try_from(created.len()).expect("a batch fits in i64");
        let total: i64 =
            sqlx::query_scalar("update history_total set total = total + ? returning total")
                .bind(added)
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(Appended {
            stored: outcomes(entries, &created, &existing)?,
            total,
            newest: newest_created(entries, &created),
        })
    }
}

impl HistoryStore for SqliteStore {
    fn append<'a>(&'a self, entries: &'a [NewEntry]) -> StoreFuture<'a, Appended> {
        Box::pin(self.append_batch(entries))
    }

    fn latest(&self, limit: u32) -> StoreFuture<'_, Vec<Entry>> {
        Box::pin(async move {
            Ok(sqlx::query_as(LATEST)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?)
        })
    }

    fn count(&self) -> StoreFuture<'_, i64> {
        Box::pin(async move { Ok(sqlx::query_scalar(COUNT).fetch_one(&self.pool).await?) })
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            sqlx::query("select 1").execute(&self.pool).await?;
            Ok(())
        })
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn pool_usage(&self) -> PoolUsage {
        PoolUsage::of(&self.pool)
    }
}
