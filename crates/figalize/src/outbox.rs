//! The outbox: every figalization's history entry waits here until history has committed it.
//!
//! Pushing is a short, non-blocking step of the request; a background task delivers what waits
//! in batches (one request carries up to 256 entries, a few go at once), retries with
//! exponential backoff and jitter while history (or its database) is down, and keeps going until
//! the outbox is empty. A full outbox refuses new entries, so the request is answered 503 and
//! nothing it accepted is ever dropped; only an entry history rejects as invalid is given up.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec, IntGauge, Registry};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use common::append_batch;

use crate::history::{BatchDelivery, Delivery, HistoryClient};

/// One history entry to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Append {
    /// Idempotency key: a retried delivery is stored once.
    pub id: String,
    /// The phrase as typed (normalised).
    pub original: String,
    /// The transformed phrase.
    pub figalized: String,
    /// The request that produced it, for following it in the logs.
    pub request_id: Option<String>,
}

/// The outbox's metrics.
#[derive(Clone)]
pub struct OutboxMetrics {
    queued: IntCounter,
    delivered: IntCounter,
    retried: IntCounter,
    dropped: IntCounterVec,
    refused: IntCounter,
    depth: IntGauge,
    capacity: IntGauge,
}

impl OutboxMetrics {
    /// Registers the metrics in `registry`.
    pub fn new(registry: &Registry) -> Self {
        use common::metrics::labelled_counter;
        let counter = |name: &str, help: &str| common::metrics::counter(registry, name, help);
        let dropped = labelled_counter(
            registry,
            "figachechnaya_figalize_history_outbox_dropped_total",
            "History entries given up on: `rejected` (history refused the entry as invalid)",
            "reason",
            ["rejected"],
        );
        Self {
            queued: counter(
                "figachechnaya_figalize_history_outbox_queued_total",
                "History entries put in the outbox",
            ),
            delivered: counter(
                "figachechnaya_figalize_history_outbox_delivered_total",
                "History entries history has committed",
            ),
            retried: counter(
                "figachechnaya_figalize_history_outbox_retried_total",
                "Delivery attempts that failed and will be retried",
            ),
            dropped,
            refused: counter(
                "figachechnaya_figalize_history_outbox_refused_total",
                "Figalizations answered 503 because the history outbox was full (OUTBOX_CAPACITY)",
            ),
            depth: common::metrics::gauge(
                registry,
                "figachechnaya_figalize_history_outbox_depth",
                "History entries waiting for delivery",
            ),
            capacity: common::metrics::gauge(
                registry,
                "figachechnaya_figalize_history_outbox_capacity",
                "The most history entries the outbox keeps (OUTBOX_CAPACITY)",
            ),
        }
    }
}

/// A bounded queue of entries waiting for delivery.
pub struct Outbox {
    queue: Mutex<VecDeque<Append>>,
    capacity: usize,
    /// Whether the last push was refused: the transitions are logged, not every refusal.
    full: AtomicBool,
    wake: Notify,
    metrics: OutboxMetrics,
}

/// The outbox had no room: the entry was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the history outbox is full")]
pub struct OutboxFull;

impl Drop for Outbox {
    /// The last word on entries that could not be delivered before the process ended.
    fn drop(&mut self) {
        let left = self.queue.get_mut().map_or(0, |queue| queue.len());
        if left > 0 {
            tracing::error!(
                undelivered = left,
                "exiting with history entries never delivered"
            );
        }
    }
}

impl Outbox {
    /// An empty outbox holding at most `capacity` entries.
    pub fn new(capacity: usize, metrics: OutboxMetrics) -> Self {
        let capacity = capacity.max(1);
        metrics
            .capacity
            .set(i64::try_from(capacity).unwrap_or(i64::MAX));
        Self {
            queue: Mutex::new(VecDeque::new()),
            capacity,
            full: AtomicBool::new(false),
            wake: Notify::new(),
            metrics,
        }
    }

