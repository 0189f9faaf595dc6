//! The batching writer: appends from many concurrent requests become one multi-row insert.
//!
//! Requests queue their entry and wait. Each writer task takes everything queued (up to the
//! batch size), optionally lingers a moment for more, inserts it in one transaction, and only
//! then answers each request. While one batch commits, the next one gathers, so batches grow
//! with load and stay at one row when it is quiet.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use prometheus::{Histogram, HistogramOpts, IntCounter};
use tokio::sync::{Mutex, broadcast, mpsc, oneshot};

pub use crate::store::Committed;
use crate::store::{HistoryStore, NewEntry, StoreError, Stored};

/// How the writer batches.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Most rows in one insert.
    pub max_batch: usize,
    /// How long to wait for more entries once the first has arrived (zero: take what is there).
    pub linger: Duration,
    /// Writer tasks, each committing its own batches: with more than one, one batch is
    /// inserted while another's commit is flushed.
    pub writers: usize,
    /// Entries that may wait for a writer before appends wait for room.
    pub queue: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            // Figalize's outbox sends 16 batches of 256 at once: they fit in one commit.
            max_batch: 4096,
            linger: Duration::ZERO,
            // Batches grow with load (the next one gathers while this one commits). PostgreSQL
            // takes two at once (see `Settings`); SQLite has one writing connection.
            writers: 1,
            queue: 16_384,
        }
    }
}

/// Longest a batch may take to commit before its appends are answered 503.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

struct Pending {
    entry: NewEntry,
    reply: oneshot::Sender<Outcome>,
}

/// Appends entries through the batching writer tasks.
#[derive(Clone)]
pub struct BatchWriter {
    queue: mpsc::Sender<Pending>,
}

/// The writer's metrics.
#[derive(Clone)]
pub struct WriterMetrics {
    /// Rows committed.
    pub appended: IntCounter,
    /// Appends whose id was already stored.
    pub duplicates: IntCounter,
    /// Batches that failed to commit.
    pub failed_batches: IntCounter,
    /// Rows per committed batch.
    pub batch_size: Histogram,
    /// Time to commit a batch.
    pub commit_seconds: Histogram,
}

impl WriterMetrics {
    /// Registers the metrics in `registry`.
    pub fn new(registry: &prometheus::Registry) -> Self {
        use common::metrics::register;
        let counter = |name: &str, help: &str| {
            register(registry, IntCounter::new(name, help).expect("valid metric"))
        };
        Self {
            appended: counter("figachechnaya_history_appends_total", "Entries committed"),
            duplicates: counter(
                "figachechnaya_history_duplicate_appends_total",
                "Appends whose id was already stored (retries)",
            ),
            failed_batches: counter(
                "figachechnaya_history_failed_batches_total",
                "Batches the database did not commit",
            ),
            batch_size: register(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "figachechnaya_history_batch_size_rows",
                        "Rows per committed batch",
                    )
                    .buckets(vec![
                        1.0, 4.0, 16.0, 64.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
                    ]),
                )
                .expect("valid metric"),
            ),
            commit_seconds: register(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "figachechnaya_history_batch_commit_duration_seconds",
                        "Time to insert and commit one batch",
                    )
                    .buckets(common::metrics::LATENCY_BUCKETS.to_vec()),
                )
                .expect("valid metric"),
            ),
        }
    }
}

