//! Anything a client can send, answered without a server error: generated bodies, media types
//! and query strings against every operation of the one-process site (all three services
//! behind the shared middleware), checked for status and the common error shape.
//!
//! proptest generates the inputs (a fixed number of cases, reproducible from the seed it
//! prints on failure); the site runs as it does for a visitor, over a socket.

use std::sync::OnceLock;

use common::testing::TempDir;
use proptest::prelude::*;
use serde_json::{Map, Value};

/// The site, started once for all cases, and a runtime to drive requests from proptest.
struct Site {
    runtime: tokio::runtime::Runtime,
    base: String,
    client: reqwest::Client,
    _data: TempDir,
}

fn site() -> &'static Site {
    static SITE: OnceLock<Site> = OnceLock::new();
    SITE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let data = TempDir::new();
        // One client sending as fast as it can, on purpose: not limited per client.
        let env = common::config::Env::from_pairs([
            ("PORT", "0"),
            ("DATA_DIR", data.path().to_str().unwrap()),
            ("RATE_LIMIT_PER_SECOND", "0"),
        ]);
        let base = runtime.block_on(async {
            let server = figachechnaya::build(&env).await.expect("the site starts");
            let base = format!("http://{}", server.local_addr());
            tokio::spawn(server.run(std::future::pending()));
            base
        });
        Site {
            runtime,
            base,
            // A connection per case: a case the site answers before reading its whole body
            // (413, 415) ends its connection, and a pooled client could send the next case
            // on it before noticing, failing with IncompleteMessage for no fault of the site.
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
            _data: data,
        }
    })
}

/// Sends one request; checks it was not a server error and that an error has the common shape.
fn check(
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Result<(), TestCaseError> {
    let site = site();
    let (status, text) = site.runtime.block_on(async {
        let url = format!("{}{path}", site.base);
        let mut request = match method {
            "GET" => site.client.get(url),
            _ => site.client.post(url).body(body),
        };
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.expect("the site answers");
        let status = response.status();
        (status, response.text().await.unwrap_or_default())
    });
    prop_assert!(
        !status.is_server_error(),
        "{method} {path}: {status} {text}"
    );
    if !status.is_success() {
        let body: Value = serde_json::from_str(&text).map_err(|e| {
            TestCaseError::fail(format!("{method} {path}: {status} not JSON ({e}): {text}"))
        })?;
        prop_assert!(body["data"].is_string(), "{status} {text}");
        prop_assert!(body["code"].is_string(), "{status} {text}");
        prop_assert!(body["request_id"].is_string(), "{status} {text}");
    }
    Ok(())
}

/// Field names the services read, and some they do not.
const FIELDS: [&str; 10] = [
    "schema_id",
    "phrase",
    "original",
    "figalized",
    "id",
    "entries",
    "request_id",
    "limit",
    "data",
    "",
];

/// JSON values of any shape, with the real field names often enough to get past the shape
/// checks into validation.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[а-яё ёЁА-Я-]{0,40}".prop_map(Value::from),
        "\\PC{0,60}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(&FIELDS[..]), inner), 0..6).prop_map(
                |pairs| {
                    Value::Object(
                        pairs
                            .into_iter()
                            .map(|(k, v)| (k.to_owned(), v))
                            .collect::<Map<_, _>>(),
                    )
                }
            ),
        ]
    })
}

/// Text a user might type, and text nobody should: Russian words, punctuation, any
/// character, very long runs.
fn text() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[а-яёА-ЯЁ]{1,12}( [а-яё-]{1,12}){0,4}".prop_map(Value::from),
        "[а-яё ,.!?«»0-9-]{0,300}".prop_map(Value::from),
        "\\PC{0,80}".prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(Value::Null),
    ]
}

/// A body of the operation's own shape with any values in it, so that cases get past the
/// shape check into validation and the handlers.
fn shaped(path: &str) -> BoxedStrategy<Value> {
    let entry = (text(), text(), prop_oneof![text(), "[A-Za-z0-9._:-]{1,130}".prop_map(Value::from)])
        .prop_map(|(original, figalized, id)| {
            serde_json::json!({"original": original, "figalized": figalized, "id": id})
        });
    match path {
        "/api/figalize/" => (
            prop_oneof![
                any::<i64>().prop_map(Value::from),
                (0..3_i64).prop_map(Value::from),
                text()
            ],
            text(),
        )
            .prop_map(
                |(schema_id, phrase)| serde_json::json!({"schema_id": schema_id, "phrase": phrase}),
            )
            .boxed(),
        "/api/append/" => entry.boxed(),
        "/api/append/batch/" => prop::collection::vec(entry, 0..300)
            .prop_map(|entries| serde_json::json!({"entries": entries}))
            .boxed(),
        _ => text()
            .prop_map(|phrase| serde_json::json!({"phrase": phrase}))
            .boxed(),
    }
}

/// A body for `path`: of its shape with any values, JSON of any shape, or bytes of any kind.
fn body(path: &'static str) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => shaped(path).prop_map(|v| serde_json::to_vec(&v).unwrap()),
        2 => json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => prop::collection::vec(any::<u8>(), 0..300),
    ]
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("application/json".to_owned())),
        Just(Some("application/json; charset=utf-8".to_owned())),
        Just(Some("text/plain".to_owned())),
        "[ -~]{0,30}".prop_map(Some),
    ]
}

/// The site's write routes, and some it does not serve (the appends are history's internal
/// routes, which the site calls in-process).
const POSTS: [&str; 5] = [
    "/api/figalize/",
    "/api/append/",
    "/api/append/batch/",
    "/api/getimageurl/",
    "/api/nothing/",
];

proptest! {
    // A failure prints its minimal input; integration tests keep no regression file.
    #![proptest_config(ProptestConfig {
        cases: 1000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_body_makes_a_server_error(
        (path, body) in prop::sample::select(&POSTS[..]).prop_flat_map(|path| (Just(path), body(path))),
        content_type in content_type(),
    ) {
        check("POST", path, content_type.as_deref(), body)?;
    }

    #[test]
    fn no_query_makes_a_server_error(
        path in prop_oneof![
            prop::sample::select(&["/api/gethistory/", "/api/history/count", "/api/getschemas/"][..]).prop_map(str::to_owned),
            "[a-z0-9.%-]{0,40}".prop_map(|name| format!("/api/imagizer/images/{name}")),
        ],
        query in prop_oneof![
            "[ -~]{0,40}",
            "-?[0-9]{1,25}".prop_map(|n| format!("limit={n}")),
        ],
    ) {
        let query: String = query.chars().filter(|c| !matches!(c, ' ' | '#')).collect();
        check("GET", &format!("{path}?{query}"), None, Vec::new())?;
    }
}
