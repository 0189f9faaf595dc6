//! Handing image jobs to their sink, the Kafka producer or the in-process queue.
//!
//! A sink that has no room now (the producer's queue holds `KAFKA_BUFFER_MESSAGES`, the
//! in-process queue `IMAGIZER_QUEUE`) gives the job back; it waits here and is offered again,
//! with backoff, until the sink takes it. An accepted job is never dropped: what waits here is
//! bounded by the journal, which keeps every job until its sink has settled it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::image_job::{ImageJob, JobSink, Receipt, Refused};
use common::limits::Summary;
use prometheus::{IntCounter, IntGauge, Registry};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::outbox::{backoff_delay, wait_for_work};

/// First and longest wait before offering waiting jobs again: the sink is in this process
/// (or librdkafka's queue), so room comes back within moments. The longest wait bounds what
/// a full sink can take: a queue of `IMAGIZER_QUEUE` (10,000) jobs offered every second
/// capped the one-process site's image pipeline at about 15,000 jobs/s whatever imagizer
/// could do; offered every 50 ms at worst, it can take 200,000. A refused offer costs
/// next to nothing.
const MIN_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_millis(50);

/// Hands jobs to a sink, keeping those it cannot take now.
pub struct ImageHandoff {
    sink: Arc<dyn JobSink>,
    waiting: Mutex<VecDeque<(ImageJob, Receipt)>>,
    wake: Notify,
    deferred: IntCounter,
    waiting_now: IntGauge,
    /// The sink filling up, logged at most every ten seconds however often it happens.
    full_log: Summary,
}

impl ImageHandoff {
    /// A handoff to `sink`, its metrics registered in `registry`.
    pub fn new(sink: Arc<dyn JobSink>, registry: &Registry) -> Self {
        Self {
            sink,
            waiting: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            deferred: common::metrics::counter(
                registry,
                "figachechnaya_figalize_image_jobs_deferred_total",
                "Image jobs that waited in figalize because their queue (the producer's or the in-process one) was full",
            ),
            waiting_now: common::metrics::gauge(
                registry,
                "figachechnaya_figalize_image_jobs_deferred",
                "Image jobs waiting in figalize for room in their queue",
            ),
            full_log: Summary::default(),
        }
    }

    /// Hands `job` over, or keeps it to offer again.
    pub fn publish(&self, job: ImageJob, receipt: Receipt) {
        // Behind jobs already waiting, a new one waits too: the sink was full a moment ago.
        let mut waiting = self.waiting.lock().expect("handoff lock");
        if !waiting.is_empty() {
            self.keep(&mut waiting, job, receipt);
            return;
        }
        drop(waiting);
        if let Err(Refused { job, receipt }) = self.sink.publish(job, receipt) {
            let mut waiting = self.waiting.lock().expect("handoff lock");
            if waiting.is_empty()
                && let Some(times) = self.full_log.tally()
            {
                tracing::warn!(
                    times,
                    "the image job queue is full: jobs wait in figalize and are offered again"
                );
            }
            self.keep(&mut waiting, job, receipt);
            drop(waiting);
            self.wake.notify_one();
        }
    }

    fn keep(&self, waiting: &mut VecDeque<(ImageJob, Receipt)>, job: ImageJob, receipt: Receipt) {
        waiting.push_back((job, receipt));
        self.deferred.inc();
        self.waiting_now.set(gauge(waiting.len()));
    }

    /// Offers the waiting jobs, oldest first, until the sink refuses one; whether all went.
    fn offer(&self) -> bool {
        let mut waiting = self.waiting.lock().expect("handoff lock");
        while let Some((job, receipt)) = waiting.pop_front() {
            if let Err(Refused { job, receipt }) = self.sink.publish(job, receipt) {
                waiting.push_front((job, receipt));
                self.waiting_now.set(gauge(waiting.len()));
                return false;
            }
        }
        self.waiting_now.set(0);
        true
    }

    /// Offers what waits again until `drained` is cancelled (no request can add a job any more)
    /// and nothing waits.
    pub async fn redeliver(self: Arc<Self>, drained: CancellationToken) {
        let mut failures: u32 = 0;
        loop {
            if self.offer() {
                if failures > 0 {
                    tracing::info!("the image job queue has room again");
                }
                failures = 0;
                if !wait_for_work(&self.wake, &drained).await {
                    return;
                }
                continue;
            }
            failures = failures.saturating_add(1);
            tokio::time::sleep(backoff_delay(MIN_BACKOFF, MAX_BACKOFF, failures)).await;
        }
    }
}

fn gauge(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A sink with room for `room` jobs; settles each job it takes.
    struct Sink {
        room: AtomicUsize,
        taken: Mutex<Vec<String>>,
    }

    impl JobSink for Sink {
        fn publish(&self, job: ImageJob, receipt: Receipt) -> Result<(), Refused> {
            if self
                .room
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |room| {
                    room.checked_sub(1)
                })
                .is_err()
            {
                return Err(Refused { job, receipt });
            }
            self.taken.lock().unwrap().push(job.text);
            receipt.settle();
            Ok(())
        }
    }

    fn job(n: usize) -> ImageJob {
        ImageJob {
            text: format!("Фиг{n}"),
            request_id: None,
        }
    }

    #[tokio::test]
    async fn jobs_a_full_sink_refuses_wait_and_go_in_order_once_it_has_room() {
        let sink = Arc::new(Sink {
            room: AtomicUsize::new(2),
            taken: Mutex::new(Vec::new()),
        });
        let registry = Registry::new();
        let handoff = Arc::new(ImageHandoff::new(
            Arc::clone(&sink) as Arc<dyn JobSink>,
            &registry,
        ));
        let settled = Arc::new(AtomicUsize::new(0));
        for n in 0..5 {
            let settled = Arc::clone(&settled);
            handoff.publish(
                job(n),
                Receipt::new(move || {
                    settled.fetch_add(1, Ordering::SeqCst);
                }),
            );
        }
        assert_eq!(settled.load(Ordering::SeqCst), 2);
        assert_eq!(handoff.deferred.get(), 3);
        assert_eq!(handoff.waiting_now.get(), 3);

        let drained = CancellationToken::new();
        let redelivering = tokio::spawn(Arc::clone(&handoff).redeliver(drained.clone()));
        sink.room.store(10, Ordering::SeqCst);
        drained.cancel();
        redelivering.await.unwrap();

        assert_eq!(settled.load(Ordering::SeqCst), 5);
        assert_eq!(handoff.waiting_now.get(), 0);
        let expected: Vec<String> = (0..5).map(|n| job(n).text).collect();
        assert_eq!(*sink.taken.lock().unwrap(), expected);
    }
}
