//! The journal's writer: one thread that writes and syncs each batch of waiting records, hands
//! them on, then answers their requests.
//!
//! A thread of its own rather than a task: `fdatasync` blocks, and a batch is whatever arrived
//! during the previous sync, so the thread is never idle while work waits and never busy when
//! none does.

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{AppendError, Entry, HALVES, Journal, SEGMENT_BYTES, Ticket, create_segment, format};

/// Size past which a segment whose records have all settled gives way at the next write, so
/// that it is deleted and a crash replays little that had settled, without a new file for every
/// quiet moment.
const SETTLED_SEGMENT_BYTES: u64 = 64 * 1024;

/// The shortest time between the starts of two syncs: what a request waits at most, beyond the
/// sync itself, for the records arriving with it.
const SYNC_INTERVAL: Duration = Duration::from_millis(1);

/// Records waiting for the same sync.
#[derive(Default)]
pub(super) struct Batch {
    bytes: Vec<u8>,
    entries: Vec<Entry>,
    waiters: Vec<oneshot::Sender<Result<(), AppendError>>>,
}

impl Batch {
    /// Encodes `entry` at the end of the batch; its record's size, to be taken back with
    /// [`Batch::pop`] if it is over the bound.
    pub(super) fn push(
        &mut self,
        entry: Entry,
        waiter: oneshot::Sender<Result<(), AppendError>>,
    ) -> u64 {
        let start = self.bytes.len();
        format::encode(&entry, &mut self.bytes);
        self.entries.push(entry);
        self.waiters.push(waiter);
        (self.bytes.len() - start) as u64
    }

