//! Starting the service for a test and talking to it.

use std::ops::Deref;

use common::testing::{RunningService, TempDir, TestDatabase};
use serde_json::json;

pub use common::testing::expect_error;

/// Where a test's history lives; kept alive as long as the service.
pub enum Backing {
    Postgres(TestDatabase),
    Sqlite(TempDir),
}

impl Backing {
    pub async fn postgres() -> Self {
        Self::Postgres(TestDatabase::create().await)
    }

    pub fn sqlite() -> Self {
        Self::Sqlite(TempDir::new())
    }

    fn vars(&self) -> Vec<(String, String)> {
        match self {
            Self::Postgres(db) => vec![("DATABASE_URL".into(), db.url.clone())],
            Self::Sqlite(dir) => vec![("DATA_DIR".into(), dir.path().display().to_string())],
        }
    }
}

/// A running history service and what its history lives in.
pub struct TestApp {
    service: RunningService,
    pub backing: Backing,
}

impl Deref for TestApp {
    type Target = RunningService;

    fn deref(&self) -> &RunningService {
        &self.service
    }
}

/// Starts the service on a fresh PostgreSQL database.
pub async fn spawn_app() -> TestApp {
    spawn_app_on(Backing::postgres().await, &[]).await
}

/// Starts the service on `backing` with extra variables (which win over the backing's).
pub async fn spawn_app_on(backing: Backing, extra: &[(&str, &str)]) -> TestApp {
    common::telemetry::init_for_tests();
    let mut vars = backing.vars();
    vars.push(("HISTORY_API_PORT".into(), "0".into()));
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let server = history::build(&common::config::Env::from_pairs(vars))
        .await
        .expect("the service starts");
    TestApp {
        service: RunningService::start(server),
        backing,
    }
}

impl TestApp {
    /// `POST /api/append/` without an id.
    pub async fn append(&self, original: &str, figalized: &str) -> reqwest::Response {
        self.post_json(
            "/api/append/",
            &json!({"original": original, "figalized": figalized}),
        )
        .await
    }

    /// `GET /api/history/count`.
    pub async fn count(&self) -> i64 {
        self.get_json("/api/history/count").await["count"]
            .as_i64()
            .expect("a count")
    }

    /// Asks the service to stop and waits until it has exited.
    pub async fn shut_down(self) -> std::io::Result<()> {
        self.service.shut_down().await
    }
}
