//! Starting the service for a test and talking to it.

use std::net::SocketAddr;

use common::testing::{TempDir, TestDatabase};
use serde_json::{Value, json};
use tokio::sync::oneshot;

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

/// A running history service, stopped when dropped.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub backing: Backing,
}

/// Starts the service on a fresh PostgreSQL database.
pub async fn spawn_app() -> TestApp {
    spawn_app_on(Backing::postgres().await, &[]).await
}

/// Starts the service on `backing` with extra variables.
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
    let addr = server.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        client: reqwest::Client::new(),
        stop: Some(stop),
        server: Some(server),
        backing,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn append(&self, original: &str, figalized: &str) -> reqwest::Response {
        self.post_json(
            "/api/append/",
            &json!({"original": original, "figalized": figalized}),
        )
        .await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.expect("JSON")
    }

    pub async fn count(&self) -> i64 {
        self.get_json("/api/history/count").await["count"]
            .as_i64()
            .expect("a count")
    }
}

impl TestApp {
    /// Asks the service to stop and waits until it has exited.
    pub async fn shut_down(mut self) -> std::io::Result<()> {
        self.stop.take().unwrap().send(()).unwrap();
        self.server.take().unwrap().await.unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Asserts an answer is an error in the common shape with this status and code.
pub async fn expect_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let body: Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["code"], code, "error code in {body}");
    body
}
