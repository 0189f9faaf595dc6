//! The writer against a store double that holds commits at a gate.

use std::sync::Mutex as StdMutex;

use super::*;
use crate::store::{Appended, Entry, PoolUsage, StoreFuture};

/// A store that records batch sizes and holds each commit until the gate lets it through.
struct Recording {
    batches: StdMutex<Vec<usize>>,
    calls: std::sync::atomic::AtomicUsize,
    gate: tokio::sync::Semaphore,
    next_id: StdMutex<i64>,
}

impl HistoryStore for Recording {
    fn append<'a>(&'a self, entries: &'a [NewEntry]) -> StoreFuture<'a, Appended> {
        Box::pin(async move {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.gate.acquire().await.expect("open gate").forget();
            self.batches.lock().unwrap().push(entries.len());
            let mut next = self.next_id.lock().unwrap();
            let stored = entries
                .iter()
                .map(|_| {
                    *next += 1;
                    Stored {
                        id: *next,
                        created: true,
                    }
                })
                .collect();
            Ok(Appended {
                stored,
                total: *next,
                newest: None,
            })
        })
    }
    fn latest(&self, _: u32) -> StoreFuture<'_, Vec<Entry>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn count(&self) -> StoreFuture<'_, i64> {
        Box::pin(async { Ok(0) })
    }
    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
    fn kind(&self) -> &'static str {
        "recording"
    }

    fn pool_usage(&self) -> PoolUsage {
        PoolUsage {
            open: 0,
            idle: 0,
            max: 0,
        }
    }
}

fn entry(n: usize) -> NewEntry {
    NewEntry {
        append_id: n.to_string(),
        original: "велосипед".into(),
        figalized: "Фигосипед".into(),
    }
}

#[tokio::test]
async fn appends_queued_during_a_commit_go_into_one_batch_and_each_waits_for_its_commit() {
    let process = common::app::Process::new("writer_test");
    let recording = Arc::new(Recording {
        batches: StdMutex::default(),
        calls: 0.into(),
        gate: tokio::sync::Semaphore::new(0),
        next_id: StdMutex::default(),
    });
    let store: Arc<dyn HistoryStore> = recording.clone();
    let (events, _) = broadcast::channel(4);
    let config = WriterConfig {
        writers: 1,
        ..WriterConfig::default()
    };
    let writer = BatchWriter::start(
        &process,
        &store,
        Some(&events),
        &WriterMetrics::new(&process.registry),
        config,
    );

    // The first append takes the writer into a commit that the gate holds.
    let first = tokio::spawn({
        let writer = writer.clone();
        async move { writer.append(entry(0)).await }
    });
    common::testing::wait_until("the first commit to start", || {
        recording.calls.load(std::sync::atomic::Ordering::SeqCst) == 1
    })
    .await;
    let rest: Vec<_> = (1..=49)
        .map(|n| {
            let writer = writer.clone();
            tokio::spawn(async move { writer.append(entry(n)).await })
        })
        .collect();
    common::testing::wait_until("49 appends to queue", || {
        writer.queue.max_capacity() - writer.queue.capacity() == 49
    })
    .await;
    assert!(
        rest.iter().all(|task| !task.is_finished()),
        "answered before commit"
    );

    recording.gate.add_permits(2);
    assert_eq!(first.await.unwrap().unwrap().id, 1);
    for task in rest {
        assert!(task.await.unwrap().unwrap().created);
    }
    assert_eq!(*recording.batches.lock().unwrap(), vec![1, 49]);
}

#[test]
fn the_stream_never_steps_back_to_an_older_commit() {
    let (events, mut received) = broadcast::channel(8);
    let publisher = Publisher {
        events,
        published: Arc::new(AtomicI64::new(i64::MIN)),
    };
    let committed = |count: i64| Committed {
        entry: Entry {
            id: count,
            original: "велосипед".into(),
            figalized: "Фигосипед".into(),
        },
        count,
    };
    // Two writers: the commit that made the total 5 is published after the one that made it 7.
    for count in [3, 7, 5, 8] {
        publisher.publish(committed(count));
    }
    let mut counts = Vec::new();
    while let Ok(event) = received.try_recv() {
        counts.push(event.count);
    }
    assert_eq!(counts, vec![3, 7, 8]);
}
