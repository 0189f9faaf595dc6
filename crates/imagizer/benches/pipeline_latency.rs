//! Time from figalize's 200 to the PNG stored in S3, at a steady 50 jobs per second, through
//! the real broker and S3 server (start them with `ci/services/kafka.sh` and
//! `ci/services/s3.sh`; `bench/image-pipeline.sh` does both).
//!
//! history (SQLite), figalize and imagizer run in this process on their release builds. Each
//! figalization's object is polled every 2 ms with `HEAD`, so figures carry up to 2 ms of
//! polling delay. Baseline in the same run: one `PUT` of the same PNG straight to the bucket,
//! the floor under any pipeline latency.
//!
//! `JOBS` (default 1000) and `RATE` (jobs per second, default 50) tune a run.

use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use common::config::Env;
use common::image_job::image_key;
use common::testing::{RunningService, TempDir};

const BUCKET: &str = "figachechnaya-images";
const KEY: &str = "GK0f1ac4ec4a7a5e0ac7e51a57";
const SECRET: &str = "7c3f0f0e6b0a4b5f9d1c2e3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c";

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("garage"))
            .endpoint_url(endpoint)
            .force_path_style(true)
            .credentials_provider(Credentials::new(KEY, SECRET, None, None, "bench"))
            .build(),
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A phrase per number, distinct (Russian letters for digits).
fn phrase(run: &str, n: usize) -> String {
    const LETTERS: [char; 10] = ['а', 'б', 'в', 'г', 'д', 'е', 'ж', 'з', 'и', 'к'];
    let digits: String = format!("{run}{n}")
        .chars()
        .filter_map(|d| d.to_digit(10))
        .map(|d| LETTERS[d as usize])
        .collect();
    format!("велосипед {digits}")
}

/// The three services in this process, on the real broker and bucket.
struct Suite {
    figalize: RunningService,
    _imagizer: RunningService,
    _history: RunningService,
    _data: TempDir,
    prefix: String,
}

async fn start_suite(run: &str, bootstrap: &str, endpoint: &str) -> Suite {
    let topic = format!("bench-{run}");
    let prefix = format!("bench-{run}/");
    let data = TempDir::new();
    let history = RunningService::start(
        history::build(&Env::from_pairs([
            ("HISTORY_API_PORT", "0"),
            ("DATA_DIR", data.path().to_str().unwrap()),
        ]))
        .await
        .expect("history"),
    );
    let imagizer = RunningService::start(
        imagizer::build(&Env::from_pairs([
            ("IMAGIZER_API_PORT", "0".to_owned()),
            ("KAFKA_BOOTSTRAP", bootstrap.to_owned()),
            ("KAFKA_TOPIC_NAME", topic.clone()),
            ("KAFKA_GROUP_ID", format!("bench-{run}")),
            ("KAFKA_SESSION_TIMEOUT_MS", "6000".to_owned()),
            ("S3_ENDPOINT", endpoint.to_owned()),
            ("S3_REGION", "garage".to_owned()),
            ("S3_BUCKET", BUCKET.to_owned()),
            ("S3_PATH", prefix.clone()),
            ("S3_ACCESS_KEY", KEY.to_owned()),
            ("S3_SECRET_KEY", SECRET.to_owned()),
        ]))
        .await
        .expect("imagizer"),
    );
    let figalize = RunningService::start(
        figalize::build(&Env::from_pairs([
            ("FIGALIZE_API_PORT", "0".to_owned()),
            ("KAFKA_BOOTSTRAP", bootstrap.to_owned()),
            ("KAFKA_TOPIC_NAME", topic),
            ("HISTORY_APPEND_URL", history.url("/api/append/")),
        ]))
        .await
        .expect("figalize"),
    );
    Suite {
        figalize,
        _imagizer: imagizer,
        _history: history,
        _data: data,
        prefix,
    }
}

