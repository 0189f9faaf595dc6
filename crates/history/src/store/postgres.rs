//! The PostgreSQL adapter.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use serde::Deserialize;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{PgPool, Row};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::{
    Appended, COUNT, Committed, Entry, HistoryStore, LATEST, NewEntry, PoolUsage, StoreError,
    StoreFuture, Stored, Watcher, newest_created, outcomes,
};

/// History in PostgreSQL.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// A store over a lazily connecting pool: the service starts while the database is down
    /// and connects once it is back.
    pub fn connect_lazy(options: PgConnectOptions, pool_size: u32) -> Self {
        let pool = PgPoolOptions::new()
            .max_connections(pool_size)
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy_with(options);
        Self { pool }
    }

    /// Applies the migrations in `migrations/postgres`.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.pool)
            .await
    }

    /// One statement inserts the batch, bumps the total and returns both: a single round trip
    /// and one commit per batch. Entries whose ids are all new (the rule: a retry is rare) go
    /// in without a check per row; a batch with an id already stored fails that statement and
    /// goes again through the one that skips stored ids.
    async fn append_batch(&self, entries: &[NewEntry]) -> Result<Appended, StoreError> {
        // Rows go in sorted by append id, so two batches that share ids (a retry racing its
        // first attempt) lock them in the same order and cannot deadlock.
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_by(|&a, &b| entries[a].append_id.cmp(&entries[b].append_id));
        let column = |field: fn(&NewEntry) -> &str| -> Vec<&str> {
            order.iter().map(|&i| field(&entries[i])).collect()
        };
        let ids = column(|e| &e.append_id);
        let originals = column(|e| &e.original);
        let figalized = column(|e| &e.figalized);
        match self
            .insert_fresh(&order, entries, [&ids, &originals, &figalized])
            .await
        {
            Err(StoreError::Other(sqlx::Error::Database(err))) if err.is_unique_violation() => {
                self.insert_idempotent(entries, [&ids, &originals, &figalized])
                    .await
            }
            inserted => inserted,
        }
    }

    /// Inserts rows whose append ids are all new, given in `order` of their ids; fails with a
    /// unique violation, storing nothing, if one is not. Each row's id comes back in the
    /// order the rows went in, so no append id travels back.
    async fn insert_fresh(
        &self,
        order: &[usize],
        entries: &[NewEntry],
        columns: [&Vec<&str>; 3],
    ) -> Result<Appended, StoreError> {
        let row = self.insert(&FRESH, columns).await?;
        let total: i64 = row.try_get(0)?;
        let ids: Vec<i64> = row.try_get(1)?;
        if ids.len() != entries.len() {
            return Err(StoreError::Unexpected(
                "a fresh insert stored another number of rows",
            ));
        }
        let mut stored = vec![
            Stored {
                id: 0,
                created: true
            };
            entries.len()
        ];
        for (&position, &id) in order.iter().zip(&ids) {
            stored[position].id = id;
        }
        let newest = order.last().zip(ids.last()).map(|(&position, &id)| Entry {
            id,
            original: entries[position].original.clone(),
            figalized: entries[position].figalized.clone(),
        });
        Ok(Appended {
            stored,
            total,
            newest,
        })
    }

    /// Runs one of the insert statements over the batch's columns.
    async fn insert(
        &self,
        statement: &str,
        columns: [&Vec<&str>; 3],
    ) -> Result<sqlx::postgres::PgRow, sqlx::Error> {
        let [append_ids, originals, figalized] = columns;
        sqlx::query(statement)
            .bind(append_ids)
            .bind(originals)
            .bind(figalized)
            .fetch_one(&self.pool)
            .await
    }

    /// Inserts the rows whose append ids are new and looks up the ids of the others.
    async fn insert_idempotent(
        &self,
        entries: &[NewEntry],
        columns: [&Vec<&str>; 3],
    ) -> Result<Appended, StoreError> {
        let row = self.insert(&IDEMPOTENT, columns).await?;
        let total: i64 = row.try_get(0)?;
        let created_ids: Vec<String> = row.try_get(1)?;
        let created_rows: Vec<i64> = row.try_get(2)?;
        let created: HashMap<String, i64> = created_ids.into_iter().zip(created_rows).collect();
        let existing: HashMap<String, i64> = if created.len() < entries.len() {
            let missing: Vec<&str> = columns[0]
                .iter()
                .copied()
                .filter(|id| !created.contains_key(*id))
                .collect();
            sqlx::query("select append_id, id from history where append_id = any($1)")
                .bind(&missing)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .collect::<Result<_, sqlx::Error>>()?
        } else {
            HashMap::new()
        };
        Ok(Appended {
            stored: outcomes(entries, &created, &existing)?,
            total,
            newest: newest_created(entries, &created),
        })
    }
}

