//! figalize → history: every entry arrives once, whatever history is doing.

use sqlx::Connection;

use common::testing::{RunningService, TestDatabase};

use crate::helpers::{
    free_port, russian_number, sorted, spawn_app_with, start_history_at, start_history_with,
    stored_originals,
};

#[tokio::test]
async fn entries_made_while_history_is_down_all_arrive_once_it_is_up() {
    let history_addr = free_port();
    let url = format!("http://{history_addr}/api/append/");
    let app = spawn_app_with(&[
        ("HISTORY_APPEND_URL", &url),
        ("OUTBOX_MAX_BACKOFF_MS", "300"),
    ])
    .await;

    let phrases: Vec<String> = (0..500).map(russian_number).collect();
    for (n, phrase) in (0_i64..).zip(&phrases) {
        let response = app.figalize(n % 2, phrase).await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(
        app.metric("figachechnaya_figalize_history_outbox_queued_total")
            .await,
        500
    );
    common::testing::wait_until_async("a delivery to be retried", || async {
        app.metric("figachechnaya_figalize_history_outbox_retried_total")
            .await
            > 0
    })
    .await;

    let (db, _history) = start_history_at(history_addr).await;

    common::testing::wait_until_async("the outbox to drain", || async {
        app.metric("figachechnaya_figalize_history_outbox_depth")
            .await
            == 0
            && app
                .metric("figachechnaya_figalize_history_outbox_delivered_total")
                .await
                == 500
    })
    .await;
    // Exactly the 500 phrases, each once: a lost entry or a retry stored twice would show.
    assert_eq!(stored_originals(&db).await, sorted(phrases));
}

#[tokio::test]
async fn a_full_outbox_refuses_with_503_and_loses_nothing_it_accepted() {
    let history_addr = free_port();
    let url = format!("http://{history_addr}/api/append/");
    let app = spawn_app_with(&[
        ("HISTORY_APPEND_URL", &url),
        ("OUTBOX_CAPACITY", "5"),
        ("OUTBOX_MAX_BACKOFF_MS", "200"),
    ])
    .await;
    let accepted: Vec<String> = (0..5).map(russian_number).collect();
    for phrase in &accepted {
        assert_eq!(app.figalize(0, phrase).await.status(), 200);
    }
    let refused = app.figalize(0, &russian_number(5)).await;
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    common::testing::expect_error(refused, 503, "unavailable").await;
    assert_eq!(
        app.metric("figachechnaya_figalize_history_outbox_refused_total")
            .await,
        1
    );

    let (db, _history) = start_history_at(history_addr).await;
    common::testing::wait_until_async("the outbox to drain", || async {
        app.metric("figachechnaya_figalize_history_outbox_delivered_total")
            .await
            == 5
    })
    .await;
    // Exactly what was answered 200, once each; the refused phrase is not there.
    assert_eq!(stored_originals(&db).await, sorted(accepted));
    // With room again, figalizations are taken.
    assert_eq!(app.figalize(0, &russian_number(6)).await.status(), 200);
}

/// Figalizes `phrases` phrases while history is away, so that they go out as batches once it
/// is up, to `batch_path` on it; starts history with `history_settings`; once all are
/// delivered, checks that history stored exactly them and none was dropped. Answers history,
/// still running, and its database.
async fn delivered_as_batches(
    phrases: usize,
    batch_path: &str,
    history_settings: &[(&str, &str)],
) -> (TestDatabase, RunningService) {
    let history_addr = free_port();
    let url = format!("http://{history_addr}/api/append/");
    let batch_url = format!("http://{history_addr}{batch_path}");
    let app = spawn_app_with(&[
        ("HISTORY_APPEND_URL", &url),
        ("HISTORY_BATCH_URL", &batch_url),
        ("OUTBOX_MAX_BACKOFF_MS", "200"),
    ])
    .await;
    let phrases: Vec<String> = (0..phrases).map(russian_number).collect();
    for phrase in &phrases {
        assert_eq!(app.figalize(1, phrase).await.status(), 200);
    }
    let (db, history) = start_history_with(history_addr, history_settings).await;
    common::testing::wait_until_async("the outbox to drain", || async {
        app.metric("figachechnaya_figalize_history_outbox_delivered_total")
            .await
            == i64::try_from(phrases.len()).unwrap()
    })
    .await;
    assert_eq!(stored_originals(&db).await, sorted(phrases));
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .contains("figachechnaya_figalize_history_outbox_dropped_total{reason=\"rejected\"} 0"),
        "{metrics}"
    );
    (db, history)
}

#[tokio::test]
async fn a_history_without_the_batch_route_gets_the_entries_one_by_one() {
    delivered_as_batches(40, "/api/append/missing/", &[]).await;
}

#[tokio::test]
async fn a_batch_over_historys_body_limit_goes_again_in_halves() {
    // 100 entries go as one batch of about 17 KiB of JSON, four times what this history takes.
    let (_db, history) = delivered_as_batches(
        100,
        "/api/append/batch/",
        &[("MAX_INTERNAL_BODY_BYTES", "4096")],
    )
    .await;
    // The halves went as batches (one by one, the batch route would have answered only 413).
    let history_metrics = history.get("/metrics").await.text().await.unwrap();
    let batches_taken = history_metrics.lines().any(|line| {
        line.starts_with("figachechnaya_history_http_requests_total{")
            && line.contains("route=\"/api/append/batch/\"")
            && line.contains("status=\"200\"")
    });
    assert!(batches_taken, "{history_metrics}");
}

#[tokio::test]
async fn a_history_that_never_answers_does_not_hold_up_figalize() {
    // Accepts connections and never answers them.
    let silent = tokio::net::TcpListener::bind("127.0.1:0").await.unwrap();
    let url = format!("http://{}/api/append/", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = silent.accept().await {
            held.push(connection);
        }
    });
    let app = spawn_app_with(&[
        ("HISTORY_APPEND_URL", &url),
        ("HISTORY_TIMEOUT_MS", "60000"),
    ])
    .await;
    for _ in 0..20 {
        let response = app.figalize(0, "велосипед").await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.json::<serde_json::Value>().await.unwrap()["data"],
            "Фигосипед"
        );
    }
    assert_eq!(
        app.metric("figachechnaya_figalize_history_outbox_delivered_total")
            .await,
        0
    );
}

#[tokio::test]
async fn a_stopping_service_delivers_its_outbox_before_it_exits() {
    let history_addr = free_port();
    let url = format!("http://{history_addr}/api/append/");
    let app = spawn_app_with(&[
        ("HISTORY_APPEND_URL", &url),
        ("OUTBOX_MAX_BACKOFF_MS", "200"),
    ])
    .await;
    for n in 0..10 {
        assert_eq!(app.figalize(0, &russian_number(n)).await.status(), 200);
    }
    let stopped = tokio::spawn(app.shut_down());

    // History comes up only after the stop: the entries are still waiting, not lost.
    let (db, _history) = start_history_at(history_addr).await;

    stopped
        .await
        .unwrap()
        .expect("figalize exits cleanly once its outbox is delivered");
    let mut connection = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let rows: i64 = sqlx::query_scalar("select count(*) from history")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_eq!(rows, 10);
}
