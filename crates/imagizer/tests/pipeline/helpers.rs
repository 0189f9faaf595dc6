//! Where the test services are, and what the tests do with them.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use common::config::Env;
use common::image_job::{ImageJob, REQUEST_ID_HEADER, image_key};
use common::testing::RunningService;
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// The broker `ci/services/kafka.sh` starts.
pub fn bootstrap() -> String {
    std::env::var("TEST_KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// The S3 server `ci/services/s3.sh` starts, and its test bucket and key.
pub struct S3 {
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    /// Garage's web endpoint, which serves the bucket publicly by Host header.
    pub web: String,
}

pub fn s3() -> S3 {
    let var =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    S3 {
        endpoint: var("TEST_S3_ENDPOINT", "http://127.0.0.1:3900"),
        bucket: var("TEST_S3_BUCKET", "figachechnaya-images"),
        access_key: var("TEST_S3_ACCESS_KEY", "GK0f1ac4ec4a7a5e0ac7e51a57"),
        secret_key: var(
            "TEST_S3_SECRET_KEY",
            "7c3f0f0e6b0a4b5f9d1c2e3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c",
        ),
        web: var("TEST_S3_WEB", "127.0.0.1:3902"),
    }
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// One test's corner of the shared services: its own topic, group and object prefix.
pub struct Lane {
    pub topic: String,
    pub group: String,
    pub prefix: String,
}

impl Lane {
    pub fn new() -> Self {
        Self {
            topic: unique("figalized"),
            group: unique("imagizer"),
            prefix: format!("{}/", unique("test")),
        }
    }

    pub fn dead_letter_topic(&self) -> String {
        format!("{}.dead-letter", self.topic)
    }

    /// imagizer's environment for this lane, on Kafka and S3, public URLs through Garage's
    /// web endpoint.
    pub fn imagizer_env(&self) -> Vec<(String, String)> {
        let s3 = s3();
        [
            ("IMAGIZER_API_PORT", "0".to_owned()),
            ("KAFKA_BOOTSTRAP", bootstrap()),
            ("KAFKA_TOPIC_NAME", self.topic.clone()),
            ("KAFKA_GROUP_ID", self.group.clone()),
            ("KAFKA_SESSION_TIMEOUT_MS", "6000".to_owned()),
            ("S3_ENDPOINT", s3.endpoint),
            ("S3_REGION", "garage".to_owned()),
            ("S3_BUCKET", s3.bucket.clone()),
            ("S3_PATH", self.prefix.clone()),
            ("S3_ACCESS_KEY", s3.access_key),
            ("S3_SECRET_KEY", s3.secret_key),
            (
                "S3_PUBLIC_URL",
                format!("http://{}.web.localhost:3902/", s3.bucket),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// The objects stored under this lane's prefix, by file name.
    pub async fn objects(&self) -> BTreeSet<String> {
        let s3 = s3();
        let client = s3_client();
        let mut names = BTreeSet::new();
        let mut pages = client
            .list_objects_v2()
            .bucket(&s3.bucket)
            .prefix(&self.prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for object in page.expect("listing the bucket").contents() {
                let key = object.key().expect("a key");
                names.insert(key.strip_prefix(&self.prefix).expect("prefix").to_owned());
            }
        }
        names
    }

    /// The offsets imagizer's group has committed on the job topic, summed over its three
    /// partitions: how many jobs count as done.
    pub fn committed(&self) -> i64 {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap())
            .set("group.id", &self.group)
            .create()
            .expect("a consumer");
        let mut partitions = rdkafka::TopicPartitionList::new();
        for partition in 0..3 {
            partitions.add_partition(&self.topic, partition);
        }
        consumer
            .committed_offsets(partitions, Duration::from_secs(10))
            .expect("the group's offsets")
            .elements()
            .iter()
            .filter_map(|element| match element.offset() {
                rdkafka::Offset::Offset(offset) => Some(offset),
                _ => None,
            })
            .sum()
    }

    /// Publishes a raw message to the lane's topic.
    pub async fn publish_raw(&self, key: &str, value: &[u8]) {
        let record = FutureRecord::to(&self.topic)
            .key(key)
            .payload(value)
            .headers(OwnedHeaders::new().insert(Header {
                key: REQUEST_ID_HEADER,
                value: Some("test-request"),
            }));
        producer()
            .send(record, Duration::from_secs(30))
            .await
            .expect("the broker takes the message");
    }

    /// Publishes a job as figalize does.
    pub async fn publish(&self, text: &str) {
        let job = ImageJob {
            text: text.to_owned(),
            request_id: None,
        };
        self.publish_raw(&job.key(), &job.encode()).await;
    }

    /// Creates the lane's topics, as the services would, so messages can be published
    /// before imagizer starts.
    pub async fn create_topics(&self) {
        let mut settings = common::kafka::KafkaSettings::from_env(&Env::from_pairs([
            ("KAFKA_BOOTSTRAP", bootstrap()),
            ("KAFKA_TOPIC_NAME", self.topic.clone()),
        ]))
        .unwrap();
        settings.partitions = 3;
        settings.ensure_topics().await.expect("topics created");
    }
}

/// imagizer in this process.
pub async fn start_imagizer(vars: Vec<(String, String)>) -> RunningService {
    RunningService::start(
        imagizer::build(&Env::from_pairs(vars))
            .await
            .expect("imagizer starts"),
    )
}

/// One producer for all the tests in this process (a client per message would spend most
/// of the time connecting).
pub fn producer() -> &'static FutureProducer {
    static PRODUCER: std::sync::LazyLock<FutureProducer> = std::sync::LazyLock::new(|| {
        ClientConfig::new()
            .set("bootstrap.servers", bootstrap())
            .set("enable.idempotence", "true")
            .create()
            .expect("a producer")
    });
    &PRODUCER
}

pub fn s3_client() -> aws_sdk_s3::Client {
    let s3 = s3();
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("garage"))
            .endpoint_url(&s3.endpoint)
            .force_path_style(true)
            .credentials_provider(Credentials::new(
                s3.access_key,
                s3.secret_key,
                None,
                None,
                "tests",
            ))
            .build(),
    )
}

/// `POST /api/getimageurl/` until it answers 200; the URL.
pub async fn image_url(service: &RunningService, text: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_mins(1);
    loop {
        let response = service
            .post_json("/api/getimageurl/", &serde_json::json!({"phrase": text}))
            .await;
        match response.status().as_u16() {
            200 => {
                let body: serde_json::Value = response.json().await.unwrap();
                return body["data"].as_str().unwrap().to_owned();
            }
            204 => assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for the image of {text}"
            ),
            status => panic!("unexpected {status}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Fetches a public image URL on Garage's web endpoint (a `*.localhost` name, which browsers
/// resolve to this machine by themselves).
pub async fn fetch_public(url: &str) -> reqwest::Response {
    let host = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split(['/', ':']).next())
        .expect("an http URL")
        .to_owned();
    let web: std::net::SocketAddr = s3().web.parse().unwrap();
    reqwest::Client::builder()
        .resolve(&host, web)
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .expect("the image URL answers")
}

/// Decodes a PNG and checks it is the one imagizer renders for `text`.
pub fn assert_is_the_png_of(png: &[u8], text: &str) {
    let image = image::load_from_memory_with_format(png, image::ImageFormat::Png).expect("a PNG");
    assert!(image.color().has_alpha(), "an alpha channel");
    let expected = imagizer::render::Renderer::new().draw(text).unwrap();
    assert_eq!(
        (image.width(), image.height()),
        expected.dimensions(),
        "the size of the rendered text"
    );
}

/// The file name of a text's image.
pub fn file_of(text: &str) -> String {
    format!("{}.png", image_key(text))
}

/// Distinct Russian phrases, one per number.
pub fn phrase(n: usize) -> String {
    const LETTERS: [char; 10] = ['а', 'б', 'в', 'г', 'д', 'е', 'ж', 'з', 'и', 'к'];
    let digits: String = n
        .to_string()
        .chars()
        .map(|d| LETTERS[d.to_digit(10).unwrap() as usize])
        .collect();
    format!("Фиг {digits}")
}

/// figalize in this process, publishing to `topic` on `bootstrap`, with a history of its own
/// (SQLite) so it shuts down with nothing left to deliver.
pub struct Figalize {
    pub service: RunningService,
    history: RunningService,
    _data: common::testing::TempDir,
}

impl Figalize {
    pub async fn start(bootstrap: &str, topic: &str) -> Self {
        let data = common::testing::TempDir::new();
        let history = RunningService::start(
            history::build(&Env::from_pairs([
                ("HISTORY_API_PORT", "0"),
                ("DATA_DIR", data.path().to_str().unwrap()),
            ]))
            .await
            .expect("history starts"),
        );
        let service = RunningService::start(
            figalize::build(&Env::from_pairs([
                ("FIGALIZE_API_PORT", "0".to_owned()),
                ("KAFKA_BOOTSTRAP", bootstrap.to_owned()),
                ("KAFKA_TOPIC_NAME", topic.to_owned()),
                ("HISTORY_APPEND_URL", history.url("/api/append/")),
                (
                    "JOURNAL_DIR",
                    data.path().join("journal").to_str().unwrap().to_owned(),
                ),
            ]))
            .await
            .expect("figalize starts"),
        );
        Self {
            service,
            history,
            _data: data,
        }
    }

    /// Stops figalize (which delivers what it holds), then history.
    pub async fn shut_down(self) {
        self.service
            .shut_down()
            .await
            .expect("figalize stops cleanly");
        self.history
            .shut_down()
            .await
            .expect("history stops cleanly");
    }
}
