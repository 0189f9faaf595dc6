//! The site's page, embedded in the binary so that `cargo run` serves it from any folder.
//!
//! The files are `frontend/site/`, which nginx serves in the production layout; the caching
//! and security headers are those of `frontend/nginx/templates/site.conf.template` (the tests
//! hold the two together).

use std::hash::{DefaultHasher, Hash, Hasher};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;

/// The page's Content-Security-Policy: everything from this origin, nothing inline.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; font-src 'self'; img-src 'self' data:; connect-src 'self'; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Headers every file of the site is sent with.
const SECURITY_HEADERS: [(HeaderName, &str); 6] = [
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "strict-origin-when-cross-origin"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=()",
    ),
    (
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    ),
];

/// Fonts keep their content under their name; everything else is revalidated on each visit,
/// so a new release shows at once (an unchanged file costs a 304).
const FONT_CACHE: &str = "max-age=2592000";
const REVALIDATE: &str = "no-cache";

/// One embedded file of `frontend/site/`.
pub struct Asset {
    /// Its path under the site's root, as requested.
    pub path: &'static str,
    content_type: &'static str,
    cache_control: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:literal, $cache_control:expr) => {
        Asset {
            path: $path,
            content_type: $content_type,
            cache_control: $cache_control,
            body: include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../frontend/site",
                $path
            )),
        }
    };
}

/// Every file of the site.
pub const ASSETS: &[Asset] = &[
    asset!("/index.html", "text/html; charset=utf-8", REVALIDATE),
    asset!("/app.js", "text/javascript; charset=utf-8", REVALIDATE),
    asset!("/style.css", "text/css; charset=utf-8", REVALIDATE),
    asset!("/favicon.svg", "image/svg+xml", REVALIDATE),
    asset!("/fonts/lobster-cyrillic.woff2", "font/woff2", FONT_CACHE),
    asset!("/fonts/lobster-latin.woff2", "font/woff2", FONT_CACHE),
    asset!(
        "/fonts/old-standard-tt-cyrillic.woff2",
        "font/woff2",
        FONT_CACHE
    ),
    asset!(
        "/fonts/old-standard-tt-latin.woff2",
        "font/woff2",
        FONT_CACHE
    ),
    asset!(
        "/fonts/OFL-Lobster.txt",
        "text/plain; charset=utf-8",
        REVALIDATE
    ),
    asset!(
        "/fonts/OFL-OldStandardTT.txt",
        "text/plain; charset=utf-8",
        REVALIDATE
    ),
];

/// The site's routes: `/` and each file at its path.
pub fn router() -> Router {
    ASSETS.iter().fold(Router::new(), |router, asset| {
        let etag = etag(asset.body);
        let serve = get(move |request: HeaderMap| {
            let etag = etag.clone();
            async move { serve(asset, &etag, &request) }
        });
        let router = router.route(asset.path, serve.clone());
        if asset.path == "/index.html" {
            router.route("/", serve)
        } else {
            router
        }
    })
}

fn serve(asset: &Asset, etag: &HeaderValue, request: &HeaderMap) -> Response {
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| matches_etag(tags, etag));
    let mut response = if fresh {
        Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
    } else {
        Response::builder()
            .header(header::CONTENT_TYPE, asset.content_type)
            .body(Body::from(asset.body))
    }
    .expect("static headers are valid");
    let headers = response.headers_mut();
    headers.insert(header::ETAG, etag.clone());
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(asset.cache_control),
    );
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A strong entity tag of the file's content.
fn etag(body: &[u8]) -> HeaderValue {
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    HeaderValue::from_str(&format!("\"{:016x}\"", hasher.finish())).expect("hex is a valid header")
}

/// Whether an `If-None-Match` list names `etag` (weakly compared, as RFC 9110 asks for GET).
fn matches_etag(tags: &str, etag: &HeaderValue) -> bool {
    let etag = etag.to_str().unwrap_or_default();
    tags.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn site_folder() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../frontend/site")
    }

    fn files_under(folder: &Path, root: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files_under(&path, root, found);
            } else {
                let relative = path.strip_prefix(root).unwrap().to_str().unwrap();
                found.push(format!("/{relative}"));
            }
        }
    }

    #[test]
    fn every_file_of_the_site_folder_is_embedded_and_nothing_else() {
        let folder = site_folder();
        let mut on_disk = Vec::new();
        files_under(&folder, &folder, &mut on_disk);
        on_disk.sort();
        let mut embedded: Vec<String> = ASSETS.iter().map(|a| a.path.to_owned()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
    }

    #[test]
    fn the_security_headers_are_those_nginx_sends_with_the_site() {
        let template = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../frontend/nginx/templates/site.conf.template"),
        )
        .unwrap();
        for (name, value) in SECURITY_HEADERS {
            let line = format!(
                "add_header {} \"{value}\" always;",
                canonical(name.as_str())
            );
            assert!(template.contains(&line), "the template lacks: {line}");
        }
    }

    /// `content-security-policy` → `Content-Security-Policy`, as the template spells it.
    fn canonical(name: &str) -> String {
        name.split('-')
            .map(|part| {
                let mut chars = part.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect::<Vec<_>>()
            .join("-")
    }

    #[test]
    fn if_none_match_lists_are_compared_weakly() {
        let etag = HeaderValue::from_static("\"0123\"");
        assert!(matches_etag("\"0123\"", &etag));
        assert!(matches_etag("\"aaaa\", W/\"0123\"", &etag));
        assert!(matches_etag("*", &etag));
        assert!(!matches_etag("\"01234\"", &etag));
        assert!(!matches_etag("", &etag));
    }

    #[test]
    fn the_same_content_has_the_same_tag_and_other_content_another() {
        assert_eq!(etag(b"page"), etag(b"page"));
        assert_ne!(etag(b"page"), etag(b"page2"));
    }
}
