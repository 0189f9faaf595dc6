//! What happens to one job, whichever queue it came from: skip if the image is stored, else
//! render it off the async threads and upload it. Store failures are retried with backoff
//! until they succeed or the process stops; only then does the caller acknowledge the job.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::image_job::{ImageJob, image_key};
use prometheus::{Histogram, HistogramOpts, IntCounterVec, Registry};
use tokio_util::sync::CancellationToken;

use crate::render::Renderer;
use crate::store::ImageStore;

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Rendered and stored now.
    Stored,
    /// The image was already there.
    AlreadyStored,
    /// The job can never succeed; the reason goes with it to the dead letters.
    Failed(String),
    /// The process is stopping and the store was not reachable: the job stays unacknowledged
    /// and is done again later.
    Abandoned,
}

/// The pipeline's metrics.
#[derive(Clone)]
pub struct PipelineMetrics {
    outcomes: IntCounterVec,
    store_errors: IntCounterVec,
    render_seconds: Histogram,
    upload_seconds: Histogram,
}

impl PipelineMetrics {
    /// Registers the metrics in `registry`.
    pub fn new(registry: &Registry) -> Self {
        use common::metrics::{labelled_counter, register};
        let outcomes = labelled_counter(
            registry,
            "figachechnaya_imagizer_jobs_total",
            "Image jobs finished, by outcome: rendered, skipped (already stored), failed, abandoned",
            "outcome",
            ["rendered", "skipped", "failed", "abandoned"],
        );
        let store_errors = labelled_counter(
            registry,
            "figachechnaya_imagizer_store_errors_total",
            "Image store operations that failed and were retried, by operation",
            "operation",
            ["exists", "put"],
        );
        let histogram = |name: &str, help: &str| {
            register(
                registry,
                Histogram::with_opts(HistogramOpts::new(name, help).buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ]))
                .expect("valid metric"),
            )
        };
        Self {
            outcomes,
            store_errors,
            render_seconds: histogram(
                "figachechnaya_imagizer_render_duration_seconds",
                "Time to render and encode one PNG",
            ),
            upload_seconds: histogram(
                "figachechnaya_imagizer_upload_duration_seconds",
                "Time to store one PNG",
            ),
        }
    }

    /// Jobs that ended with `outcome`.
    pub fn outcomes(&self, outcome: &str) -> u64 {
        self.outcomes.with_label_values(&[outcome]).get()
    }
}

/// Retry pacing for store operations.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// First delay; doubles per failure.
    pub min: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Backoff {
    fn delay(self, failures: u32) -> Duration {
        let step = self
            .min
            .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1)))
            .min(self.max);
        step.mul_f64(0.5 + fastrand::f64() / 2.0)
    }
}

/// Renders and stores images.
pub struct Pipeline {
    renderer: Arc<Renderer>,
    store: Arc<dyn ImageStore>,
    metrics: PipelineMetrics,
    backoff: Backoff,
    /// Keys being worked on: a second job for the same text waits for the first, then finds
    /// the image stored, so one text is rendered once.
    working: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Pipeline {
    /// A pipeline over `store`.
    pub fn new(store: Arc<dyn ImageStore>, metrics: PipelineMetrics, backoff: Backoff) -> Self {
        Self {
            renderer: Arc::new(Renderer::new()),
            store,
            metrics,
            backoff,
            working: Mutex::new(HashMap::new()),
        }
    }

    /// The store images go to.
    pub fn store(&self) -> &Arc<dyn ImageStore> {
        &self.store
    }

    /// Runs one job; gives up retrying the store once `stop` is cancelled.
    pub async fn run(&self, job: &ImageJob, stop: &CancellationToken) -> Outcome {
        let key = image_key(&job.text);
        // A popular phrase's jobs would otherwise queue for its lock one by one only to hear
        // what the store already remembers.
        let outcome = if self.store.known(&key) {
            Outcome::AlreadyStored
        } else {
            let lock = self.lock(&key);
            let outcome = {
                let _working = lock.lock().await;
                self.run_locked(job, &key, stop).await
            };
            self.unlock(&key, &lock);
            outcome
        };
        let label = match &outcome {
            Outcome::Stored => "rendered",
            Outcome::AlreadyStored => "skipped",
            Outcome::Failed(_) => "failed",
            Outcome::Abandoned => "abandoned",
        };
        self.metrics.outcomes.with_label_values(&[label]).inc();
        tracing::info!(
            request_id = job.request_id.as_deref().unwrap_or("-"),
            key,
            outcome = label,
            "image job done"
        );
        outcome
    }

    async fn run_locked(&self, job: &ImageJob, key: &str, stop: &CancellationToken) -> Outcome {
        let mut failures = 0;
        loop {
            match self.store.exists(key).await {
                Ok(true) => return Outcome::AlreadyStored,
                Ok(false) => break,
                Err(err) => {
                    if !self
                        .wait_to_retry("exists", &err, &mut failures, stop)
                        .await
                    {
                        return Outcome::Abandoned;
                    }
                }
            }
        }
        let started = Instant::now();
        let renderer = Arc::clone(&self.renderer);
        let text = job.text.clone();
        let png = match tokio::task::spawn_blocking(move || renderer.render(&text)).await {
            Ok(Ok(png)) => png,
            Ok(Err(err)) => return Outcome::Failed(format!("rendering: {err}")),
            Err(err) => return Outcome::Failed(format!("rendering panicked: {err}")),
        };
        self.metrics
            .render_seconds
            .observe(started.elapsed().as_secs_f64());
        let mut failures = 0;
        loop {
            let started = Instant::now();
            match self.store.put(key, png.clone()).await {
                Ok(()) => {
                    self.metrics
                        .upload_seconds
                        .observe(started.elapsed().as_secs_f64());
                    return Outcome::Stored;
                }
                Err(err) => {
                    if !self.wait_to_retry("put", &err, &mut failures, stop).await {
                        return Outcome::Abandoned;
                    }
                }
            }
        }
    }

    /// Counts and logs a store failure and sleeps before the retry; `false` when stopping.
    async fn wait_to_retry(
        &self,
        operation: &str,
        err: &crate::store::StoreError,
        failures: &mut u32,
        stop: &CancellationToken,
    ) -> bool {
        *failures += 1;
        self.metrics
            .store_errors
            .with_label_values(&[operation])
            .inc();
        let delay = self.backoff.delay(*failures);
        tracing::warn!(
            operation,
            store = self.store.kind(),
            error = %err,
            retry_in = ?delay,
            "image store failed; will retry"
        );
        tokio::select! {
            () = tokio::time::sleep(delay) => !stop.is_cancelled(),
            () = stop.cancelled() => false,
        }
    }

    fn lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut working = self.working.lock().expect("pipeline lock");
        Arc::clone(working.entry(key.to_owned()).or_default())
    }

    fn unlock(&self, key: &str, lock: &Arc<tokio::sync::Mutex<()>>) {
        let mut working = self.working.lock().expect("pipeline lock");
        // The map and this job hold the only references: nobody else waits for the key.
        if Arc::strong_count(lock) == 2 {
            working.remove(key);
        }
    }
}
