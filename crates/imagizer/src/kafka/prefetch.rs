//! Messages received ahead of the job slots, and when fetching should pause for them.
//!
//! The consumer keeps taking messages while every slot is busy, up to a high mark; there it
//! pauses fetching, and it resumes only once the buffer is down to a low mark. The gap matters:
//! a pause makes librdkafka drop what it fetched ahead and fetch it again on resume, so pausing
//! at every full slot (as at a plain semaphore) costs a fetch of the backlog every few jobs —
//! against a broker that serves a fetch slowly, the whole throughput.

use std::collections::VecDeque;

/// What the consumer should do about fetching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// The buffer reached its high mark: pause fetching.
    Pause,
    /// The buffer drained to its low mark: resume fetching.
    Resume,
    /// Leave it as it is.
    Keep,
}

/// Received messages waiting for a job slot, each with the assignment generation it came in.
#[derive(Debug)]
pub struct Prefetch<T> {
    waiting: VecDeque<(u64, T)>,
    high: usize,
    low: usize,
    paused: bool,
}

impl<T> Prefetch<T> {
    /// A buffer that pauses at `high` messages (at least 1) and resumes at a quarter of that.
    pub fn new(high: usize) -> Self {
        let high = high.max(1);
        Self {
            waiting: VecDeque::new(),
            high,
            low: high / 4,
            paused: false,
        }
    }

    /// A message received in assignment `generation`.
    pub fn push(&mut self, generation: u64, message: T) {
        self.waiting.push_back((generation, message));
    }

    /// The oldest waiting message of assignment `generation`. Messages of an earlier assignment
    /// are dropped: after a rebalance a partition is read again from its committed offset,
    /// which is never past a message not yet started, so each comes back.
    pub fn pop(&mut self, generation: u64) -> Option<T> {
        while let Some((received_in, message)) = self.waiting.pop_front() {
            if received_in == generation {
                return Some(message);
            }
        }
        None
    }

    /// Whether a message waits (of any assignment).
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Decides whether fetching should pause or resume now, and takes the decision as done.
    pub fn flow(&mut self) -> Flow {
        if !self.paused && self.waiting.len() >= self.high {
            self.paused = true;
            Flow::Pause
        } else if self.paused && self.waiting.len() <= self.low {
            self.paused = false;
            Flow::Resume
        } else {
            Flow::Keep
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_at_the_high_mark_and_resumes_only_at_the_low_mark() {
        let mut buffer = Prefetch::new(8);
        for offset in 0..7 {
            buffer.push(1, offset);
            assert_eq!(buffer.flow(), Flow::Keep, "below the high mark at {offset}");
        }
        buffer.push(1, 7);
        assert_eq!(buffer.flow(), Flow::Pause);
        assert_eq!(buffer.flow(), Flow::Keep, "paused once");
        // A message already on its way while pausing still counts.
        buffer.push(1, 8);
        assert_eq!(buffer.flow(), Flow::Keep);
        let mut taken = Vec::new();
        while buffer.len() > 3 {
            taken.push(buffer.pop(1).expect("waiting"));
            assert_eq!(buffer.flow(), Flow::Keep, "not yet at the low mark");
        }
        taken.push(buffer.pop(1).expect("waiting"));
        assert_eq!(buffer.flow(), Flow::Resume, "a quarter of 8 left");
        assert_eq!(buffer.flow(), Flow::Keep, "resumed once");
        assert_eq!(taken, (0..7).collect::<Vec<_>>(), "in the order received");
    }

    #[test]
    fn messages_of_an_earlier_assignment_are_dropped() {
        let mut buffer = Prefetch::new(16);
        buffer.push(1, "old a");
        buffer.push(1, "old b");
        buffer.push(3, "new");
        assert_eq!(buffer.pop(3), Some("new"));
        assert!(buffer.is_empty());
        assert_eq!(buffer.pop(3), None);
    }

    #[test]
    fn a_high_mark_of_one_still_lets_a_message_through() {
        let mut buffer = Prefetch::new(0);
        buffer.push(1, ());
        assert_eq!(buffer.flow(), Flow::Pause);
        assert_eq!(buffer.pop(1), Some(()));
        assert_eq!(buffer.flow(), Flow::Resume);
    }
}
