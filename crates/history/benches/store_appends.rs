//! Committed rows per second through the store, called as the batching writer calls it: the
//! embedded SQLite file (the one-process site's store) and PostgreSQL (the test server).
//!
//! Each run appends batches of `BATCH` rows with fresh append ids for `SECONDS` seconds and
//! counts the rows committed; the baseline, measured in the same run, alternating, is one row
//! per transaction (what a store without the batching writer does). The append ids are
//! time-ordered UUIDs (v7), as figalize makes them, or random ones with `IDS=v4` (figalize's
//! before: each batch then dirties a page of the id index per row). With `WRITERS` above one,
//! that many tasks append at once, as `HISTORY_WRITERS` makes the writer do. Prints every run,
//! the medians and the ratio, and one `store_appends <store> <rows/s> <baseline rows/s>` line
//! per store for `bench/harness.py`; asserts nothing.
//!
//! ```sh
//! cargo bench -p history --bench store_appends
//! RUNS=5 SECONDS=3 BATCH=512 WRITERS=2 IDS=v4 STORES=postgres cargo bench -p history --bench store_appends
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::testing::TestDatabase;
use history::store::{HistoryStore, NewEntry, PostgresStore, SqliteStore};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|arg| arg == "--bench") {
        return; // `cargo test --all-targets` builds benches; only `cargo bench` runs this one
    }
    let runs = setting("RUNS", 3);
    let seconds = Duration::from_secs(setting("SECONDS", 2));
    let batch = usize::try_from(setting("BATCH", 256)).expect("a batch size");
    let writers = setting("WRITERS", 1);
    let stores = std::env::var("STORES").unwrap_or_else(|_| "sqlite,postgres".into());
    println!(
        "store appends: batches of {batch}, {writers} writer(s), {} s per run, {runs} runs, \
         baseline one row per transaction",
        seconds.as_secs()
    );

    let folder = std::env::temp_dir().join(format!("store-appends-{}", std::process::id()));
    let mut databases = Vec::new();
    for kind in stores.split(',') {
        let mut batched = Vec::new();
        let mut single = Vec::new();
        for run in 1..=runs {
            for (mode, rows_per_call, results) in [
                ("batched", batch, &mut batched),
                ("baseline", 1, &mut single),
            ] {
                let store: Arc<dyn HistoryStore> = match kind {
                    "sqlite" => Arc::new(
                        SqliteStore::open(&folder.join(format!("{mode}-{run}.sqlite")))
                            .await
                            .expect("the SQLite store opens"),
                    ),
                    "postgres" => {
                        let db = TestDatabase::create().await;
                        let store =
                            PostgresStore::connect_lazy(db.url.parse().expect("a database URL"), 4);
                        store.migrate().await.expect("migrations apply");
                        databases.push(db);
                        Arc::new(store)
                    }
                    other => panic!("unknown store {other}: STORES takes sqlite and postgres"),
                };
                let rate = measure(&store, rows_per_call, writers, seconds).await;
                println!("  {kind:<8} {mode:<8} run {run}: {rate:>9.0} rows/s");
                results.push(rate);
            }
        }
        let (batched, single) = (median(batched), median(single));
        println!(
            "  {kind:<8} median: batched {batched:.0} rows/s, baseline {single:.0} rows/s, \
             ratio {:.1}x",
            batched / single
        );
        println!("store_appends {kind} {batched:.0} {single:.0}");
    }
    let _ = std::fs::remove_dir_all(&folder);
    drop(databases); // each test database is dropped with it
}

/// Rows committed per second by `writers` tasks appending `rows` at a time for `period`.
async fn measure(
    store: &Arc<dyn HistoryStore>,
    rows: usize,
    writers: u64,
    period: Duration,
) -> f64 {
    let ordered = std::env::var("IDS").map_or(true, |ids| ids != "v4");
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let store = Arc::clone(store);
            tokio::spawn(async move {
                let mut committed = 0u64;
                while started.elapsed() < period {
                    let entries: Vec<NewEntry> = (0..rows)
                        .map(|_| NewEntry {
                            append_id: if ordered {
                                uuid::Uuid::now_v7()
                            } else {
                                uuid::Uuid::new_v4()
                            }
                            .to_string(),
                            original: "красивая машина едет".into(),
                            figalized: "Фигасивая Фигашина Фигедет".into(),
                        })
                        .collect();
                    let appended = store.append(&entries).await.expect("the batch commits");
                    assert!(appended.stored.iter().all(|stored| stored.created));
                    committed += rows as u64;
                }
                committed
            })
        })
        .collect();
    let mut committed = 0;
    for task in tasks {
        committed += task.await.expect("an appender finishes");
    }
    #[allow(clippy::cast_precision_loss)]
    let rate = committed as f64 / started.elapsed().as_secs_f64();
    rate
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
