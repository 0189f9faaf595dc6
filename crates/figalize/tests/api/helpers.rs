//! Starting the service for a test and talking to it.

use std::ops::Deref;

use std::net::SocketAddr;

use common::config::Env;
use common::testing::{RunningService, TempDir, TestDatabase};
use serde_json::json;
use sqlx::Connection;

pub use common::testing::expect_error;

/// A running figalize service, with its journal in a folder of its own.
pub struct TestApp {
    service: RunningService,
    _journal: TempDir,
}

impl Deref for TestApp {
    type Target = RunningService;

    fn deref(&self) -> &RunningService {
        &self.service
    }
}

/// The scheme file in the repository (the same two schemes as built in).
pub const SCHEMES_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schemes/default.json");

/// Starts the service on a free port with the repository's scheme file.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts the service with extra environment variables.
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    common::telemetry::init_for_tests();
    let journal = TempDir::new();
    // History is out of reach unless a test says otherwise: entries wait in the outbox.
    let mut vars = vec![
        ("FIGALIZE_API_PORT", "0"),
        ("SCHEMES_FILE", SCHEMES_FILE),
        ("HISTORY_APPEND_URL", "http://127.0.0.1:9/api/append/"),
        ("JOURNAL_DIR", journal.path().to_str().unwrap()),
        // A test is one client, often sending hundreds at once: not limited per client
        // unless it says so.
        ("RATE_LIMIT_PER_SECOND", "0"),
    ];
    vars.extend_from_slice(extra);
    let env = Env::from_pairs(vars);
    let server = figalize::build(&env).await.expect("the service starts");
    TestApp {
        service: RunningService::start(server),
        _journal: journal,
    }
}

impl TestApp {
    /// `POST /api/figalize/`.
    pub async fn figalize(&self, schema_id: i64, phrase: &str) -> reqwest::Response {
        self.post_json(
            "/api/figalize/",
            &json!({"schema_id": schema_id, "phrase": phrase}),
        )
        .await
    }

    /// Asks the service to stop and waits until it has exited, its outbox delivered.
    pub async fn shut_down(self) -> std::io::Result<()> {
        self.service.shut_down().await
    }
}

/// A distinct Russian word for each number: its digits written as letters.
pub fn russian_number(n: usize) -> String {
    const DIGITS: [char; 10] = ['а', 'б', 'в', 'г', 'д', 'е', 'ж', 'з', 'и', 'к'];
    let digits = n.to_string();
    let letters: String = digits
        .bytes()
        .map(|d| DIGITS[usize::from(d - b'0')])
        .collect();
    format!("слово{letters}")
}

/// A loopback port nothing listens on (yet). Another process could take it before history
/// does; on a test machine's loopback that has not been seen.
pub fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Starts history, on a fresh database, at the address figalize was told.
pub async fn start_history_at(addr: SocketAddr) -> (TestDatabase, RunningService) {
    start_history_with(addr, &[]).await
}

/// [`start_history_at`], with more settings.
pub async fn start_history_with(
    addr: SocketAddr,
    extra: &[(&str, &str)],
) -> (TestDatabase, RunningService) {
    let db = TestDatabase::create().await;
    let port = addr.port().to_string();
    let mut vars = vec![
        ("HISTORY_API_PORT", port.as_str()),
        ("DATABASE_URL", db.url.as_str()),
    ];
    vars.extend_from_slice(extra);
    let history = history::build(&Env::from_pairs(vars))
        .await
        .expect("history starts on the port figalize was told");
    (db, RunningService::start(history))
}

/// The originals history stored, sorted: a lost entry or one stored twice shows.
pub async fn stored_originals(db: &TestDatabase) -> Vec<String> {
    let mut connection = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let stored: Vec<String> = sqlx::query_scalar("select original from history")
        .fetch_all(&mut connection)
        .await
        .unwrap();
    sorted(stored)
}

/// The words, sorted.
pub fn sorted(mut words: Vec<String>) -> Vec<String> {
    words.sort();
    words
}
