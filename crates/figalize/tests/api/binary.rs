//! The figalize binary on its own, as an operator runs it.

use common::testing::{TempDir, failed_start, run_binary, start_binary};

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
