//! The outbox: every figalization's history entry waits here until history has committed it.
//!
//! The journal pushes each entry once it is on disk; a background task delivers what waits in
//! batches (one request carries up to 256 entries, a few go at once), retries with exponential
//! backoff and jitter while history (or its database) is down, and keeps going until the
//! outbox is empty. An entry history has committed settles its half of the journal's record.
//! A full outbox admits no new figalization, so the request is answered 503 and nothing
//! accepted is ever dropped; only an entry history rejects as invalid is given up.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec, IntGauge, Registry};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use common::append_batch;
use common::limits::Summary;

use crate::history::{BatchDelivery, Delivery, HistoryClient};
use crate::journal::{Entry, Journal, Ticket};

/// One history entry to deliver, and the journal record it settles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Append {
    /// The entry; its id makes a retried delivery stored once.
    pub entry: Entry,
    /// Its record in the journal.
    pub ticket: Ticket,
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
    journal: Arc<Journal>,
    /// Whether the last push was refused: the transitions are logged, not every refusal, and
    /// at most every ten seconds each, however often the outbox fills and empties.
    full: AtomicBool,
    full_log: Summary,
    room_log: Summary,
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
                "exiting with history entries not delivered: the journal keeps them for the next start"
            );
        }
    }
}

impl Outbox {
    /// An empty outbox holding at most `capacity` entries, settling delivered ones in
    /// `journal`.
    pub fn new(capacity: usize, journal: Arc<Journal>, metrics: OutboxMetrics) -> Self {
        let capacity = capacity.max(1);
        metrics
            .capacity
            .set(i64::try_from(capacity).unwrap_or(i64::MAX));
        Self {
            queue: Mutex::new(VecDeque::new()),
            capacity,
            journal,
            full: AtomicBool::new(false),
            full_log: Summary::default(),
            room_log: Summary::default(),
            wake: Notify::new(),
            metrics,
        }
    }

    /// Whether a new figalization may be accepted: refused (counted; the change between taking
    /// and refusing is logged) while the outbox holds its capacity.
    pub fn admit(&self) -> Result<(), OutboxFull> {
        if self.len() >= self.capacity {
            self.metrics.refused.inc();
            if !self.full.swap(true, Ordering::Relaxed)
                && let Some(times) = self.full_log.tally()
            {
                tracing::error!(
                    capacity = self.capacity,
                    times,
                    "history outbox full: figalizations are refused until history takes entries again"
                );
            }
            return Err(OutboxFull);
        }
        // Read first: a swap on every request would write the shared line each time.
        if self.full.load(Ordering::Relaxed)
            && self.full.swap(false, Ordering::Relaxed)
            && self.room_log.tally().is_some()
        {
            tracing::info!("history outbox has room again: figalizations are taken");
        }
        Ok(())
    }

