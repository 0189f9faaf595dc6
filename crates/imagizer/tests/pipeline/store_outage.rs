//! A store outage longer than the group's poll interval: jobs wait, the consumer stays in its
//! group, and every job is stored once the store is back.

use std::time::Duration;

use common::testing::{TcpProxy, wait_until_async, wait_until_async_within};

use crate::helpers::{Lane, file_of, phrase, start_imagizer};

#[tokio::test(flavor = "multi_thread")]
async fn a_long_store_outage_keeps_the_consumer_in_its_group_and_loses_nothing() {
    let lane = Lane::new();
    let s3: std::net::SocketAddr = crate::helpers::s3()
        .endpoint
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let mut proxy = TcpProxy::start(s3).await;
    proxy.cut().await;
    let mut env = lane.imagizer_env();
    for (name, value) in &mut env {
        if name == "S3_ENDPOINT" {
            *value = format!("http://{}", proxy.addr);
        }
    }
    env.extend(
        [
            ("IMAGIZER_PARALLELISM", "1"),
            ("IMAGE_STORE_MAX_BACKOFF_MS", "300"),
            ("KAFKA_MAX_POLL_INTERVAL_MS", "6000"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    lane.create_topics().await;
    for n in 0..3 {
        lane.publish(&phrase(n)).await;
    }
    let imagizer = start_imagizer(env).await;
    let store_errors = || async {
        imagizer
            .metric("figachechnaya_imagizer_store_errors_total{operation=\"exists\"}")
            .await
    };
    wait_until_async("a job meeting the outage", || async {
        store_errors().await > 0
    })
    .await;

    // The outage outlasts the 6 s poll interval with the only job slot busy.
    tokio::time::sleep(Duration::from_secs(9)).await;
    proxy.restore().await;

    wait_until_async_within("every image", Duration::from_mins(1), || async {
        lane.objects().await.len() == 3
    })
    .await;
    let expected: std::collections::BTreeSet<_> = (0..3).map(|n| file_of(&phrase(n))).collect();
    assert_eq!(lane.objects().await, expected);
    assert_eq!(
        imagizer
            .metric("figachechnaya_imagizer_consumer_errors_total")
            .await,
        0,
        "never evicted from the group"
    );
    assert_eq!(
        imagizer
            .metric("figachechnaya_imagizer_jobs_total{outcome=\"rendered\"}")
            .await,
        3
    );
    imagizer.shut_down().await.unwrap();
}
