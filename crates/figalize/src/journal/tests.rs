//! The journal on a real folder: what is appended is on disk, handed on, and replayed until it
//! settles; damage is skipped and counted; the bound refuses.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::testing::TempDir;
use prometheus::Registry;

use super::*;

type Handed = Arc<Mutex<Vec<(Ticket, Entry)>>>;

fn entry(n: usize) -> Entry {
    Entry {
        id: format!("id-{n}"),
        original: format!("велосипед {n}"),
        figalized: format!("Фигосипед {n}"),
        request_id: Some(format!("request-{n}")),
    }
}

struct Opened {
    journal: Arc<Journal>,
    handed: Handed,
    metrics: JournalMetrics,
}

/// Opens and starts the journal in `dir`, collecting what it hands on. A journal closed a
/// moment ago may still hold the folder's lock while its writer ends: retried for a while.
fn open(dir: &TempDir, max_bytes: u64) -> Opened {
    let config = JournalConfig {
        dir: dir.path().to_owned(),
        max_bytes,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics = JournalMetrics::new(&Registry::new());
    let (journal, recovered) = loop {
        match Journal::open(&config, metrics.clone()) {
            Ok(opened) => break opened,
            Err(err) if Instant::now() < deadline => {
                assert!(format!("{err:#}").contains("another process"), "{err:#}");
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(err) => panic!("{err:#}"),
        }
    };
    let handed = Handed::default();
    let collect = Arc::clone(&handed);
    journal
        .start(recovered, move |ticket, entries| {
            let mut handed = collect.lock().unwrap();
            handed.extend(entries.into_iter().map(|entry| (ticket, entry)));
        })
        .unwrap();
    Opened {
        journal,
        handed,
        metrics,
    }
}

fn segments(dir: &TempDir) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.contains(".journal"))
        .collect();
    names.sort();
    names
}

/// Settles both halves of every record handed on so far; returns how many records.
fn settle_all(opened: &Opened) -> usize {
    let tickets: Vec<Ticket> = opened
        .handed
        .lock()
        .unwrap()
        .iter()
        .map(|(t, _)| *t)
        .collect();
    for ticket in &tickets {
        opened.journal.settle(*ticket);
        opened.journal.settle(*ticket);
    }
    tickets.len()
}

fn handed_entries(handed: &Handed) -> Vec<Entry> {
    handed
        .lock()
        .unwrap()
        .iter()
        .map(|(_, e)| e.clone())
        .collect()
}

#[tokio::test]
async fn what_was_not_settled_is_handed_on_again_at_the_next_start() {
    let dir = TempDir::new();
    let first = open(&dir, 1 << 30);
    for n in 0..3 {
        first.journal.append(entry(n)).await.unwrap();
    }
    // Handed on before the append returned.
    assert_eq!(
        handed_entries(&first.handed),
        vec![entry(0), entry(1), entry(2)]
    );
    assert_eq!(first.metrics.appended.get(), 3);
    assert!(first.metrics.syncs.get() >= 1);
    // Both halves of the first record settle; the others do not before the process ends.
    let ticket = first.handed.lock().unwrap()[0].0;
    first.journal.settle(ticket);
    first.journal.settle(ticket);
    first.journal.close();
    drop(first);

    let second = open(&dir, 1 << 30);
    // The whole segment comes back: a settled record is replayed too, and stored once by id.
    assert_eq!(
        handed_entries(&second.handed),
        vec![entry(0), entry(1), entry(2)]
    );
    assert_eq!(second.metrics.replayed.get(), 3);
    assert_eq!(second.metrics.corrupt.get(), 0);
}

#[tokio::test]
async fn a_clean_close_after_everything_settled_leaves_nothing_to_replay() {
    let dir = TempDir::new();
    let opened = open(&dir, 1 << 30);
    for n in 0..5 {
        opened.journal.append(entry(n)).await.unwrap();
    }
    assert_eq!(settle_all(&opened), 5);
    tokio::time::timeout(Duration::from_secs(5), opened.journal.settled())
        .await
        .expect("everything settled");
    opened.journal.close();
    assert!(segments(&dir).is_empty(), "{:?}", segments(&dir));
    assert!(
        opened.journal.append(entry(9)).await.is_err(),
        "a closed journal refuses"
    );
}

