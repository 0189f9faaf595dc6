//! The in-process job queue of the one-process site: figalize publishes into it, imagizer's
//! pipeline consumes it, no broker in between.

use std::sync::Arc;

use common::image_job::{ImageJob, JobSink};
use prometheus::{IntCounter, Registry};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::pipeline::{Outcome, Pipeline};

/// The sending side, handed to figalize.
pub struct LocalQueue {
    sender: mpsc::Sender<ImageJob>,
    dropped: IntCounter,
}

impl JobSink for LocalQueue {
    fn publish(&self, job: ImageJob) {
        if let Err(err) = self.sender.try_send(job) {
            self.dropped.inc();
            let (reason, job) = match err {
                mpsc::error::TrySendError::Full(job) => ("queue full", job),
                mpsc::error::TrySendError::Closed(job) => ("queue closed", job),
            };
            tracing::error!(
                request_id = job.request_id.as_deref().unwrap_or("-"),
                reason,
                "image job dropped"
            );
        }
    }
}

/// A queue of at most `capacity` jobs and its receiving side.
pub fn queue(capacity: usize, registry: &Registry) -> (LocalQueue, mpsc::Receiver<ImageJob>) {
    let (sender, receiver) = mpsc::channel(capacity.max(1));
    let dropped = common::metrics::counter(
        registry,
        "figachechnaya_imagizer_local_queue_dropped_total",
        "Image jobs dropped because the in-process queue was full",
    );
    (LocalQueue { sender, dropped }, receiver)
}

/// Runs jobs from `jobs`, `parallelism` at a time, until `drained` is cancelled (no request
/// can add a job any more) and the queue is empty.
pub async fn consume(
    mut jobs: mpsc::Receiver<ImageJob>,
    pipeline: Arc<Pipeline>,
    parallelism: usize,
    drained: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(parallelism.max(1)));
    let mut running = JoinSet::new();
    loop {
        let job = tokio::select! {
            job = jobs.recv() => job,
            () = drained.cancelled() => jobs.try_recv().ok(),
        };
        let Some(job) = job else { break };
        let permit = Arc::clone(&permits)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let pipeline = Arc::clone(&pipeline);
        // Store retries stop only with the process: a job here has no other copy.
        let stop = CancellationToken::new();
        let span =
            tracing::info_span!("job", request_id = job.request_id.as_deref().unwrap_or("-"));
        running.spawn(
            async move {
                if let Outcome::Failed(reason) = pipeline.run(&job, &stop).await {
                    tracing::error!(reason, "image job failed");
                }
                drop(permit);
            }
            .instrument(span),
        );
        while running.try_join_next().is_some() {}
    }
    while running.join_next().await.is_some() {}
}
