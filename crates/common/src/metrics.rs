//! Prometheus metrics: one registry per process, HTTP metrics by route template, `GET /metrics`.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// Latency buckets in seconds, fit for an API that answers in well under a millisecond to a few
/// hundred milliseconds.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The version of the binaries, from the workspace.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit the binaries were built from (`unknown` outside a git checkout, unless the build
/// sets `FIGACHECHNAYA_COMMIT`).
pub const COMMIT: &str = env!("FIGACHECHNAYA_COMMIT");

/// `figachechnaya_<process>_build_info{version, commit}`, always 1: joins any series to the
/// build that produced it.
pub fn build_info(registry: &Registry, process: &str) {
    let info = register(
        registry,
        prometheus::IntGaugeVec::new(
            Opts::new(
                format!("figachechnaya_{process}_build_info"),
                "The version and commit of this build; always 1",
            ),
            &["version", "commit"],
        )
        .expect("valid metric"),
    );
    info.with_label_values(&[VERSION, COMMIT]).set(1);
}

/// A process's metric registry, with process metrics (CPU, memory, file descriptors) included.
pub fn registry() -> Registry {
    let registry = Registry::new();
    #[cfg(target_os = "linux")]
    registry
        .register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("process collector registers once");
    registry
}

/// Registers `collector` and hands it back; names are fixed in code, so a clash is a bug.
pub fn register<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    collector: C,
) -> C {
    registry
        .register(Box::new(collector.clone()))
        .expect("metric names are unique within a process");
    collector
}

/// A counter, registered.
pub fn counter(registry: &Registry, name: &str, help: &str) -> prometheus::IntCounter {
    register(
        registry,
        prometheus::IntCounter::new(name, help).expect("valid metric"),
    )
}

/// A gauge, registered.
pub fn gauge(registry: &Registry, name: &str, help: &str) -> prometheus::IntGauge {
    register(
        registry,
        prometheus::IntGauge::new(name, help).expect("valid metric"),
    )
}

/// A counter with one label, registered, with a series at 0 for each of `values` (the label's
/// whole, bounded set), so dashboards and alerts see them before the first event.
pub fn labelled_counter<V: AsRef<str>>(
    registry: &Registry,
    name: &str,
    help: &str,
    label: &str,
    values: impl IntoIterator<Item = V>,
) -> prometheus::IntCounterVec {
    let counter = register(
        registry,
        prometheus::IntCounterVec::new(prometheus::Opts::new(name, help), &[label])
            .expect("valid metric"),
    );
    for value in values {
        counter.with_label_values(&[value.as_ref()]);
    }
    counter
}

/// RED metrics of one process's HTTP server.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
    in_flight: IntGauge,
    /// Answers refusing work for now, logged as a summary (counted in `requests`).
    pub(crate) refusals: std::sync::Arc<crate::limits::Summary>,
}

impl HttpMetrics {
    /// Registers `figachechnaya_<process>_http_*` in `registry`.
    pub fn new(registry: &Registry, process: &str) -> Self {
        let prefix = format!("figachechnaya_{process}_http");
        Self {
            requests: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        format!("{prefix}_requests_total"),
                        "HTTP requests answered, by route template, method and status",
                    ),
                    &["route", "method", "status"],
                )
                .expect("valid metric"),
            ),
            duration: register(
                registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        format!("{prefix}_request_duration_seconds"),
                        "Time to answer HTTP requests, by route template and method",
                    )
                    .buckets(LATENCY_BUCKETS.to_vec()),
                    &["route", "method"],
                )
                .expect("valid metric"),
            ),
            in_flight: register(
                registry,
                IntGauge::new(
                    format!("{prefix}_requests_in_flight"),
                    "HTTP requests being handled now",
                )
                .expect("valid metric"),
            ),
            refusals: std::sync::Arc::default(),
        }
    }
}

impl HttpMetrics {
    /// Counts one answered request and its latency.
    pub fn record(&self, route: &str, method: &Method, status: StatusCode, seconds: f64) {
        let method = method_label(method);
        self.duration
            .with_label_values(&[route, method])
            .observe(seconds);
        self.requests
            .with_label_values(&[route, method, status.as_str()])
            .inc();
    }

    /// Marks a request as in flight until the returned guard is dropped, even if its future is.
    pub fn in_flight(&self) -> impl Drop + '_ {
        struct Guard<'a>(&'a IntGauge);
        impl Drop for Guard<'_> {
            fn drop(&mut self) {
                self.0.dec();
            }
        }
        self.in_flight.inc();
        Guard(&self.in_flight)
    }
}

/// The route template a request matched (`/api/figalize/`), or `unmatched`: never the raw
/// path, so clients cannot grow label sets or log fields.
pub fn route_template(request: &Request) -> &str {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// `GET /metrics`: the registry in the Prometheus text format.
pub async fn render(State(registry): State<Registry>) -> Response {
    let mut buffer = Vec::with_capacity(16 * 1024);
    match TextEncoder::new().encode(&registry.gather(), &mut buffer) {
        Ok(()) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], buffer).into_response(),
        Err(err) => {
            crate::ApiError::Internal(anyhow::anyhow!("encoding metrics: {err}")).into_response()
        }
    }
}