/// The insert of rows whose append ids are all new: answers the total and the new rows' ids in
/// the order the rows went in.
static FRESH: LazyLock<String> =
    LazyLock::new(|| statement("", "coalesce(array_agg(id order by id), '{}')"));

/// The insert that skips append ids already stored: answers the total and the new rows' append
/// ids and ids, in one order.
static IDEMPOTENT: LazyLock<String> = LazyLock::new(|| {
    statement(
        "on conflict (append_id) do nothing",
        "coalesce(array_agg(append_id), '{}'), coalesce(array_agg(id), '{}')",
    )
});

/// The insert of a batch: the rows in the order given (by append id), with `conflict` as
/// their `on conflict` clause; then the total is bumped and the newest row and the count are
/// announced on a channel every instance listens to (PostgreSQL delivers the notification at
/// commit, in commit order). Answers the total and `answers` over the new rows.
fn statement(conflict: &str, answers: &str) -> String {
    format!(
        "with inserted as (
             insert into history (append_id, original, figalized)
             select append_id, original, figalized
             from unnest($1::text[], $2::text[], $3::text[]) with ordinality
                 as t(append_id, original, figalized, position)
             order by position
             {conflict}
             returning append_id, id, original, figalized
         ),
         total as (
             update history_total set total = total + (select count(*) from inserted)
             returning total
         ),
         announced as (
             select pg_notify('history_committed', json_build_object(
                 'count', (select total from total),
                 'id', id, 'original', original, 'figalized', figalized)::text)
             from (select id, original, figalized from inserted order by id desc limit 1) newest
         )
         select (select total from total), {answers}, (select count(*) from announced)
         from inserted"
    )
}

impl HistoryStore for PostgresStore {
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
        "postgres"
    }

    fn pool_usage(&self) -> PoolUsage {
        PoolUsage::of(&self.pool)
    }

    fn watch_commits(
        &self,
        events: broadcast::Sender<Committed>,
        stopping: CancellationToken,
    ) -> Option<Watcher> {
        Some(Box::pin(forward_commits(self.clone(), events, stopping)))
    }
}

/// The channel commits are announced on.
const CHANNEL: &str = "history_committed";

/// A commit as announced by `pg_notify`.
#[derive(Deserialize)]
struct Announcement {
    count: i64,
    id: i64,
    original: String,
    figalized: String,
}

/// Forwards every instance's commits to `events` until `stopping`. After a lost connection,
/// announcements made meanwhile are gone: the current state is sent instead, so streams catch up.
async fn forward_commits(
    store: PostgresStore,
    events: broadcast::Sender<Committed>,
    stopping: CancellationToken,
) {
    loop {
        match listen(&store).await {
            Ok(mut listener) => loop {
                tokio::select! {
                    () = stopping.cancelled() => return,
                    received = listener.try_recv() => match received {
                        Ok(Some(notification)) => forward(notification.payload(), &events),
                        Ok(None) => {
                            tracing::warn!("commit announcements: connection lost and renewed");
                            resync(&store, &events).await;
                        }
                        Err(err) => {
                            tracing::warn!(error = %err, "commit announcements: connection lost");
                            break;
                        }
                    },
                }
            },
            Err(err) => tracing::warn!(error = %err, "commit announcements: cannot listen"),
        }
        tokio::select! {
            () = stopping.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => resync(&store, &events).await,
        }
    }
}

async fn listen(store: &PostgresStore) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(&store.pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

fn forward(payload: &str, events: &broadcast::Sender<Committed>) {
    match serde_json::from_str::<Announcement>(payload) {
        Ok(a) => {
            let _ = events.send(Committed {
                entry: Entry {
                    id: a.id,
                    original: a.original,
                    figalized: a.figalized,
                },
                count: a.count,
            });
        }
        Err(err) => tracing::warn!(error = %err, "commit announcement not understood"),
    }
}

/// Sends the current newest entry and count, when the database answers.
async fn resync(store: &PostgresStore, events: &broadcast::Sender<Committed>) {
    let (Ok(latest), Ok(count)) = (store.latest(1).await, store.count().await) else {
        return;
    };
    if let Some(entry) = latest.into_iter().next() {
        let _ = events.send(Committed { entry, count });
    }
}
