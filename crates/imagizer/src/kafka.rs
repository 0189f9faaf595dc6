//! Consuming image jobs from Kafka, at least once.
//!
//! Jobs run in parallel (bounded); a partition's offset is stored for commit only up to the
//! oldest job still running there, so a crash redoes at most the jobs in flight, never skips
//! one. A message that can never succeed is copied to the dead-letter topic (with the reason)
//! before its offset counts as done, so it neither blocks its partition nor disappears.
//! On stop: fetching stops, running jobs finish (or are abandoned, uncommitted, if the store
//! is down), the done offsets are committed, and the consumer leaves the group.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::image_job::{DEAD_LETTER_REASON_HEADER, ImageJob, REQUEST_ID_HEADER};
use common::kafka::{KafkaSettings, LogContext};
use prometheus::{IntCounter, IntCounterVec, Registry};
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::pipeline::{Outcome, Pipeline};

/// The consumer's context: librdkafka's log, and a generation that moves on with every
/// rebalance.
pub struct ConsumerState {
    log: LogContext,
    generation: AtomicU64,
}

impl ClientContext for ConsumerState {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        self.log.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(error, reason);
    }
}

impl ConsumerContext for ConsumerState {
    fn post_rebalance(
        &self,
        _: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &rdkafka::consumer::Rebalance<'_>,
    ) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        match rebalance {
            rdkafka::consumer::Rebalance::Assign(partitions) => {
                tracing::info!(partitions = partitions.count(), "Kafka partitions assigned");
            }
            rdkafka::consumer::Rebalance::Revoke(partitions) => {
                tracing::info!(partitions = partitions.count(), "Kafka partitions revoked");
            }
            rdkafka::consumer::Rebalance::Error(err) => {
                tracing::warn!(error = %err, "Kafka rebalance failed");
            }
        }
    }
}

/// The job consumer.
pub type JobConsumer = StreamConsumer<ConsumerState>;

/// A consumer in the group, subscribed to the job topic. Offsets are committed every second
/// from what [`consume`] stores, and once more on stop.
pub fn consumer(settings: &KafkaSettings) -> Result<JobConsumer, KafkaError> {
    let consumer: JobConsumer = settings
        .client_config("imagizer")
        .set("group.id", &settings.group)
        .set(
            "session.timeout.ms",
            settings.session_timeout.as_millis().to_string(),
        )
        .set(
            "max.poll.interval.ms",
            settings.max_poll_interval.as_millis().to_string(),
        )
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // A topic created after the subscription (by this or another service starting at the
        // same time) is noticed within seconds instead of librdkafka's default 5 minutes.
        .set("topic.metadata.refresh.interval.ms", "5000")
        .set(
            "fetch.wait.max.ms",
            settings.fetch_wait_max.as_millis().to_string(),
        )
        .create_with_context(ConsumerState {
            log: LogContext,
            generation: AtomicU64::new(0),
        })?;
    consumer.subscribe(&[&settings.topic])?;
    Ok(consumer)
}

/// A producer for the dead-letter topic.
pub fn dead_letter_producer(
    settings: &KafkaSettings,
) -> Result<FutureProducer<LogContext>, KafkaError> {
    settings
        .client_config("imagizer-dead-letters")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create_with_context(LogContext)
}

/// The consumer's own metrics.
#[derive(Clone)]
pub struct ConsumerMetrics {
    consumed: IntCounter,
    dead_lettered: IntCounterVec,
    errors: IntCounter,
}

impl ConsumerMetrics {
    /// Registers the metrics in `registry`.
    pub fn new(registry: &Registry) -> Self {
        use common::metrics::counter;
        Self {
            consumed: counter(
                registry,
                "figachechnaya_imagizer_messages_consumed_total",
                "Messages received from the job topic",
            ),
            dead_lettered: common::metrics::labelled_counter(
                registry,
                "figachechnaya_imagizer_dead_lettered_total",
                "Messages moved to the dead-letter topic, by reason",
                "reason",
                [
                    "too_large",
                    "undecodable",
                    "unsupported_version",
                    "invalid_text",
                    "render_failed",
                ],
            ),
            errors: counter(
                registry,
                "figachechnaya_imagizer_consumer_errors_total",
                "Errors receiving from Kafka or storing offsets",
            ),
        }
    }
}

/// Offsets in flight per partition, to find how far each one is done.
///
/// Offsets belong to an assignment: after a rebalance the consumer reads again from the
/// group's committed offsets, so the tracker starts afresh, and jobs of an older assignment
/// store nothing when they finish (their messages are read again; a repeat is skipped as
/// already stored). Without this, a late finish could move a partition's commit backwards.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    generation: u64,
    partitions: HashMap<i32, PartitionOffsets>,
}

