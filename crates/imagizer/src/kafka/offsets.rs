//! How far each partition is done, given jobs that finish out of order.

use std::collections::{BTreeSet, HashMap};

/// Offsets in flight per partition, to find how far each one is done.
///
/// Offsets belong to an assignment: after a rebalance the consumer reads again from the
/// group's committed offsets, so the tracker starts afresh with the first job of the new
/// assignment, and jobs of an older assignment store nothing when they finish (their messages
/// are read again; a repeat is skipped as already stored). Without this, a late finish could
/// move a partition's commit backwards. Between a rebalance and that first job, the consume
/// loop keeps older jobs from storing by the consumer's own generation.
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
