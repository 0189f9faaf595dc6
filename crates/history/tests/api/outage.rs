//! A database outage: appends answer 503, readiness turns false, and both heal by themselves.

use std::net::ToSocketAddrs;
use std::str::FromStr;

use common::testing::{TcpProxy, TestDatabase};
use sqlx::postgres::PgConnectOptions;

use crate::helpers::{Backing, expect_error, spawn_app_on};

/// The test database's URL, pointed at `proxy` instead of the server.
fn through(db: &TestDatabase, proxy: std::net::SocketAddr) -> String {
    let options = PgConnectOptions::from_str(&db.url).unwrap();
    let server = format!("{}:{}", options.get_host(), options.get_port());
    db.url.replacen(&server, &proxy.to_string(), 1)
}

#[tokio::test]
async fn while_the_database_is_away_appends_get_503_and_readiness_is_false_then_both_heal() {
    let db = TestDatabase::create().await;
    let options = PgConnectOptions::from_str(&db.url).unwrap();
    let server = (options.get_host(), options.get_port())
        .to_socket_addrs()
        .unwrap()
        .next()
        .unwrap();
    let mut proxy = TcpProxy::start(server).await;
    let url = through(&db, proxy.addr);
    let app = spawn_app_on(Backing::Postgres(db), &[("DATABASE_URL", &url)]).await;
    assert_eq!(app.append("велосипед", "Фигосипед").await.status(), 200);
    assert_eq!(app.get("/api/healthz/").await.status(), 200);

    proxy.cut().await;
    expect_error(app.append("каюк", "Фигаюк").await, 503, "unavailable").await;
    let readiness = app.get("/api/healthz/").await;
    let body = expect_error(readiness, 503, "not_ready").await;
    assert!(
        body["data"].as_str().unwrap().contains("database"),
        "{body}"
    );
    assert_eq!(app.get("/api/livez/").await.status(), 200);

    proxy.restore().await;
    let ready = async {
        loop {
            if app.get("/api/healthz/").await.status() == 200 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), ready)
        .await
        .expect("readiness returns once the database is back");
    assert_eq!(app.append("каюк", "Фигаюк").await.status(), 200);
    assert_eq!(app.count().await, 2);
}
