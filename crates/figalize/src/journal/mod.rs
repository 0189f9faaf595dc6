//! The journal: every figalization is on disk before it is answered.
//!
//! An accepted figalization is appended to the journal and synced (`fdatasync`) before its
//! request is answered 200. Appends that arrive while a sync is under way wait for the next one
//! and share it — group commit, as PostgreSQL and Kafka do — so a busy second costs a few syncs,
//! not one per request. Only once its record is on disk is an entry handed on ([`Journal::start`]'s
//! dispatch): its history entry to the outbox, its image job to the broker or the in-process
//! queue.
//!
//! Each record has two halves to settle: history has committed its row, and the broker has
//! acknowledged its image job (the in-process renderer has finished it). The journal is a series
//! of segment files; a segment is deleted once every half of every record in it has settled and
//! a newer segment has taken over from it. On start, every record of the segments left — by a
//! crash, or a shutdown whose grace ran out — is handed on again. History stores an entry once by
//! its id and imagizer skips an image it has, so a record replayed after it had settled costs a
//! little work and nothing else.
//!
//! What is kept is bounded by `JOURNAL_MAX_BYTES`: a full journal refuses new figalizations
//! (answered 503), it never drops what it took. A crash can tear the last record of a segment;
//! [`format::parse`] tells, and the damaged tail is skipped, logged and counted at start —
//! never a reason not to start.

mod files;
mod format;
mod metrics;
mod writer;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use anyhow::Context as _;
use tokio::sync::{Notify, oneshot};

use files::{create_segment, lock, read_segment, remove, segment_files, segment_path};
pub use format::Entry;
pub use metrics::JournalMetrics;

/// Size at which the writer starts a new segment. Small enough that a segment is deleted soon
/// after its records settle (and a crash replays little that had settled), large enough that
/// starting one — a file created and its folder synced — is rare.
pub const SEGMENT_BYTES: u64 = 1024 * 1024;

/// Halves each record has to settle: its history row and its image job.
const HALVES: u64 = 2;

/// Where the journal lives and how much it may keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalConfig {
    /// `JOURNAL_DIR`: a folder this process alone writes.
    pub dir: PathBuf,
    /// `JOURNAL_MAX_BYTES`: the most the journal keeps on disk.
    pub max_bytes: u64,
}

/// The segment an appended record went to: what its halves settle against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    segment: u64,
}

#[cfg(test)]
impl Ticket {
    /// A ticket of segment `segment`, for tests of what carries tickets.
    pub(crate) fn of_segment(segment: u64) -> Self {
        Self { segment }
    }
}

/// Why a figalization could not be made durable; it is refused, not lost.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The journal holds `JOURNAL_MAX_BYTES`.
    #[error("the journal is full")]
    Full,
    /// The write or the sync failed, or the journal is closed.
    #[error("the journal could not keep the figalization: {0}")]
    Failed(String),
}

/// The records of one segment found at start.
#[derive(Debug)]
pub struct Recovered {
    /// Their segment.
    pub ticket: Ticket,
    /// The records, in the order they were accepted.
    pub entries: Vec<Entry>,
}

/// The journal of one process.
pub struct Journal {
    dir: PathBuf,
    max_bytes: u64,
    state: Mutex<State>,
    /// Wakes the writer when a batch waits or the journal closes.
    work: Condvar,
    /// Wakes [`Journal::settled`] when the last half settles.
    all_settled: Notify,
    /// Whether the last append was refused as over the bound: the transitions are logged.
    full: AtomicBool,
    metrics: JournalMetrics,
    /// Held while the process runs, so that no other process writes the folder.
    _lock: File,
}

struct State {
    /// Records waiting for the next sync.
    batch: writer::Batch,
    /// Bytes on disk and waiting: what `max_bytes` bounds.
    bytes: u64,
    segments: BTreeMap<u64, Segment>,
    /// The segment being written.
    active: u64,
    /// Halves not settled, those of records not yet written included.
    unsettled: u64,
    closed: bool,
    started: bool,
    /// Whether the writer sleeps, waiting for a batch.
    writer_waiting: bool,
    /// The active segment's file, until the writer takes it; none when it could not be made.
    file: Option<File>,
}

