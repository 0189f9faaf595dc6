//! figalize killed with SIGKILL: whatever it answered 200 reaches history and the broker once
//! it is started again on the same journal, and a journal torn by the crash is read up to the
//! damage.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::testing::{RunningBinary, TempDir, start_binary, wait_until_async};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use serde_json::{Value, json};

use crate::helpers::{free_port, russian_number, sorted, start_history_at, stored_originals};

const BINARY: &str = env!("CARGO_BIN_EXE_figalize");

fn bootstrap() -> String {
    std::env::var("TEST_KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// figalize as a process of its own, its journal in `journal`, history at `history`, the
/// broker at `broker`.
fn start_figalize(journal: &Path, history: &str, broker: &str, topic: &str) -> RunningBinary {
    start_binary(
        BINARY,
        &[
            ("FIGALIZE_API_PORT", "0"),
            ("JOURNAL_DIR", journal.to_str().unwrap()),
            ("HISTORY_APPEND_URL", history),
            ("OUTBOX_MAX_BACKOFF_MS", "300"),
            ("KAFKA_BOOTSTRAP", broker),
            ("KAFKA_TOPIC_NAME", topic),
            // The test is one client sending many figalizations at once, on purpose.
            ("RATE_LIMIT_PER_SECOND", "0"),
        ],
    )
}

/// Figalizes each phrase (all answered 200); returns the answers.
async fn figalize_all(service: &RunningBinary, phrases: &[String]) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut answers = Vec::new();
    for phrase in phrases {
        let response = client
            .post(format!("http://{}/api/figalize/", service.addr))
            .json(&json!({"schema_id": 0, "phrase": phrase}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        answers.push(answer["data"].as_str().unwrap().to_owned());
    }
    answers
}

/// Reads `topic` from its beginning until every text of `expected` has been seen (or 60 s
/// have passed); returns the texts seen.
async fn texts_on_topic(topic: &str, expected: &HashSet<String>) -> HashSet<String> {
    let topic = topic.to_owned();
    let expected = expected.clone();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap())
            .set("group.id", format!("{topic}-reader"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .expect("a consumer");
        consumer.subscribe(&[&topic]).expect("subscribed");
        let mut seen = HashSet::new();
        let deadline = Instant::now() + Duration::from_mins(1);
        while !expected.is_subset(&seen) && Instant::now() < deadline {
            if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
                let job = common::image_job::ImageJob::decode(message.payload().unwrap(), None)
                    .expect("a job as figalize writes it");
                seen.insert(job.text);
            }
        }
        seen
    })
    .await
    .unwrap()
}

/// The journal's segment files.
fn segments(journal: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(journal)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "journal"))
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn a_killed_figalize_delivers_everything_it_answered_once_started_again() {
    let journal = TempDir::new();
    let history_addr = free_port();
    let history_url = format!("http://{history_addr}/api/append/");
    let topic = format!("figalize-crash-{}", uuid::Uuid::new_v4().simple());
    // First life: history and the broker out of reach, so everything it answers waits.
    let unreachable_broker = free_port().to_string();
    let first = start_figalize(journal.path(), &history_url, &unreachable_broker, &topic);
    let phrases: Vec<String> = (0..200).map(russian_number).collect();
    let answers = figalize_all(&first, &phrases).await;
    assert_eq!(
        first
            .metric("figachechnaya_figalize_history_outbox_delivered_total")
            .await,
        0
    );
    first.kill();

    // Second life, on the same journal, with history and the broker there.
    let (db, _history) = start_history_at(history_addr).await;
    let second = start_figalize(journal.path(), &history_url, &bootstrap(), &topic);
    assert_eq!(
        second
            .metric("figachechnaya_figalize_journal_replayed_total")
            .await,
        200
    );
    wait_until_async("every answered figalization in history", || async {
        stored_originals(&db).await.len() >= phrases.len()
    })
    .await;
    // Each exactly once.
    assert_eq!(stored_originals(&db).await, sorted(phrases));
    let expected: HashSet<String> = answers.into_iter().collect();
    let published = texts_on_topic(&topic, &expected).await;
    assert!(
        expected.is_subset(&published),
        "{} image jobs never reached the broker",
        expected.difference(&published).count()
    );

    // A clean stop once everything is delivered leaves nothing to replay.
    assert!(second.terminate().success());
    assert_eq!(segments(journal.path()), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn a_journal_torn_by_the_crash_is_replayed_up_to_the_damage_and_the_service_goes_on() {
    let journal = TempDir::new();
    let history_addr = free_port();
    let history_url = format!("http://{history_addr}/api/append/");
    let topic = format!("figalize-torn-{}", uuid::Uuid::new_v4().simple());
    let broker = bootstrap();
    let first = start_figalize(journal.path(), &history_url, &broker, &topic);
    let phrases: Vec<String> = (0..20).map(russian_number).collect();
    figalize_all(&first, &phrases).await;
    first.kill();
    // The last record loses its end, as a crash in the middle of its write leaves it: its
    // final bytes are still the zeros the segment was made with.
    let [segment] = segments(journal.path()).try_into().expect("one segment");
    let mut data = std::fs::read(&segment).unwrap();
    let end = data.iter().rposition(|byte| *byte != 0).expect("records") + 1;
    data[end - 5..end].fill(0);
    std::fs::write(&segment, &data).unwrap();

    let (db, _history) = start_history_at(history_addr).await;
    let second = start_figalize(journal.path(), &history_url, &broker, &topic);
    assert_eq!(
        second
            .metric("figachechnaya_figalize_journal_corrupt_total")
            .await,
        1
    );
    assert_eq!(
        second
            .metric("figachechnaya_figalize_journal_replayed_total")
            .await,
        19
    );
    // It takes new figalizations as usual.
    let late = vec![russian_number(1000)];
    figalize_all(&second, &late).await;
    let mut expected = phrases[..19].to_vec();
    expected.extend(late);
    wait_until_async("the records before the damage and the new one", || async {
        stored_originals(&db).await.len() >= expected.len()
    })
    .await;
    assert_eq!(stored_originals(&db).await, sorted(expected));
    assert!(second.terminate().success());
}
