//! The performance harness's ceiling (`bench/run.sh`): the least an axum service does for a
//! request like figalize's — parse a small JSON body, answer a small JSON body — on the same
//! runtime, allocator and release profile as the services, with no middleware, logging or
//! metrics. Every figure of the harness is reported beside it as a ratio.
//!
//! `PORT=18099 cargo run --release --example ceiling -p figalize`

use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Deserialize)]
struct Request {
    phrase: String,
}

#[derive(Serialize)]
struct Answer {
    data: String,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|port| port.parse().ok())
        .unwrap_or(18099);
    let app = Router::new()
        .route(
            "/",
            post(|Json(request): Json<Request>| async move {
                Json(Answer {
                    data: request.phrase,
                })
            }),
        )
        // What the harness polls for readiness, as it does on the services.
        .route("/api/healthz/", get(|| async { "ready" }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await
}
