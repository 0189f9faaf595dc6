//! The HTTP API of the history service.

use serde_json::{Value, json};

use crate::helpers::{Backing, expect_error, spawn_app, spawn_app_on};

#[tokio::test]
async fn an_append_is_committed_and_read_back_in_the_original_shape() {
    let app = spawn_app().await;
    let response = app.append("велосипед", "Фигосипед").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["created"], true);
    let id = body["id"].as_i64().unwrap();
    assert_eq!(
        app.get_json("/api/gethistory/").await,
        json!([[id, "велосипед", "Фигосипед"]])
    );
    assert_eq!(app.count().await, 1);
}

#[tokio::test]
async fn the_embedded_sqlite_store_answers_the_same_way() {
    let app = spawn_app_on(Backing::sqlite(), &[]).await;
    assert_eq!(app.append("велосипед", "Фигосипед").await.status(), 200);
    let history = app.get_json("/api/gethistory/").await;
    assert_eq!(history[0][1], "велосипед");
    assert_eq!(app.count().await, 1);
    let Backing::Sqlite(dir) = &app.backing else {
        unreachable!()
    };
    assert!(dir.path().join("history.sqlite3").is_file());
}

#[tokio::test]
async fn gethistory_returns_the_newest_first_up_to_the_limit() {
    let app = spawn_app().await;
    for (original, figalized) in [
        ("каюк", "Фигаюк"),
        ("велосипед", "Фигосипед"),
        ("тихий дон", "Фигихий Фигон"),
    ] {
        assert_eq!(app.append(original, figalized).await.status(), 200);
    }
    let latest = app.get_json("/api/gethistory/?limit=2").await;
    let originals: Vec<_> = latest
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[1].clone())
        .collect();
    assert_eq!(originals, [json!("тихий дон"), json!("велосипед")]);
    assert_eq!(
        app.get_json("/api/gethistory/")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        app.get_json("/api/gethistory/?limit=100")
            .await
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn a_repeated_id_in_the_body_or_header_is_stored_once() {
    let app = spawn_app().await;
    let body = json!({"original": "велосипед", "figalized": "Фигосипед", "id": "figalize-1"});
    let first: Value = app
        .post_json("/api/append/", &body)
        .await
        .json()
        .await
        .unwrap();
    let again: Value = app
        .post_json("/api/append/", &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["created"], true);
    assert_eq!(again["created"], false);
    assert_eq!(again["id"], first["id"]);

    let app = &app;
    let created_by_header = |key: &'static str| async move {
        let response = app
            .client
            .post(app.url("/api/append/"))
            .header("idempotency-key", key)
            .json(&json!({"original": "каюк", "figalized": "Фигаюк"}))
            .send()
            .await
            .unwrap();
        response.json::<Value>().await.unwrap()["created"].clone()
    };
    assert_eq!(created_by_header("k-2").await, true);
    assert_eq!(created_by_header("k-2").await, false);
    assert_eq!(app.count().await, 2);
}

