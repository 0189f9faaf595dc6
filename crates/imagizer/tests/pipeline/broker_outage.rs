//! figalize keeps answering while the broker is away and publishes the jobs when it returns.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::image_job::image_key;
use common::testing::wait_until_async;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message};
use serde_json::json;

use crate::helpers::unique;

/// A broker of the test's own on `port`, killed when dropped.
struct Broker(Child);

impl Broker {
    fn start(port: u16) -> Self {
        let binary = std::env::var("TEST_TANSU_BIN").unwrap_or_else(|_| {
            let home = std::env::var("HOME").expect("HOME");
            format!("{home}/.cache/figachechnaya/tansu-0.6.0/tansu")
        });
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&binary)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!("starting {binary} (ci/services/kafka.sh installs it): {err}")
            });
        Self(child)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_wait_while_the_broker_is_down_and_go_out_when_it_returns() {
    let port = free_port();
    let bootstrap = format!("127.0.0.1:{port}");
    let topic = unique("figalized");
    let figalize = crate::helpers::Figalize::start(&bootstrap, &topic).await;
    let service = &figalize.service;
    let words = ["велосипед", "молоко", "собака"];
    let mut expected = BTreeSet::new();
    for word in words {
        let response = service
            .post_json("/api/figalize/", &json!({"schema_id": 0, "phrase": word}))
            .await;
        assert_eq!(response.status(), 200, "answers with no broker");
        let body: serde_json::Value = response.json().await.unwrap();
        expected.insert(image_key(body["data"].as_str().unwrap()));
    }
    assert_eq!(
        service
            .metric("figachechnaya_figalize_image_jobs_buffered")
            .await,
        3
    );
    assert_eq!(
        service
            .metric("figachechnaya_figalize_image_jobs_delivered_total")
            .await,
        0
    );

    let _broker = Broker::start(port);
    wait_until_async("the buffered jobs delivered", || async {
        service
            .metric("figachechnaya_figalize_image_jobs_delivered_total")
            .await
            == 3
    })
    .await;

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", unique("reader"))
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let mut keys = BTreeSet::new();
    while keys.len() < 3 {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("the jobs are in the topic")
            .unwrap();
        let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
        let value: serde_json::Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
        assert_eq!(value["version"], 1);
        assert_eq!(image_key(value["text"].as_str().unwrap()), key);
        let headers = message.headers().expect("headers");
        assert!(
            headers
                .iter()
                .any(|h| h.key == "x-request-id" && h.value.is_some()),
            "the request id travels with the job"
        );
        keys.insert(key);
    }
    assert_eq!(keys, expected);
    // Nothing given up and nothing turned away: the producer's queue held them all.
    assert_eq!(
        service
            .metric("figachechnaya_figalize_image_jobs_dropped_total{reason=\"error\"}")
            .await,
        0
    );
    assert_eq!(
        service
            .metric("figachechnaya_figalize_image_jobs_deferred_total")
            .await,
        0
    );
    figalize.shut_down().await;
}
