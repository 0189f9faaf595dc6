//! figalize → Kafka → imagizer → S3 → a URL a browser can open.

use common::testing::wait_until_async;
use serde_json::json;

use crate::helpers::{
    Figalize, Lane, assert_is_the_png_of, fetch_public, file_of, image_url, s3, start_imagizer,
};

#[tokio::test(flavor = "multi_thread")]
async fn a_figalization_becomes_one_png_in_the_bucket_and_a_repeat_renders_nothing() {
    let lane = Lane::new();
    let imagizer = start_imagizer(lane.imagizer_env()).await;
    let figalize = Figalize::start(&crate::helpers::bootstrap(), &lane.topic).await;

    for _ in 0..2 {
        let response = figalize
            .service
            .post_json(
                "/api/figalize/",
                &json!({"schema_id": 0, "phrase": "велосипед"}),
            )
            .await;
        assert_eq!(response.status(), 200);
    }
    let url = image_url(&imagizer, "Фигосипед").await;
    assert_eq!(
        url,
        format!(
            "http://{}.web.localhost:3902/{}{}",
            s3().bucket,
            lane.prefix,
            file_of("Фигосипед")
        )
    );

    // The URL works for a browser: Garage's web endpoint serves the object publicly.
    let response = fetch_public(&url).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_is_the_png_of(&response.bytes().await.unwrap(), "Фигосипед");

    // Both jobs were consumed; the second found the image and rendered nothing.
    let outcome = |outcome: &'static str| {
        let imagizer = &imagizer;
        async move {
            imagizer
                .metric(&format!(
                    "figachechnaya_imagizer_jobs_total{{outcome=\"{outcome}\"}}"
                ))
                .await
        }
    };
    wait_until_async("both jobs done", || async {
        outcome("rendered").await + outcome("skipped").await == 2
    })
    .await;
    assert_eq!(outcome("rendered").await, 1);
    assert_eq!(outcome("skipped").await, 1);
    // librdkafka's statistics report the lag of the assigned partitions: back to 0 once the
    // jobs are committed.
    wait_until_async("the consumer lag, reported and back to 0", || async {
        let text = imagizer.get("/metrics").await.text().await.unwrap();
        let lags: Vec<&str> = text
            .lines()
            .filter(|line| line.starts_with("figachechnaya_imagizer_kafka_consumer_lag_messages{"))
            .collect();
        !lags.is_empty() && lags.iter().all(|line| line.ends_with(" 0"))
    })
    .await;
    assert_eq!(
        lane.objects().await.into_iter().collect::<Vec<_>>(),
        vec![file_of("Фигосипед")]
    );
    let head = crate::helpers::s3_client()
        .head_object()
        .bucket(s3().bucket)
        .key(format!("{}{}", lane.prefix, file_of("Фигосипед")))
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("image/png"));

    figalize.shut_down().await;
    imagizer.shut_down().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn presigned_urls_open_a_private_bucket() {
    let lane = Lane::new();
    let mut env = lane.imagizer_env();
    env.retain(|(name, _)| name != "S3_PUBLIC_URL");
    env.push(("S3_URL_MODE".into(), "presigned".into()));
    let imagizer = start_imagizer(env).await;
    lane.create_topics().await;
    lane.publish("Хреносипед").await;

    let url = image_url(&imagizer, "Хреносипед").await;
    assert!(url.starts_with("http://127.0.0.1:3900/"), "{url}");
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_is_the_png_of(&response.bytes().await.unwrap(), "Хреносипед");

    // Without the signature the bucket says no.
    let unsigned = url.split('?').next().unwrap();
    assert_eq!(reqwest::get(unsigned).await.unwrap().status(), 403);
    imagizer.shut_down().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_follows_the_bucket_and_the_broker() {
    let lane = Lane::new();
    let mut env = lane.imagizer_env();
    for (name, value) in &mut env {
        if name == "S3_BUCKET" {
            *value = "no-such-bucket".into();
        }
    }
    let broken = start_imagizer(env).await;
    let response = broken.get("/api/healthz/").await;
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    let reason = body["data"].as_str().unwrap();
    assert!(reason.contains("image_store: unreachable"), "{body}");

    let imagizer = start_imagizer(lane.imagizer_env()).await;
    wait_until_async("imagizer ready", || async {
        imagizer.get("/api/healthz/").await.status() == 200
    })
    .await;
    let body = imagizer.get_json("/api/healthz/").await;
    assert_eq!(body["checks"], json!({"image_store": "ok", "kafka": "ok"}));
    imagizer.shut_down().await.unwrap();
    broken.shut_down().await.unwrap();
}
