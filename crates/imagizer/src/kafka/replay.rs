//! `imagizer replay-dead-letters`: puts the dead-lettered jobs back on the job topic, once the
//! cause (a bug, a format this release did not know) is fixed, and exits.
//!
//! It replays what the dead-letter topic holds when it starts, and no further, so a job that
//! fails again (and is dead-lettered again) is not replayed in a loop. Each message goes back
//! with its key (so its partition, by the same hash), its value and its request id; the
//! dead-letter headers are dropped and `x-replayed-from` names where it was. Progress is the
//! committed offsets of the consumer group `<KAFKA_GROUP_ID>.replay`: an offset is committed
//! only once the job topic has the message, so an interrupted run resumes where it stopped
//! (at worst one message is sent twice, which imagizer renders once), and the next run
//! replays only newer dead letters.

use std::time::Duration;

use anyhow::{Context, bail};
use common::image_job::{DEAD_LETTER_REASON_HEADER, REQUEST_ID_HEADER};
use common::kafka::{KafkaSettings, LogContext};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

/// The header naming where a replayed message was: `<dead-letter topic>/<partition>/<offset>`.
pub const REPLAYED_FROM_HEADER: &str = "x-replayed-from";

/// Headers the dead-letter topic adds, which the replayed job does not carry.
const DEAD_LETTER_HEADERS: [&str; 3] = [
    DEAD_LETTER_REASON_HEADER,
    "x-original-partition",
    "x-original-offset",
];

/// How long one broker request may take before the run fails.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Replays the dead letters present now (see the module docs); returns how many.
pub async fn replay_dead_letters(settings: &KafkaSettings) -> anyhow::Result<u64> {
    let source = &settings.dead_letter_topic;
    let group = format!("{}.replay", settings.group);
    let consumer: StreamConsumer<LogContext> = settings
        .client_config("imagizer-replay")
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create_with_context(LogContext)
        .context("creating the consumer")?;
    let producer: FutureProducer<LogContext> = settings
        .producer_config("imagizer-replay")
        .create_with_context(LogContext)
        .context("creating the producer")?;

    let ends = pending(&consumer, source, &group)?;
    let mut remaining: Vec<(i32, i64)> = ends
        .iter()
        .filter(|(_, start, end)| start < end)
        .map(|&(partition, _, end)| (partition, end))
        .collect();
    let total: i64 = ends.iter().map(|(_, start, end)| end - start).sum();
    tracing::info!(
        topic = source,
        to = settings.topic,
        messages = total,
        "replaying dead letters"
    );
    if remaining.is_empty() {
        return Ok(0);
    }
    let mut assignment = TopicPartitionList::new();
    for &(partition, start, _) in &ends {
        assignment.add_partition_offset(source, partition, Offset::Offset(start))?;
    }
    consumer.assign(&assignment)?;

    let mut replayed = 0;
    while !remaining.is_empty() {
        let message = tokio::time::timeout(TIMEOUT, consumer.recv())
            .await
            .with_context(|| format!("no message from {source} within {TIMEOUT:?}"))?
            .with_context(|| format!("reading {source}"))?;
        let (partition, offset) = (message.partition(), message.offset());
        let Some(position) = remaining.iter().position(|&(p, _)| p == partition) else {
            continue;
        };
        let from = format!("{source}/{partition}/{offset}");
        let mut headers = OwnedHeaders::new();
        for header in message.headers().iter().flat_map(|headers| headers.iter()) {
            if !DEAD_LETTER_HEADERS.contains(&header.key) {
                headers = headers.insert(header);
            }
        }
        headers = headers.insert(Header {
            key: REPLAYED_FROM_HEADER,
            value: Some(&from),
        });
        let mut record = FutureRecord::<[u8], [u8]>::to(&settings.topic)
            .payload(message.payload().unwrap_or_default())
            .headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        producer
            .send(record, TIMEOUT)
            .await
            .map_err(|(err, _)| err)
            .with_context(|| format!("sending {from} to {}", settings.topic))?;
        let mut done = TopicPartitionList::new();
        done.add_partition_offset(source, partition, Offset::Offset(offset + 1))?;
        consumer
            .commit(&done, CommitMode::Sync)
            .with_context(|| format!("committing {from}"))?;
        replayed += 1;
        tracing::info!(
            from,
            request_id = request_id(&message).unwrap_or("-"),
            "dead letter replayed"
        );
        if offset + 1 >= remaining[position].1 {
            remaining.swap_remove(position);
        }
    }
    Ok(replayed)
}

/// For each partition of `topic`: where the group's replay starts (its committed offset, or
/// the partition's first) and where it ends (the partition's end now).
fn pending(
    consumer: &StreamConsumer<LogContext>,
    topic: &str,
    group: &str,
) -> anyhow::Result<Vec<(i32, i64, i64)>> {
    let metadata = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .with_context(|| format!("reading the metadata of {topic}"))?;
    let partitions: Vec<i32> = match metadata.topics().first() {
        Some(found) if found.error().is_none() && !found.partitions().is_empty() => found
            .partitions()
            .iter()
            .map(rdkafka::metadata::MetadataPartition::id)
            .collect(),
        _ => bail!("the dead-letter topic {topic} does not exist"),
    };
    let mut list = TopicPartitionList::new();
    for &partition in &partitions {
        list.add_partition(topic, partition);
    }
    let committed = consumer
        .committed_offsets(list, TIMEOUT)
        .with_context(|| format!("reading the offsets of group {group}"))?;
    partitions
        .into_iter()
        .map(|partition| {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition, TIMEOUT)
                .with_context(|| format!("reading the offsets of {topic}/{partition}"))?;
            let start = match committed
                .find_partition(topic, partition)
                .map(|element| element.offset())
            {
                Some(Offset::Offset(offset)) => offset.max(low),
                _ => low,
            };
            Ok((partition, start, high))
        })
        .collect()
}

fn request_id<M: Message>(message: &M) -> Option<&str> {
    message
        .headers()?
        .iter()
        .find(|header| header.key == REQUEST_ID_HEADER)
        .and_then(|header| header.value)
        .and_then(|value| std::str::from_utf8(value).ok())
}