#[tokio::test]
async fn concurrent_appends_are_all_committed() {
    let app = std::sync::Arc::new(spawn_app().await);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..200 {
        let app = std::sync::Arc::clone(&app);
        tasks.spawn(async move {
            let body =
                json!({"original": "велосипед", "figalized": "Фигосипед", "id": format!("c-{n}")});
            app.post_json("/api/append/", &body).await.status()
        });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    assert_eq!(app.count().await, 200);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("figachechnaya_history_appends_total 200"),
        "{metrics}"
    );
    let value = |series: &str| -> i64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in {metrics}"))
            .parse()
            .unwrap()
    };
    let max = value("figachechnaya_history_db_pool_max_connections");
    let open = value(r#"figachechnaya_history_db_pool_connections{state="idle"}"#)
        + value(r#"figachechnaya_history_db_pool_connections{state="in_use"}"#);
    assert!(max > 0 && (1..=max).contains(&open), "{open} of {max}");
    assert!(
        metrics.contains(r#"figachechnaya_history_build_info{commit=""#),
        "{metrics}"
    );
}

#[tokio::test]
async fn bad_appends_get_4xx_and_nothing_is_written() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"original": "bicycle", "figalized": "Фигосипед"}),
            400,
            "not_russian",
        ),
        (
            json!({"original": "велосипед", "figalized": "Fig"}),
            400,
            "not_russian",
        ),
        (
            json!({"original": "вело\u{0}сипед", "figalized": "Фигосипед"}),
            400,
            "not_russian",
        ),
        (
            json!({"original": "", "figalized": "Фигосипед"}),
            400,
            "empty_phrase",
        ),
        (
            json!({"original": "я".repeat(257), "figalized": "Фига"}),
            400,
            "phrase_too_long",
        ),
        (
            json!({"original": "я", "figalized": "Фига".repeat(600)}),
            400,
            "phrase_too_long",
        ),
        (
            json!({"original": "велосипед", "figalized": "Фигосипед", "id": "a b"}),
            400,
            "invalid_id",
        ),
        (
            json!({"original": "велосипед", "figalized": "Фигосипед", "id": "x".repeat(129)}),
            400,
            "invalid_id",
        ),
        (json!({"original": "велосипед"}), 422, "invalid_body"),
        (json!({"figalized": "Фигосипед"}), 422, "invalid_body"),
        (
            json!({"original": 1, "figalized": "Фигосипед"}),
            422,
            "invalid_body",
        ),
        (json!(["велосипед", "Фигосипед"]), 422, "invalid_body"),
    ];
    for (body, status, code) in cases {
        let body_text = body.to_string();
        let response = app.post_json("/api/append/", &body).await;
        assert_eq!(response.status().as_u16(), status, "{body_text}");
        expect_error(response, status, code).await;
    }
    let response = app
        .client
        .post(app.url("/api/append/"))
        .header("content-type", "application/json")
        .body("{\"original\": ")
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "malformed_json").await;
    assert_eq!(app.count().await, 0);
    assert_eq!(app.get_json("/api/gethistory/").await, json!([]));
}

#[tokio::test]
async fn a_limit_out_of_range_or_not_a_number_is_400() {
    let app = spawn_app().await;
    for (query, code) in [
        ("0", "invalid_limit"),
        ("101", "invalid_limit"),
        ("-1", "invalid_query"),
        ("ten", "invalid_query"),
    ] {
        let response = app.get(&format!("/api/gethistory/?limit={query}")).await;
        expect_error(response, 400, code).await;
    }
}

#[tokio::test]
async fn the_openapi_document_matches_its_snapshot() {
    let app = spawn_app_on(Backing::sqlite(), &[]).await;
    common::testing::assert_openapi(
        &app,
        "history",
        &[
            "/api/append/",
            "/api/append/batch/",
            "/api/gethistory/",
            "/api/history/count",
            "/api/history/stream",
            "/api/healthz/",
        ],
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/openapi.json"),
    )
    .await;
}

#[tokio::test]
async fn a_batch_commits_its_valid_entries_and_rejects_the_invalid_ones_in_place() {
    let app = spawn_app().await;
    let batch = json!({"entries": [
        {"id": "b-1", "original": "велосипед", "figalized": "Фигосипед", "request_id": "req-1"},
        {"id": "b-2", "original": "bicycle", "figalized": "Фигосипед"},
        {"id": "b 3", "original": "каюк", "figalized": "Фигаюк"},
        {"id": "b-4", "original": "тихий  дон", "figalized": "Фигихий Фигон"},
    ]});
    let response = app.post_json("/api/append/batch/", &batch).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[0]["status"], "stored");
    assert_eq!(results[0]["created"], true);
    assert_eq!(results[1]["status"], "rejected");
    assert_eq!(results[1]["code"], "not_russian");
    assert!(
        results[1]["message"]
            .as_str()
            .unwrap()
            .starts_with("original: ")
    );
    assert_eq!(results[2]["status"], "rejected");
    assert_eq!(results[2]["code"], "invalid_id");
    assert_eq!(results[3]["status"], "stored");
    assert_eq!(app.count().await, 2);
    // Newest first; the phrase normalised as in a single append.
    let latest = app.get_json("/api/gethistory/?limit=10").await;
    assert_eq!(
        latest,
        json!([
            [results[3]["id"], "тихий дон", "Фигихий Фигон"],
            [results[0]["id"], "велосипед", "Фигосипед"],
        ])
    );

    // The same batch again, as a retry: nothing stored twice, the same ids answered.
    let again: Value = app
        .post_json("/api/append/batch/", &batch)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["results"][0]["created"], false);
    assert_eq!(again["results"][0]["id"], results[0]["id"]);
    assert_eq!(again["results"][3]["created"], false);
    assert_eq!(app.count().await, 2);
}