#[derive(Debug, Default)]
struct PartitionOffsets {
    running: BTreeSet<i64>,
    /// The next offset to read after everything done so far.
    next: Option<i64>,
    stored: Option<i64>,
}

impl OffsetTracker {
    /// A message of assignment `generation` was received and its job started.
    pub fn start(&mut self, generation: u64, partition: i32, offset: i64) {
        if generation != self.generation {
            self.generation = generation;
            self.partitions.clear();
        }
        self.partitions
            .entry(partition)
            .or_default()
            .running
            .insert(offset);
    }

    /// A job finished; returns the offset to store for commit if it moved forward: the
    /// oldest offset still running, or the one after the newest done.
    pub fn finish(&mut self, generation: u64, partition: i32, offset: i64) -> Option<i64> {
        if generation != self.generation {
            return None;
        }
        let state = self.partitions.get_mut(&partition)?;
        if !state.running.remove(&offset) {
            return None;
        }
        state.next = Some(state.next.map_or(offset + 1, |next| next.max(offset + 1)));
        let commit = match state.running.first() {
            Some(&oldest) => oldest,
            None => state.next?,
        };
        if state.stored.is_some_and(|stored| stored >= commit) {
            return None;
        }
        state.stored = Some(commit);
        Some(commit)
    }
}

/// What a job task reports back.
struct Finished {
    generation: u64,
    partition: i32,
    offset: i64,
    done: bool,
}

/// What the consumer needs.
pub struct ConsumeConfig {
    /// Jobs at once.
    pub parallelism: usize,
    /// The job topic (offsets are stored against it).
    pub topic: String,
    /// Where poison messages go.
    pub dead_letter_topic: String,
}

/// Consumes jobs until `stop` is cancelled; see the module docs for the guarantees.
// One loop over one set of states (slots, paused, pending, the tracker); split up, the
// states would have to travel between the pieces.
#[allow(clippy::too_many_lines)]
pub async fn consume(
    consumer: Arc<JobConsumer>,
    dead_letters: FutureProducer<LogContext>,
    pipeline: Arc<Pipeline>,
    config: ConsumeConfig,
    metrics: ConsumerMetrics,
    stop: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(config.parallelism.max(1)));
    let (finished_tx, mut finished) = mpsc::unbounded_channel::<Finished>();
    let mut tracker = OffsetTracker::default();
    let mut running = JoinSet::new();
    let jobs = Jobs {
        consumer: Arc::clone(&consumer),
        pipeline,
        dead_letters: Arc::new(DeadLetters {
            producer: dead_letters,
            topic: config.dead_letter_topic.clone(),
            metrics: metrics.clone(),
        }),
        finished: finished_tx,
        stop: stop.clone(),
    };
    let store_offset = |partition: i32, offset: i64| {
        let mut list = TopicPartitionList::new();
        if let Err(err) = list
            .add_partition_offset(&config.topic, partition, Offset::Offset(offset))
            .and_then(|()| consumer.store_offsets(&list))
        {
            // A partition revoked meanwhile: its new owner redoes the job (at least once).
            metrics.errors.inc();
            tracing::warn!(partition, offset, error = %err, "cannot store a Kafka offset");
        }
    };
    // Messages received while the assignment was being paused, in order.
    let mut pending: VecDeque<Received> = VecDeque::new();
    // The assignment generation that is paused, if any.
    let mut paused: Option<u64> = None;
    loop {
        // A free slot first: a full pipeline takes no new job (backpressure).
        let permit = if let Ok(permit) = Arc::clone(&permits).try_acquire_owned() {
            permit
        } else {
            // Full (a store outage keeps every slot busy): pause the assignment and keep
            // waiting on the consumer, which keeps it in its group — one that stops polling
            // for `max.poll.interval.ms` is evicted. A pause keeps the position, so on resume
            // fetching goes on from the last message received.
            let generation = consumer.context().generation.load(Ordering::Acquire);
            if paused != Some(generation) {
                pause(&consumer, true, &metrics);
                paused = Some(generation);
            }
            tokio::select! {
                permit = Arc::clone(&permits).acquire_owned() => permit.expect("never closed"),
                Some(done) = finished.recv() => {
                    record(&mut tracker, &done, &store_offset);
                    continue;
                }
                message = consumer.recv() => {
                    match message {
                        Ok(message) => {
                            metrics.consumed.inc();
                            pending.push_back(Received::from(&message));
                        }
                        Err(err) => {
                            metrics.errors.inc();
                            tracing::warn!(error = %err, "receiving from Kafka failed");
                        }
                    }
                    continue;
                }
                () = stop.cancelled() => break,
            }
        };
        if paused.take().is_some() {
            pause(&consumer, false, &metrics);
        }
        if let Some(received) = pending.pop_front() {
            jobs.start(received, permit, &mut tracker, &mut running);
            continue;
        }
        let message = tokio::select! {
            message = consumer.recv() => message,
            Some(done) = finished.recv() => {
                record(&mut tracker, &done, &store_offset);
                drop(permit);
                continue;
            }
            () = stop.cancelled() => break,
        };
        let message = match message {
            Ok(message) => message,
            Err(err) => {
                metrics.errors.inc();
                tracing::warn!(error = %err, "receiving from Kafka failed");
                drop(permit);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        metrics.consumed.inc();
        let received = Received::from(&message);
        drop(message);
        jobs.start(received, permit, &mut tracker, &mut running);
        while let Some(joined) = running.try_join_next() {
            report_panic(joined, &metrics);
        }
    }
    tracing::info!(running = running.len(), "stopped fetching image jobs");
    // The job tasks hold the only senders left: the channel ends with the last of them.
    drop(jobs);
    while let Some(joined) = running.join_next().await {
        report_panic(joined, &metrics);
    }
    while let Some(done) = finished.recv().await {
        record(&mut tracker, &done, &store_offset);
    }
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => tracing::info!("Kafka offsets committed"),
        // Nothing stored since the last commit is reported as an error too.
        Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
        Err(err) => tracing::warn!(error = %err, "final Kafka commit failed"),
    }
    consumer.unsubscribe();
}

