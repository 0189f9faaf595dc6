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

use common::image_job::image_key;
use common::testing::RunningService;

// The tests' helpers: the same services on the same broker and bucket, a lane of their own.
#[allow(dead_code)]
#[path = "../tests/pipeline/helpers.rs"]
mod helpers;

use helpers::{Figalize, Lane, phrase, s3_client, start_imagizer};

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
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

/// Sorted durations of 100 plain PUTs of `png`.
async fn baseline_puts(s3: &aws_sdk_s3::Client, lane: &Lane, png: &[u8]) -> Vec<Duration> {
    let mut puts = Vec::new();
    for n in 0..100 {
        let started = Instant::now();
        s3.put_object()
            .bucket(helpers::s3().bucket)
            .key(format!("{}baseline-{n}.png", lane.prefix))
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
async fn drive(figalize: &RunningService, lane: &Lane, jobs: usize, rate: f64) -> Vec<Duration> {
    let s3 = s3_client();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let mut waiting = tokio::task::JoinSet::new();
    for n in 0..jobs {
        ticker.tick().await;
        let text = figalize_one(figalize, &phrase(n)).await;
        let answered = Instant::now();
        let s3 = s3.clone();
        let prefix = lane.prefix.clone();
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
    let lane = Lane::new();
    let _imagizer = start_imagizer(lane.imagizer_env()).await;
    let figalize = Figalize::start(&helpers::bootstrap(), &lane.topic).await;
    let s3 = s3_client();

    // Warm up until one job has gone all the way (the group join takes a few seconds).
    let warm_text = figalize_one(&figalize.service, "велосипед").await;
    let started = Instant::now();
    while !exists(&s3, &lane.prefix, &warm_text).await {
        assert!(
            started.elapsed() < Duration::from_mins(2),
            "the pipeline never delivered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let png = imagizer::render::Renderer::new()
        .render(&warm_text)
        .unwrap();
    let puts = baseline_puts(&s3, &lane, &png).await;

    println!("image pipeline: {jobs} jobs at {rate} jobs/s");
    let latencies = drive(&figalize.service, &lane, jobs, rate).await;
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
        .bucket(helpers::s3().bucket)
        .key(format!("{prefix}{}.png", image_key(text)))
        .send()
        .await
        .is_ok()
}
