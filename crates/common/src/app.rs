//! Composing services into one HTTP application with the shared middleware.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode, header};
use axum::routing::get;
use prometheus::Registry;
use std::future::Future;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;
use utoipa::openapi::OpenApi as Document;
use utoipa_axum::router::OpenApiRouter;

use crate::body_limit::{self, BodyLimits};
use crate::config::HttpConfig;
use crate::health::{self, Health};
use crate::limits::{self, Limits};
use crate::metrics::{self, HttpMetrics};
use crate::origin::{self, Origins};
use crate::request_id::{self, X_REQUEST_ID};
use crate::{body_deadline, error};
use crate::{openapi, telemetry};
use axum::response::IntoResponse;

/// What the services running in one process share.
#[derive(Clone)]
pub struct Process {
    /// Names the process in metrics and logs: a service name, or `site` for the whole site.
    pub name: &'static str,
    /// The process's one metric registry.
    pub registry: Registry,
    /// Readiness checks and the draining flag.
    pub health: Health,
    /// Cancelled when the process is asked to stop; only the server cancels it.
    stopping: CancellationToken,
    /// Cancelled once the HTTP server has drained: no request can produce new work after it.
    drained: CancellationToken,
    /// Background tasks the process waits for (within the grace period) before it exits.
    tasks: TaskTracker,
}

impl Process {
    /// A process with a fresh registry (process metrics included).
    pub fn new(name: &'static str) -> Self {
        let registry = metrics::registry();
        metrics::build_info(&registry, name);
        Self {
            name,
            registry,
            health: Health::default(),
            stopping: CancellationToken::new(),
            drained: CancellationToken::new(),
            tasks: TaskTracker::new(),
        }
    }

    /// Runs a background task that the process waits for on shutdown: after the HTTP server
    /// has drained, the process exits once every such task has ended or the grace period is
    /// over. Tasks watch [`Process::stopping`] to know when to finish up.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(task);
    }

    /// Waits for the background tasks to end, telling them no request is left.
    pub(crate) async fn background_tasks_done(&self) {
        self.drained.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// A token cancelled when the process is asked to stop, for background tasks to finish up.
    pub fn stopping(&self) -> CancellationToken {
        self.stopping.child_token()
    }

    /// A token cancelled once every request has been answered after a stop: a task that
    /// delivers what requests produce finishes when this is cancelled and its queue is empty.
    pub fn drained(&self) -> CancellationToken {
        self.drained.child_token()
    }

    /// Marks the process as stopping: readiness off, background tasks told.
    pub(crate) fn begin_stop(&self) {
        self.health.set_draining();
        self.stopping.cancel();
    }

    /// Completes once the process has been asked to stop.
    pub(crate) async fn stop_requested(&self) {
        self.stopping.cancelled().await;
    }
}

/// One service's routes and OpenAPI document, before the shared middleware.
pub struct ServiceRoutes {
    /// The service's name, as in its paths `/api/<name>/…`.
    pub name: &'static str,
    /// One paragraph for the top of its OpenAPI document.
    pub description: &'static str,
    /// The public routes, with their state applied.
    pub router: Router,
    /// The document describing them.
    pub openapi: Document,
    /// Routes for the other services only (history's appends): served by the service's own
    /// process, never by the one-process site nor routed by an ingress, and not limited per
    /// client, since their one client is another service.
    pub internal: Router,
    /// The document describing the internal routes.
    pub internal_openapi: Document,
}

impl ServiceRoutes {
    /// Splits an `OpenApiRouter` into routes and document; no internal routes.
    pub fn new(name: &'static str, description: &'static str, api: OpenApiRouter) -> Self {
        let (router, openapi) = api.split_for_parts();
        let (internal, internal_openapi) = OpenApiRouter::new().split_for_parts();
        Self {
            name,
            description,
            router,
            openapi,
            internal,
            internal_openapi,
        }
    }

    /// These routes with `api` as their internal routes.
    #[must_use]
    pub fn with_internal(mut self, api: OpenApiRouter) -> Self {
        (self.internal, self.internal_openapi) = api.split_for_parts();
        self
    }
}

/// Which of its routes a process serves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Exposure {
    /// A service's own process: its public and internal routes.
    Everything,
    /// The one-process site, open to visitors: the public routes alone.
    PublicOnly,
}

