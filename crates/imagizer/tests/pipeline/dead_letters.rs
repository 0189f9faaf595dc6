//! A message that can never succeed goes to the dead-letter topic; the partition goes on.

use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::helpers::{Lane, bootstrap, file_of, start_imagizer};

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_message_is_dead_lettered_with_its_reason_and_later_jobs_still_run() {
    let lane = Lane::new();
    lane.create_topics().await;
    // Same key, so same partition: the poison message must not pin it.
    let key = "poison";
    lane.publish_raw(key, b"{not json").await;
    let good = common::image_job::ImageJob {
        text: "Фиговый".into(),
        request_id: None,
    };
    lane.publish_raw(key, &good.encode()).await;
    let imagizer = start_imagizer(lane.imagizer_env()).await;

    common::testing::wait_until_async_within(
        "the good job's image",
        Duration::from_mins(1),
        || async { lane.objects().await.contains(&file_of("Фиговый")) },
    )
    .await;

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", crate::helpers::unique("dead-letter-reader"))
        .create()
        .unwrap();
    let mut partitions = TopicPartitionList::new();
    partitions
        .add_partition_offset(&lane.dead_letter_topic(), 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&partitions).unwrap();
    let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .expect("a dead letter within 30 s")
        .unwrap();
    assert_eq!(message.payload(), Some(&b"{not json"[..]));
    assert_eq!(message.key(), Some(key.as_bytes()));
    let headers = message.headers().expect("headers");
    let header = |name: &str| {
        headers
            .iter()
            .find(|h| h.key == name)
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    assert!(
        header("x-dead-letter-reason").is_some_and(|r| r.starts_with("undecodable")),
        "{:?}",
        header("x-dead-letter-reason")
    );
    assert_eq!(header("x-request-id").as_deref(), Some("test-request"));
    common::testing::wait_until_async("the dead letter counted", || async {
        imagizer
            .metric("figachechnaya_imagizer_dead_lettered_total{reason=\"undecodable\"}")
            .await
            == 1
    })
    .await;
    // Both messages count as done: the partition's commit moved past the poison message.
    common::testing::wait_until_async("both offsets committed", || async { lane.committed() == 2 })
        .await;
    imagizer.shut_down().await.unwrap();
}
