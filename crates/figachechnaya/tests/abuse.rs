//! What one client could do to everyone else, tried against the one-process binary on its
//! defaults: hold connections and streams, flood figalize, forge history, write from another
//! site's pages.

use std::sync::Arc;

use common::testing::{TempDir, start_binary};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_figachechnaya");

#[tokio::test]
async fn one_client_holding_slow_connections_then_live_streams_leaves_the_site_to_others() {
    use common::testing::{client_from, hold_connections, metric_of};
    let data = TempDir::new();
    let data_dir = data.path().to_str().unwrap();
    // With 1,024 descriptors, as a container may have: more connections than that, twice.
    let site = common::testing::start_binary_with_descriptors(
        BINARY,
        &[("PORT", "0"), ("DATA_DIR", data_dir)],
        1024,
    );
    // Another client, which gives up after a second, as a liveness probe does.
    let other = client_from("127.0.0.2")
        .timeout(std::time::Duration::from_secs(1))
        .build()
        .unwrap();
    let served = |phrase: &'static str| {
        let other = other.clone();
        let addr = site.addr;
        async move {
            let live = other
                .get(format!("http://{addr}/api/livez/"))
                .send()
                .await
                .expect("the liveness probe is answered within a second");
            assert_eq!(live.status(), 200);
            let figalized = other
                .post(format!("http://{addr}/api/figalize/"))
                .json(&json!({"schema_id": 0, "phrase": phrase}))
                .send()
                .await
                .expect("a figalization is answered within a second");
            assert_eq!(figalized.status(), 200);
        }
    };

    let slow = hold_connections(site.addr, 1100, b"POST /api/figalize/ HTTP/1.1\r\n").await;
    served("велосипед").await;
    drop(slow);
    common::testing::wait_until_async("the slow connections to be closed", || async {
        metric_of(&other, site.addr, "figachechnaya_site_http_connections").await < 8
    })
    .await;
    let streams = hold_connections(
        site.addr,
        1100,
        b"GET /api/history/stream HTTP/1.1\r\nhost: site\r\n\r\n",
    )
    .await;
    served("самокат").await;
    // Of the first client's streams, MAX_STREAMS_PER_CLIENT (16) were served, the rest of
    // its connections answered 429 or closed at once.
    let refused = metric_of(
        &other,
        site.addr,
        "figachechnaya_site_http_streams_refused_total{reason=\"per_client\"}",
    )
    .await;
    assert!(refused > 0);
    drop(streams);
    assert!(site.terminate().success());
}

#[tokio::test]
async fn one_client_flooding_figalize_leaves_it_to_another_and_the_log_stays_small() {
    use common::testing::{client_from, metric_of};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::Duration;

    const FLOOD: Duration = Duration::from_secs(10);
    let data = TempDir::new();
    let data_dir = data.path().to_str().unwrap();
    // The defaults, as `cargo run` starts the site.
    let site = start_binary(BINARY, &[("PORT", "0"), ("DATA_DIR", data_dir)]);
    let url = format!("http://{}/api/figalize/", site.addr);
    let log_before = site.log_bytes();

    // One client, from 127.0.0.1: as many requests as 300 connections can send.
    let flooding = Arc::new(AtomicBool::new(true));
    let flooder = reqwest::Client::builder()
        .pool_max_idle_per_host(300)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..300)
        .map(|_| {
            let (flooder, url, flooding, sent) = (
                flooder.clone(),
                url.clone(),
                Arc::clone(&flooding),
                Arc::clone(&sent),
            );
            tokio::spawn(async move {
                while flooding.load(Ordering::Relaxed) {
                    let _ = flooder
                        .post(&url)
                        .json(&json!({"schema_id": 0, "phrase": "велосипед"}))
                        .send()
                        .await;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    // Another client, from 127.0.0.2: a phrase every 100 ms, as a few busy visitors would.
    let other = client_from("127.0.0.2")
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let (mut asked, mut answered) = (0_u32, 0_u32);
    let started = std::time::Instant::now();
    let mut every = tokio::time::interval(Duration::from_millis(100));
    while started.elapsed() < FLOOD {
        every.tick().await;
        asked += 1;
        let response = other
            .post(&url)
            .json(&json!({"schema_id": 1, "phrase": "самокат"}))
            .send()
            .await;
        if response.is_ok_and(|r| r.status() == 200) {
            answered += 1;
        }
    }
    flooding.store(false, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    let flood = sent.load(Ordering::Relaxed);
    let limited = metric_of(
        &other,
        site.addr,
        "figachechnaya_site_http_requests_rate_limited_total",
    )
    .await;
    assert!(
        answered * 100 >= asked * 95,
        "the other client got {answered} of {asked} answered 200 while {flood} requests flooded"
    );
    assert!(
        limited > 0,
        "the flood ({flood} requests) was never limited"
    );
    let logged = site.log_bytes() - log_before;
    assert!(
        logged < 1_000_000,
        "{logged} bytes logged while {flood} requests flooded"
    );
    assert!(site.terminate().success());
}

#[tokio::test]
async fn the_site_serves_no_append_and_refuses_writes_from_other_sites() {
    let data = TempDir::new();
    let data_dir = data.path().to_str().unwrap();
    let site = start_binary(BINARY, &[("PORT", "0"), ("DATA_DIR", data_dir)]);
    let base = format!("http://{}", site.addr);
    let client = reqwest::Client::new();
    // Appends are figalize's, in this process: visitors cannot forge history.
    for (path, body) in [
        (
            "/api/append/",
            json!({"original": "велосипед", "figalized": "Фигосипед"}),
        ),
        (
            "/api/append/batch/",
            json!({"entries": [{"original": "велосипед", "figalized": "Фигосипед", "id": "x"}]}),
        ),
    ] {
        let response = client
            .post(format!("{base}{path}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        common::testing::expect_error(response, 404, "not_found").await;
    }
    // Another site's page cannot make its visitors' browsers write here.
    for (path, body) in [
        (
            "/api/figalize/",
            json!({"schema_id": 0, "phrase": "велосипед"}),
        ),
        ("/api/getimageurl/", json!({"phrase": "Фигосипед"})),
    ] {
        let response = client
            .post(format!("{base}{path}"))
            .header("origin", "https://elsewhere.example")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        common::testing::expect_error(response, 403, "cross_origin").await;
    }
    let count: Value = client
        .get(format!("{base}/api/history/count"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(count["count"], 0, "{count}");
    assert!(site.terminate().success());
}