    /// Queues the entries of accepted figalizations. They are on disk already, so they are
    /// taken even past the capacity (by the few admitted while the outbox filled).
    pub fn push(&self, appends: impl IntoIterator<Item = Append>) {
        let mut queue = self.queue.lock().expect("outbox lock");
        let before = queue.len();
        queue.extend(appends);
        let added = queue.len() - before;
        self.metrics.depth.set(gauge_value(queue.len()));
        drop(queue);
        self.metrics.queued.inc_by(added as u64);
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
    let entry = &append.entry;
    entry.id.len()
        + entry.original.len()
        + entry.figalized.len()
        + entry.request_id.as_ref().map_or(0, String::len)
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
            if !wait_for_work(&outbox.wake, &drained).await {
                return;
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

/// Waits until `wake` is notified (work may wait) or `drained` is cancelled; false when
/// `drained` already was: no request can add work any more, and the caller, idle, is done.
pub(crate) async fn wait_for_work(wake: &Notify, drained: &CancellationToken) -> bool {
    if drained.is_cancelled() {
        return false;
    }
    tokio::select! {
        () = wake.notified() => {}
        () = drained.cancelled() => {}
    }
    true
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
fn attempt<'a>(
    client: &'a HistoryClient,
    batch: &'a [Append],
) -> Pin<Box<dyn Future<Output = Vec<Delivery>> + Send + 'a>> {
    Box::pin(async move {
        // One entry goes as a plain append: the same request, a smaller answer to read.
        if let [append] = batch {
            return vec![client.append(append).await];
        }
        match client.append_batch(batch).await {
            BatchDelivery::Each(deliveries) => deliveries,
            BatchDelivery::Retry(reason) => vec![Delivery::Retry(reason); batch.len()],
            BatchDelivery::TooLarge(reason) => {
                tracing::warn!(
                    entries = batch.len(),
                    reason,
                    "history would not take a batch this large; sending it in halves \
                     (OUTBOX_BATCH_BYTES is over history's MAX_INTERNAL_BODY_BYTES)"
                );
                let (first, second) = batch.split_at(batch.len() / 2);
                let (mut deliveries, rest) =
                    tokio::join!(attempt(client, first), attempt(client, second));
                deliveries.extend(rest);
                deliveries
            }
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
    })
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
            Delivery::Stored => {
                outbox.metrics.delivered.inc();
                outbox.journal.settle(append.ticket);
            }
            Delivery::Rejected(reason) => {
                outbox.journal.settle(append.ticket);
                outbox
                    .metrics
                    .dropped
                    .with_label_values(&["rejected"])
                    .inc();
                tracing::error!(
                    id = append.entry.id,
                    request_id = append.entry.request_id.as_deref().unwrap_or("-"),
                    reason,
                    "history refused an entry; dropped"
                );
            }
            Delivery::Retry(reason) => {
                tracing::debug!(
                    id = append.entry.id,
                    request_id = append.entry.request_id.as_deref().unwrap_or("-"),
                    reason,
                    "history delivery failed; will retry"
                );
                failed.push(append);
            }
        }
    }
}

/// Exponential backoff with jitter, by the delivery's settings.
fn backoff(config: DeliveryConfig, failures: u32) -> Duration {
    backoff_delay(config.min_backoff, config.max_backoff, failures)
}

/// Exponential backoff with jitter: a random delay in the upper half of the current step (`min`
/// doubled per failure after the first, up to `max`), so many instances recovering together do
/// not retry in lockstep.
pub(crate) fn backoff_delay(min: Duration, max: Duration, failures: u32) -> Duration {
    let step = min
        .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1)))
        .min(max);
    step.mul_f64(0.5 + fastrand::f64() / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{JournalConfig, JournalMetrics};
    use common::testing::TempDir;

    fn append(n: u32) -> Append {
        Append {
            entry: Entry {
                id: n.to_string(),
                original: "велосипед".into(),
                figalized: "Фигосипед".into(),
                request_id: None,
            },
            ticket: Ticket::of_segment(1),
        }
    }

    /// An outbox of `capacity` over a journal in a folder of its own.
    fn outbox(capacity: usize) -> (Outbox, TempDir) {
        let dir = TempDir::new();
        let registry = Registry::new();
        let (journal, _) = Journal::open(
            &JournalConfig {
                dir: dir.path().to_owned(),
                max_bytes: 1 << 30,
            },
            JournalMetrics::new(&registry),
        )
        .unwrap();
        (
            Outbox::new(capacity, journal, OutboxMetrics::new(&registry)),
            dir,
        )
    }

    #[test]
    fn a_full_outbox_admits_nothing_new_and_keeps_what_it_took() {
        let (outbox, _dir) = outbox(2);
        assert_eq!(outbox.admit(), Ok(()));
        outbox.push([append(0), append(1)]);
        assert_eq!(outbox.admit(), Err(OutboxFull));
        assert_eq!(outbox.metrics.refused.get(), 1);
        assert_eq!(outbox.metrics.queued.get(), 2);
        assert_eq!(outbox.metrics.depth.get(), 2);
        // Entries already on disk are taken even past the capacity.
        outbox.push([append(2)]);
        assert_eq!(outbox.len(), 3);
        assert_eq!(
            outbox.take(10, usize::MAX),
            vec![append(0), append(1), append(2)]
        );
        assert_eq!(outbox.metrics.depth.get(), 0);
        // Room again: admitted.
        assert_eq!(outbox.admit(), Ok(()));
    }

    #[test]
    fn entries_put_back_keep_their_place_at_the_front_even_past_the_capacity() {
        let (outbox, _dir) = outbox(3);
        outbox.push((0..3).map(append));
        let first = outbox.take(2, usize::MAX);
        outbox.push([append(3), append(4)]);
        outbox.put_back(first);
        assert_eq!(outbox.len(), 5);
        assert_eq!(outbox.admit(), Err(OutboxFull));
        assert_eq!(
            outbox.take(10, usize::MAX),
            (0..5).map(append).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_batch_stops_at_its_count_or_its_size_but_takes_at_least_one() {
        let (outbox, _dir) = outbox(100);
        outbox.push((0..10).map(append));
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
