//! `POST /api/getimageurl/` and the image files refuse what they should, in the error shape.

use common::testing::{RunningService, TempDir, expect_error};
use serde_json::json;

use crate::helpers::{Lane, start_imagizer};

/// imagizer keeping images in a directory (no S3), so the image files are served too.
async fn imagizer_on_a_directory(images: &TempDir) -> RunningService {
    let lane = Lane::new();
    let mut env = lane.imagizer_env();
    env.retain(|(name, _)| !name.starts_with("S3_"));
    env.push(("IMAGES_DIR".into(), images.path().to_str().unwrap().into()));
    start_imagizer(env).await
}

#[tokio::test]
async fn bad_phrases_and_bodies_are_4xx_in_the_error_shape() {
    let images = TempDir::new();
    let imagizer = imagizer_on_a_directory(&images).await;
    let ask = async |body: serde_json::Value| imagizer.post_json("/api/getimageurl/", &body).await;

    expect_error(ask(json!({})).await, 422, "invalid_body").await;
    expect_error(ask(json!({"phrase": 5})).await, 422, "invalid_body").await;
    expect_error(ask(json!({"phrase": ""})).await, 400, "empty_phrase").await;
    expect_error(ask(json!({"phrase": "   "})).await, 400, "empty_phrase").await;
    expect_error(
        ask(json!({"phrase": "я".repeat(1025)})).await,
        400,
        "phrase_too_long",
    )
    .await;
    let body = expect_error(ask(json!({"phrase": "bicycle"})).await, 400, "not_russian").await;
    assert_eq!(body["data"], common::phrase::NOT_RUSSIAN);
    expect_error(
        ask(json!({"phrase": "../../etc/passwd"})).await,
        400,
        "not_russian",
    )
    .await;
    expect_error(
        imagizer.post_raw("/api/getimageurl/", "{\"phrase\":").await,
        400,
        "malformed_json",
    )
    .await;
    let oversized = format!("{{\"phrase\": \"{}\"}}", "я".repeat(10_000));
    expect_error(
        imagizer.post_raw("/api/getimageurl/", oversized).await,
        413,
        "payload_too_large",
    )
    .await;
    // A valid phrase not rendered yet: 204, no body.
    let response = ask(json!({"phrase": "Фигосипед"})).await;
    assert_eq!(response.status(), 204);
    assert!(response.bytes().await.unwrap().is_empty());
    imagizer.shut_down().await.unwrap();
}

#[tokio::test]
async fn only_image_names_are_served_from_the_directory() {
    let images = TempDir::new();
    std::fs::write(images.path().join("secret.txt"), "no").unwrap();
    let imagizer = imagizer_on_a_directory(&images).await;
    for path in [
        "/api/imagizer/images/secret.txt",
        "/api/imagizer/images/..%2Fsecret.txt",
        "/api/imagizer/images/923F1F1853BC1F9E7DF077A023A78C0A.png",
        "/api/imagizer/images/923f1f1853bc1f9e7df077a023a78c0a.png",
    ] {
        expect_error(imagizer.get(path).await, 404, "no_such_image").await;
    }
    imagizer.shut_down().await.unwrap();
}

#[tokio::test]
async fn the_openapi_document_and_docs_page_describe_the_api() {
    let images = TempDir::new();
    let imagizer = imagizer_on_a_directory(&images).await;
    common::testing::assert_openapi(
        &imagizer,
        "imagizer",
        &[
            "/api/getimageurl/",
            "/api/imagizer/images/{file}",
            "/api/healthz/",
            "/api/livez/",
        ],
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/openapi.json"),
    )
    .await;
    imagizer.shut_down().await.unwrap();
}