    /// Takes back the last record pushed, of `size` bytes.
    pub(super) fn pop(&mut self, size: u64) {
        let size = usize::try_from(size).expect("a record's size fits in memory");
        self.bytes.truncate(self.bytes.len() - size);
        self.entries.pop();
        self.waiters.pop();
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Starts the writer on the active segment's `file`.
pub(super) fn spawn<D>(
    journal: Arc<Journal>,
    file: Option<File>,
    dispatch: D,
) -> std::io::Result<()>
where
    D: FnMut(Ticket, Vec<Entry>) + Send + 'static,
{
    let segment = journal.lock().active;
    let writer = Writer {
        journal,
        file,
        segment,
        written: format::MAGIC.len() as u64,
        roll: false,
        last_sync: Instant::now(),
        dispatch,
    };
    std::thread::Builder::new()
        .name("journal".into())
        .spawn(move || writer.run())
        .map(drop)
}

struct Writer<D> {
    journal: Arc<Journal>,
    /// The active segment; none until one could be made.
    file: Option<File>,
    segment: u64,
    /// Bytes of the active segment known to be on disk.
    written: u64,
    /// Whether the next batch goes to a new segment (after a failed write).
    roll: bool,
    /// When the last write and sync began.
    last_sync: Instant,
    dispatch: D,
}

impl<D: FnMut(Ticket, Vec<Entry>)> Writer<D> {
    fn run(mut self) {
        // Should this thread end for any reason, the journal closes: appends are refused
        // (answered 503) instead of waiting for a writer that is gone.
        let _closes = ClosesOnExit(Arc::clone(&self.journal));
        while let Some(batch) = self.next_batch() {
            self.commit(batch);
        }
    }

    /// The records that arrived since the last sync; `None` once the journal is closed and
    /// nothing waits.
    fn next_batch(&mut self) -> Option<Batch> {
        let mut state = self.journal.lock();
        loop {
            if !state.batch.is_empty() {
                // Syncs are paced: under load, one begins at most every SYNC_INTERVAL and
                // takes what arrived meanwhile. A sync costs the same CPU however little it
                // carries, so back-to-back syncs of a few records each would spend a good share
                // of a core; a request arriving after a quiet spell is synced at once.
                let rest = SYNC_INTERVAL.saturating_sub(self.last_sync.elapsed());
                if !rest.is_zero() && !state.closed {
                    state = self
                        .journal
                        .work
                        .wait_timeout(state, rest)
                        .expect("journal lock")
                        .0;
                    continue;
                }
                self.last_sync = Instant::now();
                return Some(std::mem::take(&mut state.batch));
            }
            if state.closed {
                return None;
            }
            // Appends wake the writer only while it waits: most arrive while it syncs, and a
            // wake-up each would cost a system call per request.
            state.writer_waiting = true;
            state = self.journal.work.wait(state).expect("journal lock");
            state.writer_waiting = false;
        }
    }

    fn commit(&mut self, batch: Batch) {
        let Batch {
            bytes,
            entries,
            waiters,
        } = batch;
        let records = entries.len() as u64;
        let started = Instant::now();
        let written = self.write(&bytes);
        let metrics = &self.journal.metrics;
        match written {
            Ok(()) => {
                metrics
                    .sync_seconds
                    .observe(started.elapsed().as_secs_f64());
                metrics.syncs.inc();
                metrics.appended.inc_by(records);
                let ticket = Ticket {
                    segment: self.segment,
                };
                self.journal.written(ticket, bytes.len() as u64, records);
                // Handed on before the requests are answered: once the server has answered
                // its last request, every entry it accepted is in the outbox.
                (self.dispatch)(ticket, entries);
                for waiter in waiters {
                    let _ = waiter.send(Ok(()));
                }
            }
            Err(err) => {
                metrics.errors.inc();
                tracing::error!(
                    error = %err,
                    records,
                    "journal write failed: these figalizations are refused"
                );
                self.journal.failed(bytes.len() as u64, records);
                self.roll = true;
                for waiter in waiters {
                    let _ = waiter.send(Err(AppendError::Failed(err.to_string())));
                }
            }
        }
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let settled_and_big =
            self.written >= SETTLED_SEGMENT_BYTES && self.journal.active_settled();
        // A batch that would run past the segment's end starts the next one, unless the
        // segment is new (a batch bigger than a segment makes it longer).
        let past_end = self.written + bytes.len() as u64 > SEGMENT_BYTES
            && self.written > format::MAGIC.len() as u64;
        if self.roll || self.file.is_none() || past_end || settled_and_big {
            self.roll_over()?;
        }
        let file = self.file.as_ref().expect("a segment after rolling over");
        // Into the zeros the segment was made with (past its end only with a batch bigger
        // than a segment).
        if let Err(err) = file
            .write_all_at(bytes, self.written)
            .and_then(|()| file.sync_data())
        {
            // Best effort: the refused records should not come back at the next start.
            let _ = file.set_len(self.written);
            return Err(err);
        }
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Starts the next segment; the one before is deleted as soon as its records settle.
    fn roll_over(&mut self) -> std::io::Result<()> {
        let next = self.segment + 1;
        self.file = Some(create_segment(&self.journal.dir, next)?);
        self.segment = next;
        self.written = format::MAGIC.len() as u64;
        self.roll = false;
        self.journal.activate(next);
        Ok(())
    }
}

struct ClosesOnExit(Arc<Journal>);

impl Drop for ClosesOnExit {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        if !state.closed {
            tracing::error!("the journal's writer stopped: figalizations are refused");
            state.closed = true;
        }
        // Whatever still waits is answered as failed: its senders go with the batch.
        let waiting = std::mem::take(&mut state.batch);
        state.bytes = state.bytes.saturating_sub(waiting.bytes.len() as u64);
        state.unsettled = state
            .unsettled
            .saturating_sub(HALVES * waiting.entries.len() as u64);
        if state.unsettled == 0 {
            self.0.all_settled.notify_waiters();
        }
    }
}

impl Journal {
    /// A batch of `records` records is on disk in `ticket`'s segment.
    fn written(&self, ticket: Ticket, bytes: u64, records: u64) {
        let mut state = self.lock();
        if let Some(segment) = state.segments.get_mut(&ticket.segment) {
            segment.bytes += bytes;
            segment.unsettled += HALVES * records;
        }
    }

    /// Whether every record written to the active segment has settled.
    fn active_settled(&self) -> bool {
        let state = self.lock();
        state
            .segments
            .get(&state.active)
            .is_some_and(|segment| segment.unsettled == 0)
    }

    /// A batch of `records` records could not be written: they were refused.
    fn failed(&self, bytes: u64, records: u64) {
        let mut state = self.lock();
        state.bytes = state.bytes.saturating_sub(bytes);
        state.unsettled = state.unsettled.saturating_sub(HALVES * records);
        if state.unsettled == 0 {
            self.all_settled.notify_waiters();
        }
        self.publish_gauges(&state);
    }

    /// Segment `number` is now the one written; the one before goes if it has settled.
    fn activate(&self, number: u64) {
        let done = {
            let mut state = self.lock();
            let previous = std::mem::replace(&mut state.active, number);
            state.segments.insert(
                number,
                super::Segment {
                    bytes: format::MAGIC.len() as u64,
                    unsettled: 0,
                },
            );
            state.bytes += format::MAGIC.len() as u64;
            let settled = state
                .segments
                .get(&previous)
                .is_some_and(|segment| segment.unsettled == 0);
            let done = settled.then(|| self.forget(&mut state, previous));
            self.publish_gauges(&state);
            done
        };
        if let Some(path) = done {
            super::remove(&path);
        }
    }
}
