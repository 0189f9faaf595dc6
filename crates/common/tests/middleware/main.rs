//! The shared middleware, exercised through a real server with routes that misbehave on purpose.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use common::app::{Process, ServiceRoutes};
use common::config::{Env, HttpConfig};
use common::server::Server;
use serde_json::Value;
use tokio::sync::{Notify, oneshot};

struct TestServer {
    addr: SocketAddr,
    process: Process,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// A server with `/slow` (never answers), `/panic`, `/gate` (answers once released) and
/// `/echo` (returns its JSON body).
async fn start(vars: &[(&str, &str)], gate: Arc<Notify>) -> TestServer {
    common::telemetry::init_for_tests();
    let mut all = vec![("TEST_PORT", "0")];
    all.extend_from_slice(vars);
    let http = HttpConfig::from_env(&Env::from_pairs(all), "TEST_PORT", 0).unwrap();
    let process = Process::new("test");
    let router = Router::new()
        .route("/slow", get(std::future::pending::<()>))
        .route("/panic", get(explode))
        .route(
            "/gate",
            get(move || {
                let gate = Arc::clone(&gate);
                async move {
                    gate.notified().await;
                    "released"
                }
            }),
        )
        .route(
            "/echo",
            post(|common::Json(body): common::Json<Value>| async move { common::Json(body) }),
        );
    let service = ServiceRoutes::new("test", "A test service.", router.into());
    let app = common::app::build(&process, &http, vec![service]);
    let server = Server::bind(&http, &process).await.unwrap().route(app);
    let addr = server.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    TestServer {
        addr,
        process,
        stop: Some(stop),
        done,
    }
}

async fn explode() -> &'static str {
    panic!("boom")
}

