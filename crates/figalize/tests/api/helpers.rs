//! Starting the service for a test and talking to it.

use std::ops::Deref;

use common::testing::RunningService;
use serde_json::json;

pub use common::testing::expect_error;

/// A running figalize service.
pub struct TestApp(RunningService);

impl Deref for TestApp {
    type Target = RunningService;

    fn deref(&self) -> &RunningService {
        &self.0
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
    // History is out of reach unless a test says otherwise: entries wait in the outbox.
    let mut vars = vec![
        ("FIGALIZE_API_PORT", "0"),
        ("SCHEMES_FILE", SCHEMES_FILE),
        ("HISTORY_APPEND_URL", "http://127.0.0.1:9/api/append/"),
    ];
    vars.extend_from_slice(extra);
    let env = common::config::Env::from_pairs(vars);
    let server = figalize::build(&env).await.expect("the service starts");
    TestApp(RunningService::start(server))
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
        self.0.shut_down().await
    }
}
