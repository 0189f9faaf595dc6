//! The SQLite adapter: the embedded default, a file under `$DATA_DIR`.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use super::{
    Appended, COUNT, Entry, HistoryStore, LATEST, NewEntry, PoolUsage, StoreError, StoreFuture,
    newest_created, outcomes,
};

/// Rows per insert statement: 3 parameters each, well under SQLite's 32,766.
const ROWS_PER_STATEMENT: usize = 1000;

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

    async fn append_batch(&self, entries: &[NewEntry]) -> Result<Appended, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut created = HashMap::new();
        for chunk in entries.chunks(ROWS_PER_STATEMENT) {
            let mut insert: QueryBuilder<Sqlite> =
                QueryBuilder::new("insert into history (append_id, original, figalized) ");
            insert.push_values(chunk, |mut row, entry| {
                row.push_bind(&entry.append_id)
                    .push_bind(&entry.original)
                    .push_bind(&entry.figalized);
            });
            insert.push(" on conflict (append_id) do nothing returning append_id, id");
            for row in insert.build().fetch_all(&mut *tx).await? {
                created.insert(row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?);
            }
        }
        let mut existing = HashMap::new();
        let missing: Vec<&NewEntry> = entries
            .iter()
            .filter(|e| !created.contains_key(&e.append_id))
            .collect();
        for chunk in missing.chunks(ROWS_PER_STATEMENT) {
            let mut select: QueryBuilder<Sqlite> =
                QueryBuilder::new("select append_id, id from history where append_id in (");
            let mut ids = select.separated(", ");
            for entry in chunk {
                ids.push_bind(&entry.append_id);
            }
            select.push(")");
            for row in select.build().fetch_all(&mut *tx).await? {
                existing.insert(row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?);
            }
        }
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