impl TestServer {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON error body");
    (status, body["code"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_request_over_the_timeout_gets_503_in_the_error_shape() {
    let server = start(&[("REQUEST_TIMEOUT_MS", "200")], Arc::default()).await;
    let response = reqwest::get(server.url("/slow")).await.unwrap();
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(error_code(response).await, (503, "unavailable".into()));
}

#[tokio::test]
async fn a_panicking_handler_gets_500_and_the_server_keeps_answering() {
    let server = start(&[], Arc::default()).await;
    let response = reqwest::get(server.url("/panic")).await.unwrap();
    assert_eq!(error_code(response).await, (500, "internal_error".into()));
    let response = reqwest::get(server.url("/api/livez/")).await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_body_limit_is_configurable() {
    let server = start(&[("MAX_BODY_BYTES", "32")], Arc::default()).await;
    let client = reqwest::Client::new();
    let small = client
        .post(server.url("/echo"))
        .body("[1,2,3]")
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), 200);
    let large = client
        .post(server.url("/echo"))
        .body(format!("[{}1]", "1,".repeat(40)))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(large).await, (413, "payload_too_large".into()));
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let server = start(
        &[("CORS_ALLOWED_ORIGINS", "https://good.example")],
        Arc::default(),
    )
    .await;
    let client = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, server.url("/echo"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let good = preflight("https://good.example").await.unwrap();
    assert_eq!(
        good.headers()["access-control-allow-origin"],
        "https://good.example"
    );
    assert!(
        !good
            .headers()
            .contains_key("access-control-allow-credentials")
    );
    let evil = preflight("https://evil.example").await.unwrap();
    assert!(!evil.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn without_configured_origins_no_cors_headers_are_sent() {
    let server = start(&[], Arc::default()).await;
    let response = reqwest::Client::new()
        .get(server.url("/api/livez/"))
        .header("origin", "https://any.example")
        .send()
        .await
        .unwrap();
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

#[tokio::test]
async fn stopping_refuses_new_connections_and_drains_the_request_in_flight() {
    let gate = Arc::new(Notify::new());
    let mut server = start(&[], Arc::clone(&gate)).await;
    let in_flight = tokio::spawn(reqwest::get(server.url("/gate")));
    // Wait until the request is being handled: the in-flight gauge says so.
    let registry = server.process.registry.clone();
    common::testing::wait_until("the request to be in flight", || {
        let in_flight = registry
            .gather()
            .iter()
            .find(|f| f.name() == "figachechnaya_test_http_requests_in_flight")
            .map_or(0.0, |f| f.get_metric()[0].get_gauge().get_value());
        in_flight >= 1.0
    })
    .await;

    server.stop.take().unwrap().send(()).unwrap();
    common::testing::wait_until("readiness to turn off", || {
        server.process.health.is_draining()
    })
    .await;
    common::testing::wait_until("the listener to close", || {
        std::net::TcpStream::connect(server.addr).is_err()
    })
    .await;
    assert!(
        !server.done.is_finished(),
        "exited with a request in flight"
    );

    gate.notify_one();
    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "released");
    server.done.await.unwrap().expect("a clean exit");
}

#[tokio::test]
async fn readiness_answers_503_while_draining() {
    let server = start(&[], Arc::default()).await;
    server.process.health.set_draining();
    let response = reqwest::get(server.url("/api/healthz/")).await.unwrap();
    assert_eq!(error_code(response).await, (503, "draining".into()));
    let response = reqwest::get(server.url("/api/livez/")).await.unwrap();
    assert_eq!(
        response.status(),
        200,
        "liveness does not depend on readiness"
    );
}

#[tokio::test]
async fn a_client_that_stops_sending_its_body_gets_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // The body may idle for half the request timeout: 1 s here, well before the 2 s limit.
    let server = start(&[("REQUEST_TIMEOUT_MS", "2000")], Arc::default()).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            b"POST /echo HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
              content-length: 100\r\n\r\n{\"half\": ",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
}

#[tokio::test]
async fn a_body_trickled_past_its_deadline_gets_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // A byte every 200 ms keeps every read quick; the whole body is due within 1 s (half the
    // request timeout), and its 60 bytes would take 12 s.
    let server = start(&[("REQUEST_TIMEOUT_MS", "2000")], Arc::default()).await;
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(
            b"POST /echo HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
              content-length: 60\r\n\r\n",
        )
        .await
        .unwrap();
    let trickle = tokio::spawn(async move {
        for _ in 0..60 {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            if writer.write_all(b" ").await.is_err() {
                break;
            }
        }
    });
    // The answer comes while the client is still sending.
    let mut answer = Vec::new();
    reader.read_to_end(&mut answer).await.unwrap();
    trickle.abort();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
}

#[tokio::test]
async fn error_answers_made_by_middleware_keep_their_cors_headers() {
    let server = start(
        &[
            ("CORS_ALLOWED_ORIGINS", "https://good.example"),
            ("MAX_BODY_BYTES", "16"),
        ],
        Arc::default(),
    )
    .await;
    let response = reqwest::Client::new()
        .post(server.url("/echo"))
        .header("origin", "https://good.example")
        .header("content-type", "application/json")
        .body("[1,2,3,4,5,6,7,8,9,10]")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://good.example"
    );
    assert_eq!(
        error_code(response).await,
        (413, "payload_too_large".into())
    );
}

#[tokio::test]
async fn unknown_paths_share_one_metric_label() {
    let server = start(&[], Arc::default()).await;
    for path in ["/a", "/b/c", "/%D0%B2%D0%B5%D0%BB%D0%BE"] {
        let response = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(error_code(response).await, (404, "not_found".into()));
    }
    let text = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"figachechnaya_test_http_requests_total{method="GET",route="unmatched",status="404"} 3"#),
        "{text}"
    );
    assert!(!text.contains("/b/c"));
}

/// A metric of the test server's registry.
fn metric(server: &TestServer, name: &str) -> f64 {
    server
        .process
        .registry
        .gather()
        .iter()
        .find(|f| f.name() == name)
        .map_or(0.0, |f| {
            let metric = &f.get_metric()[0];
            metric.get_counter().get_value() + metric.get_gauge().get_value()
        })
}

#[tokio::test]
async fn headers_over_the_limit_get_431_in_the_error_shape() {
    let server = start(&[("MAX_HEADER_BYTES", "2048")], Arc::default()).await;
    let client = reqwest::Client::new();
    let fits = client
        .get(server.url("/api/livez/"))
        .header("x-padding", "a".repeat(1024))
        .send()
        .await
        .unwrap();
    assert_eq!(fits.status(), 200);
    for path in ["/api/livez/", "/echo"] {
        let response = client
            .get(server.url(path))
            .header("x-padding", "a".repeat(4096))
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(response).await,
            (431, "headers_too_large".into()),
            "{path}"
        );
    }
}

