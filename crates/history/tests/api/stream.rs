//! The live stream.

use serde_json::Value;

use crate::helpers::{Backing, spawn_app, spawn_app_on};

/// Reads Server-Sent Events from a response, one `data` payload at a time. Bytes are buffered
/// until a whole event is in, so a letter split across chunks is never cut.
struct Events {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl Events {
    fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buffer: Vec::new(),
        }
    }

    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let raw: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let block = String::from_utf8(raw).expect("a UTF-8 event");
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
            self.buffer.extend_from_slice(&chunk);
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
    let mut events = Events::new(response);

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
    let mut events = Events::new(response);
    let (_, first) = events.next().await;
    assert_eq!(first["count"], 0);
    assert!(first["entry"].is_null());
}

#[tokio::test]
async fn open_streams_end_when_the_service_stops_so_it_can_exit() {
    let app = spawn_app().await;
    let response = app.get("/api/history/stream").await;
    let mut events = Events::new(response);
    events.next().await;
    // With the grace period far away, only the stream ending lets the server finish draining.
    app.shut_down()
        .await
        .expect("a clean exit with a stream open");
    assert!(
        events
            .response
            .chunk()
            .await
            .map_or(true, |chunk| chunk.is_none())
    );
}

#[tokio::test]
async fn a_stream_hears_of_commits_made_through_another_instance() {
    let first = spawn_app().await;
    let Backing::Postgres(db) = &first.backing else {
        unreachable!()
    };
    // A second replica on the same database.
    let second = spawn_app_on(Backing::sqlite(), &[("DATABASE_URL", &db.url)]).await;

    let mut events = Events::new(first.get("/api/history/stream").await);
    assert_eq!(events.next().await.1["count"], 0);
    assert_eq!(second.append("велосипед", "Фигосипед").await.status(), 200);
    let (_, update) = events.next().await;
    assert_eq!(update["count"], 1);
    assert_eq!(update["entry"]["original"], "велосипед");
}

#[tokio::test]
async fn live_streams_are_bounded_per_client_and_per_process() {
    let app = spawn_app_on(
        Backing::sqlite(),
        &[("MAX_STREAMS_PER_CLIENT", "2"), ("MAX_STREAMS", "3")],
    )
    .await;
    let open = |source: &'static str| {
        let url = app.url("/api/history/stream");
        async move {
            let client = common::testing::client_from(source).build().unwrap();
            client.get(url).send().await.unwrap()
        }
    };
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut events = Events::new(open("127.0.0.1").await);
        events.next().await;
        held.push(events);
    }
    let third = open("127.0.0.1").await;
    assert_eq!(third.status(), 429);
    assert_eq!(third.headers()["retry-after"], "1");
    let body: Value = third.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    // Another client gets the process's last one, then the process is full.
    let mut other = Events::new(open("127.0.0.2").await);
    other.next().await;
    let full = open("127.0.0.3").await;
    assert_eq!(full.status(), 503);
    let body: Value = full.json().await.unwrap();
    assert_eq!(body["code"], "unavailable");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    for sample in [
        "figachechnaya_history_http_streams_refused_total{reason=\"per_client\"} 1",
        "figachechnaya_history_http_streams_refused_total{reason=\"full\"} 1",
    ] {
        assert!(metrics.contains(sample), "{sample} in {metrics}");
    }
    // A stream closed gives its place back.
    drop(held.pop());
    common::testing::wait_until_async("the closed stream to be given back", || async {
        open("127.0.0.1").await.status() == 200
    })
    .await;
}