/// What every job task gets.
struct Jobs {
    consumer: Arc<JobConsumer>,
    pipeline: Arc<Pipeline>,
    dead_letters: Arc<DeadLetters>,
    finished: mpsc::UnboundedSender<Finished>,
    stop: CancellationToken,
}

impl Jobs {
    /// Starts a received message's job in its slot.
    fn start(
        &self,
        received: Received,
        permit: OwnedSemaphorePermit,
        tracker: &mut OffsetTracker,
        running: &mut JoinSet<()>,
    ) {
        let generation = self.consumer.context().generation.load(Ordering::Acquire);
        tracker.start(generation, received.partition, received.offset);
        let pipeline = Arc::clone(&self.pipeline);
        let dead_letters = Arc::clone(&self.dead_letters);
        let finished = self.finished.clone();
        let stop = self.stop.clone();
        running.spawn(async move {
            let done = handle(&received, &pipeline, &dead_letters, &stop).await;
            let _ = finished.send(Finished {
                generation,
                partition: received.partition,
                offset: received.offset,
                done,
            });
            drop(permit);
        });
    }
}

/// Pauses or resumes fetching for the whole current assignment.
fn pause(consumer: &JobConsumer, pause: bool, metrics: &ConsumerMetrics) {
    let done = consumer.assignment().and_then(|assignment| {
        if pause {
            consumer.pause(&assignment)
        } else {
            consumer.resume(&assignment)
        }
    });
    match done {
        Ok(()) if pause => tracing::info!("every job slot is busy: fetching paused"),
        Ok(()) => tracing::info!("fetching resumed"),
        Err(err) => {
            metrics.errors.inc();
            tracing::warn!(error = %err, pause, "cannot pause or resume fetching");
        }
    }
}

/// A job task that panicked never reports its offset, so its partition commits nothing past
/// it until the process restarts (and the job is redone): say so, loudly.
fn report_panic(joined: Result<(), tokio::task::JoinError>, metrics: &ConsumerMetrics) {
    if let Err(err) = joined {
        metrics.errors.inc();
        tracing::error!(error = %err, "an image job task failed; its partition commits no further until restart");
    }
}

/// Stores the partition's new commit point when a job is done. An abandoned job stays
/// "running" in the tracker, which keeps its partition's commit below it until the process
/// ends: it is done again after a restart.
fn record(tracker: &mut OffsetTracker, done: &Finished, store: &impl Fn(i32, i64)) {
    if done.done
        && let Some(offset) = tracker.finish(done.generation, done.partition, done.offset)
    {
        store(done.partition, offset);
    }
}

/// A message copied out of the consumer's buffer.
struct Received {
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    request_id: Option<String>,
}