#[tokio::test]
async fn too_many_headers_or_a_megabyte_of_them_get_431_in_the_error_shape() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // Defaults: MAX_HEADER_BYTES 16 KiB, at most 100 headers. The HTTP parser would answer
    // both with a bare 431 of its own.
    let server = start(&[], Arc::default()).await;
    let many = (0..101).fold(String::new(), |mut all, n| {
        use std::fmt::Write;
        let _ = write!(all, "x-h{n}: {n}\r\n");
        all
    });
    let huge = format!("x-padding: {}\r\n", "a".repeat(1_000_000));
    for extra in [many, huge] {
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let request =
            format!("GET /echo HTTP/1.1\r\nhost: test\r\n{extra}connection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
        assert!(
            answer.contains("\"code\":\"headers_too_large\""),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn a_browser_may_write_only_from_the_own_or_an_allowed_origin_and_only_json() {
    let server = start(
        &[("CORS_ALLOWED_ORIGINS", "https://good.example")],
        Arc::default(),
    )
    .await;
    let own = format!("http://{}", server.addr);
    let client = reqwest::Client::new();
    let post = |origin: Option<&str>, content_type: Option<&str>| {
        let mut request = client.post(server.url("/echo")).body("{\"a\":1}");
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send()
    };
    // Another site's page, with a "simple" request that needs no preflight, or with JSON.
    for content_type in [None, Some("text/plain"), Some("application/json")] {
        let response = post(Some("https://evil.example"), content_type)
            .await
            .unwrap();
        assert_eq!(
            error_code(response).await,
            (403, "cross_origin".into()),
            "{content_type:?}"
        );
    }
    // The own page, or an allowed origin, must still say it sends JSON.
    for origin in [own.as_str(), "https://good.example"] {
        let response = post(Some(origin), None).await.unwrap();
        assert_eq!(
            error_code(response).await,
            (415, "unsupported_media_type".into()),
            "{origin}"
        );
        let response = post(Some(origin), Some("application/json")).await.unwrap();
        assert_eq!(response.status(), 200, "{origin}");
    }
    // A program that is no browser keeps the original API's bare bodies.
    assert_eq!(post(None, None).await.unwrap().status(), 200);
}

#[tokio::test]
async fn past_the_concurrency_limit_requests_are_shed_with_503_but_probes_are_not() {
    let gate = Arc::new(Notify::new());
    let server = start(&[("MAX_CONCURRENT_REQUESTS", "2")], Arc::clone(&gate)).await;
    let held: Vec<_> = (0..2)
        .map(|_| tokio::spawn(reqwest::get(server.url("/gate"))))
        .collect();
    common::testing::wait_until("two requests to be in flight", || {
        metric(&server, "figachechnaya_test_http_requests_in_flight") >= 2.0
    })
    .await;

    let shed = reqwest::get(server.url("/gate")).await.unwrap();
    assert_eq!(shed.headers()["retry-after"], "1");
    assert!(shed.headers().contains_key("x-request-id"));
    assert_eq!(error_code(shed).await, (503, "unavailable".into()));
    assert!(
        (metric(&server, "figachechnaya_test_http_requests_shed_total") - 1.0).abs() < f64::EPSILON
    );
    // Probes and scrapes still answer: a busy process is busy, not dead.
    for path in ["/api/livez/", "/api/healthz/", "/metrics"] {
        assert_eq!(
            reqwest::get(server.url(path)).await.unwrap().status(),
            200,
            "{path}"
        );
    }

    gate.notify_waiters();
    for request in held {
        assert_eq!(request.await.unwrap().unwrap().status(), 200);
    }
    // The slots are given back.
    let client = reqwest::Client::new();
    let echo = client
        .post(server.url("/echo"))
        .body("[1]")
        .send()
        .await
        .unwrap();
    assert_eq!(echo.status(), 200);
}

/// Posts to `/echo` as a proxy would, forwarding for `forwarded_for`.
async fn echo_for(
    client: &reqwest::Client,
    server: &TestServer,
    forwarded_for: &str,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(server.url("/echo"))
        .header("x-forwarded-for", forwarded_for)
        .body("[1]")
        .send()
        .await
}

#[tokio::test]
async fn a_client_over_its_rate_gets_429_and_another_client_does_not() {
    // A token every thousand seconds: nothing refills while the test runs.
    let server = start(
        &[
            ("RATE_LIMIT_PER_SECOND", "0.001"),
            ("RATE_LIMIT_BURST", "2"),
            ("TRUSTED_PROXIES", "127.0.0.1"),
        ],
        Arc::default(),
    )
    .await;
    let client = reqwest::Client::new();
    let echo = |forwarded_for: &'static str| echo_for(&client, &server, forwarded_for);
    assert_eq!(echo("203.0.113.1").await.unwrap().status(), 200);
    assert_eq!(echo("203.0.113.1").await.unwrap().status(), 200);
    let limited = echo("203.0.113.1").await.unwrap();
    assert_eq!(limited.headers()["retry-after"], "1");
    assert_eq!(error_code(limited).await, (429, "rate_limited".into()));
    // The proxy forwards for someone else: that client has its own bucket.
    assert_eq!(echo("203.0.113.2").await.unwrap().status(), 200);
    // A client cannot escape its bucket by naming another address first.
    let spoofed = echo("198.51.100.7, 203.0.113.1").await.unwrap();
    assert_eq!(error_code(spoofed).await, (429, "rate_limited".into()));
    assert!(
        (metric(
            &server,
            "figachechnaya_test_http_requests_rate_limited_total"
        ) - 2.0)
            .abs()
            < f64::EPSILON
    );
    assert_eq!(
        reqwest::get(server.url("/api/livez/"))
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn without_a_trusted_proxy_the_peer_is_the_client() {
    let server = start(
        &[
            ("RATE_LIMIT_PER_SECOND", "0.001"),
            ("RATE_LIMIT_BURST", "1"),
        ],
        Arc::default(),
    )
    .await;
    let client = reqwest::Client::new();
    let echo = |forwarded_for: &'static str| echo_for(&client, &server, forwarded_for);
    assert_eq!(echo("203.0.113.1").await.unwrap().status(), 200);
    // The header is not believed: the same peer, out of tokens.
    let limited = echo("203.0.113.2").await.unwrap();
    assert_eq!(error_code(limited).await, (429, "rate_limited".into()));
}

/// A connection to `addr` from the loopback address `source`: another client, as far as the
/// server can tell.
async fn connect_from(source: &str, addr: SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Sends a `GET path` that asks to close, and reads the answer to its end.
async fn get_once(stream: &mut tokio::net::TcpStream, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// Whether the server closes `stream` (an end of stream or a reset) within ten seconds.
async fn closed_by_the_server(stream: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buffer = [0; 256];
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buffer)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// The value of the sample `name` (with its labels, as exposed) in the test server's registry.
fn sample(server: &TestServer, name: &str) -> i64 {
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&server.process.registry.gather())
        .expect("metrics encode");
    common::testing::metric_value(&text, name)
}

#[tokio::test]
async fn a_connection_that_does_not_send_its_headers_in_time_is_closed() {
    use tokio::io::AsyncWriteExt;
    let server = start(&[("HEADER_READ_TIMEOUT_MS", "300")], Arc::default()).await;
    // Headers begun and never finished; and nothing at all.
    let mut trickling = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    trickling
        .write_all(b"GET /api/livez/ HTTP/1.1\r\nhost: test\r\n")
        .await
        .unwrap();
    let mut silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    assert!(closed_by_the_server(&mut trickling).await);
    assert!(closed_by_the_server(&mut silent).await);
    assert_eq!(
        sample(
            &server,
            "figachechnaya_test_http_connections_header_timeouts_total"
        ),
        2
    );
    // A client that sends its request at once is served as before.
    let answer = get_once(
        &mut connect_from("127.0.0.1", server.addr).await,
        "/api/livez/",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn an_http2_connection_idle_after_its_requests_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start(&[("HEADER_READ_TIMEOUT_MS", "300")], Arc::default()).await;
    let mut h2c = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // The HTTP/2 preface, empty settings, and GET /api/livez/ as one HEADERS frame (stream 1,
    // END_STREAM | END_HEADERS), its fields from HPACK's static table or literal.
    let mut block = vec![0x82, 0x86]; // :method GET, :scheme http
    block.extend([0x04, 11]);
    block.extend(b"/api/livez/"); // :path, literal
    block.extend([0x01, 4]);
    block.extend(b"test"); // :authority, literal
    let mut frames =
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00".to_vec();
    let length = u32::try_from(block.len()).unwrap().to_be_bytes();
    frames.extend(&length[1..]);
    frames.extend([0x01, 0x05, 0, 0, 0, 1]);
    frames.extend(block);
    h2c.write_all(&frames).await.unwrap();
    // The answer comes (a HEADERS frame on stream 1), then, with no new request, the server
    // says goodbye (GOAWAY) and closes. The client acknowledges settings and pings, as any
    // client does (the server's graceful goodbye waits for a ping's answer).
    let mut received = Vec::new();
    let mut types = Vec::new();
    let converse = async {
        let mut buffer = [0; 4096];
        // To the end, or to a reset after the GOAWAY.
        while let Ok(n @ 1..) = h2c.read(&mut buffer).await {
            received.extend_from_slice(&buffer[..n]);
            while let Some((kind, flags, payload, rest)) = frame(&received) {
                types.push(kind);
                let answer = match (kind, flags) {
                    (0x04, 0x00) => Some(vec![0, 0, 0, 0x04, 0x01, 0, 0, 0, 0]),
                    (0x06, 0x00) => {
                        let mut ack = vec![0, 0, 8, 0x06, 0x01, 0, 0, 0, 0];
                        ack.extend(payload);
                        Some(ack)
                    }
                    _ => None,
                };
                received = rest;
                if let Some(answer) = answer {
                    let _ = h2c.write_all(&answer).await;
                }
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), converse)
        .await
        .expect("the idle connection is closed");
    assert!(types.contains(&0x01), "no HEADERS in {types:?}");
    assert!(types.contains(&0x07), "no GOAWAY in {types:?}");
}

/// The first whole HTTP/2 frame in `bytes`: its type, flags, payload and what follows it.
fn frame(bytes: &[u8]) -> Option<(u8, u8, Vec<u8>, Vec<u8>)> {
    let length = usize::from(*bytes.first()?) << 16
        | usize::from(*bytes.get(1)?) << 8
        | usize::from(*bytes.get(2)?);
    let end = 9 + length;
    (bytes.len() >= end).then(|| {
        (
            bytes[3],
            bytes[4],
            bytes[9..end].to_vec(),
            bytes[end..].to_vec(),
        )
    })
}

#[tokio::test]
async fn one_client_cannot_hold_more_than_its_share_of_connections() {
    let server = start(&[("MAX_CONNECTIONS_PER_CLIENT", "3")], Arc::default()).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from("127.0.0.1", server.addr).await);
    }
    let mut fourth = connect_from("127.0.0.1", server.addr).await;
    assert!(closed_by_the_server(&mut fourth).await);
    assert_eq!(
        sample(
            &server,
            "figachechnaya_test_http_connections_refused_total{reason=\"per_client\"}"
        ),
        1
    );
    // Another client is served meanwhile.
    let answer = get_once(&mut connect_from("127.0.0.2", server.addr).await, "/echo").await;
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    // Once one of its connections closes, the first client gets its place back.
    drop(held.pop());
    common::testing::wait_until_async("the closed connection to be given back", || {
        let server = &server;
        async move {
            let mut probe = connect_from("127.0.0.1", server.addr).await;
            get_once(&mut probe, "/api/livez/")
                .await
                .starts_with("HTTP/1.1 200")
        }
    })
    .await;
}

#[tokio::test]
async fn past_the_connection_bound_the_probes_still_answer_and_nothing_else_does() {
    let server = start(
        &[
            ("MAX_CONNECTIONS", "4"),
            ("MAX_CONNECTIONS_PER_CLIENT", "1000"),
        ],
        Arc::default(),
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from("127.0.0.1", server.addr).await);
    }
    // Every connection is open: the next ones come from the reserve, for the probes.
    let live = get_once(
        &mut connect_from("127.0.0.2", server.addr).await,
        "/api/livez/",
    )
    .await;
    assert!(live.starts_with("HTTP/1.1 200"), "{live}");
    let metrics = get_once(
        &mut connect_from("127.0.0.2", server.addr).await,
        "/metrics",
    )
    .await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(
        metrics.contains("figachechnaya_test_http_connections "),
        "{metrics}"
    );
    let other = get_once(&mut connect_from("127.0.0.2", server.addr).await, "/echo").await;
    assert!(other.starts_with("HTTP/1.1 503"), "{other}");
    assert!(other.contains("\"code\":\"unavailable\""), "{other}");
    // With the reserve taken too, a connection is closed as soon as it is accepted.
    for _ in 0..common::connections::RESERVE {
        held.push(connect_from("127.0.0.1", server.addr).await);
    }
    let mut refused = connect_from("127.0.0.2", server.addr).await;
    assert!(closed_by_the_server(&mut refused).await);
    assert!(
        sample(
            &server,
            "figachechnaya_test_http_connections_refused_total{reason=\"full\"}"
        ) >= 1
    );
    // Once they go, everything is served again.
    drop(held);
    common::testing::wait_until_async("the connections to be given back", || {
        let server = &server;
        async move {
            let mut stream = connect_from("127.0.0.2", server.addr).await;
            get_once(&mut stream, "/echo")
                .await
                .starts_with("HTTP/1.1 405")
        }
    })
    .await;
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let server = start(&[("MAX_BODY_BYTES", "32")], Arc::default()).await;
    let client = reqwest::Client::new();
    let answers = [
        client.get(server.url("/api/livez/")).send().await.unwrap(),
        client.get(server.url("/metrics")).send().await.unwrap(),
        client
            .get(server.url("/no/such/thing"))
            .send()
            .await
            .unwrap(),
        client.get(server.url("/panic")).send().await.unwrap(),
        client
            .post(server.url("/echo"))
            .body("x".repeat(64))
            .send()
            .await
            .unwrap(),
    ];
    for answer in answers {
        let status = answer.status();
        assert_eq!(
            answer.headers()["x-content-type-options"],
            "nosniff",
            "{status}"
        );
        assert_eq!(
            answer.headers()["referrer-policy"],
            "no-referrer",
            "{status}"
        );
    }
}
