//! The free-space floor: appends are refused (503, `Retry-After`) while the file system that
//! holds the SQLite database has less than `HISTORY_MIN_FREE_BYTES` free, so a flood of writes
//! stops before the disk is full, not when the database can no longer write its journal.
//!
//! The free space is read every second; refusals are counted, and logged at most every ten
//! seconds. The database of a PostgreSQL deployment is on the database server's disk, which
//! its own monitoring watches.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::ApiError;
use common::app::Process;
use common::limits::Refusals;
use prometheus::IntGauge;

/// How often the free space is read.
const EVERY: Duration = Duration::from_secs(1);

/// The floor of one folder's file system.
pub struct DiskFloor {
    folder: PathBuf,
    min_free: u64,
    below: AtomicBool,
    free: IntGauge,
    refusals: Refusals,
}

impl DiskFloor {
    /// Watches the file system of `folder` against `min_free` bytes, from now until the
    /// process stops.
    pub fn start(process: &Process, folder: PathBuf, min_free: u64) -> Arc<Self> {
        let registry = &process.registry;
        let gauge = |name: &str, help: &str| {
            common::metrics::register(registry, IntGauge::new(name, help).expect("valid metric"))
        };
        let floor = gauge(
            "figachechnaya_history_disk_floor_bytes",
            "HISTORY_MIN_FREE_BYTES: free bytes under which appends are refused",
        );
        floor.set(i64::try_from(min_free).unwrap_or(i64::MAX));
        let this = Arc::new(Self {
            folder,
            min_free,
            below: AtomicBool::new(false),
            free: gauge(
                "figachechnaya_history_disk_free_bytes",
                "Free bytes on the file system that holds the database",
            ),
            refusals: Refusals::new(
                common::metrics::counter(
                    registry,
                    "figachechnaya_history_disk_refusals_total",
                    "Appends answered 503 because the disk had less than HISTORY_MIN_FREE_BYTES free",
                ),
                "disk_floor",
                "refusing appends: the disk is nearly full",
            ),
        });
        this.refresh();
        let watcher = Arc::clone(&this);
        let stopping = process.stopping();
        process.spawn(async move {
            let mut every = tokio::time::interval(EVERY);
            loop {
                tokio::select! {
                    _ = every.tick() => watcher.refresh(),
                    () = stopping.cancelled() => return,
                }
            }
        });
        this
    }

    /// Reads the free space again.
    fn refresh(&self) {
        let stats = match rustix::fs::statvfs(&self.folder) {
            Ok(stats) => stats,
            Err(err) => {
                tracing::warn!(folder = %self.folder.display(), error = %err, "cannot read the free disk space");
                return;
            }
        };
        let free = stats.f_bavail.saturating_mul(stats.f_frsize);
        self.free.set(i64::try_from(free).unwrap_or(i64::MAX));
        let below = free < self.min_free;
        if self.below.swap(below, Ordering::Relaxed) != below {
            if below {
                tracing::error!(
                    free,
                    floor = self.min_free,
                    "disk nearly full: refusing appends"
                );
            } else {
                tracing::info!(
                    free,
                    floor = self.min_free,
                    "disk space back: taking appends"
                );
            }
        }
    }

    /// `Ok` while the disk has room; otherwise the refusal to answer with.
    pub fn admit(&self) -> Result<(), ApiError> {
        if self.below.load(Ordering::Relaxed) {
            self.refusals.refused();
            return Err(ApiError::Busy(
                "History is nearly out of disk space and takes no appends; try again later",
            ));
        }
        Ok(())
    }
}