/// Sorted durations of 100 plain PUTs of `png`.
async fn baseline_puts(s3: &aws_sdk_s3::Client, prefix: &str, png: &[u8]) -> Vec<Duration> {
    let mut puts = Vec::new();
    for n in 0..100 {
        let started = Instant::now();
        s3.put_object()
            .bucket(BUCKET)
            .key(format!("{prefix}baseline-{n}.png"))
            .body(png.to_vec().into())
            .content_type("image/png")
            .send()
            .await
            .expect("PUT");
        puts.push(started.elapsed());
    }
    puts.sort();
    puts
}

/// Figalizes `jobs` phrases at `rate` per second; sorted times from each 200 to its object.
async fn drive(
    suite: &Suite,
    s3: &aws_sdk_s3::Client,
    run: &str,
    jobs: usize,
    rate: f64,
) -> Vec<Duration> {
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let mut waiting = tokio::task::JoinSet::new();
    for n in 0..jobs {
        ticker.tick().await;
        let text = figalize_one(&suite.figalize, &phrase(run, n)).await;
        let answered = Instant::now();
        let s3 = s3.clone();
        let prefix = suite.prefix.clone();
        waiting.spawn(async move {
            loop {
                if exists(&s3, &prefix, &text).await {
                    return answered.elapsed();
                }
                assert!(
                    answered.elapsed() < Duration::from_mins(1),
                    "job {n} never stored"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
    }
    let mut latencies = Vec::with_capacity(jobs);
    while let Some(latency) = waiting.join_next().await {
        latencies.push(latency.expect("a job"));
    }
    latencies.sort();
    latencies
}

#[tokio::main]
async fn main() {
    let jobs: usize = var("JOBS", "1000").parse().expect("JOBS");
    let rate: f64 = var("RATE", "50").parse().expect("RATE");
    let bootstrap = var("TEST_KAFKA_BOOTSTRAP", "127.0.0.1:9092");
    let endpoint = var("TEST_S3_ENDPOINT", "http://127.0.0.1:3900");
    let run = format!("{}", fastrand::u32(..));
    let suite = start_suite(&run, &bootstrap, &endpoint).await;
    let s3 = s3_client(&endpoint);

    // Warm up until one job has gone all the way (the group join takes a few seconds).
    let warm_text = figalize_one(&suite.figalize, &phrase(&run, usize::MAX)).await;
    let started = Instant::now();
    while !exists(&s3, &suite.prefix, &warm_text).await {
        assert!(
            started.elapsed() < Duration::from_mins(2),
            "the pipeline never delivered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let png = imagizer::render::Renderer::new()
        .render(&warm_text)
        .unwrap();
    let puts = baseline_puts(&s3, &suite.prefix, &png).await;

    println!("image pipeline: {jobs} jobs at {rate} jobs/s");
    let latencies = drive(&suite, &s3, &run, jobs, rate).await;
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    let put50 = percentile(&puts, 0.5);
    println!(
        "figalize 200 → object stored: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (targets: p50 ≤ 100, p99 ≤ 500)",
        ms(p50),
        ms(p99),
        ms(*latencies.last().unwrap())
    );
    println!(
        "baseline, one PUT of the PNG: p50 {:.1} ms, p99 {:.1} ms; pipeline p50 = {:.1}× a PUT",
        ms(put50),
        ms(percentile(&puts, 0.99)),
        p50.as_secs_f64() / put50.as_secs_f64()
    );
}

async fn figalize_one(figalize: &RunningService, phrase: &str) -> String {
    let response = figalize
        .post_json(
            "/api/figalize/",
            &serde_json::json!({"schema_id": 0, "phrase": phrase}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    body["data"].as_str().unwrap().to_owned()
}

async fn exists(s3: &aws_sdk_s3::Client, prefix: &str, text: &str) -> bool {
    s3.head_object()
        .bucket(BUCKET)
        .key(format!("{prefix}{}.png", image_key(text)))
        .send()
        .await
        .is_ok()
}
