//! Logging with `tracing`: JSON lines in production, readable text locally, chosen by
//! `LOG_FORMAT`; the level filter comes from `RUST_LOG`.

use std::str::FromStr;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

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

/// Installs the global subscriber. Later calls (several apps in one test binary) are no-ops.
pub fn init(config: &LogConfig) {
    let filter = EnvFilter::try_new(&config.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _already_set = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// Turns logs on in tests when `TEST_LOG` is set; silent otherwise.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        init(&LogConfig {
            format: LogFormat::Text,
            filter: std::env::var("RUST_LOG").unwrap_or_else(|_| "debug".to_owned()),
        });
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
        if status.is_server_error() {
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
}
