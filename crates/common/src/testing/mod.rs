//! Helpers for the services' tests (feature `testing`).

mod db;
mod proxy;
mod service;

pub use db::{TestDatabase, server_url};
pub use proxy::TcpProxy;
pub use service::{RunningService, assert_openapi, expect_error, metric_value};

use std::path::Path;

/// Compares `value` with the JSON snapshot at `path`; with `UPDATE_SNAPSHOTS=1` rewrites it.
///
/// Snapshots make every change of a public contract (an OpenAPI document) visible in review.
pub fn assert_snapshot(value: &serde_json::Value, path: &str) {
    let rendered = serde_json::to_string_pretty(value).expect("JSON renders") + "\n";
    let path = Path::new(path);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().expect("a file has a folder")).expect("mkdir");
        std::fs::write(path, &rendered).expect("snapshot written");
        return;
    }
    let stored = std::fs::read_to_string(path).unwrap_or_else(|err| {
        panic!(
            "no snapshot at {} ({err}); run the tests with UPDATE_SNAPSHOTS=1 to create it",
            path.display()
        )
    });
    assert!(
        stored == rendered,
        "{} differs from what the service serves now; review the change and run the tests \
         with UPDATE_SNAPSHOTS=1 to accept it.\n--- now ---\n{rendered}",
        path.display()
    );
}

/// Polls `condition` every 10 ms until it holds; panics after 10 s naming what it waited for.
/// Tests wait for a state, never for a fixed time.
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A service binary started as a separate process, as an operator would run it.
pub struct RunningBinary {
    child: std::process::Child,
    /// The address it reported listening on.
    pub addr: std::net::SocketAddr,
    log_bytes: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// How long a binary may take to start, or to fail.
const START_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// A command for `binary` with a clean environment: only what a test gives it, plus
/// `LLVM_PROFILE_FILE` when set, so that under `cargo llvm-cov` the binaries the tests start
/// count towards coverage too.
pub fn clean_command(binary: &str) -> std::process::Command {
    let mut command = std::process::Command::new(binary);
    command.env_clear();
    if let Some(profile) = std::env::var_os("LLVM_PROFILE_FILE") {
        command.env("LLVM_PROFILE_FILE", profile);
    }
    command
}

/// Runs `binary` with `args` and a clean environment to its end; returns its exit code and
/// what it printed on standard output and standard error.
pub fn run_binary(binary: &str, args: &[&str], vars: &[(&str, &str)]) -> (i32, String, String) {
    let output = clean_command(binary)
        .args(args)
        .envs(vars.iter().copied())
        .output()
        .unwrap_or_else(|err| panic!("running {binary}: {err}"));
    (
        output.status.code().expect("exited, not killed"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Starts `binary` with `vars` added to a clean environment and JSON logs, and waits for its
/// "listening" log line. The port variables should be `0`.
pub fn start_binary(binary: &str, vars: &[(&str, &str)]) -> RunningBinary {
    start(clean_command(binary), binary, vars)
}

/// [`start_binary`] with the process's open descriptors limited to `descriptors`, as a
/// container's limit would (through `prlimit`, from util-linux, which then runs the binary).
pub fn start_binary_with_descriptors(
    binary: &str,
    vars: &[(&str, &str)],
    descriptors: u32,
) -> RunningBinary {
    let prlimit = std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("prlimit"))
                .find(|path| path.is_file())
        })
        .expect("prlimit (util-linux) is installed");
    let mut command = clean_command(&prlimit.to_string_lossy());
    command
        .arg(format!("--nofile={descriptors}:{descriptors}"))
        .arg("--")
        .arg(binary);
    start(command, binary, vars)
}

fn start(mut command: std::process::Command, binary: &str, vars: &[(&str, &str)]) -> RunningBinary {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let mut child = command
        .env("LOG_FORMAT", "json")
        .envs(vars.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|err| panic!("starting {binary}: {err}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let log_bytes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = std::sync::Arc::clone(&log_bytes);
    // Reads the log on its own thread, to the end, so the process never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            counted.fetch_add(line.len() as u64 + 1, std::sync::atomic::Ordering::Relaxed);
            let entry: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
            if entry["message"] == "listening" {
                let addr: std::net::SocketAddr = entry["addr"]
                    .as_str()
                    .and_then(|a| a.parse().ok())
                    .expect("an addr field");
                let _ = addr_tx.send(addr);
            }
        }
    });
    let addr = addr_rx
        .recv_timeout(START_DEADLINE)
        .unwrap_or_else(|_| panic!("{binary} did not report listening"));
    RunningBinary {
        child,
        addr,
        log_bytes,
    }
}