/// The whole application: the services' routes, each one's docs, health, `/metrics`, and the
/// middleware every request passes, outermost first: request id → CORS → error shape → load
/// shedding and rate limits → log and metrics → cross-origin writes refused → request timeout
/// → body deadline → body limit → panic catcher.
///
/// Each service's internal routes are served too, exempt from the limits per client.
pub fn build(process: &Process, http: &HttpConfig, services: Vec<ServiceRoutes>) -> Router {
    compose(process, http, services, Router::new(), Exposure::Everything)
}

/// [`build`] for the one-process site: the services' public routes alone (their internal ones
/// are called in-process), and routes that are no service's API (the site's static pages)
/// served behind the same middleware, so they are logged, measured and limited like the rest.
pub fn build_with_pages(
    process: &Process,
    http: &HttpConfig,
    services: Vec<ServiceRoutes>,
    pages: Router,
) -> Router {
    compose(process, http, services, pages, Exposure::PublicOnly)
}

fn compose(
    process: &Process,
    http: &HttpConfig,
    services: Vec<ServiceRoutes>,
    pages: Router,
    exposure: Exposure,
) -> Router {
    let mut router = Router::new()
        .route("/api/healthz/", get(health::readiness))
        .route("/api/livez/", get(health::liveness))
        .with_state(process.health.clone())
        .route(
            "/metrics",
            get(metrics::render).with_state(process.registry.clone()),
        )
        .merge(pages);
    let mut internal_paths = Vec::new();
    for service in services {
        let mut doc = service.openapi;
        router = router.merge(service.router);
        if exposure == Exposure::Everything {
            internal_paths.extend(service.internal_openapi.paths.paths.keys().cloned());
            doc.merge(service.internal_openapi);
            router = router.merge(service.internal);
        }
        let doc = openapi::document(service.name, service.description, doc);
        router = router.merge(openapi::docs_router(service.name, doc));
    }
    let http_metrics = HttpMetrics::new(&process.registry, process.name);
    let body_deadline = http.request_timeout / 2;
    let body_limits = BodyLimits::new(http.body_limit, http.internal_body_limit, &internal_paths);
    let limits = Limits::new(
        http.limits.clone(),
        internal_paths,
        &process.registry,
        process.name,
    );
    // One layer over every route (so the route template is known), outermost first. The
    // `map_response` steps turn answer bodies back into axum's `Body`, which the timeout and
    // CORS layers need.
    let middleware = ServiceBuilder::new()
        .map_response(security_headers)
        .layer(axum::middleware::from_fn(request_id::assign))
        .option_layer(cors(http))
        .layer(axum::middleware::from_fn(error::normalize))
        // Refusals are counted by the limits, not logged or measured one by one.
        .layer(axum::middleware::from_fn_with_state(
            limits,
            limits::enforce,
        ))
        .layer(axum::middleware::from_fn_with_state(
            http_metrics,
            telemetry::observe,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Origins::new(&http.cors_origins),
            origin::enforce,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            http.request_timeout,
        ))
        .map_response(IntoResponse::into_response)
        // A client that stops sending its body, or trickles it, gets 408, not the 503 of a
        // slow server: the whole body must be in within half the request timeout.
        .map_request(move |request| body_deadline::bound(request, body_deadline))
        .layer(axum::middleware::from_fn_with_state(
            body_limits,
            body_limit::enforce,
        ))
        .map_response(IntoResponse::into_response)
        .layer(CatchPanicLayer::custom(error::panic_response));
    router.layer(DefaultBodyLimit::disable()).layer(middleware)
}

/// Headers every answer carries unless its route set its own (the site's page sets more):
/// browsers must not guess a type other than the one sent, and no address of the site leaks
/// to other origins as a referrer.
fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    headers
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(header::HeaderValue::from_static("nosniff"));
    headers
        .entry(header::REFERRER_POLICY)
        .or_insert(header::HeaderValue::from_static("no-referrer"));
    response
}

fn cors(http: &HttpConfig) -> Option<CorsLayer> {
    (!http.cors_origins.is_empty()).then(|| {
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(http.cors_origins.clone()))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::CONTENT_TYPE, X_REQUEST_ID.clone()])
            .expose_headers([X_REQUEST_ID.clone()])
            .max_age(std::time::Duration::from_hours(1))
    })
}