#[tokio::test]
async fn a_batch_and_a_single_append_share_idempotency_ids() {
    let app = spawn_app().await;
    let single = json!({"id": "shared-1", "original": "каюк", "figalized": "Фигаюк"});
    let first: Value = app
        .post_json("/api/append/", &single)
        .await
        .json()
        .await
        .unwrap();
    let batch = json!({"entries": [single]});
    let answer: Value = app
        .post_json("/api/append/batch/", &batch)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer["results"][0],
        json!({"status": "stored", "id": first["id"], "created": false})
    );
    assert_eq!(app.count().await, 1);
}

#[tokio::test]
async fn a_batch_must_hold_from_one_to_256_entries_each_with_an_id() {
    let app = spawn_app().await;
    let empty = app
        .post_json("/api/append/batch/", &json!({"entries": []}))
        .await;
    expect_error(empty, 400, "invalid_batch").await;

    let entry = json!({"id": "x", "original": "да", "figalized": "Фига"});
    let many = json!({"entries": vec![entry; 257]});
    expect_error(
        app.post_json("/api/append/batch/", &many).await,
        400,
        "invalid_batch",
    )
    .await;

    let without_id = json!({"entries": [{"original": "да", "figalized": "Фига"}]});
    expect_error(
        app.post_json("/api/append/batch/", &without_id).await,
        422,
        "invalid_body",
    )
    .await;
    assert_eq!(app.count().await, 0);
}

#[tokio::test]
async fn a_full_batch_passes_the_internal_body_limit_and_a_larger_body_is_413() {
    let entries: Vec<Value> = (0..256)
        .map(|n| {
            json!({
                "id": format!("full-{n:03}"),
                "original": "красивая машина едет",
                "figalized": "Фигасивая Фигашина Фигедет",
            })
        })
        .collect();
    let full = json!({ "entries": entries });
    assert!(
        full.to_string().len() > 8 * 1024,
        "over the public MAX_BODY_BYTES"
    );
    let app = spawn_app().await;
    let response = app.post_json("/api/append/batch/", &full).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.count().await, 256);

    let app = spawn_app_on(
        Backing::postgres().await,
        &[("MAX_INTERNAL_BODY_BYTES", "16384")],
    )
    .await;
    expect_error(
        app.post_json("/api/append/batch/", &full).await,
        413,
        "payload_too_large",
    )
    .await;
    assert_eq!(app.count().await, 0);
}

/// Each entry of a batch gets its own row whatever the order of their ids, on both stores;
/// a batch that repeats an id, or brings one already stored, still stores each id once.
#[tokio::test]
async fn a_batch_maps_each_entry_to_its_row_and_stores_each_id_once() {
    for backing in [Backing::postgres().await, Backing::sqlite()] {
        let app = spawn_app_on(backing, &[]).await;
        let words = ["каюк", "тихий", "дон", "велосипед"];
        let entry = |id: &str, word: &str| json!({"id": id, "original": word, "figalized": "Фига"});
        // Ids out of their sorted order: the rows go in sorted, the answers come back in order.
        let fresh = json!({"entries": [
            entry("z-1", words[0]), entry("a-2", words[1]), entry("m-3", words[2]),
        ]});
        let answer: Value = app
            .post_json("/api/append/batch/", &fresh)
            .await
            .json()
            .await
            .unwrap();
        let ids: Vec<i64> = answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|result| {
                assert_eq!(result["created"], true, "{answer}");
                result["id"].as_i64().unwrap()
            })
            .collect();
        let stored = app.get_json("/api/gethistory/?limit=10").await;
        for (id, word) in ids.iter().zip(words) {
            let row = stored.as_array().unwrap().iter().find(|row| row[0] == *id);
            assert_eq!(row.map(|row| row[1].clone()), Some(json!(word)), "{stored}");
        }

        // One id stored before, one new id twice.
        let mixed = json!({"entries": [
            entry("m-3", words[2]), entry("b-4", words[3]), entry("b-4", words[3]),
        ]});
        let answer: Value = app
            .post_json("/api/append/batch/", &mixed)
            .await
            .json()
            .await
            .unwrap();
        let results = &answer["results"];
        assert_eq!(
            results[0],
            json!({"status": "stored", "id": ids[2], "created": false})
        );
        assert_eq!(results[1]["created"], true, "{answer}");
        assert_eq!(results[2]["created"], false, "{answer}");
        assert_eq!(results[2]["id"], results[1]["id"]);
        assert_eq!(app.count().await, 4);
    }
}
