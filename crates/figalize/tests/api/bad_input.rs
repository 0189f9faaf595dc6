//! Every kind of bad input gets a 4xx in the common error shape, and the service keeps answering.

use serde_json::json;

use crate::helpers::{TestApp, expect_error, spawn_app};

const NOT_RUSSIAN: &str = "По-русски, пожалуйста, у нас тут культурное заведение";

/// After any bad request, a good one still works.
async fn still_answers(app: &TestApp) {
    let response = app.figalize(0, "велосипед").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap()["data"],
        "Фигосипед"
    );
}

#[tokio::test]
async fn latin_text_gets_the_original_400_message() {
    let app = spawn_app().await;
    let body = expect_error(app.figalize(0, "bicycle").await, 400, "not_russian").await;
    assert_eq!(body["data"], NOT_RUSSIAN);
    still_answers(&app).await;
}

#[tokio::test]
async fn mixed_text_and_control_characters_are_not_russian() {
    let app = spawn_app().await;
    for phrase in [
        "велосипед bike",
        "вело\tсипед",
        "вело\nсипед",
        "нуль\u{0}",
        "123",
        "ьъ 🙂",
    ] {
        let body = expect_error(app.figalize(0, phrase).await, 400, "not_russian").await;
        assert_eq!(body["data"], NOT_RUSSIAN, "{phrase:?}");
    }
    still_answers(&app).await;
}

#[tokio::test]
async fn an_empty_or_blank_phrase_is_refused() {
    let app = spawn_app().await;
    for phrase in ["", "   "] {
        expect_error(app.figalize(0, phrase).await, 400, "empty_phrase").await;
    }
    still_answers(&app).await;
}

#[tokio::test]
async fn a_phrase_over_256_characters_is_refused() {
    let app = spawn_app().await;
    let ok = "я".repeat(256);
    assert_eq!(app.figalize(0, &ok).await.status(), 200);
    expect_error(
        app.figalize(0, &format!("{ok}я")).await,
        400,
        "phrase_too_long",
    )
    .await;
    still_answers(&app).await;
}

#[tokio::test]
async fn unknown_and_negative_scheme_ids_are_refused() {
    let app = spawn_app().await;
    for id in [2, 99, -1, i64::MIN] {
        expect_error(app.figalize(id, "велосипед").await, 400, "unknown_schema").await;
    }
    let huge = json!({"schema_id": u64::MAX, "phrase": "велосипед"});
    expect_error(
        app.post_json("/api/figalize/", &huge).await,
        400,
        "unknown_schema",
    )
    .await;
    still_answers(&app).await;
}

#[tokio::test]
async fn a_scheme_id_given_as_a_digit_string_works_as_in_the_original() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/api/figalize/",
            &json!({"schema_id": "1", "phrase": "велосипед"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap()["data"],
        "Хреносипед"
    );
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = spawn_app().await;
    for body in ["{", "{\"schema_id\": 0, \"phrase\": }", "not json", ""] {
        expect_error(
            app.post_raw("/api/figalize/", body).await,
            400,
            "malformed_json",
        )
        .await;
    }
    still_answers(&app).await;
}

#[tokio::test]
async fn invalid_utf8_is_400() {
    let app = spawn_app().await;
    let body = b"{\"schema_id\": 0, \"phrase\": \"\xd0\xb2\xff\xfe\"}".to_vec();
    expect_error(
        app.post_raw("/api/figalize/", body).await,
        400,
        "malformed_json",
    )
    .await;
    still_answers(&app).await;
}

#[tokio::test]
async fn wrong_types_and_missing_fields_are_422() {
    let app = spawn_app().await;
    let bodies = [
        json!({"schema_id": 0}),
        json!({"phrase": "велосипед"}),
        json!({"schema_id": 0, "phrase": 5}),
        json!({"schema_id": 0.5, "phrase": "велосипед"}),
        json!({"schema_id": true, "phrase": "велосипед"}),
        json!({"schema_id": "ноль", "phrase": "велосипед"}),
        json!({"schema_id": 0, "phrase": null}),
        json!(["велосипед"]),
        json!("велосипед"),
    ];
    for body in bodies {
        expect_error(
            app.post_json("/api/figalize/", &body).await,
            422,
            "invalid_body",
        )
        .await;
    }
    still_answers(&app).await;
}

#[tokio::test]
async fn a_body_of_megabytes_is_413_with_or_without_a_length() {
    let app = spawn_app().await;
    let huge = format!(
        "{{\"schema_id\": 0, \"phrase\": \"{}\"}}",
        "я".repeat(2 * 1024 * 1024)
    );
    expect_error(
        app.post_raw("/api/figalize/", huge.clone()).await,
        413,
        "payload_too_large",
    )
    .await;

    // Streamed in chunks, without Content-Length: the limit applies while reading.
    let chunks: Vec<Result<String, std::io::Error>> = huge
        .as_bytes()
        .chunks(64 * 1024)
        .map(|c| Ok(String::from_utf8_lossy(c).into_owned()))
        .collect();
    let streamed = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    expect_error(
        app.post_raw("/api/figalize/", streamed).await,
        413,
        "payload_too_large",
    )
    .await;
    still_answers(&app).await;
}

#[tokio::test]
async fn a_form_body_is_415() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/figalize/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("schema_id=0&phrase=велосипед")
        .send()
        .await
        .unwrap();
    expect_error(response, 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn a_body_without_content_type_is_read_as_json() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/figalize/"))
        .body(r#"{"schema_id": 0, "phrase": "велосипед"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_wrong_method_is_405_and_an_unknown_path_404() {
    let app = spawn_app().await;
    let response = app.get("/api/figalize/").await;
    assert_eq!(response.headers()["allow"], "POST");
    expect_error(response, 405, "method_not_allowed").await;
    expect_error(app.get("/api/nothing-here/").await, 404, "not_found").await;
    still_answers(&app).await;
}