struct Segment {
    bytes: u64,
    unsettled: u64,
}

impl Journal {
    /// Opens the journal in `config.dir` (made if missing), reading what an earlier process
    /// left; nothing is written until [`Journal::start`].
    pub fn open(
        config: &JournalConfig,
        metrics: JournalMetrics,
    ) -> anyhow::Result<(Arc<Self>, Vec<Recovered>)> {
        let dir = &config.dir;
        fs::create_dir_all(dir)
            .with_context(|| format!("JOURNAL_DIR {}: cannot create it", dir.display()))?;
        let lock = lock(dir)?;
        let mut segments = BTreeMap::new();
        let mut recovered = Vec::new();
        let mut last = 0;
        for (number, path) in segment_files(dir)? {
            last = number;
            let entries = read_segment(&path, &metrics);
            if entries.is_empty() {
                remove(&path);
                continue;
            }
            let bytes = fs::metadata(&path).map_or(0, |meta| meta.len());
            let unsettled = HALVES * entries.len() as u64;
            segments.insert(number, Segment { bytes, unsettled });
            recovered.push(Recovered {
                ticket: Ticket { segment: number },
                entries,
            });
        }
        let active = last + 1;
        let file = match create_segment(dir, active) {
            Ok(file) => {
                segments.insert(
                    active,
                    Segment {
                        bytes: format::MAGIC.len() as u64,
                        unsettled: 0,
                    },
                );
                Some(file)
            }
            // A full disk does not stop the start: what the journal holds is replayed, and
            // every segment it settles frees room; until a segment can be made, new
            // figalizations are refused (503), as when a write fails.
            Err(err) if err.kind() == std::io::ErrorKind::StorageFull => {
                metrics.errors.inc();
                tracing::error!(
                    dir = %dir.display(),
                    "JOURNAL_DIR is full: figalizations are refused until what the journal holds is delivered"
                );
                None
            }
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("JOURNAL_DIR {}: cannot write it", dir.display()));
            }
        };
        metrics.capacity.set(gauge(config.max_bytes));
        let state = State {
            batch: writer::Batch::default(),
            bytes: segments.values().map(|segment| segment.bytes).sum(),
            unsettled: segments.values().map(|segment| segment.unsettled).sum(),
            segments,
            active,
            closed: false,
            started: false,
            writer_waiting: false,
            file,
        };
        let journal = Arc::new(Self {
            dir: dir.clone(),
            max_bytes: config.max_bytes,
            state: Mutex::new(state),
            work: Condvar::new(),
            all_settled: Notify::new(),
            full: AtomicBool::new(false),
            metrics,
            _lock: lock,
        });
        journal.publish_gauges(&journal.lock());
        Ok((journal, recovered))
    }

    /// Hands the recovered records to `dispatch`, then starts the writer, which hands each
    /// record to `dispatch` once it is on disk (before its request is answered).
    pub fn start(
        self: &Arc<Self>,
        recovered: Vec<Recovered>,
        mut dispatch: impl FnMut(Ticket, Vec<Entry>) + Send + 'static,
    ) -> anyhow::Result<()> {
        let count: usize = recovered.iter().map(|segment| segment.entries.len()).sum();
        if count > 0 {
            tracing::warn!(
                records = count,
                segments = recovered.len(),
                "replaying the journal an earlier process left: what it had not seen through, and \
                 what had settled since its segment began (history stores that once, imagizer skips it)"
            );
        }
        for segment in recovered {
            self.metrics.replayed.inc_by(segment.entries.len() as u64);
            dispatch(segment.ticket, segment.entries);
        }
        let file = {
            let mut state = self.lock();
            anyhow::ensure!(!state.started, "the journal was started twice");
            state.started = true;
            state.file.take()
        };
        writer::spawn(Arc::clone(self), file, dispatch).context("starting the journal's writer")
    }

    /// Appends `entry` and waits until it is on disk. Refused when the journal is full or
    /// cannot be written.
    pub async fn append(&self, entry: Entry) -> Result<(), AppendError> {
        let (sender, receiver) = oneshot::channel();
        let wake_writer = {
            let mut state = self.lock();
            if state.closed {
                return Err(AppendError::Failed("the journal is closed".into()));
            }
            // Encoded straight into the batch; taken back if it is over the bound.
            let size = state.batch.push(entry, sender);
            if state.bytes + size > self.max_bytes {
                state.batch.pop(size);
                drop(state);
                self.refuse();
                return Err(AppendError::Full);
            }
            state.bytes += size;
            state.unsettled += HALVES;
            self.metrics.bytes.set(gauge(state.bytes));
            state.writer_waiting
        };
        if self.full.load(Ordering::Relaxed) && self.full.swap(false, Ordering::Relaxed) {
            tracing::info!("the journal has room again: figalizations are taken");
        }
        if wake_writer {
            self.work.notify_one();
        }
        receiver
            .await
            .unwrap_or_else(|_| Err(AppendError::Failed("the journal's writer stopped".into())))
    }

    fn refuse(&self) {
        self.metrics.refused.inc();
        if !self.full.swap(true, Ordering::Relaxed) {
            tracing::error!(
                max_bytes = self.max_bytes,
                "journal full: figalizations are refused until history and the broker take what it holds"
            );
        }
    }

    /// One half of a record of `ticket` has settled: its history row is committed, or its
    /// image job is held for good. A segment no longer written whose every half has settled
    /// is deleted.
    pub fn settle(&self, ticket: Ticket) {
        let done = {
            let mut state = self.lock();
            state.unsettled = state.unsettled.saturating_sub(1);
            if state.unsettled == 0 {
                self.all_settled.notify_waiters();
            }
            let Some(segment) = state.segments.get_mut(&ticket.segment) else {
                debug_assert!(false, "a ticket of a segment already deleted");
                return;
            };
            segment.unsettled = segment.unsettled.saturating_sub(1);
            let done = segment.unsettled == 0 && ticket.segment != state.active;
            done.then(|| self.forget(&mut state, ticket.segment))
        };
        if let Some(path) = done {
            remove(&path);
        }
    }

    /// Waits until every record written so far has settled.
    pub async fn settled(&self) {
        loop {
            let notified = self.all_settled.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.lock().unsettled == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Stops taking figalizations and ends the writer; when every record has settled, the
    /// segments go too, so a clean stop leaves nothing to replay.
    pub fn close(&self) {
        let paths = {
            let mut state = self.lock();
            state.closed = true;
            if state.unsettled == 0 {
                let numbers: Vec<u64> = state.segments.keys().copied().collect();
                numbers
                    .into_iter()
                    .map(|number| self.forget(&mut state, number))
                    .collect()
            } else {
                tracing::warn!(
                    halves = state.unsettled,
                    "closing the journal with records not seen through: they are replayed at the next start"
                );
                Vec::new()
            }
        };
        self.work.notify_all();
        for path in paths {
            remove(&path);
        }
    }

    /// Drops a segment from the books; the caller deletes its file outside the lock.
    fn forget(&self, state: &mut State, number: u64) -> PathBuf {
        if let Some(segment) = state.segments.remove(&number) {
            state.bytes = state.bytes.saturating_sub(segment.bytes);
        }
        self.publish_gauges(state);
        segment_path(&self.dir, number)
    }

    fn publish_gauges(&self, state: &State) {
        self.metrics.bytes.set(gauge(state.bytes));
        self.metrics
            .segments
            .set(gauge(state.segments.len() as u64));
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("journal lock")
    }
}

fn gauge(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
