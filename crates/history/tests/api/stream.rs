//! The live stream.

use serde_json::Value;

use crate::helpers::spawn_app;

/// Reads Server-Sent Events from a response, one `data` payload at a time.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|line| line.strip_prefix(name))
                        .map(str::trim)
                        .map(str::to_owned)
                };
                if let (Some(event), Some(data)) = (field("event:"), field("data:")) {
                    return (event, serde_json::from_str(&data).expect("JSON data"));
                }
                continue; // a keep-alive comment
            }
            let chunk = self
                .response
                .chunk()
                .await
                .expect("stream open")
                .expect("more events");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }
}

#[tokio::test]
async fn a_connected_client_gets_the_current_state_then_each_commit() {
    let app = spawn_app().await;
    assert_eq!(app.append("каюк", "Фигаюк").await.status(), 200);

    let response = app.get("/api/history/stream").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut events = Events {
        response,
        buffer: String::new(),
    };

    let (name, first) = events.next().await;
    assert_eq!(name, "history");
    assert_eq!(first["count"], 1);
    assert_eq!(first["entry"]["original"], "каюк");

    assert_eq!(app.append("велосипед", "Фигосипед").await.status(), 200);
    let (_, update) = events.next().await;
    assert_eq!(update["count"], 2);
    assert_eq!(update["entry"]["original"], "велосипед");
    assert_eq!(update["entry"]["figalized"], "Фигосипед");

    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("figachechnaya_history_stream_clients 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_empty_history_streams_a_zero_count_and_no_entry() {
    let app = spawn_app().await;
    let response = app.get("/api/history/stream").await;
    let mut events = Events {
        response,
        buffer: String::new(),
    };
    let (_, first) = events.next().await;
    assert_eq!(first["count"], 0);
    assert!(first["entry"].is_null());
}
