//! OpenAPI documents and their interactive pages.
//!
//! Each service serves its OpenAPI 3.1 document at `/api/<service>/openapi.json` and Swagger UI
//! at `/api/<service>/docs`. The UI's assets are compiled into the binary, so the page works
//! with no network.

use axum::Router;
use utoipa::OpenApi;
use utoipa::openapi::OpenApi as Document;
use utoipa_swagger_ui::SwaggerUi;

use utoipa::openapi::content::Content;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Ref, RefOr};

use crate::error::ErrorBody;
use crate::health::HealthReport;

/// Probes answer for themselves: never shed, limited or given a `Retry-After`.
const PROBES: [&str; 2] = ["/api/livez/", "/api/healthz/"];

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
    describe_middleware_answers(&mut doc);
    doc
}

/// Adds to every operation what the shared middleware may answer besides its handler, so the
/// document describes every answer a client can get: 503 (load shed, or over the request
/// timeout) and 429 (over the client's rate limit) with `Retry-After`, 431 for oversized
/// headers, 408 for a body that arrives too slowly, `x-request-id` on every answer. Binary answers (the PNG) are described
/// as strings of their media type.
fn describe_middleware_answers(doc: &mut Document) {
    for (path, item) in &mut doc.paths.paths {
        let probe = PROBES.contains(&path.as_str());
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            describe_operation(operation, probe);
        }
    }
}

fn describe_operation(operation: &mut Operation, probe: bool) {
    let has_body = operation.request_body.is_some();
    let responses = &mut operation.responses.responses;
    if !probe {
        responses.entry("503".to_owned()).or_insert_with(|| {
            error_answer(
                "Busy (`MAX_CONCURRENT_REQUESTS` in flight) or over `REQUEST_TIMEOUT_MS`; retry \
                 after `Retry-After`",
            )
        });
        responses.entry("429".to_owned()).or_insert_with(|| {
            error_answer(
                "Too many requests from this client (`RATE_LIMIT_PER_SECOND`); retry after \
                 `Retry-After`",
            )
        });
    }
    responses.entry("431".to_owned()).or_insert_with(|| {
        error_answer("Request headers over `MAX_HEADER_BYTES`, or more than 100 of them")
    });
    if has_body {
        responses
            .entry("408".to_owned())
            .or_insert_with(|| error_answer("The body arrived too slowly"));
        responses.entry("403".to_owned()).or_insert_with(|| {
            error_answer(
                "Sent by a browser from another origin than the service's own or \
                 `CORS_ALLOWED_ORIGINS` (`cross_origin`)",
            )
        });
        responses.entry("415".to_owned()).or_insert_with(|| {
            error_answer(
                "A body declared as another media type than JSON, or sent by a browser without one",
            )
        });
    }
    for (status, response) in responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        response
            .headers
            .entry("x-request-id".to_owned())
            .or_insert_with(|| header(Type::String, "The request's id, also in error bodies"));
        if !probe && (status == "429" || status == "503") {
            response
                .headers
                .entry("retry-after".to_owned())
                .or_insert_with(|| header(Type::Integer, "Seconds to wait before trying again"));
        }
        for (media_type, content) in &mut response.content {
            if !media_type.contains("json") && !media_type.starts_with("text/") {
                content.schema = Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .content_media_type(media_type.clone())
                        .into(),
                );
            }
        }
    }
}

fn error_answer(description: &str) -> RefOr<Response> {
    let mut response = Response::new(description);
    response.content.insert(
        "application/json".to_owned(),
        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
    );
    RefOr::T(response)
}

fn header(kind: Type, description: &str) -> Header {
    let mut header = Header::new(ObjectBuilder::new().schema_type(kind));
    header.description = Some(description.to_owned());
    header
}

/// The docs pages' Content-Security-Policy: Swagger UI's own files only. Its components set
/// inline styles, and its icons are `data:` images; nothing is fetched from elsewhere, and
/// "Try it out" calls this origin.
pub const DOCS_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
    connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// Routes serving `doc` and its Swagger UI under `/api/<service>/`, the pages with their
/// Content-Security-Policy and `X-Frame-Options`.
pub fn docs_router(service: &str, doc: Document) -> Router {
    let json = format!("/api/{service}/openapi.json");
    Router::from(SwaggerUi::new(format!("/api/{service}/docs")).url(json, doc)).layer(
        axum::middleware::map_response(|mut response: axum::response::Response| async move {
            let headers = response.headers_mut();
            headers.insert(
                axum::http::header::CONTENT_SECURITY_POLICY,
                axum::http::HeaderValue::from_static(DOCS_CONTENT_SECURITY_POLICY),
            );
            headers.insert(
                axum::http::header::X_FRAME_OPTIONS,
                axum::http::HeaderValue::from_static("DENY"),
            );
            response
        }),
    )
}