impl BatchWriter {
    /// Starts the writer tasks on `process`; they end once every `BatchWriter` clone is gone and
    /// the queue is empty. With `events`, each commit is published there; without, the store
    /// reports commits itself (see [`HistoryStore::watch_commits`]).
    pub fn start(
        process: &common::app::Process,
        store: &Arc<dyn HistoryStore>,
        events: Option<&broadcast::Sender<Committed>>,
        metrics: &WriterMetrics,
        config: WriterConfig,
    ) -> Self {
        let (queue, receiver) = mpsc::channel(config.queue.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        let publisher = events.map(|events| Publisher {
            events: events.clone(),
            published: Arc::new(AtomicI64::new(i64::MIN)),
        });
        for _ in 0..config.writers.max(1) {
            process.spawn(run_writer(
                Arc::clone(&receiver),
                Arc::clone(store),
                publisher.clone(),
                metrics.clone(),
                config,
            ));
        }
        Self { queue }
    }

    /// Appends one entry; answers once its batch is committed.
    pub async fn append(&self, entry: NewEntry) -> Result<Stored, Arc<StoreError>> {
        match self.submit(entry).await {
            Ok(answer) => outcome(answer.await),
            Err(stopped) => Err(stopped),
        }
    }

    /// Appends several entries; answers, in their order, once each one's batch is committed.
    /// They queue together, so they mostly share one commit.
    pub async fn append_all(&self, entries: Vec<NewEntry>) -> Vec<Result<Stored, Arc<StoreError>>> {
        let mut answers = Vec::with_capacity(entries.len());
        for entry in entries {
            answers.push(self.submit(entry).await);
        }
        let mut results = Vec::with_capacity(answers.len());
        for answer in answers {
            results.push(match answer {
                Ok(answer) => outcome(answer.await),
                Err(stopped) => Err(stopped),
            });
        }
        results
    }

    /// Queues an entry for a writer; the receiver gets its outcome.
    async fn submit(&self, entry: NewEntry) -> Result<Reply, Arc<StoreError>> {
        let (reply, answer) = oneshot::channel();
        match self.queue.send(Pending { entry, reply }).await {
            Ok(()) => Ok(answer),
            Err(_) => Err(Arc::new(StoreError::Unexpected("the writer has stopped"))),
        }
    }
}

type Outcome = Result<Stored, Arc<StoreError>>;
type Reply = oneshot::Receiver<Outcome>;

fn outcome(answer: Result<Outcome, oneshot::error::RecvError>) -> Outcome {
    answer.unwrap_or_else(|_| {
        Err(Arc::new(StoreError::Unexpected(
            "the writer dropped an append",
        )))
    })
}

/// Publishes the writers' commits to the live stream, newest only: of two writers, the one
/// whose commit came second may publish first, and the stream must not step back after it.
#[derive(Clone)]
struct Publisher {
    events: broadcast::Sender<Committed>,
    /// The largest total published.
    published: Arc<AtomicI64>,
}

impl Publisher {
    fn publish(&self, committed: Committed) {
        if self.published.fetch_max(committed.count, Ordering::AcqRel) < committed.count {
            // Nobody listening is fine.
            let _ = self.events.send(committed);
        }
    }
}

async fn run_writer(
    receiver: Arc<Mutex<mpsc::Receiver<Pending>>>,
    store: Arc<dyn HistoryStore>,
    publisher: Option<Publisher>,
    metrics: WriterMetrics,
    config: WriterConfig,
) {
    let mut batch = Vec::with_capacity(config.max_batch);
    loop {
        {
            let mut receiver = receiver.lock().await;
            if receiver.recv_many(&mut batch, config.max_batch).await == 0 {
                return; // every sender is gone and the queue is empty
            }
            if !config.linger.is_zero() && batch.len() < config.max_batch {
                let deadline = tokio::time::Instant::now() + config.linger;
                while batch.len() < config.max_batch {
                    let room = config.max_batch - batch.len();
                    match tokio::time::timeout_at(deadline, receiver.recv_many(&mut batch, room))
                        .await
                    {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            }
        }
        commit(&*store, &mut batch, publisher.as_ref(), &metrics).await;
    }
}

async fn commit(
    store: &dyn HistoryStore,
    batch: &mut Vec<Pending>,
    publisher: Option<&Publisher>,
    metrics: &WriterMetrics,
) {
    let (entries, replies): (Vec<NewEntry>, Vec<_>) =
        batch.drain(..).map(|p| (p.entry, p.reply)).unzip();
    let started = Instant::now();
    // A database that silently stops answering must not stall the writer for a TCP timeout.
    let result = tokio::time::timeout(COMMIT_TIMEOUT, store.append(&entries))
        .await
        .unwrap_or(Err(StoreError::Timeout(COMMIT_TIMEOUT)));
    metrics
        .commit_seconds
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok(appended) => {
            #[allow(clippy::cast_precision_loss)]
            metrics.batch_size.observe(entries.len() as f64);
            // The stream hears of the commit before the appenders do, so a page never learns
            // of an entry later than the client that made it.
            if let (Some(publisher), Some(entry)) = (publisher, appended.newest) {
                publisher.publish(Committed {
                    entry,
                    count: appended.total,
                });
            }
            for (reply, stored) in replies.into_iter().zip(appended.stored) {
                if stored.created {
                    metrics.appended.inc();
                } else {
                    metrics.duplicates.inc();
                }
                let _ = reply.send(Ok(stored));
            }
        }
        Err(err) => {
            metrics.failed_batches.inc();
            tracing::warn!(error = %err, rows = entries.len(), "batch not committed");
            let err = Arc::new(err);
            for reply in replies {
                let _ = reply.send(Err(Arc::clone(&err)));
            }
        }
    }
}

#[cfg(test)]
mod tests;
