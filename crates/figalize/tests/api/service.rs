//! What every service offers: request ids, health, metrics, the OpenAPI document and its page.

use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_well_formed_request_id_is_returned_and_a_bad_one_replaced() {
    let app = spawn_app().await;
    let sent = |id: &'static str| {
        app.client
            .get(app.url("/api/getschemas/"))
            .header("x-request-id", id)
            .send()
    };
    let response = sent("trace-42").await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-42");

    let response = sent("<script>alert(1)</script>").await.unwrap();
    let replaced = response.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(replaced.len(), 36, "a generated uuid, got {replaced}");

    let response = app.get("/api/getschemas/").await;
    assert!(response.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn schemes_are_listed_in_id_order() {
    let app = spawn_app().await;
    let response = app.get("/api/getschemas/").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"0":"Фигачечная","1":"Хреначечная"}"#
    );
}

#[tokio::test]
async fn readiness_and_liveness_answer_200() {
    let app = spawn_app().await;
    let ready: Value = app.get("/api/healthz/").await.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    let alive = app.get("/api/livez/").await;
    assert_eq!(alive.status(), 200);
    assert_eq!(alive.json::<Value>().await.unwrap()["status"], "alive");
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_figalizations_by_scheme() {
    let app = spawn_app().await;
    assert_eq!(app.figalize(1, "велосипед").await.status(), 200);
    assert_eq!(app.figalize(0, "bike").await.status(), 400);
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    for line in [
        r#"figachechnaya_figalize_http_requests_total{method="POST",route="/api/figalize/",status="200"} 1"#,
        r#"figachechnaya_figalize_http_requests_total{method="POST",route="/api/figalize/",status="400"} 1"#,
        r#"figachechnaya_figalize_figalizations_total{scheme="1"} 1"#,
        r#"figachechnaya_figalize_figalizations_total{scheme="0"} 0"#,
        r#"figachechnaya_figalize_rejected_phrases_total{reason="not_russian"} 1"#,
        "figachechnaya_figalize_http_requests_in_flight",
        "figachechnaya_figalize_http_request_duration_seconds_bucket",
        "process_resident_memory_bytes",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(!text.contains("велосипед"), "a phrase leaked into a label");
}

#[tokio::test]
async fn the_openapi_document_matches_its_snapshot() {
    let app = spawn_app().await;
    common::testing::assert_openapi(
        &app,
        "figalize",
        &[
            "/api/figalize/",
            "/api/getschemas/",
            "/api/healthz/",
            "/api/livez/",
        ],
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/openapi.json"),
    )
    .await;
}

#[tokio::test]
async fn the_docs_page_and_its_assets_are_served_without_any_external_url() {
    let app = spawn_app().await;
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/api/figalize/docs"))
        .send()
        .await
        .unwrap();
    assert!(redirect.status().is_redirection());

    let page = app.get("/api/figalize/docs/").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"));
    let mut assets = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for piece in html.split(attribute).skip(1) {
            let target = piece.split('"').next().unwrap();
            assert!(!target.contains("//"), "external asset {target}");
            assets.push(target.trim_start_matches("./").to_owned());
        }
    }
    assert!(
        assets.iter().any(|a| a.contains(".js")),
        "no script in {html}"
    );
    for asset in &assets {
        let response = app.get(&format!("/api/figalize/docs/{asset}")).await;
        assert_eq!(response.status(), 200, "{asset}");
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("https://unpkg") && !body.contains("cdn.jsdelivr"),
            "{asset} loads a CDN"
        );
    }
    let init = app
        .get("/api/figalize/docs/swagger-initializer.js")
        .await
        .text()
        .await
        .unwrap();
    assert!(init.contains("/api/figalize/openapi.json"), "{init}");
}
