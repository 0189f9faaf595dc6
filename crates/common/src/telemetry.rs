//! Logging with `tracing`: JSON lines in production, readable text locally, chosen by
//! `LOG_FORMAT`; the level filter comes from `RUST_LOG`.

use std::str::FromStr;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tracing::{Event, Instrument, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::registry::LookupSpan;

use crate::config::{ConfigError, Env};
use crate::metrics::HttpMetrics;
use crate::request_id::RequestId;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    Text,
    /// One JSON object per line, for a log pipeline.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "text" | "pretty" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("unknown log format {other:?}; use text or json")),
        }
    }
}

/// Logging settings.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `LOG_FORMAT`: `text` (default) or `json`.
    pub format: LogFormat,
    /// `RUST_LOG`: a `tracing` filter such as `info` or `info,figalize=debug`.
    pub filter: String,
}

impl LogConfig {
    /// Reads `LOG_FORMAT` and `RUST_LOG`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let filter = env.text("RUST_LOG")?.unwrap_or_else(|| "info".to_owned());
        EnvFilter::try_new(&filter).map_err(|e| ConfigError::new("RUST_LOG", e))?;
        Ok(Self {
            format: env.or("LOG_FORMAT", LogFormat::Text)?,
            filter,
        })
    }
}

/// Lines the log writer may hold before a request that logs waits for it: never dropped.
const LOG_BUFFER_LINES: usize = 8 * 1024;

/// Keeps the log writer's thread; dropping it writes out what is still buffered.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard {
    _writer: tracing_appender::non_blocking::WorkerGuard,
}

/// Installs the global subscriber; JSON lines name the `service` (the process's name), so the
/// logs of several services can be merged and still be told apart. Later calls (several apps
/// in one test binary) are no-ops and answer `None`.
///
/// Lines are formatted where they are logged and written to stdout by a thread of their own,
/// in large writes, so a request never waits on a write to a pipe or a file. None is dropped:
/// when the writer falls `LOG_BUFFER_LINES` behind, logging waits. Keep the guard until the
/// process ends.
pub fn init(config: &LogConfig, service: &'static str) -> Option<LogGuard> {
    let filter = EnvFilter::try_new(&config.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(LOG_BUFFER_LINES)
        .thread_name("log-writer")
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stdout(),
        ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let installed = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .map_event_format(|json| WithService::new(json, service))
            .try_init(),
    };
    installed.ok().map(|()| LogGuard { _writer: guard })
}

/// A JSON event format with `"service":"<name>"` first on every line.
struct WithService<F> {
    inner: F,
    opening: String,
}

impl<F> WithService<F> {
    fn new(inner: F, service: &str) -> Self {
        let name = serde_json::to_string(service).expect("a string serialises");
        Self {
            inner,
            opening: format!("{{\"service\":{name},"),
        }
    }
}

impl<S, N, F> FormatEvent<S, N> for WithService<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut line = String::with_capacity(256);
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => {
                writer.write_str(&self.opening)?;
                writer.write_str(rest)
            }
            None => writer.write_str(&line),
        }
    }
}

/// Turns logs on in tests when `TEST_LOG` is set; silent otherwise.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        // Tests' lines should reach the terminal while they run: the guard lives on.
        std::mem::forget(init(
            &LogConfig {
                format: LogFormat::Text,
                filter: std::env::var("RUST_LOG").unwrap_or_else(|_| "debug".to_owned()),
            },
            "test",
        ));
    }
}

/// Middleware (over every route, so the route template is known): one span per request (request
/// id, method, route template), then, when it is answered, one log line with status and latency
/// and the HTTP metrics. Unmatched paths share the route `unmatched`, so clients cannot grow
/// label sets or log fields.
pub async fn observe(State(metrics): State<HttpMetrics>, request: Request, next: Next) -> Response {
    let route = crate::metrics::route_template(&request).to_owned();
    let method = request.method().clone();
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(ToString::to_string)
        .unwrap_or_default();
    let span = tracing::info_span!("request", request_id, method = %method, route);
    let started = Instant::now();
    let in_flight = metrics.in_flight();
    let response = next.run(request).instrument(span.clone()).await;
    drop(in_flight);
    let elapsed = started.elapsed();
    let status = response.status();
    metrics.record(&route, &method, status, elapsed.as_secs_f64());
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if response
            .extensions()
            .get::<crate::error::Refused>()
            .is_some()
        {
            if let Some(refused) = metrics.refusals.tally() {
                tracing::warn!(
                    refused,
                    status = status.as_u16(),
                    "requests refused: the service cannot take them now (one line per ten seconds)"
                );
            }
        } else if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), latency_ms, "request answered");
        } else {
            tracing::info!(status = status.as_u16(), latency_ms, "request answered");
        }
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format_and_filter_are_validated() {
        let env = Env::from_pairs([("LOG_FORMAT", "JSON")]);
        assert_eq!(LogConfig::from_env(&env).unwrap().format, LogFormat::Json);
        let env = Env::from_pairs([("LOG_FORMAT", "xml")]);
        assert_eq!(
            LogConfig::from_env(&env).unwrap_err().variable,
            "LOG_FORMAT"
        );
        let env = Env::from_pairs([("RUST_LOG", "info,[")]);
        assert_eq!(LogConfig::from_env(&env).unwrap_err().variable, "RUST_LOG");
    }

    #[test]
    fn json_lines_name_the_service_first_and_keep_the_span_and_event_fields() {
        let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .map_event_format(|json| WithService::new(json, "figalize"))
            .with_writer(move || SharedBuffer(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info_span!("request", request_id = "r-1", route = "/api/figalize/")
                .in_scope(|| tracing::info!(status = 200, "request answered"));
        });
        let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
        assert!(text.starts_with(r#"{"service":"figalize","#), "{text}");
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["service"], "figalize");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "request answered");
        assert_eq!(line["status"], 200);
        assert_eq!(line["span"]["request_id"], "r-1");
        assert_eq!(line["span"]["route"], "/api/figalize/");
        assert!(line["timestamp"].is_string());
    }

    /// A log writer into a shared buffer.
    struct SharedBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for SharedBuffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
