//! Liveness and readiness.
//!
//! `GET /api/livez/` answers 200 while the process can serve HTTP and never touches a
//! dependency, so an orchestrator restarts only a wedged process. `GET /api/healthz/` (the
//! original's path) is readiness: 200 when every registered dependency check passes and the
//! process is not shutting down, 503 otherwise.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ErrorBody, error_response};

/// A future a readiness check returns: `Err` carries a short reason.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// A dependency whose availability decides readiness.
pub trait ReadinessCheck: Send + Sync + 'static {
    /// Short name shown in the readiness answer, e.g. `database`.
    fn name(&self) -> &'static str;
    /// Checks the dependency once.
    fn check(&self) -> CheckFuture<'_>;
}

/// How long a check may take before it counts as failed: checks run at once, so readiness
/// answers within this, under the usual 1 s probe timeout.
const CHECK_TIMEOUT: Duration = Duration::from_millis(800);

/// The readiness state of a process: its dependency checks and whether it is draining.
#[derive(Clone, Default)]
pub struct Health {
    checks: Arc<Mutex<Vec<Arc<dyn ReadinessCheck>>>>,
    draining: Arc<AtomicBool>,
}

impl Health {
    /// Adds a dependency check.
    pub fn add(&self, check: Arc<dyn ReadinessCheck>) {
        self.checks.lock().expect("health lock").push(check);
    }

    /// Marks the process as shutting down: readiness answers 503 from now on.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Whether the process is shutting down.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Runs every check at once; the map says `ok` or why not.
    pub async fn run_checks(&self) -> (bool, BTreeMap<&'static str, String>) {
        let checks: Vec<_> = self.checks.lock().expect("health lock").clone();
        let mut running = tokio::task::JoinSet::new();
        for check in checks {
            running.spawn(async move {
                let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check.check()).await {
                    Ok(Ok(())) => "ok".to_owned(),
                    Ok(Err(reason)) => reason,
                    Err(_) => format!("no answer within {CHECK_TIMEOUT:?}"),
                };
                (check.name(), outcome)
            });
        }
        let mut results = BTreeMap::new();
        while let Some(joined) = running.join_next().await {
            let (name, outcome) = joined.unwrap_or(("check", "the check panicked".to_owned()));
            results.insert(name, outcome);
        }
        let ready = results.values().all(|outcome| outcome == "ok");
        (ready, results)
    }
}

/// The answer of a health endpoint that passes.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthReport {
    /// `ready` or `alive`.
    #[schema(example = "ready")]
    pub status: &'static str,
    /// Each dependency check and its outcome (`ok` when it passes).
    pub checks: BTreeMap<&'static str, String>,
}

/// Readiness: every dependency answers and the process is not shutting down.
#[utoipa::path(
    get,
    path = "/api/healthz/",
    tag = "health",
    responses(
        (status = 200, description = "Ready to serve", body = HealthReport),
        (status = 503, description = "A dependency is down or the process is stopping", body = ErrorBody),
    )
)]
pub async fn readiness(State(health): State<Health>) -> Response {
    if health.is_draining() {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "Shutting down".to_owned(),
        );
    }
    let (ready, checks) = health.run_checks().await;
    if ready {
        axum::Json(HealthReport {
            status: "ready",
            checks,
        })
        .into_response()
    } else {
        let failing: Vec<String> = checks
            .iter()
            .filter(|(_, outcome)| *outcome != "ok")
            .map(|(name, outcome)| format!("{name}: {outcome}"))
            .collect();
        error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            format!("Not ready: {}", failing.join("; ")),
        )
    }
}

/// Liveness: the process serves HTTP. Never touches a dependency.
#[utoipa::path(
    get,
    path = "/api/livez/",
    tag = "health",
    responses((status = 200, description = "The process is alive", body = HealthReport))
)]
pub async fn liveness() -> axum::Json<HealthReport> {
    axum::Json(HealthReport {
        status: "alive",
        checks: BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Result<(), String>);

    impl ReadinessCheck for Fixed {
        fn name(&self) -> &'static str {
            "fixed"
        }
        fn check(&self) -> CheckFuture<'_> {
            let outcome = self.0.clone();
            Box::pin(async move { outcome })
        }
    }

    #[tokio::test]
    async fn a_failing_check_makes_the_process_not_ready() {
        let health = Health::default();
        health.add(Arc::new(Fixed(Err("connection refused".into()))));
        let (ready, checks) = health.run_checks().await;
        assert!(!ready);
        assert_eq!(checks["fixed"], "connection refused");
    }

    #[tokio::test]
    async fn passing_checks_make_it_ready() {
        let health = Health::default();
        health.add(Arc::new(Fixed(Ok(()))));
        let (ready, checks) = health.run_checks().await;
        assert!(ready);
        assert_eq!(checks["fixed"], "ok");
    }
}