    /// Queues an entry, or refuses it when the outbox is full (counted; the change between
    /// taking and refusing is logged).
    pub fn push(&self, append: Append) -> Result<(), OutboxFull> {
        let mut queue = self.queue.lock().expect("outbox lock");
        if queue.len() >= self.capacity {
            drop(queue);
            self.metrics.refused.inc();
            if !self.full.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    capacity = self.capacity,
                    "history outbox full: figalizations are refused until history takes entries again"
                );
            }
            return Err(OutboxFull);
        }
        queue.push_back(append);
        self.metrics.depth.set(gauge_value(queue.len()));
        drop(queue);
        self.metrics.queued.inc();
        if self.full.swap(false, Ordering::Relaxed) {
            tracing::info!("history outbox has room again: figalizations are taken");
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Entries waiting now.
    pub fn len(&self) -> usize {
        self.queue.lock().expect("outbox lock").len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the oldest entries for one batch: at most `max` of them and, past the first,
    /// about `max_bytes` of JSON.
    fn take(&self, max: usize, max_bytes: usize) -> Vec<Append> {
        let mut queue = self.queue.lock().expect("outbox lock");
        let mut bytes = 0;
        let count = queue
            .iter()
            .take(max)
            .take_while(|append| {
                bytes += encoded_size(append);
                bytes <= max_bytes
            })
            .count()
            .max(1)
            .min(queue.len());
        let taken: Vec<_> = queue.drain(..count).collect();
        self.metrics.depth.set(gauge_value(queue.len()));
        taken
    }

    /// Puts undelivered entries back at the front, oldest first, as they were. They were
    /// accepted, so they go back even past the capacity: only new entries are refused.
    fn put_back(&self, failed: Vec<Append>) {
        let mut queue = self.queue.lock().expect("outbox lock");
        for append in failed.into_iter().rev() {
            queue.push_front(append);
        }
        self.metrics.depth.set(gauge_value(queue.len()));
    }
}

/// About how many bytes an entry adds to a batch's JSON: its strings and the envelope.
fn encoded_size(append: &Append) -> usize {
    const ENVELOPE: usize = 64;
    append.id.len()
        + append.original.len()
        + append.figalized.len()
        + append.request_id.as_ref().map_or(0, String::len)
        + ENVELOPE
}

fn gauge_value(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

/// How the delivery task sends and retries.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryConfig {
    /// Batches sent at once.
    pub concurrency: usize,
    /// Most entries in one batch (at most [`append_batch::MAX_ENTRIES`]).
    pub batch_entries: usize,
    /// About the largest batch body, in bytes: history's request size limit, less headroom.
    pub batch_bytes: usize,
    /// First retry delay; doubles on each failed round, up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
}

/// Delivers the outbox until `drained` is cancelled (no request can add to it any more) and
/// the outbox is empty.
pub async fn deliver(
    outbox: Arc<Outbox>,
    client: HistoryClient,
    config: DeliveryConfig,
    drained: CancellationToken,
) {
    let batch_entries = config.batch_entries.clamp(1, append_batch::MAX_ENTRIES);
    let mut failures: u32 = 0;
    loop {
        let batches: Vec<Vec<Append>> = (0..config.concurrency.max(1))
            .map_while(|_| {
                let batch = outbox.take(batch_entries, config.batch_bytes);
                (!batch.is_empty()).then_some(batch)
            })
            .collect();
        if batches.is_empty() {
            if drained.is_cancelled() {
                return;
            }
            tokio::select! {
                () = outbox.wake.notified() => {}
                () = drained.cancelled() => {}
            }
            continue;
        }
        let sent: usize = batches.iter().map(Vec::len).sum();
        let failed = send(&outbox, &client, batches).await;
        if failed.is_empty() {
            failures = 0;
            continue;
        }
        // Back off further only when nothing got through: one entry history keeps refusing
        // must not slow down the rest.
        failures = if failed.len() < sent {
            1
        } else {
            failures.saturating_add(1)
        };
        outbox.metrics.retried.inc_by(failed.len() as u64);
        outbox.put_back(failed);
        let delay = backoff(config, failures);
        if drained.is_cancelled() {
            tracing::warn!(waiting = outbox.len(), retry_in = ?delay, "stopping with undelivered history entries");
        }
        tokio::time::sleep(delay).await;
    }
}

/// Sends the batches concurrently; returns what should be retried, in the order it came.
async fn send(outbox: &Outbox, client: &HistoryClient, batches: Vec<Vec<Append>>) -> Vec<Append> {
    let mut sending = tokio::task::JoinSet::new();
    for (position, batch) in batches.iter().enumerate() {
        let client = client.clone();
        let batch = batch.clone();
        sending.spawn(async move { (position, attempt(&client, &batch).await) });
    }
    let mut outcomes = vec![None; batches.len()];
    while let Some(joined) = sending.join_next().await {
        // A delivery that panicked is retried like any other failure.
        if let Ok((position, deliveries)) = joined {
            outcomes[position] = Some(deliveries);
        }
    }
    let mut failed = Vec::new();
    for (batch, deliveries) in batches.into_iter().zip(outcomes) {
        let deliveries = deliveries.unwrap_or_else(|| {
            vec![Delivery::Retry("the delivery task failed".into()); batch.len()]
        });
        settle(outbox, batch, deliveries, &mut failed);
    }
    failed
}

/// One attempt at a batch: what became of each entry.
async fn attempt(client: &HistoryClient, batch: &[Append]) -> Vec<Delivery> {
    // One entry goes as a plain append: the same request, a smaller answer to read.
    if let [append] = batch {
        return vec![client.append(append).await];
    }
    match client.append_batch(batch).await {
        BatchDelivery::Each(deliveries) => deliveries,
        BatchDelivery::Retry(reason) => vec![Delivery::Retry(reason); batch.len()],
        BatchDelivery::OneByOne(reason) => {
            tracing::warn!(
                entries = batch.len(),
                reason,
                "history would not take a batch; sending its entries one by one"
            );
            let mut sending = tokio::task::JoinSet::new();
            for (position, append) in batch.iter().enumerate() {
                let client = client.clone();
                let append = append.clone();
                sending.spawn(async move { (position, client.append(&append).await) });
            }
            let mut deliveries =
                vec![Delivery::Retry("the delivery task failed".into()); batch.len()];
            while let Some(joined) = sending.join_next().await {
                if let Ok((position, delivery)) = joined {
                    deliveries[position] = delivery;
                }
            }
            deliveries
        }
    }
}

/// Counts and logs what became of each entry; what should be retried goes to `failed`.
fn settle(
    outbox: &Outbox,
    batch: Vec<Append>,
    deliveries: Vec<Delivery>,
    failed: &mut Vec<Append>,
) {
    for (append, delivery) in batch.into_iter().zip(deliveries) {
        match delivery {
            Delivery::Stored => outbox.metrics.delivered.inc(),
            Delivery::Rejected(reason) => {
                outbox
                    .metrics
                    .dropped
                    .with_label_values(&["rejected"])
                    .inc();
                tracing::error!(
                    id = append.id,
                    request_id = append.request_id.as_deref().unwrap_or("-"),
                    reason,
                    "history refused an entry; dropped"
                );
            }
            Delivery::Retry(reason) => {
                tracing::debug!(
                    id = append.id,
                    request_id = append.request_id.as_deref().unwrap_or("-"),
                    reason,
                    "history delivery failed; will retry"
                );
                failed.push(append);
            }
        }
    }
}

/// Exponential backoff with jitter: a random delay in the upper half of the current step, so
/// many instances recovering together do not retry in lockstep.
fn backoff(config: DeliveryConfig, failures: u32) -> Duration {
    let step = config
        .min_backoff
        .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1)))
        .min(config.max_backoff);
    step.mul_f64(0.5 + fastrand::f64() / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(n: u32) -> Append {
        Append {
            id: n.to_string(),
            original: "велосипед".into(),
            figalized: "Фигосипед".into(),
            request_id: None,
        }
    }

    #[test]
    fn a_full_outbox_refuses_new_entries_and_keeps_the_old_ones() {
        let registry = Registry::new();
        let outbox = Outbox::new(2, OutboxMetrics::new(&registry));
        assert_eq!(outbox.push(append(0)), Ok(()));
        assert_eq!(outbox.push(append(1)), Ok(()));
        assert_eq!(outbox.push(append(2)), Err(OutboxFull));
        assert_eq!(outbox.metrics.refused.get(), 1);
        assert_eq!(outbox.metrics.queued.get(), 2);
        assert_eq!(outbox.metrics.depth.get(), 2);
        assert_eq!(outbox.take(10, usize::MAX), vec![append(0), append(1)]);
        assert_eq!(outbox.metrics.depth.get(), 0);
        // Room again: taken.
        assert_eq!(outbox.push(append(3)), Ok(()));
    }

    #[test]
    fn entries_put_back_keep_their_place_at_the_front_even_past_the_capacity() {
        let outbox = Outbox::new(3, OutboxMetrics::new(&Registry::new()));
        for n in 0..3 {
            outbox.push(append(n)).unwrap();
        }
        let first = outbox.take(2, usize::MAX);
        outbox.push(append(3)).unwrap();
        outbox.push(append(4)).unwrap();
        outbox.put_back(first);
        assert_eq!(outbox.len(), 5);
        assert_eq!(outbox.push(append(5)), Err(OutboxFull));
        assert_eq!(
            outbox.take(10, usize::MAX),
            (0..5).map(append).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_batch_stops_at_its_count_or_its_size_but_takes_at_least_one() {
        let outbox = Outbox::new(100, OutboxMetrics::new(&Registry::new()));
        for n in 0..10 {
            outbox.push(append(n)).unwrap();
        }
        let one = encoded_size(&append(0));
        assert_eq!(
            outbox.take(3, usize::MAX),
            (0..3).map(append).collect::<Vec<_>>()
        );
        assert_eq!(outbox.take(10, 2 * one), vec![append(3), append(4)]);
        assert_eq!(outbox.take(10, 1), vec![append(5)]);
        assert_eq!(outbox.take(10, usize::MAX).len(), 4);
        assert!(outbox.take(10, usize::MAX).is_empty());
    }

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        let config = DeliveryConfig {
            concurrency: 1,
            batch_entries: 1,
            batch_bytes: 1,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        };
        for (failures, step) in [(1, 100), (2, 200), (4, 800), (30, 5000)] {
            let delay = backoff(config, failures);
            let step = Duration::from_millis(step);
            assert!(delay >= step / 2 && delay <= step, "{failures}: {delay:?}");
        }
    }
}
