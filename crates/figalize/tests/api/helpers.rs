//! Starting the service for a test and talking to it.

use std::net::SocketAddr;

use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running figalize service, stopped when dropped.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
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
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `POST /api/figalize/` with a JSON body.
    pub async fn figalize(&self, schema_id: i64, phrase: &str) -> reqwest::Response {
        self.post_json(
            "/api/figalize/",
            &json!({"schema_id": schema_id, "phrase": phrase}),
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

    /// A raw body with a JSON content type.
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

    /// The value of an integer metric without labels, from `/metrics`.
    pub async fn metric(&self, name: &str) -> i64 {
        let text = self.get("/metrics").await.text().await.unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name} in /metrics"))
            .parse()
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }
}

impl TestApp {
    /// Asks the service to stop and waits until it has exited, its background work done.
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

/// Asserts an answer is an error in the common shape and returns its body.
pub async fn expect_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let request_id = response
        .headers()
        .get("x-request-id")
        .expect("x-request-id on errors")
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["code"], code, "error code in {body}");
    assert!(
        body["data"].as_str().is_some_and(|m| !m.is_empty()),
        "a message in data: {body}"
    );
    assert_eq!(body["request_id"], request_id.as_str());
    body
}
