//! One behavioural suite, run against both store adapters.

use std::str::FromStr;
use std::sync::Arc;

use common::testing::{TempDir, TestDatabase};
use history::store::{HistoryStore, NewEntry, PostgresStore, SqliteStore};

fn entry(id: &str, original: &str, figalized: &str) -> NewEntry {
    NewEntry {
        append_id: id.into(),
        original: original.into(),
        figalized: figalized.into(),
    }
}

async fn appends_are_read_back_newest_first(store: Arc<dyn HistoryStore>) {
    assert!(store.latest(10).await.unwrap().is_empty());
    let first = store
        .append(&[entry("a", "велосипед", "Фигосипед")])
        .await
        .unwrap();
    assert_eq!(first.total, 1);
    assert!(first.stored[0].created);
    let second = store
        .append(&[
            entry("b", "каюк", "Фигаюк"),
            entry("c", "тихий дон", "Фигихий Фигон"),
        ])
        .await
        .unwrap();
    assert_eq!(second.total, 3);
    assert_eq!(second.newest.as_ref().unwrap().original, "тихий дон");

    let latest = store.latest(2).await.unwrap();
    let originals: Vec<_> = latest.iter().map(|e| e.original.as_str()).collect();
    assert_eq!(originals, ["тихий дон", "каюк"]);
    assert!(latest[0].id > latest[1].id);
    assert_eq!(store.latest(1).await.unwrap()[0].figalized, "Фигихий Фигон");
}

async fn a_repeated_append_id_is_stored_once(store: Arc<dyn HistoryStore>) {
    let first = store
        .append(&[entry("same", "велосипед", "Фигосипед")])
        .await
        .unwrap();
    let again = store
        .append(&[
            entry("same", "велосипед", "Фигосипед"),
            entry("other", "каюк", "Фигаюк"),
        ])
        .await
        .unwrap();
    assert!(!again.stored[0].created);
    assert_eq!(again.stored[0].id, first.stored[0].id);
    assert!(again.stored[1].created);

    // The same id twice in one batch: one row, both answered with it.
    let twice = store
        .append(&[
            entry("dup", "тест", "Фигест"),
            entry("dup", "тест", "Фигест"),
        ])
        .await
        .unwrap();
    assert!(twice.stored[0].created);
    assert!(!twice.stored[1].created);
    assert_eq!(twice.stored[0].id, twice.stored[1].id);

    assert_eq!(store.count().await.unwrap(), 3);
    assert_eq!(store.latest(10).await.unwrap().len(), 3);
}

async fn the_count_follows_only_new_rows(store: Arc<dyn HistoryStore>) {
    assert_eq!(store.count().await.unwrap(), 0);
    let batch: Vec<_> = (0..700)
        .map(|n| entry(&format!("id-{n}"), "велосипед", "Фигосипед"))
        .collect();
    assert_eq!(store.append(&batch).await.unwrap().total, 700);
    assert_eq!(store.append(&batch[..10]).await.unwrap().total, 700);
    assert_eq!(store.count().await.unwrap(), 700);
    store.ping().await.unwrap();
}

/// Runs each scenario on a fresh PostgreSQL database and on a fresh SQLite file.
macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let db = common::testing::TestDatabase::create().await;
                    super::$scenario(super::postgres(&db).await).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let dir = common::testing::TempDir::new();
                    super::$scenario(super::sqlite(&dir).await).await;
                }
            )*
        }
    };
}

on_both_stores!(
    appends_are_read_back_newest_first,
    a_repeated_append_id_is_stored_once,
    the_count_follows_only_new_rows,
);

async fn postgres(db: &TestDatabase) -> Arc<dyn HistoryStore> {
    let options = sqlx::postgres::PgConnectOptions::from_str(&db.url).unwrap();
    let store = PostgresStore::connect_lazy(options, 4);
    store.migrate().await.unwrap();
    Arc::new(store)
}

async fn sqlite(dir: &TempDir) -> Arc<dyn HistoryStore> {
    Arc::new(
        SqliteStore::open(&dir.path().join("history.sqlite3"))
            .await
            .unwrap(),
    )
}
