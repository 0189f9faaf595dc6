//! What one client could do to everyone: write from another site's pages, fill the disk.

use serde_json::json;

use crate::helpers::{Backing, expect_error, spawn_app_on};

/// Both write routes, each with a valid body.
fn writes() -> [(&'static str, serde_json::Value); 2] {
    [
        (
            "/api/append/",
            json!({"original": "велосипед", "figalized": "Фигосипед"}),
        ),
        (
            "/api/append/batch/",
            json!({"entries": [{"original": "самокат", "figalized": "Фигокат", "id": "abuse-1"}]}),
        ),
    ]
}

#[tokio::test]
async fn a_write_from_another_sites_page_is_refused_on_every_write_route() {
    let app = spawn_app_on(Backing::sqlite(), &[]).await;
    let client = reqwest::Client::new();
    for (path, body) in writes() {
        // A "simple" request, which a browser sends from any page without asking first.
        let response = client
            .post(app.url(path))
            .header("origin", "https://elsewhere.example")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        expect_error(response, 403, "cross_origin").await;
    }
    assert_eq!(app.count().await, 0, "nothing was written");
}

#[tokio::test]
async fn below_the_free_space_floor_appends_are_refused_and_reads_go_on() {
    // A floor of a petabyte: any disk this runs on has less free.
    let app = spawn_app_on(
        Backing::sqlite(),
        &[("HISTORY_MIN_FREE_BYTES", "1000000000000000")],
    )
    .await;
    for (path, body) in writes() {
        let response = app.post_json(path, &body).await;
        assert!(response.headers().contains_key("retry-after"), "{path}");
        expect_error(response, 503, "unavailable").await;
    }
    assert_eq!(app.count().await, 0);
    assert_eq!(app.get_json("/api/gethistory/").await, json!([]));
    assert_eq!(
        app.metric("figachechnaya_history_disk_refusals_total")
            .await,
        2
    );
    assert!(app.metric("figachechnaya_history_disk_free_bytes").await > 0);
    assert_eq!(
        app.metric("figachechnaya_history_disk_floor_bytes").await,
        1_000_000_000_000_000
    );
}

#[tokio::test]
async fn above_the_floor_appends_are_taken_and_a_floor_of_zero_turns_it_off() {
    for floor in ["1", "0"] {
        let app = spawn_app_on(Backing::sqlite(), &[("HISTORY_MIN_FREE_BYTES", floor)]).await;
        for (path, body) in writes() {
            assert_eq!(app.post_json(path, &body).await.status(), 200, "{path}");
        }
        assert_eq!(app.count().await, 2, "floor {floor}");
    }
}
