//! A database of its own for each test, on the PostgreSQL the test script started.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The server tests use: `TEST_DATABASE_URL`, else the one `ci/test.sh` provides.
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh, empty database, dropped when this value is.
pub struct TestDatabase {
    name: String,
    /// Its connection URL.
    pub url: String,
}

impl TestDatabase {
    /// Creates `test_<random>` on the test server. Fails the test, saying how to get a server,
    /// when none answers: tests never skip for lack of one.
    pub async fn create() -> Self {
        let server = server_url();
        let mut admin = PgConnection::connect(&server).await.unwrap_or_else(|err| {
            panic!(
                "cannot reach the test PostgreSQL at {server} ({err}); \
                 ./ci/test.sh starts one, or set TEST_DATABASE_URL"
            )
        });
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("create database {name}"))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let (base, _) = server.rsplit_once('/').expect("a URL with a database");
        Self {
            url: format!("{base}/{name}"),
            name,
        }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside async code: a thread with its own runtime does the cleanup.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(&server_url()).await {
                    let _ = sqlx::query(&format!("drop database if exists {name} with (force)"))
                        .execute(&mut admin)
                        .await;
                }
            });
        });
        let _ = cleanup.join();
    }
}
