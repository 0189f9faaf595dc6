//! The one-process binary, started as a newcomer starts it.

use common::testing::{TempDir, failed_start, start_binary};
use serde_json::{Value, json};

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