impl From<&BorrowedMessage<'_>> for Received {
    fn from(message: &BorrowedMessage<'_>) -> Self {
        let request_id = message.headers().and_then(|headers| {
            headers
                .iter()
                .find(|header| header.key == REQUEST_ID_HEADER)
                .and_then(|header| header.value)
                .and_then(|value| std::str::from_utf8(value).ok())
                .filter(|id| common::request_id::is_safe_token(id))
                .map(str::to_owned)
        });
        Self {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().unwrap_or_default().to_vec(),
            request_id,
        }
    }
}

/// Runs one message's job; `true` when its offset may be committed.
async fn handle(
    received: &Received,
    pipeline: &Pipeline,
    dead_letters: &DeadLetters,
    stop: &CancellationToken,
) -> bool {
    let job = match ImageJob::decode(&received.payload, received.request_id.clone()) {
        Ok(job) => job,
        Err(err) => {
            return dead_letters
                .send(received, err.code(), &err.to_string(), stop)
                .await;
        }
    };
    match pipeline.run(&job, stop).await {
        Outcome::Stored | Outcome::AlreadyStored => true,
        Outcome::Failed(reason) => {
            dead_letters
                .send(received, "render_failed", &reason, stop)
                .await
        }
        Outcome::Abandoned => false,
    }
}

struct DeadLetters {
    producer: FutureProducer<LogContext>,
    topic: String,
    metrics: ConsumerMetrics,
}

impl DeadLetters {
    /// Copies the message to the dead-letter topic, retrying until it is there; `false` if
    /// the process stopped first.
    async fn send(
        &self,
        received: &Received,
        code: &str,
        reason: &str,
        stop: &CancellationToken,
    ) -> bool {
        tracing::error!(
            request_id = received.request_id.as_deref().unwrap_or("-"),
            partition = received.partition,
            offset = received.offset,
            reason,
            "image job can never succeed: dead-lettering it"
        );
        let partition = received.partition.to_string();
        let offset = received.offset.to_string();
        let mut headers = OwnedHeaders::new()
            .insert(Header {
                key: DEAD_LETTER_REASON_HEADER,
                value: Some(reason),
            })
            .insert(Header {
                key: "x-original-partition",
                value: Some(&partition),
            })
            .insert(Header {
                key: "x-original-offset",
                value: Some(&offset),
            });
        if let Some(id) = &received.request_id {
            headers = headers.insert(Header {
                key: REQUEST_ID_HEADER,
                value: Some(id),
            });
        }
        loop {
            let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic)
                .payload(&received.payload)
                .headers(headers.clone());
            if let Some(key) = &received.key {
                record = record.key(key);
            }
            let sent = tokio::select! {
                sent = self.producer.send(record, Duration::from_secs(10)) => sent,
                () = stop.cancelled() => return false,
            };
            match sent {
                Ok(_) => {
                    self.metrics.dead_lettered.with_label_values(&[code]).inc();
                    return true;
                }
                Err((err, _)) => {
                    tracing::warn!(error = %err, "dead-letter publish failed; will retry");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = stop.cancelled() => return false,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_stop_below_the_oldest_running_job() {
        let mut tracker = OffsetTracker::default();
        for offset in 10..14 {
            tracker.start(1, 0, offset);
        }
        assert_eq!(tracker.finish(1, 0, 11), Some(10), "10 still runs");
        assert_eq!(tracker.finish(1, 0, 12), None, "nothing moved");
        assert_eq!(tracker.finish(1, 0, 10), Some(13));
        assert_eq!(tracker.finish(1, 0, 13), Some(14));
        assert_eq!(tracker.finish(1, 0, 13), None, "finished twice");
    }

    #[test]
    fn an_abandoned_job_pins_its_partition_and_no_other() {
        let mut tracker = OffsetTracker::default();
        tracker.start(1, 0, 5);
        tracker.start(1, 0, 6);
        tracker.start(1, 1, 7);
        // 5 is abandoned: never finished.
        assert_eq!(tracker.finish(1, 0, 6), Some(5));
        assert_eq!(tracker.finish(1, 1, 7), Some(8));
    }

    #[test]
    fn after_a_rebalance_older_jobs_store_nothing() {
        let mut tracker = OffsetTracker::default();
        tracker.start(1, 0, 40);
        tracker.start(1, 0, 41);
        assert_eq!(tracker.finish(1, 0, 41), Some(40));
        // Rebalanced: the partition is read again from its committed offset.
        tracker.start(2, 0, 40);
        assert_eq!(
            tracker.finish(1, 0, 40),
            None,
            "a job of the old assignment"
        );
        assert_eq!(tracker.finish(2, 0, 40), Some(41));
    }
}