impl RunningBinary {
    /// Sends SIGTERM and returns the exit status once the process has ended.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting on the child") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no exit after SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl RunningBinary {
    /// Bytes the process has written to its log (standard output) so far.
    pub fn log_bytes(&self) -> u64 {
        self.log_bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The value of the sample `name` in the process's `/metrics`.
    pub async fn metric(&self, name: &str) -> i64 {
        metric_of(&reqwest::Client::new(), self.addr, name).await
    }

    /// Kills the process with SIGKILL, as a crash would, and reaps it.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL sent");
        self.child.wait().expect("the child is reaped");
    }
}

impl Drop for RunningBinary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client whose connections come from the loopback address `source` (`127.0.0.2`, …):
/// another client, as far as a server can tell.
pub fn client_from(source: &str) -> reqwest::ClientBuilder {
    let source: std::net::IpAddr = source.parse().expect("an address");
    reqwest::Client::builder().local_address(source)
}

/// The value of the sample `name` in the `/metrics` of the server at `addr`, asked by `client`.
pub async fn metric_of(client: &reqwest::Client, addr: std::net::SocketAddr, name: &str) -> i64 {
    let text = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("the process answers /metrics")
        .text()
        .await
        .expect("metrics text");
    service::metric_value(&text, name)
}

/// Opens `count` connections to `addr` and sends `request` on each without reading the answer:
/// one client holding them. Connections the server closes at once may refuse the write.
pub async fn hold_connections(
    addr: std::net::SocketAddr,
    count: usize,
    request: &[u8],
) -> Vec<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt as _;
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("a connection is accepted");
        let _ = stream.write_all(request).await;
        held.push(stream);
    }
    held
}

/// Runs `binary` with `vars` and expects it to refuse to start; returns what it printed on
/// standard error. A binary that starts anyway is killed and the test fails.
pub fn failed_start(binary: &str, vars: &[(&str, &str)]) -> String {
    use std::io::Read;
    use std::process::Stdio;

    let mut child = clean_command(binary)
        .envs(vars.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("starting {binary}: {err}"));
    let deadline = std::time::Instant::now() + START_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting on the child") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{binary} kept running with {vars:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(
        !status.success(),
        "{binary} exited successfully with {vars:?}"
    );
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut stderr)
        .expect("stderr is text");
    stderr
}

/// `(schema_id, phrase, figalized)` rows of a golden answers file (tab-separated, a header).
pub fn golden_rows(tsv: &str) -> Vec<(usize, &str, &str)> {
    tsv.lines()
        .skip(1)
        .filter(|line| !line.is_empty())
        .map(|line| {
            let mut fields = line.split('\t');
            let mut next = || fields.next().expect("three tab-separated fields");
            (next().parse().expect("a scheme id"), next(), next())
        })
        .collect()
}

/// A temporary folder, removed with its contents when dropped.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// Creates an empty folder under the system's temporary folder.
    pub fn new() -> Self {
        let path =
            std::env::temp_dir().join(format!("figachechnaya-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("create a temporary folder");
        Self(path)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls an async `condition` every 20 ms until it holds; panics after 30 s naming what it
/// waited for.
pub async fn wait_until_async<F, Fut>(what: &str, condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    wait_until_async_within(what, std::time::Duration::from_secs(30), condition).await;
}

/// Polls an async `condition` every 20 ms until it holds; panics after `limit` naming what
/// it waited for.
pub async fn wait_until_async_within<F, Fut>(
    what: &str,
    limit: std::time::Duration,
    mut condition: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + limit;
    while !condition().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
