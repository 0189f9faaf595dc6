//! The HTTP API: `POST /api/getimageurl/`, and the images themselves when they are kept in a
//! local directory.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use common::image_job::{MAX_TEXT_CHARS, image_key};
use common::phrase::Phrase;
use common::{ApiError, ErrorBody, Json};

use crate::store::{CACHE_CONTROL, DirStore, ImageStore, is_image_file_name};

/// Where images are served from when imagizer keeps them itself.
pub const IMAGES_PATH: &str = "/api/imagizer/images/";

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub(crate) store: Arc<dyn ImageStore>,
    /// Set when the images are in a local directory that imagizer serves.
    pub(crate) directory: Option<Arc<DirStore>>,
}

/// The routes of the imagizer service.
pub fn router(state: AppState) -> OpenApiRouter {
    let mut router = OpenApiRouter::new().routes(routes!(get_image_url));
    if state.directory.is_some() {
        router = router.routes(routes!(image));
    }
    router.with_state(state)
}

/// The figalized phrase whose image is wanted.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ImageUrlRequest {
    /// The phrase exactly as `POST /api/figalize/` answered it.
    #[schema(example = "Фигосипед", max_length = 1024)]
    phrase: String,
}

/// Where the image is.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ImageUrlResponse {
    /// The image's URL: absolute, or relative to the site when imagizer serves it.
    #[schema(example = "/api/imagizer/images/d04d3ea1d7a4cbd7e0da8c2f1b3b7c55.png")]
    pub data: String,
}

/// The URL of a phrase's PNG, once it has been rendered.
#[utoipa::path(
    post,
    path = "/api/getimageurl/",
    tag = "imagizer",
    request_body = ImageUrlRequest,
    responses(
        (status = 200, description = "The image is stored; here is its URL", body = ImageUrlResponse),
        (status = 204, description = "Not rendered yet: ask again shortly"),
        (status = 400, description = "Empty, too long or not Russian text, or malformed JSON", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape", body = ErrorBody),
        (status = 503, description = "The image store is unavailable; retry later", body = ErrorBody),
    )
)]
async fn get_image_url(
    State(state): State<AppState>,
    Json(request): Json<ImageUrlRequest>,
) -> Result<Response, ApiError> {
    let phrase = Phrase::parse_with_limit(&request.phrase, MAX_TEXT_CHARS)
        .map_err(|err| ApiError::bad_request(err.code(), err.to_string()))?;
    let key = image_key(phrase.as_str());
    let unavailable = |err: crate::store::StoreError| {
        ApiError::Unavailable(anyhow::anyhow!("image store: {err}"))
    };
    if !state.store.exists(&key).await.map_err(unavailable)? {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let url = state.store.url(&key).await.map_err(unavailable)?;
    Ok(Json(ImageUrlResponse { data: url }).into_response())
}

/// A stored PNG (only when imagizer keeps the images in a local directory).
#[utoipa::path(
    get,
    path = "/api/imagizer/images/{file}",
    tag = "imagizer",
    params(("file" = String, Path, description = "`<md5 of the phrase>.png`")),
    responses(
        (status = 200, description = "The PNG", content_type = "image/png", body = Vec<u8>),
        (status = 404, description = "No such image", body = ErrorBody),
    )
)]
async fn image(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let not_found = || {
        common::error::error_response(
            StatusCode::NOT_FOUND,
            "no_such_image",
            "No such image".to_owned(),
        )
    };
    let Some(directory) = state.directory else {
        return not_found();
    };
    let Some(key) = file
        .strip_suffix(".png")
        .filter(|_| is_image_file_name(&file))
    else {
        return not_found();
    };
    match tokio::fs::read(directory.path(key)).await {
        Ok(png) => (
            [
                (header::CONTENT_TYPE, "image/png"),
                (header::CACHE_CONTROL, CACHE_CONTROL),
            ],
            Body::from(png),
        )
            .into_response(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => not_found(),
        Err(err) => ApiError::Unavailable(anyhow::anyhow!("reading {file}: {err}")).into_response(),
    }
}
