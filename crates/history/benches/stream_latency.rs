//! How soon a page connected to `GET /api/history/stream` hears of an append, on PostgreSQL.
//!
//! Sends appends one at a time and, for each, records when its `200` arrived and when the
//! stream delivered its entry, both from the moment the append was sent. The commit happens
//! before the `200` is sent, so "sent → stream" bounds "commit → stream" from above; the append
//! round trip, measured in the same run, is the baseline. Prints percentiles; asserts nothing.
//!
//! Run with `cargo bench -p history --bench stream_latency` (needs the test PostgreSQL).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::config::Env;
use common::testing::TestDatabase;
use serde_json::{Value, json};

const APPENDS: usize = 500;

#[tokio::main]
async fn main() {
    if !std::env::args().any(|arg| arg == "--bench") {
        return; // `cargo test --all-targets` builds benches; only `cargo bench` runs this one
    }
    let db = TestDatabase::create().await;
    let server = history::build(&Env::from_pairs([
        ("HISTORY_API_PORT", "0"),
        ("DATABASE_URL", db.url.as_str()),
        ("RUST_LOG", "warn"),
    ]))
    .await
    .expect("history starts");
    let base = format!("http://{}", server.local_addr());
    tokio::spawn(server.run(std::future::pending()));
    let client = reqwest::Client::new();

    let heard: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let mut stream = client
        .get(format!("{base}/api/history/stream"))
        .send()
        .await
        .unwrap();
    let listener = {
        let heard = Arc::clone(&heard);
        tokio::spawn(async move {
            let mut buffer = String::new();
            while let Ok(Some(chunk)) = stream.chunk().await {
                let now = Instant::now();
                buffer.push_str(std::str::from_utf8(&chunk).unwrap());
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    let Some(data) = block.lines().find_map(|l| l.strip_prefix("data:")) else {
                        continue;
                    };
                    let event: Value = serde_json::from_str(data.trim()).unwrap();
                    if let Some(id) = event["entry"]["id"].as_i64() {
                        heard.lock().unwrap().insert(id, now);
                    }
                }
            }
        })
    };

    let mut answered = Vec::with_capacity(APPENDS);
    let mut streamed = Vec::with_capacity(APPENDS);
    for n in 0..APPENDS {
        let sent = Instant::now();
        let response = client
            .post(format!("{base}/api/append/"))
            .json(
                &json!({"original": "велосипед", "figalized": "Фигосипед", "id": format!("s-{n}")}),
            )
            .send()
            .await
            .unwrap();
        let answered_at = Instant::now();
        let id = response.json::<Value>().await.unwrap()["id"]
            .as_i64()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let heard_at = loop {
            if let Some(at) = heard.lock().unwrap().get(&id).copied() {
                break at;
            }
            assert!(
                Instant::now() < deadline,
                "entry {id} never reached the stream"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        answered.push(answered_at - sent);
        streamed.push(heard_at.saturating_duration_since(sent));
    }
    listener.abort();

    let report = |name: &str, mut samples: Vec<Duration>| {
        samples.sort();
        let at = |q: f64| {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let index = ((samples.len() - 1) as f64 * q).round() as usize;
            samples[index].as_secs_f64() * 1000.0
        };
        println!(
            "  {name:<34} p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms",
            at(0.5),
            at(0.99),
            at(1.0)
        );
        at(0.5)
    };
    println!("history stream latency, {APPENDS} appends one at a time, PostgreSQL:");
    let baseline = report("append sent → 200 (baseline)", answered);
    let stream = report("append sent → entry on the stream", streamed);
    println!(
        "  median ratio stream / append round trip: {:.2}",
        stream / baseline
    );
}
