//! The history binary on its own, as an operator runs it.

use common::testing::{TestDatabase, failed_start, run_binary, start_binary};
use sqlx::Connection;

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

#[tokio::test]
async fn migrate_applies_the_schema_and_exits() {
    let db = TestDatabase::create().await;
    let url = db.url.clone();
    let migrate = move || run_binary(BINARY, &["migrate"], &[("DATABASE_URL", url.as_str())]);
    let (code, _, stderr) = tokio::task::spawn_blocking(migrate.clone()).await.unwrap();
    assert_eq!(code, 0, "{stderr}");
    let mut connection = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let applied: i64 = sqlx::query_scalar("select count(*) from _sqlx_migrations where success")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    let embedded = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .unwrap()
        .count();
    assert_eq!(usize::try_from(applied).unwrap(), embedded);
    // A second run finds nothing to do.
    let (code, _, stderr) = tokio::task::spawn_blocking(migrate).await.unwrap();
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn migrate_fails_when_the_database_is_out_of_reach() {
    let (code, _, stderr) = run_binary(
        BINARY,
        &["migrate"],
        &[
            ("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none"),
            ("DB_STARTUP_TIMEOUT_MS", "0"),
        ],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("applying the PostgreSQL migrations"),
        "{stderr}"
    );
}
