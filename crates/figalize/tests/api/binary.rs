//! The figalize binary on its own, as an operator runs it.

use common::testing::{
    TempDir, client_from, failed_start, hold_connections, metric_of, run_binary, start_binary,
    start_binary_with_descriptors,
};

const BINARY: &str = env!("CARGO_BIN_EXE_figalize");

#[tokio::test]
async fn the_binary_reads_the_original_port_variable_and_stops_on_sigterm() {
    let journal = TempDir::new();
    let journal_dir = journal.path().to_str().unwrap();
    let service = start_binary(
        BINARY,
        &[("FIGALIZE_API_PORT", "0"), ("JOURNAL_DIR", journal_dir)],
    );
    let response = reqwest::get(format!("http://{}/api/getschemas/", service.addr))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(service.terminate().success());
}

#[tokio::test]
async fn the_healthcheck_command_tells_a_live_process_from_none() {
    let journal = TempDir::new();
    let journal_dir = journal.path().to_str().unwrap();
    let service = start_binary(
        BINARY,
        &[("FIGALIZE_API_PORT", "0"), ("JOURNAL_DIR", journal_dir)],
    );
    let healthcheck = |port: u16| {
        common::testing::clean_command(BINARY)
            .arg("healthcheck")
            .env("FIGALIZE_API_PORT", port.to_string())
            .status()
            .unwrap()
    };
    assert!(healthcheck(service.addr.port()).success());
    let port = service.addr.port();
    assert!(service.terminate().success());
    assert_eq!(
        healthcheck(port).code(),
        Some(1),
        "nothing listens any more"
    );
}

#[test]
fn a_malformed_value_stops_start_up_naming_the_variable() {
    for (var, value) in [
        ("FIGALIZE_API_PORT", "99999"),
        ("REQUEST_TIMEOUT_MS", "soon"),
        ("LOG_FORMAT", "xml"),
        ("HOST", "localhost:80"),
        ("JOURNAL_MAX_BYTES", "1000"),
        ("JOURNAL_MAX_BYTES", "a lot"),
    ] {
        let stderr = failed_start(BINARY, &[(var, value)]);
        assert!(stderr.contains(&format!("{var}: ")), "{var}: {stderr}");
    }
}

#[tokio::test]
async fn a_second_process_on_the_same_journal_refuses_to_start_naming_the_variable() {
    let journal = TempDir::new();
    let journal_dir = journal.path().to_str().unwrap();
    let first = start_binary(
        BINARY,
        &[("FIGALIZE_API_PORT", "0"), ("JOURNAL_DIR", journal_dir)],
    );
    let stderr = failed_start(
        BINARY,
        &[("FIGALIZE_API_PORT", "0"), ("JOURNAL_DIR", journal_dir)],
    );
    assert!(stderr.contains("JOURNAL_DIR"), "{stderr}");
    assert!(stderr.contains("another process"), "{stderr}");
    assert!(first.terminate().success());
}

#[test]
fn an_invalid_scheme_file_stops_start_up_with_the_reason() {
    let dir = std::env::temp_dir().join(format!("figalize-schemes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.json");
    std::fs::write(
        &file,
        r#"{"schemas": [{"name": "Т", "substitutions": [{"keys": "a", "value": "Фи"}]}]}"#,
    )
    .unwrap();
    let stderr = failed_start(
        BINARY,
        &[
            ("FIGALIZE_API_PORT", "0"),
            ("SCHEMES_FILE", file.to_str().unwrap()),
        ],
    );
    assert!(
        stderr.contains("not a lower-case Russian letter"),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn version_and_help_answer_without_starting_the_service() {
    let (code, stdout, _) = run_binary(BINARY, &["--version"], &[]);
    assert_eq!(code, 0);
    assert!(
        stdout.starts_with(&format!("figalize {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{stdout}"
    );
    let (code, stdout, _) = run_binary(BINARY, &["--help"], &[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Usage: figalize [COMMAND]"), "{stdout}");
    assert!(
        stdout.contains("$FIGALIZE_API_PORT (default 8002)"),
        "{stdout}"
    );
}

#[test]
fn an_unknown_argument_exits_2_with_the_usage() {
    let (code, stdout, stderr) = run_binary(BINARY, &["--verbose"], &[]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("error: unknown command `--verbose`"),
        "{stderr}"
    );
    assert!(stderr.contains("Usage: figalize [COMMAND]"), "{stderr}");
}

#[tokio::test]
async fn slow_headers_from_one_client_leave_the_service_to_everyone_else() {
    // With 1,024 descriptors, as a container may have: more slow connections than that.
    let journal = TempDir::new();
    let journal_dir = journal.path().to_str().unwrap();
    let topic = format!("figalize-slow-headers-{}", uuid::Uuid::new_v4().simple());
    let service = start_binary_with_descriptors(
        BINARY,
        &[
            ("FIGALIZE_API_PORT", "0"),
            ("JOURNAL_DIR", journal_dir),
            ("KAFKA_TOPIC_NAME", &topic),
        ],
        1024,
    );
    let slow = hold_connections(service.addr, 1100, b"POST /api/figalize/ HTTP/1.1\r\n").await;
    // Another client, and the probe, are answered within a second, as a liveness probe waits.
    let other = client_from("127.0.0.2")
        .timeout(std::time::Duration::from_secs(1))
        .build()
        .unwrap();
    let live = other
        .get(format!("http://{}/api/livez/", service.addr))
        .send()
        .await
        .expect("the liveness probe is answered within a second");
    assert_eq!(live.status(), 200);
    let figalized = other
        .post(format!("http://{}/api/figalize/", service.addr))
        .json(&serde_json::json!({"schema_id": 0, "phrase": "велосипед"}))
        .send()
        .await
        .expect("a figalization is answered within a second");
    assert_eq!(figalized.status(), 200);
    // The first client's connections past its share (MAX_CONNECTIONS_PER_CLIENT, 256 by
    // default) were closed at once.
    let refused = metric_of(
        &other,
        service.addr,
        "figachechnaya_figalize_http_connections_refused_total{reason=\"per_client\"}",
    )
    .await;
    assert_eq!(refused, 1100 - 256);
    drop(slow);
    // No history runs here: the figalization waits in the journal, which goes with the folder.
    service.kill();
}
