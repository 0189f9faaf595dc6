//! A service started in the test's process on a free port, and a client to talk to it.

use std::net::SocketAddr;

use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::server::Server;

/// A running service, asked to stop when dropped.
pub struct RunningService {
    /// Where it listens.
    pub addr: SocketAddr,
    /// A client with a connection pool.
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningService {
    /// Runs `server` until the test stops it (or drops this value).
    pub fn start(server: Server) -> Self {
        let addr = server.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            client: reqwest::Client::new(),
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// The URL of `path` on this service.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// `GET path`, expecting 200 and JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.expect("JSON")
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// `POST path` with a raw body declared as JSON.
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
        let text = self
            .get("/metrics")
            .await
            .text()
            .await
            .expect("metrics text");
        metric_value(&text, name)
    }

    /// Asks the service to stop and waits until it has exited, background work done.
    pub async fn shut_down(mut self) -> std::io::Result<()> {
        self.stop
            .take()
            .expect("running")
            .send(())
            .expect("the server listens");
        self.server
            .take()
            .expect("running")
            .await
            .expect("the server task ends")
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Asserts an answer is an error in the common shape, with this status and code, a message and
/// the request id of its header; returns the body.
pub async fn expect_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let request_id = response
        .headers()
        .get("x-request-id")
        .expect("x-request-id on errors")
        .to_str()
        .expect("a visible id")
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

/// Checks a service's public contract: `/api/<name>/openapi.json` is OpenAPI 3.1, documents
/// each of `paths` and matches the snapshot at `snapshot`; `/api/<name>/docs/` answers.
pub async fn assert_openapi(service: &RunningService, name: &str, paths: &[&str], snapshot: &str) {
    let doc = service.get_json(&format!("/api/{name}/openapi.json")).await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "OpenAPI 3.1"
    );
    for path in paths {
        assert!(doc["paths"].get(path).is_some(), "{path} undocumented");
    }
    crate::testing::assert_snapshot(&doc, snapshot);
    assert_eq!(
        service.get(&format!("/api/{name}/docs/")).await.status(),
        200
    );
}

/// The value of the sample `name` (with its labels, if any, as exposed) in a `/metrics` text.
pub fn metric_value(text: &str, name: &str) -> i64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
        .parse()
        .expect("an integer metric")
}
