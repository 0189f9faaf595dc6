//! The history binary on its own, as an operator runs it.

use common::testing::{TestDatabase, failed_start, start_binary};

const BINARY: &str = env!("CARGO_BIN_EXE_history");

#[tokio::test]
async fn the_binary_serves_on_postgres_and_stops_on_sigterm() {
    let db = TestDatabase::create().await;
    let service = start_binary(
        BINARY,
        &[("HISTORY_API_PORT", "0"), ("DATABASE_URL", &db.url)],
    );
    let response = reqwest::get(format!("http://{}/api/history/count", service.addr))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(service.terminate().success());
}

#[test]
fn the_original_db_variables_are_checked_at_start_up() {
    let stderr = failed_start(
        BINARY,
        &[("HISTORY_API_PORT", "0"), ("DB_HOST", "127.0.0.1")],
    );
    assert!(stderr.contains("DB_LOGIN: is required"), "{stderr}");
    let stderr = failed_start(
        BINARY,
        &[
            ("DB_HOST", "127.0.0.1"),
            ("DB_LOGIN", "x"),
            ("DB_PORT", "x"),
        ],
    );
    assert!(stderr.contains("DB_PORT: "), "{stderr}");
}
