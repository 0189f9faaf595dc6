//! The outbox: every figalization's history entry waits here until history has committed it.
//!
//! Pushing is a short, non-blocking step of the request; a background task delivers in batches
//! of concurrent requests, retries with exponential backoff and jitter while history (or its
//! database) is down, and keeps going until the outbox is empty. Only when the outbox is full
//! is the oldest entry dropped, and each drop is counted and logged.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec, IntGauge, Registry};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::history::{Delivery, HistoryClient};

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
            "History entries given up on: `overflow` (outbox full), `rejected` (history refused it)",
            "reason",
            ["overflow", "rejected"],
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
    wake: Notify,
    metrics: OutboxMetrics,
}

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
            wake: Notify::new(),
            metrics,
        }
    }

    /// Queues an entry; when full, drops the oldest one (counted and logged).
    pub fn push(&self, append: Append) {
        let mut queue = self.queue.lock().expect("outbox lock");
        queue.push_back(append);
        self.metrics.queued.inc();
        self.trim(&mut queue);
        drop(queue);
        self.wake.notify_one();
    }

    /// Entries waiting now.
    pub fn len(&self) -> usize {
        self.queue.lock().expect("outbox lock").len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn take(&self, max: usize) -> Vec<Append> {
        let mut queue = self.queue.lock().expect("outbox lock");
        let count = max.min(queue.len());
        let taken: Vec<_> = queue.drain(..count).collect();
        self.metrics.depth.set(gauge_value(queue.len()));
        taken
    }

    /// Puts undelivered entries back at the front, oldest first, as they were.
    fn put_back(&self, failed: Vec<Append>) {
        let mut queue = self.queue.lock().expect("outbox lock");
        for append in failed.into_iter().rev() {
            queue.push_front(append);
        }
        self.trim(&mut queue);
    }

    fn trim(&self, queue: &mut VecDeque<Append>) {
        while queue.len() > self.capacity {
            if let Some(oldest) = queue.pop_front() {
                self.metrics.dropped.with_label_values(&["overflow"]).inc();
                tracing::error!(
                    id = oldest.id,
                    request_id = oldest.request_id.as_deref().unwrap_or("-"),
                    capacity = self.capacity,
                    "history outbox full: oldest entry dropped"
                );
            }
        }
        self.metrics.depth.set(gauge_value(queue.len()));
    }
}

fn gauge_value(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

/// How the delivery task retries.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryConfig {
    /// Entries sent at once.
    pub concurrency: usize,
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
    let mut failures: u32 = 0;
    loop {
        let batch = outbox.take(config.concurrency);
        if batch.is_empty() {
            if drained.is_cancelled() {
                return;
            }
            tokio::select! {
                () = outbox.wake.notified() => {}
                () = drained.cancelled() => {}
            }
            continue;
        }
        let sent = batch.len();
        let failed = send(&outbox, &client, batch).await;
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

/// Sends a batch concurrently; returns what should be retried, in the order it came.
async fn send(outbox: &Outbox, client: &HistoryClient, batch: Vec<Append>) -> Vec<Append> {
    let mut sending = tokio::task::JoinSet::new();
    for (position, append) in batch.iter().enumerate() {
        let client = client.clone();
        let append = append.clone();
        sending.spawn(async move { (position, client.append(&append).await) });
    }
    let mut outcomes = vec![None; batch.len()];
    while let Some(joined) = sending.join_next().await {
        // A delivery that panicked is retried like any other failure.
        if let Ok((position, delivery)) = joined {
            outcomes[position] = Some(delivery);
        }
    }
    let mut failed = Vec::new();
    for (position, (append, delivery)) in batch.into_iter().zip(outcomes).enumerate() {
        let delivery =
            delivery.unwrap_or_else(|| Delivery::Retry("the delivery task failed".into()));
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
                failed.push((position, append));
            }
        }
    }
    failed.into_iter().map(|(_, append)| append).collect()
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
    fn a_full_outbox_drops_the_oldest_and_counts_it() {
        let registry = Registry::new();
        let outbox = Outbox::new(2, OutboxMetrics::new(&registry));
        for n in 0..3 {
            outbox.push(append(n));
        }
        assert_eq!(outbox.take(10), vec![append(1), append(2)]);
        assert_eq!(
            outbox
                .metrics
                .dropped
                .with_label_values(&["overflow"])
                .get(),
            1
        );
        assert_eq!(outbox.metrics.queued.get(), 3);
        assert_eq!(outbox.metrics.depth.get(), 0);
    }

    #[test]
    fn entries_put_back_keep_their_place_at_the_front() {
        let outbox = Outbox::new(10, OutboxMetrics::new(&Registry::new()));
        for n in 0..4 {
            outbox.push(append(n));
        }
        let first = outbox.take(2);
        outbox.put_back(first);
        assert_eq!(outbox.take(10), (0..4).map(append).collect::<Vec<_>>());
    }

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        let config = DeliveryConfig {
            concurrency: 1,
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
