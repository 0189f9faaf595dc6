//! The size limit on request bodies, chosen by route.
//!
//! Every route takes bodies up to `MAX_BODY_BYTES`, with or without `Content-Length`; a larger
//! one is answered 413. A service's internal routes (history's appends, which only figalize
//! makes and no ingress routes) take up to `MAX_INTERNAL_BODY_BYTES`: one batch there carries
//! hundreds of entries, and a batch cut to a public body's size would bound history's rate by
//! its requests rather than by its commits.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower::{Layer, ServiceExt};
use tower_http::body::Limited;
use tower_http::limit::RequestBodyLimitLayer;

/// The limits, and the paths that get the internal one.
#[derive(Clone)]
pub struct BodyLimits {
    public: usize,
    internal: usize,
    internal_paths: Arc<[String]>,
}

impl BodyLimits {
    /// `public` bytes for every route but `internal_paths`, which take `internal`.
    pub fn new(public: usize, internal: usize, internal_paths: &[String]) -> Self {
        Self {
            public,
            internal,
            internal_paths: internal_paths.into(),
        }
    }

    /// The limit for a request to `path`.
    fn of(&self, path: &str) -> usize {
        if self.internal_paths.iter().any(|internal| internal == path) {
            self.internal
        } else {
            self.public
        }
    }
}

/// Middleware: bounds the request's body by its route's limit.
pub async fn enforce(State(limits): State<BodyLimits>, request: Request, next: Next) -> Response {
    let limit = limits.of(request.uri().path());
    // tower-http's limit: a `Content-Length` over it is answered 413 at once, and a body
    // without one is cut off where it passes the limit (the extractors answer 413 then).
    let next =
        next.map_request(|limited: axum::http::Request<Limited<Body>>| limited.map(Body::new));
    match RequestBodyLimitLayer::new(limit)
        .layer(next)
        .oneshot(request)
        .await
    {
        Ok(response) => response.into_response(),
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_paths_get_their_own_limit_and_every_other_the_public_one() {
        let limits = BodyLimits::new(8, 1024, &["/api/append/batch/".to_owned()]);
        assert_eq!(limits.of("/api/append/batch/"), 1024);
        assert_eq!(limits.of("/api/append/batch"), 8);
        assert_eq!(limits.of("/api/figalize/"), 8);
    }
}
