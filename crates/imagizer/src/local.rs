//! The in-process job queue of the one-process site: figalize publishes into it, imagizer's
//! pipeline consumes it, no broker in between.

use std::sync::Arc;

use common::image_job::{ImageJob, JobSink, Receipt, Refused};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::pipeline::{Outcome, Pipeline};

/// The receiving side: jobs with the receipts their pipeline settles.
pub type Jobs = mpsc::Receiver<(ImageJob, Receipt)>;

/// The sending side, handed to figalize. A full queue gives the job back: figalize offers it
/// again, so an accepted job is never dropped.
pub struct LocalQueue {
    sender: mpsc::Sender<(ImageJob, Receipt)>,
}

impl JobSink for LocalQueue {
    fn publish(&self, job: ImageJob, receipt: Receipt) -> Result<(), Refused> {
        self.sender.try_send((job, receipt)).map_err(|err| {
            let (job, receipt) = match err {
                mpsc::error::TrySendError::Full(sent) | mpsc::error::TrySendError::Closed(sent) => {
                    sent
                }
            };
            Refused { job, receipt }
        })
    }
}

/// A queue of at most `capacity` jobs and its receiving side.
pub fn queue(capacity: usize) -> (LocalQueue, Jobs) {
    let (sender, receiver) = mpsc::channel(capacity.max(1));
    (LocalQueue { sender }, receiver)
}

/// Runs jobs from `jobs`, `parallelism` at a time, until `drained` is cancelled (no request
/// can add a job any more) and the queue is empty.
pub async fn consume(
    mut jobs: Jobs,
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
        let Some((job, receipt)) = job else { break };
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
                match pipeline.run(&job, &stop).await {
                    Outcome::Stored | Outcome::AlreadyStored => receipt.settle(),
                    // Recorded by the pipeline; trying again cannot help.
                    Outcome::Failed(reason) => {
                        tracing::error!(reason, "image job failed");
                        receipt.settle();
                    }
                    // Left unsettled: figalize's journal offers it again at its next start.
                    Outcome::Abandoned => {}
                }
                drop(permit);
            }
            .instrument(span),
        );
        while running.try_join_next().is_some() {}
    }
    while running.join_next().await.is_some() {}
}
