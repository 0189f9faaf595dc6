//! `imagizer replay-dead-letters`: dead-lettered jobs go back on the job topic, once, and are
//! then rendered.

use std::collections::BTreeMap;
use std::time::Duration;

use common::image_job::ImageJob;
use common::testing::run_binary;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::helpers::{Lane, bootstrap, file_of, producer, start_imagizer, unique};

const BINARY: &str = env!("CARGO_BIN_EXE_imagizer");

/// Runs the command for `lane` and returns how many messages it says it replayed.
async fn replay(lane: &Lane) -> u64 {
    let vars = [
        ("LOG_FORMAT", "json".to_owned()),
        ("KAFKA_BOOTSTRAP", bootstrap()),
        ("KAFKA_TOPIC_NAME", lane.topic.clone()),
        ("KAFKA_GROUP_ID", lane.group.clone()),
    ];
    let (code, stdout, stderr) = tokio::task::spawn_blocking(move || {
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        run_binary(BINARY, &["replay-dead-letters"], &vars)
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    let done = stdout
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("a JSON log line"))
        .find(|entry| entry["message"] == "dead letters replayed")
        .unwrap_or_else(|| panic!("no summary line in {stdout}"));
    done["replayed"].as_u64().expect("a count")
}

/// Dead-letters `text` as imagizer would have: original key, value and request id, and the
/// dead-letter headers.
async fn dead_letter(lane: &Lane, text: &str) {
    let job = ImageJob::for_text(text.to_owned());
    let value = job.encode();
    let key = job.key();
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "x-dead-letter-reason",
            value: Some("unknown format version 2"),
        })
        .insert(Header {
            key: "x-original-partition",
            value: Some("1"),
        })
        .insert(Header {
            key: "x-original-offset",
            value: Some("7"),
        })
        .insert(Header {
            key: "x-request-id",
            value: Some("replay-test"),
        });
    let topic = lane.dead_letter_topic();
    let record = FutureRecord::to(&topic)
        .key(&key)
        .payload(&value)
        .headers(headers);
    producer()
        .send(record, Duration::from_secs(30))
        .await
        .expect("the broker takes the dead letter");
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_go_back_once_with_their_key_and_request_id_and_are_rendered() {
    let lane = Lane::new();
    lane.create_topics().await;
    let texts = ["Фигорад", "Хренодар"];
    for text in texts {
        dead_letter(&lane, text).await;
    }

    assert_eq!(replay(&lane).await, 2);
    // A second run finds nothing new: the group's offsets moved past both.
    assert_eq!(replay(&lane).await, 0);

    // The job topic has each job once, with its key and request id, without the dead-letter
    // headers, and naming where it came from.
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", unique("replay-reader"))
        .create()
        .unwrap();
    let mut partitions = TopicPartitionList::new();
    for partition in 0..3 {
        partitions
            .add_partition_offset(&lane.topic, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&partitions).unwrap();
    let mut jobs = BTreeMap::new();
    while jobs.len() < texts.len() {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("the replayed jobs within 30 s")
            .unwrap();
        let headers: BTreeMap<String, String> = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| {
                        let value = String::from_utf8_lossy(h.value.unwrap_or_default());
                        (h.key.to_owned(), value.into_owned())
                    })
                    .collect()
            })
            .unwrap_or_default();
        let job = ImageJob::decode(message.payload().unwrap(), None).unwrap();
        assert_eq!(message.key(), Some(job.key().as_bytes()));
        assert_eq!(
            headers.get("x-request-id").map(String::as_str),
            Some("replay-test")
        );
        for dropped in [
            "x-dead-letter-reason",
            "x-original-partition",
            "x-original-offset",
        ] {
            assert!(
                !headers.contains_key(dropped),
                "{dropped} kept: {headers:?}"
            );
        }
        let from = &headers["x-replayed-from"];
        assert!(
            from.starts_with(&format!("{}/0/", lane.dead_letter_topic())),
            "{from}"
        );
        assert!(jobs.insert(job.text, from.clone()).is_none(), "a job twice");
    }
    assert_eq!(jobs.keys().map(String::as_str).collect::<Vec<_>>(), {
        let mut sorted = texts.to_vec();
        sorted.sort_unstable();
        sorted
    });

    // imagizer renders them as any other job.
    let imagizer = start_imagizer(lane.imagizer_env()).await;
    common::testing::wait_until_async_within(
        "the replayed jobs' images",
        Duration::from_mins(1),
        || async {
            let objects = lane.objects().await;
            texts.iter().all(|text| objects.contains(&file_of(text)))
        },
    )
    .await;
    imagizer.shut_down().await.unwrap();
}

#[test]
fn a_missing_dead_letter_topic_fails_with_its_name() {
    let topic = unique("nowhere");
    let (code, _, stderr) = run_binary(
        BINARY,
        &["replay-dead-letters"],
        &[
            ("KAFKA_BOOTSTRAP", &bootstrap()),
            ("KAFKA_TOPIC_NAME", &topic),
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the dead-letter topic {topic}.dead-letter does not exist"
        )),
        "{stderr}"
    );
}
