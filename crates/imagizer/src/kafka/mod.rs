//! Consuming image jobs from Kafka, at least once.
//!
//! Jobs run in parallel (bounded); a partition's offset is stored for commit only up to the
//! oldest job still running there, so a crash redoes at most the jobs in flight, never skips
//! one. A message that can never succeed is copied to the dead-letter topic (with the reason)
//! before its offset counts as done, so it neither blocks its partition nor disappears.
//! On stop: fetching stops, running jobs finish (or are abandoned, uncommitted, if the store
//! is down), the done offsets are committed, and the consumer leaves the group.

mod dead_letters;
mod offsets;
mod prefetch;
pub mod replay;
mod setup;

pub use offsets::OffsetTracker;
pub use setup::{ConsumerMetrics, ConsumerState, JobConsumer, consumer, dead_letter_producer};

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::image_job::{ImageJob, REQUEST_ID_HEADER};
use common::kafka::LogContext;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::producer::FutureProducer;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::pipeline::{Outcome, Pipeline};

use dead_letters::DeadLetters;
use prefetch::{Flow, Prefetch};
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
    /// Jobs received ahead of the slots before fetching pauses (it resumes at a quarter).
    pub prefetch: usize,
    /// The job topic (offsets are stored against it).
    pub topic: String,
    /// Where poison messages go.
    pub dead_letter_topic: String,
}

/// Consumes jobs until `stop` is cancelled; see the module docs for the guarantees.
// One loop over one set of states (slots, the waiting messages, the paused partitions, the
// tracker); split up, the states would have to travel between the pieces.
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
    // Messages received ahead of the slots; fetching pauses while too many wait.
    let mut waiting = Prefetch::new(config.prefetch);
    // The partitions paused for it: resumed by name, since librdkafka keeps an application's
    // pause on a partition through a rebalance that takes it away and gives it back.
    let mut paused = TopicPartitionList::new();
    // The assignment generation, read afresh after every wait: a rebalance runs inside `recv`.
    let generation = || consumer.context().generation.load(Ordering::Acquire);
    // The generation whose assignment is paused, while fetching is paused.
    let mut paused_in: Option<u64> = None;
    loop {
        match waiting.flow() {
            Flow::Pause => {
                paused = pause(&consumer, &metrics, waiting.len());
                paused_in = Some(generation());
            }
            Flow::Resume => {
                resume(&consumer, &paused, &metrics);
                paused = TopicPartitionList::new();
                paused_in = None;
            }
            // A rebalance while paused may bring partitions that are not paused yet.
            Flow::Keep if paused_in.is_some_and(|paused_in| paused_in != generation()) => {
                for element in pause(&consumer, &metrics, waiting.len()).elements() {
                    paused.add_partition(element.topic(), element.partition());
                }
                paused_in = Some(generation());
            }
            Flow::Keep => {}
        }
        // The consumer is waited on even while paused: one that stops polling for
        // `max.poll.interval.ms` (a store outage keeps every slot busy) leaves its group.
        tokio::select! {
            permit = Arc::clone(&permits).acquire_owned(), if !waiting.is_empty() => {
                let permit = permit.expect("never closed");
                let generation = generation();
                if let Some(received) = waiting.pop(generation) {
                    jobs.start(generation, received, permit, &mut tracker, &mut running);
                }
            }
            Some(done) = finished.recv() => record(&mut tracker, &done, generation(), &store_offset),
            message = consumer.recv() => match message {
                Ok(message) => {
                    metrics.consumed.inc();
                    waiting.push(generation(), Received::from(&message));
                }
                Err(err) => {
                    metrics.errors.inc();
                    tracing::warn!(error = %err, "receiving from Kafka failed");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(200)) => {}
                        () = stop.cancelled() => break,
                    }
                }
            },
            () = stop.cancelled() => break,
        }
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
        record(&mut tracker, &done, generation(), &store_offset);
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
    pipeline: Arc<Pipeline>,
    dead_letters: Arc<DeadLetters>,
    finished: mpsc::UnboundedSender<Finished>,
    stop: CancellationToken,
}

