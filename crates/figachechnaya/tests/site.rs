//! The one-process binary, started as a newcomer starts it.

use std::sync::{Arc, Mutex};

use common::testing::{TempDir, failed_start, start_binary, wait_until};
use serde_json::{Value, json};
use sqlx::Connection;

const BINARY: &str = env!("CARGO_BIN_EXE_figachechnaya");

#[tokio::test]
async fn the_site_answers_figalize_and_its_docs_then_stops_cleanly_on_sigterm() {
    let data = TempDir::new();
    let data_dir = data.path().to_str().unwrap();
    let site = start_binary(BINARY, &[("PORT", "0"), ("DATA_DIR", data_dir)]);
    assert!(
        site.addr.ip().is_loopback(),
        "listens on loopback by default"
    );
    let client = reqwest::Client::new();
    let base = format!("http://{}", site.addr);

    let response = client
        .post(format!("{base}/api/figalize/"))
        .json(&json!({"schema_id": 0, "phrase": "велосипед"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"data": "Фигосипед"})
    );

    for path in [
        "/api/getschemas/",
        "/api/figalize/docs/",
        "/api/figalize/openapi.json",
        "/api/imagizer/docs/",
        "/api/imagizer/openapi.json",
        "/api/history/docs/",
        "/api/healthz/",
        "/metrics",
    ] {
        let response = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains(r#"figachechnaya_site_http_requests_total{method="POST",route="/api/figalize/",status="200"} 1"#));

    let status = site.terminate();
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn a_figalization_becomes_a_png_served_by_the_site_with_no_external_service() {
    let data = TempDir::new();
    let data_dir = data.path().to_str().unwrap();
    let site = start_binary(BINARY, &[("PORT", "0"), ("DATA_DIR", data_dir)]);
    let client = reqwest::Client::new();
    let base = format!("http://{}", site.addr);
    let figalized = client
        .post(format!("{base}/api/figalize/"))
        .json(&json!({"schema_id": 1, "phrase": "велосипед"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["data"]
        .as_str()
        .unwrap()
        .to_owned();

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let url = loop {
        let response = client
            .post(format!("{base}/api/getimageurl/"))
            .json(&json!({"phrase": figalized}))
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            break response.json::<Value>().await.unwrap()["data"]
                .as_str()
                .unwrap()
                .to_owned();
        }
        assert_eq!(response.status(), 204);
        assert!(std::time::Instant::now() < deadline, "no image within 30 s");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(url.starts_with("/api/imagizer/images/"), "{url}");

    let response = client.get(format!("{base}{url}")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    let png = response.bytes().await.unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let file = url.rsplit('/').next().unwrap();
    assert_eq!(
        std::fs::read(data.path().join("images").join(file)).unwrap(),
        png,
        "kept under DATA_DIR"
    );
    let status = site.terminate();
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn the_page_is_served_at_the_root_with_its_security_headers_and_revalidates() {
    let data = TempDir::new();
    let data_dir = data.path().to_str().unwrap();
    let site = start_binary(BINARY, &[("PORT", "0"), ("DATA_DIR", data_dir)]);
    let client = reqwest::Client::new();
    let base = format!("http://{}", site.addr);

    let page = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(
        headers["content-security-policy"],
        figachechnaya::site::CONTENT_SECURITY_POLICY
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    let html = page.text().await.unwrap();
    assert!(html.contains("<h1>Фигачечная</h1>"), "{html}");
    assert!(html.contains(r#"<script src="app.js" defer>"#), "{html}");

    let again = client
        .get(format!("{base}/"))
        .header("if-none-match", headers["etag"].clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304, "an unchanged page is not sent again");
    assert!(again.bytes().await.unwrap().is_empty());

    for (path, content_type, cache) in [
        ("/app.js", "text/javascript; charset=utf-8", "no-cache"),
        ("/style.css", "text/css; charset=utf-8", "no-cache"),
        (
            "/fonts/lobster-cyrillic.woff2",
            "font/woff2",
            "max-age=2592000",
        ),
    ] {
        let response = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], content_type, "{path}");
        assert_eq!(response.headers()["cache-control"], cache, "{path}");
    }
    let missing = client
        .get(format!("{base}/nothing.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<Value>().await.unwrap()["code"], "not_found");

    let status = site.terminate();
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn a_site_killed_under_load_keeps_every_figalization_it_answered_once_started_again() {
    let data = TempDir::new();
    let data_dir = data.path().to_str().unwrap();
    let site = start_binary(BINARY, &[("PORT", "0"), ("DATA_DIR", data_dir)]);
    let base = format!("http://{}", site.addr);
    // Eight clients figalize distinct phrases until the process is gone.
    let answered = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..8)
        .map(|client| {
            let (base, answered) = (base.clone(), Arc::clone(&answered));
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                for n in 0.. {
                    let phrase = format!("велосипед {}", russian_letters(client * 100_000 + n));
                    let Ok(response) = http
                        .post(format!("{base}/api/figalize/"))
                        .json(&json!({"schema_id": 0, "phrase": phrase}))
                        .send()
                        .await
                    else {
                        return;
                    };
                    if response.status() != 200 {
                        continue;
                    }
                    let Ok(answer) = response.json::<Value>().await else {
                        return;
                    };
                    let figalized = answer["data"].as_str().unwrap().to_owned();
                    answered.lock().unwrap().push(figalized);
                }
            })
        })
        .collect();
    wait_until("200 figalizations answered", || {
        answered.lock().unwrap().len() >= 200
    })
    .await;
    site.kill();
    for client in clients {
        client.await.unwrap();
    }
    let answered = answered.lock().unwrap().clone();

    let site = start_binary(BINARY, &[("PORT", "0"), ("DATA_DIR", data_dir)]);
    assert!(
        site.metric("figachechnaya_figalize_journal_replayed_total")
            .await
            > 0,
        "the journal was replayed"
    );
    // Every answered figalization has its row, once. A few more rows may be there: requests
    // on disk whose answers the kill cut off.
    let database = format!(
        "sqlite://{}?mode=ro",
        data.path().join("history.sqlite3").display()
    );
    common::testing::wait_until_async("a history row for every answer", || async {
        let stored = stored_figalized(&database).await;
        answered.iter().all(|text| stored.contains(text))
    })
    .await;
    let mut ids: Vec<String> = sqlx::query_scalar("select append_id from history")
        .fetch_all(&mut sqlx::SqliteConnection::connect(&database).await.unwrap())
        .await
        .unwrap();
    let rows = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), rows, "no figalization is stored twice");
    let images = data.path().join("images");
    // Rendering takes a while in a debug build: a deadline of its own.
    common::testing::wait_until_async_within(
        "a PNG for every answer",
        std::time::Duration::from_mins(3),
        || async {
            answered.iter().all(|text| {
                images
                    .join(format!("{}.png", common::image_job::image_key(text)))
                    .is_file()
            })
        },
    )
    .await;
    let status = site.terminate();
    assert!(status.success(), "exit status {status}");
}

/// The figalized texts in the site's history.
async fn stored_figalized(database: &str) -> std::collections::HashSet<String> {
    let mut connection = sqlx::SqliteConnection::connect(database).await.unwrap();
    sqlx::query_scalar("select figalized from history")
        .fetch_all(&mut connection)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// A number's digits as Russian letters, so that each phrase is distinct and Russian.
fn russian_letters(n: usize) -> String {
    const DIGITS: [char; 10] = ['а', 'б', 'в', 'г', 'д', 'е', 'ж', 'з', 'и', 'к'];
    n.to_string()
        .bytes()
        .map(|d| DIGITS[usize::from(d - b'0')])
        .collect()
}

#[test]
fn a_malformed_port_stops_start_up_naming_the_variable() {
    let stderr = failed_start(BINARY, &[("PORT", "eighty")]);
    assert!(stderr.contains("PORT: cannot parse \"eighty\""), "{stderr}");
}

#[test]
fn a_missing_scheme_file_stops_start_up_naming_the_variable() {
    let data = TempDir::new();
    let data_dir = data.path().to_str().unwrap();
    let stderr = failed_start(
        BINARY,
        &[
            ("PORT", "0"),
            ("DATA_DIR", data_dir),
            ("SCHEMES_FILE", "/nonexistent/schemes.json"),
        ],
    );
    assert!(stderr.contains("SCHEMES_FILE"), "{stderr}");
    assert!(stderr.contains("/nonexistent/schemes.json"), "{stderr}");
}
