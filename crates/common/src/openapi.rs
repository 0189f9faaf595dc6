//! OpenAPI documents and their interactive pages.
//!
//! Each service serves its OpenAPI 3.1 document at `/api/<service>/openapi.json` and Swagger UI
//! at `/api/<service>/docs`. The UI's assets are compiled into the binary, so the page works
//! with no network.

use axum::Router;
use utoipa::OpenApi;
use utoipa::openapi::OpenApi as Document;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::ErrorBody;
use crate::health::HealthReport;

#[derive(OpenApi)]
#[openapi(
    paths(crate::health::readiness, crate::health::liveness),
    components(schemas(ErrorBody, HealthReport)),
    tags((name = "health", description = "Liveness and readiness probes"))
)]
struct Shared;

/// Completes a service's document: title, version, and the endpoints every service has.
pub fn document(service: &str, description: &str, mut doc: Document) -> Document {
    doc.merge(Shared::openapi());
    doc.info.title = format!("Figachechnaya {service}");
    env!("CARGO_PKG_VERSION").clone_into(&mut doc.info.version);
    doc.info.description = Some(description.to_owned());
    doc
}

/// Routes serving `doc` and its Swagger UI under `/api/<service>/`.
pub fn docs_router(service: &str, doc: Document) -> Router {
    let json = format!("/api/{service}/openapi.json");
    SwaggerUi::new(format!("/api/{service}/docs"))
        .url(json, doc)
        .into()
}