impl Jobs {
    /// Starts a received message's job in its slot.
    fn start(
        &self,
        generation: u64,
        received: Received,
        permit: OwnedSemaphorePermit,
        tracker: &mut OffsetTracker,
        running: &mut JoinSet<()>,
    ) {
        tracker.start(generation, received.partition, received.offset);
        let pipeline = Arc::clone(&self.pipeline);
        let dead_letters = Arc::clone(&self.dead_letters);
        let finished = self.finished.clone();
        let stop = self.stop.clone();
        // Every line the job logs carries the request id that made it, so one grep follows a
        // request from the browser to its PNG.
        let span = tracing::info_span!(
            "job",
            request_id = received.request_id.as_deref().unwrap_or("-"),
            partition = received.partition,
            offset = received.offset,
        );
        running.spawn(
            async move {
                let done = handle(&received, &pipeline, &dead_letters, &stop).await;
                let _ = finished.send(Finished {
                    generation,
                    partition: received.partition,
                    offset: received.offset,
                    done,
                });
                drop(permit);
            }
            .instrument(span),
        );
    }
}

/// Pauses fetching for the whole current assignment; returns the partitions paused.
fn pause(consumer: &JobConsumer, metrics: &ConsumerMetrics, waiting: usize) -> TopicPartitionList {
    match consumer
        .assignment()
        .and_then(|assignment| consumer.pause(&assignment).map(|()| assignment))
    {
        Ok(assignment) => {
            tracing::info!(waiting, "image jobs wait for a free slot: fetching paused");
            assignment
        }
        Err(err) => {
            metrics.errors.inc();
            tracing::warn!(error = %err, "cannot pause fetching");
            TopicPartitionList::new()
        }
    }
}

/// Resumes fetching for the partitions paused and for the current assignment (a partition
/// assigned since then may be one librdkafka still holds paused from before).
fn resume(consumer: &JobConsumer, paused: &TopicPartitionList, metrics: &ConsumerMetrics) {
    // Both are tried: one failing must not leave the other paused.
    let by_name = consumer.resume(paused);
    let assigned = consumer
        .assignment()
        .and_then(|assignment| consumer.resume(&assignment));
    match by_name.and(assigned) {
        Ok(()) => tracing::info!("fetching resumed"),
        Err(err) => {
            metrics.errors.inc();
            tracing::warn!(error = %err, "cannot resume fetching");
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
/// ends: it is done again after a restart. A job of an assignment that has changed since
/// (`current` is the consumer's generation now) stores nothing, even before any job of the new
/// one has started: its partition may have been read further elsewhere meanwhile, and its
/// commit must not move back.
fn record(tracker: &mut OffsetTracker, done: &Finished, current: u64, store: &impl Fn(i32, i64)) {
    if done.done
        && done.generation == current
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

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    fn finished(generation: u64, offset: i64) -> Finished {
        Finished {
            generation,
            partition: 0,
            offset,
            done: true,
        }
    }

    #[test]
    fn a_job_of_a_changed_assignment_stores_nothing_before_the_new_one_starts_a_job() {
        let stored = RefCell::new(Vec::new());
        let store = |partition: i32, offset: i64| stored.borrow_mut().push((partition, offset));
        let mut tracker = OffsetTracker::default();
        tracker.start(1, 0, 10);
        tracker.start(1, 0, 11);
        record(&mut tracker, &finished(1, 10), 1, &store);
        assert_eq!(*stored.borrow(), vec![(0, 11)], "11 still runs");
        // Revoked and assigned again (generation 3) while 11 ran; nothing new started yet.
        record(&mut tracker, &finished(1, 11), 3, &store);
        assert_eq!(
            *stored.borrow(),
            vec![(0, 11)],
            "no store for an older assignment"
        );
    }

    #[test]
    fn an_abandoned_job_stores_nothing() {
        let stored = RefCell::new(Vec::new());
        let store = |partition: i32, offset: i64| stored.borrow_mut().push((partition, offset));
        let mut tracker = OffsetTracker::default();
        tracker.start(1, 0, 5);
        let abandoned = Finished {
            done: false,
            ..finished(1, 5)
        };
        record(&mut tracker, &abandoned, 1, &store);
        assert!(stored.borrow().is_empty());
    }
}