#[tokio::test]
async fn full_segments_give_way_to_new_ones_and_go_once_settled() {
    let dir = TempDir::new();
    let opened = open(&dir, 1 << 30);
    // About three segments of records, in waves of concurrent requests that share syncs.
    for wave in 0..60 {
        let appends = (wave * 500..(wave + 1) * 500).map(|n| opened.journal.append(entry(n)));
        for result in futures_util::future::join_all(appends).await {
            result.unwrap();
        }
    }
    assert!(segments(&dir).len() >= 3, "{:?}", segments(&dir));
    assert!(opened.metrics.syncs.get() < 30_000, "appends shared syncs");
    assert_eq!(settle_all(&opened), 30_000);
    // Only the segment being written is left.
    assert_eq!(segments(&dir).len(), 1, "{:?}", segments(&dir));
    assert_eq!(opened.metrics.segments.get(), 1);
    assert!(opened.metrics.bytes.get() < i64::try_from(SEGMENT_BYTES).unwrap() * 2);
}

#[tokio::test]
async fn a_torn_tail_is_skipped_and_counted_and_the_journal_goes_on() {
    let dir = TempDir::new();
    let mut data = format::MAGIC.to_vec();
    for n in 0..3 {
        format::encode(&entry(n), &mut data);
    }
    let whole = data.len();
    format::encode(&entry(3), &mut data);
    // The last record cut in the middle, as a crash during its write leaves it.
    data.truncate(whole + 20);
    fs::write(segment_path(dir.path(), 7), &data).unwrap();

    let opened = open(&dir, 1 << 30);
    assert_eq!(
        handed_entries(&opened.handed),
        vec![entry(0), entry(1), entry(2)]
    );
    assert_eq!(opened.metrics.corrupt.get(), 1);
    assert_eq!(opened.metrics.replayed.get(), 3);
    // New records go to a new segment, never after the damage.
    opened.journal.append(entry(10)).await.unwrap();
    let (ticket, _) = opened.handed.lock().unwrap()[3].clone();
    assert_ne!(ticket, Ticket::of_segment(7));
    assert_eq!(
        segments(&dir),
        vec![
            "00000000000000000007.journal".to_owned(),
            "00000000000000000008.journal".to_owned()
        ]
    );
}

#[tokio::test]
async fn a_file_that_is_not_a_segment_is_set_aside_and_counted() {
    let dir = TempDir::new();
    fs::write(segment_path(dir.path(), 3), b"not a journal at all").unwrap();
    fs::write(dir.path().join("notes.txt"), b"left alone").unwrap();

    let opened = open(&dir, 1 << 30);
    assert!(opened.handed.lock().unwrap().is_empty());
    assert_eq!(opened.metrics.corrupt.get(), 1);
    assert_eq!(
        segments(&dir),
        vec![
            "00000000000000000003.journal.corrupt".to_owned(),
            "00000000000000000004.journal".to_owned()
        ]
    );
    assert!(dir.path().join("notes.txt").exists());
    opened.journal.append(entry(0)).await.unwrap();
}

#[tokio::test]
async fn a_full_journal_refuses_until_what_it_holds_settles() {
    let dir = TempDir::new();
    let mut one = Vec::new();
    format::encode(&entry(0), &mut one);
    // Room for the segment's magic and two records.
    let max_bytes = format::MAGIC.len() as u64 + 2 * one.len() as u64 + 4;
    let opened = open(&dir, max_bytes);
    opened.journal.append(entry(0)).await.unwrap();
    opened.journal.append(entry(1)).await.unwrap();
    assert_eq!(
        opened.journal.append(entry(2)).await,
        Err(AppendError::Full)
    );
    assert_eq!(opened.metrics.refused.get(), 1);
    assert_eq!(handed_entries(&opened.handed).len(), 2);
}

#[tokio::test]
async fn a_second_process_cannot_use_the_same_folder() {
    let dir = TempDir::new();
    let _first = open(&dir, 1 << 30);
    let config = JournalConfig {
        dir: dir.path().to_owned(),
        max_bytes: 1 << 30,
    };
    let err = Journal::open(&config, JournalMetrics::new(&Registry::new()))
        .err()
        .expect("the folder is taken");
    let message = format!("{err:#}");
    assert!(message.contains("JOURNAL_DIR"), "{message}");
    assert!(message.contains("another process"), "{message}");
}

#[tokio::test]
async fn a_settled_segment_past_64_kib_gives_way_at_the_next_write() {
    let dir = TempDir::new();
    let opened = open(&dir, 1 << 30);
    // About 100 KiB of records, all settled.
    let appends = (0..1_000).map(|n| opened.journal.append(entry(n)));
    for result in futures_util::future::join_all(appends).await {
        result.unwrap();
    }
    assert_eq!(settle_all(&opened), 1_000);
    let before = segments(&dir);
    assert_eq!(before.len(), 1, "{before:?}");

    opened.journal.append(entry(1_000)).await.unwrap();
    let after = segments(&dir);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(before, after, "the settled segment was deleted");
}
